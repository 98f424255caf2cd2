//! The rule catalogue: every rule id with its factor, default severity, reason and fix.
//!
//! Checks live beside it: `lines` runs per-file line patterns inside the parallel walk,
//! `repo` looks at the repository as a whole (Procfile, Dockerfile, manifests, compose files),
//! `app` holds the findings that depend on more than one file (a Django settings module named by
//! `manage.py`, an env file that the code loads), fed by the framework-aware readers `python`,
//! `node`, `golang` and `rustlang`; `runtime` follows start commands into `package.json` scripts and
//! reads Dockerfile installs.

/// `cached!(name, "pattern")`: `fn name() -> &'static Regex`, compiled on first use and kept
/// (defined before the modules below, so each of them can use it).
macro_rules! cached {
    ($vis:vis $name:ident, $pat:expr) => {
        $vis fn $name() -> &'static ::regex::bytes::Regex {
            static R: ::std::sync::OnceLock<::regex::bytes::Regex> = ::std::sync::OnceLock::new();
            R.get_or_init(|| crate::text::re($pat))
        }
    };
}

pub(crate) mod app;
mod golang;
mod laravel;
pub(crate) mod lines;
mod node;
mod python;
mod rails;
pub(crate) mod repo;
mod runtime;
mod rustlang;
mod spring;

/// Framework config files read as the framework reads them (Spring `application*.properties`,
/// Rails `config/*.yml` and `production.rb`, Laravel `config/*.php`): the file's generic line
/// findings that the reader decides otherwise about are dropped, and its own findings added.
pub(crate) fn framework_config(
    file: &crate::walk::SourceFile,
    line_findings: &mut Vec<crate::report::Finding>,
) -> Vec<crate::report::Finding> {
    line_findings.retain(|f| {
        !(spring::drops(f, &file.text) || rails::drops(f, Some(&file.text)) || laravel::drops(f))
    });
    let mut out = spring::check(file);
    out.extend(rails::check(file));
    out.extend(laravel::check(file));
    out
}

use crate::report::Severity;

/// What a rule is about. The `why` and `fix` texts are copied into every finding.
#[derive(Debug, Clone, Copy)]
pub struct RuleInfo {
    /// Stable id, `TFnn-NAME`.
    pub id: &'static str,
    /// Factor 1..=12, 0 for deviation bookkeeping.
    pub factor: u8,
    /// Default severity.
    pub severity: Severity,
    /// One-line title.
    pub title: &'static str,
    /// Why it breaks the factor.
    pub why: &'static str,
    /// What to do instead.
    pub fix: &'static str,
}

use Severity::{Error as E, Info as I, Warning as W};

macro_rules! rule {
    ($id:literal, $f:literal, $sev:expr, $title:literal, $why:literal, $fix:literal) => {
        RuleInfo {
            id: $id,
            factor: $f,
            severity: $sev,
            title: $title,
            why: $why,
            fix: $fix,
        }
    };
}

/// Every rule dozen doctor knows, in factor order.
pub static RULES: &[RuleInfo] = &[
    // I. Codebase
    rule!(
        "TF01-NO-VCS",
        1,
        W,
        "not a version-controlled codebase",
        "a twelve-factor app is one codebase tracked in revision control; without it there is no way to say which code a deploy runs",
        "put the repository under git (`git init`) and deploy from commits"
    ),
    rule!(
        "TF01-SHARED-MANIFEST",
        1,
        W,
        "several apps share one dependency manifest",
        "two apps in one repository that share a single manifest cannot be built, versioned or deployed independently",
        "give each app its own directory with its own manifest (or split them into separate repositories and share code as libraries)"
    ),
    // II. Dependencies
    rule!(
        "TF02-NO-MANIFEST",
        2,
        W,
        "no dependency manifest for the app's language",
        "dependencies that are not declared have to be present on the machine by luck",
        "declare dependencies in the language's manifest (requirements.txt/pyproject.toml, package.json, Gemfile, go.mod, Cargo.toml, composer.json, pom.xml)"
    ),
    rule!(
        "TF02-NO-LOCKFILE",
        2,
        W,
        "dependency manifest without a lockfile",
        "without a lockfile every build may resolve different versions, so two deploys of the same commit can differ",
        "commit the lockfile your package manager writes (package-lock.json, yarn.lock, Gemfile.lock, composer.lock, Pipfile.lock, poetry.lock, go.sum, Cargo.lock)"
    ),
    rule!(
        "TF02-UNPINNED-DEP",
        2,
        W,
        "unpinned dependency versions",
        "ranges, `*`, `latest` and untagged base images resolve to whatever is newest at build time",
        "pin exact versions (`pkg==1.2.3`, a lockfile, `FROM image:1.2` or a digest)"
    ),
    rule!(
        "TF02-RUNTIME-INSTALL",
        2,
        E,
        "dependencies installed when the app starts",
        "installing packages in a start command makes start-up slow and dependent on a registry, and each process may get different versions",
        "install dependencies in the build stage (buildpack, Dockerfile RUN) and start only the app"
    ),
    rule!(
        "TF02-UNDECLARED-TOOL",
        2,
        W,
        "system tool used but declared nowhere",
        "the app shells out to a program that no manifest, Aptfile or Dockerfile installs; it works only where someone installed it by hand",
        "declare the tool (Aptfile, a Dockerfile `apt-get install`, nix, or a vendored/static package)"
    ),
    rule!(
        "TF02-UNDECLARED-DEP",
        2,
        W,
        "packages installed outside the dependency manifest",
        "a Dockerfile that installs named packages beside the app's manifest adds dependencies that the manifest and its lockfile do not know: local runs and other builds lack them, and their versions drift",
        "add the packages to the manifest (requirements.txt, pyproject.toml, package.json, Gemfile) and install only from it (`pip install -r requirements.txt`, `npm ci`)"
    ),
    // III. Config
    rule!(
        "TF03-SECRET-IN-CODE",
        3,
        E,
        "secret or credential in the code",
        "a credential committed to the repository is visible to everyone with the code and cannot differ per deploy",
        "read it from an environment variable (`os.environ[\"API_KEY\"]`, `process.env.API_KEY`) and rotate the leaked value"
    ),
    rule!(
        "TF03-SECRET-FALLBACK",
        3,
        W,
        "secret read from the environment with a literal fallback",
        "a literal default for a secret is a committed credential that production silently uses whenever the variable is unset",
        "read the variable without a default and fail at start when it is missing (`os.environ[\"SECRET_KEY\"]`, `process.env.JWT_SECRET ?? throw`, `env::var(\"KEY\")?`)"
    ),
    rule!(
        "TF03-PRIVATE-KEY",
        3,
        E,
        "private key committed",
        "a private key in the repository is a credential shared with everyone who can read the code",
        "remove it from the repository (and its history), rotate it, and pass it in through the environment or a secret store"
    ),
    rule!(
        "TF03-CREDENTIALS-IN-URL",
        3,
        E,
        "connection string with a password",
        "a URL with an embedded password puts a credential and a deploy-specific address in the code",
        "read the whole URL from the environment (`DATABASE_URL`, `REDIS_URL`)"
    ),
    rule!(
        "TF03-ENV-FILE-COMMITTED",
        3,
        E,
        ".env file with real secrets in the repository",
        "a .env file that is not ignored ends up committed with real credentials",
        "add `.env` to .gitignore, commit a `.env.example` with placeholder values instead, and rotate what leaked"
    ),
    rule!(
        "TF03-ENV-FILE-LOADED",
        3,
        W,
        "the app loads a committed env file at start",
        "an env file in the repository that the app reads at start is config stored in the code: every deploy gets its values unless it overrides each one",
        "let the environment provide config; load a local `.env` only in development and keep it out of the repository (`.gitignore`), with `.env.example` as documentation only"
    ),
    rule!(
        "TF03-PUBLIC-HOST-IN-CODE",
        3,
        W,
        "the deploy's public hostname hard-coded",
        "the host that mail links and asset URLs point at differs per deploy; written into the production config, a staging or review deploy links to the production site",
        "read it from the environment (`host: ENV.fetch(\"APP_HOST\")`, `asset_host = ENV[\"ASSET_HOST\"]`)"
    ),
    rule!(
        "TF03-PER-ENV-CONFIG",
        3,
        W,
        "per-environment config file",
        "config grouped into named environments (production, staging) does not scale to many deploys and lives in the code",
        "keep one config that reads each value from its own environment variable"
    ),
    rule!(
        "TF03-ENV-NAME-BRANCH",
        3,
        I,
        "code branches on the environment's name",
        "behaviour switched by an environment name hides config in the code; a new deploy needs a code change",
        "switch on the specific setting instead (e.g. `CACHE_URL`, `LOG_LEVEL`), each from its own variable"
    ),
    rule!(
        "TF03-HARDCODED-DEBUG",
        3,
        W,
        "debug mode hard-coded",
        "debug on or off is per-deploy config; hard-coded it ships to production",
        "read it from the environment, defaulting to off (`DEBUG = os.environ.get(\"DEBUG\") == \"1\"`)"
    ),
    rule!(
        "TF03-K8S-SECRET",
        3,
        E,
        "Kubernetes Secret with values committed",
        "a Secret manifest with data in the repository is a committed credential (base64 is not encryption)",
        "create the Secret out of band (kubectl, sealed-secrets, external-secrets) and commit only a reference"
    ),
    // IV. Backing services
    rule!(
        "TF04-HARDCODED-SERVICE-ADDR",
        4,
        W,
        "backing service address hard-coded",
        "a database, cache, queue or mail server at a fixed host:port cannot be swapped without a code change",
        "read a URL from the environment (`DATABASE_URL`, `REDIS_URL`, `SMTP_URL`)"
    ),
    rule!(
        "TF04-SERVICE-URL-IN-CODE",
        4,
        W,
        "backing service URL in code or committed config",
        "a connection URL written into the code ties every deploy to one resource",
        "read the URL from the environment; keep local defaults in `.env` (ignored) or `.env.example`"
    ),
    rule!(
        "TF04-HARDCODED-SERVICE-HOST",
        4,
        W,
        "backing service host setting hard-coded",
        "a host setting for a database, cache or mail server fixed in the code binds the app to one resource",
        "read the host (better: a whole URL) from the environment"
    ),
    rule!(
        "TF04-SQLITE-IN-PROD",
        4,
        W,
        "SQLite as the production database",
        "a SQLite file is not an attached resource: it lives on one process's disk, cannot be swapped by config, is lost when the process is replaced and cannot be shared by a second process",
        "attach a database server as a backing service and read its URL from the environment (`DATABASE_URL`)"
    ),
    // V. Build, release, run
    rule!(
        "TF05-BUILD-AT-START",
        5,
        E,
        "build step runs at start-up",
        "compiling or bundling when a process starts mixes the build and run stages: slow restarts, and each process may run different code",
        "build once in the build stage (buildpack, Dockerfile RUN) and start the built artefact"
    ),
    rule!(
        "TF05-DEV-SERVER",
        5,
        W,
        "development server or code reloader as the start command",
        "a reloader rebuilds and changes the running code; the run stage should run exactly the released build",
        "start a production server (gunicorn, uvicorn without --reload, puma, node, a compiled binary)"
    ),
    // VI. Processes
    rule!(
        "TF06-LOCAL-UPLOADS",
        6,
        W,
        "uploads or state written to the local disk",
        "files on one process's disk vanish on restart and are invisible to the other processes",
        "store uploads in a backing service (object storage, a database)"
    ),
    rule!(
        "TF06-MEMORY-SESSIONS",
        6,
        W,
        "in-memory or on-disk session store",
        "sessions kept in one process are lost on restart and break when a second process serves the user",
        "keep sessions in a backing store (Redis, the database) or in signed cookies"
    ),
    rule!(
        "TF06-STICKY-SESSIONS",
        6,
        W,
        "sticky sessions",
        "pinning a user to one process means that process holds state the others lack",
        "make processes stateless and remove the affinity"
    ),
    // VII. Port binding
    rule!(
        "TF07-FIXED-PORT",
        7,
        E,
        "web process binds a fixed port",
        "the platform assigns the port in `PORT`; a fixed port collides with other processes and is not routed",
        "bind the port from the `PORT` environment variable (`--bind 0.0.0.0:$PORT`, `process.env.PORT`)"
    ),
    rule!(
        "TF07-LOCALHOST-BIND",
        7,
        W,
        "web process binds only localhost",
        "a server on 127.0.0.1 is unreachable from a router or another container",
        "bind 0.0.0.0 (or the address the platform gives) on `PORT`"
    ),
    // VIII. Concurrency
    rule!(
        "TF08-DAEMONIZE",
        8,
        E,
        "process daemonises itself",
        "a daemon detaches from its supervisor, so the platform can neither watch, scale nor stop it",
        "run in the foreground and let the process manager (dozen, systemd, Kubernetes) supervise"
    ),
    rule!(
        "TF08-PID-FILE",
        8,
        W,
        "writes a pid file",
        "pid files are for self-managed daemons; under a process manager they go stale and block restarts",
        "drop the pid file; the supervisor knows the pid"
    ),
    rule!(
        "TF08-PROCFILE-INVALID",
        8,
        E,
        "Procfile that dozen cannot run",
        "the Procfile is how the app declares its process types; a malformed one cannot be started or scaled",
        "fix the line the message names: one `name: command` per line, unique names of letters, digits, `_` and `-`"
    ),
    rule!(
        "TF08-IN-PROCESS-SCHEDULER",
        8,
        W,
        "background jobs scheduled inside the only process type",
        "a scheduler started inside the web process runs once per web process and scales with it; the Procfile names a single type, so the work has nowhere else to go",
        "run the jobs as their own process type (`clock:` or `worker:` in the Procfile) and scale it separately"
    ),
    rule!(
        "TF08-PROCESS-MANAGER",
        8,
        W,
        "a process manager inside the app's start command",
        "starting several programs under supervisord, pm2 or concurrently hides the process types from the platform, which can then not scale them separately",
        "declare each program as its own process type in the Procfile and scale them with the formation"
    ),
    // IX. Disposability
    rule!(
        "TF09-SHELL-FORM-CMD",
        9,
        W,
        "shell-form CMD/ENTRYPOINT swallows SIGTERM",
        "`CMD npm start` runs under `/bin/sh -c`, which does not forward SIGTERM: the app is killed after the grace period instead of shutting down",
        "use the exec form `CMD [\"node\", \"server.js\"]` or `exec` the server from the script"
    ),
    rule!(
        "TF09-SCRIPT-NO-EXEC",
        9,
        W,
        "start script runs the server without exec",
        "the shell stays the main process and does not pass SIGTERM on, so the server is killed instead of stopped",
        "start the server with `exec` as the script's last command"
    ),
    rule!(
        "TF09-NO-SIGTERM-HANDLER",
        9,
        W,
        "server without SIGTERM handling",
        "this runtime exits at once on SIGTERM, dropping requests in flight; it does not drain by itself",
        "handle SIGTERM: stop accepting, finish in-flight requests, then exit (`server.close()`, `srv.Shutdown(ctx)`, `with_graceful_shutdown`)"
    ),
    rule!(
        "TF09-SLEEP-AT-START",
        9,
        W,
        "start-up sleeps",
        "a fixed sleep makes every start and restart slower and still races with what it waits for",
        "start at once; retry connections with backoff inside the app"
    ),
    // X. Dev/prod parity
    rule!(
        "TF10-SQLITE-IN-DEV",
        10,
        W,
        "a different database in development than in production",
        "SQLite (or H2) locally and PostgreSQL/MySQL in production hides bugs until production",
        "run the same database kind locally (a container via compose, or a local server)"
    ),
    rule!(
        "TF10-COMPOSE-DRIFT",
        10,
        W,
        "development services differ from production",
        "a backing service whose kind or version differs between the compose files of development and production lets bugs through",
        "use the same image and version in every environment"
    ),
    // XI. Logs
    rule!(
        "TF11-LOG-TO-FILE",
        11,
        W,
        "logs written to a file",
        "a twelve-factor app writes its event stream to stdout/stderr; files on a process's disk are lost and unseen by the platform",
        "log to stdout/stderr (StreamHandler, console transport, ConsoleAppender, `Logger.new($stdout)`)"
    ),
    rule!(
        "TF11-LOG-ROTATION",
        11,
        W,
        "log rotation configured in the app",
        "rotating log files is the job of the environment that routes the stream, not of the app",
        "write the stream to stdout and remove the rotation"
    ),
    rule!(
        "TF11-LOG-REDIRECT",
        11,
        W,
        "start command sends output to a file",
        "redirecting the event stream to a file hides it from the platform's log routing",
        "leave stdout/stderr alone; use `-` for log-file options (`--access-logfile -`)"
    ),
    // XII. Admin processes
    rule!(
        "TF12-MIGRATE-AT-START",
        12,
        W,
        "migrations run as part of the web start-up",
        "schema changes run by every web process race each other and cannot run on their own",
        "run migrations as a one-off admin process (`release:` process type, `dozen run -- ./manage.py migrate`)"
    ),
    rule!(
        "TF12-ADMIN-IN-REQUEST",
        12,
        W,
        "admin task triggered from a request handler",
        "running management commands inside web requests ties admin work to the web process and its timeouts",
        "run admin tasks as one-off processes in the release's environment"
    ),
    rule!(
        "TF12-CRON-IN-CONTAINER",
        12,
        W,
        "cron inside the app's container",
        "a cron daemon inside the app image runs admin tasks outside the platform's view, once per container",
        "run scheduled tasks as one-off processes from the platform's scheduler (a `clock`/`scheduler` process type, Kubernetes CronJob)"
    ),
    // Runtime probes (--run)
    rule!(
        "TF07-RUN-PORT-NOT-BOUND",
        7,
        E,
        "web process did not bind PORT",
        "the web process did not listen on the port given in `PORT` within 60 seconds",
        "bind `PORT` from the environment"
    ),
    rule!(
        "TF07-RUN-OTHER-PORT",
        7,
        E,
        "web process listens on another port",
        "the web process listens on a port it was not given",
        "bind only `PORT`"
    ),
    rule!(
        "TF07-RUN-NO-HTTP",
        7,
        W,
        "web process does not answer HTTP",
        "a web process bound to PORT should answer HTTP so the router can use it",
        "serve HTTP on `PORT`"
    ),
    rule!(
        "TF09-RUN-EXITED",
        9,
        E,
        "web process exited during the probe",
        "a web process should keep running until it is told to stop",
        "look at its output in the report and fix the crash"
    ),
    rule!(
        "TF09-RUN-SLOW-STOP",
        9,
        E,
        "web process ignored SIGTERM",
        "the process did not exit within the grace period after SIGTERM and had to be killed",
        "handle SIGTERM: stop accepting work, finish, exit"
    ),
    rule!(
        "TF11-RUN-LOG-FILE",
        11,
        E,
        "web process wrote a log file",
        "a log file appeared or changed under the app while it ran",
        "write logs to stdout/stderr"
    ),
    rule!(
        "TF00-RUN-SKIPPED",
        0,
        I,
        "runtime probes skipped",
        "`--run` needs a Procfile with a `web` process type and the dozen binary",
        "add a `web:` line to the Procfile"
    ),
    // Deviations bookkeeping
    rule!(
        "TF00-DEVIATION-UNJUSTIFIED",
        0,
        E,
        "deviation without a justification",
        "every accepted deviation must say why; an unexplained one accepts nothing",
        "add `justification = \"...\"` to the entry"
    ),
    rule!(
        "TF00-DEVIATION-STALE",
        0,
        W,
        "deviation matches no finding",
        "a deviation that no longer matches anything hides future findings under an old excuse",
        "remove the entry or narrow its `path`"
    ),
    rule!(
        "TF00-DEVIATION-UNKNOWN-RULE",
        0,
        E,
        "deviation names an unknown rule",
        "the rule id does not exist (a typo accepts nothing)",
        "use a rule id from `dozen doctor --format json` output or the README"
    ),
    rule!(
        "TF00-DEVIATIONS-INVALID",
        0,
        E,
        "deviations file cannot be read",
        "a broken deviations file accepts nothing",
        "fix the TOML; entries are `[[deviation]]` tables with `rule`, optional `path` and `justification`"
    ),
    rule!(
        "TF00-ALLOW-WITHOUT-REASON",
        0,
        E,
        "inline allow comment without a reason",
        "an inline suppression must say why, like a deviation",
        "write `dozen-doctor: allow <RULE-ID> because <reason>`"
    ),
    rule!(
        "TF00-ALLOW-STALE",
        0,
        W,
        "inline allow comment matches no finding",
        "a suppression that no longer suppresses anything should go",
        "remove the comment"
    ),
];

/// The catalogue entry of `id`.
pub fn lookup(id: &str) -> Option<&'static RuleInfo> {
    RULES.iter().find(|r| r.id == id)
}

/// The catalogue entry of an id that is known to exist (an internal constant).
pub(crate) fn rule(id: &str) -> &'static RuleInfo {
    match lookup(id) {
        Some(r) => r,
        None => unreachable_rule(id),
    }
}

#[cold]
fn unreachable_rule(id: &str) -> ! {
    // Only reachable through a typo in this crate's own rule ids; the catalogue test catches it.
    panic!("rule {id} is not in the catalogue")
}

/// Rules that the static audit (not `--run`, not bookkeeping) can report.
pub fn static_rules() -> impl Iterator<Item = &'static RuleInfo> {
    RULES
        .iter()
        .filter(|r| r.factor != 0 && !r.id.contains("-RUN-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_well_formed() {
        let mut seen = std::collections::HashSet::new();
        for r in RULES {
            assert!(seen.insert(r.id), "duplicate {}", r.id);
            let prefix = format!("TF{:02}-", r.factor);
            assert!(
                r.id.starts_with(&prefix),
                "{} must start with {prefix}",
                r.id
            );
            assert!(
                r.id.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
            );
        }
    }

    #[test]
    fn every_factor_has_a_static_rule() {
        for f in 1..=12 {
            assert!(
                static_rules().any(|r| r.factor == f),
                "factor {f} has no rule"
            );
        }
    }
}
