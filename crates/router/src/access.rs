//! One event per request, the router's line in the app's log stream.

use std::time::Duration;

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
    /// nonsense), `timeout` (504), `unsupported_method` (405, CONNECT), `client_body` (400: the
    /// client's request body broke off), or `client_closed` (499: the client went away before
    /// the response began).
    pub error: Option<&'static str>,
    /// From the request's head being read to the end of the response (its last byte handed on,
    /// the client gone, or the router's own answer made): the latency metrics count this.
    pub elapsed: Duration,
}

impl AccessEvent {
    /// The event as a Heroku-router-like line:
    /// `at=info method=GET path="/x" host=shop.localhost request_id=… backend=web.1 connect=1ms service=3ms status=200 bytes=123`.
    /// Errors start with `at=error error=<code>`.
    pub fn to_line(&self) -> String {
        // Written by hand rather than with `write!`: this runs once per request.
        let mut line = String::with_capacity(160 + self.path.len());
        match self.error {
            Some(code) => {
                line.push_str("at=error error=");
                line.push_str(code);
                line.push(' ');
            }
            None => line.push_str("at=info "),
        }
        line.push_str("method=");
        line.push_str(&self.method);
        line.push_str(" path=\"");
        for ch in self.path.chars() {
            match ch {
                '"' => line.push_str("\\\""),
                '\\' => line.push_str("\\\\"),
                c if c.is_control() => {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    let c = c as u32;
                    line.push_str("\\x");
                    if c > 0xff {
                        push_u64(&mut line, u64::from(c));
                    } else {
                        line.push(HEX[(c >> 4) as usize] as char);
                        line.push(HEX[(c & 0xf) as usize] as char);
                    }
                }
                c => line.push(c),
            }
        }
        line.push_str("\" host=");
        line.push_str(if self.host.is_empty() {
            "-"
        } else {
            &self.host
        });
        line.push_str(" request_id=");
        line.push_str(&self.request_id);
        if let Some(backend) = &self.backend {
            line.push_str(" backend=");
            line.push_str(backend);
        }
        line.push_str(" connect=");
        push_u64(&mut line, self.connect_ms);
        line.push_str("ms service=");
        push_u64(&mut line, self.service_ms);
        line.push_str("ms status=");
        push_u64(&mut line, u64::from(self.status));
        line.push_str(" bytes=");
        push_u64(&mut line, self.bytes);
        line
    }
}

fn push_u64(line: &mut String, n: u64) {
    line.push_str(crate::wire::decimal_digits(n, &mut [0u8; 20]));
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
            elapsed: Duration::from_millis(4),
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
