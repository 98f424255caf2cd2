//! Go (`go.mod`): `go build -o bin/ ./...`, with `-mod=vendor` when `vendor/modules.txt`
//! exists. The `go` line of `go.mod` is compared with `go version` first: a host Go older
//! than 1.21 cannot build a module that asks for 1.21 or later (it cannot even read such a
//! `go` line); below that the line is advice to an older Go, and 1.21 and later fetch the
//! toolchain they need, so both are warnings.

use std::path::Path;

use super::{BuildPlan, DefaultWeb, Host, missing, read_text};
use crate::error::BuildError;

pub(super) fn plan(dir: &Path, host: &Host) -> Result<BuildPlan, BuildError> {
    let Some(go) = host.which("go") else {
        return Err(missing("go", "go.mod", "go"));
    };
    let mut notes = Vec::new();
    let text = read_text(dir, "go.mod")?;
    let asked = text.lines().enumerate().find_map(|(i, l)| {
        let v = l.trim().strip_prefix("go ")?;
        Some((i + 1, v.trim().to_string()))
    });
    if let Some((line, asked)) = asked {
        let have = host.output(&go, &["version"]).unwrap_or_default();
        let have = have
            .split_whitespace()
            .find_map(|w| {
                w.strip_prefix("go")
                    .filter(|v| v.starts_with(|c: char| c.is_ascii_digit()))
            })
            .map(str::to_string);
        match (go_version(&asked), have.as_deref().and_then(go_version)) {
            (Some(want), Some(got)) if got < want => {
                let have = have.unwrap_or_default();
                if got < (1, 21, 0) && want >= (1, 21, 0) {
                    return Err(BuildError::Manifest {
                        file: "go.mod".into(),
                        line: Some(line),
                        message: format!(
                            "asks for Go {asked}, but the build host has go{have}, which is older and cannot fetch a newer toolchain; install Go {asked} or newer on the build host"
                        ),
                    });
                }
                notes.push(if got < (1, 21, 0) {
                    format!(
                        "warning: go.mod asks for Go {asked} and the build host has go{have}; before Go 1.21 that line is advice, so the build goes on and fails only if the code needs the newer Go"
                    )
                } else {
                    format!(
                        "warning: go.mod asks for Go {asked} and the build host has go{have}: go will try to fetch the toolchain it needs"
                    )
                });
            }
            (Some(_), Some(_)) => notes.push(format!(
                "using the host's go{}, which go.mod's `go {asked}` allows",
                have.unwrap_or_default()
            )),
            _ => {}
        }
    }
    let vendored = dir.join("vendor").join("modules.txt").is_file();
    let step = if vendored {
        "go build -mod=vendor -o bin/ ./..."
    } else {
        "go build -o bin/ ./..."
    };
    let mut plan = BuildPlan::new("go", "go.mod", vec![step.into()]);
    plan.notes = notes;
    if vendored {
        plan.notes
            .push("vendor/modules.txt: building with the vendored modules".into());
    }
    plan.default_web = DefaultWeb::SingleBinary;
    Ok(plan)
}

/// `1.25.0`, `1.25`, `1.21rc1` as (major, minor, patch).
fn go_version(v: &str) -> Option<(u32, u32, u32)> {
    let digits = |p: &str| -> Option<u32> {
        let n: String = p.chars().take_while(char::is_ascii_digit).collect();
        n.parse().ok()
    };
    let mut it = v.split('.');
    let major = digits(it.next()?)?;
    let minor = it.next().and_then(digits).unwrap_or(0);
    let patch = it.next().and_then(digits).unwrap_or(0);
    Some((major, minor, patch))
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

    #[test]
    fn go_version_in_go_mod_is_checked_against_the_hosts_go() {
        let old = ("go", "echo go version go1.19.8 linux/amd64");
        let e = plan_on(&[("go.mod", "module x\n\ngo 1.25.0\n")], &[old], &[]).unwrap_err();
        let e = e.to_string();
        assert!(
            e.starts_with("go.mod:3: asks for Go 1.25.0, but the build host has go1.19.8"),
            "{e}"
        );
        let plan = plan_on(&[("go.mod", "module x\ngo 1.18\n")], &[old], &[]).expect("plan");
        assert!(plan.notes[0].contains("go1.19.8"), "{plan:?}");
        // Before 1.21 a newer `go` line is advice: the build goes on, with a warning.
        let plan = plan_on(&[("go.mod", "module x\ngo 1.20\n")], &[old], &[]).expect("plan");
        assert!(plan.notes[0].starts_with("warning:"), "{plan:?}");
        let new = ("go", "echo go version go1.22.1 linux/amd64");
        let plan = plan_on(&[("go.mod", "module x\ngo 1.23rc1\n")], &[new], &[]).expect("plan");
        assert!(plan.notes[0].starts_with("warning:"), "{plan:?}");
        let e = plan_on(&[("go.mod", "module x\n")], &[], &[]).unwrap_err();
        assert!(
            matches!(e, BuildError::MissingTool { ref tool, .. } if tool == "go"),
            "{e}"
        );
    }
}
