//! Every REST error is one body, `{"error":{"code","message"}}`, built
//! here: handler failures, refused requests, malformed bodies, paths and
//! queries, authentication, unknown routes (404) and methods (405), and
//! bodies over the limit (413). Clients get a stable code and a safe
//! message; the cause of a server failure is logged once, when the
//! response is made.

use super::auth::AuthError;
use crate::service::{Failure, Refusal, ServiceError};
use crate::store::StoreError;
use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The body of every REST error.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody {
    pub(crate) error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorDetail {
    /// Stable machine-readable code, e.g. `invalid_json`, `not_found`.
    pub(crate) code: String,
    /// A safe, human-readable explanation.
    pub(crate) message: String,
}

/// A REST failure: status, stable code, safe message.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// Seconds, sent as `Retry-After` (429).
    retry_after: Option<u64>,
    /// What went wrong inside the server (never sent; logged once).
    cause: Option<String>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
            cause: None,
        }
    }

    /// 429 with `Retry-After`.
    pub(crate) fn too_many(
        code: &'static str,
        message: impl Into<String>,
        retry_after: std::time::Duration,
    ) -> ApiError {
        ApiError {
            retry_after: Some(retry_after.as_secs().max(1)),
            ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, code, message)
        }
    }

    pub(crate) fn bad(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub(crate) fn not_found(what: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
    }

    /// A failure of the server's own: a generic message out, the cause
    /// into the log.
    fn internal(status: StatusCode, code: &'static str, message: &str, cause: impl ToString) -> ApiError {
        ApiError {
            cause: Some(cause.to_string()),
            ..ApiError::new(status, code, message)
        }
    }

    /// The response for a status axum or tower produced without a body of
    /// ours (unknown route, method, oversized body).
    pub(crate) fn for_status(status: StatusCode) -> ApiError {
        let (code, message) = match status {
            StatusCode::NOT_FOUND => ("not_found", "no such route"),
            StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "this route does not take that method"),
            StatusCode::PAYLOAD_TOO_LARGE => ("too_large", "the request body is larger than allowed"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ("invalid_json", "send JSON with content-type application/json"),
            StatusCode::REQUEST_TIMEOUT => ("timeout", "the request took too long"),
            _ if status.is_server_error() => ("internal", "the server could not answer"),
            _ => ("bad_request", "the request could not be read"),
        };
        ApiError::new(status, code, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Some(cause) = &self.cause {
            tracing::error!(status = self.status.as_u16(), code = self.code, error = %cause, "request failed");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.into(),
                message: self.message,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        ApiError::internal(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "storage is unavailable; try again later",
            e,
        )
    }
}

impl From<Failure> for ApiError {
    fn from(e: Failure) -> ApiError {
        match e {
            Failure::Store(e) => e.into(),
            Failure::Mail(e) => ApiError::internal(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "could not prepare the email",
                e,
            ),
        }
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> ApiError {
        match r {
            Refusal::PlanNotFound { .. } => ApiError::not_found("plan"),
            Refusal::StaleVersion { .. } | Refusal::ChangedMeanwhile { .. } => {
                ApiError::new(StatusCode::CONFLICT, "stale", r.to_string())
            }
            Refusal::VerificationRateLimited { retry_after } => {
                ApiError::too_many("verification_rate_limited", r.to_string(), retry_after)
            }
            Refusal::Invalid(_)
            | Refusal::TooManyPlans { .. }
            | Refusal::WhichPlan { .. }
            | Refusal::NothingToUndo
            | Refusal::NothingToRedo
            | Refusal::WhichUndo { .. }
            | Refusal::Reminder(_)
            | Refusal::Preferences(_)
            | Refusal::Binding(_)
            | Refusal::AddressChanged => ApiError::bad("invalid_field", r.to_string()),
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> ApiError {
        match e {
            ServiceError::Refused(r) => r.into(),
            ServiceError::Failed(f) => f.into(),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> ApiError {
        ApiError::new(e.status(), "invalid_json", e.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> ApiError {
        ApiError::new(e.status(), "invalid_field", e.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(e: PathRejection) -> ApiError {
        ApiError::new(e.status(), "invalid_field", e.body_text())
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> ApiError {
        let (status, code) = match &e {
            AuthError::MissingToken | AuthError::InvalidToken(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            AuthError::MissingDevUser | AuthError::BadUser(_) => (StatusCode::BAD_REQUEST, "bad_user"),
            AuthError::ForbiddenOrigin(_) => (StatusCode::FORBIDDEN, "forbidden_origin"),
        };
        ApiError::new(status, code, e.to_string())
    }
}
