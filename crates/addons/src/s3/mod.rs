//! Backups kept in an S3-compatible bucket (AWS S3, MinIO, Ceph, Cloudflare R2, Backblaze B2,
//! Wasabi...), addressed path-style: `https://ENDPOINT/BUCKET/PREFIX/<addon>/b001.dump`.
//!
//! Configured by the server's environment:
//!
//! | variable | meaning |
//! |---|---|
//! | `DOZEN_BACKUP_S3_URL` | `https://s3.example.com/bucket/prefix` (the prefix is optional) |
//! | `DOZEN_BACKUP_S3_ACCESS_KEY_ID`, `DOZEN_BACKUP_S3_SECRET_ACCESS_KEY` | the key (else `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`) |
//! | `DOZEN_BACKUP_S3_REGION` | the region signed for (else `AWS_REGION`, else `us-east-1`) |
//! | `DOZEN_BACKUP_S3_PART_SIZE` | dumps larger than this go up in parts of this size (default 16MiB, at least 5MiB) |
//! | `DOZEN_BACKUP_S3_CA` | a PEM file of certificate authorities trusted besides the system's |
//!
//! Requests are signed with AWS Signature Version 4 ([`sign`]). A dump up to the part size is
//! one `PUT`; a larger one a multipart upload, read one part at a time (so memory stays at one
//! part), aborted if any part fails. Each request is tried three times on a network error or a
//! 5xx answer. Errors name the method, the object (`s3://bucket/key`) and the server's error
//! code and message; never the secret key.

mod sign;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub use sign::Credentials;

use crate::AddonError;

/// The default size of an upload's parts.
pub const DEFAULT_PART_SIZE: u64 = 16 << 20;
/// S3's smallest part (all but the last).
pub const MIN_PART_SIZE: u64 = 5 << 20;
/// S3's most parts in one upload.
const MAX_PARTS: u64 = 10_000;
/// How long one request may take (a part of up to 16 MiB on a slow link).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const ATTEMPTS: u32 = 3;
/// The longest error body read from the server.
const MAX_ERROR_BODY: usize = 64 << 10;

/// Where backups go and how to reach it: from `DOZEN_BACKUP_S3_*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Settings {
    /// `scheme://host[:port]`, without a path.
    pub endpoint: url::Url,
    /// The bucket.
    pub bucket: String,
    /// Key prefix, without leading or trailing `/` (may be empty).
    pub prefix: String,
    /// The region signed for.
    pub region: String,
    /// The access key.
    pub credentials: Credentials,
    /// Upload part size.
    pub part_size: u64,
    /// Extra certificate authorities (PEM).
    pub ca: Option<PathBuf>,
}

impl S3Settings {
    /// Read the settings through `lookup`: `None` when `DOZEN_BACKUP_S3_URL` is unset. An
    /// error names the variable, never a secret.
    pub fn from_lookup(
        lookup: &impl Fn(&str) -> Option<String>,
    ) -> Result<Option<S3Settings>, String> {
        let get = |k: &str| {
            lookup(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let Some(raw) = get("DOZEN_BACKUP_S3_URL") else {
            return Ok(None);
        };
        const VAR: &str = "DOZEN_BACKUP_S3_URL";
        let url = url::Url::parse(&raw).map_err(|e| format!("{VAR}: {e}"))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(format!(
                "{VAR}: write the endpoint as https://host/bucket/prefix (path-style), not {}://",
                url.scheme()
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!(
                "{VAR}: holds a user or password; put the key in DOZEN_BACKUP_S3_ACCESS_KEY_ID and DOZEN_BACKUP_S3_SECRET_ACCESS_KEY"
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!("{VAR}: a query or fragment is not allowed"));
        }
        let path = url.path().trim_matches('/');
        let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
        let bucket = percent_encoding::percent_decode_str(bucket)
            .decode_utf8()
            .map_err(|_| format!("{VAR}: the bucket is not UTF-8"))?
            .into_owned();
        let prefix = percent_encoding::percent_decode_str(prefix.trim_matches('/'))
            .decode_utf8()
            .map_err(|_| format!("{VAR}: the prefix is not UTF-8"))?
            .into_owned();
        if bucket.is_empty() {
            return Err(format!(
                "{VAR}: names no bucket; write https://host/bucket or https://host/bucket/prefix"
            ));
        }
        let mut endpoint = url.clone();
        endpoint.set_path("");
        let pick = |ours: &str, aws: &str| get(ours).or_else(|| get(aws));
        let access_key_id = pick("DOZEN_BACKUP_S3_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID");
        let secret_access_key = pick("DOZEN_BACKUP_S3_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY");
        let (Some(access_key_id), Some(secret_access_key)) = (access_key_id, secret_access_key)
        else {
            return Err(format!(
                "{VAR} is set but its key is not: set DOZEN_BACKUP_S3_ACCESS_KEY_ID and DOZEN_BACKUP_S3_SECRET_ACCESS_KEY (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
            ));
        };
        let region = pick("DOZEN_BACKUP_S3_REGION", "AWS_REGION").unwrap_or("us-east-1".into());
        let part_size = match get("DOZEN_BACKUP_S3_PART_SIZE") {
            None => DEFAULT_PART_SIZE,
            Some(v) => match dozen_core::size::parse_bytes(&v) {
                Ok(n) if n >= MIN_PART_SIZE => n,
                _ => {
                    return Err(
                        "DOZEN_BACKUP_S3_PART_SIZE must be an amount of bytes of at least 5MiB, such as 16MiB or 64MiB".into(),
                    );
                }
            },
        };
        Ok(Some(S3Settings {
            endpoint,
            bucket,
            prefix,
            region,
            credentials: Credentials {
                access_key_id,
                secret_access_key,
            },
            part_size,
            ca: get("DOZEN_BACKUP_S3_CA").map(PathBuf::from),
        }))
    }

    /// The key of `name` under the prefix.
    pub fn key(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", self.prefix)
        }
    }
}

/// An object in a bucket: where a backup is, as the store records it (`s3://bucket/key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// The bucket.
    pub bucket: String,
    /// The key.
    pub key: String,
}

impl Object {
    /// `s3://bucket/key`.
    pub fn location(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }

    /// An object from its [`Object::location`].
    pub fn parse(location: &str) -> Option<Object> {
        let (bucket, key) = location.strip_prefix("s3://")?.split_once('/')?;
        (!bucket.is_empty() && !key.is_empty()).then(|| Object {
            bucket: bucket.to_string(),
            key: key.to_string(),
        })
    }
}

/// A client of the configured S3-compatible service.
#[derive(Debug, Clone)]
pub struct Bucket {
    settings: Arc<S3Settings>,
    http: reqwest::Client,
}

/// One answer, read whole (error bodies and small XML documents only).
struct Answer {
    status: reqwest::StatusCode,
    etag: Option<String>,
    body: Vec<u8>,
}

impl Bucket {
    /// A client over `tls` (rustls; the caller's roots plus `settings.ca`).
    pub fn new(settings: S3Settings, tls: rustls::ClientConfig) -> Result<Bucket, AddonError> {
        let mut tls = tls;
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("dozen/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| AddonError::Storage {
                what: "the S3 client".into(),
                message: e.without_url().to_string(),
            })?;
        Ok(Bucket {
            settings: Arc::new(settings),
            http,
        })
    }

    /// The settings it was made with.
    pub fn settings(&self) -> &S3Settings {
        &self.settings
    }

    /// The object `name` under the configured prefix.
    pub fn object(&self, name: &str) -> Object {
        Object {
            bucket: self.settings.bucket.clone(),
            key: self.settings.key(name),
        }
    }

    /// Upload `file` as `object`: one PUT, or a multipart upload when it is larger than the
    /// part size. Returns its size.
    pub async fn upload(&self, object: &Object, file: &Path) -> Result<u64, AddonError> {
        let fail = |m: String| storage("PUT", object, m);
        let mut f = tokio::fs::File::open(file)
            .await
            .map_err(|e| fail(format!("{}: {e}", file.display())))?;
        let size = f
            .metadata()
            .await
            .map_err(|e| fail(format!("{}: {e}", file.display())))?
            .len();
        let part_size = self.settings.part_size;
        if size <= part_size {
            let body = read_part(&mut f, size, file).await.map_err(fail)?;
            self.send_ok("PUT", object, &[], body.into()).await?;
            return Ok(size);
        }
        if size.div_ceil(part_size) > MAX_PARTS {
            return Err(fail(format!(
                "{size} bytes would take more than {MAX_PARTS} parts of {part_size}; raise DOZEN_BACKUP_S3_PART_SIZE"
            )));
        }
        let started = self
            .send_ok("POST", object, &[("uploads", "")], bytes::Bytes::new())
            .await?;
        let upload_id = xml_text(&started.body, "UploadId").ok_or_else(|| {
            storage(
                "POST",
                object,
                "the answer to starting a multipart upload holds no UploadId".into(),
            )
        })?;
        match self
            .upload_parts(object, &upload_id, &mut f, size, file)
            .await
        {
            Ok(()) => Ok(size),
            Err(e) => {
                let abort = self
                    .send_ok(
                        "DELETE",
                        object,
                        &[("uploadId", &upload_id)],
                        bytes::Bytes::new(),
                    )
                    .await;
                Err(match abort {
                    Ok(_) => e,
                    Err(a) => AddonError::Storage {
                        what: format!("PUT {}", object.location()),
                        message: format!("{e}; and aborting the upload failed: {a}"),
                    },
                })
            }
        }
    }

    async fn upload_parts(
        &self,
        object: &Object,
        upload_id: &str,
        f: &mut tokio::fs::File,
        size: u64,
        file: &Path,
    ) -> Result<(), AddonError> {
        let part_size = self.settings.part_size;
        let mut done = String::from("<CompleteMultipartUpload>");
        let mut left = size;
        let mut number = 0u64;
        while left > 0 {
            number += 1;
            let len = left.min(part_size);
            let body = read_part(f, len, file)
                .await
                .map_err(|m| storage("PUT", object, m))?;
            left -= len;
            let n = number.to_string();
            let answer = self
                .send_ok(
                    "PUT",
                    object,
                    &[("partNumber", &n), ("uploadId", upload_id)],
                    body.into(),
                )
                .await?;
            let etag = answer.etag.ok_or_else(|| {
                storage(
                    "PUT",
                    object,
                    format!("part {n} was answered without an ETag"),
                )
            })?;
            done.push_str(&format!(
                "<Part><PartNumber>{n}</PartNumber><ETag>{}</ETag></Part>",
                xml_escape(&etag)
            ));
        }
        done.push_str("</CompleteMultipartUpload>");
        let answer = self
            .send_ok(
                "POST",
                object,
                &[("uploadId", upload_id)],
                done.into_bytes().into(),
            )
            .await?;
        // S3 may answer 200 and still fail the completion, in the body.
        if let Some(code) = xml_text(&answer.body, "Code") {
            let message = xml_text(&answer.body, "Message").unwrap_or_default();
            return Err(storage(
                "POST",
                object,
                format!("completing the upload: {code}: {message}"),
            ));
        }
        Ok(())
    }

    /// Download `object` into `file` (created, mode 0600); its size.
    pub async fn download(&self, object: &Object, file: &Path) -> Result<u64, AddonError> {
        let fail = |m: String| storage("GET", object, m);
        let mut last = None;
        for attempt in 0..ATTEMPTS {
            backoff(attempt).await;
            let response = match self.request("GET", object, &[], bytes::Bytes::new()).await {
                Ok(r) => r,
                Err(e) => {
                    last = Some(fail(e));
                    continue;
                }
            };
            let status = response.status();
            if !status.is_success() {
                let e = answer_error("GET", object, read_answer(response).await);
                if status.is_server_error() {
                    last = Some(e);
                    continue;
                }
                return Err(e);
            }
            return write_body(response, file).await.map_err(fail);
        }
        Err(last.unwrap_or_else(|| fail("no attempt was made".into())))
    }

    /// Delete `object` (deleting one that is gone succeeds, as S3 answers).
    pub async fn delete(&self, object: &Object) -> Result<(), AddonError> {
        self.send_ok("DELETE", object, &[], bytes::Bytes::new())
            .await
            .map(|_| ())
    }

    /// Send a request with `body` and read its whole answer; a non-2xx answer is an error.
    /// Retried on a network error or a 5xx answer.
    async fn send_ok(
        &self,
        method: &str,
        object: &Object,
        query: &[(&str, &str)],
        body: bytes::Bytes,
    ) -> Result<Answer, AddonError> {
        let mut last = None;
        for attempt in 0..ATTEMPTS {
            backoff(attempt).await;
            let response = match self.request(method, object, query, body.clone()).await {
                Ok(r) => r,
                Err(e) => {
                    last = Some(storage(method, object, e));
                    continue;
                }
            };
            let answer = read_answer(response).await;
            if answer.status.is_success() {
                return Ok(answer);
            }
            let server_error = answer.status.is_server_error();
            let e = answer_error(method, object, answer);
            if !server_error {
                return Err(e);
            }
            last = Some(e);
        }
        Err(last.unwrap_or_else(|| storage(method, object, "no attempt was made".into())))
    }

    async fn request(
        &self,
        method: &str,
        object: &Object,
        query: &[(&str, &str)],
        body: bytes::Bytes,
    ) -> Result<reqwest::Response, String> {
        let s = &self.settings;
        let path = format!("/{}/{}", object.bucket, object.key);
        let host = match (s.endpoint.host_str(), s.endpoint.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => return Err("the endpoint has no host".into()),
        };
        let payload = sign::sha256_hex(&body);
        let amz_date = jiff::Timestamp::now()
            .strftime("%Y%m%dT%H%M%SZ")
            .to_string();
        let authorization = sign::authorization(
            &sign::Request {
                method,
                path: &path,
                query,
                host: &host,
                payload_sha256: &payload,
                amz_date: &amz_date,
                extra_headers: &[],
            },
            &s.region,
            &s.credentials,
        );
        let mut url = format!(
            "{}://{host}{}",
            s.endpoint.scheme(),
            sign::uri_encode(&path, true)
        );
        if !query.is_empty() {
            url.push('?');
            url.push_str(&sign::canonical_query(query));
        }
        let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
        self.http
            .request(method, url)
            .header("x-amz-content-sha256", payload)
            .header("x-amz-date", amz_date)
            .header("authorization", authorization)
            .body(body)
            .send()
            .await
            .map_err(describe)
    }
}

async fn backoff(attempt: u32) {
    if attempt > 0 {
        tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
    }
}

async fn read_part(f: &mut tokio::fs::File, len: u64, file: &Path) -> Result<Vec<u8>, String> {
    let mut body = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    f.take(len)
        .read_to_end(&mut body)
        .await
        .map_err(|e| format!("{}: {e}", file.display()))?;
    if body.len() as u64 != len {
        return Err(format!("{}: shorter than expected", file.display()));
    }
    Ok(body)
}

async fn read_answer(mut response: reqwest::Response) -> Answer {
    let status = response.status();
    let etag = response
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = MAX_ERROR_BODY.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if room < chunk.len() && !status.is_success() {
            break;
        }
    }
    Answer { status, etag, body }
}

async fn write_body(mut response: reqwest::Response, file: &Path) -> Result<u64, String> {
    let io = |e: std::io::Error| format!("{}: {e}", file.display());
    let mut out = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
        .await
        .map_err(io)?;
    let mut size = 0u64;
    let result = async {
        while let Some(chunk) = response.chunk().await.map_err(describe)? {
            out.write_all(&chunk).await.map_err(io)?;
            size += chunk.len() as u64;
        }
        out.sync_all().await.map_err(io)?;
        Ok::<_, String>(size)
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(file).await;
    }
    result
}

fn storage(method: &str, object: &Object, message: String) -> AddonError {
    AddonError::Storage {
        what: format!("{method} {}", object.location()),
        message,
    }
}

fn answer_error(method: &str, object: &Object, answer: Answer) -> AddonError {
    let code = xml_text(&answer.body, "Code");
    let message = xml_text(&answer.body, "Message");
    let text = match (code, message) {
        (Some(c), Some(m)) => format!("{}: {c}: {m}", answer.status),
        (Some(c), None) => format!("{}: {c}", answer.status),
        _ => answer.status.to_string(),
    };
    storage(method, object, text)
}

/// A reqwest error without its URL, with its causes.
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The text of the first `<tag>` element of an XML document, unescaped.
fn xml_text(xml: &[u8], tag: &str) -> Option<String> {
    let xml = std::str::from_utf8(xml).ok()?;
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&format!("</{tag}>"))?;
    Some(xml_unescape(&xml[start..end]))
}

fn xml_unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#34;", "\"")
        .replace("&amp;", "&")
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<Option<S3Settings>, String> {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        S3Settings::from_lookup(&|k: &str| map.get(k).cloned())
    }

    #[test]
    fn reads_the_url_and_the_key() {
        assert_eq!(settings(&[]), Ok(None));
        let s = settings(&[
            (
                "DOZEN_BACKUP_S3_URL",
                "https://s3.example.com:9000/backups/dozen/one/",
            ),
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("DOZEN_BACKUP_S3_PART_SIZE", "8MiB"),
        ])
        .expect("valid")
        .expect("set");
        assert_eq!(s.endpoint.as_str(), "https://s3.example.com:9000/");
        assert_eq!(
            (s.bucket.as_str(), s.prefix.as_str()),
            ("backups", "dozen/one")
        );
        assert_eq!((s.region.as_str(), s.part_size), ("us-east-1", 8 << 20));
        assert_eq!(
            s.key("shop-postgresql-1/b001.dump"),
            "dozen/one/shop-postgresql-1/b001.dump"
        );
    }

    #[test]
    fn refuses_what_cannot_work_without_echoing_secrets() {
        let url = ("DOZEN_BACKUP_S3_URL", "https://s3.example.com/backups");
        let key = [
            ("DOZEN_BACKUP_S3_ACCESS_KEY_ID", "AKID"),
            ("DOZEN_BACKUP_S3_SECRET_ACCESS_KEY", "hunter22"),
        ];
        for (pairs, says) in [
            (vec![url], "its key is not"),
            (
                vec![
                    ("DOZEN_BACKUP_S3_URL", "https://s3.example.com/"),
                    key[0],
                    key[1],
                ],
                "names no bucket",
            ),
            (
                vec![("DOZEN_BACKUP_S3_URL", "s3://backups"), key[0], key[1]],
                "path-style",
            ),
            (
                vec![
                    (
                        "DOZEN_BACKUP_S3_URL",
                        "https://AKID:hunter22@s3.example.com/b",
                    ),
                    key[0],
                    key[1],
                ],
                "holds a user",
            ),
            (
                vec![url, key[0], key[1], ("DOZEN_BACKUP_S3_PART_SIZE", "1MiB")],
                "at least 5MiB",
            ),
        ] {
            let e = settings(&pairs).expect_err(says);
            assert!(e.contains(says) && !e.contains("hunter22"), "{e}");
        }
    }

    #[test]
    fn objects_round_trip_through_their_location() {
        let o = Object {
            bucket: "b".into(),
            key: "p/shop-postgresql-1/b002.dump".into(),
        };
        assert_eq!(o.location(), "s3://b/p/shop-postgresql-1/b002.dump");
        assert_eq!(Object::parse(&o.location()), Some(o));
        assert_eq!(Object::parse("/var/lib/x"), None);
    }

    #[test]
    fn xml_answers_are_read() {
        let doc = b"<?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code><Message>a &amp; b</Message></Error>";
        assert_eq!(
            xml_text(doc, "Code").as_deref(),
            Some("SignatureDoesNotMatch")
        );
        assert_eq!(xml_text(doc, "Message").as_deref(), Some("a & b"));
        assert_eq!(xml_text(doc, "UploadId"), None);
    }
}
