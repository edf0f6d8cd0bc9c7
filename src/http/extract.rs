//! Extractors for the REST handlers: the authenticated user, and JSON
//! bodies and query strings whose rejections are [`ApiError`]s (so a
//! malformed request gets the same error body as everything else).

use super::auth::{self, AuthQuery};
use super::error::ApiError;
use crate::app::App;
use crate::user::UserId;
use axum::extract::{FromRequest, FromRequestParts, Query};
use axum::http::request::Parts;

/// The authenticated user of a request, decided exactly as for `/ws`: the
/// browser origin is checked, the signed token (or in loopback dev mode
/// `?user=`) names the user, and the user is registered. Never from a body.
pub(crate) struct AuthUser(pub UserId);

impl FromRequestParts<App> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<AuthUser, ApiError> {
        auth::check_origin(&app.config, &parts.headers)?;
        let Query(query) = Query::<AuthQuery>::try_from_uri(&parts.uri)?;
        let user = auth::authenticate(&app.config, &parts.headers, &query)?;
        super::rate::per_user(app, &user).await?;
        app.store.ensure_user(&user).await?;
        Ok(AuthUser(user))
    }
}

/// A JSON request body; a malformed one is refused with `invalid_json`.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub(crate) struct Body<T>(pub T);

/// Query parameters; malformed ones are refused with `invalid_field`.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub(crate) struct Params<T>(pub T);
