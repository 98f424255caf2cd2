//! Node.js: which package manager, the install, build and prune steps, and `engines.node`.
//!
//! - `yarn.lock`: yarn; `pnpm-lock.yaml`: pnpm (through `corepack` when `packageManager`
//!   pins the version and the host has corepack; else the tool on `PATH`; else through
//!   corepack; else the build fails naming the tool); otherwise npm:
//!   `npm ci` with `package-lock.json` or `npm-shrinkwrap.json`, `npm install` without.
//! - Then the `heroku-postbuild` script if there is one, else `build` if there is one; then
//!   dev dependencies are pruned (`npm prune --omit=dev`, or the manager's equivalent).
//! - `engines.node` is checked against `node --version`: `>=`, `^`, `~`, `x` ranges and exact
//!   versions; a host below the range's minimum major fails the build, any other mismatch is a
//!   warning, and a range of another form is reported as not checked.
//! - No Procfile: `web: npm start` when `scripts.start` exists, else `web: node server.js`
//!   when `server.js` exists.

use std::path::Path;

use serde_json::Value;

use super::{BuildPlan, DefaultWeb, Host, missing, read_json, read_text};
use crate::error::BuildError;

pub(super) fn plan(dir: &Path, host: &Host) -> Result<BuildPlan, BuildError> {
    let package = read_json(dir, "package.json")?;
    let Some(package) = package.as_object() else {
        return Err(BuildError::Manifest {
            file: "package.json".into(),
            line: Some(1),
            message: "the top level must be a JSON object".into(),
        });
    };
    let script = |name: &str| {
        package
            .get("scripts")
            .and_then(|s| s.get(name))
            .and_then(Value::as_str)
            .is_some_and(|s| !s.trim().is_empty())
    };
    let has = |name: &str| dir.join(name).is_file();
    let mut notes = Vec::new();

    let Some(node) = host.which("node") else {
        return Err(missing("node", "package.json", "node"));
    };
    if let Some(range) = package
        .get("engines")
        .and_then(|e| e.get("node"))
        .and_then(Value::as_str)
    {
        let version = host
            .output(&node, &["--version"])
            .unwrap_or_default()
            .trim()
            .to_string();
        let text = read_text(dir, "package.json")?;
        if let Some(note) = check_engine(range, &version, &text)? {
            notes.push(note);
        }
    }

    let pinned = |name: &str| {
        package
            .get("packageManager")
            .and_then(Value::as_str)
            .is_some_and(|p| p.starts_with(&format!("{name}@")))
    };
    let mut steps = Vec::new();
    let (detected_from, run, install, prune) = if has("yarn.lock") {
        let yarn = tool(
            host,
            "yarn",
            "yarn.lock",
            pinned("yarn"),
            &mut steps,
            &mut notes,
        )?;
        let berry = has(".yarnrc.yml")
            || package
                .get("packageManager")
                .and_then(Value::as_str)
                .and_then(|p| p.strip_prefix("yarn@"))
                .is_some_and(|v| !v.starts_with("1."));
        if berry {
            (
                "yarn.lock",
                format!("{yarn} run"),
                format!("{yarn} install --immutable"),
                format!("{yarn} workspaces focus --all --production"),
            )
        } else {
            (
                "yarn.lock",
                format!("{yarn} run"),
                format!("{yarn} install --frozen-lockfile"),
                format!(
                    "{yarn} install --frozen-lockfile --production=true --ignore-scripts --prefer-offline"
                ),
            )
        }
    } else if has("pnpm-lock.yaml") {
        let pnpm = tool(
            host,
            "pnpm",
            "pnpm-lock.yaml",
            pinned("pnpm"),
            &mut steps,
            &mut notes,
        )?;
        (
            "pnpm-lock.yaml",
            format!("{pnpm} run"),
            format!("{pnpm} install --frozen-lockfile --store-dir \"$CACHE_DIR/pnpm-store\""),
            format!("{pnpm} prune --prod --store-dir \"$CACHE_DIR/pnpm-store\""),
        )
    } else {
        if host.which("npm").is_none() {
            return Err(missing("npm", "package.json", "node"));
        }
        let install = if has("package-lock.json") || has("npm-shrinkwrap.json") {
            "npm ci"
        } else {
            "npm install"
        };
        (
            "package.json",
            "npm run".to_string(),
            install.to_string(),
            "npm prune --omit=dev".to_string(),
        )
    };

    steps.push(install);
    if script("heroku-postbuild") {
        steps.push(format!("{run} heroku-postbuild"));
    } else if script("build") {
        steps.push(format!("{run} build"));
    }
    let has_dev = package
        .get("devDependencies")
        .and_then(Value::as_object)
        .is_some_and(|d| !d.is_empty());
    if has_dev {
        steps.push(prune);
    }

    let mut plan = BuildPlan::new("node", detected_from, steps);
    plan.notes = notes;
    plan.default_web = if script("start") {
        DefaultWeb::Command("npm start".into())
    } else if has("server.js") {
        DefaultWeb::Command("node server.js".into())
    } else {
        DefaultWeb::None(
            "a Node.js app without `scripts.start` in package.json or a server.js has no default web process".into(),
        )
    };
    Ok(plan)
}

/// How to run yarn or pnpm: through corepack when package.json pins it in `packageManager`
/// (corepack honours the pin), else the tool on `PATH`, else through corepack, else an error.
/// Going through corepack adds a first step that checks it can fetch the tool, so that a
/// corepack without registry access fails with a message that says what to do.
fn tool(
    host: &Host,
    name: &str,
    file: &'static str,
    pinned: bool,
    steps: &mut Vec<String>,
    notes: &mut Vec<String>,
) -> Result<String, BuildError> {
    let corepack = host.which("corepack").is_some();
    if !(pinned && corepack) && host.which(name).is_some() {
        return Ok(name.to_string());
    }
    if !corepack {
        return Err(missing(name, file, "node"));
    }
    notes.push(if pinned {
        format!("{name}: the version package.json's packageManager pins, through corepack")
    } else {
        format!("{name} is not on the build host's PATH: using it through corepack")
    });
    steps.push(format!(
        "corepack {name} --version || {{ echo \"corepack could not provide {name} (see above); install {name} on the build host, or let corepack reach its registry\" >&2; exit 1; }}"
    ));
    Ok(format!("corepack {name}"))
}

/// A version: major, minor, patch.
type Version = (u64, u64, u64);

/// What a simple range allows: from `min` (inclusive) up to `max` (exclusive), if bounded.
#[derive(Debug, PartialEq, Eq)]
struct Range {
    min: Version,
    max: Option<Version>,
}

/// Parse the simple ranges: `*`, `x`, `>=A.B.C`, `^A.B.C`, `~A.B.C`, `A.x`, `A.B.x`, `A`,
/// `A.B`, `A.B.C` (missing parts are 0 or any). `None` for anything else.
fn parse_range(range: &str) -> Option<Range> {
    let r = range.trim();
    if r.is_empty() || r == "*" || r == "x" || r == "X" {
        return Some(Range {
            min: (0, 0, 0),
            max: None,
        });
    }
    let (op, rest) = if let Some(rest) = r.strip_prefix(">=") {
        (">=", rest)
    } else if let Some(rest) = r.strip_prefix('^') {
        ("^", rest)
    } else if let Some(rest) = r.strip_prefix('~') {
        ("~", rest)
    } else {
        ("", r.strip_prefix('=').unwrap_or(r))
    };
    let rest = rest.trim().strip_prefix('v').unwrap_or(rest.trim());
    let mut parts: Vec<Option<u64>> = Vec::new();
    for p in rest.split('.') {
        match p {
            "x" | "X" | "*" => parts.push(None),
            p if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                parts.push(Some(p.parse().ok()?))
            }
            _ => return None,
        }
    }
    if parts.is_empty() || parts.len() > 3 || parts[0].is_none() {
        return None;
    }
    // Parts given before the first wildcard.
    let given: Vec<u64> = parts.iter().map_while(|p| *p).collect();
    if parts[given.len()..].iter().any(Option::is_some) {
        return None;
    }
    let at = |i: usize| given.get(i).copied().unwrap_or(0);
    let min = (at(0), at(1), at(2));
    let max = match (op, given.len()) {
        (">=", _) => None,
        ("^", _) if min.0 > 0 => Some((min.0 + 1, 0, 0)),
        ("^", 1) => Some((1, 0, 0)),
        ("^", _) if min.1 > 0 => Some((0, min.1 + 1, 0)),
        ("^", 2) => Some((0, 1, 0)),
        ("^", _) => Some((0, 0, min.2 + 1)),
        ("~", 1) | ("", 1) => Some((min.0 + 1, 0, 0)),
        ("~", _) | ("", 2) => Some((min.0, min.1 + 1, 0)),
        _ => Some((min.0, min.1, min.2 + 1)),
    };
    Some(Range { min, max })
}

fn parse_node_version(v: &str) -> Option<Version> {
    let v = v.trim().strip_prefix('v').unwrap_or(v.trim());
    let mut it = v.split(['.', '-']).map(|p| p.parse::<u64>().ok());
    Some((it.next()??, it.next()??, it.next()??))
}

/// Check `engines.node` (`range`) against the host's `node --version` output; `text` is
/// package.json, for the line in an error.
fn check_engine(range: &str, host: &str, text: &str) -> Result<Option<String>, BuildError> {
    let Some(have) = parse_node_version(host) else {
        return Ok(Some(format!(
            "warning: package.json's engines.node asks for `{range}`, but `node --version` on the build host gave no version; not checked"
        )));
    };
    let Some(want) = parse_range(range) else {
        return Ok(Some(format!(
            "warning: package.json's engines.node `{range}` was not checked against the host's node {host}: only >=, ^, ~, x ranges and exact versions are"
        )));
    };
    let ok = have >= want.min && want.max.is_none_or(|max| have < max);
    if ok {
        return Ok(Some(format!(
            "using the host's node {host}, which satisfies engines.node `{range}`"
        )));
    }
    if have.0 < want.min.0 {
        return Err(BuildError::Manifest {
            file: "package.json".into(),
            line: engines_line(text),
            message: format!(
                "engines.node asks for `{range}`, but the build host's node is {host}, an older major version; install Node.js {} or newer on the build host, or change engines.node",
                want.min.0
            ),
        });
    }
    Ok(Some(format!(
        "warning: the build host's node {host} does not satisfy package.json's engines.node `{range}`; building with it anyway"
    )))
}

/// The line of `"node"` inside `"engines"` in package.json.
fn engines_line(text: &str) -> Option<usize> {
    let start = text.lines().position(|l| l.contains("\"engines\""))?;
    text.lines()
        .enumerate()
        .skip(start)
        .find(|(_, l)| l.contains("\"node\""))
        .map(|(i, _)| i + 1)
}

#[cfg(test)]
mod tests {
    use super::super::tests::plan_on;
    use super::*;

    const NODE: (&str, &str) = ("node", "echo v20.20.2");
    const NPM: (&str, &str) = ("npm", "exit 0");

    #[test]
    fn npm_ci_with_a_lock_file_then_build_then_prune() {
        let plan = plan_on(
            &[
                (
                    "package.json",
                    r#"{"scripts":{"build":"tsc"},"devDependencies":{"typescript":"5"}}"#,
                ),
                ("package-lock.json", "{}"),
            ],
            &[NODE, NPM],
            &[],
        )
        .expect("plan");
        assert_eq!(plan.kind, "node");
        assert_eq!(
            plan.steps,
            ["npm ci", "npm run build", "npm prune --omit=dev"]
        );
        assert!(matches!(plan.default_web, DefaultWeb::None(_)));
    }

    #[test]
    fn heroku_postbuild_replaces_build_and_start_is_the_default_web() {
        let plan = plan_on(
            &[(
                "package.json",
                r#"{"scripts":{"build":"a","heroku-postbuild":"b","start":"node ."}}"#,
            )],
            &[NODE, NPM],
            &[],
        )
        .expect("plan");
        assert_eq!(plan.steps, ["npm install", "npm run heroku-postbuild"]);
        assert_eq!(plan.default_web, DefaultWeb::Command("npm start".into()));
        let plan = plan_on(
            &[("package.json", "{}"), ("server.js", "")],
            &[NODE, NPM],
            &[],
        )
        .expect("plan");
        assert_eq!(
            plan.default_web,
            DefaultWeb::Command("node server.js".into())
        );
    }

    #[test]
    fn yarn_and_pnpm_use_corepack_then_path_else_name_the_tool() {
        let files = [("package.json", "{}"), ("yarn.lock", "")];
        let plan =
            plan_on(&files, &[NODE, ("corepack", "exit 0"), ("yarn", "")], &[]).expect("plan");
        assert_eq!(
            plan.steps,
            ["yarn install --frozen-lockfile"],
            "the host's yarn first"
        );
        let plan = plan_on(&files, &[NODE, ("corepack", "exit 0")], &[]).expect("plan");
        assert!(
            plan.steps[0].starts_with("corepack yarn --version ||"),
            "{plan:?}"
        );
        assert_eq!(plan.steps[1], "corepack yarn install --frozen-lockfile");
        let pinned = [
            ("package.json", r#"{"packageManager": "yarn@1.22.22"}"#),
            ("yarn.lock", ""),
        ];
        let plan =
            plan_on(&pinned, &[NODE, ("corepack", "exit 0"), ("yarn", "")], &[]).expect("plan");
        assert_eq!(
            plan.steps[1], "corepack yarn install --frozen-lockfile",
            "pinned: corepack"
        );
        let e = plan_on(&files, &[NODE], &[]).unwrap_err();
        assert!(
            matches!(e, BuildError::MissingTool { ref tool, .. } if tool == "yarn"),
            "{e}"
        );
        assert!(e.to_string().contains("yarn.lock"), "{e}");
        let e = plan_on(
            &[("package.json", "{}"), ("pnpm-lock.yaml", "")],
            &[NODE],
            &[],
        )
        .unwrap_err();
        assert!(e.to_string().contains("`pnpm`"), "{e}");
    }

    #[test]
    fn missing_node_is_named() {
        let e = plan_on(&[("package.json", "{}")], &[], &[]).unwrap_err();
        assert!(
            matches!(e, BuildError::MissingTool { ref tool, .. } if tool == "node"),
            "{e}"
        );
    }

    #[test]
    fn broken_package_json_is_named_with_its_line() {
        let e = plan_on(
            &[("package.json", "{\n\"scripts\": oops\n}")],
            &[NODE, NPM],
            &[],
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("package.json:2:"), "{e}");
    }

    #[test]
    fn ranges() {
        let r = |s: &str| parse_range(s).map(|r| (r.min, r.max));
        assert_eq!(r(">=18"), Some(((18, 0, 0), None)));
        assert_eq!(r("^18.2"), Some(((18, 2, 0), Some((19, 0, 0)))));
        assert_eq!(r("~18.2.1"), Some(((18, 2, 1), Some((18, 3, 0)))));
        assert_eq!(r("18.x"), Some(((18, 0, 0), Some((19, 0, 0)))));
        assert_eq!(r("20.1.x"), Some(((20, 1, 0), Some((20, 2, 0)))));
        assert_eq!(r("20.1.3"), Some(((20, 1, 3), Some((20, 1, 4)))));
        assert_eq!(r("*"), Some(((0, 0, 0), None)));
        assert_eq!(r(">=18 <21"), None);
        assert_eq!(r("18 || 20"), None);
        assert_eq!(r("lts/*"), None);
    }

    #[test]
    fn engines_node_warns_or_fails_on_an_older_major() {
        let text = "{\n \"engines\": {\n  \"node\": \">=22\"\n }\n}";
        let e = check_engine(">=22", "v20.20.2", text)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("package.json:3:"), "{e}");
        assert!(e.contains("v20.20.2"), "{e}");
        let w = check_engine("18.x", "v20.20.2", text)
            .expect("warns")
            .expect("note");
        assert!(w.starts_with("warning:") && w.contains("18.x"), "{w}");
        let w = check_engine(">=18 <21", "v20.20.2", text)
            .expect("warns")
            .expect("note");
        assert!(w.contains("not checked"), "{w}");
        let ok = check_engine("^20.1", "v20.20.2", text)
            .expect("ok")
            .expect("note");
        assert!(!ok.contains("warning"), "{ok}");
    }
}
