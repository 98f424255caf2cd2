//! Builds the guardian (`guardian/main.rs`) as a freestanding static program of a few kilobytes,
//! which `src/guardian.rs` embeds. Where it cannot be built (another OS or architecture, a
//! toolchain without the pieces), the crate falls back to the `/bin/sh` guardian script and says
//! so in a build warning.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(dozen_guardian_bin)");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=guardian/main.rs");
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    if var("CARGO_CFG_TARGET_OS") != "linux"
        || !matches!(var("CARGO_CFG_TARGET_ARCH").as_str(), "x86_64" | "aarch64")
    {
        return;
    }
    let Some(out) = std::env::var_os("OUT_DIR").map(PathBuf::from) else {
        return;
    };
    let exe = out.join("dozen-guardian");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let mut cmd = Command::new(rustc);
    cmd.args([
        "--edition",
        "2024",
        "--crate-type",
        "bin",
        "--crate-name",
        "dozen_guardian",
        "--target",
        &var("TARGET"),
        "-C",
        "opt-level=s",
        "-C",
        "panic=abort",
        "-C",
        "relocation-model=static",
        "-C",
        "debuginfo=0",
        "-C",
        "strip=symbols",
        "-C",
        "link-arg=-nostartfiles",
        "-C",
        "link-arg=-nostdlib",
        "-C",
        "link-arg=-static",
        "-C",
        "link-arg=-Wl,--gc-sections",
        "-C",
        "link-arg=-Wl,--build-id=none",
    ]);
    if let Ok(linker) = std::env::var("RUSTC_LINKER") {
        cmd.arg("-C").arg(format!("linker={linker}"));
    }
    cmd.arg("-o").arg(&exe).arg("guardian/main.rs");
    match cmd.output() {
        Ok(o) if o.status.success() && exe.is_file() => {
            println!("cargo::rustc-cfg=dozen_guardian_bin");
        }
        Ok(o) => {
            let err = String::from_utf8_lossy(&o.stderr);
            let first = err.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            println!(
                "cargo::warning=the guardian program did not build ({first}); dozen will use the /bin/sh guardian"
            );
        }
        Err(e) => println!(
            "cargo::warning=could not run rustc for the guardian program ({e}); dozen will use the /bin/sh guardian"
        ),
    }
}
