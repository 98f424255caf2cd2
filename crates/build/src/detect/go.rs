//! Go (`go.mod`): `go build -o bin/ ./...`, with `-mod=vendor` when `vendor/modules.txt`
//! exists.

use std::path::Path;

use super::{BuildPlan, DefaultWeb, Host, missing};
use crate::error::BuildError;

pub(super) fn plan(dir: &Path, host: &Host) -> Result<BuildPlan, BuildError> {
    if host.which("go").is_none() {
        return Err(missing("go", "go.mod", "go"));
    }
    let vendored = dir.join("vendor").join("modules.txt").is_file();
    let step = if vendored {
        "go build -mod=vendor -o bin/ ./..."
    } else {
        "go build -o bin/ ./..."
    };
    let mut plan = BuildPlan::new("go", "go.mod", vec![step.into()]);
    if vendored {
        plan.notes
            .push("vendor/modules.txt: building with the vendored modules".into());
    }
    plan.default_web = DefaultWeb::SingleBinary;
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::super::tests::plan_on;
    use super::*;

    #[test]
    fn go_builds_into_bin_vendored_when_vendor_exists() {
        let plan = plan_on(&[("go.mod", "module x\n")], &[("go", "")], &[]).expect("plan");
        assert_eq!(plan.kind, "go");
        assert_eq!(plan.steps, ["go build -o bin/ ./..."]);
        assert_eq!(plan.default_web, DefaultWeb::SingleBinary);
        let plan = plan_on(
            &[("go.mod", "module x\n"), ("vendor/modules.txt", "")],
            &[("go", "")],
            &[],
        )
        .expect("plan");
        assert_eq!(plan.steps, ["go build -mod=vendor -o bin/ ./..."]);
        let e = plan_on(&[("go.mod", "module x\n")], &[], &[]).unwrap_err();
        assert!(
            matches!(e, BuildError::MissingTool { ref tool, .. } if tool == "go"),
            "{e}"
        );
    }
}
