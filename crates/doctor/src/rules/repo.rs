//! Repository rules: the ones that need more than one line of one file — start commands from
//! Procfiles, Dockerfiles, package.json and the scripts they call; manifests and lockfiles; paths;
//! compose files; and the post-filters of some line rules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::OnceLock;

use regex::bytes::Regex;

use super::lines::TOOL_CALL_PATTERN;
use super::rule;
use crate::procfile;
use crate::report::{Finding, Severity};
use crate::text::{self, looks_secret, re};
use crate::walk::{Kind, SourceFile, classify};

/// Something a file showed that a repository rule needs (collected during the walk).
#[derive(Debug, Clone)]
pub(crate) enum Fact {
    /// A server started in code: language, file, line, evidence.
    Server {
        lang: Lang,
        rel: String,
        line: u32,
        evidence: String,
    },
    /// Code that handles SIGTERM (or uses a library that does) in this language.
    SignalHandling(Lang),
    /// What the framework-aware rules saw (see `app`).
    App(super::app::AppFact),
}

/// Languages whose servers die at once on SIGTERM unless the code says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lang {
    Node,
    Go,
    Rust,
}

cached!(
    node_server_re,
    r"\b(?:express\(\)|https?\.createServer\(|fastify\(|Fastify\(|new\s+Koa\(|new\s+Hapi\.Server|Hapi\.server\()"
);
cached!(node_listen_re, r"\.listen\(");
cached!(
    node_signal_re,
    r"SIGTERM|http-terminator|\bstoppable\b|@godaddy/terminus|lightship|close-with-grace|enableShutdownHooks"
);
cached!(
    go_server_re,
    r#"\bListenAndServe(?:TLS)?\(|\.Run\(\s*(?:":|addr|fmt\.)|\be\.Start\(|\bapp\.Listen\("#
);
cached!(
    go_signal_re,
    r"signal\.Notify|signal\.NotifyContext|syscall\.SIGTERM|\.Shutdown\("
);
cached!(
    rust_server_re,
    r"\baxum::serve\(|\bwarp::serve\(|\bhyper::Server::bind\(|\bServer::bind\(|\bpoem::Server::new\("
);
cached!(
    rust_signal_re,
    r"with_graceful_shutdown|SignalKind::terminate|signal::ctrl_c|\bctrlc::|signal_hook|shutdown_signal|graceful_shutdown"
);

/// Facts from one file (called in the walker's threads).
pub(crate) fn facts(file: &SourceFile) -> Vec<Fact> {
    let mut out = Vec::new();
    // Helper scripts and tools may serve HTTP without being the app's web process.
    let tooling = ["scripts/", "script/", "tools/", "tool/", "hack/", "dev/"]
        .iter()
        .any(|d| file.rel.starts_with(d) || file.rel.contains(&format!("/{d}")));
    out.extend(super::app::facts(file).into_iter().map(Fact::App));
    if !file.ctx.is_app() || tooling {
        return out;
    }
    let t = &file.text[..];
    let mut server = |lang: Lang, re_start: &Regex| {
        if let Some(m) = re_start.find(t) {
            let (line, text) = text::line_at(t, m.start());
            out.push(Fact::Server {
                lang,
                rel: file.rel.clone(),
                line,
                evidence: String::from_utf8_lossy(text).into_owned(),
            });
        }
    };
    match file.kind {
        Kind::JavaScript => {
            if node_server_re().is_match(t) {
                server(Lang::Node, node_listen_re());
            }
            if node_signal_re().is_match(t) {
                out.push(Fact::SignalHandling(Lang::Node));
            }
        }
        Kind::Go => {
            server(Lang::Go, go_server_re());
            if go_signal_re().is_match(t) {
                out.push(Fact::SignalHandling(Lang::Go));
            }
        }
        Kind::Rust => {
            server(Lang::Rust, rust_server_re());
            if rust_signal_re().is_match(t) {
                out.push(Fact::SignalHandling(Lang::Rust));
            }
        }
        _ => {}
    }
    out
}

/// Where a start command comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Origin {
    Procfile,
    Dockerfile,
    PackageJson,
    Script,
}

#[derive(Debug, Clone)]
pub(super) struct StartCmd {
    pub(super) file: String,
    pub(super) line: u32,
    pub(super) text: String,
    pub(super) origin: Origin,
    /// The process type (`web`, `worker`...); Dockerfile, package.json and scripts count as web.
    pub(super) ptype: String,
}

impl StartCmd {
    pub(super) fn is_web(&self) -> bool {
        self.ptype == "web"
    }
}

/// What the repository rules look at.
pub(crate) struct Repo<'a> {
    pub root: &'a Path,
    pub paths: &'a [String],
    pub kept: &'a [SourceFile],
    pub facts: &'a [Fact],
}

impl Repo<'_> {
    pub(super) fn app_files(&self) -> impl Iterator<Item = &SourceFile> {
        self.kept.iter().filter(|f| f.ctx.is_app())
    }
    pub(super) fn has_path(&self, p: &str) -> bool {
        self.paths.binary_search_by(|x| x.as_str().cmp(p)).is_ok()
    }
    pub(super) fn text_of(f: &SourceFile) -> String {
        String::from_utf8_lossy(&f.text).into_owned()
    }
}

pub(super) fn dir_of(rel: &str) -> &str {
    rel.rsplit_once('/').map_or("", |(d, _)| d)
}

pub(super) fn name_of(rel: &str) -> &str {
    rel.rsplit('/').next().unwrap_or(rel)
}

pub(super) fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

/// Is `name` present in `dir` or one of its ancestors (up to the root)?
fn in_dir_or_ancestors(repo: &Repo, dir: &str, names: &[&str]) -> bool {
    let mut d = dir.to_owned();
    loop {
        if names.iter().any(|n| repo.has_path(&join(&d, n))) {
            return true;
        }
        if d.is_empty() {
            return false;
        }
        d = dir_of(&d).to_owned();
    }
}

/// A plain `Dockerfile` beside a `Dockerfile.prod` is the development one (whole-app: the
/// production image is built from its sibling).
pub(super) fn has_prod_sibling(repo: &Repo, rel: &str) -> bool {
    name_of(rel) == "Dockerfile"
        && [
            "Dockerfile.prod",
            "Dockerfile.production",
            "prod.Dockerfile",
            "production.Dockerfile",
        ]
        .iter()
        .any(|n| repo.has_path(&join(dir_of(rel), n)))
}

pub(super) fn is_dev_dockerfile(rel: &str) -> bool {
    let n = name_of(rel).to_ascii_lowercase();
    let lower = rel.to_ascii_lowercase();
    if n.contains("gitpod") || lower.contains(".devcontainer/") || n.contains("devcontainer") {
        return true;
    }
    ["dev", "test", "local", "ci", "debug"].iter().any(|w| {
        n.split(['.', '-', '_'])
            .any(|part| part == *w || part == format!("{w}elopment"))
    })
}

/// Run all repository rules. `line_findings` are post-filtered in place.
pub(crate) fn check(repo: &Repo, line_findings: &mut Vec<Finding>) -> Vec<Finding> {
    let mut out = Vec::new();
    let cmds = start_commands(repo, &mut out);
    codebase(repo, &mut out);
    dependencies(repo, &mut out);
    config(repo, &mut out);
    command_rules(&cmds, &mut out);
    disposability(repo, &cmds, &mut out);
    parity(repo, line_findings, &mut out);
    logs_and_admin(repo, &mut out);
    super::runtime::check(repo, &cmds, &mut out);
    post_filter(repo, &cmds, line_findings);
    super::app::check(repo, line_findings, &mut out);
    out
}

// ---------------------------------------------------------------------------------------------
// Start commands

fn start_commands(repo: &Repo, out: &mut Vec<Finding>) -> Vec<StartCmd> {
    let mut cmds = Vec::new();
    let mut has_web_procfile = false;
    for f in repo.app_files().filter(|f| f.kind == Kind::Procfile) {
        let src = Repo::text_of(f);
        // dozen's own (strict) parser decides whether dozen can run it; the lenient reader
        // still feeds the other rules when it cannot.
        if let Err(e) = dozen_core::Procfile::parse(&src, Path::new(&f.rel)) {
            let line = e.line().and_then(|l| u32::try_from(l).ok());
            out.push(Finding::new(
                rule("TF08-PROCFILE-INVALID"),
                Some(&f.rel),
                line,
                &e.to_string(),
            ));
        }
        // Procfile.dev and friends describe development; only `Procfile` is how the app runs.
        if name_of(&f.rel) != "Procfile" {
            continue;
        }
        for p in procfile::parse(&src) {
            has_web_procfile |= p.name == "web";
            cmds.push(StartCmd {
                file: f.rel.clone(),
                line: p.line,
                text: p.command,
                origin: Origin::Procfile,
                ptype: p.name,
            });
        }
    }
    for f in repo.app_files().filter(|f| {
        f.kind == Kind::Dockerfile && !is_dev_dockerfile(&f.rel) && !has_prod_sibling(repo, &f.rel)
    }) {
        let d = dockerfile(&Repo::text_of(f));
        dockerfile_rules(repo, f, &d, out);
        let mut parts = Vec::new();
        for ins in [&d.entrypoint, &d.cmd].into_iter().flatten() {
            parts.push(ins.clone());
        }
        if let Some(first) = parts.first() {
            let text = parts
                .iter()
                .map(|i| i.args_joined())
                .collect::<Vec<_>>()
                .join(" ");
            cmds.push(StartCmd {
                file: f.rel.clone(),
                line: first.line,
                text,
                origin: Origin::Dockerfile,
                ptype: "web".into(),
            });
        } else if let Some(from) = d.from.last()
            && ["uvicorn-gunicorn", "meinheld-gunicorn", "uwsgi-nginx"]
                .iter()
                .any(|i| from.args.contains(i))
        {
            // These base images start the server themselves and run `/app/prestart.sh` first.
            cmds.push(StartCmd {
                file: f.rel.clone(),
                line: from.line,
                text: "/app/prestart.sh".into(),
                origin: Origin::Dockerfile,
                ptype: "web".into(),
            });
        }
    }
    if !has_web_procfile {
        for f in repo.app_files().filter(|f| f.rel == "package.json") {
            let src = Repo::text_of(f);
            let Ok(json) = serde_json::from_str::<serde_json::Value>(&src) else {
                continue;
            };
            // `start:prod` is the production start of many Node frameworks (NestJS).
            for key in ["prestart", "start", "prestart:prod", "start:prod"] {
                if let Some(cmd) = json
                    .pointer(&format!("/scripts/{key}"))
                    .and_then(|v| v.as_str())
                {
                    let line = line_of(&src, &format!("\"{key}\""));
                    cmds.push(StartCmd {
                        file: f.rel.clone(),
                        line,
                        text: cmd.to_owned(),
                        origin: Origin::PackageJson,
                        ptype: "web".into(),
                    });
                }
            }
        }
    }
    // Scripts the web commands call.
    let mut scripts = Vec::new();
    for c in cmds.iter().filter(|c| c.is_web()) {
        for tok in c.text.split(|ch: char| {
            ch.is_whitespace() || ch == '"' || ch == '\'' || ch == ',' || ch == '[' || ch == ']'
        }) {
            if !(tok.ends_with(".sh") || tok.contains("bin/") || tok.contains("entrypoint")) {
                continue;
            }
            let base = name_of(tok);
            let found = repo.app_files().find(|f| {
                f.rel == tok.trim_start_matches("./")
                    || (name_of(&f.rel) == base && !base.is_empty())
            });
            if let Some(f) = found
                && (f.kind == Kind::Shell || f.rel.starts_with("bin/") || f.text.starts_with(b"#!"))
                && !scripts.iter().any(|s: &StartCmd| s.file == f.rel)
            {
                for (i, l) in Repo::text_of(f).lines().enumerate() {
                    let t = l.trim();
                    if t.is_empty() || t.starts_with('#') {
                        continue;
                    }
                    scripts.push(StartCmd {
                        file: f.rel.clone(),
                        line: u32::try_from(i + 1).unwrap_or(u32::MAX),
                        text: t.to_owned(),
                        origin: Origin::Script,
                        ptype: "web".into(),
                    });
                }
            }
        }
    }
    cmds.extend(scripts);
    cmds
}

fn line_of(src: &str, needle: &str) -> u32 {
    src.lines()
        .position(|l| l.contains(needle))
        .map_or(1, |i| u32::try_from(i + 1).unwrap_or(u32::MAX))
}

#[derive(Debug, Clone)]
pub(super) struct Instr {
    pub(super) keyword: String,
    pub(super) args: String,
    pub(super) line: u32,
}

impl Instr {
    fn exec_form(&self) -> Option<Vec<String>> {
        let a = self.args.trim();
        if !a.starts_with('[') {
            return None;
        }
        serde_json::from_str::<Vec<String>>(a).ok()
    }
    fn args_joined(&self) -> String {
        self.exec_form()
            .map_or_else(|| self.args.clone(), |v| v.join(" "))
    }
}

#[derive(Debug, Default)]
pub(super) struct Dockerfile {
    pub(super) all: Vec<Instr>,
    from: Vec<Instr>,
    entrypoint: Option<Instr>,
    cmd: Option<Instr>,
}

/// Read a Dockerfile: continuation lines joined, comments skipped; CMD/ENTRYPOINT of the last stage.
pub(super) fn dockerfile(src: &str) -> Dockerfile {
    let mut d = Dockerfile::default();
    let mut buf = String::new();
    let mut start = 0u32;
    for (i, raw) in src.lines().enumerate() {
        let ln = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let t = raw.trim();
        if buf.is_empty() && (t.is_empty() || t.starts_with('#')) {
            continue;
        }
        if t.starts_with('#') {
            continue;
        }
        if buf.is_empty() {
            start = ln;
        }
        if let Some(stripped) = t.strip_suffix('\\') {
            buf.push_str(stripped);
            buf.push(' ');
            continue;
        }
        buf.push_str(t);
        let line = std::mem::take(&mut buf);
        let (kw, args) = line.split_once(char::is_whitespace).unwrap_or((&line, ""));
        let ins = Instr {
            keyword: kw.to_ascii_uppercase(),
            args: args.trim().to_owned(),
            line: start,
        };
        match ins.keyword.as_str() {
            "FROM" => {
                d.entrypoint = None;
                d.cmd = None;
                d.from.push(ins.clone());
            }
            "CMD" => d.cmd = Some(ins.clone()),
            "ENTRYPOINT" => d.entrypoint = Some(ins.clone()),
            _ => {}
        }
        d.all.push(ins);
    }
    d
}

cached!(
    cron_re,
    r"\bcron\b|\bcrond\b|\bcrontab\b|/etc/cron|\bsupercronic\b"
);
cached!(logrotate_re, r"\blogrotate\b");

fn dockerfile_rules(_repo: &Repo, f: &SourceFile, d: &Dockerfile, out: &mut Vec<Finding>) {
    // II: unpinned base images.
    let mut stages: Vec<String> = Vec::new();
    for ins in &d.from {
        let mut words = ins.args.split_whitespace().filter(|w| !w.starts_with("--"));
        let image = words.next().unwrap_or("").to_owned();
        if let (Some(as_kw), Some(alias)) = (words.next(), words.next())
            && as_kw.eq_ignore_ascii_case("as")
        {
            stages.push(alias.to_ascii_lowercase());
        }
        let lower = image.to_ascii_lowercase();
        if lower.is_empty()
            || lower == "scratch"
            || lower.contains('$')
            || stages[..stages.len().saturating_sub(1)].contains(&lower)
            || stages.contains(&lower) && !image.contains(':')
        {
            continue;
        }
        let last = lower.rsplit('/').next().unwrap_or(&lower);
        let untagged = !last.contains(':') && !lower.contains('@');
        // `node:alpine`, `python:slim`, `node:lts-alpine`: a moving name with no version in it.
        let moving = !lower.contains('@')
            && last
                .split_once(':')
                .is_some_and(|(_, tag)| !tag.bytes().any(|b| b.is_ascii_digit()));
        if untagged || moving {
            out.push(Finding::new(
                rule("TF02-UNPINNED-DEP"),
                Some(&f.rel),
                Some(ins.line),
                &format!("FROM {}", ins.args),
            ));
        }
    }
    // IX: shell form.
    let exec_entry = d.entrypoint.as_ref().and_then(Instr::exec_form);
    for ins in [&d.entrypoint, &d.cmd].into_iter().flatten() {
        let ev = format!("{} {}", ins.keyword, ins.args);
        match ins.exec_form() {
            None => {
                let a = ins.args.trim_start();
                let is_args_to_exec_entry = ins.keyword == "CMD" && exec_entry.is_some();
                if !a.starts_with("exec ") && !a.is_empty() && !is_args_to_exec_entry {
                    out.push(Finding::new(
                        rule("TF09-SHELL-FORM-CMD"),
                        Some(&f.rel),
                        Some(ins.line),
                        &ev,
                    ));
                }
            }
            Some(v) => {
                let shell_c = v.len() >= 3
                    && matches!(v[0].as_str(), "sh" | "/bin/sh" | "bash" | "/bin/bash")
                    && v[1] == "-c";
                if shell_c {
                    let script = v[2..].join(" ");
                    let last = script.rsplit(['&', ';']).next().unwrap_or("").trim();
                    if (script.contains("&&") || script.contains(';')) && !last.starts_with("exec ")
                    {
                        out.push(Finding::new(
                            rule("TF09-SHELL-FORM-CMD"),
                            Some(&f.rel),
                            Some(ins.line),
                            &ev,
                        ));
                    }
                }
            }
        }
    }
    // XII: cron; XI: logrotate.
    if let Some(ins) = d.all.iter().find(|i| {
        matches!(
            i.keyword.as_str(),
            "RUN" | "CMD" | "ENTRYPOINT" | "COPY" | "ADD"
        ) && cron_re().is_match(i.args.as_bytes())
    }) {
        out.push(Finding::new(
            rule("TF12-CRON-IN-CONTAINER"),
            Some(&f.rel),
            Some(ins.line),
            &format!("{} {}", ins.keyword, ins.args),
        ));
    }
    if let Some(ins) = d
        .all
        .iter()
        .find(|i| i.keyword == "RUN" && logrotate_re().is_match(i.args.as_bytes()))
    {
        out.push(Finding::new(
            rule("TF11-LOG-ROTATION"),
            Some(&f.rel),
            Some(ins.line),
            &format!("RUN {}", ins.args),
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// Command rules

struct CmdRule {
    id: &'static str,
    pattern: &'static str,
    web_only: bool,
    /// Skip `release:` (and other non-web types where the rule is about serving).
    skip_release: bool,
}

const CMD_RULES: &[CmdRule] = &[
    CmdRule {
        id: "TF02-RUNTIME-INSTALL",
        pattern: r"\b(?:pip3?|python3?\s+-m\s+pip|uv\s+pip)\s+install\b|\b(?:npm|pnpm)\s+(?:install|i|ci)\b|\byarn\s+install\b|\bbundle\s+install\b|\bcomposer\s+(?:install|update|require)\b|\bgo\s+(?:get|mod\s+download)\b|\b(?:apt-get|apt|apk|yum|dnf)\s+(?:install|add)\b|\bgem\s+install\b|\bpoetry\s+install\b|\buv\s+sync\b|\bpipenv\s+install\b|\bcargo\s+install\b",
        web_only: false,
        skip_release: true,
    },
    CmdRule {
        id: "TF05-BUILD-AT-START",
        pattern: r"\b(?:npm|pnpm|yarn)\s+(?:run\s+)?build\b|\bnext\s+build\b|\bnuxt\s+build\b|\bvite\s+build\b|\bng\s+build\b|\bwebpack(?:\s|$)|\btsc\b|\bgo\s+(?:build|run)\b|\bcargo\s+(?:build|run)\b|\bmvn\w*\b[^\n]*\b(?:package|install|compile|spring-boot:run)\b|\bgradlew?\b[^\n]*\b(?:build|assemble|bootJar|bootRun)\b|\bassets:precompile\b|\bcollectstatic\b|\bdotnet\s+(?:build|run)\b|\bmix\s+compile\b|\bgit\s+(?:pull|clone|fetch|checkout)\b|\bflask\s+[a-z_-]+\s+compile\b|\bpybabel\s+compile\b|\bcompilemessages\b|\bts-node(?:\s|$)|\bts-node/register\b|\bbabel-node\b|\bsass\s|\blessc\s|\btailwindcss\s|\besbuild\s|\bprisma\s+generate\b",
        web_only: false,
        skip_release: true,
    },
    CmdRule {
        id: "TF05-DEV-SERVER",
        pattern: r"manage\.py\s+runserver\b|\bflask\s+run\b|\s--reload\b|\bnodemon\b|\b(?:next|nuxt)\s+dev\b|\bvite\s*$|\bvite\s+(?:--|dev\b|serve\b)|\b(?:npm|yarn|pnpm)\s+(?:run\s+)?dev\b|webpack-dev-server|\bwebpack\s+serve\b|\bng\s+serve\b|\bartisan\s+serve\b|\bphp\s+-S\s|\brails\s+s(?:erver)?\b[^\n]*-e\s+development|\bts-node-dev\b|\bbin/dev\b|\bnx\s+serve\b",
        web_only: true,
        skip_release: true,
    },
    CmdRule {
        id: "TF07-FIXED-PORT",
        pattern: r"(?:\s--port[= ]|\s-p[= ]?|\s(?:-b|--bind|--listen)[= ]\S*:|(?:\s|^|\x22)(?:0\.0\.0\.0|localhost|127\.0\.0\.1|\[::\]|\*)?:|\bhttp\.server\s+|\bPORT=)[1-9]\d{1,4}\b",
        web_only: true,
        skip_release: true,
    },
    CmdRule {
        id: "TF07-LOCALHOST-BIND",
        pattern: r"(?:--host|\s-b|--bind|\s-H|--hostname|--listen)[ =](?:localhost|127\.0\.0\.1)\b|\b(?:localhost|127\.0\.0\.1):\$\{?PORT",
        web_only: true,
        skip_release: true,
    },
    CmdRule {
        id: "TF08-DAEMONIZE",
        pattern: r"\bgunicorn\b[^\n]*(?:\s-D\b|--daemon\b)|\bnohup\b|(?:^|[^&>])&\s*$|\bpm2\s+start\b|\bforever\s+start\b|--daemoni[sz]e|\brails\s+s(?:erver)?\b[^\n]*\s-d\b|\bstart-stop-daemon\b|\bdaemonize\b",
        web_only: false,
        skip_release: false,
    },
    CmdRule {
        id: "TF08-PID-FILE",
        pattern: r"--pid(?:file)?[= ]\S+|\s-P\s+\S+\.pid\b",
        web_only: false,
        skip_release: true,
    },
    CmdRule {
        id: "TF08-PROCESS-MANAGER",
        pattern: r"\bsupervisord\b|\bconcurrently\b|\bforeman\s+start\b|\bhoncho\s+start\b|\bnpm-run-all\b[^\n]*--parallel|\brun-p\b|\bs6-svscan\b|\brunsvdir\b|\bcircusd\b",
        web_only: false,
        skip_release: true,
    },
    CmdRule {
        id: "TF09-SLEEP-AT-START",
        pattern: r"\bsleep\s+(?:[3-9]|[1-9]\d+)\b",
        web_only: false,
        skip_release: true,
    },
    CmdRule {
        id: "TF11-LOG-REDIRECT",
        pattern: r"\d?>>?\s*[^\s&|;]+\.log\b|\|\s*tee\s+(?:-a\s+)?[^\s|;]+|--(?:log-file|access-logfile|error-logfile|logfile|log-path|logto|access-log|error-log)[ =](?:[^\s-]|-\S)\S*",
        web_only: false,
        skip_release: true,
    },
    CmdRule {
        id: "TF12-MIGRATE-AT-START",
        pattern: r"manage\.py\s+migrate\b|\bdb:(?:migrate|prepare|setup)\b|\bartisan\s+migrate\b|\balembic\s+upgrade\b|\bflask\s+db\s+upgrade\b|\b(?:knex|sequelize|typeorm|prisma|sequelize-cli)\b[^\n]*\bmigrat|\bdiesel\s+migration\s+run\b|\bsqlx\s+migrate\s+run\b|\bflyway\b[^\n]*\bmigrate\b|\bliquibase\b[^\n]*\bupdate\b|\bgoose\b[^\n]*\bup\b|\bmigrate\s+(?:up|-path|-database)\b|\bnpm\s+run\s+migrate\b|\brake\s+db:migrate\b",
        web_only: true,
        skip_release: true,
    },
];

fn cmd_regexes() -> &'static Vec<Regex> {
    static R: OnceLock<Vec<Regex>> = OnceLock::new();
    R.get_or_init(|| CMD_RULES.iter().map(|r| re(r.pattern)).collect())
}

fn mentions_port_env(cmd: &str) -> bool {
    cmd.contains("$PORT")
        || cmd.contains("${PORT")
        || cmd.contains("%PORT%")
        || cmd.contains("env.PORT")
        || cmd.contains("ENV['PORT']")
        || cmd.contains("ENV[\"PORT\"]")
}

/// Is script line `c` inside a `while`/`until`/`for` loop of its script?
fn in_loop(cmds: &[StartCmd], c: &StartCmd) -> bool {
    let mut depth = 0i32;
    for l in cmds
        .iter()
        .filter(|l| l.origin == Origin::Script && l.file == c.file && l.line < c.line)
    {
        let first = l.text.split_whitespace().next().unwrap_or("");
        if matches!(first, "while" | "until" | "for") {
            depth += 1;
        }
        if first == "done" || first.starts_with("done;") || l.text.ends_with("; done") {
            depth -= 1;
        }
    }
    depth > 0
}

fn command_rules(cmds: &[StartCmd], out: &mut Vec<Finding>) {
    for c in cmds {
        let is_release = c.ptype == "release";
        for (r, rx) in CMD_RULES.iter().zip(cmd_regexes()) {
            if (r.web_only && !c.is_web()) || (r.skip_release && is_release) {
                continue;
            }
            let Some(m) = rx.find(c.text.as_bytes()) else {
                continue;
            };
            let matched = String::from_utf8_lossy(m.as_bytes());
            let mut severity = rule(r.id).severity;
            match r.id {
                "TF07-FIXED-PORT" => {
                    if mentions_port_env(&c.text) {
                        continue;
                    }
                    if c.origin != Origin::Procfile {
                        severity = Severity::Warning;
                    }
                }
                "TF11-LOG-REDIRECT"
                    if matched.contains("/dev/") || matched.contains("/proc/self") =>
                {
                    continue;
                }
                // `cmd & ... wait` in a script is not daemonising.
                "TF08-DAEMONIZE"
                    if c.origin == Origin::Script && matched.trim_end().ends_with('&') =>
                {
                    continue;
                }
                "TF05-BUILD-AT-START" | "TF02-RUNTIME-INSTALL"
                    if c.origin == Origin::Script && c.text.trim_start().starts_with("if ") =>
                {
                    continue;
                }
                // A sleep inside a retry loop waits for a dependency between attempts.
                "TF09-SLEEP-AT-START" if c.origin == Origin::Script && in_loop(cmds, c) => {
                    continue;
                }
                _ => {}
            }
            let evidence = if c.origin == Origin::Procfile {
                format!("{}: {}", c.ptype, c.text)
            } else {
                c.text.clone()
            };
            out.push(
                Finding::new(rule(r.id), Some(&c.file), Some(c.line), &evidence)
                    .with_severity(severity),
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// I. Codebase

pub(super) const MANIFESTS: &[&str] = &[
    "package.json",
    "requirements.txt",
    "pyproject.toml",
    "Pipfile",
    "setup.py",
    "Gemfile",
    "composer.json",
    "go.mod",
    "Cargo.toml",
    "pom.xml",
    "build.gradle",
    "build.gradle.kts",
];

fn codebase(repo: &Repo, out: &mut Vec<Finding>) {
    if !repo.root.ancestors().any(|a| a.join(".git").exists()) {
        out.push(Finding::new(
            rule("TF01-NO-VCS"),
            None,
            None,
            "no .git in this directory or above",
        ));
    }
    // App entry points and the manifest each one resolves to.
    let mut by_manifest: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for p in repo.paths {
        let (_, ctx) = classify(p);
        if !ctx.is_app() {
            continue;
        }
        let name = name_of(p);
        let app_dir = match name {
            "manage.py" | "artisan" => dir_of(p).to_owned(),
            "application.rb" if dir_of(p).ends_with("config") => dir_of(dir_of(p)).to_owned(),
            _ => continue,
        };
        let mut d = app_dir.clone();
        let manifest_dir = loop {
            if MANIFESTS.iter().any(|m| repo.has_path(&join(&d, m))) || d.contains("requirements") {
                break Some(d.clone());
            }
            if d.is_empty() {
                break None;
            }
            d = dir_of(&d).to_owned();
        };
        if let Some(md) = manifest_dir {
            by_manifest
                .entry(md)
                .or_default()
                .push((app_dir, p.clone()));
        }
    }
    for (manifest_dir, apps) in by_manifest {
        let dirs: BTreeSet<_> = apps.iter().map(|(d, _)| d.clone()).collect();
        if dirs.len() >= 2 {
            for (d, marker) in apps.iter().filter(|(d, _)| *d != manifest_dir) {
                let ev = format!(
                    "app in `{}/` uses the manifest in `{}/` with {} other app(s)",
                    d,
                    if manifest_dir.is_empty() {
                        "."
                    } else {
                        &manifest_dir
                    },
                    dirs.len() - 1
                );
                out.push(Finding::new(
                    rule("TF01-SHARED-MANIFEST"),
                    Some(marker),
                    None,
                    &ev,
                ));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// II. Dependencies

fn is_application(repo: &Repo) -> bool {
    repo.paths.iter().any(|p| {
        let (_, ctx) = classify(p);
        // Entry points of an app sit near the top; deeper ones belong to libraries and tools.
        let shallow = p.matches('/').count() <= 1
            || p.ends_with("config/application.rb")
            || p.contains("src/main/");
        if !ctx.is_app() || !shallow {
            return false;
        }
        let n = name_of(p);
        matches!(
            n,
            "Procfile"
                | "Dockerfile"
                | "Containerfile"
                | "app.json"
                | "manage.py"
                | "wsgi.py"
                | "asgi.py"
                | "artisan"
                | "main.go"
                | "application.properties"
                | "application.yml"
                | "application.yaml"
                | "server.js"
                | "app.js"
                | "app.py"
                | "dozen.toml"
                | "docker-compose.yml"
                | "compose.yaml"
                | "compose.yml"
                | "fly.toml"
                | "render.yaml"
        ) || n.starts_with("next.config.")
            || p.ends_with("config/application.rb")
            || p.ends_with("src/main.rs")
    })
}

fn language_of(rel: &str) -> Option<(&'static str, &'static [&'static str])> {
    const PY: &[&str] = &[
        "requirements.txt",
        "pyproject.toml",
        "Pipfile",
        "setup.py",
        "setup.cfg",
        "environment.yml",
    ];
    let ext = rel.rsplit_once('.').map(|(_, e)| e)?;
    Some(match ext {
        "py" => ("Python", PY),
        "js" | "mjs" | "cjs" | "ts" | "jsx" | "tsx" => {
            ("JavaScript", &["package.json", "deno.json", "deno.jsonc"])
        }
        "rb" => ("Ruby", &["Gemfile", "gems.rb"]),
        "go" => ("Go", &["go.mod"]),
        "java" | "kt" => (
            "Java",
            &[
                "pom.xml",
                "build.gradle",
                "build.gradle.kts",
                "build.xml",
                "build.sbt",
            ],
        ),
        "rs" => ("Rust", &["Cargo.toml"]),
        "php" => ("PHP", &["composer.json"]),
        _ => return None,
    })
}

cached!(
    requirement_name_re,
    r"^[A-Za-z0-9][A-Za-z0-9._-]*(?:\[[^\]]*\])?"
);

fn dependencies(repo: &Repo, out: &mut Vec<Finding>) {
    // No manifest for the main language.
    let mut counts: BTreeMap<&str, (usize, &[&str], String)> = BTreeMap::new();
    for p in repo.paths {
        let (_, ctx) = classify(p);
        let lower = p.to_ascii_lowercase();
        if !ctx.is_app()
            || ctx.build_config
            || [
                "static/", "public/", "assets/", "wwwroot/", "scripts/", "script/",
            ]
            .iter()
            .any(|d| lower.contains(d))
        {
            continue;
        }
        if let Some((lang, manifests)) = language_of(p) {
            let e = counts.entry(lang).or_insert((0, manifests, p.clone()));
            e.0 += 1;
        }
    }
    if let Some((lang, (n, manifests, example))) = counts.iter().max_by_key(|(_, (n, _, _))| *n)
        && *n >= 2
    {
        let has = repo.paths.iter().any(|p| {
            let name = name_of(p);
            manifests.contains(&name)
                || (*lang == "Python" && name.starts_with("requirements") && name.ends_with(".txt"))
                || (*lang == "Ruby" && name.ends_with(".gemspec"))
        });
        if !has {
            let ev = format!(
                "{n} {lang} files (e.g. {example}) and no {}",
                manifests.join(" / ")
            );
            out.push(Finding::new(rule("TF02-NO-MANIFEST"), None, None, &ev));
        }
    }
    let app = is_application(repo);
    for f in repo.app_files() {
        let name = name_of(&f.rel);
        let dir = dir_of(&f.rel);
        let lower_dir = format!("/{}/", dir.to_ascii_lowercase());
        if [
            "/static/",
            "/public/",
            "/assets/",
            "/wwwroot/",
            "/vendor/",
            "/third_party/",
        ]
        .iter()
        .any(|d| lower_dir.contains(d))
        {
            continue;
        }
        let src = Repo::text_of(f);
        let lock = |names: &[&str]| in_dir_or_ancestors(repo, dir, names);
        let mut missing: Option<&str> = None;
        match name {
            "package.json" => {
                let json: serde_json::Value = serde_json::from_str(&src).unwrap_or_default();
                let has_deps = json
                    .get("dependencies")
                    .and_then(|d| d.as_object())
                    .is_some_and(|d| !d.is_empty());
                let locked = lock(&[
                    "package-lock.json",
                    "yarn.lock",
                    "pnpm-lock.yaml",
                    "bun.lockb",
                    "bun.lock",
                    "npm-shrinkwrap.json",
                ]);
                if app && has_deps && !locked {
                    missing = Some("package-lock.json / yarn.lock / pnpm-lock.yaml");
                }
                if !locked {
                    for section in ["dependencies", "devDependencies"] {
                        if let Some(deps) = json.get(section).and_then(|d| d.as_object()) {
                            for (dep, v) in deps {
                                let v = v.as_str().unwrap_or("");
                                if matches!(v.trim(), "*" | "latest" | "" | "x" | "next") {
                                    let line = line_of(&src, &format!("\"{dep}\""));
                                    out.push(Finding::new(
                                        rule("TF02-UNPINNED-DEP"),
                                        Some(&f.rel),
                                        Some(line),
                                        &format!("\"{dep}\": \"{v}\""),
                                    ));
                                }
                            }
                        }
                    }
                }
            }
            "Gemfile" => {
                let lib = src.lines().any(|l| l.trim_start().starts_with("gemspec"));
                if app
                    && !lib
                    && src.lines().any(|l| l.trim_start().starts_with("gem "))
                    && !lock(&["Gemfile.lock"])
                {
                    missing = Some("Gemfile.lock");
                }
            }
            "composer.json" => {
                let json: serde_json::Value = serde_json::from_str(&src).unwrap_or_default();
                let lib = json.get("type").and_then(|t| t.as_str()) == Some("library");
                let deps = json
                    .get("require")
                    .and_then(|d| d.as_object())
                    .is_some_and(|d| d.keys().any(|k| k.contains('/')));
                if app && !lib && deps && !lock(&["composer.lock"]) {
                    missing = Some("composer.lock");
                }
            }
            "Pipfile" if app && !lock(&["Pipfile.lock"]) => {
                missing = Some("Pipfile.lock");
            }
            "pyproject.toml" => {
                let has_deps = src.contains("[tool.poetry.dependencies]")
                    || src
                        .lines()
                        .any(|l| l.trim_start().starts_with("dependencies"));
                let locked = lock(&[
                    "poetry.lock",
                    "uv.lock",
                    "pdm.lock",
                    "pylock.toml",
                    "requirements.txt",
                    "Pipfile.lock",
                ]);
                if app && has_deps && !locked {
                    missing = Some(if src.contains("[tool.poetry") {
                        "poetry.lock"
                    } else {
                        "uv.lock / poetry.lock / pdm.lock / pinned requirements.txt"
                    });
                }
            }
            "go.mod"
                if app
                    && src.lines().any(|l| l.trim_start().starts_with("require"))
                    && !lock(&["go.sum"]) =>
            {
                missing = Some("go.sum");
            }
            "Cargo.toml" => {
                let bin = src.contains("[[bin]]") || repo.has_path(&join(dir, "src/main.rs"));
                if app && bin && !lock(&["Cargo.lock"]) {
                    missing = Some("Cargo.lock");
                }
            }
            _ => {}
        }
        if let Some(want) = missing {
            out.push(Finding::new(
                rule("TF02-NO-LOCKFILE"),
                Some(&f.rel),
                None,
                &format!("{name} without {want}"),
            ));
        }
        let lower = name.to_ascii_lowercase();
        // `requirements/prod.txt`; the development and test sets there are not what deploys.
        let stem = lower.trim_end_matches(".txt");
        let in_requirements_dir = dir.rsplit('/').next() == Some("requirements")
            && !["dev", "test", "lint", "doc", "local", "ci"]
                .iter()
                .any(|w| stem.contains(w));
        if app
            && lower.ends_with(".txt")
            && (lower.starts_with("requirements") || in_requirements_dir)
        {
            let mut total = 0;
            let mut first: Option<(u32, String)> = None;
            let mut unpinned = 0;
            for (i, l) in src.lines().enumerate() {
                let t = l.split('#').next().unwrap_or("").trim();
                if t.is_empty()
                    || t.starts_with('-')
                    || t.contains("://")
                    || t.starts_with('.')
                    || t.starts_with('/')
                {
                    continue;
                }
                if requirement_name_re().find(t.as_bytes()).is_none() {
                    continue;
                }
                total += 1;
                let pinned = t.contains("==") || t.contains(" @ ") || t.contains("@ ");
                if !pinned {
                    unpinned += 1;
                    if first.is_none() {
                        first = Some((u32::try_from(i + 1).unwrap_or(u32::MAX), t.to_owned()));
                    }
                }
            }
            if let Some((line, t)) = first {
                out.push(Finding::new(
                    rule("TF02-UNPINNED-DEP"),
                    Some(&f.rel),
                    Some(line),
                    &format!("{t}  ({unpinned} of {total} requirements unpinned)"),
                ));
            }
        }
    }
}

/// Package names that install a tool, besides the tool's own name.
fn tool_packages(tool: &str) -> &'static [&'static str] {
    match tool {
        "convert" | "magick" | "mogrify" => &["imagemagick", "graphicsmagick", "wand", "magick"],
        "pdftotext" | "pdftoppm" | "pdfinfo" => &["poppler"],
        "gs" => &["ghostscript"],
        "soffice" | "unoconv" => &["libreoffice"],
        "ffprobe" => &["ffmpeg"],
        "pg_dump" | "pg_restore" => &["postgresql", "postgres"],
        "mysqldump" => &["mysql", "mariadb"],
        "rsvg-convert" => &["librsvg", "rsvg"],
        "chromium-browser" | "google-chrome" => &["chromium", "chrome", "puppeteer", "playwright"],
        "xvfb-run" => &["xvfb"],
        "wkhtmltoimage" => &["wkhtmltopdf"],
        _ => &[],
    }
}

fn declarations(repo: &Repo) -> String {
    let mut s = String::new();
    for f in repo.kept {
        let n = name_of(&f.rel);
        let lower = n.to_ascii_lowercase();
        let decl = f.kind == Kind::Dockerfile
            || MANIFESTS.contains(&n)
            || (lower.starts_with("requirements") && lower.ends_with(".txt"))
            || matches!(
                n,
                "Aptfile"
                    | "apt.txt"
                    | "packages.txt"
                    | "nixpacks.toml"
                    | "flake.nix"
                    | "shell.nix"
                    | "default.nix"
                    | ".buildpacks"
                    | "Brewfile"
                    | "bindep.txt"
                    | "project.toml"
                    | "app.json"
                    | "environment.yml"
            );
        if decl {
            s.push_str(&String::from_utf8_lossy(&f.text).to_ascii_lowercase());
            s.push('\n');
        }
    }
    s
}

// ---------------------------------------------------------------------------------------------
// III. Config

cached!(
    per_env_path_re,
    concat!(
        r"(?:^|/)settings[/_.-](?:prod|production|staging|stage|dev|development|local|qa|uat|preprod)\.py$",
        r"|(?:^|/)(?:config|conf|settings|env|environments?)/(?:prod|production|staging|stage|dev|development|qa|uat|preprod)\.(?:ya?ml|json|js|cjs|mjs|ts|toml|ini|cfg|py|php|env|conf|properties|xml)$",
        r"|(?:^|/)application-(?:prod|production|staging|stage|dev|development|qa|uat|local|preprod)\.(?:ya?ml|properties)$",
        r"|(?:^|/)appsettings\.(?:production|staging|development)\.json$",
        r"|(?:^|/)\.env\.(?:production|prod|staging|stage|development|dev)(?:\.local)?$",
        r"|(?:^|/)environment\.(?:prod|production|staging|dev|development)\.ts$",
        r"|(?:^|/)(?:config|settings)[_.-](?:prod|production|staging|dev|development)\.(?:ya?ml|json|toml|ini|py|js|ts|php|properties)$",
    )
);

fn config(repo: &Repo, out: &mut Vec<Finding>) {
    for p in repo.paths {
        let (_, ctx) = classify(p);
        if ctx.is_app() && per_env_path_re().is_match(p.to_ascii_lowercase().as_bytes()) {
            out.push(Finding::new(
                rule("TF03-PER-ENV-CONFIG"),
                Some(p),
                None,
                &format!("per-environment config file {}", name_of(p)),
            ));
        }
    }
    for f in repo.app_files().filter(|f| f.kind == Kind::EnvFile) {
        let mut hits = Vec::new();
        for (i, l) in Repo::text_of(f).lines().enumerate() {
            let t = l.trim().trim_start_matches("export ").trim();
            let Some((k, v)) = t.split_once('=') else {
                continue;
            };
            let v = v.trim().trim_matches(['"', '\'']);
            let key = k.trim().to_ascii_lowercase();
            let secret_key = [
                "password",
                "passwd",
                "secret",
                "token",
                "api_key",
                "apikey",
                "private_key",
                "access_key",
            ]
            .iter()
            .any(|w| key.contains(w));
            let url_cred = text::url_cred_re().captures(v.as_bytes()).is_some_and(|c| {
                let head = c
                    .get(1)
                    .map(|m| String::from_utf8_lossy(m.as_bytes()).into_owned())
                    .unwrap_or_default();
                let pw = c
                    .get(2)
                    .map(|m| String::from_utf8_lossy(m.as_bytes()).into_owned())
                    .unwrap_or_default();
                let user = head
                    .rsplit("//")
                    .next()
                    .unwrap_or("")
                    .trim_end_matches(':')
                    .to_owned();
                !text::is_dev_default_password(&user, &pw)
            });
            if (secret_key && looks_secret(v)) || url_cred {
                hits.push((u32::try_from(i + 1).unwrap_or(u32::MAX), t.to_owned()));
            }
        }
        if let Some((line, t)) = hits.first() {
            let ev = if hits.len() > 1 {
                format!("{t}  (+{} more)", hits.len() - 1)
            } else {
                t.clone()
            };
            out.push(Finding::new(
                rule("TF03-ENV-FILE-COMMITTED"),
                Some(&f.rel),
                Some(*line),
                &ev,
            ));
        }
    }
    for f in repo.app_files().filter(|f| f.kind == Kind::K8s) {
        k8s_secrets(f, out);
    }
}

cached!(
    k8s_secret_name_re,
    r"(?i)^\s*-?\s*name:\s*[\x22']?([A-Z0-9_]*(?:PASSWORD|PASSWD|SECRET|TOKEN|API_KEY|APIKEY|PRIVATE_KEY|ACCESS_KEY)[A-Z0-9_]*)[\x22']?\s*$"
);
cached!(
    k8s_value_re,
    r"^\s*value:\s*[\x22']?([^\x22'\s]+)[\x22']?\s*$"
);

fn k8s_secrets(f: &SourceFile, out: &mut Vec<Finding>) {
    let src = Repo::text_of(f);
    let lines: Vec<&str> = src.lines().collect();
    let mut doc_start = 0;
    let mut i = 0;
    while i <= lines.len() {
        if i == lines.len() || lines[i].starts_with("---") {
            let doc = &lines[doc_start..i];
            if let Some(kind_at) = doc.iter().position(|l| l.trim_end() == "kind: Secret") {
                let mut in_data = false;
                let mut real = false;
                let mut value_at: Option<(usize, bool)> = None;
                for (j, l) in doc.iter().enumerate() {
                    if l.starts_with("data:") || l.starts_with("stringData:") {
                        in_data = true;
                        continue;
                    }
                    if in_data {
                        if !l.starts_with(' ') && !l.trim().is_empty() {
                            in_data = false;
                            continue;
                        }
                        if let Some((_, v)) = l.split_once(':') {
                            let v = v.trim().trim_matches(['"', '\'']);
                            if !v.is_empty() && !text::is_placeholder(v) && v != "|" && v != ">" {
                                real = true;
                                // Prefer the first secret-named key (the password, the token).
                                let key = l.split(':').next().unwrap_or("").to_ascii_lowercase();
                                let secret = ["pass", "secret", "token", "key"]
                                    .iter()
                                    .any(|w| key.contains(w));
                                if secret && value_at.is_none_or(|(_, s): (usize, bool)| !s) {
                                    value_at = Some((j, true));
                                } else {
                                    value_at.get_or_insert((j, false));
                                }
                            }
                        }
                    }
                }
                if real {
                    // The first committed value, where the credential is.
                    let at = value_at.map_or(kind_at, |(j, _)| j);
                    let line = u32::try_from(doc_start + at + 1).unwrap_or(u32::MAX);
                    out.push(Finding::new(
                        rule("TF03-K8S-SECRET"),
                        Some(&f.rel),
                        Some(line),
                        "kind: Secret with data",
                    ));
                }
            }
            doc_start = i + 1;
        }
        i += 1;
    }
    for w in 0..lines.len().saturating_sub(1) {
        if k8s_secret_name_re().is_match(lines[w].as_bytes())
            && let Some(c) = k8s_value_re().captures(lines[w + 1].as_bytes())
        {
            let v = c
                .get(1)
                .map(|m| String::from_utf8_lossy(m.as_bytes()).into_owned())
                .unwrap_or_default();
            if looks_secret(&v) {
                let ev = format!("{} {}", lines[w].trim(), lines[w + 1].trim());
                let mut fnd = Finding::new(
                    rule("TF03-SECRET-IN-CODE"),
                    Some(&f.rel),
                    Some(u32::try_from(w + 2).unwrap_or(u32::MAX)),
                    &ev,
                );
                fnd.evidence = format!("{}  value: ****", lines[w].trim());
                out.push(fnd);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// IX. Disposability

fn disposability(repo: &Repo, cmds: &[StartCmd], out: &mut Vec<Finding>) {
    for lang in [Lang::Node, Lang::Go, Lang::Rust] {
        let handled = repo
            .facts
            .iter()
            .any(|f| matches!(f, Fact::SignalHandling(l) if *l == lang));
        if handled {
            continue;
        }
        if let Some(Fact::Server {
            rel,
            line,
            evidence,
            ..
        }) = repo
            .facts
            .iter()
            .find(|f| matches!(f, Fact::Server { lang: l, .. } if *l == lang))
        {
            out.push(Finding::new(
                rule("TF09-NO-SIGTERM-HANDLER"),
                Some(rel),
                Some(*line),
                evidence,
            ));
        }
    }
    // Start scripts that do not exec the server.
    let mut files: Vec<&str> = cmds
        .iter()
        .filter(|c| c.origin == Origin::Script)
        .map(|c| c.file.as_str())
        .collect();
    files.dedup();
    for file in files {
        // A pre-start hook runs before the server and returns; it does not run the server.
        let hook = name_of(file).starts_with("prestart") || name_of(file).starts_with("pre-start");
        if hook {
            continue;
        }
        let lines: Vec<&StartCmd> = cmds
            .iter()
            .filter(|c| c.file == file && c.origin == Origin::Script)
            .collect();
        let has_exec = lines.iter().any(|c| {
            c.text.starts_with("exec ") || c.text.contains("; exec ") || c.text.contains("&& exec ")
        });
        let has_trap = lines
            .iter()
            .any(|c| c.text.starts_with("trap ") && c.text.contains("TERM"));
        if has_exec || has_trap {
            continue;
        }
        let last = lines.iter().rev().find(|c| {
            let first = c.text.split_whitespace().next().unwrap_or("");
            !matches!(
                first,
                "fi" | "done"
                    | "esac"
                    | "}"
                    | "exit"
                    | "wait"
                    | "echo"
                    | "set"
                    | "export"
                    | "cd"
                    | "then"
                    | "else"
                    | ";;"
            )
        });
        if let Some(c) = last
            && !c.text.ends_with('&')
        {
            out.push(Finding::new(
                rule("TF09-SCRIPT-NO-EXEC"),
                Some(&c.file),
                Some(c.line),
                &c.text,
            ));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// X. Dev/prod parity

cached!(
    pub(super) server_db_re,
    r#"(?i)psycopg|asyncpg|mysqlclient|pymysql|mysql-connector|mariadb|["'](?:pg|mysql2?|pg-promise|postgres|tedious)["']\s*:|gem\s+["'](?:pg|mysql2|trilogy)["']|org\.postgresql|postgresql|heroku-postgresql|jawsdb|cleardb|mssql-jdbc|ojdbc|github\.com/lib/pq|jackc/pgx|go-sql-driver/mysql"#
);

fn parity(repo: &Repo, line_findings: &mut [Finding], out: &mut Vec<Finding>) {
    let _ = line_findings;
    // Rails database.yml.
    for f in repo
        .app_files()
        .filter(|f| f.rel.ends_with("config/database.yml"))
    {
        let src = Repo::text_of(f);
        let mut section = String::new();
        let mut anchors: BTreeMap<String, String> = BTreeMap::new();
        let mut adapters: BTreeMap<String, (String, u32)> = BTreeMap::new();
        let mut current_anchor: Option<String> = None;
        for (i, l) in src.lines().enumerate() {
            let ln = u32::try_from(i + 1).unwrap_or(u32::MAX);
            if !l.starts_with(' ') && l.contains(':') && !l.trim_start().starts_with('#') {
                section = l.split(':').next().unwrap_or("").trim().to_owned();
                current_anchor = l.split('&').nth(1).map(|a| a.trim().to_owned());
                continue;
            }
            let t = l.trim();
            if let Some(a) = t.strip_prefix("adapter:") {
                let a = a.trim().to_owned();
                if let Some(anchor) = &current_anchor {
                    anchors.insert(anchor.clone(), a.clone());
                }
                adapters.insert(section.clone(), (a, ln));
            } else if let Some(alias) = t.strip_prefix("<<: *")
                && let Some(a) = anchors.get(alias.trim())
            {
                adapters.entry(section.clone()).or_insert((a.clone(), ln));
            }
        }
        if let (Some((dev, line)), Some((prod, _))) =
            (adapters.get("development"), adapters.get("production"))
            && dev.contains("sqlite")
            && !prod.contains("sqlite")
        {
            out.push(Finding::new(
                rule("TF10-SQLITE-IN-DEV"),
                Some(&f.rel),
                Some(*line),
                &format!("development: adapter {dev}, production: adapter {prod}"),
            ));
        }
    }
    // Compose drift between development and production files.
    let compose: Vec<&SourceFile> = repo
        .app_files()
        .filter(|f| f.kind == Kind::Compose)
        .collect();
    let is_prod = |f: &SourceFile| f.rel.to_ascii_lowercase().contains("prod");
    let prod: Vec<&SourceFile> = compose.iter().copied().filter(|f| is_prod(f)).collect();
    let dev: Vec<&SourceFile> = compose.iter().copied().filter(|f| !is_prod(f)).collect();
    if !prod.is_empty() && !dev.is_empty() {
        let prod_images: Vec<(String, String, String)> = prod
            .iter()
            .flat_map(|f| images(f))
            .map(|(k, img, _)| (service_class(&k).to_owned(), k, img))
            .collect::<Vec<(String, String, String)>>();
        for f in dev {
            for (kind, img, line) in images(f) {
                let class = service_class(&kind);
                if class.is_empty() {
                    continue;
                }
                let same_class: Vec<_> =
                    prod_images.iter().filter(|(c, _, _)| c == class).collect();
                if same_class.is_empty() {
                    continue;
                }
                let matches = same_class
                    .iter()
                    .any(|(_, k, pimg)| *k == kind && major(pimg) == major(&img));
                if !matches {
                    let others: Vec<_> = same_class.iter().map(|(_, _, i)| i.as_str()).collect();
                    out.push(Finding::new(
                        rule("TF10-COMPOSE-DRIFT"),
                        Some(&f.rel),
                        Some(line),
                        &format!("image: {img}  (production: {})", others.join(", ")),
                    ));
                }
            }
        }
    }
}

fn images(f: &SourceFile) -> Vec<(String, String, u32)> {
    let mut v = Vec::new();
    for (i, l) in String::from_utf8_lossy(&f.text).lines().enumerate() {
        if let Some(img) = l.trim().strip_prefix("image:") {
            let img = img.trim().trim_matches(['"', '\'']).to_ascii_lowercase();
            let base = img.rsplit('/').next().unwrap_or(&img);
            let kind = base.split([':', '@']).next().unwrap_or("").to_owned();
            v.push((kind, img, u32::try_from(i + 1).unwrap_or(u32::MAX)));
        }
    }
    v
}

fn service_class(kind: &str) -> &'static str {
    match kind {
        "postgres" | "postgis" | "mysql" | "mariadb" | "mssql" | "mongo" | "mongodb" => "database",
        "redis" | "valkey" | "keydb" | "memcached" => "cache",
        "rabbitmq" | "kafka" | "nats" => "queue",
        "elasticsearch" | "opensearch" => "search",
        _ => "",
    }
}

fn major(image: &str) -> String {
    let tag = image.rsplit_once(':').map_or("latest", |(_, t)| t);
    tag.split(['.', '-']).next().unwrap_or(tag).to_owned()
}

// ---------------------------------------------------------------------------------------------
// XI, XII

fn logs_and_admin(repo: &Repo, out: &mut Vec<Finding>) {
    for p in repo.paths {
        let (_, ctx) = classify(p);
        let lower = p.to_ascii_lowercase();
        if ctx.is_app() && (name_of(&lower).contains("logrotate") || lower.contains("logrotate.d/"))
        {
            out.push(Finding::new(
                rule("TF11-LOG-ROTATION"),
                Some(p),
                None,
                &format!("logrotate configuration {}", name_of(p)),
            ));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Post-filters of line rules that need the whole repository.

fn post_filter(repo: &Repo, cmds: &[StartCmd], line_findings: &mut Vec<Finding>) {
    let web_binds_port = cmds.iter().any(|c| {
        (c.origin == Origin::Procfile || c.origin == Origin::Dockerfile)
            && c.is_web()
            && mentions_port_env(&c.text)
    });
    let decl = declarations(repo);
    let server_db = repo.kept.iter().any(|f| {
        let n = name_of(&f.rel);
        let lower = n.to_ascii_lowercase();
        (MANIFESTS.contains(&n)
            || (lower.starts_with("requirements") && lower.ends_with(".txt"))
            || n == "app.json")
            && server_db_re().is_match(&f.text)
    });
    let tool_re = re(TOOL_CALL_PATTERN);
    // A root Procfile that names only one long-running type (release is a one-off).
    let single_type_procfile = repo.kept.iter().filter(|f| f.rel == "Procfile").any(|f| {
        let types = procfile::parse(&String::from_utf8_lossy(&f.text));
        types.iter().filter(|t| t.name != "release").count() == 1
    });
    line_findings.retain(|f| match f.rule {
        "TF07-FIXED-PORT" => {
            !web_binds_port
                || f.file.as_deref().is_some_and(|p| {
                    p.ends_with(".properties") || p.ends_with(".yml") || p.ends_with(".yaml")
                })
        }
        "TF03-HARDCODED-DEBUG" => !(web_binds_port && f.evidence.contains(".run(")),
        "TF10-SQLITE-IN-DEV" => server_db,
        "TF08-IN-PROCESS-SCHEDULER" => single_type_procfile,
        "TF02-UNDECLARED-TOOL" => {
            let Some(tool) = tool_re
                .captures(f.evidence.as_bytes())
                .and_then(|c| c.get(1))
                .map(|m| String::from_utf8_lossy(m.as_bytes()).into_owned())
            else {
                return false;
            };
            let declared =
                decl.contains(&tool) || tool_packages(&tool).iter().any(|p| decl.contains(p));
            !declared
        }
        _ => true,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerfile_last_stage() {
        let d = dockerfile(
            "FROM node:20 AS build\nRUN npm ci\nCMD [\"x\"]\nFROM node:20-slim\nCOPY --from=build /a /a\nCMD node \\\n  server.js\n",
        );
        let cmd = d.cmd.as_ref().map(|c| (c.line, c.args.clone()));
        assert_eq!(cmd, Some((6, "node  server.js".to_owned())));
        assert!(d.entrypoint.is_none());
        assert_eq!(d.from.len(), 2);
    }

    #[test]
    fn command_patterns() {
        let hit = |id: &str, cmd: &str| {
            let i = CMD_RULES
                .iter()
                .position(|r| r.id == id)
                .unwrap_or(usize::MAX);
            cmd_regexes()[i].is_match(cmd.as_bytes())
        };
        assert!(hit("TF07-FIXED-PORT", "gunicorn app:app -b 0.0.0.0:8000"));
        assert!(hit(
            "TF07-FIXED-PORT",
            "python manage.py runserver 0.0.0.0:8000"
        ));
        assert!(!hit("TF07-FIXED-PORT", "gunicorn app:app -w 3"));
        assert!(hit("TF08-DAEMONIZE", "gunicorn app:app -D"));
        assert!(!hit("TF08-DAEMONIZE", "a && b"));
        assert!(!hit("TF08-DAEMONIZE", "node x.js 2>&1"));
        assert!(hit(
            "TF11-LOG-REDIRECT",
            "node server.js >> logs/app.log 2>&1"
        ));
        assert!(!hit(
            "TF11-LOG-REDIRECT",
            "gunicorn --access-logfile - app:app"
        ));
        assert!(hit(
            "TF12-MIGRATE-AT-START",
            "python manage.py migrate && gunicorn x"
        ));
    }
}
