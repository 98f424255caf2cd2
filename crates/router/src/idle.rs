//! The client connection's idle clock: a connection with no request in progress for
//! [`IDLE_LIMIT`] (idle keep-alive, or a client still sending a request head) is closed.
//!
//! One timer per connection whose deadline only ever moves later: tokio moves a registered timer
//! later without taking the timer wheel's lock, where a timer per request (as hyper's header
//! read timeout makes) is registered and removed under it every time.

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// How long a client connection may go without a request in progress.
pub(crate) const IDLE_LIMIT: Duration = Duration::from_secs(30);

/// Requests in progress on one client connection, and since when it has had none.
#[derive(Debug)]
pub(crate) struct Activity {
    base: Instant,
    busy: AtomicUsize,
    /// Milliseconds after `base`.
    idle_since: AtomicU64,
}

impl Activity {
    pub(crate) fn new() -> Arc<Activity> {
        Arc::new(Activity {
            base: Instant::now(),
            busy: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
        })
    }

    /// Counts a request in progress until the guard is dropped.
    pub(crate) fn begin(self: &Arc<Self>) -> Busy {
        self.busy.fetch_add(1, Ordering::Relaxed);
        Busy {
            activity: Some(Arc::clone(self)),
        }
    }

    fn deadline(&self) -> Option<Instant> {
        (self.busy.load(Ordering::Relaxed) == 0).then(|| {
            self.base + Duration::from_millis(self.idle_since.load(Ordering::Relaxed)) + IDLE_LIMIT
        })
    }
}

/// One request in progress on a client connection.
#[derive(Debug)]
pub(crate) struct Busy {
    activity: Option<Arc<Activity>>,
}

impl Busy {
    /// The connection switched protocols: it is a tunnel now, never closed for idleness.
    pub(crate) fn forever(mut self) {
        self.activity = None;
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        if let Some(activity) = self.activity.take() {
            let now = activity.base.elapsed().as_millis() as u64;
            activity.idle_since.store(now, Ordering::Relaxed);
            activity.busy.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// A client connection's stream, which fails reads once the connection has been idle too long.
#[derive(Debug)]
pub(crate) struct IdleIo<S> {
    io: S,
    activity: Arc<Activity>,
    timer: Pin<Box<Sleep>>,
}

impl<S> IdleIo<S> {
    pub(crate) fn new(io: S, activity: Arc<Activity>) -> IdleIo<S> {
        let timer = Box::pin(tokio::time::sleep_until(activity.base + IDLE_LIMIT));
        IdleIo {
            io,
            activity,
            timer,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for IdleIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if polled.is_pending() {
            // Busy: look again a limit from now (the connection may not read again until its
            // response is sent). Idle: the limit from when the last request finished. Either way
            // the deadline only moves later, which costs the timer no lock.
            let deadline = this
                .activity
                .deadline()
                .unwrap_or_else(|| Instant::now() + IDLE_LIMIT);
            if this.timer.deadline() != deadline {
                this.timer.as_mut().reset(deadline);
            }
            if this.timer.as_mut().poll(cx).is_ready() && this.activity.deadline().is_some() {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "client connection idle too long",
                )));
            }
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for IdleIo<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
