//! One event per request, the router's line in the app's log stream.

use std::fmt::Write as _;

/// What happened to one request, handed to the router's `on_access` callback when the response
/// is finished (its body sent or abandoned by the client) or failed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccessEvent {
    /// The request method, `GET`.
    pub method: String,
    /// The path and query as the client sent them.
    pub path: String,
    /// The host the request was routed by, lowercased and without port.
    pub host: String,
    /// The status sent to the client.
    pub status: u16,
    /// Response body bytes sent to the client.
    pub bytes: u64,
    /// Milliseconds to get a connection to the backend (0 when a pooled one was reused).
    pub connect_ms: u64,
    /// Milliseconds from sending the request to the backend until the response body ended.
    pub service_ms: u64,
    /// The `X-Request-Id` sent to the backend and back to the client.
    pub request_id: String,
    /// The backend that served the request, `web.1`.
    pub backend: Option<String>,
    /// Why the router answered itself: `unknown_host` (404), `no_web_process` (503),
    /// `connect_failed` (502), `backend_error` (502: the backend broke the connection or answered
    /// nonsense), `timeout` (504), `unsupported_method` (405, CONNECT), or `client_closed` (499:
    /// the client went away before the response began).
    pub error: Option<&'static str>,
}

impl AccessEvent {
    /// The event as a Heroku-router-like line:
    /// `at=info method=GET path="/x" host=shop.localhost request_id=… backend=web.1 connect=1ms service=3ms status=200 bytes=123`.
    /// Errors start with `at=error error=<code>`.
    pub fn to_line(&self) -> String {
        let mut line = String::with_capacity(160 + self.path.len());
        match self.error {
            Some(code) => {
                let _ = write!(line, "at=error error={code} ");
            }
            None => line.push_str("at=info "),
        }
        let _ = write!(line, "method={} path=\"", self.method);
        for ch in self.path.chars() {
            match ch {
                '"' => line.push_str("\\\""),
                '\\' => line.push_str("\\\\"),
                c if c.is_control() => {
                    let _ = write!(line, "\\x{:02x}", c as u32);
                }
                c => line.push(c),
            }
        }
        let _ = write!(
            line,
            "\" host={} request_id={}",
            if self.host.is_empty() {
                "-"
            } else {
                &self.host
            },
            self.request_id
        );
        if let Some(backend) = &self.backend {
            let _ = write!(line, " backend={backend}");
        }
        let _ = write!(
            line,
            " connect={}ms service={}ms status={} bytes={}",
            self.connect_ms, self.service_ms, self.status, self.bytes
        );
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_has_heroku_fields_and_escapes_path() {
        let event = AccessEvent {
            method: "GET".into(),
            path: "/a\"b\n".into(),
            host: "shop.localhost".into(),
            status: 200,
            bytes: 12,
            connect_ms: 1,
            service_ms: 3,
            request_id: "abc".into(),
            backend: Some("web.1".into()),
            error: None,
        };
        assert_eq!(
            event.to_line(),
            "at=info method=GET path=\"/a\\\"b\\x0a\" host=shop.localhost request_id=abc backend=web.1 connect=1ms service=3ms status=200 bytes=12"
        );
        let failed = AccessEvent {
            error: Some("unknown_host"),
            backend: None,
            host: String::new(),
            status: 404,
            ..event
        };
        assert!(
            failed
                .to_line()
                .starts_with("at=error error=unknown_host method=GET")
        );
        assert!(failed.to_line().contains(" host=- "));
        assert!(!failed.to_line().contains("backend="));
    }
}
