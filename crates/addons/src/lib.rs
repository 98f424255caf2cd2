//! Backing services as add-ons: a database, cache or queue of its own for an app, made on a
//! server the operator attached to dozen by an admin URL (`DOZEN_ADDON_POSTGRESQL_URL`,
//! `DOZEN_ADDON_REDIS_URL`, `DOZEN_ADDON_MYSQL_URL`, `DOZEN_ADDON_RABBITMQ_URL`).
//!
//! **For:** provisioning ([`provision`]), rotating credentials ([`rotate`]) and removing
//! ([`deprovision`]) one add-on's resources on its backing server, the URL an app connects
//! with, and backups of PostgreSQL and MySQL add-ons ([`dump`], [`restore`]). A provisioning that fails half-way removes what it made before it returns the error.
//!
//! | service | what an add-on is |
//! |---|---|
//! | `postgresql` | a database and a login role owning it alone, `CONNECT` revoked from `PUBLIC` |
//! | `redis` | an ACL user limited to the keys `<addon>:*` and the channels `<addon>:*` |
//! | `mysql` | a database and a user with privileges on it alone (MySQL or MariaDB) |
//! | `rabbitmq` | a vhost and a user with permissions on it alone (through `rabbitmqctl`) |
//!
//! **Not for:** recording add-ons (the store), attaching them to apps (the server), running
//! database servers (the operator's).
//!
//! Passwords are 32 random letters and digits. None appears in an error, a `Debug` output or a
//! command line: [`Provisioned`] and [`AdminUrl`] hide theirs, `rabbitmqctl` reads them on
//! stdin, `pg_dump` and `mysqldump` from their environment.

mod backup;
mod error;
mod mysql;
mod password;
mod postgres;
mod rabbitmq;
mod redis;
pub mod s3;
mod steps;
mod target;
mod tool;

use std::fmt;
use std::time::Duration;

pub use backup::{can_back_up, dump, dump_extension, restore};
pub use error::AddonError;
pub use redis::MAX_REPLY_BYTES;

/// How long one step on a backing server may take before it counts as failed.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// The plan every add-on has: a share of the attached server.
pub const PLAN: &str = "shared";

/// A kind of backing service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    /// PostgreSQL.
    Postgresql,
    /// Redis 6 or later (ACLs).
    Redis,
    /// MySQL or MariaDB.
    Mysql,
    /// RabbitMQ.
    Rabbitmq,
}

impl Service {
    /// Every service, in the order listings show them.
    pub const ALL: [Service; 4] = [
        Service::Postgresql,
        Service::Redis,
        Service::Mysql,
        Service::Rabbitmq,
    ];

    /// Its name in commands and add-on names.
    pub fn name(self) -> &'static str {
        match self {
            Service::Postgresql => "postgresql",
            Service::Redis => "redis",
            Service::Mysql => "mysql",
            Service::Rabbitmq => "rabbitmq",
        }
    }

    /// The variable of the server's environment that attaches a server of this kind.
    pub fn env_var(self) -> &'static str {
        match self {
            Service::Postgresql => "DOZEN_ADDON_POSTGRESQL_URL",
            Service::Redis => "DOZEN_ADDON_REDIS_URL",
            Service::Mysql => "DOZEN_ADDON_MYSQL_URL",
            Service::Rabbitmq => "DOZEN_ADDON_RABBITMQ_URL",
        }
    }

    /// The attachment name used when none is given (`DATABASE` means `DATABASE_URL`).
    pub fn default_attachment(self) -> &'static str {
        match self {
            Service::Postgresql => "DATABASE",
            Service::Redis => "REDIS",
            Service::Mysql => "MYSQL",
            Service::Rabbitmq => "RABBITMQ",
        }
    }

    /// A service by name (`postgres`, `pg`, `mariadb` and `amqp` are accepted too).
    pub fn parse(name: &str) -> Result<Service, AddonError> {
        match name.to_ascii_lowercase().as_str() {
            "postgresql" | "postgres" | "pg" | "heroku-postgresql" => Ok(Service::Postgresql),
            "redis" | "heroku-redis" => Ok(Service::Redis),
            "mysql" | "mariadb" => Ok(Service::Mysql),
            "rabbitmq" | "amqp" => Ok(Service::Rabbitmq),
            _ => Err(AddonError::UnknownService {
                name: name.chars().take(64).collect(),
            }),
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An admin connection to a backing server, as the operator gave it. `Debug` and `Display`
/// show the scheme, host and port only.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminUrl(String);

impl AdminUrl {
    /// Wrap a URL (checked when used).
    pub fn new(url: impl Into<String>) -> AdminUrl {
        AdminUrl(url.into())
    }

    /// The URL itself, password included.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `scheme://host:port`, safe to show.
    pub fn server(&self) -> String {
        match url::Url::parse(&self.0) {
            Ok(u) => format!(
                "{}://{}:{}",
                u.scheme(),
                u.host_str().unwrap_or("?"),
                u.port().map_or_else(|| "-".to_string(), |p| p.to_string())
            ),
            Err(_) => "(an unreadable URL)".to_string(),
        }
    }
}

impl fmt::Debug for AdminUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AdminUrl({})", self.server())
    }
}

/// The backing servers attached to this dozen, by service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Servers {
    servers: Vec<(Service, AdminUrl)>,
}

impl Servers {
    /// Read the `DOZEN_ADDON_*_URL` variables through `lookup` (empty means unset).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Servers {
        let servers = Service::ALL
            .iter()
            .filter_map(|s| {
                lookup(s.env_var())
                    .filter(|v| !v.trim().is_empty())
                    .map(|v| (*s, AdminUrl::new(v.trim())))
            })
            .collect();
        Servers { servers }
    }

    /// The admin URL of `service`'s server, or an error naming the variable that attaches one.
    pub fn get(&self, service: Service) -> Result<&AdminUrl, AddonError> {
        self.servers
            .iter()
            .find(|(s, _)| *s == service)
            .map(|(_, u)| u)
            .ok_or(AddonError::NotAttached {
                service: service.name(),
                var: service.env_var(),
            })
    }

    /// Whether a server of `service` is attached.
    pub fn offers(&self, service: Service) -> bool {
        self.get(service).is_ok()
    }
}

/// What [`provision`] made: the name of the database/user/vhost and the URL an app connects
/// with (a secret: `Debug` hides it).
#[derive(Clone, PartialEq, Eq)]
pub struct Provisioned {
    /// The database, user or vhost on the backing server.
    pub resource: String,
    /// The app's URL, password included.
    pub url: String,
}

impl fmt::Debug for Provisioned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Provisioned")
            .field("resource", &self.resource)
            .finish_non_exhaustive()
    }
}

/// The name of an add-on's database, user or vhost: its name, with `_` for `-` where the
/// server's identifiers prefer it.
pub fn resource_name(service: Service, addon: &str) -> String {
    match service {
        Service::Postgresql | Service::Mysql => addon.replace('-', "_"),
        Service::Redis | Service::Rabbitmq => addon.to_string(),
    }
}

fn check_resource(resource: &str) -> Result<(), AddonError> {
    let ok = !resource.is_empty()
        && resource.len() <= 63
        && resource
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(AddonError::BadName {
            name: resource.chars().take(64).collect(),
        })
    }
}

/// Make add-on `addon`'s resources on `admin`'s server. On failure nothing it made is left
/// (or the error says what could not be removed).
pub async fn provision(
    service: Service,
    admin: &AdminUrl,
    addon: &str,
) -> Result<Provisioned, AddonError> {
    let resource = resource_name(service, addon);
    check_resource(&resource)?;
    let password = password::generate()?;
    // Made (and so checked) before anything is made on the server.
    let url = app_url(service, admin, &resource, &password)?;
    match service {
        Service::Postgresql => postgres::provision(admin, &resource, &password).await?,
        Service::Redis => redis::provision(admin, &resource, &password).await?,
        Service::Mysql => mysql::provision(admin, &resource, &password).await?,
        Service::Rabbitmq => rabbitmq::provision(admin, &resource, &password).await?,
    }
    Ok(Provisioned { resource, url })
}

/// Give `resource` a new random password; the new URL.
pub async fn rotate(
    service: Service,
    admin: &AdminUrl,
    resource: &str,
) -> Result<String, AddonError> {
    check_resource(resource)?;
    let password = password::generate()?;
    set_password(service, admin, resource, &password).await
}

/// Set `resource`'s password back to the one in `url` (undoing a rotation the store could not
/// record).
pub async fn restore_password(
    service: Service,
    admin: &AdminUrl,
    resource: &str,
    url: &str,
) -> Result<(), AddonError> {
    check_resource(resource)?;
    let password = url::Url::parse(url)
        .ok()
        .and_then(|u| u.password().map(str::to_owned))
        .ok_or(AddonError::BadUrl {
            var: "the add-on's URL",
            message: "it has no password".into(),
        })?;
    set_password(service, admin, resource, &password).await?;
    Ok(())
}

async fn set_password(
    service: Service,
    admin: &AdminUrl,
    resource: &str,
    password: &str,
) -> Result<String, AddonError> {
    // Checked before it is put in SQL, a Redis command or rabbitmqctl's input.
    if !password::is_safe(password) {
        return Err(target::bad(
            service,
            "the add-on's password is not one dozen made",
        ));
    }
    let url = app_url(service, admin, resource, password)?;
    match service {
        Service::Postgresql => postgres::set_password(admin, resource, password).await?,
        Service::Redis => redis::set_password(admin, resource, password).await?,
        Service::Mysql => mysql::set_password(admin, resource, password).await?,
        Service::Rabbitmq => rabbitmq::set_password(admin, resource, password).await?,
    }
    Ok(url)
}

/// The URL an app connects to `resource` with: its user and password, and its database (its
/// vhost; database 0 for Redis, whose ACLs keep add-ons apart).
fn app_url(
    service: Service,
    admin: &AdminUrl,
    resource: &str,
    password: &str,
) -> Result<String, AddonError> {
    let path = match service {
        Service::Redis => "0",
        _ => resource,
    };
    target::app_url(service, admin, resource, password, path)
}

/// Remove `resource` (database and role, user and keys, vhost and user) from the server.
/// Removing what is already gone succeeds.
pub async fn deprovision(
    service: Service,
    admin: &AdminUrl,
    resource: &str,
) -> Result<(), AddonError> {
    check_resource(resource)?;
    match service {
        Service::Postgresql => postgres::deprovision(admin, resource).await,
        Service::Redis => redis::deprovision(admin, resource).await,
        Service::Mysql => mysql::deprovision(admin, resource).await,
        Service::Rabbitmq => rabbitmq::deprovision(admin, resource).await,
    }
}

/// Run `step` with [`STEP_TIMEOUT`].
pub(crate) async fn timed<T>(
    service: Service,
    admin: &AdminUrl,
    step: &str,
    f: impl Future<Output = Result<T, AddonError>>,
) -> Result<T, AddonError> {
    match tokio::time::timeout(STEP_TIMEOUT, f).await {
        Ok(r) => r,
        Err(_) => Err(AddonError::server(
            service,
            admin,
            step,
            format!("no answer within {} s", STEP_TIMEOUT.as_secs()),
        )),
    }
}
