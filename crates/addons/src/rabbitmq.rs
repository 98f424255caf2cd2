//! RabbitMQ add-ons: a vhost and a user with configure, write and read permissions on it alone,
//! made with `rabbitmqctl` on the server's host.
//!
//! Why `rabbitmqctl` and not the management API: the management plugin is an optional part of
//! a RabbitMQ server (it is off on stock installs, and on this project's CI machine), and
//! enabling it changes the operator's server; `rabbitmqctl` ships with every RabbitMQ and talks
//! to the node over Erlang distribution, so dozen must run on the RabbitMQ host (or have its
//! Erlang cookie). Passwords go to `rabbitmqctl` on stdin, never on its command line, where
//! every user of the host could read them in `/proc`.
//!
//! `DOZEN_ADDON_RABBITMQ_URL` (`amqp://guest:guest@127.0.0.1:5672`) says where apps connect;
//! a `node` query parameter (`?node=rabbit@host`) picks the node `rabbitmqctl` manages.

use std::ffi::OsStr;

use crate::steps::{self, Runner, Step};
use crate::{AddonError, AdminUrl, Service, target, timed, tool};

const SERVICE: Service = Service::Rabbitmq;
const TOOL: &str = "rabbitmqctl";

fn node(admin: &AdminUrl) -> Result<Option<String>, AddonError> {
    let u = target::parse(SERVICE, admin)?;
    if u.scheme() != "amqp" && u.scheme() != "amqps" {
        return Err(target::bad(SERVICE, "use an amqp:// URL"));
    }
    Ok(u.query_pairs()
        .find(|(k, _)| k == "node")
        .map(|(_, v)| v.into_owned()))
}

/// Run `rabbitmqctl ARGS` with `stdin` as its input.
async fn ctl(
    admin: &AdminUrl,
    step: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<(), AddonError> {
    let node = node(admin)?;
    let mut all: Vec<&OsStr> = Vec::new();
    if let Some(node) = &node {
        all.push(OsStr::new("-n"));
        all.push(OsStr::new(node));
    }
    all.push(OsStr::new("-q"));
    all.extend(args.iter().map(OsStr::new));
    timed(SERVICE, admin, step, async {
        let input = stdin.map_or(tool::Input::Nothing, tool::Input::Text);
        let out = tool::run(TOOL, TOOL, &all, &[], input).await?;
        if out.success() {
            return Ok(());
        }
        if out.code == Some(127) {
            return Err(AddonError::Tool {
                tool: TOOL,
                message: "not found: RabbitMQ add-ons need rabbitmqctl on the dozen server's host"
                    .into(),
            });
        }
        Err(AddonError::server(
            SERVICE,
            admin,
            step,
            format!("{TOOL}: {}", out.message()),
        ))
    })
    .await
}

/// A `rabbitmqctl` command: its arguments and what it reads on stdin.
struct Ctl {
    args: Vec<String>,
    stdin: Option<String>,
}

fn ctl_cmd(args: &[&str], stdin: Option<&str>) -> Ctl {
    Ctl {
        args: args.iter().map(|a| (*a).to_string()).collect(),
        stdin: stdin.map(str::to_owned),
    }
}

/// `rabbitmqctl` against the admin URL's node.
struct Rabbit<'a>(&'a AdminUrl);

impl Runner<Ctl> for Rabbit<'_> {
    async fn run(&mut self, what: &str, cmd: &Ctl) -> Result<(), AddonError> {
        let args: Vec<&str> = cmd.args.iter().map(String::as_str).collect();
        ctl(self.0, what, &args, cmd.stdin.as_deref()).await
    }
}

pub(crate) async fn provision(
    admin: &AdminUrl,
    name: &str,
    password: &str,
) -> Result<(), AddonError> {
    // A failure removes the vhost, and the user once it is made (never one that existed
    // before: a name taken fails the step that makes it).
    let steps = [
        Step::makes(
            "creating the vhost",
            ctl_cmd(&["add_vhost", name], None),
            ("deleting the vhost", ctl_cmd(&["delete_vhost", name], None)),
        ),
        Step::makes(
            "creating the user",
            ctl_cmd(&["add_user", name], Some(password)),
            ("deleting the user", ctl_cmd(&["delete_user", name], None)),
        ),
        Step::changes(
            "granting the user its vhost",
            ctl_cmd(
                &["set_permissions", "-p", name, name, ".*", ".*", ".*"],
                None,
            ),
        ),
    ];
    steps::run_all(&mut Rabbit(admin), &steps).await?;
    Ok(())
}

/// Remove the user and the vhost; both tolerate what is already gone, and the vhost is
/// removed even when removing the user failed.
async fn remove(admin: &AdminUrl, name: &str) -> Result<(), AddonError> {
    let user = ctl(admin, "deleting the user", &["delete_user", name], None).await;
    let vhost = ctl(admin, "deleting the vhost", &["delete_vhost", name], None).await;
    match (user, vhost) {
        (_, Err(e)) if !gone(&e) => Err(e),
        (Err(e), _) if !gone(&e) => Err(e),
        _ => Ok(()),
    }
}

fn gone(e: &AddonError) -> bool {
    let text = e.to_string();
    text.contains("no_such_user")
        || text.contains("no_such_vhost")
        || text.contains("does not exist")
}

pub(crate) async fn set_password(
    admin: &AdminUrl,
    name: &str,
    password: &str,
) -> Result<(), AddonError> {
    ctl(
        admin,
        "setting the user's password",
        &["change_password", name],
        Some(password),
    )
    .await?;
    Ok(())
}

pub(crate) async fn deprovision(admin: &AdminUrl, name: &str) -> Result<(), AddonError> {
    remove(admin, name).await
}
