//! MySQL and MariaDB add-ons: a database and a user (`'name'@'%'`) with every privilege on that
//! database and none elsewhere. Each step that fails undoes the ones before it.

use crate::steps::{self, Step};
use crate::{AddonError, AdminUrl, Service};

const SERVICE: Service = Service::Mysql;

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
) -> Result<(), AddonError> {
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
    steps::on_sql_server(SERVICE, admin, &steps).await
}

pub(crate) async fn set_password(
    admin: &AdminUrl,
    name: &str,
    password: &str,
) -> Result<(), AddonError> {
    let sql = format!("ALTER USER '{name}'@'%' IDENTIFIED BY '{password}'");
    let steps = [Step::changes("setting the user's password", sql)];
    steps::on_sql_server(SERVICE, admin, &steps).await
}

pub(crate) async fn deprovision(admin: &AdminUrl, name: &str) -> Result<(), AddonError> {
    let steps = [drop_user(name), drop_database(name)].map(|(what, sql)| Step::changes(what, sql));
    steps::on_sql_server(SERVICE, admin, &steps).await
}
