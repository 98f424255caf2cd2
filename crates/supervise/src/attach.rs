//! The standard streams of a one-off a client is attached to: stdin from the client, stdout and
//! stderr to it as bytes, through bounded channels (see [`crate::Supervisor::run_attached`]).

use std::os::fd::OwnedFd;

use dozen_logs::Stream;
use tokio::net::unix::pipe;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The standard streams of a one-off that a client is attached to
/// ([`crate::Supervisor::run_attached`]).
#[derive(Debug)]
pub struct Attached {
    /// What the process reads on stdin; the end of the channel is end of file.
    pub stdin: mpsc::Receiver<Vec<u8>>,
    /// Where its stdout and stderr go, byte for byte; `None` sends them to the log as lines.
    pub output: Option<mpsc::Sender<OutputChunk>>,
}

/// Bytes a process wrote to one of its output streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputChunk {
    /// Which stream.
    pub stream: Stream,
    /// Exactly what was read from the pipe (never empty).
    pub bytes: Vec<u8>,
}

/// The largest chunk of attached output, and the size of each read from an output pipe.
const RAW_CHUNK: usize = 64 * 1024;

/// Read the pipes of an attached one-off into `output`, as bytes. A pump ends at end of file,
/// on a read error, or when `output` is closed (its pipe is then closed too).
pub(crate) fn start_raw_pumps(
    output: mpsc::Sender<OutputChunk>,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
) -> Vec<JoinHandle<()>> {
    use tokio::io::AsyncReadExt;
    let mut handles = Vec::new();
    for (fd, stream) in [(stdout, Stream::Stdout), (stderr, Stream::Stderr)] {
        let Some(fd) = fd else { continue };
        let Ok(mut receiver) = pipe::Receiver::from_owned_fd(fd) else {
            continue;
        };
        let output = output.clone();
        handles.push(tokio::spawn(async move {
            let mut buf = vec![0u8; RAW_CHUNK];
            loop {
                let n = match receiver.read(&mut buf).await {
                    Ok(0) => return,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => return,
                };
                let chunk = OutputChunk {
                    stream,
                    bytes: buf[..n].to_vec(),
                };
                if output.send(chunk).await.is_err() {
                    return;
                }
            }
        }));
    }
    handles
}
