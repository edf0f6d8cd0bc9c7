//! The signed links from emails and the calendar: confirming an address,
//! one-click unsubscribe (RFC 8058), the calendar feed. A link names its
//! user and is checked against the server's key; no login is needed, and
//! a link is good only for its own user and purpose.

use super::error::{ApiError, ErrorBody};
use super::extract::{AuthUser, Params};
use crate::app::App;
use crate::channels::calendar;
use crate::channels::links::{Links, TokenPurpose};
use crate::preferences::Preferences;
use crate::service::{Refusal, ServiceError};
use crate::user::UserId;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use minijinja::{Environment, context};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::LazyLock;

#[derive(Deserialize, utoipa::IntoParams)]
pub(crate) struct TokenQuery {
    /// The signed token from the link.
    pub(super) token: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct CalendarLinkBody {
    /// Subscribe to this URL in Google Calendar, Outlook or Apple Calendar.
    pub(crate) url: String,
}

#[derive(Deserialize)]
struct Notice {
    title: String,
    text: String,
}

/// The pages links open: `templates/pages/` (built in; auto-escaped).
struct Pages {
    env: Environment<'static>,
    notices: HashMap<String, Notice>,
}

static PAGES: LazyLock<Pages> = LazyLock::new(|| {
    let mut env = Environment::new();
    // The sources are compiled in and checked by the tests: adding them
    // cannot fail at run time, and a failed render falls back to text.
    let _ = env.add_template("notice.html", include_str!("../../templates/pages/notice.html"));
    let _ = env.add_template(
        "unsubscribe.html",
        include_str!("../../templates/pages/unsubscribe.html"),
    );
    let _ = env.add_template("step.html", include_str!("../../templates/pages/step.html"));
    let notices = toml::from_str(include_str!("../../templates/pages/notices.toml")).unwrap_or_default();
    Pages { env, notices }
});

pub(super) fn render(name: &str, ctx: minijinja::Value) -> String {
    PAGES
        .env
        .get_template(name)
        .and_then(|t| t.render(ctx))
        .unwrap_or_else(|e| format!("steward could not show this page ({e})"))
}

/// One of the notices in `templates/pages/notices.toml`.
fn notice(status: StatusCode, key: &str) -> Response {
    let (title, text) = match PAGES.notices.get(key) {
        Some(n) => (n.title.as_str(), n.text.as_str()),
        None => (key, ""),
    };
    (status, Html(render("notice.html", context! { title, text }))).into_response()
}

/// The user a signed token is for, if it checks out for `purpose`.
async fn token_user(app: &App, purpose: TokenPurpose, token: &str) -> Result<Option<(UserId, Preferences)>, ApiError> {
    let Some(user) = Links::claimed_user(token) else {
        return Ok(None);
    };
    let prefs = app.service.preferences(&user).await?;
    let bound = match purpose {
        TokenPurpose::VerifyEmail => prefs.email.clone().unwrap_or_default(),
        TokenPurpose::Unsubscribe | TokenPurpose::Calendar | TokenPurpose::StepAction => String::new(),
    };
    Ok(app.links.check(purpose, token, &user, &bound).then_some((user, prefs)))
}

/// The user's calendar-feed link.
#[utoipa::path(get, path = "/api/calendar", tag = "notifications",
    responses((status = 200, body = CalendarLinkBody), (status = 401, body = ErrorBody)))]
pub(crate) async fn calendar_link(State(app): State<App>, AuthUser(user): AuthUser) -> Json<CalendarLinkBody> {
    Json(CalendarLinkBody {
        url: app.links.calendar(&user),
    })
}

/// Confirms an address (the link in the verification email).
#[utoipa::path(get, path = "/api/email/verify", tag = "notifications", params(TokenQuery),
    responses((status = 200, description = "HTML page: confirmed", content_type = "text/html"),
              (status = 404, description = "HTML page: link not valid", content_type = "text/html")))]
pub(crate) async fn verify_email(State(app): State<App>, Params(q): Params<TokenQuery>) -> Result<Response, ApiError> {
    let Some((user, prefs)) = token_user(&app, TokenPurpose::VerifyEmail, &q.token).await? else {
        return Ok(notice(StatusCode::NOT_FOUND, "verify_invalid"));
    };
    // The link is for the address stored when it was checked; a change
    // that lands meanwhile (a new address) is not confirmed by it.
    let address = prefs.email;
    let saved = app
        .service
        .change_preferences(&user, |stored| match stored.email == address {
            true => Ok(Preferences {
                email_verified: true,
                ..stored.clone()
            }),
            false => Err(Refusal::AddressChanged.into()),
        })
        .await;
    match saved {
        Ok(_) => Ok(notice(StatusCode::OK, "email_confirmed")),
        Err(ServiceError::Refused(Refusal::AddressChanged)) => Ok(notice(StatusCode::NOT_FOUND, "verify_invalid")),
        Err(e) => Err(e.into()),
    }
}

/// Asks whether to stop emails (link scanners must not unsubscribe).
#[utoipa::path(get, path = "/api/email/unsubscribe", tag = "notifications", params(TokenQuery),
    responses((status = 200, description = "HTML form", content_type = "text/html"),
              (status = 404, description = "HTML page: link not valid", content_type = "text/html")))]
pub(crate) async fn unsubscribe_page(
    State(app): State<App>,
    Params(q): Params<TokenQuery>,
) -> Result<Response, ApiError> {
    // GET only asks: link scanners open links, and must not unsubscribe.
    match token_user(&app, TokenPurpose::Unsubscribe, &q.token).await? {
        Some(_) => Ok(Html(render("unsubscribe.html", context! {})).into_response()),
        None => Ok(notice(StatusCode::NOT_FOUND, "unsubscribe_invalid")),
    }
}

/// One-click unsubscribe (RFC 8058) and the form above: email off.
#[utoipa::path(post, path = "/api/email/unsubscribe", tag = "notifications", params(TokenQuery),
    responses((status = 200, description = "HTML page: email is off", content_type = "text/html"),
              (status = 404, description = "HTML page: link not valid", content_type = "text/html")))]
pub(crate) async fn unsubscribe(State(app): State<App>, Params(q): Params<TokenQuery>) -> Result<Response, ApiError> {
    match token_user(&app, TokenPurpose::Unsubscribe, &q.token).await? {
        Some((user, _)) => {
            app.service
                .change_preferences(&user, |stored| {
                    let mut prefs = stored.clone();
                    prefs.channels.email = false;
                    Ok(prefs)
                })
                .await?;
            Ok(notice(StatusCode::OK, "unsubscribed"))
        }
        None => Ok(notice(StatusCode::NOT_FOUND, "unsubscribe_invalid")),
    }
}

/// The iCalendar feed of the user's dated steps (the link from
/// `GET /api/calendar`).
#[utoipa::path(get, path = "/api/calendar/{file}", tag = "notifications",
    params(("file" = String, Path, description = "<token>.ics")),
    responses((status = 200, description = "iCalendar", content_type = "text/calendar"), (status = 404, body = ErrorBody)))]
pub(crate) async fn calendar_feed(State(app): State<App>, Path(file): Path<String>) -> Result<Response, ApiError> {
    let Some(token) = file.strip_suffix(".ics") else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "calendar feeds end in .ics",
        ));
    };
    let Some((user, _)) = token_user(&app, TokenPurpose::Calendar, token).await? else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such calendar"));
    };
    let session = app.service.session(&user, crate::plan::Actor::User).await;
    let plans = app.service.plans(&session, true).await?;
    let events = app.service.calendar_events(&session).await?;
    Ok((
        [(header::CONTENT_TYPE, "text/calendar; charset=utf-8")],
        calendar::feed(&user, &plans, &events, &app.mail.domain, app.now()),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_notice_page_is_defined_and_renders() {
        for key in [
            "email_confirmed",
            "verify_invalid",
            "unsubscribed",
            "unsubscribe_invalid",
        ] {
            let n = PAGES.notices.get(key).unwrap_or_else(|| panic!("{key} missing"));
            let html = render("notice.html", context! { title => &n.title, text => &n.text });
            assert!(html.contains(&format!("<h1>{}</h1>", n.title)), "{html}");
        }
        assert!(render("unsubscribe.html", context! {}).contains("<form method=\"post\">"));
    }
}
