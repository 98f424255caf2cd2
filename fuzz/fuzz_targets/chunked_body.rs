//! The router's response body decoder (`wire::Decoder`), above all chunked decoding:
//!
//! - the result never depends on how the bytes are split into reads;
//! - a body a strict decoder built on httparse's chunk-size parser accepts (with sizes of at
//!   most 15 hex digits) is accepted with the same data and the same bytes left over;
//! - any data written in chunks of any sizes decodes back to itself;
//! - `Content-Length` and read-to-close bodies give exactly their bytes.
#![no_main]

use dozen_router::fuzzing::{self, Body, Unframed};
use libfuzzer_sys::fuzz_target;

/// A strict chunked decoder: chunk-size lines by `httparse::parse_chunk_size`, CRLF after
/// each chunk, trailer lines ending in CRLF. `Some((data, rest))` when the body is complete.
fn strict(input: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut at = 0;
    let mut data = Vec::new();
    loop {
        let rest = &input[at..];
        let (used, size) = match httparse::parse_chunk_size(rest) {
            Ok(httparse::Status::Complete(done)) => done,
            _ => return None,
        };
        let line = &rest[..used - 2];
        if used > 4096 || line.contains(&b'\n') {
            return None; // a line longer than the router takes, or one httparse reads past LF
        }
        let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
        if digits == 0 || digits > 15 {
            return None; // outside what both sides accept
        }
        at += used;
        if size == 0 {
            // Trailer lines until an empty one.
            loop {
                let rest = &input[at..];
                let end = rest.windows(2).position(|w| w == b"\r\n")?;
                if rest[..end].contains(&b'\n') || end > 4094 {
                    return None;
                }
                at += end + 2;
                if end == 0 {
                    return Some((data, input[at..].to_vec()));
                }
            }
        }
        let size = usize::try_from(size).ok()?;
        let chunk = input.get(at..at.checked_add(size)?)?;
        data.extend_from_slice(chunk);
        at += size;
        if input.get(at..at + 2)? != b"\r\n" {
            return None;
        }
        at += 2;
    }
}

fn pieces(input: &[u8], size: usize) -> Vec<&[u8]> {
    if size == 0 {
        vec![input]
    } else {
        input.chunks(size).collect()
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, input)) = data.split_first() else {
        return;
    };
    let split = usize::from(flags >> 2);
    match flags & 3 {
        0 => {
            let whole = fuzzing::decode_body(Body::Chunked, &[input], false);
            let split_up = fuzzing::decode_body(Body::Chunked, &pieces(input, split), false);
            assert_eq!(whole, split_up, "reads of {split} bytes");
            if let Some((body, rest)) = strict(input) {
                let ours = whole
                    .unwrap_or_else(|_| panic!("refused: {:?}", String::from_utf8_lossy(input)))
                    .expect("complete");
                assert_eq!((ours.data, ours.rest), (body, rest));
            }
        }
        1 => {
            // Our own encoding of `input`, in chunks of 1 + split bytes, with an extension
            // and a trailer: decodes to `input`.
            let mut framed = Vec::new();
            for chunk in input.chunks(split + 1) {
                framed.extend_from_slice(format!("{:X};x=\"y\"\r\n", chunk.len()).as_bytes());
                framed.extend_from_slice(chunk);
                framed.extend_from_slice(b"\r\n");
            }
            framed.extend_from_slice(b"0\r\nX-Sum: 1\r\n\r\nNEXT");
            let ours = fuzzing::decode_body(Body::Chunked, &pieces(&framed, split % 7), false)
                .expect("our own framing is valid")
                .expect("complete");
            assert_eq!(
                ours,
                Unframed {
                    data: input.to_vec(),
                    trailers: vec![("x-sum".into(), b"1".to_vec())],
                    rest: b"NEXT".to_vec(),
                }
            );
        }
        2 if split > 0 => {
            // Content-Length: exactly n bytes, the rest left for the next response.
            let n = split.min(input.len());
            let got = fuzzing::decode_body(Body::Length(split as u64), &pieces(input, 3), false);
            if split <= input.len() {
                let got = got.expect("valid").expect("complete");
                assert_eq!(got.data, &input[..n]);
                assert_eq!(got.rest, &input[n..]);
            } else {
                assert_eq!(got, Ok(None));
                let closed = fuzzing::decode_body(Body::Length(split as u64), &[input], true);
                assert!(closed.is_err(), "a body cut short is an error");
            }
        }
        2 => {}
        _ => {
            let got = fuzzing::decode_body(Body::Eof, &pieces(input, split), true)
                .expect("valid")
                .expect("complete");
            assert_eq!(got.data, input);
        }
    }
});
