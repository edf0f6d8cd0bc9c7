//! REST for preferences: time zone, email (and whether verified), quiet
//! hours, digest schedule, channels, the calendar link and the push key.

use super::error::{ApiError, ErrorBody};
use super::extract::{AuthUser, Body};
use crate::app::App;
use crate::plan::Actor;
use crate::preferences::{Channels, DigestBody, Preferences, QuietHoursBody, Update};
use crate::user::UserId;
use axum::Json;
use axum::extract::State;
use serde::Serialize;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct PreferencesView {
    time_zone: String,
    email: Option<String>,
    email_verified: bool,
    quiet_hours: Option<QuietHoursBody>,
    digest: DigestBody,
    channels: Channels,
    calendar_url: String,
    push_public_key: Option<String>,
}

fn view(app: &App, user: &UserId, prefs: &Preferences) -> PreferencesView {
    PreferencesView {
        time_zone: app.service.tz_of(prefs).name().to_owned(),
        email: prefs.email.clone(),
        email_verified: prefs.email_verified,
        quiet_hours: prefs.quiet_hours.map(|q| QuietHoursBody {
            start: q.start.format("%H:%M").to_string(),
            end: q.end.format("%H:%M").to_string(),
        }),
        digest: DigestBody {
            frequency: prefs.digest.frequency,
            weekday: prefs.digest.weekday.map(|w| w.to_string().to_lowercase()),
            time: Some(prefs.digest.time.format("%H:%M").to_string()),
        },
        channels: prefs.channels,
        calendar_url: app.links.calendar(user),
        push_public_key: app.pusher.as_ref().map(|p| p.public_key()),
    }
}

/// The user's preferences, calendar link and web-push key.
#[utoipa::path(get, path = "/api/preferences", tag = "preferences",
    responses((status = 200, body = PreferencesView), (status = 401, body = ErrorBody)))]
pub(crate) async fn get_preferences(
    State(app): State<App>,
    AuthUser(user): AuthUser,
) -> Result<Json<PreferencesView>, ApiError> {
    let prefs = app.service.preferences(&user).await?;
    Ok(Json(view(&app, &user, &prefs)))
}

/// Changes preferences; absent fields stay, `null` clears email or quiet
/// hours; the whole update is checked before anything changes. A new
/// address gets a verification email and receives nothing else until its
/// link is opened. At most one verification email goes out per user per
/// ten minutes: a new address within that time is refused with 429
/// (`verification_rate_limited`, nothing changed); the address that email
/// went to is accepted without another email (its link still works).
#[utoipa::path(put, path = "/api/preferences", tag = "preferences", request_body = Update,
    responses((status = 200, body = PreferencesView), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody),
              (status = 429, description = "`verification_rate_limited`: a verification email went to another address \
                                            less than ten minutes ago; nothing was changed", body = ErrorBody,
               headers(("retry-after" = u64, description = "Seconds until a verification email may be sent")))))]
pub(crate) async fn put_preferences(
    State(app): State<App>,
    AuthUser(user): AuthUser,
    Body(update): Body<Update>,
) -> Result<Json<PreferencesView>, ApiError> {
    let session = app.service.session(&user, Actor::User).await;
    let saved = app.service.update_preferences(&session, update).await?;
    Ok(Json(view(&app, &user, &saved.prefs)))
}
