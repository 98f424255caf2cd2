//! API errors: a status and a message that is safe to show (never a config value, never a
//! server internal).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use dozen_store::StoreError;

use crate::platform::PlatformError;

/// An error answered to an API client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 401: no token, or not a valid one. Says nothing more.
    #[error("unauthorized: send a valid API token (Authorization: Bearer <token>)")]
    Unauthorized,
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 409.
    #[error("{0}")]
    Conflict(String),
    /// 422: the request was understood but is wrong.
    #[error("{0}")]
    Invalid(String),
    /// 413.
    #[error("{0}")]
    TooLarge(String),
    /// A request axum could not read (its status: 400, 415, 422, ...), with its reason.
    #[error("{1}")]
    Refused(StatusCode, String),
    /// 503: the server is shutting down.
    #[error("the server is shutting down; try again shortly")]
    Unavailable,
    /// 500: logged in full on the server, answered without detail.
    #[error("internal error (the server's log has the cause); try again, or ask its operator")]
    Internal(String),
    /// 500 from the platform service: the answer says what failed, the log has the cause.
    #[error("{0}")]
    Platform(PlatformError),
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Refused(status, _) => *status,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) | ApiError::Platform(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::from(PlatformError::from(e))
    }
}

impl From<PlatformError> for ApiError {
    fn from(e: PlatformError) -> Self {
        match e {
            PlatformError::NotFound(m) => ApiError::NotFound(m),
            PlatformError::Conflict(m) => ApiError::Conflict(m),
            PlatformError::Invalid(m) => ApiError::Invalid(m),
            PlatformError::TooLarge(m) => ApiError::TooLarge(m),
            PlatformError::ShuttingDown => ApiError::Unavailable,
            internal @ PlatformError::Internal { .. } => ApiError::Platform(internal),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // The cause goes to the server's own log (stderr), once, here; not to the client.
        let message = match &self {
            ApiError::Internal(detail) => {
                eprintln!("dozen server: error: {detail}");
                self.to_string()
            }
            ApiError::Platform(e) => e.report(),
            other => other.to_string(),
        };
        let status = self.status();
        let body =
            serde_json::json!({ "error": { "status": status.as_u16(), "message": message } });
        (status, Json(body)).into_response()
    }
}
