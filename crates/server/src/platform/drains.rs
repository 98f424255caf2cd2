//! Log drains of an app: add, list with their numbers, remove. A drain's URL may carry a
//! password: no message here contains the URL but with the password hidden.

use dozen_logs::EventKind;
use dozen_logs::drains::{DrainStats, DrainUrl};
use dozen_store::DrainRecord;

use super::{Platform, PlatformError, PlatformResult};

/// A drain and how its delivery goes (`None`: it is not running on this server).
#[derive(Debug, Clone)]
pub struct DrainInfo {
    /// The stored drain (its URL with the password).
    pub record: DrainRecord,
    /// Its numbers.
    pub stats: Option<DrainStats>,
}

impl DrainInfo {
    /// The URL with its password hidden.
    pub fn shown_url(&self) -> String {
        DrainUrl::parse(&self.record.url)
            .map(|u| u.redacted())
            .unwrap_or_else(|_| "(unreadable URL)".into())
    }
}

impl Platform {
    /// The app's drains, oldest first.
    pub async fn drains(&self, app: &str) -> PlatformResult<Vec<DrainInfo>> {
        let records = self.store.drains(app).await?;
        let mut stats = self.runtime.drains.stats(app);
        Ok(records
            .into_iter()
            .map(|record| DrainInfo {
                stats: stats.remove(&record.id),
                record,
            })
            .collect())
    }

    /// Send the app's log stream to `url` from now on.
    pub async fn add_drain(&self, app: &str, url: &str) -> PlatformResult<DrainInfo> {
        let parsed = DrainUrl::parse(url)
            .map_err(|e| PlatformError::Invalid(format!("invalid url: {}", why(&e))))?;
        let (name, url) = (app.to_string(), url.trim().to_string());
        self.locked(app, move |p| async move {
            let record = p.store.add_drain(&name, &url).await?;
            if let Err(e) = p.runtime.drains.start(&record) {
                // Not half-added: the store forgets it again.
                let _ = p.store.remove_drain(&name, &record.id).await;
                return Err(PlatformError::internal(
                    format!("starting drain {}", record.id),
                    e,
                ));
            }
            p.runtime
                .event(
                    &name,
                    EventKind::Info,
                    format!("drain {} added: {}", record.id, parsed.redacted()),
                )
                .await;
            let stats = p.runtime.drains.stats(&name).remove(&record.id);
            Ok(DrainInfo { record, stats })
        })
        .await
    }

    /// Stop sending to drain `id` and remove what is queued for it.
    pub async fn remove_drain(&self, app: &str, id: &str) -> PlatformResult<DrainInfo> {
        let (name, id) = (app.to_string(), id.to_string());
        self.locked(app, move |p| async move {
            let record = p.store.remove_drain(&name, &id).await?;
            let stats = p.runtime.drains.stats(&name).remove(&id);
            p.runtime.drains.remove(&name, &id);
            p.runtime
                .event(&name, EventKind::Info, format!("drain {id} removed"))
                .await;
            Ok(DrainInfo { record, stats })
        })
        .await
    }
}

/// What is wrong with a drain URL, without the URL.
fn why(e: &dozen_logs::drains::DrainError) -> String {
    match e {
        dozen_logs::drains::DrainError::Url(why) => why.clone(),
        other => other.to_string(),
    }
}
