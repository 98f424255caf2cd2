//! The URL an app gets: the admin URL's scheme, host and port (and query), with the add-on's
//! user, password and database (or vhost).

use crate::{AddonError, AdminUrl, Service};

/// The host and port of the admin URL, for a connection of our own.
pub(crate) fn host_port(
    service: Service,
    admin: &AdminUrl,
    default_port: u16,
) -> Result<(String, u16), AddonError> {
    let u = parse(service, admin)?;
    let host = u
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad(service, "it names no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    Ok((host, u.port().unwrap_or(default_port)))
}

pub(crate) fn parse(service: Service, admin: &AdminUrl) -> Result<url::Url, AddonError> {
    // The url crate's messages never quote the input.
    url::Url::parse(admin.expose()).map_err(|e| bad(service, &e.to_string()))
}

pub(crate) fn bad(service: Service, message: &str) -> AddonError {
    AddonError::BadUrl {
        var: service.env_var(),
        message: message.to_string(),
    }
}

/// The app's URL: `admin` with `user:password` and the path `/path`.
pub(crate) fn app_url(
    service: Service,
    admin: &AdminUrl,
    user: &str,
    password: &str,
    path: &str,
) -> Result<String, AddonError> {
    let mut u = parse(service, admin)?;
    u.set_username(user)
        .and_then(|()| u.set_password(Some(password)))
        .map_err(|()| bad(service, "it cannot carry a user and password"))?;
    u.set_path(&format!("/{path}"));
    Ok(u.to_string())
}
