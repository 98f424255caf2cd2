//! Bodies crossing the router, streamed frame by frame, never collected.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::access::AccessEvent;
use crate::backend::{InFlight, Sender};
use crate::router::AccessFn;

/// A request body on its way to a backend.
#[derive(Debug)]
pub(crate) enum RequestBody {
    /// The client's body, streamed as it arrives.
    Client(Incoming),
    /// No body; such a request can be rebuilt and sent again.
    Empty,
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            RequestBody::Client(body) => Pin::new(body).poll_frame(cx),
            RequestBody::Empty => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RequestBody::Client(body) => body.is_end_stream(),
            RequestBody::Empty => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RequestBody::Client(body) => body.size_hint(),
            RequestBody::Empty => SizeHint::with_exact(0),
        }
    }
}

/// A response body on its way to the client: the backend's, or the router's own short page.
/// It reports the request's [`AccessEvent`] once, when it ends or is dropped.
#[derive(Debug)]
pub struct ResponseBody {
    inner: Inner,
    report: Option<Report>,
}

#[derive(Debug)]
enum Inner {
    Backend(Incoming),
    Fixed(Option<Bytes>),
}

/// What is needed to finish a request: the event to emit and the connection to give back.
pub(crate) struct Report {
    pub(crate) event: AccessEvent,
    pub(crate) app: Arc<str>,
    pub(crate) on_access: AccessFn,
    /// When the request was sent to the backend (or the router began answering it).
    pub(crate) started: Instant,
    pub(crate) in_flight: Option<InFlight>,
    pub(crate) sender: Option<Sender>,
}

impl std::fmt::Debug for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Report")
            .field("event", &self.event)
            .finish_non_exhaustive()
    }
}

impl Report {
    /// Emits the event; `complete` says the backend's response was read to its end, so its
    /// connection can serve another request.
    fn finish(mut self, complete: bool) {
        self.event.service_ms = self.started.elapsed().as_millis() as u64;
        if let (true, Some(sender), Some(in_flight)) =
            (complete, self.sender.take(), &self.in_flight)
        {
            in_flight.backend().check_in(sender);
        }
        // The request stops counting against the backend before the event goes out.
        drop(self.in_flight.take());
        (self.on_access)(&self.app, std::mem::take(&mut self.event));
    }
}

impl ResponseBody {
    pub(crate) fn backend(body: Incoming, report: Report) -> Self {
        ResponseBody {
            inner: Inner::Backend(body),
            report: Some(report),
        }
    }

    pub(crate) fn fixed(text: &'static str) -> Self {
        ResponseBody {
            inner: Inner::Fixed(Some(Bytes::from_static(text.as_bytes()))),
            report: None,
        }
    }

    pub(crate) fn empty() -> Self {
        ResponseBody {
            inner: Inner::Fixed(None),
            report: None,
        }
    }

    fn end(&mut self, complete: bool) {
        if let Some(report) = self.report.take() {
            report.finish(complete);
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        match &mut this.inner {
            Inner::Fixed(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Inner::Backend(body) => {
                let polled = Pin::new(&mut *body).poll_frame(cx);
                let ended = body.is_end_stream();
                match &polled {
                    Poll::Ready(Some(Ok(frame))) => {
                        if let (Some(data), Some(report)) = (frame.data_ref(), this.report.as_mut())
                        {
                            report.event.bytes += data.len() as u64;
                        }
                        if ended {
                            this.end(true);
                        }
                    }
                    Poll::Ready(None) => this.end(true),
                    Poll::Ready(Some(Err(_))) => this.end(false),
                    Poll::Pending => {}
                }
                polled
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Backend(body) => body.is_end_stream(),
            Inner::Fixed(bytes) => bytes.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Backend(body) => body.size_hint(),
            Inner::Fixed(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
        }
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        // Either the client went away (report what was sent), or the body was empty and never
        // polled (then the backend's connection is still good).
        let complete = matches!(&self.inner, Inner::Backend(body) if body.is_end_stream());
        self.end(complete);
    }
}
