//! Pushes that do not finish: a git client that stalls (its `git http-backend` is stopped after
//! `DOZEN_GIT_STALL_TIMEOUT`), and a server killed in the middle of a push (the next start
//! sweeps what git left). Either way the app takes pushes again.

use std::io::{Read, Write};
use std::net::TcpStream;

use super::*;

/// Standard base64 with padding, for HTTP basic auth.
fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn a_push_that_stops_sending_is_cut_and_the_app_takes_pushes_again() {
    if !git_available() {
        return;
    }
    let server = Server::start_with(&[("DOZEN_GIT_STALL_TIMEOUT", "2")]);
    server.ok(&["apps:create", "shop"]);
    assert_eq!(base64(b"dozen:abc"), "ZG96ZW46YWJj");
    assert_eq!(base64(b"ab"), "YWI=");

    // A push's request that promises a pack and sends four bytes of it.
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    s.set_read_timeout(Some(HANG)).expect("timeout");
    let auth = base64(format!("dozen:{TOKEN}").as_bytes());
    write!(
        s,
        "POST /git/shop.git/git-receive-pack HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Authorization: Basic {auth}\r\n\
         Content-Type: application/x-git-receive-pack-request\r\n\
         Content-Length: 100000\r\nConnection: close\r\n\r\n00a0"
    )
    .expect("send");
    s.flush().expect("flush");
    // The server stops git http-backend and ends the request (git may have sent its answer's
    // head already); without the timeout this read would wait until HANG and fail.
    let mut answer = Vec::new();
    let read = s.read_to_end(&mut answer);
    assert!(read.is_ok(), "the stalled request did not end: {read:?}");
    assert!(!text(&answer).contains("unpack ok"), "{}", text(&answer));

    // The app takes a push as usual.
    let v1 = app_files("after the stall");
    let c = Checkout::new(&server, "shop", &files(&v1));
    let (ok, out) = c.push(&["dozen", "main"]);
    assert!(ok, "{out}");
    assert_eq!(page(&server, "shop"), "after the stall");
}

/// What a killed push may leave in a repository: git's quarantine of the pushed objects, a
/// pack being written, lock files, and the push's socket beside the repositories.
fn leftovers(server: &Server, app: &str) -> Vec<String> {
    let repo = repo_dir(server, app);
    let mut found = Vec::new();
    let mut dirs = vec![repo.clone(), repo.parent().expect("git dir").to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("tmp_") || name.ends_with(".lock") || name.ends_with(".sock") {
                found.push(path.display().to_string());
            } else if path.is_dir() && path.starts_with(&repo) {
                dirs.push(path);
            }
        }
    }
    found
}

#[test]
fn a_server_killed_during_a_push_leaves_nothing_that_refuses_the_next() {
    if !git_available() {
        return;
    }
    let mut server = Server::start();
    server.ok(&["apps:create", "shop"]);
    let gate = Gate::new();
    server.ok(&["config:set", "-a", "shop", &gate.var()]);
    let c = Checkout::new(&server, "shop", &files(&app_files("after the crash")));
    let (mut push, lines) = c.spawn_push(&["dozen", "main"]);
    let mut seen = Vec::new();
    await_line(&lines, "running the release phase", &mut seen);
    // The pushed objects wait in git's quarantine while the hook deploys.
    assert!(
        leftovers(&server, "shop")
            .iter()
            .any(|p| p.contains("tmp_objdir")),
        "{:?}",
        leftovers(&server, "shop")
    );
    // SAFETY: killing the server this test started.
    unsafe { libc::kill(server.pid() as i32, libc::SIGKILL) };
    let status = push.wait().expect("git push");
    assert!(!status.success(), "{seen:#?}");
    server.stop();
    server.boot(Stdio::inherit());
    assert_eq!(leftovers(&server, "shop"), Vec::<String>::new());

    gate.open();
    let (ok, out) = c.push(&["dozen", "main"]);
    assert!(ok, "{out}");
    assert_eq!(page(&server, "shop"), "after the crash");
}
