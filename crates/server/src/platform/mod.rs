//! The platform service: apps, config, releases and rollouts, formation, restarts, domains,
//! one-offs and add-ons, apart from HTTP.
//!
//! Every operation that changes an app runs in a task of its own ([`Platform::locked`]) that
//! holds the app's lock: a caller that goes away (a client that disconnects) cannot cancel it
//! half-way, and two changes of one app never interleave. Reads take no lock.
//!
//! The HTTP layer ([`crate::api`]) parses requests, authenticates, calls a method here and maps
//! a [`PlatformError`] to a status. Builds and rollouts are in [`crate::deploy`], the processes
//! in [`crate::runtime`].

mod addons;
mod apps;
mod backups;
mod drains;
mod error;
mod formation;
mod one_off;
mod releases;
mod schedules;
mod sizes;

use std::future::Future;
use std::sync::Arc;

use dozen_store::{Release, Store};
use tokio::sync::watch;

pub use addons::attachment_var;
pub use apps::AppSummary;
pub use backups::{backup_id, bucket as backup_bucket};
pub use drains::DrainInfo;
pub use error::PlatformError;
pub use one_off::OneOff;
pub(crate) use one_off::no_status;
pub use schedules::TICK as BACKUP_SCHEDULE_TICK;

use crate::config::ServerConfig;
use crate::runtime::Runtime;

/// A result of the platform service.
pub type PlatformResult<T> = Result<T, PlatformError>;

/// The platform service of one server: cheap to clone, shared by every request.
#[derive(Debug, Clone)]
pub struct Platform {
    /// The attached store.
    pub store: Store,
    /// The processes on this host.
    pub runtime: Arc<Runtime>,
    /// The server's configuration.
    pub config: Arc<ServerConfig>,
    /// Becomes true when the server starts shutting down.
    pub shutting_down: watch::Receiver<bool>,
    /// The S3-compatible bucket add-on backups go to (`DOZEN_BACKUP_S3_URL`), if any.
    pub backup_bucket: Option<Arc<dozen_addons::s3::Bucket>>,
}

impl Platform {
    /// The service over a store and the host's processes.
    pub fn new(
        store: Store,
        runtime: Arc<Runtime>,
        config: Arc<ServerConfig>,
        shutting_down: watch::Receiver<bool>,
    ) -> Platform {
        // A bad DOZEN_BACKUP_S3_* stops the server's start (`serve`) before it gets here.
        let backup_bucket = backups::bucket(&config).ok().flatten().map(Arc::new);
        Platform {
            store,
            runtime,
            config,
            shutting_down,
            backup_bucket,
        }
    }

    /// Run `op` on `app` in a task of its own, holding the app's lock, and wait for its
    /// result. Dropping the returned future (the client went away) does not stop the task.
    pub async fn locked<T, F, Fut>(&self, app: &str, op: F) -> PlatformResult<T>
    where
        T: Send + 'static,
        F: FnOnce(Platform) -> Fut + Send + 'static,
        Fut: Future<Output = PlatformResult<T>> + Send + 'static,
    {
        let p = self.clone();
        let app = app.to_string();
        let what = format!("a change of {app}");
        // The task acts for whoever asked (its releases record them).
        tokio::spawn(dozen_store::actor::inherit(async move {
            let _op = p.runtime.lock_app(&app).await;
            op(p).await
        }))
        .await
        .map_err(|e| PlatformError::internal(what, e))?
    }

    /// Refuse new work while the server shuts down.
    pub fn check_not_shutting_down(&self) -> PlatformResult<()> {
        if *self.shutting_down.borrow() {
            return Err(PlatformError::ShuttingDown);
        }
        Ok(())
    }

    /// The app's live release, or a clear error when nothing is deployed yet.
    pub async fn live_release(&self, app: &str) -> PlatformResult<Release> {
        self.store.current_release(app).await?.ok_or_else(|| {
            PlatformError::Invalid(format!("{app} has no release yet: deploy first"))
        })
    }
}

/// `vN` or `N` as a release version.
pub fn parse_version(v: &str) -> PlatformResult<i64> {
    v.trim_start_matches('v').parse().map_err(|_| {
        PlatformError::Invalid(format!("release `{v}`: write a release as vN, e.g. v3"))
    })
}
