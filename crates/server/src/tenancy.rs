//! Who an app's code runs as: a system user of its own when the server runs as root, the
//! server's own user (one trusted tenant) otherwise; and the modes of the platform's own files.
//!
//! Users are made and removed with the system's tools (`useradd --system`, `userdel`), run
//! through the supervisor (which reaps every child of the server). The user of app `shop` is
//! `dozen-shop`; a name too long for the 32 characters `useradd` allows is cut and ended with a
//! digest of the whole, so two apps never share a user.

use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use std::time::{Duration, Instant};

use dozen_supervise::{Confinement, ExitStatus, ProcessSpec, Stop, Supervisor};
use tokio::sync::watch;

use crate::platform::PlatformError;

/// The longest user name `useradd` accepts.
const MAX_USER_NAME: usize = 32;

/// An app's system user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppUser {
    /// Its uid.
    pub uid: u32,
    /// Its own group.
    pub gid: u32,
}

/// How apps are kept apart on this host.
#[derive(Debug)]
pub struct Tenancy {
    /// App users are named `<prefix><app>`.
    prefix: String,
    per_app_users: bool,
    /// One `useradd` or `userdel` at a time: they lock the user database and give up when it
    /// is locked.
    changing: tokio::sync::Mutex<()>,
}

impl Tenancy {
    /// Per-app users when this process runs as root, else one trusted tenant.
    pub fn detect(prefix: &str) -> Tenancy {
        // SAFETY: geteuid(2) cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        Tenancy {
            prefix: prefix.to_string(),
            per_app_users: root,
            changing: tokio::sync::Mutex::new(()),
        }
    }

    /// Whether each app runs as a user of its own.
    pub fn per_app_users(&self) -> bool {
        self.per_app_users
    }

    /// The start-up line that says which it is.
    pub fn describe(&self) -> String {
        if self.per_app_users {
            format!(
                "running as root: each app builds and runs as a system user of its own ({}<app>), with a private /tmp and only its own processes in /proc",
                self.prefix
            )
        } else {
            // SAFETY: geteuid(2) cannot fail.
            let uid = unsafe { libc::geteuid() };
            format!(
                "running as uid {uid}, not root: every app builds and runs as this user, so apps are one trusted tenant and can read each other's files and config (see the README's Trust model)"
            )
        }
    }

    /// The user app `app` runs as, created on first use; `None` for one trusted tenant.
    pub async fn ensure_user(
        &self,
        supervisor: &Supervisor,
        app: &str,
    ) -> Result<Option<AppUser>, PlatformError> {
        if !self.per_app_users {
            return Ok(None);
        }
        let name = user_name(&self.prefix, app);
        if let Some(user) = lookup(&name) {
            return Ok(Some(user));
        }
        let _one = self.changing.lock().await;
        if let Some(user) = lookup(&name) {
            return Ok(Some(user));
        }
        // A group of the name left behind (a userdel cut short) is taken over, not an error.
        let group = if group_exists(&name) {
            format!("--gid {name}")
        } else {
            "--user-group".to_string()
        };
        let command = format!(
            "useradd --system {group} --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin --comment 'dozen app {app}' {name}"
        );
        let status = change_users(supervisor, &command, || lookup(&name).is_some()).await;
        lookup(&name).map(Some).ok_or_else(|| {
            PlatformError::internal(
                format!("creating the system user {name} for app {app}"),
                format!("useradd {status}"),
            )
        })
    }

    /// Remove app `app`'s user and group (destroy), if it has one.
    pub async fn remove_user(
        &self,
        supervisor: &Supervisor,
        app: &str,
    ) -> Result<(), PlatformError> {
        if !self.per_app_users {
            return Ok(());
        }
        let name = user_name(&self.prefix, app);
        let _one = self.changing.lock().await;
        if lookup(&name).is_none() {
            return Ok(());
        }
        if let Some(user) = lookup(&name) {
            kill_processes_of(user.uid).await;
        }
        let status = change_users(supervisor, &format!("userdel {name}"), || {
            lookup(&name).is_none()
        })
        .await;
        if lookup(&name).is_some() {
            return Err(PlatformError::internal(
                format!("removing the system user {name} of app {app}"),
                format!("userdel {status}"),
            ));
        }
        Ok(())
    }
}

/// What an app's process runs as: `user`, seeing nothing of `data_dir` but `own_dirs`.
pub fn confinement(user: AppUser, data_dir: &Path, own_dirs: &[&Path]) -> Confinement {
    let data_dir = std::path::absolute(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    let mut c = Confinement::user(user.uid, user.gid).hiding(data_dir);
    for dir in own_dirs {
        c = c.exposing(dir.to_path_buf());
    }
    c
}

/// `<prefix><app>` (`dozen-<app>` by default), cut to 32 characters with a digest of the app's
/// name at the end when longer.
pub fn user_name(prefix: &str, app: &str) -> String {
    let full = format!("{prefix}{app}");
    if full.len() <= MAX_USER_NAME {
        return full;
    }
    let digest = blake3::hash(app.as_bytes()).to_hex();
    let tail = &digest[..6];
    let keep = MAX_USER_NAME - tail.len() - 1;
    format!("{}-{tail}", &full[..keep])
}

/// How long a change of the user database waits for a lock that another program holds.
const LOCK_WAIT: Duration = Duration::from_secs(30);

/// The exit codes with which `useradd` and `userdel` say they could not update the password
/// or group file, which is what they say when another program (a second dozen server, an
/// administrator's `adduser`, a package's install script) has the file locked: they give up at
/// once rather than wait.
const DATABASE_BUSY: [i32; 2] = [1, 10];

/// Run user-database tool `command` until `done` says its change is made: again, with pauses
/// growing to a second, while it fails as it does on a locked file, for up to [`LOCK_WAIT`].
/// Its last status, for messages.
async fn change_users(supervisor: &Supervisor, command: &str, done: impl Fn() -> bool) -> String {
    let deadline = Instant::now() + LOCK_WAIT;
    let mut pause = Duration::from_millis(50);
    loop {
        let status = run_tool(supervisor, command).await;
        let busy = matches!(status, ExitStatus::Code(c) if DATABASE_BUSY.contains(&c));
        if done() || !busy {
            return status.to_string();
        }
        if Instant::now() + pause > deadline {
            return format!(
                "{status} (as it does when another program has the user database locked; tried for {} s)",
                LOCK_WAIT.as_secs()
            );
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}

/// Run a user-database tool (as the server's user, root); its output goes to the server's own
/// log.
async fn run_tool(supervisor: &Supervisor, command: &str) -> ExitStatus {
    let (_tx, rx) = watch::channel(Stop::Running);
    let spec = ProcessSpec {
        name: command
            .split_whitespace()
            .next()
            .unwrap_or("user tool")
            .into(),
        command: command.into(),
        env: vec![
            (
                "PATH".into(),
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            ),
            ("LANG".into(), "C.UTF-8".into()),
        ],
        cwd: PathBuf::from("/"),
        port: None,
        color: 0,
        clear_env: true,
        log: None,
        confine: None,
        limits: None,
    };
    supervisor.run_once(spec, rx).await
}

/// SIGKILL every process whose real user is `uid` (a one-off still running, something that
/// escaped its process group), until none is left or five seconds have passed.
async fn kill_processes_of(uid: u32) {
    for _ in 0..100 {
        let pids = processes_of(uid);
        if pids.is_empty() {
            return;
        }
        for pid in pids {
            // SAFETY: kill(2) with a positive pid.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

fn processes_of(uid: u32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|st| {
                st.lines()
                    .find_map(|l| l.strip_prefix("Uid:"))
                    .and_then(|l| l.split_whitespace().next()?.parse::<u32>().ok())
                    == Some(uid)
            })
        })
        .collect()
}

/// Whether the system has a group `name`.
fn group_exists(name: &str) -> bool {
    let Ok(cname) = CString::new(name) else {
        return false;
    };
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: group is plain data that getgrnam_r fills in.
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::group = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; buf outlives it, and no field is read.
    let rc = unsafe {
        libc::getgrnam_r(
            cname.as_ptr(),
            &mut grp,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        )
    };
    rc == 0 && !result.is_null()
}

/// The uid and gid of user `name` in the user database.
fn lookup(name: &str) -> Option<AppUser> {
    let cname = CString::new(name).ok()?;
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: passwd is plain data that getpwnam_r fills in.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; the strings pwd points at live in buf,
    // which outlives the fields read below.
    let rc = unsafe {
        libc::getpwnam_r(
            cname.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() {
        return None;
    }
    Some(AppUser {
        uid: pwd.pw_uid,
        gid: pwd.pw_gid,
    })
}

/// The data directory is the server's alone (mode 0700): slugs, uploads, the build cache and
/// the SQLite store are not for the apps.
pub fn secure_data_dir(data_dir: &Path) -> std::io::Result<()> {
    std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700))
}

/// The SQLite store and its journal files are readable by the server's user only (mode 0600;
/// SQLite gives new journal files the mode of the database).
pub fn secure_store_files(data_dir: &Path) -> std::io::Result<()> {
    for name in ["dozen.db", "dozen.db-wal", "dozen.db-shm"] {
        let path = data_dir.join(name);
        match std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::user_name;

    #[test]
    fn user_names_fit_useradd() {
        assert_eq!(user_name("dozen-", "shop"), "dozen-shop");
        let long = "a".repeat(30);
        let name = user_name("dozen-", &long);
        assert_eq!(name.len(), 32);
        assert!(name.starts_with("dozen-aaaa"), "{name}");
        let other = format!("{}b", "a".repeat(29));
        assert_ne!(user_name("dozen-", &other), name);
    }
}
