//! Response bodies crossing the router, streamed frame by frame, never collected. A body still
//! coming from the backend is read by the client connection's own task, from the backend
//! connection it holds; once read to its end, that connection goes back to the pool.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use crate::access::AccessEvent;
use crate::backend::{Conn, InFlight};
use crate::idle::Busy;
use crate::router::AccessFn;
use crate::wire::{Decoded, Decoder, Pump, poll_read};

/// Read sizes for a streamed body grow from the head's buffer size up to this.
const MAX_READ: usize = 256 * 1024;

/// A response body on its way to the client: the backend's, or the router's own short page.
/// It reports the request's [`AccessEvent`] once, when it ends or is dropped.
#[derive(Debug)]
pub struct ResponseBody {
    inner: Inner,
    report: Option<Report>,
    /// Keeps the client connection counted as busy while this body is being sent.
    busy: Option<Busy>,
}

#[derive(Debug)]
enum Inner {
    /// All of it in hand (the router's page, or a backend body that came with its head).
    Whole(Option<Bytes>),
    /// Still coming from the backend.
    Streaming(Box<Streaming>),
}

/// A backend body still being read, and the request body still being sent, on one connection.
#[derive(Debug)]
pub(crate) struct Streaming {
    pub(crate) conn: Conn,
    pub(crate) decoder: Decoder,
    pub(crate) pump: Option<Pump>,
    /// The backend allows another request on the connection after this one.
    pub(crate) keep_alive: bool,
    /// The next read's size.
    pub(crate) read_size: usize,
}

impl Streaming {
    /// The connection can take another request: both bodies complete, nothing left over.
    fn reusable(&self) -> bool {
        self.keep_alive && self.pump.is_none() && self.decoder.is_done() && self.conn.buf.is_empty()
    }

    fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if let Some(pump) = &mut self.pump {
            match pump.poll(&mut self.conn.stream, cx) {
                Poll::Ready(Ok(())) => self.pump = None,
                // The backend stopped reading the request body (it may have answered early):
                // keep reading its answer; the connection will not be reused.
                Poll::Ready(Err(_)) => {
                    self.pump = None;
                    self.keep_alive = false;
                }
                Poll::Pending => {}
            }
        }
        loop {
            match self.decoder.decode(&mut self.conn.buf) {
                Ok(Decoded::Data(data)) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                Ok(Decoded::Trailers(trailers)) => {
                    return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
                }
                Ok(Decoded::Done) => return Poll::Ready(None),
                Ok(Decoded::More) => {}
                Err(_) => return Poll::Ready(Some(Err(broken("malformed body")))),
            }
            let want = match self.decoder.remaining() {
                Some(left) => (left as usize).clamp(1, self.read_size),
                None => self.read_size,
            };
            match poll_read(&mut self.conn.stream, &mut self.conn.buf, want, cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(0)) => {
                    self.keep_alive = false;
                    if self.decoder.eof().is_err() {
                        return Poll::Ready(Some(Err(broken("backend closed mid-body"))));
                    }
                }
                Poll::Ready(Ok(n)) => {
                    if n >= want && self.read_size < MAX_READ {
                        self.read_size *= 2;
                    }
                }
                Poll::Ready(Err(err)) => return Poll::Ready(Some(Err(err))),
            }
        }
    }
}

fn broken(what: &'static str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what)
}

/// What is needed to finish a request: the event to emit.
pub(crate) struct Report {
    pub(crate) event: AccessEvent,
    pub(crate) app: Arc<str>,
    pub(crate) on_access: AccessFn,
    /// When the request's head was read.
    pub(crate) received: Instant,
    /// When the request was sent to the backend (or the router began answering it).
    pub(crate) started: Instant,
    pub(crate) in_flight: Option<InFlight>,
}

impl std::fmt::Debug for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Report")
            .field("event", &self.event)
            .finish_non_exhaustive()
    }
}

impl ResponseBody {
    /// A backend body that came whole with its head.
    pub(crate) fn whole(body: Bytes, report: Report) -> Self {
        ResponseBody {
            inner: Inner::Whole((!body.is_empty()).then_some(body)),
            report: Some(report),
            busy: None,
        }
    }

    /// A backend body still to be read from `streaming`'s connection.
    pub(crate) fn streaming(streaming: Streaming, report: Report) -> Self {
        ResponseBody {
            inner: Inner::Streaming(Box::new(streaming)),
            report: Some(report),
            busy: None,
        }
    }

    /// The router's own page.
    pub(crate) fn fixed(text: &'static str) -> Self {
        ResponseBody {
            inner: Inner::Whole(Some(Bytes::from_static(text.as_bytes()))),
            report: None,
            busy: None,
        }
    }

    pub(crate) fn empty() -> Self {
        ResponseBody {
            inner: Inner::Whole(None),
            report: None,
            busy: None,
        }
    }

    /// Counts the client connection busy until this body is sent or dropped.
    pub(crate) fn hold(&mut self, busy: Busy) {
        self.busy = Some(busy);
    }

    /// Emits the event, once; `complete` says the body was read to its end. A streamed body's
    /// connection goes back to the pool when it can serve another request.
    fn end(&mut self, complete: bool) {
        let Some(mut report) = self.report.take() else {
            return;
        };
        report.event.service_ms = report.started.elapsed().as_millis() as u64;
        report.event.elapsed = report.received.elapsed();
        if let (true, Inner::Streaming(streaming), Some(in_flight)) =
            (complete, &mut self.inner, &report.in_flight)
        {
            if streaming.reusable() {
                let inner = std::mem::replace(&mut self.inner, Inner::Whole(None));
                if let Inner::Streaming(streaming) = inner {
                    in_flight.backend().check_in(streaming.conn);
                }
            }
        }
        // The request stops counting against the backend before the event goes out.
        drop(report.in_flight.take());
        (report.on_access)(&report.app, std::mem::take(&mut report.event));
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = self.get_mut();
        let polled = match &mut this.inner {
            Inner::Whole(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Inner::Streaming(streaming) => streaming.poll_frame(cx),
        };
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some(report)) = (frame.data_ref(), this.report.as_mut()) {
                    report.event.bytes += data.len() as u64;
                }
                if this.is_end_stream() {
                    this.end(true);
                }
            }
            Poll::Ready(None) => this.end(true),
            Poll::Ready(Some(Err(_))) => this.end(false),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Whole(bytes) => bytes.is_none(),
            // Only a body known to be over; a chunked one learns it by reading on.
            Inner::Streaming(s) => s.decoder.is_done() && s.pump.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Whole(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            Inner::Streaming(s) => match s.decoder.remaining() {
                Some(left) => SizeHint::with_exact(left),
                None => SizeHint::default(),
            },
        }
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        // Either the client went away (report what was sent), or the body ended unpolled.
        let complete = self.is_end_stream();
        self.end(complete);
    }
}
