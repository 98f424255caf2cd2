//! One-offs: a command run once in the live release's environment, as `run.N`.

use std::sync::Arc;

use dozen_store::Release;
use dozen_supervise::{Attached, ExitStatus, Stop};
use tokio::sync::{oneshot, watch};

use super::{Platform, PlatformError, PlatformResult};

/// A one-off about to run: its name (`run.N`, for following its output) and the switch that
/// stops it.
#[derive(Debug)]
pub struct OneOff {
    /// `run.N`.
    pub name: String,
    /// Send [`Stop::Graceful`] to stop it (its client went away).
    pub stop: Arc<watch::Sender<Stop>>,
    release: Release,
    stop_rx: watch::Receiver<Stop>,
}

impl Platform {
    /// Name a one-off of the app's live release.
    pub async fn one_off(&self, app: &str) -> PlatformResult<OneOff> {
        self.check_not_shutting_down()?;
        let release = self.live_release(app).await?;
        let name = self.runtime.one_off_name(app, None).await;
        let (stop_tx, stop_rx) = watch::channel(Stop::Running);
        Ok(OneOff {
            name,
            stop: Arc::new(stop_tx),
            release,
            stop_rx,
        })
    }

    /// Run `command` as `one_off` in a task of its own, with `io` attached (else its output
    /// goes to the app's log only); it is stopped when the server shuts down. Resolves to its
    /// exit status.
    pub fn run_one_off(
        &self,
        one_off: OneOff,
        command: String,
        io: Option<Attached>,
    ) -> oneshot::Receiver<PlatformResult<ExitStatus>> {
        let (done_tx, done_rx) = oneshot::channel();
        let p = self.clone();
        tokio::spawn(async move {
            let OneOff {
                name,
                stop,
                release,
                stop_rx,
            } = one_off;
            let mut down = p.shutting_down.clone();
            let watcher = tokio::spawn(async move {
                if down.wait_for(|d| *d).await.is_ok() {
                    stop.send_replace(Stop::Graceful { signal: None });
                }
            });
            let status = p
                .runtime
                .run_once(&release, &name, &command, stop_rx, io)
                .await;
            watcher.abort();
            let _ = done_tx.send(status);
        });
        done_rx
    }
}

/// What a one-off that ended without a status reports.
pub(crate) fn no_status() -> PlatformError {
    PlatformError::internal(
        "running the one-off",
        "its supervisor task ended without an exit status",
    )
}
