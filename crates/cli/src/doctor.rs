//! `dozen doctor`: the command-line face of the `dozen-doctor` library.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use dozen_doctor::{Baseline, ChangedLines, FailOn, Options};

/// Output formats of `dozen doctor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Findings grouped by factor, then a summary (the default).
    Human,
    /// One JSON document.
    Json,
    /// SARIF 2.1.0, for GitHub code scanning.
    Sarif,
}

/// Thresholds of `--fail-on`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOnArg {
    /// Fail when an unaccepted error remains (default).
    Error,
    /// Fail on warnings too.
    Warning,
    /// Fail on anything unaccepted.
    Info,
    /// Never fail; report only.
    Never,
}

impl From<FailOnArg> for FailOn {
    fn from(a: FailOnArg) -> FailOn {
        use dozen_doctor::Severity;
        match a {
            FailOnArg::Error => FailOn::At(Severity::Error),
            FailOnArg::Warning => FailOn::At(Severity::Warning),
            FailOnArg::Info => FailOn::At(Severity::Info),
            FailOnArg::Never => FailOn::Never,
        }
    }
}

/// Audit a repository against the twelve factors.
///
/// Deviations are accepted from `twelve-factor.toml` (or `[doctor]` in `dozen.toml`) and from
/// inline `dozen-doctor: allow <RULE-ID> because <reason>` comments.
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// The repository to audit (default: the current directory).
    pub dir: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human, env = "DOZEN_DOCTOR_FORMAT")]
    pub format: Format,
    /// Exit non-zero when an unaccepted finding is at or above this severity.
    #[arg(long, value_enum, default_value_t = FailOnArg::Error)]
    pub fail_on: FailOnArg,
    /// Also start the `web` process with `dozen start` on a free PORT and probe it.
    #[arg(long)]
    pub run: bool,
    /// No colours in the human format (also honoured: NO_COLOR).
    #[arg(long)]
    pub no_color: bool,
    /// Compare with the findings recorded in FILE and fail only on new ones; when FILE does not
    /// exist, record today's findings in it.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Rewrite the --baseline file with today's findings.
    #[arg(long, requires = "baseline")]
    pub update_baseline: bool,
    /// Report only findings on lines changed since this git ref (committed, staged or not,
    /// and untracked files).
    #[arg(long, value_name = "REF")]
    pub changed_since: Option<String>,
}

/// Run `dozen doctor`.
pub fn run(args: DoctorArgs) -> anyhow::Result<ExitCode> {
    let dir = match args.dir {
        Some(d) => d,
        None => std::env::current_dir().context("doctor: cannot read the current directory")?,
    };
    let mut opts = Options::new(dir);
    opts.fail_on = args.fail_on.into();
    opts.run = args.run;
    opts.dozen_exe = std::env::current_exe().ok();
    // Bad input stops the run before the audit: a malformed baseline, an unknown ref.
    let existing = match &args.baseline {
        Some(file) if !args.update_baseline => Baseline::load(file)?,
        _ => None,
    };
    let changed = match &args.changed_since {
        Some(reference) => Some(ChangedLines::from_git(&opts.root, reference)?),
        None => None,
    };
    let mut report = dozen_doctor::audit(&opts)?;
    if let Some(file) = &args.baseline {
        report.drop_findings_in(file);
        match existing {
            Some(baseline) => report.apply_baseline(&baseline, file, false),
            None => {
                let baseline = Baseline::from_report(&report);
                baseline.write(file)?;
                report.apply_baseline(&baseline, file, true);
            }
        }
    }
    if let Some(changed) = &changed {
        report.retain_changed(changed);
    }
    let stdout = std::io::stdout();
    let color = !args.no_color && std::env::var_os("NO_COLOR").is_none() && stdout.is_terminal();
    let mut out = stdout.lock();
    let written = match args.format {
        Format::Human => report.render_human(&mut out, color, opts.fail_on),
        Format::Json => report.render_json(&mut out),
        Format::Sarif => report.render_sarif(&mut out),
    }
    .and_then(|()| out.flush());
    match written {
        // `dozen doctor | head` closes the pipe early; the verdict still stands.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other.context("doctor: writing the report")?,
    }
    Ok(ExitCode::from(report.exit_code(opts.fail_on)))
}
