//! Sending a batch of messages to a drain: syslog over TCP or TLS, or an HTTPS POST.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::url::{DrainUrl, Protocol};

/// How long connecting or one send may take before it counts as a failure.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// A failure to deliver, with a message that never holds the URL's password.
#[derive(Debug)]
pub(crate) struct SendFailure(pub String);

enum Conn {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// One drain's way out: an open connection (syslog) or an HTTP client (HTTPS).
pub(crate) struct Transport {
    url: DrainUrl,
    tls: Arc<rustls::ClientConfig>,
    conn: Option<Conn>,
    http: Option<reqwest::Client>,
    drain_id: String,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport").field("url", &self.url).finish()
    }
}

impl Transport {
    pub(crate) fn new(url: DrainUrl, tls: Arc<rustls::ClientConfig>, drain_id: &str) -> Self {
        Transport {
            url,
            tls,
            conn: None,
            http: None,
            drain_id: drain_id.to_string(),
        }
    }

    /// True for an HTTPS drain (batches wait for the flush interval).
    pub(crate) fn is_https(&self) -> bool {
        self.url.protocol() == Protocol::Https
    }

    /// Forget the connection (the next send opens a new one).
    pub(crate) fn reset(&mut self) {
        self.conn = None;
    }

    /// Deliver `body`, `count` messages each framed with [`frame`](super::message::frame),
    /// with `frame_id` naming the batch (HTTPS receivers use it to recognise a retry).
    pub(crate) async fn send(
        &mut self,
        body: Vec<u8>,
        count: usize,
        frame_id: &str,
    ) -> Result<(), SendFailure> {
        match self.url.protocol() {
            Protocol::Https => self.post(body, count, frame_id).await,
            Protocol::Syslog | Protocol::SyslogTls => {
                match tokio::time::timeout(IO_TIMEOUT, self.write(&body)).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => {
                        self.conn = None;
                        Err(e)
                    }
                    Err(_) => {
                        self.conn = None;
                        Err(SendFailure("timed out writing to the drain".into()))
                    }
                }
            }
        }
    }

    async fn write(&mut self, body: &[u8]) -> Result<(), SendFailure> {
        if let Some(conn) = self.conn.as_mut() {
            if peer_closed(conn).await {
                self.conn = None;
            }
        }
        if self.conn.is_none() {
            self.conn = Some(self.connect().await?);
        }
        let io = |e: std::io::Error| SendFailure(format!("writing: {e}"));
        match self.conn.as_mut() {
            Some(Conn::Tcp(s)) => {
                s.write_all(body).await.map_err(io)?;
                s.flush().await.map_err(io)
            }
            Some(Conn::Tls(s)) => {
                s.write_all(body).await.map_err(io)?;
                s.flush().await.map_err(io)
            }
            None => Err(SendFailure("not connected".into())),
        }
    }

    async fn connect(&self) -> Result<Conn, SendFailure> {
        let (host, port) = (self.url.host(), self.url.port());
        let tcp = tokio::time::timeout(IO_TIMEOUT, TcpStream::connect((host, port)))
            .await
            .map_err(|_| SendFailure(format!("connecting to {host}:{port}: timed out")))?
            .map_err(|e| SendFailure(format!("connecting to {host}:{port}: {e}")))?;
        let _ = tcp.set_nodelay(true);
        if self.url.protocol() == Protocol::Syslog {
            return Ok(Conn::Tcp(tcp));
        }
        let name = ServerName::try_from(host.to_string())
            .map_err(|_| SendFailure(format!("{host} is not a valid TLS server name")))?;
        let tls = TlsConnector::from(self.tls.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| SendFailure(format!("TLS with {host}:{port}: {e}")))?;
        Ok(Conn::Tls(Box::new(tls)))
    }

    async fn post(
        &mut self,
        body: Vec<u8>,
        count: usize,
        frame_id: &str,
    ) -> Result<(), SendFailure> {
        if self.http.is_none() {
            let mut tls = (*self.tls).clone();
            tls.alpn_protocols = vec![b"http/1.1".to_vec()];
            let client = reqwest::Client::builder()
                .use_preconfigured_tls(tls)
                .timeout(IO_TIMEOUT)
                .user_agent(concat!("dozen/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| SendFailure(format!("HTTP client: {}", e.without_url())))?;
            self.http = Some(client);
        }
        let Some(client) = &self.http else {
            return Err(SendFailure("no HTTP client".into()));
        };
        let (endpoint, user) = self.url.endpoint();
        let mut request = client
            .post(endpoint)
            .header("Content-Type", "application/logplex-1")
            .header("Logplex-Msg-Count", count.to_string())
            .header("Logplex-Frame-Id", frame_id)
            .header("Logplex-Drain-Token", &self.drain_id)
            .body(body);
        if let Some((name, password)) = user {
            request = request.basic_auth(name, password);
        }
        let response = request
            .send()
            .await
            .map_err(|e| SendFailure(format!("POST: {}", describe(e))))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(SendFailure(format!("POST answered {status}")))
        }
    }
}

/// A reqwest error without its URL, with its causes (the top one alone says little).
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// A syslog receiver never writes application data: a connection that reads as ended (or
/// failed) was closed by the receiver, and anything written now would be lost. Polls once,
/// without waiting; TLS records such as session tickets are consumed by rustls on the way.
async fn peer_closed(conn: &mut Conn) -> bool {
    use tokio::io::AsyncReadExt;
    let mut probe = [0u8; 64];
    let read = match conn {
        Conn::Tcp(s) => tokio::time::timeout(Duration::ZERO, s.read(&mut probe)).await,
        Conn::Tls(s) => tokio::time::timeout(Duration::ZERO, s.read(&mut probe)).await,
    };
    matches!(read, Ok(Ok(0)) | Ok(Err(_)))
}
