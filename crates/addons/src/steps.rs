//! The shape every provisioner shares: steps run in order, each that makes something naming
//! the step that takes it back; when one fails, what the steps before it made is taken back,
//! newest first, and the error says whether that worked.
//!
//! The SQL services run their steps on an admin connection ([`SqlAdmin`]), RabbitMQ through
//! `rabbitmqctl`; both are a [`Runner`].

use sqlx::mysql::MySqlConnection;
use sqlx::postgres::PgConnection;
use sqlx::{Connection, Executor};

use crate::{AddonError, AdminUrl, Service, timed};

/// What runs one step's command.
pub(crate) trait Runner<C> {
    /// Run `cmd`; `what` names the step in an error ("creating the role").
    async fn run(&mut self, what: &str, cmd: &C) -> Result<(), AddonError>;
}

/// One step of making an add-on: what it does, its command, and how to take it back.
pub(crate) struct Step<C> {
    pub what: &'static str,
    pub cmd: C,
    pub undo: Option<(&'static str, C)>,
}

impl<C> Step<C> {
    /// A step that makes something, taken back by `undo`.
    pub(crate) fn makes(what: &'static str, cmd: C, undo: (&'static str, C)) -> Step<C> {
        Step {
            what,
            cmd,
            undo: Some(undo),
        }
    }

    /// A step that only changes what an earlier step made.
    pub(crate) fn changes(what: &'static str, cmd: C) -> Step<C> {
        Step {
            what,
            cmd,
            undo: None,
        }
    }
}

/// Run `steps` in order; on a failure, undo the ones done (newest first, each tried even when
/// one before it failed) and return the failure, noting a cleanup that failed too.
pub(crate) async fn run_all<C, R: Runner<C>>(
    runner: &mut R,
    steps: &[Step<C>],
) -> Result<(), AddonError> {
    for (done, step) in steps.iter().enumerate() {
        if let Err(e) = runner.run(step.what, &step.cmd).await {
            let mut cleanup = Ok(());
            for (what, cmd) in steps[..done].iter().rev().filter_map(|s| s.undo.as_ref()) {
                if let Err(c) = runner.run(what, cmd).await {
                    cleanup = cleanup.and(Err(c));
                }
            }
            return Err(e.and_cleanup(cleanup));
        }
    }
    Ok(())
}

/// An admin connection to a SQL server (PostgreSQL or MySQL), running plain SQL strings: the
/// simple/text protocol with no bound values, which DDL takes none of. The names in the SQL
/// are checked to be `[a-z0-9_-]` and passwords to be letters and digits before they get here.
pub(crate) struct SqlAdmin<'a> {
    conn: SqlConn,
    service: Service,
    admin: &'a AdminUrl,
}

/// The connection of one of the SQL services (an enum, not a generic: sqlx's executor bounds
/// on a generic connection make the server's futures lose `Send`).
enum SqlConn {
    Pg(PgConnection),
    My(MySqlConnection),
}

impl<'a> SqlAdmin<'a> {
    /// Connect to `admin`'s server (`service` is PostgreSQL or MySQL).
    pub(crate) async fn connect(
        service: Service,
        admin: &'a AdminUrl,
    ) -> Result<SqlAdmin<'a>, AddonError> {
        let step = "connecting as admin";
        let failed = |e: sqlx::Error| AddonError::server(service, admin, step, e);
        let conn = timed(service, admin, step, async {
            match service {
                Service::Mysql => MySqlConnection::connect(admin.expose())
                    .await
                    .map(SqlConn::My)
                    .map_err(failed),
                _ => PgConnection::connect(admin.expose())
                    .await
                    .map(SqlConn::Pg)
                    .map_err(failed),
            }
        })
        .await?;
        Ok(SqlAdmin {
            conn,
            service,
            admin,
        })
    }

    /// Run one statement.
    pub(crate) async fn exec(&mut self, what: &str, sql: &str) -> Result<(), AddonError> {
        let (service, admin) = (self.service, self.admin);
        let conn = &mut self.conn;
        timed(service, admin, what, async move {
            let done = match conn {
                SqlConn::Pg(c) => c.execute(sql).await.map(|_| ()),
                SqlConn::My(c) => c.execute(sql).await.map(|_| ()),
            };
            done.map_err(|e| AddonError::server(service, admin, what, e))
        })
        .await
    }

    /// Close the connection (a failure to close cleanly changes nothing on the server).
    pub(crate) async fn close(self) {
        let _ = match self.conn {
            SqlConn::Pg(c) => c.close().await,
            SqlConn::My(c) => c.close().await,
        };
    }
}

/// Connect to `admin`'s server, run `steps` ([`run_all`]) and close.
pub(crate) async fn on_sql_server(
    service: Service,
    admin: &AdminUrl,
    steps: &[Step<String>],
) -> Result<(), AddonError> {
    let mut conn = SqlAdmin::connect(service, admin).await?;
    run_all(&mut conn, steps).await?;
    conn.close().await;
    Ok(())
}

impl Runner<String> for SqlAdmin<'_> {
    async fn run(&mut self, what: &str, sql: &String) -> Result<(), AddonError> {
        self.exec(what, sql).await
    }
}
