//! One backend process: its load (requests in flight) and its pool of keep-alive connections.

use std::future::Future as _;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::net::TcpStream;
use tokio::time::Sleep;

/// Idle connections kept per backend; a connection finishing while the pool is full is closed.
const MAX_IDLE: usize = 256;
/// A pooled connection idle longer than this is closed instead of reused, so we rarely race a
/// backend that closes idle keep-alive connections itself (gunicorn closes after 2 s, Node after 5 s).
const IDLE_LIMIT: Duration = Duration::from_secs(1);
/// Read buffer room for a response head (it grows for bigger heads and bodies).
pub(crate) const READ_BUF: usize = 4096;

/// A backend in rotation (or draining). Shared by the route table and by the requests in flight,
/// so it outlives its removal from the table until its last request ends.
#[derive(Debug)]
pub(crate) struct Backend {
    pub(crate) name: Arc<str>,
    pub(crate) addr: SocketAddr,
    in_flight: AtomicUsize,
    idle: Mutex<Vec<(Conn, Instant)>>,
}

/// An HTTP/1.1 connection to a backend, driven by whichever request holds it: no task of its own.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) stream: TcpStream,
    /// Bytes read from the backend and not yet passed on.
    pub(crate) buf: BytesMut,
    /// Taken from the pool (it served a request before).
    pub(crate) reused: bool,
    /// The first-byte deadline, kept with the connection and moved forward for each request:
    /// moving a registered timer later costs no lock, where a new timer per request would.
    timer: Option<Pin<Box<Sleep>>>,
}

impl Conn {
    /// Arms the first-byte deadline for a request sent at `sent`.
    pub(crate) fn arm(&mut self, sent: Instant, limit: Duration) {
        let deadline = tokio::time::Instant::from_std(sent) + limit;
        match &mut self.timer {
            Some(timer) => timer.as_mut().reset(deadline),
            None => self.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
        }
    }

    /// Whether the first-byte deadline has passed.
    pub(crate) fn poll_expired(&mut self, cx: &mut Context<'_>) -> bool {
        self.timer
            .as_mut()
            .is_some_and(|t| t.as_mut().poll(cx).is_ready())
    }

    /// The socket and the bytes already read from it (after a switch of protocols).
    pub(crate) fn into_parts(self) -> (TcpStream, BytesMut) {
        (self.stream, self.buf)
    }

    /// Still open, with nothing unexpected to read? Costs no system call unless the socket has
    /// become readable since its last request (the backend closed it or sent stray bytes).
    fn alive(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        match self.stream.poll_read_ready(&mut cx) {
            Poll::Pending => true,
            Poll::Ready(Err(_)) => false,
            Poll::Ready(Ok(())) => {
                let mut probe = [0u8; 1];
                matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
            }
        }
    }
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

    /// The most recently used pooled connection that is still open, or `None`.
    pub(crate) fn pooled(&self) -> Option<Conn> {
        loop {
            let (mut conn, since) = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop()?;
            if since.elapsed() < IDLE_LIMIT && conn.alive() {
                return Some(conn);
            }
        }
    }

    /// Forgets the pooled connections (closing them): after a broken or refused connection they
    /// are likely broken too.
    pub(crate) fn drop_idle(&self) {
        let idle = std::mem::take(&mut *self.idle.lock().unwrap_or_else(|e| e.into_inner()));
        drop(idle);
    }

    /// A new connection.
    pub(crate) async fn connect(&self, limit: Duration) -> Result<Conn, ConnectError> {
        let stream = match tokio::time::timeout(limit, TcpStream::connect(self.addr)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(_)) => return Err(ConnectError::Io),
            Err(_) => return Err(ConnectError::TimedOut),
        };
        let _ = stream.set_nodelay(true);
        Ok(Conn {
            stream,
            buf: BytesMut::with_capacity(READ_BUF),
            reused: false,
            timer: None,
        })
    }

    /// Returns a connection whose last response was read to its end, with nothing left over.
    pub(crate) fn check_in(&self, mut conn: Conn) {
        conn.reused = true;
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push((conn, Instant::now()));
        } else {
            // Closed outside the lock.
            drop(idle);
            drop(conn);
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
