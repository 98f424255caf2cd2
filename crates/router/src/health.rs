//! Is a process ready for traffic?

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `true` when a TCP connect to `addr` succeeds and, if `path` is given, `GET path` answers with a
/// 2xx or 3xx status, all within `timeout`.
pub async fn healthy(addr: SocketAddr, path: Option<&str>, timeout: Duration) -> bool {
    tokio::time::timeout(timeout, check(addr, path))
        .await
        .unwrap_or(false)
}

async fn check(addr: SocketAddr, path: Option<&str>) -> bool {
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return false;
    };
    let Some(path) = path else {
        return true;
    };
    let path = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    if path
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return false;
    }
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: dozen-health\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    // Only the status line matters: `HTTP/1.x NNN`.
    let mut head = [0u8; 12];
    let mut read = 0;
    while read < head.len() {
        match stream.read(&mut head[read..]).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => read += n,
        }
    }
    head.starts_with(b"HTTP/1.")
        && head[8] == b' '
        && matches!(head[9], b'2' | b'3')
        && head[10..12].iter().all(u8::is_ascii_digit)
}
