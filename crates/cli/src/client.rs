//! The HTTP client for a `dozen server`: `DOZEN_URL`, `DOZEN_API_TOKEN`, JSON in and out,
//! server errors turned into one clear line. An `https://` server's certificate is verified
//! against the usual roots and the CA of `DOZEN_CA_CERT` when it is set.

use std::io::{BufRead, BufReader, Read};
use std::time::Duration;

use anyhow::{Context, bail};
use reqwest::Method;
use reqwest::blocking::{Body, Client as Http, RequestBuilder, Response};
use serde_json::Value;

/// A connection to one server.
#[derive(Debug)]
pub struct Client {
    base: String,
    token: String,
    http: Http,
}

impl Client {
    /// From `DOZEN_URL` (default `http://127.0.0.1:5050`) and `DOZEN_API_TOKEN`.
    pub fn from_env() -> anyhow::Result<Client> {
        let base = std::env::var("DOZEN_URL")
            .ok()
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| "http://127.0.0.1:5050".into());
        let token = std::env::var("DOZEN_API_TOKEN")
            .ok()
            .filter(|v| !v.trim().is_empty())
            .context("DOZEN_API_TOKEN is not set: set it to an API token of the server (dozen tokens:create NAME on the server host makes one)")?;
        let mut builder = Http::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(None);
        if let Some(path) = std::env::var_os("DOZEN_CA_CERT").filter(|v| !v.is_empty()) {
            for ca in custom_ca(std::path::Path::new(&path))? {
                builder = builder.add_root_certificate(ca);
            }
        }
        let http = builder.build().context("setting up the HTTP client")?;
        Ok(Client {
            base: base.trim_end_matches('/').to_string(),
            token,
            http,
        })
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    fn send(&self, req: RequestBuilder) -> anyhow::Result<Response> {
        let resp = req.send().map_err(|e| {
            let untrusted = std::iter::successors(Some(&e as &dyn std::error::Error), |e| {
                e.source()
            })
            .any(|e| e.to_string().contains("certificate"));
            let e = anyhow::Error::from(e).context(format!(
                "cannot reach the dozen server at {} (DOZEN_URL)",
                self.base
            ));
            if untrusted {
                e.context("the server's TLS certificate is not trusted: set DOZEN_CA_CERT to the PEM file of the CA that signed it")
            } else {
                e
            }
        })?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let text = resp.text().unwrap_or_default();
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| text.trim().to_string());
        bail!("{message} (HTTP {})", status.as_u16())
    }

    /// GET, parsed as JSON.
    pub fn get(&self, path: &str) -> anyhow::Result<Value> {
        Ok(self.send(self.request(Method::GET, path))?.json()?)
    }

    /// GET a binary answer, read as it arrives, and the value of its `X-Dozen-Slug-Digest`
    /// header.
    pub fn download(&self, path: &str) -> anyhow::Result<(Response, Option<String>)> {
        let resp = self.send(self.request(Method::GET, path))?;
        let digest = resp
            .headers()
            .get("x-dozen-slug-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Ok((resp, digest))
    }

    /// A JSON request with a JSON answer.
    pub fn call(&self, method: Method, path: &str, body: &Value) -> anyhow::Result<Value> {
        Ok(self.send(self.request(method, path).json(body))?.json()?)
    }

    /// DELETE.
    pub fn delete(&self, path: &str) -> anyhow::Result<Value> {
        Ok(self.send(self.request(Method::DELETE, path))?.json()?)
    }

    /// A request whose answer is NDJSON, read line by line as it arrives.
    pub fn stream_json(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Lines> {
        let mut req = self.request(method, path);
        if let Some(b) = body {
            req = req.json(b);
        }
        Ok(Lines {
            reader: BufReader::new(Box::new(self.send(req)?)),
        })
    }

    /// Send a body of unknown length (streamed, chunked) and get the answer, asked for as
    /// media type `accept`, to read as it arrives, while the body is still being sent.
    pub fn duplex_raw(
        &self,
        path: &str,
        accept: &str,
        body: impl Read + Send + 'static,
    ) -> anyhow::Result<Response> {
        let req = self
            .request(Method::POST, path)
            .header("content-type", "application/octet-stream")
            .header("accept", accept)
            .body(Body::new(body));
        self.send(req)
    }

    /// Upload `body` (of `len` bytes) and read the NDJSON answer.
    pub fn upload(
        &self,
        path: &str,
        body: impl Read + Send + 'static,
        len: u64,
    ) -> anyhow::Result<Lines> {
        let req = self
            .request(Method::POST, path)
            .header("content-type", "application/zstd")
            .body(Body::sized(body, len));
        Ok(Lines {
            reader: BufReader::new(Box::new(self.send(req)?)),
        })
    }
}

/// The certificates of the PEM file `DOZEN_CA_CERT` names, trusted beside the usual roots.
fn custom_ca(path: &std::path::Path) -> anyhow::Result<Vec<reqwest::Certificate>> {
    let pem = std::fs::read(path)
        .with_context(|| format!("DOZEN_CA_CERT: reading {}", path.display()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .with_context(|| format!("DOZEN_CA_CERT: {} is not a PEM certificate", path.display()))?;
    if certs.is_empty() {
        bail!(
            "DOZEN_CA_CERT: {} holds no CERTIFICATE section: give the CA certificate as PEM",
            path.display()
        );
    }
    Ok(certs)
}

/// JSON values, one per line of a streaming answer.
pub struct Lines {
    reader: BufReader<Box<dyn Read>>,
}

impl std::fmt::Debug for Lines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lines")
    }
}

impl Iterator for Lines {
    type Item = anyhow::Result<Value>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut line = String::new();
        loop {
            line.clear();
            match self.reader.read_line(&mut line) {
                Ok(0) => return None,
                Ok(_) if line.trim().is_empty() => continue,
                Ok(_) => {
                    return Some(
                        serde_json::from_str(line.trim())
                            .context("the server sent a line that is not JSON"),
                    );
                }
                Err(e) => {
                    return Some(Err(
                        anyhow::Error::from(e).context("reading from the server")
                    ));
                }
            }
        }
    }
}
