//! The head of a CGI program's answer (RFC 3875 section 6): header lines up to an empty line,
//! `Status: 404 Not Found` for the status, the rest as response headers.

/// The longest head accepted; a program that writes more without an empty line is broken.
pub(crate) const MAX_HEAD: usize = 64 * 1024;

/// A parsed CGI head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    /// The status (200 when the program gives none).
    pub status: u16,
    /// The other header lines, in order.
    pub headers: Vec<(String, String)>,
}

/// Why a head could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HeadError {
    /// More than [`MAX_HEAD`] bytes without the empty line that ends it.
    #[error("the CGI head is longer than {MAX_HEAD} bytes")]
    TooLong,
    /// A line that is not `Name: value`, or a bad status.
    #[error("bad CGI header line {0:?}")]
    BadLine(String),
}

/// Where the head in `buf` ends (the index of the first body byte), if it is all there.
pub(crate) fn head_end(buf: &[u8]) -> Result<Option<usize>, HeadError> {
    let mut start = 0;
    while let Some(nl) = buf[start..].iter().position(|b| *b == b'\n') {
        let line = &buf[start..start + nl];
        start += nl + 1;
        if line.is_empty() || line == b"\r" {
            return Ok(Some(start));
        }
    }
    if buf.len() > MAX_HEAD {
        return Err(HeadError::TooLong);
    }
    Ok(None)
}

/// Parse the head `buf[..end]` (as found by [`head_end`]).
pub(crate) fn parse_head(head: &[u8]) -> Result<Head, HeadError> {
    let text = String::from_utf8_lossy(head);
    let mut status = 200;
    let mut headers = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| HeadError::BadLine(line.to_string()))?;
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("status") {
            status = value
                .split_whitespace()
                .next()
                .and_then(|c| c.parse::<u16>().ok())
                .filter(|c| (100..=599).contains(c))
                .ok_or_else(|| HeadError::BadLine(line.to_string()))?;
        } else {
            headers.push((name.to_string(), value.to_string()));
        }
    }
    Ok(Head { status, headers })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_end_at_the_first_empty_line() {
        let answer = b"Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\nbody\n\nmore";
        let end = head_end(answer).expect("ok").expect("complete");
        assert_eq!(&answer[end..], b"body\n\nmore");
        let head = parse_head(&answer[..end]).expect("head");
        assert_eq!(head.status, 404);
        assert_eq!(
            head.headers,
            vec![("Content-Type".to_string(), "text/plain".to_string())]
        );
        // Bare newlines, as git http-backend writes them, and no status: 200.
        let answer = b"Expires: Fri, 01 Jan 1980 00:00:00 GMT\nContent-Type: application/x-git-receive-pack-advertisement\n\n001f";
        let end = head_end(answer).expect("ok").expect("complete");
        assert_eq!(&answer[end..], b"001f");
        assert_eq!(parse_head(&answer[..end]).expect("head").status, 200);
    }

    #[test]
    fn incomplete_long_and_bad_heads() {
        assert_eq!(head_end(b"Content-Type: text/plain\r\n"), Ok(None));
        let long = vec![b'x'; MAX_HEAD + 1];
        assert_eq!(head_end(&long), Err(HeadError::TooLong));
        assert!(matches!(
            parse_head(b"no colon here\n\n"),
            Err(HeadError::BadLine(_))
        ));
        assert!(matches!(
            parse_head(b"Status: abc\n\n"),
            Err(HeadError::BadLine(_))
        ));
    }
}
