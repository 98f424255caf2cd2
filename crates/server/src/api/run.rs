//! `POST /v1/apps/{app}/run`: one-offs, attached (stdin streamed in, output streamed back) or
//! detached (output in the app's log).
//!
//! The command is a command line (`command`) or the words a user typed (`argv`, quoted into a
//! line by [`dozen_core::command::shell_line`], so each word reaches the program unchanged).
//! An attached client that accepts [`frames::CONTENT_TYPE`] gets the output byte for byte, with
//! backpressure all the way to the process; one that does not gets the older NDJSON stream of
//! output lines taken from the app's log.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use dozen_logs::Stream;
use dozen_supervise::{Attached, ExitStatus, OutputChunk, Stop};
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_stream::wrappers::ReceiverStream;

use super::{ApiResult, AppState, Json, Path, Query, stream_until_done};
use crate::error::ApiError;
use crate::frames;
use crate::loghub::Filter;
use crate::platform::{PlatformResult, no_status};

#[derive(Debug, Deserialize, Default)]
pub(super) struct RunQuery {
    /// With `command` or `argv` in the query, the request body is the one-off's stdin,
    /// streamed.
    command: Option<String>,
    /// The words to run, as a JSON array of strings.
    argv: Option<String>,
}

/// The largest JSON body of a run request.
const RUN_BODY_LIMIT: usize = 64 * 1024;

/// How many chunks of output (up to 64 KiB each) wait for a slow client, in the supervisor's
/// channel and again in the answer's: beyond that the process waits.
const OUTPUT_QUEUE: usize = 8;

/// The line `sh -c` runs for `command` or `argv` (exactly one of them).
fn command_line(command: Option<String>, argv: Option<Vec<String>>) -> ApiResult<String> {
    let line = match (command, argv) {
        (Some(_), Some(_)) => {
            return Err(ApiError::Invalid(
                "give the command as command or as argv, not both".into(),
            ));
        }
        (Some(line), None) => line,
        (None, Some(words)) => dozen_core::command::shell_line(&words),
        (None, None) => String::new(),
    };
    if line.trim().is_empty() {
        return Err(ApiError::Invalid("command: give the command to run".into()));
    }
    Ok(line)
}

pub(super) async fn run(
    State(s): State<AppState>,
    Path(app): Path<String>,
    Query(q): Query<RunQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let attached = q.command.is_some() || q.argv.is_some();
    let (command, detached, stdin) = if attached {
        let argv = q
            .argv
            .map(|a| serde_json::from_str::<Vec<String>>(&a))
            .transpose()
            .map_err(|e| ApiError::Invalid(format!("argv: a JSON array of strings: {e}")))?;
        (command_line(q.command, argv)?, false, Some(body))
    } else {
        let bytes = axum::body::to_bytes(body, RUN_BODY_LIMIT)
            .await
            .map_err(|_| {
                ApiError::Invalid("the run request body is not readable or over 64 KiB".into())
            })?;
        let parsed: dozen_api::RunRequest = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::Invalid(format!("the run request: {e}")))?;
        (
            command_line(parsed.command, parsed.argv)?,
            parsed.detached,
            None,
        )
    };
    let framed = attached && accepts_frames(&headers);
    let one_off = s.platform.one_off(&app).await?;
    let name = one_off.name.clone();
    let stop_tx = one_off.stop.clone();
    let live = s.runtime.log(&app).subscribe();
    let (output_tx, output_rx) = mpsc::channel(OUTPUT_QUEUE);
    let io = stdin.map(|body| Attached {
        stdin: stdin_channel(body, stop_tx.clone()),
        output: framed.then_some(output_tx),
    });
    let done_rx = s.platform.run_one_off(one_off, command, io);
    if detached {
        return Ok((StatusCode::ACCEPTED, Json(dozen_api::RunStarted { name })).into_response());
    }
    if framed {
        return Ok(frame_stream(name, output_rx, done_rx, stop_tx));
    }
    let filter = Filter {
        ps: Some(name.clone()),
        source: None,
    };
    Ok(stream_until_done(s, app, live, filter, done_rx, move |r| {
        exit_json(&name, r)
    }))
}

/// Whether the client asked for the frame stream.
fn accepts_frames(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.split(';').next().unwrap_or("").trim() == frames::CONTENT_TYPE)
}

/// The final object of a run: its name, its exit code and, when it could not run, why (an
/// internal cause is logged here, once).
fn exit_json(name: &str, result: PlatformResult<ExitStatus>) -> dozen_api::RunExit {
    let name = name.to_string();
    match result {
        Ok(status) => dozen_api::RunExit {
            name,
            exit: status.shell_code(),
            error: None,
        },
        Err(e) => dozen_api::RunExit {
            name,
            exit: 1,
            error: Some(e.report()),
        },
    }
}

/// The answer of an attached one-off as frames: every chunk of output as it comes, then, once
/// both pipes are at end of file and the process has ended, the exit frame. A client that goes
/// away stops the one-off, as a closed terminal would.
fn frame_stream(
    name: String,
    mut output: mpsc::Receiver<OutputChunk>,
    done: oneshot::Receiver<PlatformResult<ExitStatus>>,
    stop: Arc<watch::Sender<Stop>>,
) -> Response {
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(OUTPUT_QUEUE);
    tokio::spawn(async move {
        let gone = || {
            stop.send_replace(Stop::Graceful { signal: None });
        };
        loop {
            tokio::select! {
                chunk = output.recv() => {
                    let Some(chunk) = chunk else { break };
                    let kind = match chunk.stream {
                        Stream::Stdout => frames::STDOUT,
                        Stream::Stderr => frames::STDERR,
                    };
                    let frame = Bytes::from(frames::encode(kind, &chunk.bytes));
                    if tx.send(Ok(frame)).await.is_err() {
                        return gone();
                    }
                }
                () = tx.closed() => return gone(),
            }
        }
        let result = done.await.unwrap_or_else(|_| Err(no_status()));
        let last = serde_json::to_string(&exit_json(&name, result))
            .expect("a RunExit holds only strings and numbers");
        let _ = tx
            .send(Ok(Bytes::from(frames::encode(
                frames::EXIT,
                last.as_bytes(),
            ))))
            .await;
    });
    Response::builder()
        .header(header::CONTENT_TYPE, frames::CONTENT_TYPE)
        .body(Body::from_stream(ReceiverStream::new(rx)))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// The request body as a bounded stream of chunks for a process's stdin: the client's upload
/// slows down when the process reads slowly. The body's end is the end of stdin; a body that
/// breaks off means the client is gone, and the one-off is stopped (even one that prints
/// nothing, so no answer would ever fail to reach the client).
fn stdin_channel(body: Body, stop: Arc<watch::Sender<Stop>>) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(async move {
        let mut stream = body.into_data_stream();
        while let Some(chunk) = tokio_stream::StreamExt::next(&mut stream).await {
            let Ok(chunk) = chunk else {
                stop.send_replace(Stop::Graceful { signal: None });
                return;
            };
            if tx.send(chunk.to_vec()).await.is_err() {
                return;
            }
        }
    });
    rx
}
