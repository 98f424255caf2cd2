//! The drain receivers of tests/drains.rs, written here: syslog over TCP or TLS (RFC 6587
//! octet counting, RFC 5424 messages) and an HTTPS endpoint taking logplex batches, each on a
//! thread of its own, recording what it got in an [`Inbox`]; a CA and a certificate for
//! `localhost` made with rcgen.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

use super::support::await_condition;

/// One RFC 5424 message as received.
#[derive(Debug, Clone)]
pub struct Msg {
    pub app_name: String,
    pub procid: String,
    pub msgid: String,
    pub text: String,
}

pub fn parse(raw: &[u8]) -> Msg {
    let s = String::from_utf8_lossy(raw);
    // <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG
    let f: Vec<&str> = s.splitn(8, ' ').collect();
    assert!(
        f.len() == 8 && f[0].starts_with('<') && f[0].ends_with(">1"),
        "not an RFC 5424 message: {s:?}"
    );
    Msg {
        app_name: f[3].to_string(),
        procid: f[4].to_string(),
        msgid: f[5].to_string(),
        text: f[7].to_string(),
    }
}

/// What a receiver got, and anything wrong it saw in the requests.
#[derive(Clone, Default)]
pub struct Inbox {
    pub messages: Arc<Mutex<Vec<Msg>>>,
    pub problems: Arc<Mutex<Vec<String>>>,
}

impl Inbox {
    pub fn all(&self) -> Vec<Msg> {
        self.messages.lock().unwrap().clone()
    }

    pub fn problem(&self, p: String) {
        self.problems.lock().unwrap().push(p);
    }

    /// Wait until a message passes `pred`; that message.
    pub fn await_message(&self, what: &str, pred: impl Fn(&Msg) -> bool) -> Msg {
        let found = std::cell::RefCell::new(None);
        await_condition(what, || {
            let all = self.messages.lock().unwrap();
            *found.borrow_mut() = all.iter().find(|m| pred(m)).cloned();
            found.borrow().is_some()
        });
        found.into_inner().expect("found")
    }

    /// The line numbers (`n=K`) `procid` printed, as received.
    pub fn numbers(&self, procid: &str) -> Vec<usize> {
        numbers(&self.all(), procid)
    }
}

pub fn numbers(all: &[Msg], procid: &str) -> Vec<usize> {
    all.iter()
        .filter(|m| m.app_name == "app" && m.procid == procid)
        .filter_map(|m| m.text.strip_prefix("n=")?.split(' ').next()?.parse().ok())
        .collect()
}

/// Split RFC 6587 octet-counted frames off the front of `buf`.
pub fn take_frames(buf: &mut Vec<u8>, inbox: &Inbox) {
    let mut used = 0;
    let mut got = Vec::new();
    loop {
        let rest = &buf[used..];
        let Some(sp) = rest.iter().position(|b| *b == b' ') else {
            break;
        };
        let Some(len) = std::str::from_utf8(&rest[..sp])
            .ok()
            .and_then(|n| n.parse::<usize>().ok())
        else {
            inbox.problem(format!(
                "not an octet count: {:?}",
                String::from_utf8_lossy(&rest[..sp.min(40)])
            ));
            buf.clear();
            return;
        };
        if rest.len() < sp + 1 + len {
            break;
        }
        got.push(parse(&rest[sp + 1..sp + 1 + len]));
        used += sp + 1 + len;
    }
    buf.drain(..used);
    inbox.messages.lock().unwrap().extend(got);
}

pub fn read_syslog(mut s: impl Read, inbox: Inbox) {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        take_frames(&mut buf, &inbox);
    }
}

/// A syslog listener on `port`, over TLS when `tls` is given.
pub fn syslog_receiver(port: u16, tls: Option<Arc<rustls::ServerConfig>>) -> Inbox {
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the syslog receiver");
    let inbox = Inbox::default();
    let into = inbox.clone();
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let into = into.clone();
            let tls = tls.clone();
            std::thread::spawn(move || match tls {
                Some(config) => {
                    let conn = rustls::ServerConnection::new(config).expect("tls");
                    read_syslog(rustls::StreamOwned::new(conn, tcp), into);
                }
                None => read_syslog(tcp, into),
            });
        }
    });
    inbox
}

/// An HTTPS endpoint on `port` taking logplex batches that must carry `authorization`.
pub fn https_receiver(port: u16, tls: Arc<rustls::ServerConfig>, authorization: String) -> Inbox {
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the HTTPS receiver");
    let inbox = Inbox::default();
    let into = inbox.clone();
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let (into, tls, authorization) = (into.clone(), tls.clone(), authorization.clone());
            std::thread::spawn(move || {
                let conn = rustls::ServerConnection::new(tls).expect("tls");
                serve_http(rustls::StreamOwned::new(conn, tcp), &into, &authorization);
            });
        }
    });
    inbox
}

pub fn serve_http(mut s: impl Read + Write, inbox: &Inbox, authorization: &str) {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut more = |s: &mut dyn Read, buf: &mut Vec<u8>| match s.read(&mut chunk) {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
    };
    loop {
        let head_end = loop {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p;
            }
            if !more(&mut s, &mut buf) {
                return;
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let header = |name: &str| {
            head.lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().to_string())
        };
        let len: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + 4 + len {
            if !more(&mut s, &mut buf) {
                return;
            }
        }
        if !head.starts_with("POST /logplex ") {
            inbox.problem(format!("request line: {:?}", head.lines().next()));
        }
        if header("content-type").as_deref() != Some("application/logplex-1") {
            inbox.problem(format!("content-type: {:?}", header("content-type")));
        }
        if header("authorization").as_deref() != Some(authorization) {
            inbox.problem("a request without the drain's credentials".into());
        }
        let mut body = buf[head_end + 4..head_end + 4 + len].to_vec();
        let before = inbox.messages.lock().unwrap().len();
        take_frames(&mut body, inbox);
        let got = inbox.messages.lock().unwrap().len() - before;
        if header("logplex-msg-count") != Some(got.to_string()) {
            inbox.problem(format!(
                "Logplex-Msg-Count {:?} for {got} messages",
                header("logplex-msg-count")
            ));
        }
        buf.drain(..head_end + 4 + len);
        if s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .and_then(|()| s.flush())
            .is_err()
        {
            return;
        }
    }
}

/// A CA (its PEM file, for `DOZEN_DRAIN_CA`) and a server config with a certificate for
/// `localhost` it signed.
pub struct Tls {
    dir: tempfile::TempDir,
    pub config: Arc<rustls::ServerConfig>,
}

impl Tls {
    pub fn new() -> Tls {
        use rustls::pki_types::pem::PemObject;
        let dir = tempfile::tempdir().expect("tmp");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("ca");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("key")).expect("ca");
        let key = KeyPair::generate().expect("key");
        let leaf = CertificateParams::new(vec!["localhost".to_string()])
            .expect("leaf")
            .signed_by(&key, &ca)
            .expect("sign");
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).expect("write the CA");
        let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes())
            .expect("key");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(vec![leaf.der().clone()], key)
            .expect("cert");
        Tls {
            dir,
            config: Arc::new(config),
        }
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }
}

/// `Basic base64(user:password)`.
pub fn basic(user: &str, password: &str) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = format!("{user}:{password}").into_bytes();
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    format!("Basic {out}")
}
