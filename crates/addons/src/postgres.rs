//! PostgreSQL add-ons: a login role and a database it owns, `CONNECT` (and `TEMP`) revoked
//! from `PUBLIC`, so no other add-on's role can connect to it.
//!
//! `CREATE DATABASE` cannot run in a transaction, so each step that fails undoes the ones
//! before it (`DROP DATABASE … WITH (FORCE)`, `DROP ROLE`). The admin connection needs
//! `CREATEROLE` and `CREATEDB` (a superuser has both).

use crate::steps::{self, Step};
use crate::{AddonError, AdminUrl, Service};

const SERVICE: Service = Service::Postgresql;

/// `"name"`: the names are checked to be `[a-z0-9_-]`, so quoting is enough.
fn ident(name: &str) -> String {
    format!("\"{name}\"")
}

fn drop_database(role: &str) -> (&'static str, String) {
    (
        "dropping the database",
        format!("DROP DATABASE IF EXISTS {role} WITH (FORCE)"),
    )
}

fn drop_role(role: &str) -> (&'static str, String) {
    ("dropping the role", format!("DROP ROLE IF EXISTS {role}"))
}

pub(crate) async fn provision(
    admin: &AdminUrl,
    name: &str,
    password: &str,
) -> Result<(), AddonError> {
    let role = ident(name);
    // A failure removes the role, and the database once it is made (never one that existed
    // before: a name taken on the server fails the step that makes it).
    let steps = [
        // INHERIT (the default) matters: the owner of a database reaches its `public` schema
        // through the implicit pg_database_owner role, which a NOINHERIT role cannot use.
        Step::makes(
            "creating the role",
            format!(
                "CREATE ROLE {role} LOGIN PASSWORD '{password}' NOSUPERUSER NOCREATEDB NOCREATEROLE"
            ),
            drop_role(&role),
        ),
        // An admin that is not a superuser must be a member of a role to make it an owner.
        Step::changes(
            "letting the admin hand the database over",
            format!("GRANT {role} TO CURRENT_USER"),
        ),
        Step::makes(
            "creating the database",
            format!("CREATE DATABASE {role} OWNER {role}"),
            drop_database(&role),
        ),
        Step::changes(
            "revoking CONNECT from PUBLIC",
            format!("REVOKE ALL ON DATABASE {role} FROM PUBLIC"),
        ),
        Step::changes(
            "granting CONNECT to the role",
            format!("GRANT CONNECT, TEMPORARY ON DATABASE {role} TO {role}"),
        ),
    ];
    steps::on_sql_server(SERVICE, admin, &steps).await
}

pub(crate) async fn set_password(
    admin: &AdminUrl,
    name: &str,
    password: &str,
) -> Result<(), AddonError> {
    let sql = format!("ALTER ROLE {} PASSWORD '{password}'", ident(name));
    let steps = [Step::changes("setting the role's password", sql)];
    steps::on_sql_server(SERVICE, admin, &steps).await
}

pub(crate) async fn deprovision(admin: &AdminUrl, name: &str) -> Result<(), AddonError> {
    let role = ident(name);
    let steps =
        [drop_database(&role), drop_role(&role)].map(|(what, sql)| Step::changes(what, sql));
    steps::on_sql_server(SERVICE, admin, &steps).await
}
