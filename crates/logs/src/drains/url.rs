//! Drain URLs: `syslog://host:port`, `syslog+tls://host:port`, `https://[user:pass@]host/path`.

use std::fmt;

use reqwest::Url;

use super::DrainError;

/// How a drain is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// RFC 5424 over TCP with RFC 6587 octet counting.
    Syslog,
    /// The same over TLS.
    SyslogTls,
    /// Batches POSTed as `application/logplex-1`.
    Https,
}

/// A parsed drain URL. Its `Debug` and `Display` hide the password: the whole URL is a secret
/// when it carries one.
#[derive(Clone, PartialEq, Eq)]
pub struct DrainUrl {
    url: Url,
    protocol: Protocol,
}

/// Default port of `syslog://` (rsyslog's and syslog-ng's TCP listeners).
pub const SYSLOG_PORT: u16 = 514;
/// Default port of `syslog+tls://` (RFC 5425).
pub const SYSLOG_TLS_PORT: u16 = 6514;

impl DrainUrl {
    /// Parse `text`. Errors never contain the URL (it may hold a password).
    pub fn parse(text: &str) -> Result<DrainUrl, DrainError> {
        let bad = |why: &str| DrainError::Url(why.to_string());
        let url = Url::parse(text.trim()).map_err(|e| bad(&format!("not a URL ({e})")))?;
        let protocol = match url.scheme() {
            "syslog" => Protocol::Syslog,
            "syslog+tls" => Protocol::SyslogTls,
            "https" => Protocol::Https,
            other => {
                return Err(bad(&format!(
                    "scheme {other:?} is not one of syslog, syslog+tls, https"
                )));
            }
        };
        match url.host_str() {
            Some(h) if !h.is_empty() => {}
            _ => return Err(bad("no host")),
        }
        if protocol != Protocol::Https {
            if !url.username().is_empty() || url.password().is_some() {
                return Err(bad("a syslog drain takes no user or password"));
            }
            if !matches!(url.path(), "" | "/") || url.query().is_some() {
                return Err(bad("a syslog drain takes no path or query"));
            }
        }
        Ok(DrainUrl { url, protocol })
    }

    /// The protocol.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The host name (or address) to connect to.
    pub fn host(&self) -> &str {
        self.url.host_str().unwrap_or_default()
    }

    /// The port, or the protocol's default.
    pub fn port(&self) -> u16 {
        self.url.port().unwrap_or(match self.protocol {
            Protocol::Syslog => SYSLOG_PORT,
            Protocol::SyslogTls => SYSLOG_TLS_PORT,
            Protocol::Https => 443,
        })
    }

    /// The URL as given, password included: only for storing and connecting.
    pub fn secret(&self) -> &str {
        self.url.as_str()
    }

    /// The URL with no user or password, and them apart (HTTPS drains).
    pub(crate) fn endpoint(&self) -> (Url, Option<(String, Option<String>)>) {
        let mut bare = self.url.clone();
        let _ = bare.set_username("");
        let _ = bare.set_password(None);
        let user = (!self.url.username().is_empty() || self.url.password().is_some())
            .then(|| (decode(self.url.username()), self.url.password().map(decode)));
        (bare, user)
    }

    /// The URL with its password and its query (where collectors put tokens) replaced by
    /// `***`, safe to show.
    pub fn redacted(&self) -> String {
        let mut shown = self.url.clone();
        if shown.password().is_some() {
            let _ = shown.set_password(Some("***"));
        }
        if shown.query().is_some() {
            shown.set_query(Some("***"));
        }
        shown.to_string()
    }
}

fn decode(s: &str) -> String {
    // Userinfo is percent-encoded in URLs.
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl fmt::Display for DrainUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for DrainUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DrainUrl({})", self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_defaults_and_hide_passwords() {
        let u = DrainUrl::parse("syslog+tls://logs.example.com").unwrap();
        assert_eq!((u.protocol(), u.port()), (Protocol::SyslogTls, 6514));
        let u = DrainUrl::parse("syslog://10.0.0.1:601").unwrap();
        assert_eq!((u.host(), u.port()), ("10.0.0.1", 601));
        let u = DrainUrl::parse("https://user:s%40cret@collector.example.com/logs").unwrap();
        assert_eq!(u.redacted(), "https://user:***@collector.example.com/logs");
        let q = DrainUrl::parse("https://collector.example.com/in?source_token=t0ken").unwrap();
        assert_eq!(q.redacted(), "https://collector.example.com/in?***");
        assert!(!format!("{u} {u:?}").contains("cret"));
        let (bare, user) = u.endpoint();
        assert_eq!(bare.as_str(), "https://collector.example.com/logs");
        assert_eq!(user, Some(("user".into(), Some("s@cret".into()))));
    }

    #[test]
    fn bad_urls_say_why_without_repeating_the_url() {
        for (text, why) in [
            ("ftp://x:hunter2@h/", "scheme"),
            ("syslog://u:hunter2@h:1", "no user"),
            ("syslog://h:1/path", "no path"),
            ("hunter2", "not a URL"),
        ] {
            let e = DrainUrl::parse(text).unwrap_err().to_string();
            assert!(e.contains(why), "{text}: {e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
    }
}
