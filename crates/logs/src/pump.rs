//! Reading one pipe into the log channel.

use std::io;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::event::{Label, LineBatch, Stream};
use crate::framer::LineFramer;
use crate::writer::LogSender;

/// How much one read takes from a pipe.
pub const READ_SIZE: usize = 16 * 1024;

/// Read `reader` until end of file, sending every line to `sender` as `label`'s `stream`.
///
/// One read becomes one batch. While the channel is full this waits before reading again, so a
/// slow consumer stops the process at its next write instead of growing a buffer. Returns the
/// number of lines sent. Ends early, without error, if the log writer is gone.
pub async fn pump<R>(
    mut reader: R,
    label: Arc<Label>,
    stream: Stream,
    sender: LogSender,
) -> io::Result<u64>
where
    R: AsyncRead + Unpin,
{
    let mut framer = LineFramer::new();
    let mut chunk = vec![0u8; READ_SIZE];
    let mut sent = 0u64;
    loop {
        let n = match reader.read(&mut chunk).await {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                // Deliver what we hold before reporting the read error.
                let mut batch = LineBatch::new(label.clone(), stream);
                framer.finish(&mut batch);
                if !batch.is_empty() {
                    let _ = sender.lines(batch).await;
                }
                return Err(e);
            }
        };
        let mut batch = LineBatch::new(label.clone(), stream);
        if n == 0 {
            framer.finish(&mut batch);
        } else {
            framer.push(&chunk[..n], &mut batch);
        }
        if !batch.is_empty() {
            batch.stamp();
            batch.remember_tail();
            sent += batch.len() as u64;
            if sender.lines(batch).await.is_err() {
                return Ok(sent);
            }
        }
        if n == 0 {
            return Ok(sent);
        }
    }
}
