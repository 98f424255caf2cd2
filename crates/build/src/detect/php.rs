//! PHP (`composer.json`): `composer install --no-dev`. No Procfile: PHP's own web server on
//! `$PORT`, serving the app's root (Heroku's default is Apache with the same root).

use std::path::Path;

use super::{BuildPlan, DefaultWeb, Host, missing, read_json};
use crate::error::BuildError;

pub(super) fn plan(dir: &Path, host: &Host) -> Result<BuildPlan, BuildError> {
    // A composer.json that does not parse is named before any tool is looked for.
    read_json(dir, "composer.json")?;
    for tool in ["php", "composer"] {
        if host.which(tool).is_none() {
            return Err(missing(tool, "composer.json", "php"));
        }
    }
    let mut plan = BuildPlan::new(
        "php",
        "composer.json",
        vec!["COMPOSER_HOME=\"$CACHE_DIR/composer\" composer install --no-dev --prefer-dist --optimize-autoloader --no-interaction".into()],
    );
    plan.default_web = DefaultWeb::Command("php -S 0.0.0.0:$PORT".into());
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::super::tests::plan_on;
    use super::*;

    #[test]
    fn php_needs_php_and_composer() {
        let e = plan_on(&[("composer.json", "{}")], &[], &[]).unwrap_err();
        assert!(
            matches!(e, BuildError::MissingTool { ref tool, .. } if tool == "php"),
            "{e}"
        );
        let e = plan_on(&[("composer.json", "{}")], &[("php", "")], &[]).unwrap_err();
        assert!(e.to_string().contains("`composer`"), "{e}");
        let plan = plan_on(
            &[("composer.json", "{}")],
            &[("php", ""), ("composer", "")],
            &[],
        )
        .expect("plan");
        assert!(
            plan.steps[0].contains("composer install --no-dev"),
            "{plan:?}"
        );
        let e = plan_on(&[("composer.json", "{\n,")], &[], &[]).unwrap_err();
        assert!(e.to_string().starts_with("composer.json:2:"), "{e}");
    }
}
