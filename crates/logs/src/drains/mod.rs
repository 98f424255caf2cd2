//! Drains: an app's log stream sent to a destination outside the host.
//!
//! A [`Drain`] sends RFC 5424 messages ([`Messages`]) to a syslog receiver over TCP or TLS, with
//! RFC 6587 octet counting, or POSTs batches of them to an HTTPS endpoint as Heroku's Logplex
//! does (`Content-Type: application/logplex-1`, `Logplex-Msg-Count`, `Logplex-Frame-Id`), so
//! receivers written for Heroku work unchanged.
//!
//! Each drain has its own [`Queue`] on disk, bounded by [`DrainConfig::queue_bytes`] (64 MiB
//! by default):
//!
//! - [`Drain::offer`] never waits: it hands the messages to the drain's spool task through a
//!   channel of [`OFFER_BACKLOG`] records. An app is never slowed by its drains. Should the
//!   spool task fall that far behind (the disk is stuck), the messages are counted as dropped.
//!   The spool task takes what gathered every [`SPOOL_LINGER`], not each record as it comes,
//!   so that offering seldom has to wake it; while an app prints in a burst it waits for the
//!   burst to end, within [`SPOOL_LINGER_MAX`] and [`SPOOL_HOLD_BYTES`].
//! - The delivery task sends the oldest messages in batches and takes them off the queue only
//!   once they were delivered (written to the syslog connection, or answered 2xx over HTTPS).
//!   A failure closes the connection and retries the same batch after a delay that doubles
//!   from [`DrainConfig::min_backoff`] up to [`DrainConfig::max_backoff`].
//! - Past the bound the oldest messages are dropped; once the drain takes messages again it
//!   first gets one event saying how many were dropped and between which times (Heroku's L10).
//!
//! **What arrives.** In order, and once, while the receiver reads what it is sent. Syslog over
//! TCP has no acknowledgements: a receiver that dies with unread bytes in its socket loses
//! them, and a batch whose write failed halfway is sent again whole (the receiver may see part
//! of it twice). dozen checks that the connection is still open before every write, so a
//! receiver that closed its connection costs nothing. HTTPS batches are retried with the same
//! `Logplex-Frame-Id`.

mod message;
mod queue;
mod transport;
mod url;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};

use crate::event::LineBatch;

pub use message::{Messages, frame};
pub use queue::{Dropped, MAX_MESSAGE, Queue};
pub use url::{DrainUrl, Protocol, SYSLOG_PORT, SYSLOG_TLS_PORT};

use transport::Transport;

/// Records [`Drain::offer`] may hand over before the spool task takes them.
pub const OFFER_BACKLOG: usize = 4096;

/// How long the spool task lets offers gather after the first one before it takes them.
///
/// While it waits it is not listening on the channel, so an offer wakes nothing: the drains'
/// thread wakes at most once per `SPOOL_LINGER`, not once per record. Measured: handing records
/// over to a spool task that threw them away cost an app 13-15% of its output rate; this
/// linger on its own moved the cost by less than the run-to-run noise (bench/README.md).
pub const SPOOL_LINGER: Duration = Duration::from_millis(5);

/// The longest the spool task keeps waiting while offers keep coming.
///
/// An app that prints as fast as it can keeps both CPUs of a small host busy with itself and
/// its log task; whatever the drains' thread does meanwhile is taken from them, at any nice
/// value. So while each [`SPOOL_LINGER`] brings more offers, the spool task waits on, up to
/// this long, [`SPOOL_HOLD_BYTES`] or half of [`OFFER_BACKLOG`], and writes the burst once it
/// is over. Measured (bench/README.md): the app's output with a drain went from 0.73x to 0.81x
/// of its output without one. A drain's receiver gets a line at most this much later.
pub const SPOOL_LINGER_MAX: Duration = Duration::from_millis(200);

/// The most message bytes the spool task lets wait in memory while it lingers.
pub const SPOOL_HOLD_BYTES: u64 = 32 * 1024 * 1024;

/// The most an octet-counting frame adds to a message of the queue: its length in decimal
/// (at most [`queue::MAX_MESSAGE`], 5 digits) and a space.
const FRAME_HEAD: usize = 8;

/// The default bound of a drain's queue.
pub const DEFAULT_QUEUE_BYTES: u64 = 64 * 1024 * 1024;

/// What went wrong setting up a drain. Never contains a drain URL's password.
#[derive(Debug, thiserror::Error)]
pub enum DrainError {
    /// The URL is not a drain URL.
    #[error("drain URL: {0}")]
    Url(String),
    /// The queue directory could not be opened.
    #[error("drain queue {path}: {source}")]
    Queue {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The drains' thread could not be started.
    #[error("starting the drains' thread: {0}")]
    Thread(std::io::Error),
    /// The TLS roots could not be read.
    #[error("drain TLS: {0}")]
    Tls(String),
}

/// How drains behave; one for all the drains of a server.
#[derive(Debug, Clone)]
pub struct DrainConfig {
    /// The bound of each drain's queue on disk.
    pub queue_bytes: u64,
    /// Most messages in one HTTPS POST (or one syslog write).
    pub batch_messages: usize,
    /// How long an HTTPS drain waits for a batch to fill before it sends what it has.
    pub flush_interval: Duration,
    /// The first delay after a failure.
    pub min_backoff: Duration,
    /// The longest delay between attempts.
    pub max_backoff: Duration,
    /// Certificate authorities for TLS drains.
    pub tls: Arc<rustls::ClientConfig>,
}

impl DrainConfig {
    /// The defaults (64 MiB, 500 messages, 1 s, backoff 0.1 s to 30 s), trusting the system's
    /// certificate authorities and those in the PEM file `extra_ca`.
    pub fn new(extra_ca: Option<&Path>) -> Result<DrainConfig, DrainError> {
        Ok(DrainConfig {
            queue_bytes: DEFAULT_QUEUE_BYTES,
            batch_messages: 500,
            flush_interval: Duration::from_secs(1),
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(30),
            tls: Arc::new(tls_config(extra_ca)?),
        })
    }
}

/// A rustls client config on ring with the system's roots and those of `extra_ca`.
pub fn tls_config(extra_ca: Option<&Path>) -> Result<rustls::ClientConfig, DrainError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    // Unreadable system certificates are skipped: the configured CA may be all that is needed.
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = extra_ca {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .and_then(|i| i.collect::<Result<_, _>>())
            .map_err(|e| DrainError::Tls(format!("{}: {e}", path.display())))?;
        if certs.is_empty() {
            return Err(DrainError::Tls(format!(
                "{}: no PEM certificate in the file",
                path.display()
            )));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| DrainError::Tls(format!("{}: {e}", path.display())))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| DrainError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Whether a drain is delivering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DrainState {
    /// Nothing sent yet.
    Starting,
    /// The last attempt succeeded.
    Up,
    /// The last attempt failed, with why (never the URL's password).
    Down(String),
}

/// A drain's numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainStats {
    /// Up, down, starting.
    pub state: DrainState,
    /// Messages delivered since the server started.
    pub delivered: u64,
    /// Messages waiting in the queue.
    pub queued: u64,
    /// Messages dropped since the server started (the queue was full).
    pub dropped: u64,
}

#[derive(Debug)]
struct Shared {
    queue: Mutex<Option<Queue>>,
    /// Records handed to the spool task, and those it has written: equal once it is idle.
    offered: AtomicU64,
    spooled: AtomicU64,
    /// Bytes of the messages handed to the spool task and not yet taken by it.
    holding: AtomicU64,
    wake: Notify,
    delivered: AtomicU64,
    state: Mutex<DrainState>,
    stop: Notify,
}

impl Shared {
    fn queue(&self) -> std::sync::MutexGuard<'_, Option<Queue>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What the spool task is handed: messages made already (dozen's events), or an app's batch of
/// lines that it makes them from itself, on the drains' thread.
///
/// A batch is shared, not copied: the log task hands over the buffer it read the lines into
/// and renders nothing for the drains. Keeping a burst's lines for the drains is most of what
/// a drain costs an app that prints fast (bench/README.md), and a batch is two thirds the size
/// of its messages.
#[derive(Debug)]
enum Offer {
    Messages(Arc<Messages>),
    Lines(Arc<LineBatch>),
}

impl Offer {
    fn bytes(&self) -> u64 {
        match self {
            Offer::Messages(m) => m.bytes() as u64,
            Offer::Lines(b) => b.buf.len() as u64,
        }
    }

    fn count(&self) -> u64 {
        match self {
            Offer::Messages(m) => m.len() as u64,
            Offer::Lines(b) => b.len() as u64,
        }
    }
}

/// One running drain. Dropping it stops its tasks (what is queued stays on disk).
#[derive(Debug)]
pub struct Drain {
    id: String,
    url: DrainUrl,
    dir: PathBuf,
    offers: mpsc::Sender<Offer>,
    shared: Arc<Shared>,
}

impl Drain {
    /// Start drain `id` of app `host` to `url`, queueing in `dir`. Must be called inside a
    /// tokio runtime.
    pub fn start(
        id: &str,
        host: &str,
        url: DrainUrl,
        dir: &Path,
        config: &DrainConfig,
    ) -> Result<Drain, DrainError> {
        let queue = Queue::open(dir, config.queue_bytes).map_err(|source| DrainError::Queue {
            path: dir.to_path_buf(),
            source,
        })?;
        let shared = Arc::new(Shared {
            queue: Mutex::new(Some(queue)),
            offered: AtomicU64::new(0),
            spooled: AtomicU64::new(0),
            holding: AtomicU64::new(0),
            wake: Notify::new(),
            delivered: AtomicU64::new(0),
            state: Mutex::new(DrainState::Starting),
            stop: Notify::new(),
        });
        let (offers, receiver) = mpsc::channel(OFFER_BACKLOG);
        tokio::spawn(spool(receiver, shared.clone(), host.to_string()));
        let transport = Transport::new(url.clone(), config.tls.clone(), id);
        let deliver = deliver(
            shared.clone(),
            transport,
            config.clone(),
            id.to_string(),
            host.to_string(),
        );
        let stopper = shared.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = deliver => {}
                () = stopper.stop.notified() => {}
            }
        });
        Ok(Drain {
            id: id.to_string(),
            url,
            dir: dir.to_path_buf(),
            offers,
            shared,
        })
    }

    /// The drain's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Where it sends (show it with `redacted()`).
    pub fn url(&self) -> &DrainUrl {
        &self.url
    }

    /// Queue `messages` for delivery, without waiting.
    pub fn offer(&self, messages: &Arc<Messages>) {
        if !messages.is_empty() {
            self.hand(Offer::Messages(messages.clone()));
        }
    }

    /// Queue a message for every line of `batch`, without waiting. The messages are made on
    /// the drains' thread.
    pub fn offer_lines(&self, batch: &Arc<LineBatch>) {
        if !batch.is_empty() {
            self.hand(Offer::Lines(batch.clone()));
        }
    }

    fn hand(&self, offer: Offer) {
        // Counted first: the spool task may take the record before `try_send` returns.
        let (bytes, count) = (offer.bytes(), offer.count());
        self.shared.offered.fetch_add(1, Ordering::AcqRel);
        self.shared.holding.fetch_add(bytes, Ordering::AcqRel);
        if self.offers.try_send(offer).is_err() {
            self.shared.offered.fetch_sub(1, Ordering::AcqRel);
            self.shared.holding.fetch_sub(bytes, Ordering::AcqRel);
            if let Some(q) = self.shared.queue().as_mut() {
                q.count_dropped(count);
            }
        }
    }

    /// Wait until every message offered so far is in the queue on disk (the server stops),
    /// or until `limit` has passed. Once the spool task has counted a record as written, it
    /// is: it counts after its write, with the queue's lock released.
    pub async fn settle(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while self.shared.spooled.load(Ordering::Acquire)
            < self.shared.offered.load(Ordering::Acquire)
        {
            if tokio::time::Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The drain's numbers now.
    pub fn stats(&self) -> DrainStats {
        let (queued, dropped) = match self.shared.queue().as_ref() {
            Some(q) => (q.queued(), q.dropped_total()),
            None => (0, 0),
        };
        DrainStats {
            state: self
                .shared
                .state
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            delivered: self.shared.delivered.load(Ordering::Relaxed),
            queued,
            dropped,
        }
    }

    /// Stop the drain and delete its queue (the drain was removed).
    pub fn remove(self) -> std::io::Result<()> {
        let dir = self.dir.clone();
        self.shared.queue().take();
        drop(self);
        Queue::remove(&dir)
    }
}

impl Drop for Drain {
    fn drop(&mut self) {
        self.shared.stop.notify_one();
    }
}

/// Move offered messages into the queue on disk; `host` is the app's name, for the messages
/// made from lines.
async fn spool(mut receiver: mpsc::Receiver<Offer>, shared: Arc<Shared>, host: String) {
    let mut scratch = Vec::new();
    while let Some(first) = receiver.recv().await {
        // Wait while offers keep coming (a burst), within the bounds.
        let began = tokio::time::Instant::now();
        loop {
            let before = receiver.len();
            tokio::time::sleep(SPOOL_LINGER).await;
            let now = receiver.len();
            if now == before
                || now >= OFFER_BACKLOG / 2
                || shared.holding.load(Ordering::Acquire) >= SPOOL_HOLD_BYTES
                || began.elapsed() >= SPOOL_LINGER_MAX
            {
                break;
            }
        }
        let mut next = Some(first);
        let mut guard = shared.queue();
        let Some(queue) = guard.as_mut() else { break };
        let mut failed = false;
        let mut taken = 0;
        while let Some(offer) = next.take() {
            shared.holding.fetch_sub(offer.bytes(), Ordering::AcqRel);
            match &offer {
                Offer::Messages(messages) => {
                    for m in messages.iter() {
                        failed |= queue.push(m).is_err();
                    }
                }
                Offer::Lines(batch) => {
                    message::each_message(&host, batch, &mut scratch, |m| {
                        failed |= queue.push(m).is_err();
                    });
                }
            }
            taken += 1;
            next = receiver.try_recv().ok();
        }
        if queue.flush().is_err() || failed {
            let mut state = shared.state.lock().unwrap_or_else(|p| p.into_inner());
            *state = DrainState::Down("writing the drain's queue failed".into());
        }
        drop(guard);
        shared.spooled.fetch_add(taken, Ordering::AcqRel);
        shared.wake.notify_one();
    }
}

/// Send the queue's messages, oldest first, until stopped.
async fn deliver(
    shared: Arc<Shared>,
    mut transport: Transport,
    config: DrainConfig,
    id: String,
    host: String,
) {
    let mut backoff = config.min_backoff;
    let batch_max = config.batch_messages.max(1);
    loop {
        let (queued, dropped) = match shared.queue().as_ref() {
            Some(q) => (q.queued() as usize, q.dropped()),
            None => return,
        };
        if queued == 0 && dropped.is_none() {
            shared.wake.notified().await;
            continue;
        }
        if transport.is_https() && queued < batch_max && dropped.is_none() {
            // Let the batch fill for up to the flush interval.
            let _ = tokio::time::timeout(config.flush_interval, async {
                loop {
                    shared.wake.notified().await;
                    let full = shared
                        .queue()
                        .as_ref()
                        .is_none_or(|q| q.queued() as usize >= batch_max);
                    if full {
                        break;
                    }
                }
            })
            .await;
        }
        let peeked = match shared.queue().as_mut() {
            Some(q) => q.peek(batch_max, 4 * 1024 * 1024),
            None => return,
        };
        let batch = match peeked {
            Ok(b) => b,
            Err(e) => {
                set_state(&shared, DrainState::Down(format!("reading the queue: {e}")));
                tokio::time::sleep(config.max_backoff).await;
                continue;
            }
        };
        let notice = dropped.map(|d| message::dropped_notice(&host, &id, d.count, d.first, d.last));
        let count = batch.messages.len() as u64;
        let mut body = Vec::with_capacity(
            batch.messages.bytes()
                + notice.as_ref().map_or(0, Vec::len)
                + FRAME_HEAD * (batch.messages.len() + 1),
        );
        if let Some(notice) = &notice {
            message::frame(notice, &mut body);
        }
        for m in batch.messages.iter() {
            message::frame(m, &mut body);
        }
        // Named by where it starts in the queue: the same on a retry, even after a restart.
        let frame_id = format!("{id}-{}", batch.start.id());
        let framed = batch.messages.len() + usize::from(notice.is_some());
        match transport.send(body, framed, &frame_id).await {
            Ok(()) => {
                let acked = match shared.queue().as_mut() {
                    Some(q) => q.ack(batch.next, dropped.is_some()),
                    None => return,
                };
                match acked {
                    Ok(()) => set_state(&shared, DrainState::Up),
                    Err(e) => {
                        set_state(&shared, DrainState::Down(format!("writing the queue: {e}")))
                    }
                }
                shared.delivered.fetch_add(count, Ordering::Relaxed);
                backoff = config.min_backoff;
            }
            Err(failure) => {
                transport.reset();
                set_state(&shared, DrainState::Down(failure.0));
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(config.max_backoff);
            }
        }
    }
}

fn set_state(shared: &Shared, state: DrainState) {
    *shared.state.lock().unwrap_or_else(|p| p.into_inner()) = state;
}
