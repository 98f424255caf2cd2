//! `dozen doctor`: audit a repository against the twelve factors.
//!
//! The doctor reads a repository (any language: Python, Node.js, Ruby, Go, Java, Rust, PHP, plus
//! Dockerfiles, compose files, Procfiles, `app.json` and Kubernetes manifests) and reports what
//! breaks one of the twelve factors: a stable rule id (`TF03-SECRET-IN-CODE`), a severity, the file
//! and line, the evidence with secrets redacted, why it matters and how to fix it; then a
//! pass / warn / fail summary per factor. With [`Options::run`] it also starts the app's `web`
//! process through `dozen start` and probes it (binds `PORT`, answers HTTP, writes no log files,
//! stops on SIGTERM).
//!
//! It is for: a fast, explainable audit that can gate CI (`--fail-on`), with deviations written
//! down and justified in `twelve-factor.toml` (or `[doctor]` in `dozen.toml`) or in inline
//! `dozen-doctor: allow <RULE-ID> because <reason>` comments.
//! It is not: a security scanner (it knows common credential shapes, not every one), a linter, or
//! a proof of compliance — rules are heuristics tuned for precision, so a clean report means
//! "nothing obvious", not "twelve-factor".
//!
//! Main types: [`Options`] in, [`audit`] runs, [`Report`] out with [`Finding`]s and a
//! [`FactorSummary`] per factor; [`Report::render_human`], [`Report::render_json`] and
//! [`Report::render_sarif`] write it; [`Report::exit_code`] applies `--fail-on`. The rule
//! catalogue is [`rules::RULES`]. For a codebase that already has findings, a [`Baseline`]
//! ([`Report::apply_baseline`]) makes only new findings count, and [`ChangedLines`]
//! ([`Report::retain_changed`]) narrows a report to the lines changed since a git ref.
//!
//! How it is built: a parallel walk (the `ignore` crate) honours `.gitignore`, skips vendored and
//! generated trees (`node_modules`, `vendor`, `target`, `dist`...), binaries and files above a size
//! bound; line rules run in the walker's threads with one `RegexSet` per file kind; repository
//! rules then look at start commands (Procfile, Dockerfile `CMD`, `package.json` start, the
//! scripts they call), manifests, lockfiles and compose files. Tests, docs and examples are not
//! the app and are skipped by most rules.
//!
//! ```no_run
//! use dozen_doctor::{audit, FailOn, Options};
//!
//! let opts = Options::new("path/to/repo");
//! let report = audit(&opts)?;
//! report.render_human(&mut std::io::stdout(), false, FailOn::default())?;
//! std::process::exit(i32::from(report.exit_code(opts.fail_on)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod baseline;
pub mod changed_since;
mod deviations;
mod error;
pub mod probe;
mod procfile;
mod render;
mod report;
pub mod rules;
mod text;
mod walk;

use std::path::PathBuf;

pub use baseline::{Baseline, BaselineState};
pub use changed_since::ChangedLines;
pub use error::DoctorError;
pub use report::{
    Acceptance, ChangedSinceSummary, FactorSummary, FailOn, Finding, Report, Severity, Status,
    factor_name, roman,
};
pub use rules::RuleInfo;

/// What to audit and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// The repository's root directory.
    pub root: PathBuf,
    /// Lowest unaccepted severity that makes [`Report::exit_code`] non-zero.
    pub fail_on: FailOn,
    /// Also start the `web` process and probe it (see [`probe`]).
    pub run: bool,
    /// The `dozen` executable used by `run`; `None` means `dozen` on `PATH`.
    pub dozen_exe: Option<PathBuf>,
    /// Files larger than this are not read (bytes).
    pub max_file_size: u64,
    /// Walker threads; 0 picks the number of CPUs.
    pub threads: usize,
    /// How long `run` waits for the web process to bind `PORT`.
    pub bind_timeout: std::time::Duration,
    /// Grace period `run` gives the web process after SIGTERM (the runner's `-t`).
    pub stop_grace: std::time::Duration,
}

impl Options {
    /// Defaults for auditing `root`: fail on errors, static audit only, 1 MiB file bound.
    pub fn new(root: impl Into<PathBuf>) -> Options {
        Options {
            root: root.into(),
            fail_on: FailOn::default(),
            run: false,
            dozen_exe: None,
            max_file_size: 1024 * 1024,
            threads: 0,
            bind_timeout: std::time::Duration::from_secs(60),
            stop_grace: std::time::Duration::from_secs(5),
        }
    }
}

/// What one file gave the walk.
enum Item {
    Finding(Finding),
    Allow(deviations::Allow),
    Fact(rules::repo::Fact),
}

/// Audit `opts.root` and return the report.
pub fn audit(opts: &Options) -> Result<Report, DoctorError> {
    let meta = std::fs::metadata(&opts.root).map_err(|cause| DoctorError::Root {
        path: opts.root.clone(),
        cause,
    })?;
    if !meta.is_dir() {
        return Err(DoctorError::NotADirectory {
            path: opts.root.clone(),
        });
    }
    let root = opts
        .root
        .canonicalize()
        .unwrap_or_else(|_| opts.root.clone());
    let engine = rules::lines::engine();
    let threads = if opts.threads == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        opts.threads
    };
    let per_file = |f: &walk::SourceFile| -> Vec<Item> {
        if f.text.starts_with(baseline::HEADER.as_bytes()) {
            return Vec::new();
        }
        let mut line_findings = engine.check(f);
        let framework = rules::framework_config(f, &mut line_findings);
        let mut items: Vec<Item> = line_findings
            .into_iter()
            .chain(framework)
            .map(Item::Finding)
            .collect();
        items.extend(deviations::allows_in(f).into_iter().map(Item::Allow));
        items.extend(rules::repo::facts(f).into_iter().map(Item::Fact));
        items
    };
    let (walked, items) = walk::walk(&root, opts.max_file_size, threads, &per_file);
    let mut findings = Vec::new();
    let mut allows = Vec::new();
    let mut facts = Vec::new();
    for item in items {
        match item {
            Item::Finding(f) => findings.push(f),
            Item::Allow(a) => allows.push(a),
            Item::Fact(f) => facts.push(f),
        }
    }
    let repo = rules::repo::Repo {
        root: &root,
        paths: &walked.paths,
        kept: &walked.kept,
        facts: &facts,
    };
    let mut repo_findings = rules::repo::check(&repo, &mut findings);
    findings.append(&mut repo_findings);
    if opts.run {
        findings.extend(probe::run(opts, &root, &walked.kept)?);
    }
    let mut bookkeeping = Vec::new();
    let devs = deviations::load(&root, &mut bookkeeping);
    deviations::apply(&mut findings, &devs, &allows, &mut bookkeeping);
    findings.append(&mut bookkeeping);
    Ok(Report::new(root, walked.scanned, findings, opts.run))
}
