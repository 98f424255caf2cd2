//! The drain routes' part of the OpenAPI document, merged into it by [`super::document`].

use dozen_api::{CreateDrain, Drain, ErrorBody};
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    paths(list_drains, add_drain, remove_drain),
    components(schemas(Drain, CreateDrain))
)]
pub(super) struct DrainsDoc;

#[utoipa::path(get, path = "/v1/apps/{app}/drains", tag = "drains", params(("app" = String, Path)),
    responses(
        (status = 200, description = "The app's drains, oldest first, with their numbers (URLs with the password hidden)", body = Vec<Drain>),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such app", body = ErrorBody)))]
fn list_drains() {}

#[utoipa::path(post, path = "/v1/apps/{app}/drains", tag = "drains", params(("app" = String, Path)),
    request_body = CreateDrain,
    responses(
        (status = 201, description = "Added and started", body = Drain),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such app", body = ErrorBody),
        (status = 409, description = "The app already has a drain with this URL", body = ErrorBody),
        (status = 415, description = "The body is not sent as application/json", body = ErrorBody),
        (status = 422, description = "Not a drain URL (syslog://, syslog+tls://, https://), or the app has 16 drains", body = ErrorBody)))]
fn add_drain() {}

#[utoipa::path(delete, path = "/v1/apps/{app}/drains/{drain}", tag = "drains",
    params(("app" = String, Path), ("drain" = String, Path, description = "Its id (drn_...)")),
    responses(
        (status = 200, description = "Stopped; what was queued for it is removed", body = Drain),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "The app has no such drain", body = ErrorBody)))]
fn remove_drain() {}
