//! Whether a TCP port is being listened on, asked of the kernel's socket diagnostics
//! (`NETLINK_SOCK_DIAG`, what `ss -l` uses) with `/proc/net/tcp{,6}` as the fallback. No
//! connection is made, so the app sees no stray request.
//!
//! The netlink query returns only listening sockets. The `/proc` tables list every socket on
//! the host, including connections in `TIME_WAIT`: on a busy host they run to megabytes, and
//! reading them on every tick cost an idle supervisor a fifth of a core.

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// True when some socket on this host listens on TCP `port` (IPv4 or IPv6, any address).
pub fn is_listening(port: u16) -> bool {
    ListeningPorts::read().contains(port)
}

/// The TCP ports listened on in this network namespace, read once.
#[derive(Debug)]
enum ListeningPorts {
    /// From the kernel's socket diagnostics: sorted, without duplicates.
    Ports(Vec<u16>),
    /// Netlink was refused (a sandbox): the `/proc/net/tcp{,6}` tables as text.
    Tables(Vec<String>),
}

impl ListeningPorts {
    fn read() -> ListeningPorts {
        match sock_diag_listening() {
            Ok(ports) => ListeningPorts::Ports(ports),
            Err(_) => ListeningPorts::Tables(
                ["/proc/net/tcp", "/proc/net/tcp6"]
                    .iter()
                    .filter_map(|p| fs::read_to_string(p).ok())
                    .collect(),
            ),
        }
    }

    fn contains(&self, port: u16) -> bool {
        match self {
            ListeningPorts::Ports(ports) => ports.binary_search(&port).is_ok(),
            ListeningPorts::Tables(tables) => tables.iter().any(|t| table_listens(t, port)),
        }
    }
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

// The netlink messages of `linux/inet_diag.h` and `linux/sock_diag.h`.
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const TCP_LISTEN: u32 = 10;
const NLMSG_HDR: usize = 16;
/// `struct inet_diag_req_v2`: family, protocol, ext, pad, states, then a 48-byte socket id.
const REQ_LEN: usize = 56;
/// Where `idiag_sport` (network order) sits in a reply's payload (`struct inet_diag_msg`).
const MSG_SPORT: usize = 4;

/// The local ports of every listening TCP socket, IPv4 and IPv6.
fn sock_diag_listening() -> io::Result<Vec<u16>> {
    // SAFETY: plain socket(2) call; the result is checked before it is owned.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            libc::NETLINK_SOCK_DIAG,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new descriptor that nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut ports = Vec::new();
    for (seq, family) in [(1u32, libc::AF_INET), (2, libc::AF_INET6)] {
        dump_family(&sock, seq, family as u8, &mut ports)?;
    }
    ports.sort_unstable();
    ports.dedup();
    Ok(ports)
}

fn dump_family(sock: &OwnedFd, seq: u32, family: u8, ports: &mut Vec<u16>) -> io::Result<()> {
    let mut req = [0u8; NLMSG_HDR + REQ_LEN];
    let len = req.len() as u32;
    req[0..4].copy_from_slice(&len.to_ne_bytes());
    req[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16;
    req[6..8].copy_from_slice(&flags.to_ne_bytes());
    req[8..12].copy_from_slice(&seq.to_ne_bytes());
    req[NLMSG_HDR] = family;
    req[NLMSG_HDR + 1] = libc::IPPROTO_TCP as u8;
    req[NLMSG_HDR + 4..NLMSG_HDR + 8].copy_from_slice(&(1u32 << TCP_LISTEN).to_ne_bytes());
    // SAFETY: zeroed sockaddr_nl addressed to the kernel (pid 0); the buffers outlive the calls.
    let sent = unsafe {
        let mut kernel: libc::sockaddr_nl = std::mem::zeroed();
        kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        libc::sendto(
            sock.as_raw_fd(),
            req.as_ptr().cast(),
            req.len(),
            0,
            (&raw const kernel).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        // SAFETY: reads into a buffer of the given length that this function owns.
        let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        if parse_replies(&buf[..n as usize], seq, ports)? {
            return Ok(());
        }
    }
}

/// Collect the ports from one datagram of replies; true once the dump is complete.
fn parse_replies(mut data: &[u8], seq: u32, ports: &mut Vec<u16>) -> io::Result<bool> {
    let u16_at = |d: &[u8], at: usize| u16::from_ne_bytes([d[at], d[at + 1]]);
    let u32_at = |d: &[u8], at: usize| u32::from_ne_bytes([d[at], d[at + 1], d[at + 2], d[at + 3]]);
    while data.len() >= NLMSG_HDR {
        let len = u32_at(data, 0) as usize;
        if len < NLMSG_HDR || len > data.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "short netlink message",
            ));
        }
        let kind = u16_at(data, 4);
        let payload = &data[NLMSG_HDR..len];
        if u32_at(data, 8) == seq {
            match kind as i32 {
                libc::NLMSG_DONE => return Ok(true),
                libc::NLMSG_ERROR => {
                    let errno = if payload.len() >= 4 {
                        u32_at(payload, 0) as i32
                    } else {
                        0
                    };
                    return Err(io::Error::from_raw_os_error(
                        errno.checked_neg().unwrap_or(0),
                    ));
                }
                _ if kind == SOCK_DIAG_BY_FAMILY && payload.len() >= MSG_SPORT + 2 => {
                    ports.push(u16::from_be_bytes([
                        payload[MSG_SPORT],
                        payload[MSG_SPORT + 1],
                    ]));
                }
                _ => {}
            }
        }
        data = &data[len.next_multiple_of(4).min(data.len())..];
    }
    Ok(false)
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

    #[test]
    fn netlink_and_proc_tables_agree() {
        let v4 = std::net::TcpListener::bind("127.0.0.1:0").expect("bind v4");
        let v4_port = v4.local_addr().expect("addr").port();
        let v6 = std::net::TcpListener::bind("[::1]:0").ok();
        // A connected socket's port is not a listening port.
        let client = std::net::TcpStream::connect(("127.0.0.1", v4_port)).expect("connect");
        let client_port = client.local_addr().expect("addr").port();
        let ports = sock_diag_listening().expect("NETLINK_SOCK_DIAG answers");
        assert!(ports.contains(&v4_port));
        assert!(!ports.contains(&client_port));
        if let Some(v6) = v6 {
            let v6_port = v6.local_addr().expect("addr").port();
            assert!(ports.contains(&v6_port));
        }
        let tables =
            ["/proc/net/tcp", "/proc/net/tcp6"].map(|p| fs::read_to_string(p).unwrap_or_default());
        for port in [v4_port, client_port] {
            assert_eq!(
                ports.contains(&port),
                tables.iter().any(|t| table_listens(t, port)),
                "port {port}"
            );
        }
    }
}

/// One task that watches for ports to be bound on behalf of every process, asking for the
/// listening ports once per tick however many processes wait. Ticks are frequent while a process is young and slow afterwards.
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
                let listening = ListeningPorts::read();
                let mut still = Vec::with_capacity(waiting.len());
                for (port, done, since) in waiting.drain(..) {
                    if listening.contains(port) {
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
