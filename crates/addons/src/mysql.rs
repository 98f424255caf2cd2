//! MySQL and MariaDB add-ons: a database and a user (`'name'@'%'`) with every privilege on that
//! database and none elsewhere. Each step that fails undoes the ones before it.

use sqlx::mysql::MySqlConnection;
use sqlx::{Connection, Executor};

use crate::{AddonError, AdminUrl, Service, password, target, timed};

const SERVICE: Service = Service::Mysql;

async fn connect(admin: &AdminUrl) -> Result<MySqlConnection, AddonError> {
    timed(SERVICE, admin, "connecting as admin", async {
        MySqlConnection::connect(admin.expose())
            .await
            .map_err(|e| AddonError::server(SERVICE, admin, "connecting as admin", e))
    })
    .await
}

async fn run(
    conn: &mut MySqlConnection,
    admin: &AdminUrl,
    step: &str,
    sql: &str,
) -> Result<(), AddonError> {
    // A plain string: the text protocol, no bound values (CREATE USER takes none).
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
    run(
        &mut conn,
        admin,
        "creating the database",
        &format!("CREATE DATABASE `{name}`"),
    )
    .await?;
    // From here on a failure removes the database made above, and the user once it is made
    // (never one that existed before: a name taken fails the step that makes it).
    let create_user = format!("CREATE USER '{name}'@'%' IDENTIFIED BY '{password}'");
    if let Err(e) = run(&mut conn, admin, "creating the user", &create_user).await {
        let cleanup = remove(&mut conn, admin, name, false).await;
        return Err(e.and_cleanup(cleanup));
    }
    let grant = format!("GRANT ALL PRIVILEGES ON `{name}`.* TO '{name}'@'%'");
    if let Err(e) = run(&mut conn, admin, "granting the user its database", &grant).await {
        let cleanup = remove(&mut conn, admin, name, true).await;
        return Err(e.and_cleanup(cleanup));
    }
    let _ = conn.close().await;
    Ok(url)
}

async fn remove(
    conn: &mut MySqlConnection,
    admin: &AdminUrl,
    name: &str,
    user: bool,
) -> Result<(), AddonError> {
    if user {
        run(
            conn,
            admin,
            "dropping the user",
            &format!("DROP USER IF EXISTS '{name}'@'%'"),
        )
        .await?;
    }
    run(
        conn,
        admin,
        "dropping the database",
        &format!("DROP DATABASE IF EXISTS `{name}`"),
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
        "setting the user's password",
        &format!("ALTER USER '{name}'@'%' IDENTIFIED BY '{password}'"),
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
