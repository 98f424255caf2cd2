//! Start commands followed into `package.json` scripts (factor V: `"start": "npm run css && node
//! app.js"` builds at every start), and Dockerfile installs of named packages beside the app's
//! manifest (factor II: dependencies the manifest does not know).

use std::sync::OnceLock;

use regex::bytes::Regex;

use super::app::AppFact;
use super::repo::Fact;
use super::repo::{
    Origin, Repo, StartCmd, dir_of, dockerfile, has_prod_sibling, is_dev_dockerfile, join,
};
use super::rule;
use crate::report::Finding;
use crate::text::re;
use crate::walk::Kind;

/// Build tools: what turns sources into the artefact the run stage should only start.
pub(super) const BUILD_TOOLS: &str = r"\b(?:npm|pnpm|yarn)\s+(?:run\s+)?build\b|\bnext\s+build\b|\bnuxt\s+(?:build|generate)\b|\bvite\s+build\b|\bng\s+build\b|\bwebpack(?:\s|$)|\btsc\b|\bsass\b|\bnode-sass\b|\blessc\b|\bstylus\b|\btailwindcss\b|\bpostcss\b|\besbuild\b|\brollup\b|\bparcel\s+build\b|\bbabel\b|\bbrowserify\b|\bgulp\s+build\b|\bgrunt\s+build\b|\bremix\s+build\b|\bastro\s+build\b|\bsvelte-kit\s+build\b|\bprisma\s+generate\b|\bcollectstatic\b|\bcompilemessages\b|\bts-node(?:\s|$)|\bts-node/register\b|\bbabel-node\b|\bflask\s+[a-z_-]+\s+compile\b|\bpybabel\s+compile\b|\bcompress\b\s*(?:--force)?\s*$";

fn build_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| re(BUILD_TOOLS))
}

fn npm_run_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| {
        re(
            r"\b(?:npm\s+(?:run(?:-script)?\s+|start\b)|pnpm\s+(?:run\s+)?|yarn\s+(?:run\s+)?|bun\s+run\s+)([A-Za-z0-9:_.-]*)",
        )
    })
}

/// Scripts a command runs, recursively (`npm run css` → `sass …`), as (name, command) pairs.
fn expand(
    scripts: &serde_json::Map<String, serde_json::Value>,
    cmd: &str,
    depth: u8,
    out: &mut Vec<(String, String)>,
) {
    if depth > 4 {
        return;
    }
    for c in npm_run_re().captures_iter(cmd.as_bytes()) {
        let whole = c
            .get(0)
            .map(|m| String::from_utf8_lossy(m.as_bytes()).into_owned());
        let mut name = c
            .get(1)
            .map(|m| String::from_utf8_lossy(m.as_bytes()).into_owned())
            .unwrap_or_default();
        if whole
            .as_deref()
            .is_some_and(|w| w.trim_end().ends_with("start"))
            && name.is_empty()
        {
            name = "start".into();
        }
        if name.is_empty() || matches!(name.as_str(), "install" | "ci" | "add" | "exec" | "dlx") {
            continue;
        }
        for key in [format!("pre{name}"), name.clone()] {
            if out.iter().any(|(n, _)| *n == key) {
                continue;
            }
            if let Some(s) = scripts.get(&key).and_then(|v| v.as_str()) {
                out.push((key.clone(), s.to_owned()));
                expand(scripts, s, depth + 1, out);
            }
        }
    }
}

/// Run the rules of this module.
pub(super) fn check(repo: &Repo, cmds: &[StartCmd], out: &mut Vec<Finding>) {
    build_through_scripts(repo, cmds, out);
    compilers_at_start(repo, cmds, out);
    default_ports(cmds, out);
    app_json_secrets(repo, out);
    docker_installs(repo, out);
}

fn build_through_scripts(repo: &Repo, cmds: &[StartCmd], out: &mut Vec<Finding>) {
    for c in cmds
        .iter()
        .filter(|c| c.is_web() && c.origin != Origin::Script && c.ptype != "release")
    {
        // The package.json next to the command's file, else the one at the root.
        let dir = dir_of(&c.file);
        let pkg = repo
            .app_files()
            .find(|f| f.rel == join(dir, "package.json"))
            .or_else(|| repo.app_files().find(|f| f.rel == "package.json"));
        let Some(pkg) = pkg else { continue };
        let Ok(json) = serde_json::from_slice::<serde_json::Value>(&pkg.text) else {
            continue;
        };
        let Some(scripts) = json.get("scripts").and_then(|s| s.as_object()) else {
            continue;
        };
        if build_re().is_match(c.text.as_bytes()) {
            continue; // the command itself builds; the command rules report it
        }
        let mut ran = Vec::new();
        expand(scripts, &c.text, 0, &mut ran);
        if let Some((name, script)) = ran.iter().find(|(_, s)| build_re().is_match(s.as_bytes())) {
            let evidence = if c.origin == Origin::Procfile {
                format!("{}: {}", c.ptype, c.text)
            } else {
                c.text.clone()
            };
            out.push(
                Finding::new(
                    rule("TF05-BUILD-AT-START"),
                    Some(&c.file),
                    Some(c.line),
                    &evidence,
                )
                .because(&format!(
                    "it runs the package.json script `{name}`, which is a build step: `{script}`"
                )),
            );
        }
    }
}

/// `node index.js` where index.js registers ts-node or Babel: the sources compile at every start.
fn compilers_at_start(repo: &Repo, cmds: &[StartCmd], out: &mut Vec<Finding>) {
    for fact in repo.facts {
        let Fact::App(AppFact::RuntimeCompiler {
            rel,
            line,
            evidence,
        }) = fact
        else {
            continue;
        };
        let started = cmds.iter().filter(|c| c.is_web()).find(|c| {
            c.text.split_whitespace().any(|w| {
                let w = w.trim_matches(['"', '\'']).trim_start_matches("./");
                !w.is_empty() && (w == rel || rel.ends_with(&format!("/{w}")))
            })
        });
        let Some(c) = started else { continue };
        let why = format!(
            "{rel} is what `{}` starts, and it registers a compiler that turns the sources into code at every start",
            c.text
        );
        out.push(
            Finding::new(
                rule("TF05-BUILD-AT-START"),
                Some(rel),
                Some(*line),
                evidence,
            )
            .because(&why),
        );
        out.push(
            Finding::new(
                rule("TF05-BUILD-AT-START"),
                Some(&c.file),
                Some(c.line),
                &c.text,
            )
            .because(&why),
        );
    }
}

/// `uvicorn app:app` without `--port` binds uvicorn's default port 8000, not `PORT`.
fn default_ports(cmds: &[StartCmd], out: &mut Vec<Finding>) {
    for c in cmds.iter().filter(|c| c.is_web() && c.ptype != "release") {
        let words: Vec<&str> = c.text.split_whitespace().collect();
        let Some(at) = words
            .iter()
            .position(|w| *w == "uvicorn" || w.ends_with("/uvicorn"))
        else {
            continue;
        };
        let rest = &words[at + 1..];
        let until = rest
            .iter()
            .position(|w| matches!(*w, "&&" | ";" | "||" | "|"))
            .unwrap_or(rest.len());
        let args = &rest[..until];
        let bound = args.iter().any(|w| {
            w.starts_with("--port")
                || w.starts_with("--fd")
                || w.starts_with("--uds")
                || w.contains("PORT")
        }) || c.text.contains("UVICORN_PORT");
        if !bound && !args.is_empty() {
            let evidence = if c.origin == Origin::Procfile {
                format!("{}: {}", c.ptype, c.text)
            } else {
                c.text.clone()
            };
            out.push(
                Finding::new(
                    rule("TF07-FIXED-PORT"),
                    Some(&c.file),
                    Some(c.line),
                    &evidence,
                )
                .with_severity(crate::report::Severity::Warning)
                .because(
                    "uvicorn without --port listens on its default port 8000 whatever PORT says",
                ),
            );
        }
    }
}

/// `app.json` env entries that give a secret-named variable a literal value (parsed as JSON).
fn app_json_secrets(repo: &Repo, out: &mut Vec<Finding>) {
    for f in repo.app_files().filter(|f| f.kind == Kind::AppJson) {
        let Ok(json) = serde_json::from_slice::<serde_json::Value>(&f.text) else {
            continue;
        };
        let Some(env) = json.get("env").and_then(|e| e.as_object()) else {
            continue;
        };
        let src = String::from_utf8_lossy(&f.text);
        for (key, v) in env {
            let value = match v {
                serde_json::Value::String(s) => s.as_str(),
                serde_json::Value::Object(o) if o.get("generator").is_none() => {
                    o.get("value").and_then(|x| x.as_str()).unwrap_or("")
                }
                _ => "",
            };
            if value.trim().is_empty() || !super::app::is_secret_name(key) {
                continue;
            }
            let line = src
                .lines()
                .position(|l| l.contains(&format!("\"{key}\"")))
                .and_then(|i| u32::try_from(i + 1).ok());
            out.push(
                Finding::new(
                    rule("TF03-SECRET-IN-CODE"),
                    Some(&f.rel),
                    line,
                    &format!("\"{key}\": \"****\""),
                )
                .because(&format!(
                    "app.json gives {key} a literal value that every deploy created from it receives"
                )),
            );
        }
    }
}

/// Package-manager tools a Dockerfile may install without them being app dependencies.
const TOOLING: &[&str] = &[
    "pip",
    "setuptools",
    "wheel",
    "poetry",
    "pipenv",
    "uv",
    "virtualenv",
    "pip-tools",
    "npm",
    "yarn",
    "pnpm",
    "corepack",
    "bundler",
    "bundle",
];

/// Named packages that an install command in one RUN segment adds, and the ecosystem.
fn installed_names(segment: &str) -> Option<(&'static str, Vec<String>)> {
    let words: Vec<&str> = segment.split_whitespace().collect();
    let (eco, at) = words.windows(2).enumerate().find_map(|(i, w)| {
        let eco = match (w[0], w[1]) {
            ("pip" | "pip3", "install") => "python",
            ("npm", "install" | "i") => "node",
            ("yarn", "add") => "node",
            ("gem", "install") => "ruby",
            _ => return None,
        };
        Some((eco, i + 2))
    })?;
    // `yarn global add x`
    let mut names = Vec::new();
    let mut skip_next = false;
    for w in &words[at..] {
        if skip_next {
            skip_next = false;
            continue;
        }
        if matches!(*w, "&&" | "||" | "|" | ";") {
            break;
        }
        if w.starts_with('-') {
            // Options that take a value: the value is not a package.
            skip_next = matches!(
                *w,
                "-r" | "--requirement"
                    | "-c"
                    | "--constraint"
                    | "-e"
                    | "--editable"
                    | "-i"
                    | "--index-url"
                    | "--extra-index-url"
                    | "-f"
                    | "--find-links"
                    | "-t"
                    | "--target"
                    | "--prefix"
                    | "--root"
                    | "--src"
                    | "--cache-dir"
                    | "--trusted-host"
                    | "--platform"
                    | "--python-version"
                    | "--only-binary"
                    | "--no-binary"
                    | "-v"
                    | "--version"
            );
            continue;
        }
        let w = w.trim_matches(['"', '\'']);
        let bare = w
            .split(['=', '<', '>', '~', '!', '[', '@'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        let looks_path = w.starts_with('.')
            || w.starts_with('/')
            || w.starts_with('$')
            || w.contains("://")
            || w.ends_with(".whl")
            || w.ends_with(".tar.gz")
            || w.ends_with(".txt")
            || w.ends_with(".tgz");
        if bare.is_empty() || looks_path || TOOLING.contains(&bare.as_str()) {
            continue;
        }
        names.push(w.to_owned());
    }
    if names.is_empty() {
        None
    } else {
        Some((eco, names))
    }
}

fn manifest_for(repo: &Repo, dir: &str, eco: &str) -> Option<String> {
    let names: &[&str] = match eco {
        "python" => &[
            "requirements.txt",
            "pyproject.toml",
            "Pipfile",
            "setup.py",
            "requirements/base.txt",
            "requirements/production.txt",
            "requirements/prod.txt",
        ],
        "node" => &["package.json"],
        _ => &["Gemfile"],
    };
    let mut d = dir.to_owned();
    loop {
        for n in names {
            let p = join(&d, n);
            if repo.has_path(&p) {
                return Some(p);
            }
        }
        if d.is_empty() {
            return None;
        }
        d = dir_of(&d).to_owned();
    }
}

fn docker_installs(repo: &Repo, out: &mut Vec<Finding>) {
    for f in repo.app_files().filter(|f| {
        f.kind == Kind::Dockerfile && !is_dev_dockerfile(&f.rel) && !has_prod_sibling(repo, &f.rel)
    }) {
        let d = dockerfile(&Repo::text_of(f));
        // Only the stage that runs: a builder stage may install lint or build tools.
        let last_from = d.all.iter().rposition(|i| i.keyword == "FROM").unwrap_or(0);
        for ins in d.all[last_from..].iter().filter(|i| i.keyword == "RUN") {
            for segment in ins.args.split("&&").flat_map(|s| s.split(';')) {
                let Some((eco, names)) = installed_names(segment) else {
                    continue;
                };
                let Some(manifest) = manifest_for(repo, dir_of(&f.rel), eco) else {
                    continue;
                };
                out.push(
                    Finding::new(
                        rule("TF02-UNDECLARED-DEP"),
                        Some(&f.rel),
                        Some(ins.line),
                        &format!("RUN {}", segment.trim()),
                    )
                    .because(&format!(
                        "{} {} not installed from {manifest}, the app's manifest",
                        names.join(", "),
                        if names.len() == 1 { "is" } else { "are" }
                    )),
                );
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_segments() {
        assert_eq!(
            installed_names("pip install --no-cache-dir gunicorn psycopg2-binary"),
            Some(("python", vec!["gunicorn".into(), "psycopg2-binary".into()]))
        );
        assert_eq!(installed_names("pip install -r requirements.txt"), None);
        assert_eq!(
            installed_names("pip install --upgrade pip setuptools"),
            None
        );
        assert_eq!(installed_names("pip install ."), None);
        assert_eq!(installed_names("npm ci"), None);
        assert_eq!(installed_names("npm install"), None);
        assert_eq!(
            installed_names("npm install -g pm2"),
            Some(("node", vec!["pm2".into()]))
        );
    }

    #[test]
    fn build_tools() {
        for c in ["sass src/a.scss public/a.css", "tsc -p .", "npm run build"] {
            assert!(build_re().is_match(c.as_bytes()), "{c}");
        }
        for c in ["node app.js", "gunicorn app:app", "next start"] {
            assert!(!build_re().is_match(c.as_bytes()), "{c}");
        }
    }
}
