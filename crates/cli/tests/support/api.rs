//! Raw HTTP/1.1 calls to a `dozen server`'s API (any method, path, headers and bytes, with a
//! bound on how long an answer may take), and a small app whose rollout a test can hold.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

/// How long one answer may take before the request is declared hung. Not a timing assertion:
/// no answer of these routes waits for anything slow.
pub const ANSWER: Duration = Duration::from_secs(30);

/// One answer, as read off the socket.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// Send one HTTP/1.1 request and read its answer. With `whole`, the body is read to its end
/// (de-chunked); without, only the status line and headers.
pub fn send(
    port: u16,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    whole: bool,
) -> std::io::Result<Answer> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(ANSWER))?;
    stream.set_write_timeout(Some(ANSWER))?;
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    // The server may answer (413, 401) before it reads the whole body, and close.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let header_end = loop {
        if let Some(i) = find(&raw, b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::Error::other(format!(
                "the connection closed before the answer's headers: {:?}",
                String::from_utf8_lossy(&raw)
            )));
        }
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..header_end]).into_owned();
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line: {head:?}")))?;
    let header = |name: &str| {
        head.lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
    };
    let content_type = header("content-type").unwrap_or_default();
    let chunked = header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let mut rest = raw[header_end..].to_vec();
    if whole && method != "HEAD" {
        stream.read_to_end(&mut rest)?;
    } else {
        rest.clear();
    }
    let body = if chunked && whole {
        dechunk(&rest)?
    } else {
        rest
    };
    Ok(Answer {
        status,
        content_type,
        body,
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn dechunk(mut data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = find(data, b"\r\n")
            .ok_or_else(|| std::io::Error::other("a chunk size line without its end"))?;
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|e| std::io::Error::other(format!("chunk size {size_text:?}: {e}")))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size + 2 {
            return Err(std::io::Error::other("a chunk cut short"));
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

pub const AUTH: (&str, &str) = ("Authorization", "Bearer dzn_test_token_0123456789abcdef");
pub const JSON: (&str, &str) = ("Content-Type", "application/json");

/// A small app: a web process in Python's standard library, and a release phase that waits
/// until the loopback port of its config var `GATE` (when set) takes connections, so a test can
/// hold a rollout half-way ([`Gate`]). A port and not a file: an app's processes have a `/tmp`
/// of their own and do not see the test's files when the server runs as root.
pub fn gated_app(tag: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(
        dir.path().join("Procfile"),
        format!("web: python3 web.py {tag}\nrelease: python3 gate.py\n"),
    )
    .expect("Procfile");
    std::fs::write(
        dir.path().join("web.py"),
        "import http.server, os\n\
         http.server.ThreadingHTTPServer(('127.0.0.1', int(os.environ['PORT'])), \
         http.server.SimpleHTTPRequestHandler).serve_forever()\n",
    )
    .expect("web.py");
    std::fs::write(
        dir.path().join("gate.py"),
        "import os, socket, time\n\
         port = os.environ.get('GATE')\n\
         while port:\n\
         \x20   try:\n\
         \x20       socket.create_connection(('127.0.0.1', int(port)), timeout=1).close()\n\
         \x20       break\n\
         \x20   except OSError:\n\
         \x20       time.sleep(0.05)\n",
    )
    .expect("gate.py");
    dir
}

/// The gate of a [`gated_app`]: open while the test listens on its port.
#[derive(Debug)]
pub struct Gate {
    port: u16,
    listener: std::sync::Mutex<Option<std::net::TcpListener>>,
}

impl Gate {
    /// A closed gate on a free port.
    pub fn new() -> Gate {
        Gate {
            port: super::free_port(),
            listener: std::sync::Mutex::new(None),
        }
    }

    /// The config var that points the app at it (`GATE=PORT`).
    pub fn var(&self) -> String {
        format!("GATE={}", self.port)
    }

    /// Let release phases through.
    pub fn open(&self) {
        let l = std::net::TcpListener::bind(("127.0.0.1", self.port)).expect("bind the gate");
        *self.listener.lock().expect("gate") = Some(l);
    }

    /// Hold release phases again.
    pub fn close(&self) {
        self.listener.lock().expect("gate").take();
    }
}

/// The source of `dir` as the tar.zst `dozen deploy` uploads.
pub fn source_archive(dir: &Path) -> Vec<u8> {
    let mut out = tempfile::tempfile().expect("tmp");
    dozen_build::pack_source(dir, &out).expect("pack");
    let mut bytes = Vec::new();
    std::io::Seek::rewind(&mut out).expect("rewind");
    out.read_to_end(&mut bytes).expect("read");
    bytes
}

/// Whether the test must fail rather than skip when a tool is missing.
pub fn required() -> bool {
    std::env::var_os("CI").is_some()
}
