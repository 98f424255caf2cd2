//! `dozen drains*`: where the server sends an app's log stream (syslog over TCP or TLS, HTTPS
//! endpoints). A drain URL may carry a password: what is printed comes from the server, which
//! shows it as `***`.

use std::process::ExitCode;

use clap::Subcommand;
use dozen_api::{CreateDrain, Drain};
use reqwest::Method;

use super::{AppArgs, path, print, table};
use crate::client::Client;

/// The drain commands.
#[derive(Debug, Subcommand)]
pub enum DrainCommand {
    /// List the app's log drains: id, URL (password hidden), state, and how many messages were
    /// delivered, are queued and were dropped.
    Drains(AppArgs),
    /// Send the app's log stream to a syslog receiver (syslog://HOST:PORT over TCP,
    /// syslog+tls://HOST:PORT over TLS) or an HTTPS endpoint (https://[USER:PASSWORD@]HOST/PATH).
    #[command(name = "drains:add")]
    DrainsAdd {
        /// The drain's URL.
        url: String,
        #[command(flatten)]
        args: AppArgs,
    },
    /// Stop sending to a drain; what is queued for it is discarded.
    #[command(name = "drains:remove")]
    DrainsRemove {
        /// The drain's id (drn_...), as `dozen drains` shows it.
        id: String,
        #[command(flatten)]
        args: AppArgs,
    },
}

/// Run a drain command.
pub fn run(command: DrainCommand) -> anyhow::Result<ExitCode> {
    let client = Client::from_env()?;
    match command {
        DrainCommand::Drains(args) => {
            let app = args.app()?;
            let v: Vec<Drain> = client.get(&path(app, "/drains"))?;
            print(args.json, &v, |v| {
                if v.is_empty() {
                    println!("{app} has no drains");
                    return;
                }
                let mut rows = vec![vec![
                    "ID".into(),
                    "URL".into(),
                    "STATE".into(),
                    "DELIVERED".into(),
                    "QUEUED".into(),
                    "DROPPED".into(),
                ]];
                for d in v {
                    let state = match &d.error {
                        Some(why) => format!("{} ({why})", d.state),
                        None => d.state.clone(),
                    };
                    rows.push(vec![
                        d.id.clone(),
                        d.url.clone(),
                        state,
                        d.delivered.to_string(),
                        d.queued.to_string(),
                        d.dropped.to_string(),
                    ]);
                }
                table(&rows);
            });
        }
        DrainCommand::DrainsAdd { url, args } => {
            let app = args.app()?;
            let d: Drain =
                client.call(Method::POST, &path(app, "/drains"), &CreateDrain { url })?;
            print(args.json, &d, |d| {
                println!("added drain {} to {app}: {}", d.id, d.url);
            });
        }
        DrainCommand::DrainsRemove { id, args } => {
            let app = args.app()?;
            if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                anyhow::bail!("drain id `{id}`: write it as `dozen drains` shows it (drn_...)");
            }
            let d: Drain = client.delete(&path(app, &format!("/drains/{id}")))?;
            print(args.json, &d, |d| {
                println!("removed drain {} ({}) from {app}", d.id, d.url);
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}
