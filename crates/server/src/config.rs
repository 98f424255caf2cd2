//! The server's configuration, read from the environment only (factor III).

use std::path::PathBuf;
use std::time::Duration;

/// Everything `dozen server` is configured with. Its `Debug` hides the secrets
/// (`DATABASE_URL`, `DOZEN_API_TOKEN`): it says only whether they are set.
#[derive(Clone)]
pub struct ServerConfig {
    /// `PORT`: where the API listens (default 5050).
    pub port: u16,
    /// `DATABASE_URL`: the store; unset means SQLite under the data directory.
    pub database_url: Option<String>,
    /// `DOZEN_DATA_DIR`: slugs, build cache, release directories (default `./.dozen`).
    pub data_dir: PathBuf,
    /// `DOZEN_API_TOKEN`: a bootstrap admin token, created in the store if missing.
    pub api_token: Option<String>,
    /// `DOZEN_MAX_UPLOAD_MB`: the largest source upload accepted (default 512 MB).
    pub max_upload: u64,
    /// `DOZEN_LOG_LINES`: recent log lines kept per app (default 1500, as Heroku).
    pub log_lines: usize,
    /// `DOZEN_LOG_HISTORY`: `on` (default) keeps each app's recent lines on disk too, so they
    /// survive a restart; `off` keeps them in memory only.
    pub log_history: bool,
    /// `DOZEN_DRAIN_QUEUE` and `DOZEN_DRAIN_CA`: the bound of each log drain's queue on disk and
    /// the certificate authorities trusted for TLS drains besides the system's.
    pub drains: crate::drains::DrainSettings,
    /// What the system users of apps are named: `<prefix><app>` (`DOZEN_APP_USER_PREFIX`).
    pub app_user_prefix: String,
    /// `DOZEN_BUILD_TIMEOUT`: seconds a build may take (default 900).
    pub build_timeout: Duration,
    /// `DOZEN_BUILD_MEMORY`: memory a build step may use (default 4GiB; `0`: no limit).
    pub build_memory: Option<u64>,
    /// `DOZEN_BUILD_DISK`: disk a build directory may use (default 8GiB; `0`: no limit).
    pub build_disk: Option<u64>,
    /// `DOZEN_ROUTER_PORT`: where app traffic is served (default 8080).
    pub router_port: u16,
    /// `DOZEN_DOMAIN`: apps answer at `<app>.<domain>` (default `localhost`).
    pub domain: String,
    /// `DOZEN_BOOT_TIMEOUT`: seconds a new web process gets to become healthy (default 60).
    pub boot_timeout: Duration,
    /// `DOZEN_GIT_STALL_TIMEOUT`: seconds a git client may leave its request unsent, or the
    /// answer unread, before its `git http-backend` is stopped (default 120).
    pub git_stall_timeout: Duration,
    /// `DOZEN_ROUTER_TLS_PORT`: where app traffic is served over TLS (unset: no TLS).
    pub router_tls_port: Option<u16>,
    /// `DOZEN_TLS_CERTS`: a directory of `<domain>.crt` + `<domain>.key` PEM pairs
    /// (`default.*` for any other name, `_.example.com.*` for `*.example.com`).
    pub tls_certs: Option<PathBuf>,
    /// `DOZEN_BIND`: the address the API and the router listen on (default `127.0.0.1`).
    pub bind: String,
    /// `DOZEN_METRICS_BIND`: an address and port where `/metrics` is served without a token
    /// (unset: only on the API port, with one).
    pub metrics_bind: Option<std::net::SocketAddr>,
    /// `DOZEN_API_TLS_CERT` and `DOZEN_API_TLS_KEY`: PEM files of the API's certificate chain
    /// and private key; with them the API serves HTTPS.
    pub api_tls: Option<ApiTls>,
    /// `DOZEN_ALLOW_PLAIN_HTTP=1`: serve the API over plain HTTP on an address other machines
    /// reach (behind a TLS proxy, say); refused otherwise.
    pub allow_plain_http: bool,
    /// `DOZEN_ADDON_POSTGRESQL_URL`, `DOZEN_ADDON_REDIS_URL`, `DOZEN_ADDON_MYSQL_URL`,
    /// `DOZEN_ADDON_RABBITMQ_URL`: admin connections to the backing servers add-ons are made on.
    pub addon_servers: dozen_addons::Servers,
    /// `DOZEN_BACKUP_S3_URL` and the rest of `DOZEN_BACKUP_S3_*`: the S3-compatible bucket
    /// add-on backups go to (unset: the data directory).
    pub backup_s3: Option<dozen_addons::s3::S3Settings>,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |v: &Option<String>| if v.is_some() { "(set)" } else { "(unset)" };
        f.debug_struct("ServerConfig")
            .field("port", &self.port)
            .field("database_url", &set(&self.database_url))
            .field("data_dir", &self.data_dir)
            .field("api_token", &set(&self.api_token))
            .field("max_upload", &self.max_upload)
            .field("log_lines", &self.log_lines)
            .field("log_history", &self.log_history)
            .field("drains", &self.drains)
            .field("app_user_prefix", &self.app_user_prefix)
            .field("build_timeout", &self.build_timeout)
            .field("build_memory", &self.build_memory)
            .field("build_disk", &self.build_disk)
            .field("router_port", &self.router_port)
            .field("domain", &self.domain)
            .field("boot_timeout", &self.boot_timeout)
            .field("git_stall_timeout", &self.git_stall_timeout)
            .field("router_tls_port", &self.router_tls_port)
            .field("tls_certs", &self.tls_certs)
            .field("bind", &self.bind)
            .field("metrics_bind", &self.metrics_bind)
            .field("api_tls", &self.api_tls)
            .field("allow_plain_http", &self.allow_plain_http)
            .field("addon_servers", &self.addon_servers)
            .field("backup_s3", &self.backup_s3)
            .finish()
    }
}

/// The API's certificate and key files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTls {
    /// `DOZEN_API_TLS_CERT`: the certificate chain, leaf first (PEM).
    pub cert: PathBuf,
    /// `DOZEN_API_TLS_KEY`: its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Whether `bind` is an address only this machine reaches.
pub fn is_loopback(bind: &str) -> bool {
    let bind = bind.trim();
    bind.eq_ignore_ascii_case("localhost")
        || bind
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl ServerConfig {
    /// Refuse to serve the API over plain HTTP to other machines: tokens and config values
    /// would cross the network in clear text. `Ok` with a warning to log when
    /// `DOZEN_ALLOW_PLAIN_HTTP=1` allows it anyway.
    pub fn check_plain_http(&self) -> Result<Option<String>, String> {
        if self.api_tls.is_some() || is_loopback(&self.bind) {
            return Ok(None);
        }
        if self.allow_plain_http {
            return Ok(Some(format!(
                "the API is served over plain HTTP on {} (DOZEN_ALLOW_PLAIN_HTTP=1): API tokens and config values cross the network unencrypted unless something in front encrypts them",
                self.bind
            )));
        }
        Err(format!(
            "DOZEN_BIND={} would serve the API to other machines over plain HTTP, where API tokens and config values cross the network unencrypted. Set DOZEN_API_TLS_CERT and DOZEN_API_TLS_KEY (PEM files) to serve HTTPS, or set DOZEN_ALLOW_PLAIN_HTTP=1 if a TLS proxy in front of dozen or a private network protects the traffic",
            self.bind
        ))
    }
}

impl ServerConfig {
    /// Read the configuration from the process environment. An error names the variable (and
    /// never echoes its value).
    pub fn from_env() -> Result<ServerConfig, String> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Read the configuration through `lookup` (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<ServerConfig, String> {
        fn number<T: std::str::FromStr>(
            lookup: &impl Fn(&str) -> Option<String>,
            key: &str,
            default: T,
        ) -> Result<T, String> {
            match lookup(key).filter(|v| !v.trim().is_empty()) {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse()
                    .map_err(|_| format!("{key} must be a whole number")),
            }
        }
        let bytes = |key: &str, default: u64| -> Result<Option<u64>, String> {
            match lookup(key).filter(|v| !v.trim().is_empty()) {
                None => Ok(Some(default)),
                Some(v) => match dozen_core::size::parse_bytes(&v) {
                    Ok(0) => Ok(None),
                    Ok(n) => Ok(Some(n)),
                    Err(_) => Err(format!(
                        "{key} must be an amount of bytes such as 4GiB, 512MiB or 8G (0 for no limit)"
                    )),
                },
            }
        };
        let max_upload_mb: u64 = number(&lookup, "DOZEN_MAX_UPLOAD_MB", 512)?;
        Ok(ServerConfig {
            port: number(&lookup, "PORT", 5050)?,
            database_url: lookup("DATABASE_URL").filter(|v| !v.trim().is_empty()),
            data_dir: lookup("DOZEN_DATA_DIR")
                .filter(|v| !v.trim().is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(".dozen")),
            api_token: lookup("DOZEN_API_TOKEN").filter(|v| !v.trim().is_empty()),
            max_upload: max_upload_mb.saturating_mul(1024 * 1024),
            log_lines: number(&lookup, "DOZEN_LOG_LINES", 1500)?,
            log_history: match lookup("DOZEN_LOG_HISTORY").as_deref().map(str::trim) {
                None | Some("" | "on") => true,
                Some("off") => false,
                Some(_) => return Err("DOZEN_LOG_HISTORY must be on or off".into()),
            },
            drains: crate::drains::DrainSettings::from_lookup(&lookup)?,
            app_user_prefix: match lookup("DOZEN_APP_USER_PREFIX") {
                None => "dozen-".into(),
                Some(p) if valid_user_prefix(&p) => p,
                Some(_) => {
                    return Err("DOZEN_APP_USER_PREFIX must be 1 to 16 characters: a lowercase letter or _, then lowercase letters, digits, _ or -".into());
                }
            },
            build_timeout: Duration::from_secs(number(&lookup, "DOZEN_BUILD_TIMEOUT", 900)?),
            build_memory: bytes("DOZEN_BUILD_MEMORY", 4 << 30)?,
            build_disk: bytes("DOZEN_BUILD_DISK", 8 << 30)?,
            router_port: number(&lookup, "DOZEN_ROUTER_PORT", 8080)?,
            domain: lookup("DOZEN_DOMAIN")
                .map(|d| d.trim().trim_matches('.').to_ascii_lowercase())
                .filter(|d| !d.is_empty())
                .unwrap_or_else(|| "localhost".into()),
            boot_timeout: Duration::from_secs(number(&lookup, "DOZEN_BOOT_TIMEOUT", 60)?),
            git_stall_timeout: Duration::from_secs(
                number(&lookup, "DOZEN_GIT_STALL_TIMEOUT", 120)?.max(1),
            ),
            router_tls_port: match lookup("DOZEN_ROUTER_TLS_PORT").filter(|v| !v.trim().is_empty())
            {
                Some(v) => Some(
                    v.trim()
                        .parse()
                        .map_err(|_| "DOZEN_ROUTER_TLS_PORT must be a whole number".to_string())?,
                ),
                None => None,
            },
            tls_certs: lookup("DOZEN_TLS_CERTS")
                .filter(|v| !v.trim().is_empty())
                .map(PathBuf::from),
            bind: lookup("DOZEN_BIND")
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| "127.0.0.1".into()),
            metrics_bind: crate::metrics::parse_bind(lookup("DOZEN_METRICS_BIND"))?,
            api_tls: match (
                lookup("DOZEN_API_TLS_CERT").filter(|v| !v.trim().is_empty()),
                lookup("DOZEN_API_TLS_KEY").filter(|v| !v.trim().is_empty()),
            ) {
                (Some(cert), Some(key)) => Some(ApiTls {
                    cert: PathBuf::from(cert),
                    key: PathBuf::from(key),
                }),
                (None, None) => None,
                (Some(_), None) => {
                    return Err("DOZEN_API_TLS_CERT is set but DOZEN_API_TLS_KEY is not: set both to serve the API over HTTPS".into());
                }
                (None, Some(_)) => {
                    return Err("DOZEN_API_TLS_KEY is set but DOZEN_API_TLS_CERT is not: set both to serve the API over HTTPS".into());
                }
            },
            allow_plain_http: match lookup("DOZEN_ALLOW_PLAIN_HTTP").as_deref().map(str::trim) {
                None | Some("" | "0" | "false") => false,
                Some("1" | "true") => true,
                Some(_) => return Err("DOZEN_ALLOW_PLAIN_HTTP must be 1 or 0".into()),
            },
            addon_servers: dozen_addons::Servers::from_lookup(&lookup),
            backup_s3: dozen_addons::s3::S3Settings::from_lookup(&lookup)?,
        })
    }
}

/// The certificates in a `DOZEN_TLS_CERTS` directory: every `NAME.crt` with a `NAME.key` beside
/// it, for domain NAME (`default` serves any name, `_.example.com` serves `*.example.com`).
pub fn tls_settings(dir: &std::path::Path) -> Result<dozen_router::TlsSettings, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("DOZEN_TLS_CERTS: {}: {e}", dir.display()))?;
    let mut certs = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("crt") {
            continue;
        }
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let key = path.with_extension("key");
        if !key.is_file() {
            return Err(format!(
                "DOZEN_TLS_CERTS: {} has no {} beside it",
                path.display(),
                key.display()
            ));
        }
        let domain = match stem {
            "default" => "*".to_string(),
            s if s.starts_with("_.") => format!("*.{}", &s[2..]),
            s => s.to_ascii_lowercase(),
        };
        certs.push((domain, path, key));
    }
    if certs.is_empty() {
        return Err(format!(
            "DOZEN_TLS_CERTS: {} holds no NAME.crt + NAME.key pair",
            dir.display()
        ));
    }
    certs.sort();
    Ok(dozen_router::TlsSettings { certs })
}

/// Whether `p` can start a system user's name (what `useradd` accepts, kept short so that
/// `<prefix><app>` stays readable within 32 characters).
fn valid_user_prefix(p: &str) -> bool {
    let mut chars = p.chars();
    (1..=16).contains(&p.len())
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn defaults_and_overrides() {
        let env: HashMap<&str, &str> = HashMap::from([("PORT", "6060"), ("DOZEN_LOG_LINES", "10")]);
        let c = ServerConfig::from_lookup(|k| env.get(k).map(|v| v.to_string())).expect("config");
        assert_eq!(c.port, 6060);
        assert_eq!(c.log_lines, 10);
        assert!(c.log_history);
        assert_eq!(c.data_dir, PathBuf::from(".dozen"));
        assert!(c.database_url.is_none());
        assert_eq!(c.build_memory, Some(4 << 30));
        assert_eq!(c.build_disk, Some(8 << 30));
        let env: HashMap<&str, &str> =
            HashMap::from([("DOZEN_BUILD_MEMORY", "0"), ("DOZEN_BUILD_DISK", "512MiB")]);
        let c = ServerConfig::from_lookup(|k| env.get(k).map(|v| v.to_string())).expect("config");
        assert_eq!((c.build_memory, c.build_disk), (None, Some(512 << 20)));
        let err = ServerConfig::from_lookup(|k| (k == "DOZEN_BUILD_DISK").then(|| "lots".into()))
            .expect_err("bad");
        assert!(err.starts_with("DOZEN_BUILD_DISK must be"), "{err}");
    }

    #[test]
    fn plain_http_is_refused_beyond_loopback() {
        let config = |pairs: &[(&str, &str)]| {
            let env: HashMap<&str, &str> = pairs.iter().copied().collect();
            ServerConfig::from_lookup(|k| env.get(k).map(|v| v.to_string())).expect("config")
        };
        for local in ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"] {
            assert_eq!(
                config(&[("DOZEN_BIND", local)]).check_plain_http(),
                Ok(None),
                "{local}"
            );
        }
        assert_eq!(config(&[]).check_plain_http(), Ok(None));
        for remote in ["0.0.0.0", "::", "192.0.2.10", "dozen.example.com"] {
            let err = config(&[("DOZEN_BIND", remote)])
                .check_plain_http()
                .expect_err(remote);
            assert!(
                err.contains("plain HTTP")
                    && err.contains("DOZEN_API_TLS_CERT")
                    && err.contains("DOZEN_ALLOW_PLAIN_HTTP=1"),
                "{err}"
            );
            let warned = config(&[("DOZEN_BIND", remote), ("DOZEN_ALLOW_PLAIN_HTTP", "1")])
                .check_plain_http()
                .expect("allowed");
            assert!(warned.is_some_and(|w| w.contains("unencrypted")));
            let tls = config(&[
                ("DOZEN_BIND", remote),
                ("DOZEN_API_TLS_CERT", "cert.pem"),
                ("DOZEN_API_TLS_KEY", "key.pem"),
            ]);
            assert_eq!(tls.check_plain_http(), Ok(None));
        }
        let half =
            ServerConfig::from_lookup(|k| (k == "DOZEN_API_TLS_CERT").then(|| "c.pem".into()));
        assert!(half.expect_err("half").contains("DOZEN_API_TLS_KEY"));
    }

    #[test]
    fn bad_number_names_the_variable_not_the_value() {
        let err = ServerConfig::from_lookup(|k| (k == "PORT").then(|| "s3cret".to_string()))
            .expect_err("bad");
        assert!(err.contains("PORT") && !err.contains("s3cret"), "{err}");
    }
}
