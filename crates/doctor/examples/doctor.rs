//! A minimal stand-alone `doctor` for benchmarks and quick checks without the full `dozen` binary:
//! `cargo run --release -p dozen-doctor --example doctor -- DIR [human|json|sarif]`.

use std::process::ExitCode;

use dozen_doctor::{FailOn, Options, audit};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| ".".to_owned());
    let format = args.next().unwrap_or_else(|| "human".to_owned());
    let opts = Options::new(dir);
    let report = match audit(&opts) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("doctor: {e}");
            return ExitCode::from(2);
        }
    };
    let mut out = std::io::stdout().lock();
    let written = match format.as_str() {
        "json" => report.render_json(&mut out),
        "sarif" => report.render_sarif(&mut out),
        _ => report.render_human(&mut out, false, FailOn::default()),
    };
    if let Err(e) = written {
        eprintln!("doctor: {e}");
        return ExitCode::from(2);
    }
    ExitCode::from(report.exit_code(opts.fail_on))
}
