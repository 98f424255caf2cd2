//! `dozen addons*`: backing services provisioned by the server, attached to apps as config vars.
//! Their backups are in [`super::backups`].

use std::process::ExitCode;

use anyhow::bail;
use clap::Subcommand;
use dozen_api::{Addon, AddonRelease, AddonService, RotatedAddon};
use reqwest::Method;

use super::{AppArgs, path, print, require_app, table};
use crate::client::Client;

/// The add-on commands.
#[derive(Debug, Subcommand)]
pub enum AddonCommand {
    /// List the app's add-ons: name, service, plan, and the apps they are attached to as what.
    Addons(AppArgs),
    /// List the backing services this server can provision.
    #[command(name = "addons:services")]
    AddonsServices(AppArgs),
    /// Provision an add-on for the app and attach it (DATABASE_URL, REDIS_URL, ...): a new
    /// release.
    #[command(name = "addons:create")]
    AddonsCreate {
        /// postgresql, redis, mysql or rabbitmq.
        service: String,
        /// The attachment name: CACHE puts the URL in CACHE_URL.
        #[arg(long = "as", value_name = "NAME")]
        attach_as: Option<String>,
        #[command(flatten)]
        args: AppArgs,
    },
    /// Attach an existing add-on to another app as well: a new release of that app.
    #[command(name = "addons:attach")]
    AddonsAttach {
        /// The add-on (shop-postgresql-1).
        addon: String,
        /// The attachment name: DATABASE puts the URL in DATABASE_URL.
        #[arg(long = "as", value_name = "NAME")]
        attach_as: Option<String>,
        #[command(flatten)]
        args: AppArgs,
    },
    /// Detach an add-on from an app that does not own it: a new release without its var.
    #[command(name = "addons:detach")]
    AddonsDetach {
        /// The attachment (DATABASE or DATABASE_URL).
        attachment: String,
        #[command(flatten)]
        args: AppArgs,
    },
    /// Give an add-on a new password; every app attached to it gets a new release.
    #[command(name = "addons:rotate")]
    AddonsRotate {
        /// The add-on.
        addon: String,
        #[command(flatten)]
        args: AppArgs,
    },
    /// Remove an add-on and its data from its server; refused while another app uses it.
    #[command(name = "addons:destroy")]
    AddonsDestroy {
        /// The add-on.
        addon: String,
        /// Repeat the owning app's name to confirm.
        #[arg(long)]
        confirm: Option<String>,
        #[command(flatten)]
        args: AppArgs,
    },
    /// Print the app's add-on URLs as an env file (for `dozen start -e .env.addons`).
    #[command(name = "addons:env")]
    AddonsEnv(AppArgs),
}

/// The app that owns `addon`: `-a APP`, or the name's own prefix (`shop` of
/// `shop-postgresql-1`).
fn owner<'a>(addon: &'a str, args: &'a AppArgs) -> anyhow::Result<&'a str> {
    if let Some(app) = args.app.as_deref() {
        return Ok(app);
    }
    for service in ["postgresql", "redis", "mysql", "rabbitmq"] {
        if let Some((app, n)) = addon.rsplit_once(&format!("-{service}-")) {
            if !app.is_empty() && n.parse::<u64>().is_ok() {
                return Ok(app);
            }
        }
    }
    require_app(None)
}

pub(super) fn addon_path(app: &str, addon: &str, rest: &str) -> String {
    path(app, &format!("/addons/{addon}{rest}"))
}

/// The var `a` is attached to `app` as.
fn var_on<'a>(a: &'a Addon, app: &str) -> &'a str {
    a.attachments
        .iter()
        .find(|t| t.app == app)
        .map_or("?", |t| t.var.as_str())
}

fn attached_as(a: &Addon) -> String {
    a.attachments
        .iter()
        .map(|t| format!("{}:{}", t.app, t.var))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Run an add-on command.
pub fn run(command: AddonCommand) -> anyhow::Result<ExitCode> {
    let client = Client::from_env()?;
    match command {
        AddonCommand::Addons(args) => {
            let app = args.app()?;
            let v: Vec<Addon> = client.get(&path(app, "/addons"))?;
            print(args.json, &v, |v| {
                if v.is_empty() {
                    println!("{app} has no add-ons");
                    return;
                }
                let mut rows = vec![vec![
                    "ADD-ON".into(),
                    "SERVICE".into(),
                    "PLAN".into(),
                    "OWNER".into(),
                    "ATTACHED AS".into(),
                ]];
                for a in v {
                    rows.push(vec![
                        a.name.clone(),
                        a.service.clone(),
                        a.plan.clone(),
                        a.app.clone(),
                        attached_as(a),
                    ]);
                }
                table(&rows);
            });
        }
        AddonCommand::AddonsServices(args) => {
            let v: Vec<AddonService> = client.get("/v1/addon-services")?;
            print(args.json, &v, |v| {
                let mut rows = vec![vec![
                    "SERVICE".into(),
                    "AVAILABLE".into(),
                    "ATTACHED AS".into(),
                    "PLAN".into(),
                ]];
                for s in v {
                    let available = if s.available {
                        "yes".to_string()
                    } else {
                        format!("no ({} is not set)", s.env_var)
                    };
                    rows.push(vec![
                        s.name.clone(),
                        available,
                        format!("{}_URL", s.default_attachment),
                        s.plan.clone(),
                    ]);
                }
                table(&rows);
            });
        }
        AddonCommand::AddonsCreate {
            service,
            attach_as,
            args,
        } => {
            let app = args.app()?;
            let body = dozen_api::CreateAddon { service, attach_as };
            let v: AddonRelease = client.call(Method::POST, &path(app, "/addons"), &body)?;
            print(args.json, &v, |v| {
                println!(
                    "created {} ({}) for {app}, attached as {}: release v{}",
                    v.addon.name,
                    v.addon.service,
                    var_on(&v.addon, app),
                    v.release.version
                );
            });
        }
        AddonCommand::AddonsAttach {
            addon,
            attach_as,
            args,
        } => {
            let app = args.app()?;
            let body = dozen_api::AttachAddon {
                addon: addon.clone(),
                attach_as,
            };
            let v: AddonRelease = client.call(Method::POST, &path(app, "/attachments"), &body)?;
            print(args.json, &v, |v| {
                println!(
                    "attached {addon} to {app} as {}: release v{}",
                    var_on(&v.addon, app),
                    v.release.version
                );
            });
        }
        AddonCommand::AddonsDetach { attachment, args } => {
            let app = args.app()?;
            let v: AddonRelease =
                client.delete(&path(app, &format!("/attachments/{attachment}")))?;
            print(args.json, &v, |v| {
                println!(
                    "detached {} from {app}: release v{}",
                    v.addon.name, v.release.version
                );
            });
        }
        AddonCommand::AddonsRotate { addon, args } => {
            let app = owner(&addon, &args)?;
            let v: RotatedAddon = client.call(
                Method::POST,
                &addon_path(app, &addon, "/rotate"),
                &serde_json::json!({}),
            )?;
            print(args.json, &v, |v| {
                let released: Vec<String> = v
                    .releases
                    .iter()
                    .map(|r| format!("{} v{}", r.app, r.version))
                    .collect();
                println!(
                    "rotated the credentials of {addon}: {}",
                    released.join(", ")
                );
            });
        }
        AddonCommand::AddonsDestroy {
            addon,
            confirm,
            args,
        } => {
            let app = owner(&addon, &args)?;
            if confirm.as_deref() != Some(app) {
                bail!(
                    "destroying {addon} removes its data from its server; run again with --confirm {app}"
                );
            }
            let v: dozen_api::Destroyed = client.delete(&addon_path(app, &addon, ""))?;
            print(args.json, &v, |_| println!("destroyed {addon}"));
        }
        AddonCommand::AddonsEnv(args) => {
            let app = args.app()?;
            let list: Vec<Addon> = client.get(&path(app, "/addons"))?;
            let config: dozen_api::ConfigVars = client.get(&path(app, "/config"))?;
            let mut vars: Vec<&str> = list
                .iter()
                .flat_map(|a| a.attachments.iter())
                .filter(|t| t.app == app)
                .map(|t| t.var.as_str())
                .collect();
            vars.sort_unstable();
            for var in vars {
                if let Some(value) = config.get(var) {
                    // The env file format of `dozen start`: single quotes keep the value as is.
                    println!("{var}='{value}'");
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
