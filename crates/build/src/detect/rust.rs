//! Rust (`Cargo.toml`): `cargo build --release` with `target/` in the build cache, then the
//! executables it made copied into `bin/` of the slug.

use super::{BuildPlan, DefaultWeb, Host, missing};
use crate::error::BuildError;

/// Where detected Rust builds keep `target/`: inside the per-app cache, so incremental
/// artifacts survive between builds without going into the slug.
pub const CARGO_TARGET_IN_CACHE: &str = "$CACHE_DIR/cargo-target";

pub(super) fn plan(host: &Host) -> Result<BuildPlan, BuildError> {
    if host.which("cargo").is_none() {
        return Err(missing("cargo", "Cargo.toml", "rust"));
    }
    let mut plan = BuildPlan::new(
        "rust",
        "Cargo.toml",
        vec![
            format!("cargo build --release --target-dir \"{CARGO_TARGET_IN_CACHE}\""),
            // The executables, not libraries (a cdylib is executable too).
            format!(
                "mkdir -p bin && find \"{CARGO_TARGET_IN_CACHE}/release\" -maxdepth 1 -type f -perm -u+x ! -name '*.so' ! -name '*.dylib' -exec cp {{}} bin/ \\;"
            ),
        ],
    );
    plan.default_web = DefaultWeb::SingleBinary;
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::super::tests::plan_on;
    use super::*;

    #[test]
    fn rust_builds_release_with_target_in_cache_and_binaries_into_bin() {
        let plan = plan_on(&[("Cargo.toml", "[package]\n")], &[("cargo", "")], &[]).expect("plan");
        assert_eq!(plan.kind, "rust");
        assert!(
            plan.steps[0].starts_with("cargo build --release"),
            "{plan:?}"
        );
        assert!(plan.steps[1].contains("-exec cp {} bin/"), "{plan:?}");
        assert_eq!(plan.default_web, DefaultWeb::SingleBinary);
        let e = plan_on(&[("Cargo.toml", "[package]\n")], &[], &[]).unwrap_err();
        assert!(e.to_string().contains("`cargo`"), "{e}");
    }
}
