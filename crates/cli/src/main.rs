//! The `dozen` binary: parses the command line and hands the work to the library crates.
//!
//! - `dozen start` / `run` / `check`: the laptop runner (`project`, `start`, `run`, `check`).
//! - `dozen doctor`: the twelve-factor audit (`doctor`, over `dozen_doctor`).
//! - `dozen server`, `migrate`, `tokens:*`: the server host's commands (`admin`).
//! - `apps`, `deploy`, `config:*`, `ps:*`, `logs`, …: the server's client (`remote`, `client`).
//! - `export kubernetes|systemd`, `build --oci`: a release beyond one host (`export`, over
//!   `dozen_export`).
//! - `deploy --to kubernetes`, and `rollback`, `ps`, `ps:scale`, `logs`, `run` with
//!   `--on kubernetes`: a release on a cluster (`kube`, over `dozen_kubernetes`).
//!
//! Errors reach [`main`] as `anyhow` errors and are printed once, as `dozen: context: cause`.

mod admin;
mod cli;
mod client;
mod doctor;
mod export;
mod git;
mod kube;
mod project;
mod remote;
mod run;
mod start;
mod trim;

use std::process::ExitCode;

fn main() -> ExitCode {
    if cli::StartCli::applies(std::env::args_os()) {
        let args = <cli::StartCli as clap::Parser>::parse();
        return report(args.dispatch());
    }
    let args = <cli::Cli as clap::Parser>::parse();
    if !args.supervises() {
        // A command whose output is piped into `head` should end quietly when the pipe closes,
        // as Unix tools do. (`start` and `server` keep SIGPIPE ignored: they stop their
        // processes cleanly instead.)
        // SAFETY: restoring a default signal disposition before any thread is started.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    report(cli::dispatch(args))
}

/// Print a failed command's error once, as `dozen: context: cause`.
fn report(result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("dozen: {err:#}");
            ExitCode::FAILURE
        }
    }
}
