//! One backend process: its load (requests in flight) and its pool of keep-alive connections.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::body::RequestBody;

/// Idle connections kept per backend; a connection finishing while the pool is full is closed.
const MAX_IDLE: usize = 256;
/// A pooled connection idle longer than this is closed instead of reused, so we rarely race a
/// backend that closes idle keep-alive connections itself (gunicorn closes after 2 s, Node after 5 s).
const IDLE_LIMIT: Duration = Duration::from_secs(1);

pub(crate) type Sender = http1::SendRequest<RequestBody>;

/// A backend in rotation (or draining). Shared by the route table and by the requests in flight,
/// so it outlives its removal from the table until its last request ends.
#[derive(Debug)]
pub(crate) struct Backend {
    pub(crate) name: Arc<str>,
    pub(crate) addr: SocketAddr,
    in_flight: AtomicUsize,
    idle: Mutex<Vec<(Sender, Instant)>>,
}

/// A connection to a backend, fresh or from the pool.
#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) sender: Sender,
    pub(crate) reused: bool,
}

/// Why no connection could be had.
#[derive(Debug)]
pub(crate) enum ConnectError {
    Io,
    TimedOut,
}

impl Backend {
    pub(crate) fn new(name: &str, addr: SocketAddr) -> Arc<Backend> {
        Arc::new(Backend {
            name: Arc::from(name),
            addr,
            in_flight: AtomicUsize::new(0),
            idle: Mutex::new(Vec::new()),
        })
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Counts one more request on this backend until the guard is dropped.
    pub(crate) fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(Arc::clone(self))
    }

    /// A pooled connection that is ready, or `None`.
    pub(crate) fn pooled(&self) -> Option<Connection> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some((sender, since)) = idle.pop() {
            if sender.is_ready() && since.elapsed() < IDLE_LIMIT {
                return Some(Connection {
                    sender,
                    reused: true,
                });
            }
        }
        None
    }

    /// Forgets the pooled connections (closing them): after a broken or refused connection they
    /// are likely broken too.
    pub(crate) fn drop_idle(&self) {
        let idle = std::mem::take(&mut *self.idle.lock().unwrap_or_else(|e| e.into_inner()));
        drop(idle);
    }

    /// A new connection, handshaken for HTTP/1.1 with upgrades allowed.
    pub(crate) async fn connect(&self, limit: Duration) -> Result<Connection, ConnectError> {
        let stream = match tokio::time::timeout(limit, TcpStream::connect(self.addr)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(_)) => return Err(ConnectError::Io),
            Err(_) => return Err(ConnectError::TimedOut),
        };
        let _ = stream.set_nodelay(true);
        let (sender, conn) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|_| ConnectError::Io)?;
        tokio::spawn(async move {
            // The connection ends when the backend closes it or every sender is dropped; its error
            // (if any) already reached the request that was using it.
            let _ = conn.with_upgrades().await;
        });
        Ok(Connection {
            sender,
            reused: false,
        })
    }

    /// Returns a connection whose last response was read to the end.
    pub(crate) fn check_in(self: &Arc<Self>, mut sender: Sender) {
        if sender.is_ready() {
            self.push_idle(sender);
        } else if let (false, Ok(runtime)) =
            (sender.is_closed(), tokio::runtime::Handle::try_current())
        {
            // The connection task has not yet noticed the end of the response: wait for it briefly.
            let backend = Arc::clone(self);
            runtime.spawn(async move {
                if let Ok(Ok(())) =
                    tokio::time::timeout(Duration::from_millis(100), sender.ready()).await
                {
                    backend.push_idle(sender);
                }
            });
        }
    }

    fn push_idle(&self, sender: Sender) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push((sender, Instant::now()));
        }
    }
}

/// A request counted against a backend's load.
#[derive(Debug)]
pub(crate) struct InFlight(Arc<Backend>);

impl InFlight {
    pub(crate) fn backend(&self) -> &Arc<Backend> {
        &self.0
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}
