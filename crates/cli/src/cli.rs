//! The command line: commands, flags and the environment variables that stand in for them.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::admin::{self, TokenAction, TokenScope};
use crate::remote::{self, AppArgs};

/// dozen: run twelve-factor apps, from a laptop to a host.
#[derive(Debug, Parser)]
#[command(name = "dozen", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// `dozen backup create|restore FILE`, the spelled-out form of `backup:create` and `backup:restore`.
#[derive(Debug, Subcommand)]
enum BackupAction {
    /// Same as `backup:create FILE`.
    Create { file: std::path::PathBuf },
    /// Same as `backup:restore FILE`.
    Restore { file: std::path::PathBuf },
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

    /// Run the server: the API, deploys and app processes (configured by the environment).
    Server,
    /// Apply the store's schema migrations (run once before `dozen server`, and after upgrades).
    Migrate,
    /// List API tokens (on the server host).
    Tokens,
    /// Create an API token (on the server host); prints it once. Without --app it is an admin
    /// token; with --app it may deploy to (or, with --scope read, only read) that one app.
    #[command(name = "tokens:create")]
    TokensCreate {
        /// A name for people: letters, digits, `_ - .`.
        name: String,
        /// The one app the token is for.
        #[arg(long, short = 'a')]
        app: Option<String>,
        /// admin (every app, tokens, server settings), deploy or read (one app); the default
        /// is admin without --app, deploy with it.
        #[arg(long)]
        scope: Option<TokenScope>,
    },
    /// Revoke an API token by id or name (on the server host).
    #[command(name = "tokens:revoke")]
    TokensRevoke { token: String },
    /// Write a backup of the server's state (store and slugs) to FILE, while it runs (on the
    /// server host).
    #[command(name = "backup:create")]
    BackupCreate { file: std::path::PathBuf },
    /// Restore a backup made by backup:create into an empty data directory (and, with
    /// DATABASE_URL, an empty database), on the server host.
    #[command(name = "backup:restore")]
    BackupRestore { file: std::path::PathBuf },
    /// Backups of the server's state: `backup create FILE`, `backup restore FILE`.
    Backup {
        #[command(subcommand)]
        action: BackupAction,
    },

    /// List apps.
    Apps(AppArgs),
    /// Create an app.
    #[command(name = "apps:create", alias = "create")]
    AppsCreate {
        /// Lower-case letters, digits and dashes, starting with a letter.
        name: String,
        #[command(flatten)]
        args: AppArgs,
    },
    /// Destroy an app: its processes, releases, config and builds.
    #[command(name = "apps:destroy", alias = "destroy")]
    AppsDestroy {
        /// Repeat the app's name to confirm.
        #[arg(long)]
        confirm: Option<String>,
        #[command(flatten)]
        args: AppArgs,
    },
    /// Show an app: live release, process types, formation.
    #[command(name = "apps:info", alias = "info")]
    AppsInfo(AppArgs),
    /// Pack this directory, upload it, build it, release it (streams the build log); with
    /// --to kubernetes, run a server release on a Kubernetes cluster.
    Deploy {
        /// The app's directory.
        #[arg(short = 'd', long = "dir", value_name = "DIR")]
        dir: Option<PathBuf>,
        #[command(flatten)]
        args: AppArgs,
        #[command(flatten)]
        kube: crate::kube::DeployArgs,
    },
    /// List builds.
    Builds(AppArgs),
    /// List releases.
    Releases(AppArgs),
    /// Show one release.
    #[command(name = "releases:info")]
    ReleasesInfo {
        /// The release, vN.
        #[arg(value_name = "vN")]
        release: String,
        #[command(flatten)]
        args: AppArgs,
    },
    /// Roll back: a new release with an earlier release's slug and config (default: the previous).
    Rollback {
        /// The release to go back to, vN.
        #[arg(value_name = "vN")]
        release: Option<String>,
        #[command(flatten)]
        args: AppArgs,
        #[command(flatten)]
        kube: crate::kube::RollbackArgs,
    },
    /// Show config vars.
    Config(AppArgs),
    /// Print one config var's value.
    #[command(name = "config:get")]
    ConfigGet {
        key: String,
        #[command(flatten)]
        args: AppArgs,
    },
    /// Set config vars (a new release, rolled out).
    #[command(name = "config:set")]
    ConfigSet {
        #[arg(required = true, value_name = "KEY=VALUE")]
        pairs: Vec<String>,
        #[command(flatten)]
        args: AppArgs,
    },
    /// Remove config vars (a new release, rolled out).
    #[command(name = "config:unset")]
    ConfigUnset {
        #[arg(required = true, value_name = "KEY")]
        keys: Vec<String>,
        #[command(flatten)]
        args: AppArgs,
    },
    /// List the app's processes: state, port, release, uptime, size, memory and CPU.
    Ps {
        #[command(flatten)]
        args: AppArgs,
        #[command(flatten)]
        on: crate::kube::OnArgs,
    },
    /// Scale process types: web=3 worker=1.
    #[command(name = "ps:scale", alias = "scale")]
    PsScale {
        #[arg(required = true, value_name = "TYPE=N")]
        changes: Vec<String>,
        #[command(flatten)]
        args: AppArgs,
        #[command(flatten)]
        on: crate::kube::OnArgs,
    },
    /// Show the size of each process type, or resize: web=2x worker=tiny (they restart).
    #[command(name = "ps:resize", visible_aliases = ["resize", "ps:type"])]
    PsResize {
        #[arg(value_name = "TYPE=SIZE")]
        changes: Vec<String>,
        #[command(flatten)]
        args: AppArgs,
    },
    /// Restart all processes, or one type.
    #[command(name = "ps:restart", alias = "restart")]
    PsRestart {
        #[arg(value_name = "TYPE")]
        type_name: Option<String>,
        #[command(flatten)]
        args: AppArgs,
    },
    /// Start a one-off in the app's live release without waiting; see its output in logs.
    #[command(name = "run:detached")]
    RunDetached {
        #[arg(
            required = true,
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "COMMAND"
        )]
        command: Vec<String>,
        #[command(flatten)]
        args: AppArgs,
    },
    /// List the app's hostnames: <app>.DOZEN_DOMAIN and custom domains.
    Domains(AppArgs),
    /// Route a custom domain to the app.
    #[command(name = "domains:add")]
    DomainsAdd {
        hostname: String,
        #[command(flatten)]
        args: AppArgs,
    },
    /// Stop routing a custom domain to the app.
    #[command(name = "domains:remove")]
    DomainsRemove {
        hostname: String,
        #[command(flatten)]
        args: AppArgs,
    },
    /// Show the app's recent log events; --tail follows live.
    Logs {
        /// Keep following new events.
        #[arg(short = 't', long)]
        tail: bool,
        /// Only this process (web.1) or type (web).
        #[arg(long = "ps", value_name = "PROCESS")]
        ps: Option<String>,
        /// app (process output) or dozen (platform events).
        #[arg(long, value_name = "SOURCE")]
        source: Option<String>,
        /// How many recent events.
        #[arg(short = 'n', long = "num", default_value_t = 100)]
        num: usize,
        #[command(flatten)]
        args: AppArgs,
        #[command(flatten)]
        on: crate::kube::OnArgs,
    },
    /// Backing services (add-ons).
    #[command(flatten)]
    Addons(remote::AddonCommand),
    /// Log drains: the app's log stream sent to syslog or HTTPS receivers.
    #[command(flatten)]
    Drains(remote::DrainCommand),
    /// Backups of PostgreSQL and MySQL add-ons, now and daily.
    #[command(flatten)]
    Backups(remote::BackupCommand),
    /// Write a release beyond one host: Kubernetes manifests or systemd units.
    #[command(subcommand)]
    Export(crate::export::ExportTarget),
    /// Build an OCI image (--oci DIR) of this directory, or of a server release's slug, on a
    /// stack image.
    Build(crate::export::BuildArgs),

    /// Add a git remote (named dozen) for the app, so that `git push dozen main` deploys; git
    /// gets the API token from `dozen git:credentials`, never from the remote's URL.
    #[command(name = "git:remote")]
    GitRemote {
        /// The remote's name.
        #[arg(short = 'r', long = "remote", default_value = "dozen")]
        remote: String,
        #[command(flatten)]
        args: AppArgs,
    },
    /// A git credential helper: answers git with DOZEN_API_TOKEN for DOZEN_URL's host only
    /// (git:remote sets it up; by hand: `git config credential.helper '!dozen git:credentials'`).
    #[command(name = "git:credentials")]
    GitCredentials {
        /// What git asks: get (store and erase do nothing).
        #[arg(default_value = "get")]
        operation: String,
    },
    /// The pre-receive hook of a server's app repository (run by git on the server).
    #[command(name = "git-hook", hide = true)]
    GitHook {
        /// The hook: pre-receive.
        hook: String,
    },
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
    /// Run in this app's live release on the dozen server instead of locally (also DOZEN_APP).
    #[arg(short = 'a', long = "app", env = "DOZEN_APP")]
    pub app: Option<String>,
    /// The command and its arguments, or the name of a Procfile process type.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<String>,
    #[command(flatten)]
    pub kube: crate::kube::RunOnArgs,
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

impl Cli {
    /// True for the commands that supervise processes (and must outlive a closed stdout).
    pub fn supervises(&self) -> bool {
        matches!(self.command, Command::Start(_) | Command::Server)
    }
}

/// The command line of `dozen start` alone.
///
/// `dozen start` stays resident for as long as the app runs, so it parses with a command tree
/// that holds only itself: building the full tree touches code for every other command, and
/// those pages would stay in the supervisor's memory. Help and errors read the same as through
/// [`Cli`].
#[derive(Debug, Parser)]
#[command(name = "dozen", version, about, propagate_version = true)]
pub struct StartCli {
    #[command(subcommand)]
    command: StartOnly,
}

#[derive(Debug, Subcommand)]
enum StartOnly {
    /// Run the Procfile's processes with the .env environment; all of them, or the named types.
    Start(StartArgs),
}

impl StartCli {
    /// Whether this command line is `dozen start …` and can use [`StartCli`].
    pub fn applies(mut args: impl Iterator<Item = std::ffi::OsString>) -> bool {
        args.nth(1).is_some_and(|a| a == "start")
    }

    /// Run it.
    pub fn dispatch(self) -> anyhow::Result<ExitCode> {
        let StartOnly::Start(args) = self.command;
        crate::start::start(args)
    }
}

/// Run the chosen command.
pub fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Start(args) => crate::start::start(args),
        Command::Run(args) if args.kube.on.is_some() => crate::kube::run_args(args),
        Command::Run(args) => match args.app.clone() {
            Some(app) => remote::run(
                &args.command,
                false,
                AppArgs {
                    app: Some(app),
                    json: false,
                },
            ),
            None => crate::run::run(args),
        },
        Command::Check(args) => crate::start::check(args),
        Command::Doctor(args) => crate::doctor::run(args),
        Command::Server => admin::server(),
        Command::Migrate => admin::migrate(),
        Command::Tokens => admin::tokens(TokenAction::List),
        Command::TokensCreate { name, app, scope } => {
            admin::tokens(TokenAction::Create { name, app, scope })
        }
        Command::TokensRevoke { token } => admin::tokens(TokenAction::Revoke(token)),
        Command::BackupCreate { file }
        | Command::Backup {
            action: BackupAction::Create { file },
        } => admin::backup_create(&file),
        Command::BackupRestore { file }
        | Command::Backup {
            action: BackupAction::Restore { file },
        } => admin::backup_restore(&file),
        Command::Apps(args) => remote::apps(args),
        Command::AppsCreate { name, args } => remote::apps_create(&name, args),
        Command::AppsDestroy { confirm, args } => remote::apps_destroy(confirm.as_deref(), args),
        Command::AppsInfo(args) => remote::apps_info(args),
        Command::Deploy { dir, args, kube } => crate::kube::deploy(dir, args, kube),
        Command::Builds(args) => remote::builds(args),
        Command::Releases(args) => remote::releases(args),
        Command::ReleasesInfo { release, args } => remote::releases_info(&release, args),
        Command::Rollback {
            release,
            args,
            kube,
        } => crate::kube::rollback(release.as_deref(), args, kube),
        Command::Config(args) => remote::config(args),
        Command::ConfigGet { key, args } => remote::config_get(&key, args),
        Command::ConfigSet { pairs, args } => remote::config_set(&pairs, args),
        Command::ConfigUnset { keys, args } => remote::config_unset(&keys, args),
        Command::Ps { args, on } => crate::kube::ps(args, on),
        Command::PsScale { changes, args, on } => crate::kube::ps_scale(&changes, args, on),
        Command::PsRestart { type_name, args } => remote::ps_restart(type_name.as_deref(), args),
        Command::PsResize { changes, args } => remote::ps_resize(&changes, args),
        Command::RunDetached { command, args } => remote::run(&command, true, args),
        Command::Domains(args) => remote::domains(args),
        Command::DomainsAdd { hostname, args } => remote::domains_change(&hostname, true, args),
        Command::DomainsRemove { hostname, args } => remote::domains_change(&hostname, false, args),
        Command::Logs {
            tail,
            ps,
            source,
            num,
            args,
            on,
        } => crate::kube::logs(tail, ps.as_deref(), source.as_deref(), num, args, on),
        Command::Addons(command) => remote::addons::run(command),
        Command::Drains(command) => remote::drains::run(command),
        Command::Backups(command) => remote::backups::run(command),
        Command::Export(target) => crate::export::export(target),
        Command::Build(args) => crate::export::build(args),
        Command::GitRemote { remote, args } => crate::git::remote(&remote, args),
        Command::GitCredentials { operation } => crate::git::credentials(&operation),
        Command::GitHook { hook } => crate::git::hook(&hook),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_well_formed() {
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }
}
