//! Whether a TCP port is being listened on, read from `/proc/net/tcp{,6}` (no connection is
//! made, so the app sees no stray request).

use std::fs;

/// True when some socket on this host listens on TCP `port` (IPv4 or IPv6, any address).
pub fn is_listening(port: u16) -> bool {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .any(|path| fs::read_to_string(path).is_ok_and(|table| table_listens(&table, port)))
}

fn table_listens(table: &str, port: u16) -> bool {
    // Each row: sl local_address rem_address st ...; local_address is HEXIP:HEXPORT and the
    // state 0A is LISTEN.
    table.lines().skip(1).any(|row| {
        let mut fields = row.split_whitespace();
        let local = fields.nth(1);
        let state = fields.nth(1);
        state == Some("0A")
            && local
                .and_then(|l| l.rsplit_once(':'))
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
                == Some(port)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_listen_rows() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue\n   0: 0100007F:1388 00000000:0000 0A 00000000:00000000\n   1: 0100007F:1389 0100007F:9C40 01 00000000:00000000\n";
        assert!(table_listens(table, 5000));
        assert!(!table_listens(table, 5001), "established, not listening");
    }

    #[test]
    fn sees_a_real_listener() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        assert!(is_listening(port));
    }
}

/// One task that watches for ports to be bound on behalf of every process, reading the socket
/// tables once per tick however many processes wait (reading them costs milliseconds on a busy
/// host). Ticks are frequent while a process is young and slow afterwards.
#[derive(Debug, Clone)]
pub(crate) struct PortWatcher {
    tx: tokio::sync::mpsc::UnboundedSender<(u16, tokio::sync::oneshot::Sender<()>)>,
}

impl PortWatcher {
    /// Start the watcher task (inside a tokio runtime). It ends when every handle is dropped.
    /// The queue holds at most one request per running process.
    pub(crate) fn start(give_up_after: std::time::Duration) -> PortWatcher {
        use std::time::{Duration, Instant};
        let (tx, mut rx) =
            tokio::sync::mpsc::unbounded_channel::<(u16, tokio::sync::oneshot::Sender<()>)>();
        tokio::spawn(async move {
            let mut waiting: Vec<(u16, tokio::sync::oneshot::Sender<()>, Instant)> = Vec::new();
            loop {
                if waiting.is_empty() {
                    match rx.recv().await {
                        Some((port, done)) => waiting.push((port, done, Instant::now())),
                        None => return,
                    }
                }
                let youngest = waiting
                    .iter()
                    .map(|w| w.2.elapsed())
                    .min()
                    .unwrap_or_default();
                let tick = if youngest < Duration::from_secs(2) {
                    Duration::from_millis(50)
                } else if youngest < Duration::from_secs(10) {
                    Duration::from_millis(250)
                } else {
                    Duration::from_secs(1)
                };
                tokio::select! {
                    req = rx.recv() => match req {
                        Some((port, done)) => { waiting.push((port, done, Instant::now())); continue; }
                        None => return,
                    },
                    _ = tokio::time::sleep(tick) => {}
                }
                waiting.retain(|w| !w.1.is_closed() && w.2.elapsed() < give_up_after);
                if waiting.is_empty() {
                    continue;
                }
                let tables: Vec<String> = ["/proc/net/tcp", "/proc/net/tcp6"]
                    .iter()
                    .filter_map(|p| fs::read_to_string(p).ok())
                    .collect();
                let mut still = Vec::with_capacity(waiting.len());
                for (port, done, since) in waiting.drain(..) {
                    if tables.iter().any(|t| table_listens(t, port)) {
                        let _ = done.send(());
                    } else {
                        still.push((port, done, since));
                    }
                }
                waiting = still;
            }
        });
        PortWatcher { tx }
    }

    /// Resolves once something listens on `port`; never, if nothing does in time.
    pub(crate) async fn bound(&self, port: u16) {
        let (done, rx) = tokio::sync::oneshot::channel();
        if self.tx.send((port, done)).is_err() {
            return std::future::pending().await;
        }
        if rx.await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
