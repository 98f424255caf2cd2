//! The HTTP client for a `dozen server`: `DOZEN_URL`, `DOZEN_API_TOKEN`, the API's types
//! (`dozen_api`) in and out, server errors turned into one clear line.

use std::io::{BufRead, BufReader, Read};
use std::time::Duration;

use anyhow::{Context, bail};
use reqwest::Method;
use reqwest::blocking::{Body, Client as Http, RequestBuilder, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

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
        let http = Http::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(None)
            .build()
            .context("setting up the HTTP client")?;
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
        let resp = req.send().with_context(|| {
            format!("cannot reach the dozen server at {} (DOZEN_URL)", self.base)
        })?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let text = resp.text().unwrap_or_default();
        let message = serde_json::from_str::<dozen_api::ErrorBody>(&text)
            .map(|b| b.error.message)
            .unwrap_or_else(|_| text.trim().to_string());
        bail!("{message} (HTTP {})", status.as_u16())
    }

    /// GET, the answer read as a `T`.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        answer(self.send(self.request(Method::GET, path))?)
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

    /// A request with a JSON body, the answer read as a `T`.
    pub fn call<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        answer(self.send(self.request(method, path).json(body))?)
    }

    /// DELETE, the answer read as a `T`.
    pub fn delete<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        answer(self.send(self.request(Method::DELETE, path))?)
    }

    /// A GET whose answer is NDJSON, each line read as a `T` as it arrives.
    pub fn stream<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<Lines<T>> {
        Ok(Lines::new(self.send(self.request(Method::GET, path))?))
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

    /// Upload `body` (of `len` bytes) and read the NDJSON answer, each line as a `T`.
    pub fn upload<T: DeserializeOwned>(
        &self,
        path: &str,
        body: impl Read + Send + 'static,
        len: u64,
    ) -> anyhow::Result<Lines<T>> {
        let req = self
            .request(Method::POST, path)
            .header("content-type", "application/zstd")
            .body(Body::sized(body, len));
        Ok(Lines::new(self.send(req)?))
    }
}

/// Read a JSON answer as a `T`, saying what did not fit when it does not.
fn answer<T: DeserializeOwned>(resp: Response) -> anyhow::Result<T> {
    let text = resp.text().context("reading the server's answer")?;
    serde_json::from_str(&text).context(
        "the server's answer is not what this dozen expects (is the server a different version?)",
    )
}

/// The lines of a streaming answer, each read as a `T`.
pub struct Lines<T> {
    reader: BufReader<Box<dyn Read>>,
    item: std::marker::PhantomData<T>,
}

impl<T> Lines<T> {
    fn new(resp: Response) -> Lines<T> {
        Lines {
            reader: BufReader::new(Box::new(resp)),
            item: std::marker::PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Lines<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lines")
    }
}

impl<T: DeserializeOwned> Iterator for Lines<T> {
    type Item = anyhow::Result<T>;

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
                            .context("the server sent a line this dozen does not understand"),
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
