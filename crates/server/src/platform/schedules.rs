//! Daily backups of database add-ons (`pg:backups:schedule --at 02:00 --keep 7`), run by the
//! server itself.
//!
//! A schedule lives in the store with the time its next backup is due, so it survives a
//! restart of the server; a backup that fell due while the server was down is taken when it
//! starts (once, however many days were missed). [`Platform::run_backup_schedules`] looks for
//! due schedules every [`TICK`]: each due one captures a backup under its app's lock (an
//! event in the app's log), removes the oldest backups beyond the number to keep (events too),
//! and moves on to the next day's time. A capture that fails is an error event, and the
//! schedule still moves on: it tries again the next day.
//!
//! Times are UTC: `--at 02:00` is 02:00 UTC every day.

use std::time::Duration;

use dozen_addons::Service;
use dozen_logs::EventKind;
use dozen_store::BackupSchedule;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use super::backups::Capture;
use super::{Platform, PlatformError, PlatformResult};

/// How often the server looks for due schedules.
pub const TICK: Duration = Duration::from_secs(10);

/// The most backups a schedule may keep.
pub const MAX_KEEP: i64 = 1000;

/// `HH:MM` (also `H:MM`, `HH:MM UTC`) as hour and minute.
fn parse_at(at: &str) -> PlatformResult<(i8, i8)> {
    let bad = || {
        PlatformError::Invalid(format!(
            "--at `{}`: write a time of day in UTC as HH:MM, e.g. 02:00",
            at.chars().take(32).collect::<String>()
        ))
    };
    let t = at.trim();
    let t = t
        .strip_suffix("UTC")
        .or_else(|| t.strip_suffix('Z'))
        .unwrap_or(t)
        .trim();
    let (h, m) = t.split_once(':').ok_or_else(bad)?;
    let digits = |s: &str, max: i8| {
        (!s.is_empty() && s.len() <= 2 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<i8>().ok())
            .flatten()
            .filter(|n| *n <= max)
    };
    match (digits(h, 23), digits(m, 59)) {
        (Some(h), Some(m)) => Ok((h, m)),
        _ => Err(bad()),
    }
}

/// The first `hour:minute` UTC strictly after `now`.
fn next_after(now: Timestamp, (hour, minute): (i8, i8)) -> PlatformResult<Timestamp> {
    let failed = |e: jiff::Error| PlatformError::internal("computing the next backup time", e);
    let today = now
        .to_zoned(TimeZone::UTC)
        .date()
        .at(hour, minute, 0, 0)
        .to_zoned(TimeZone::UTC)
        .map_err(failed)?
        .timestamp();
    if today > now {
        Ok(today)
    } else {
        today
            .checked_add(SignedDuration::from_hours(24))
            .map_err(failed)
    }
}

impl Platform {
    /// Back the add-on up daily at `at` (UTC), keeping the newest `keep` backups.
    pub async fn schedule_backups(
        &self,
        app: &str,
        name: &str,
        at: &str,
        keep: i64,
    ) -> PlatformResult<BackupSchedule> {
        self.check_not_shutting_down()?;
        self.backed_up_addon(app, name).await?;
        if !(1..=MAX_KEEP).contains(&keep) {
            return Err(PlatformError::Invalid(format!(
                "--keep {keep}: keep from 1 to {MAX_KEEP} backups"
            )));
        }
        let (h, m) = parse_at(at)?;
        let next = next_after(Timestamp::now(), (h, m))?;
        let schedule = self
            .store
            .set_backup_schedule(name, &format!("{h:02}:{m:02}"), keep, &next.to_string())
            .await?;
        self.runtime
            .event(
                app,
                EventKind::Info,
                format!(
                    "backups of {name} scheduled daily at {} UTC, keeping {keep}",
                    schedule.at
                ),
            )
            .await;
        Ok(schedule)
    }

    /// Stop the add-on's daily backups (the backups taken stay).
    pub async fn unschedule_backups(
        &self,
        app: &str,
        name: &str,
    ) -> PlatformResult<BackupSchedule> {
        self.backed_up_addon(app, name).await?;
        let schedule = self.store.remove_backup_schedule(name).await?;
        self.runtime
            .event(
                app,
                EventKind::Info,
                format!("daily backups of {name} stopped"),
            )
            .await;
        Ok(schedule)
    }

    /// The schedules of the app's add-ons.
    pub async fn backup_schedules(&self, app: &str) -> PlatformResult<Vec<BackupSchedule>> {
        self.store.app(app).await?;
        Ok(self.store.backup_schedules(Some(app)).await?)
    }

    /// Look for due schedules every [`TICK`] until the server shuts down.
    pub async fn run_backup_schedules(self) {
        let mut down = self.shutting_down.clone();
        loop {
            if let Err(e) = self.run_due_backups(Timestamp::now()).await {
                eprintln!("dozen server: scheduled backups: {}", e.report());
            }
            tokio::select! {
                () = tokio::time::sleep(TICK) => {}
                _ = down.wait_for(|d| *d) => return,
            }
        }
    }

    /// Take the backups due at `now`, one after another.
    async fn run_due_backups(&self, now: Timestamp) -> PlatformResult<()> {
        for schedule in self.store.backup_schedules(None).await? {
            if self.check_not_shutting_down().is_err() {
                return Ok(());
            }
            let due = schedule
                .next_run
                .parse::<Timestamp>()
                .map_or(true, |t| t <= now);
            // One add-on's failure (its app's lock, the store) holds up none of the others.
            if due && let Err(e) = self.run_schedule(&schedule, now).await {
                eprintln!(
                    "dozen server: the scheduled backup of {}: {}",
                    schedule.addon,
                    e.report()
                );
            }
        }
        Ok(())
    }

    async fn run_schedule(&self, s: &BackupSchedule, now: Timestamp) -> PlatformResult<()> {
        let next = next_after(now, parse_at(&s.at)?)?;
        let service = Service::parse(&self.store.addon(&s.addon).await?.service)?;
        let schedule = s.clone();
        let taken = self
            .locked(&s.app, move |p| async move {
                let (app, addon) = (schedule.app.as_str(), schedule.addon.as_str());
                match p
                    .capture_locked(app, addon, service, Capture::Scheduled)
                    .await
                {
                    Ok(_) => {
                        for id in p.prune_backups(addon, service, schedule.keep).await? {
                            p.runtime
                                .event(
                                    app,
                                    EventKind::Info,
                                    format!(
                                        "backup {id} of {addon} deleted (its schedule keeps the newest {})",
                                        schedule.keep
                                    ),
                                )
                                .await;
                        }
                    }
                    Err(e) => {
                        p.runtime
                            .event(
                                app,
                                EventKind::Error,
                                format!(
                                    "scheduled backup of {addon} failed, next try at {} UTC tomorrow: {}",
                                    schedule.at,
                                    e.report()
                                ),
                            )
                            .await;
                    }
                }
                Ok(())
            })
            .await;
        // Moved on whatever the capture did: a failing one is tried again the next day, not
        // every tick.
        self.store
            .advance_backup_schedule(&s.addon, &s.next_run, &next.to_string())
            .await?;
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_of_day_are_read_as_utc_hours_and_minutes() {
        assert_eq!(parse_at("02:00").ok(), Some((2, 0)));
        assert_eq!(parse_at("2:05").ok(), Some((2, 5)));
        assert_eq!(parse_at("23:59 UTC").ok(), Some((23, 59)));
        for bad in [
            "24:00",
            "02:60",
            "0200",
            "2:5:1",
            "",
            "02:00 Europe/Paris",
            "-1:00",
        ] {
            let e = parse_at(bad).expect_err(bad).to_string();
            assert!(e.contains("HH:MM"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_next_run_is_the_first_such_time_after_now() {
        let now: Timestamp = "2026-12-02T14:30:00Z".parse().expect("ts");
        let at = |h, m| next_after(now, (h, m)).expect("next").to_string();
        assert_eq!(at(15, 0), "2026-12-02T15:00:00Z");
        assert_eq!(at(14, 30), "2026-12-03T14:30:00Z", "now itself is past");
        assert_eq!(at(2, 0), "2026-12-03T02:00:00Z");
    }
}
