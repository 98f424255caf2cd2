//! The request extractors of the handlers: axum's `Json`, `Path` and `Query`, whose refusals
//! (a body that is not JSON, a path or query that does not parse) are answered as every other
//! error of the API, `{"error": {"status", "message"}}`, with axum's status and message.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, OptionalFromRequest, Request};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON body in, or a JSON answer out.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

/// The parameters of the route's path.
#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

/// The query string.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

fn json_refused(r: JsonRejection) -> ApiError {
    ApiError::Refused(r.status(), r.body_text())
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(v) = <axum::Json<T> as FromRequest<S>>::from_request(req, state)
            .await
            .map_err(json_refused)?;
        Ok(Json(v))
    }
}

impl<T: DeserializeOwned, S: Send + Sync> OptionalFromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, ApiError> {
        let v = <axum::Json<T> as OptionalFromRequest<S>>::from_request(req, state)
            .await
            .map_err(json_refused)?;
        Ok(v.map(|axum::Json(v)| Json(v)))
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path(v) = axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map_err(|r: PathRejection| ApiError::Refused(r.status(), r.body_text()))?;
        Ok(Path(v))
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Query(v) = axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map_err(|r: QueryRejection| ApiError::Refused(r.status(), r.body_text()))?;
        Ok(Query(v))
    }
}
