//! The command line: commands, flags and the environment variables that stand in for them.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// dozen: run twelve-factor apps, from a laptop to a host.
#[derive(Debug, Parser)]
#[command(name = "dozen", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the Procfile's processes with the .env environment; all of them, or the named types.
    Start(StartArgs),
    /// Run one command (or a Procfile process type) once, with the same environment.
    Run(RunArgs),
    /// Check the Procfile and env files; print the process types and the formation.
    Check(CheckArgs),
    /// Audit a repository against the twelve factors.
    Doctor(crate::doctor::DoctorArgs),
}

/// Where the app is and how to set up its processes (shared by start, run and check).
#[derive(Debug, Args, Clone)]
pub struct ProjectArgs {
    /// The Procfile, relative to the root.
    #[arg(
        short = 'f',
        long = "procfile",
        value_name = "FILE",
        default_value = "Procfile"
    )]
    pub procfile: PathBuf,
    /// Env files, relative to the root; later files override earlier ones. Default: .env when
    /// present.
    #[arg(
        short = 'e',
        long = "env",
        value_name = "FILE[,FILE...]",
        value_delimiter = ','
    )]
    pub env: Vec<PathBuf>,
    /// The app's directory: processes run here, and -f/-e are found here.
    #[arg(short = 'd', long = "root", value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// The first port: each process type gets a block of 100 in Procfile order.
    #[arg(
        short = 'p',
        long = "port",
        value_name = "BASE",
        env = "PORT",
        default_value_t = 5000
    )]
    pub port: u16,
}

/// How dozen's output looks.
#[derive(Debug, Args, Clone)]
pub struct OutputArgs {
    /// One JSON object per line (also DOZEN_LOG_FORMAT=json).
    #[arg(long)]
    pub json: bool,
    /// No colours (also NO_COLOR).
    #[arg(long)]
    pub no_color: bool,
    /// No time at the start of each line.
    #[arg(long)]
    pub no_timestamp: bool,
}

/// When a process is restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Restart {
    /// Never: the first process to exit stops all of them (foreman's behaviour).
    Never,
    /// After a non-zero exit or a crash.
    OnFailure,
    /// After every exit.
    Always,
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// Process types to run (default: all).
    #[arg(value_name = "PROCESS")]
    pub only: Vec<String>,
    #[command(flatten)]
    pub project: ProjectArgs,
    /// How many of each type: web=2,worker=1; all=N sets the rest.
    #[arg(
        short = 'm',
        long = "formation",
        value_name = "FORMATION",
        alias = "concurrency",
        short_alias = 'c'
    )]
    pub formation: Option<String>,
    /// Seconds a process gets to exit after SIGTERM, before SIGKILL.
    #[arg(
        short = 't',
        long = "timeout",
        value_name = "SECONDS",
        default_value_t = 5.0
    )]
    pub timeout: f64,
    /// Restart processes that exit.
    #[arg(long, value_enum, default_value_t = Restart::Never)]
    pub restart: Restart,
    /// Seconds before the first restart; doubles with each failure, up to 30 s.
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    pub backoff: f64,
    /// Give up on a process after this many restarts within --crash-window.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub crash_limit: u32,
    /// The window, in seconds, for --crash-limit.
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0)]
    pub crash_window: f64,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// The command and its arguments, or the name of a Procfile process type.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// How many of each type: web=2,worker=1; all=N sets the rest.
    #[arg(short = 'm', long = "formation", value_name = "FORMATION")]
    pub formation: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Run the chosen command.
pub fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Start(args) => crate::start::start(args),
        Command::Run(args) => crate::run::run(args),
        Command::Check(args) => crate::start::check(args),
        Command::Doctor(args) => crate::doctor::run(args),
    }
}
