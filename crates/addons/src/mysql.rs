//! MySQL and MariaDB add-ons: a database and a user (`'name'@'%'`) with every privilege on that
//! database and none elsewhere. Each step that fails undoes the ones before it.

use crate::steps::{self, SqlAdmin, Step};
use crate::{AddonError, AdminUrl, Service, password, target};

const SERVICE: Service = Service::Mysql;

async fn connect(admin: &AdminUrl) -> Result<SqlAdmin<'_>, AddonError> {
    SqlAdmin::connect(SERVICE, admin).await
}

fn drop_database(name: &str) -> (&'static str, String) {
    (
        "dropping the database",
        format!("DROP DATABASE IF EXISTS `{name}`"),
    )
}

fn drop_user(name: &str) -> (&'static str, String) {
    (
        "dropping the user",
        format!("DROP USER IF EXISTS '{name}'@'%'"),
    )
}

pub(crate) async fn provision(
    admin: &AdminUrl,
    name: &str,
    password: &str,
) -> Result<String, AddonError> {
    debug_assert!(password::is_safe(password));
    let url = target::app_url(SERVICE, admin, name, password, name)?;
    // A failure removes the database, and the user once it is made (never one that existed
    // before: a name taken fails the step that makes it).
    let steps = [
        Step::makes(
            "creating the database",
            format!("CREATE DATABASE `{name}`"),
            drop_database(name),
        ),
        Step::makes(
            "creating the user",
            format!("CREATE USER '{name}'@'%' IDENTIFIED BY '{password}'"),
            drop_user(name),
        ),
        Step::changes(
            "granting the user its database",
            format!("GRANT ALL PRIVILEGES ON `{name}`.* TO '{name}'@'%'"),
        ),
    ];
    let mut conn = connect(admin).await?;
    steps::run_all(&mut conn, &steps).await?;
    conn.close().await;
    Ok(url)
}

pub(crate) async fn set_password(
    admin: &AdminUrl,
    name: &str,
    password: &str,
) -> Result<String, AddonError> {
    let url = target::app_url(SERVICE, admin, name, password, name)?;
    let mut conn = connect(admin).await?;
    conn.exec(
        "setting the user's password",
        &format!("ALTER USER '{name}'@'%' IDENTIFIED BY '{password}'"),
    )
    .await?;
    conn.close().await;
    Ok(url)
}

pub(crate) async fn deprovision(admin: &AdminUrl, name: &str) -> Result<(), AddonError> {
    let mut conn = connect(admin).await?;
    for (what, sql) in [drop_user(name), drop_database(name)] {
        conn.exec(what, &sql).await?;
    }
    conn.close().await;
    Ok(())
}
