//! The `dozen` binary: parses the command line and hands the work to the library crates.
//!
//! - `dozen start` / `run` / `check`: the laptop runner (`project`, `start`, `run`, `check`).
//! - `dozen doctor`: the twelve-factor audit (`doctor`, over `dozen_doctor`).
//!
//! Errors reach [`main`] as `anyhow` errors and are printed once, as `dozen: context: cause`.

mod cli;
mod doctor;
mod project;
mod run;
mod start;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args = <cli::Cli as clap::Parser>::parse();
    match cli::dispatch(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("dozen: {err:#}");
            ExitCode::FAILURE
        }
    }
}
