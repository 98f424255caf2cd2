//! Backups of database add-ons, taken and loaded by the database's own client tools, connecting
//! as the add-on's own user (which owns everything in its database):
//!
//! | service | dump | restore |
//! |---|---|---|
//! | `postgresql` | `pg_dump --format=custom` | `pg_restore --clean --single-transaction` |
//! | `mysql` | `mysqldump --single-transaction --routines` | `mysql`, the dump on its stdin |
//!
//! Passwords go through the environment (`PGPASSWORD`, `MYSQL_PWD`), never the command line,
//! and no user's option files are read (`PGSERVICEFILE=/dev/null`, `--no-defaults`).
//!
//! A dump can be loaded into another add-on of the same service: PostgreSQL dumps carry no
//! owners or grants, and a MySQL dump's `DEFINER=` clauses (which only a privileged user may
//! set to someone else) are dropped as it is loaded, so triggers, views and routines belong to
//! the user that loads them.

use std::borrow::Cow;
use std::ffi::OsStr;
use std::path::Path;

use crate::{AddonError, AdminUrl, STEP_TIMEOUT, Service, target, tool};

/// How long a dump or a restore may take.
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(STEP_TIMEOUT.as_secs() * 20);

/// Whether add-ons of `service` can be backed up.
pub fn can_back_up(service: Service) -> bool {
    matches!(service, Service::Postgresql | Service::Mysql)
}

/// The file name ending of `service`'s dumps (`dump` for PostgreSQL's custom format, `sql`).
pub fn dump_extension(service: Service) -> &'static str {
    match service {
        Service::Mysql => "sql",
        _ => "dump",
    }
}

/// An add-on's URL, taken apart: host, port, user, password, database.
struct Conn {
    host: String,
    port: u16,
    user: String,
    password: String,
    db: String,
}

fn conn(service: Service, url: &str, default_port: u16) -> Result<Conn, AddonError> {
    let bad = |m: &str| AddonError::BadUrl {
        var: "the add-on's URL",
        message: m.to_string(),
    };
    let u = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    let (host, port) = target::host_port(service, &AdminUrl::new(url), default_port)?;
    let db = u.path().trim_start_matches('/').to_string();
    if db.is_empty() {
        return Err(bad("it names no database"));
    }
    let decode = |s: &str| {
        percent_decode(s).ok_or_else(|| bad("its user or password is not UTF-8 when decoded"))
    };
    Ok(Conn {
        host,
        port,
        user: decode(u.username())?,
        password: decode(u.password().unwrap_or_default())?,
        db,
    })
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h)? * 16 + hex(l)?) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn pg_env(c: &Conn) -> Vec<(&'static str, String)> {
    vec![
        ("PGHOST", c.host.clone()),
        ("PGPORT", c.port.to_string()),
        ("PGUSER", c.user.clone()),
        ("PGPASSWORD", c.password.clone()),
        ("PGDATABASE", c.db.clone()),
        ("PGSERVICEFILE", "/dev/null".to_string()),
        ("PGPASSFILE", "/dev/null".to_string()),
    ]
}

/// `mysqldump`'s and `mysql`'s connection options (`--no-defaults` must come first).
fn mysql_args(c: &Conn) -> Vec<String> {
    vec![
        "--no-defaults".into(),
        "--protocol=TCP".into(),
        format!("--host={}", c.host),
        format!("--port={}", c.port),
        format!("--user={}", c.user),
    ]
}

async fn run(
    tool: &'static str,
    args: &[&OsStr],
    envs: &[(&str, String)],
    input: tool::Input<'_>,
) -> Result<(), AddonError> {
    let out = tokio::time::timeout(TIMEOUT, tool::run(tool, tool, args, envs, input))
        .await
        .map_err(|_| AddonError::Tool {
            tool,
            message: format!("did not finish within {} s", TIMEOUT.as_secs()),
        })??;
    if out.success() {
        return Ok(());
    }
    let hint = match (out.code, tool) {
        (Some(127), "pg_dump" | "pg_restore") => {
            " (install the PostgreSQL client on the dozen server's host)"
        }
        (Some(127), _) => " (install mariadb-client on the dozen server's host)",
        _ => "",
    };
    Err(AddonError::Tool {
        tool,
        message: format!("{}{hint}", out.message()),
    })
}

fn os(args: &[String]) -> Vec<&OsStr> {
    args.iter().map(OsStr::new).collect()
}

/// Dump the database of the `service` add-on at `url` into `file`; its size in bytes.
pub async fn dump(service: Service, url: &str, file: &Path) -> Result<u64, AddonError> {
    let tool = match service {
        Service::Postgresql => {
            let c = conn(service, url, 5432)?;
            let mut args: Vec<&OsStr> = ["--format=custom", "--no-owner", "--no-privileges"]
                .iter()
                .map(OsStr::new)
                .collect();
            args.extend([OsStr::new("--file"), file.as_os_str()]);
            run("pg_dump", &args, &pg_env(&c), tool::Input::Nothing).await?;
            "pg_dump"
        }
        Service::Mysql => {
            let c = conn(service, url, 3306)?;
            let mut args = mysql_args(&c);
            args.extend(
                [
                    "--single-transaction",
                    "--routines",
                    "--triggers",
                    "--no-tablespaces",
                ]
                .map(String::from),
            );
            args.push(format!("--result-file={}", file.display()));
            args.push(c.db.clone());
            let envs = [("MYSQL_PWD", c.password.clone())];
            run("mysqldump", &os(&args), &envs, tool::Input::Nothing).await?;
            "mysqldump"
        }
        other => return Err(not_backed_up(other)),
    };
    let meta = tokio::fs::metadata(file)
        .await
        .map_err(|e| AddonError::Tool {
            tool,
            message: format!("{}: {e}", file.display()),
        })?;
    Ok(meta.len())
}

fn not_backed_up(service: Service) -> AddonError {
    AddonError::Tool {
        tool: "backup",
        message: format!("{service} add-ons have no backups (postgresql and mysql have)"),
    }
}

/// Restore `file` (made by [`dump`] of an add-on of the same service) into the database of
/// the add-on at `url`: what the dump holds is dropped and made again (PostgreSQL: in one
/// transaction; MySQL: table by table, as MySQL's DDL is not transactional).
pub async fn restore(service: Service, url: &str, file: &Path) -> Result<(), AddonError> {
    match service {
        Service::Postgresql => {
            let c = conn(service, url, 5432)?;
            let mut args: Vec<&OsStr> = [
                "--clean",
                "--if-exists",
                "--no-owner",
                "--no-privileges",
                "--single-transaction",
                "--exit-on-error",
                "--dbname",
            ]
            .iter()
            .map(OsStr::new)
            .collect();
            args.extend([OsStr::new(c.db.as_str()), file.as_os_str()]);
            run("pg_restore", &args, &pg_env(&c), tool::Input::Nothing).await
        }
        Service::Mysql => {
            let c = conn(service, url, 3306)?;
            let mut args = mysql_args(&c);
            args.push(c.db.clone());
            let envs = [("MYSQL_PWD", c.password.clone())];
            let input = tool::Input::Lines(file, without_definer);
            run("mysql", &os(&args), &envs, input).await
        }
        other => Err(not_backed_up(other)),
    }
}

/// A dump's line without its `DEFINER=`user`@`host`` clause; rows of data are left alone.
fn without_definer(line: &str) -> Cow<'_, str> {
    const CLAUSE: &str = "DEFINER=`";
    if line.starts_with("INSERT INTO") || !line.contains(CLAUSE) {
        return Cow::Borrowed(line);
    }
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(at) = rest.find(CLAUSE) {
        out.push_str(&rest[..at]);
        let after = &rest[at + CLAUSE.len()..];
        // `user`@`host`, either part with `` for a backquote inside it.
        match skip_quoted(after)
            .and_then(|r| r.strip_prefix("@`"))
            .and_then(skip_quoted)
        {
            Some(tail) => rest = tail,
            None => {
                out.push_str(CLAUSE);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// After the opening backquote: what follows the closing one.
fn skip_quoted(s: &str) -> Option<&str> {
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '`' {
            if chars.peek().is_some_and(|(_, n)| *n == '`') {
                chars.next();
                continue;
            }
            return Some(&s[i + 1..]);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definer_clauses_are_dropped_from_statements_not_from_rows() {
        assert_eq!(
            without_definer("/*!50003 CREATE*/ /*!50017 DEFINER=`shop`@`%`*/ /*!50003 TRIGGER t"),
            "/*!50003 CREATE*/ /*!50017 */ /*!50003 TRIGGER t"
        );
        assert_eq!(
            without_definer("CREATE DEFINER=`a``b`@`localhost` PROCEDURE `p`()"),
            "CREATE  PROCEDURE `p`()"
        );
        let row = "INSERT INTO `kv` VALUES ('DEFINER=`x`@`y`')";
        assert_eq!(without_definer(row), row);
        assert_eq!(without_definer("DEFINER=`unclosed"), "DEFINER=`unclosed");
    }

    #[test]
    fn user_and_password_are_decoded() {
        let c = conn(
            Service::Mysql,
            "mysql://u%40x:p%2Fw@db.example:3307/shop",
            3306,
        )
        .expect("parsed");
        assert_eq!(
            (
                c.host.as_str(),
                c.port,
                c.user.as_str(),
                c.password.as_str(),
                c.db.as_str()
            ),
            ("db.example", 3307, "u@x", "p/w", "shop")
        );
        assert!(conn(Service::Mysql, "mysql://u:p@db.example", 3306).is_err());
    }
}
