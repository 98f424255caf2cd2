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

use crate::{AddonError, AdminUrl, Service, password, target, timed, tool};

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
        let out = tool::run(TOOL, TOOL, &all, &[], stdin).await?;
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

pub(crate) async fn provision(
    admin: &AdminUrl,
    name: &str,
    password: &str,
) -> Result<String, AddonError> {
    debug_assert!(password::is_safe(password));
    let url = target::app_url(SERVICE, admin, name, password, name)?;
    ctl(admin, "creating the vhost", &["add_vhost", name], None).await?;
    // From here on a failure removes the vhost made above, and the user once it is made
    // (never one that existed before: a name taken fails the step that makes it).
    if let Err(e) = ctl(
        admin,
        "creating the user",
        &["add_user", name],
        Some(password),
    )
    .await
    {
        let cleanup = remove(admin, name, false).await;
        return Err(e.and_cleanup(cleanup));
    }
    let grant = ["set_permissions", "-p", name, name, ".*", ".*", ".*"];
    if let Err(e) = ctl(admin, "granting the user its vhost", &grant, None).await {
        let cleanup = remove(admin, name, true).await;
        return Err(e.and_cleanup(cleanup));
    }
    Ok(url)
}

async fn remove(admin: &AdminUrl, name: &str, user: bool) -> Result<(), AddonError> {
    // Both tolerate what is already gone, and the vhost is removed even when removing the
    // user failed.
    let user = if user {
        ctl(admin, "deleting the user", &["delete_user", name], None).await
    } else {
        Ok(())
    };
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
) -> Result<String, AddonError> {
    if !password::is_safe(password) {
        return Err(target::bad(
            SERVICE,
            "the add-on's password is not one dozen made",
        ));
    }
    let url = target::app_url(SERVICE, admin, name, password, name)?;
    ctl(
        admin,
        "setting the user's password",
        &["change_password", name],
        Some(password),
    )
    .await?;
    Ok(url)
}

pub(crate) async fn deprovision(admin: &AdminUrl, name: &str) -> Result<(), AddonError> {
    remove(admin, name, true).await
}
