//! Java: Maven (`pom.xml`; `./mvnw` when the app has it) or Gradle (`build.gradle`,
//! `build.gradle.kts`; `./gradlew` when the app has it), packaging without running tests.
//! No Procfile: a Spring Boot app runs its jar on `$PORT`, as on Heroku.

use std::path::Path;

use super::{BuildPlan, DefaultWeb, Host, missing, read_optional};
use crate::error::BuildError;

pub(super) fn plan(dir: &Path, host: &Host) -> Result<Option<BuildPlan>, BuildError> {
    let has = |name: &str| dir.join(name).is_file();
    let java = |file| {
        if host.which("java").is_none() {
            Err(missing("java", file, "java"))
        } else {
            Ok(())
        }
    };
    if has("pom.xml") {
        java("pom.xml")?;
        let mvn = if has("mvnw") {
            "./mvnw"
        } else if host.which("mvn").is_some() {
            "mvn"
        } else {
            return Err(missing("mvn", "pom.xml", "java"));
        };
        let mut plan = BuildPlan::new(
            "java",
            "pom.xml",
            vec![format!(
                "{mvn} -B -DskipTests -Dmaven.repo.local=\"$CACHE_DIR/m2\" clean package"
            )],
        );
        if spring_boot(dir, "pom.xml")? {
            plan.default_web =
                DefaultWeb::Command("java -Dserver.port=$PORT $JAVA_OPTS -jar target/*.jar".into());
        }
        return Ok(Some(plan));
    }
    let file = if has("build.gradle") {
        "build.gradle"
    } else if has("build.gradle.kts") {
        "build.gradle.kts"
    } else {
        return Ok(None);
    };
    java(file)?;
    let gradle = if has("gradlew") {
        "./gradlew"
    } else if host.which("gradle").is_some() {
        "gradle"
    } else {
        return Err(missing("gradle", file, "java"));
    };
    let mut plan = BuildPlan::new(
        "java",
        file,
        vec![format!(
            "GRADLE_USER_HOME=\"$CACHE_DIR/gradle\" {gradle} --no-daemon build -x test"
        )],
    );
    if spring_boot(dir, file)? {
        plan.default_web =
            DefaultWeb::Command("java -Dserver.port=$PORT $JAVA_OPTS -jar build/libs/*.jar".into());
    }
    Ok(Some(plan))
}

fn spring_boot(dir: &Path, file: &str) -> Result<bool, BuildError> {
    Ok(read_optional(dir, file)?.is_some_and(|t| t.contains("spring-boot")))
}

#[cfg(test)]
mod tests {
    use super::super::tests::plan_on;
    use super::*;

    #[test]
    fn maven_and_gradle_prefer_the_apps_wrapper_and_name_a_missing_tool() {
        let tools = [("java", ""), ("mvn", "")];
        let plan = plan_on(&[("pom.xml", "<project/>")], &tools, &[]).expect("plan");
        assert_eq!(plan.kind, "java");
        assert!(plan.steps[0].starts_with("mvn -B -DskipTests"), "{plan:?}");
        let plan = plan_on(
            &[("pom.xml", "spring-boot"), ("mvnw", "")],
            &[("java", "")],
            &[],
        )
        .expect("plan");
        assert!(plan.steps[0].starts_with("./mvnw"), "{plan:?}");
        assert!(
            matches!(plan.default_web, DefaultWeb::Command(ref c) if c.contains("-jar target/"))
        );
        let e = plan_on(&[("build.gradle", "")], &[("java", "")], &[]).unwrap_err();
        assert!(
            matches!(e, BuildError::MissingTool { ref tool, .. } if tool == "gradle"),
            "{e}"
        );
        let e = plan_on(&[("pom.xml", "")], &[], &[]).unwrap_err();
        assert!(e.to_string().contains("`java`"), "{e}");
    }
}
