//! PostgreSQL add-ons: a login role and a database it owns, `CONNECT` (and `TEMP`) revoked
//! from `PUBLIC`, so no other add-on's role can connect to it.
//!
//! `CREATE DATABASE` cannot run in a transaction, so each step that fails undoes the ones
//! before it (`DROP DATABASE … WITH (FORCE)`, `DROP ROLE`). The admin connection needs
//! `CREATEROLE` and `CREATEDB` (a superuser has both).

use sqlx::postgres::PgConnection;
use sqlx::{Connection, Executor};

use crate::{AddonError, AdminUrl, Service, password, target, timed};

const SERVICE: Service = Service::Postgresql;

/// `"name"`: the names are checked to be `[a-z0-9_-]`, so quoting is enough.
fn ident(name: &str) -> String {
    format!("\"{name}\"")
}

async fn connect(admin: &AdminUrl) -> Result<PgConnection, AddonError> {
    timed(SERVICE, admin, "connecting as admin", async {
        PgConnection::connect(admin.expose())
            .await
            .map_err(|e| AddonError::server(SERVICE, admin, "connecting as admin", e))
    })
    .await
}

async fn run(
    conn: &mut PgConnection,
    admin: &AdminUrl,
    step: &str,
    sql: &str,
) -> Result<(), AddonError> {
    // Passed as a plain string: the simple query protocol, no bound values (DDL takes none).
    timed(SERVICE, admin, step, async {
        conn.execute(sql)
            .await
            .map(|_| ())
            .map_err(|e| AddonError::server(SERVICE, admin, step, e))
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
    let mut conn = connect(admin).await?;
    let role = ident(name);
    // INHERIT (the default) matters: the owner of a database reaches its `public` schema
    // through the implicit pg_database_owner role, which a NOINHERIT role cannot use.
    run(
        &mut conn,
        admin,
        "creating the role",
        &format!(
            "CREATE ROLE {role} LOGIN PASSWORD '{password}' NOSUPERUSER NOCREATEDB NOCREATEROLE"
        ),
    )
    .await?;
    // From here on a failure removes the role made above, and the database once it is made
    // (never one that existed before: a name taken on the server fails the step that makes it).
    let mut made_db = false;
    let steps = [
        // An admin that is not a superuser must be a member of a role to make it an owner.
        (
            "letting the admin hand the database over",
            format!("GRANT {role} TO CURRENT_USER"),
            false,
        ),
        (
            "creating the database",
            format!("CREATE DATABASE {role} OWNER {role}"),
            true,
        ),
        (
            "revoking CONNECT from PUBLIC",
            format!("REVOKE ALL ON DATABASE {role} FROM PUBLIC"),
            false,
        ),
        (
            "granting CONNECT to the role",
            format!("GRANT CONNECT, TEMPORARY ON DATABASE {role} TO {role}"),
            false,
        ),
    ];
    for (step, sql, makes_db) in &steps {
        if let Err(e) = run(&mut conn, admin, step, sql).await {
            let cleanup = remove(&mut conn, admin, name, made_db).await;
            return Err(e.and_cleanup(cleanup));
        }
        made_db |= makes_db;
    }
    let _ = conn.close().await;
    Ok(url)
}

async fn remove(
    conn: &mut PgConnection,
    admin: &AdminUrl,
    name: &str,
    database: bool,
) -> Result<(), AddonError> {
    let role = ident(name);
    if database {
        run(
            conn,
            admin,
            "dropping the database",
            &format!("DROP DATABASE IF EXISTS {role} WITH (FORCE)"),
        )
        .await?;
    }
    run(
        conn,
        admin,
        "dropping the role",
        &format!("DROP ROLE IF EXISTS {role}"),
    )
    .await
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
    let mut conn = connect(admin).await?;
    run(
        &mut conn,
        admin,
        "setting the role's password",
        &format!("ALTER ROLE {} PASSWORD '{password}'", ident(name)),
    )
    .await?;
    let _ = conn.close().await;
    Ok(url)
}

pub(crate) async fn deprovision(admin: &AdminUrl, name: &str) -> Result<(), AddonError> {
    let mut conn = connect(admin).await?;
    remove(&mut conn, admin, name, true).await?;
    let _ = conn.close().await;
    Ok(())
}
