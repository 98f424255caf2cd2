//! `git push` to a dozen server from the user's side: `git:remote` adds the remote,
//! `git:credentials` is the credential helper that gives git the API token, and the hidden
//! `git-hook` is the server's pre-receive hook (its work is in `dozen_server::git::hook`).

use std::io::{BufRead, Write};
use std::process::{Command, ExitCode};

use anyhow::{Context, bail};

use crate::client::Client;
use crate::remote::AppArgs;

/// The server's base URL, as the client commands use it.
fn server_url() -> String {
    std::env::var("DOZEN_URL")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "http://127.0.0.1:5050".into())
        .trim_end_matches('/')
        .to_string()
}

/// `scheme://host[:port]` of a URL: what git matches credential settings by.
fn origin(url: &str) -> anyhow::Result<&str> {
    let (scheme, rest) = url
        .split_once("://")
        .with_context(|| format!("DOZEN_URL {url:?} is not an http(s) URL"))?;
    if scheme != "http" && scheme != "https" {
        bail!("DOZEN_URL {url:?} is not an http(s) URL");
    }
    let host_end = rest.find('/').unwrap_or(rest.len());
    Ok(&url[..scheme.len() + 3 + host_end])
}

fn git(args: &[&str]) -> anyhow::Result<std::process::Output> {
    Command::new("git")
        .args(args)
        .output()
        .context("running git (is it installed?)")
}

fn git_ok(args: &[&str]) -> anyhow::Result<()> {
    let out = git(args)?;
    if !out.status.success() {
        bail!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// `dozen git:remote -a APP`: add (or point) the remote at the app's repository on the server
/// and have git ask `dozen git:credentials` for the token of that server.
pub fn remote(name: &str, args: AppArgs) -> anyhow::Result<ExitCode> {
    let app = args.app()?.to_string();
    let inside = git(&["rev-parse", "--is-inside-work-tree"])?;
    if !inside.status.success() {
        bail!("this is not a git checkout: run `git init` first, or cd into the app's checkout");
    }
    // The app must exist (and the token may see it) before git is pointed at it.
    let _: serde_json::Value = Client::from_env()?.get(&format!("/v1/apps/{app}"))?;
    let base = server_url();
    let url = format!("{base}/git/{app}.git");
    let exists = git(&["remote", "get-url", name])?.status.success();
    if exists {
        git_ok(&["remote", "set-url", name, &url])?;
    } else {
        git_ok(&["remote", "add", name, &url])?;
    }
    let origin = origin(&base)?;
    let exe = std::env::current_exe().context("finding the dozen binary")?;
    let helper = format!(
        "!{} git:credentials",
        dozen_core::command::shell_quote(&exe.to_string_lossy())
    );
    let key = format!("credential.{origin}.helper");
    // One helper for the server: an earlier one is replaced, not added to.
    let _ = git(&["config", "--local", "--unset-all", &key]);
    git_ok(&["config", "--local", &key, &helper])?;
    if let Some(ca) = std::env::var_os("DOZEN_CA_CERT").filter(|v| !v.is_empty()) {
        let ca = std::path::absolute(&ca).context("DOZEN_CA_CERT")?;
        git_ok(&[
            "config",
            "--local",
            &format!("http.{origin}.sslCAInfo"),
            &ca.to_string_lossy(),
        ])?;
        // git takes GIT_SSL_CAINFO over every http.sslCAInfo setting.
        if let Some(env) = std::env::var_os("GIT_SSL_CAINFO").filter(|v| !v.is_empty()) {
            if std::path::Path::new(&env) != ca {
                eprintln!(
                    "note: GIT_SSL_CAINFO={} is set here, and git uses it instead of {} for every server: unset it, or push with GIT_SSL_CAINFO={}",
                    std::path::Path::new(&env).display(),
                    ca.display(),
                    ca.display()
                );
            }
        }
    }
    println!(
        "{} remote {name}: {url}",
        if exists { "updated" } else { "added" }
    );
    println!("deploy with: {}", push_hint(name));
    Ok(ExitCode::SUCCESS)
}

/// The push that deploys this checkout's branch: `git push dozen master` on `master`, since
/// a push to either deploy branch deploys; `BRANCH:main` on another branch.
fn push_hint(remote: &str) -> String {
    let branch = git(&["symbolic-ref", "--quiet", "--short", "HEAD"])
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    match branch.as_deref() {
        Some(b @ ("main" | "master")) => format!("git push {remote} {b}"),
        Some(b) if !b.is_empty() => format!("git push {remote} {b}:main"),
        _ => format!("git push {remote} HEAD:main"),
    }
}

/// `dozen git:credentials get`: git's credential helper protocol (key=value lines on stdin,
/// an empty line or the end ends them). The token goes to DOZEN_URL's own scheme, host and
/// port only; for anything else the helper says nothing and git asks elsewhere.
pub fn credentials(operation: &str) -> anyhow::Result<ExitCode> {
    let mut asked = std::collections::BTreeMap::new();
    for line in std::io::stdin().lock().lines() {
        let line = line.context("reading git's request")?;
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once('=') {
            asked.insert(k.to_string(), v.to_string());
        }
    }
    if operation != "get" {
        return Ok(ExitCode::SUCCESS);
    }
    let base = server_url();
    let origin = origin(&base)?;
    let wanted = match (asked.get("protocol"), asked.get("host")) {
        (Some(p), Some(h)) => format!("{p}://{h}"),
        _ => return Ok(ExitCode::SUCCESS),
    };
    if !same_origin(&wanted, origin) {
        return Ok(ExitCode::SUCCESS);
    }
    let Some(token) = std::env::var("DOZEN_API_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty())
    else {
        bail!("DOZEN_API_TOKEN is not set: git needs it to reach {origin}");
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "username=dozen")?;
    writeln!(out, "password={}", token.trim())?;
    Ok(ExitCode::SUCCESS)
}

/// Whether two `scheme://host[:port]` are the same, with a default port written or not.
fn same_origin(a: &str, b: &str) -> bool {
    fn normal(o: &str) -> String {
        let o = o.to_ascii_lowercase();
        o.strip_suffix(":80")
            .filter(|_| o.starts_with("http://"))
            .or_else(|| o.strip_suffix(":443").filter(|_| o.starts_with("https://")))
            .unwrap_or(&o)
            .to_string()
    }
    normal(a) == normal(b)
}

/// What `dozen deploy` can say of the directory it packs, as a git checkout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checkout {
    /// Not in a git checkout (or git is not installed).
    None,
    /// The top of a checkout with nothing to commit: the upload is HEAD's tree.
    Clean(String),
    /// The top of a checkout at HEAD with changes not committed (untracked files too, which the
    /// upload includes).
    Dirty(String),
    /// A directory below the top of the checkout at `top`: its commit is the whole tree's.
    Below { top: std::path::PathBuf },
    /// A checkout without a commit yet.
    Unborn,
}

/// What `dir` is as a git checkout. Runs `git` with `std::process::Command` (the CLI has no
/// process reaper).
pub fn checkout_of(dir: &std::path::Path) -> Checkout {
    let run = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim_end().to_string())
    };
    let Some(top) = run(&["rev-parse", "--show-toplevel"]) else {
        return Checkout::None;
    };
    let top = std::path::PathBuf::from(top);
    let same = match (top.canonicalize(), dir.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if !same {
        return Checkout::Below { top };
    }
    let Some(head) = run(&["rev-parse", "--verify", "--quiet", "HEAD^{commit}"]) else {
        return Checkout::Unborn;
    };
    match run(&["status", "--porcelain", "--untracked-files=normal"]) {
        Some(changes) if changes.is_empty() => Checkout::Clean(head),
        _ => Checkout::Dirty(head),
    }
}

/// `dozen git-hook pre-receive`, run by git in a push to the server.
pub fn hook(name: &str) -> anyhow::Result<ExitCode> {
    if name != "pre-receive" {
        bail!("git-hook {name}: only pre-receive is a dozen hook");
    }
    let code = dozen_server::git::hook::pre_receive(std::io::stdin().lock(), std::io::stdout());
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_compared_as_git_gives_them() {
        assert_eq!(
            origin("http://127.0.0.1:5050").expect("ok"),
            "http://127.0.0.1:5050"
        );
        assert_eq!(
            origin("https://dozen.example.com/x").expect("ok"),
            "https://dozen.example.com"
        );
        assert!(origin("ftp://x").is_err());
        assert!(same_origin("https://h:443", "https://h"));
        assert!(same_origin("http://H:5050", "http://h:5050"));
        assert!(!same_origin("http://h:5051", "http://h:5050"));
        assert!(!same_origin("https://h", "http://h"));
    }
}
