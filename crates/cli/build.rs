//! Link-time settings for the `dozen` binary.
//!
//! On Linux, pack the binary's relative relocations (`-z pack-relative-relocs`, DT_RELR) when
//! the linker supports it: the dynamic loader then reads a few kilobytes of relocations at start
//! instead of about half a megabyte, and that half megabyte no longer sits in the memory of every
//! long-running `dozen start` and `dozen server`.

use std::path::PathBuf;
use std::process::{Command, Stdio};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
        return;
    }
    if linker_packs_relocations() {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// Whether the C compiler driver that links Rust binaries accepts the flag (binutils 2.38+, or
/// lld 15+) and the result runs (glibc 2.36+).
fn linker_packs_relocations() -> bool {
    let Some(out) = std::env::var_os("OUT_DIR").map(PathBuf::from) else {
        return false;
    };
    let src = out.join("relr-probe.c");
    let exe = out.join("relr-probe");
    if std::fs::write(
        &src,
        "static int x; int *p = &x; int main(void) { return *p; }\n",
    )
    .is_err()
    {
        return false;
    }
    let cc = std::env::var("RUSTC_LINKER").unwrap_or_else(|_| "cc".to_string());
    let linked = Command::new(&cc)
        .args([
            "-pie",
            "-fPIE",
            "-Wl,-z,pack-relative-relocs",
            "-Wl,--fatal-warnings",
            "-o",
        ])
        .arg(&exe)
        .arg(&src)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    // Cross builds cannot run the probe; the linker accepting the flag is enough there.
    let host = std::env::var("HOST").ok();
    let target = std::env::var("TARGET").ok();
    if !linked || host != target {
        return linked;
    }
    Command::new(&exe)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.code() == Some(0))
}
