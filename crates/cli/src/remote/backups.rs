//! `dozen pg:backups*` and `dozen mysql:backups*`: backups of an app's PostgreSQL and MySQL
//! add-ons, taken by the server now or daily, listed, and restored into the same add-on or
//! another. The two families are the same commands on add-ons of different services.

use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use dozen_api::{Addon, AddonBackup, BackupSchedule, RestoreBackup, ScheduleBackups};
use reqwest::Method;

use super::addons::addon_path;
use super::{AppArgs, path, print, table};
use crate::client::Client;

/// Which add-on of the app.
#[derive(Debug, Args)]
pub struct Which {
    /// Which add-on, when the app owns more than one of the service.
    #[arg(long, value_name = "ADDON")]
    addon: Option<String>,
    #[command(flatten)]
    args: AppArgs,
}

/// A restore.
#[derive(Debug, Args)]
pub struct Restore {
    /// The backup (b001).
    backup: String,
    /// Restore into this add-on of the app (same service) instead of the one backed up.
    #[arg(long, value_name = "ADDON")]
    into: Option<String>,
    /// Repeat the app's name to confirm (the data of the add-on restored into is replaced).
    #[arg(long)]
    confirm: Option<String>,
    #[command(flatten)]
    which: Which,
}

/// A daily schedule.
#[derive(Debug, Args)]
pub struct Schedule {
    /// The time of day, in UTC, as HH:MM (02:00).
    #[arg(long, value_name = "HH:MM")]
    at: String,
    /// How many backups to keep: after each scheduled one, the oldest beyond are deleted.
    #[arg(long, default_value_t = dozen_api::DEFAULT_KEEP)]
    keep: i64,
    #[command(flatten)]
    which: Which,
}

/// The backup commands.
#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// List the backups of the app's PostgreSQL add-on.
    #[command(name = "pg:backups")]
    PgBackups(Which),
    /// Back up the app's PostgreSQL add-on now (pg_dump, custom format).
    #[command(name = "pg:backups:capture")]
    PgBackupsCapture(Which),
    /// Restore a backup (b001) into the add-on it was taken of, or --into another.
    #[command(name = "pg:backups:restore")]
    PgBackupsRestore(Restore),
    /// Back the app's PostgreSQL add-on up daily --at HH:MM (UTC), keeping the newest --keep.
    #[command(name = "pg:backups:schedule")]
    PgBackupsSchedule(Schedule),
    /// Stop the daily backups of the app's PostgreSQL add-on (its backups stay).
    #[command(name = "pg:backups:unschedule")]
    PgBackupsUnschedule(Which),
    /// List the daily backups of the app's add-ons.
    #[command(name = "pg:backups:schedules")]
    PgBackupsSchedules(AppArgs),
    /// List the backups of the app's MySQL add-on.
    #[command(name = "mysql:backups")]
    MysqlBackups(Which),
    /// Back up the app's MySQL add-on now (mysqldump).
    #[command(name = "mysql:backups:capture")]
    MysqlBackupsCapture(Which),
    /// Restore a backup (b001) into the add-on it was taken of, or --into another.
    #[command(name = "mysql:backups:restore")]
    MysqlBackupsRestore(Restore),
    /// Back the app's MySQL add-on up daily --at HH:MM (UTC), keeping the newest --keep.
    #[command(name = "mysql:backups:schedule")]
    MysqlBackupsSchedule(Schedule),
    /// Stop the daily backups of the app's MySQL add-on (its backups stay).
    #[command(name = "mysql:backups:unschedule")]
    MysqlBackupsUnschedule(Which),
    /// List the daily backups of the app's add-ons.
    #[command(name = "mysql:backups:schedules")]
    MysqlBackupsSchedules(AppArgs),
}

/// What a backup command does, whichever the service.
enum Action {
    List(Which),
    Capture(Which),
    Restore(Restore),
    Schedule(Schedule),
    Unschedule(Which),
    Schedules(AppArgs),
}

/// The family's name in hints (`pg`), and the service its add-ons are of.
struct Family {
    prefix: &'static str,
    service: &'static str,
}

const PG: Family = Family {
    prefix: "pg",
    service: "postgresql",
};
const MYSQL: Family = Family {
    prefix: "mysql",
    service: "mysql",
};

impl BackupCommand {
    fn split(self) -> (Family, Action) {
        use BackupCommand as C;
        match self {
            C::PgBackups(w) => (PG, Action::List(w)),
            C::PgBackupsCapture(w) => (PG, Action::Capture(w)),
            C::PgBackupsRestore(r) => (PG, Action::Restore(r)),
            C::PgBackupsSchedule(s) => (PG, Action::Schedule(s)),
            C::PgBackupsUnschedule(w) => (PG, Action::Unschedule(w)),
            C::PgBackupsSchedules(a) => (PG, Action::Schedules(a)),
            C::MysqlBackups(w) => (MYSQL, Action::List(w)),
            C::MysqlBackupsCapture(w) => (MYSQL, Action::Capture(w)),
            C::MysqlBackupsRestore(r) => (MYSQL, Action::Restore(r)),
            C::MysqlBackupsSchedule(s) => (MYSQL, Action::Schedule(s)),
            C::MysqlBackupsUnschedule(w) => (MYSQL, Action::Unschedule(w)),
            C::MysqlBackupsSchedules(a) => (MYSQL, Action::Schedules(a)),
        }
    }
}

impl Family {
    /// The app's own add-on of this family's service (`--addon` picks one when it has several).
    fn addon<'a>(&self, client: &Client, which: &'a Which) -> anyhow::Result<(&'a str, String)> {
        let app = which.args.app()?;
        if let Some(a) = &which.addon {
            return Ok((app, a.clone()));
        }
        let service = self.service;
        let list: Vec<Addon> = client.get(&path(app, "/addons"))?;
        let mine: Vec<&Addon> = list
            .iter()
            .filter(|a| a.service == service && a.app == app)
            .collect();
        match mine.as_slice() {
            [one] => Ok((app, one.name.clone())),
            [] => bail!("{app} has no {service} add-on: dozen addons:create {service} -a {app}"),
            more => bail!(
                "{app} has {} {service} add-ons: pick one with --addon ({})",
                more.len(),
                more.iter()
                    .map(|a| a.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

fn backup_rows(list: &[AddonBackup]) {
    let mut rows = vec![vec![
        "ID".into(),
        "ADD-ON".into(),
        "SIZE".into(),
        "TAKEN".into(),
        "KEPT IN".into(),
    ]];
    for b in list {
        rows.push(vec![
            b.id.clone(),
            b.addon.clone(),
            format!("{} bytes", b.size),
            b.created_at.clone(),
            b.location
                .clone()
                .unwrap_or_else(|| "data directory".into()),
        ]);
    }
    table(&rows);
}

fn schedule_line(s: &BackupSchedule) -> String {
    format!(
        "{} daily at {} UTC, keeping {}; next at {}",
        s.addon, s.at, s.keep, s.next_run
    )
}

/// Run a backup command.
pub fn run(command: BackupCommand) -> anyhow::Result<ExitCode> {
    let client = Client::from_env()?;
    let (family, action) = command.split();
    let prefix = family.prefix;
    match action {
        Action::List(which) => {
            let (app, name) = family.addon(&client, &which)?;
            let v: Vec<AddonBackup> = client.get(&addon_path(app, &name, "/backups"))?;
            print(which.args.json, &v, |v| {
                if v.is_empty() {
                    println!("{name} has no backups: dozen {prefix}:backups:capture -a {app}");
                } else {
                    backup_rows(v);
                }
            });
        }
        Action::Capture(which) => {
            let (app, name) = family.addon(&client, &which)?;
            let v: AddonBackup = client.call(
                Method::POST,
                &addon_path(app, &name, "/backups"),
                &serde_json::json!({}),
            )?;
            print(which.args.json, &v, |v| {
                println!("captured {} of {name} ({} bytes)", v.id, v.size)
            });
        }
        Action::Restore(r) => {
            let app = r.which.args.app()?;
            let backup = &r.backup;
            if r.confirm.as_deref() != Some(app) {
                let whose = r.into.as_deref().unwrap_or("the add-on backed up");
                bail!(
                    "restoring {backup} replaces the data of {whose} ({app}); run again with --confirm {app}"
                );
            }
            let (app, name) = family.addon(&client, &r.which)?;
            let body = RestoreBackup {
                into: r.into.clone(),
            };
            let v: AddonBackup = client
                .call(
                    Method::POST,
                    &addon_path(app, &name, &format!("/backups/{backup}/restore")),
                    &body,
                )
                .context("restoring")?;
            let into = r.into.as_deref().unwrap_or(&name);
            print(r.which.args.json, &v, |v| {
                println!("restored {into} from {} of {name}", v.id)
            });
        }
        Action::Schedule(s) => {
            let (app, name) = family.addon(&client, &s.which)?;
            let body = ScheduleBackups {
                at: s.at.clone(),
                keep: s.keep,
            };
            let v: BackupSchedule = client.call(
                Method::PUT,
                &addon_path(app, &name, "/backup-schedule"),
                &body,
            )?;
            print(s.which.args.json, &v, |v| {
                println!("scheduled: {}", schedule_line(v))
            });
        }
        Action::Unschedule(which) => {
            let (app, name) = family.addon(&client, &which)?;
            let v: BackupSchedule = client.delete(&addon_path(app, &name, "/backup-schedule"))?;
            print(which.args.json, &v, |v| {
                println!(
                    "stopped the daily backups of {} (its backups stay)",
                    v.addon
                )
            });
        }
        Action::Schedules(args) => {
            let app = args.app()?;
            let v: Vec<BackupSchedule> = client.get(&path(app, "/backup-schedules"))?;
            print(args.json, &v, |v| {
                if v.is_empty() {
                    println!(
                        "{app} has no daily backups: dozen {prefix}:backups:schedule --at 02:00 -a {app}"
                    );
                }
                for s in v {
                    println!("{}", schedule_line(s));
                }
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}
