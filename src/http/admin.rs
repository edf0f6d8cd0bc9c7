//! The operator's endpoints, behind `admin_token` (a bearer token):
//! `/metrics` in Prometheus text (open in dev mode when no token is set),
//! and the admin API — a user's plans, one plan with its history, the
//! stalled tool steps, and retrying or cancelling a failed step. Changes go
//! through the plan service under the same rules as the user's, recorded as
//! the operator's.

use super::error::ApiError;
use super::plans::PlansBody;
use crate::app::App;
use crate::execution::Attempt;
use crate::plan::{HistoryEntry, Op, Plan, PlanId, StepStatus};
use crate::service::Applied;
use crate::store::StoreError;
use crate::user::UserId;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Open attempts read for the stalled list.
const STALLED_SCAN: usize = 10_000;

/// Whether the request carries the operator's token. Both sides are
/// hashed first, so the comparison takes the same time whatever matches.
fn require(app: &App, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = &app.config.admin_token else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "admin_off",
            "the admin API is off: set STEWARD_ADMIN_TOKEN (admin_token in steward.toml) to turn it on",
        ));
    };
    let given = super::auth::bearer(headers).unwrap_or_default();
    if Sha256::digest(given.as_bytes()) != Sha256::digest(token.expose_secret().as_bytes()) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send the operator token as `Authorization: Bearer <admin_token>`",
        ));
    }
    Ok(())
}

/// `GET /metrics`: every series in Prometheus text. Needs the operator
/// token when one is set; without one, it answers only in dev mode.
pub(crate) async fn metrics(State(app): State<App>, headers: HeaderMap) -> Result<Response, ApiError> {
    if app.config.admin_token.is_some() || !app.config.dev_mode() {
        require(&app, &headers)?;
    }
    sample(&app).await;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.render(),
    )
        .into_response())
}

/// Sets the gauges read at scrape time: the sockets' queues and the
/// outbox. A store that cannot answer leaves the outbox gauges as they were
/// (and says why in the log); `/readyz` reports the store itself.
async fn sample(app: &App) {
    let m = &app.metrics;
    let (queued, fullest) = app.hub.queued_frames();
    m.outbound_frames_queued.set(i64::try_from(queued).unwrap_or(i64::MAX));
    m.outbound_queue_fullest.set(i64::try_from(fullest).unwrap_or(i64::MAX));
    match app.store.outbox_backlog().await {
        Ok(backlog) => {
            m.outbox_open.set(i64::try_from(backlog.open).unwrap_or(i64::MAX));
            let age = backlog.oldest.map_or(0, |t| (app.now() - t).num_seconds().max(0));
            m.outbox_oldest_seconds.set(age);
        }
        Err(e) => tracing::warn!(error = %e, "could not read the outbox for /metrics"),
    }
}

fn user(name: &str) -> Result<UserId, ApiError> {
    UserId::parse(name).map_err(|e| ApiError::bad("invalid_user", e.to_string()))
}

fn plan_id(text: &str) -> Result<PlanId, ApiError> {
    PlanId::parse(text).ok_or_else(|| {
        ApiError::bad(
            "invalid_plan",
            format!("`{text}` is not a plan id (expected p<number>, e.g. p1)"),
        )
    })
}

/// `GET /admin/users/{user}/plans`: every plan of the user, closed ones too.
pub(crate) async fn plans(
    State(app): State<App>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<PlansBody>, ApiError> {
    require(&app, &headers)?;
    let plans = app.store.list_plans(&user(&name)?).await?;
    Ok(Json(PlansBody { plans }))
}

#[derive(Serialize)]
pub(crate) struct PlanBody {
    plan: Plan,
    history: Vec<HistoryEntry>,
}

/// `GET /admin/users/{user}/plans/{plan}`: the plan and its whole history.
pub(crate) async fn plan(
    State(app): State<App>,
    headers: HeaderMap,
    Path((name, id)): Path<(String, String)>,
) -> Result<Json<PlanBody>, ApiError> {
    require(&app, &headers)?;
    let (user, id) = (user(&name)?, plan_id(&id)?);
    let plan = app
        .store
        .get_plan(&user, id)
        .await?
        .ok_or_else(|| ApiError::not_found("plan"))?;
    let history = app.store.history(&user, id, 10_000).await?;
    Ok(Json(PlanBody { plan, history }))
}

#[derive(Serialize)]
pub(crate) struct StalledBody {
    /// Tool steps running or waiting to retry for longer than
    /// `engine.stall_after_secs`, oldest first.
    stalled: Vec<Attempt>,
    /// Steps a person works on that have been in progress that long.
    in_progress: Vec<HumanStep>,
}

#[derive(Serialize)]
pub(crate) struct HumanStep {
    user: UserId,
    plan_id: PlanId,
    step_id: String,
    title: String,
    since: chrono::DateTime<chrono::Utc>,
}

/// History entries read per plan to find when a step was started.
const HISTORY_SCAN: usize = 500;

/// Steps without a tool in progress since before `threshold`, across
/// users (a scan of every plan: an operator's request, not a hot path).
async fn human_steps_in_progress(
    app: &App,
    threshold: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<HumanStep>, StoreError> {
    let mut out = Vec::new();
    for user in app.store.users().await? {
        for plan in app.store.list_plans(&user).await? {
            let started: Vec<&crate::plan::Step> = plan
                .steps
                .iter()
                .filter(|s| s.status == StepStatus::InProgress && s.tool.is_none())
                .collect();
            if started.is_empty() || plan.created_at > threshold {
                continue;
            }
            let history = app.store.history(&user, plan.id, HISTORY_SCAN).await?;
            for step in started {
                let since = history.iter().find_map(|h| {
                    h.changes
                        .iter()
                        .any(|c| matches!(c, crate::plan::Change::StepStatus { step: s, to: StepStatus::InProgress, .. } if s == &step.id))
                        .then_some(h.at)
                });
                let since = since.unwrap_or(plan.created_at);
                if since <= threshold {
                    out.push(HumanStep {
                        user: user.clone(),
                        plan_id: plan.id,
                        step_id: step.id.clone(),
                        title: step.title.clone(),
                        since,
                    });
                }
            }
        }
    }
    out.sort_by_key(|s| s.since);
    Ok(out)
}

/// The open attempts older than the stall threshold.
async fn stalled_attempts(app: &App, threshold: DateTime<Utc>) -> Result<Vec<Attempt>, StoreError> {
    let mut stalled: Vec<Attempt> = app
        .store
        .open_attempts(STALLED_SCAN)
        .await?
        .into_iter()
        .filter(|a| a.stalled(threshold))
        .collect();
    stalled.sort_by_key(|a| a.created_at);
    Ok(stalled)
}

/// `GET /admin/steps/stalled`.
pub(crate) async fn stalled(State(app): State<App>, headers: HeaderMap) -> Result<Json<StalledBody>, ApiError> {
    require(&app, &headers)?;
    let threshold = app.config.engine.stall_threshold(app.now());
    Ok(Json(StalledBody {
        stalled: stalled_attempts(&app, threshold).await?,
        in_progress: human_steps_in_progress(&app, threshold).await?,
    }))
}

/// `POST /admin/users/{user}/plans/{plan}/steps/{step}/{retry|cancel}`:
/// a failed step back to pending (it runs again, in a new attempt epoch)
/// or cancelled. Answers the plan as it is now.
pub(crate) async fn act(
    State(app): State<App>,
    headers: HeaderMap,
    Path((name, id, step, action)): Path<(String, String, String, String)>,
) -> Result<Json<Plan>, ApiError> {
    require(&app, &headers)?;
    let (user, id) = (user(&name)?, plan_id(&id)?);
    let to = match action.as_str() {
        "retry" => StepStatus::Pending,
        "cancel" => StepStatus::Cancelled,
        _ => return Err(ApiError::not_found("action (retry or cancel)")),
    };
    let current = app
        .store
        .get_plan(&user, id)
        .await?
        .ok_or_else(|| ApiError::not_found("plan"))?;
    match current.step(&step).map(|s| s.status) {
        None => return Err(ApiError::not_found("step")),
        Some(StepStatus::Failed) => {}
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "not_failed",
                format!("step `{step}` is {other}; only a failed step is retried or cancelled here"),
            ));
        }
    }
    let why = format!("the operator chose to {action} it");
    let applied = app
        .service
        .operator_change(&user, id, &why, |p: &Plan| {
            (p.step(&step)?.status == StepStatus::Failed).then(|| {
                vec![Op::SetStatus {
                    step: step.clone(),
                    status: to,
                    result: None,
                }]
            })
        })
        .await?;
    match applied {
        Some(Applied::Changed { plan, .. } | Applied::Unchanged { plan }) => Ok(Json(plan)),
        Some(Applied::Proposed { .. }) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "needs_confirmation",
            "the change waits for the user's yes (a proposal was sent to them)",
        )),
        None => Err(ApiError::new(
            StatusCode::CONFLICT,
            "changed",
            "the step is no longer failed",
        )),
    }
}

/// `GET /readyz`: 200 when the store takes a flushed write, the
/// background workers run (with `background` on) and, with several
/// instances on a database, this one hears the others; else 503 naming
/// what is not ready. Open: it says nothing about anyone's data.
pub(crate) async fn ready(State(app): State<App>) -> Response {
    use std::sync::atomic::Ordering::SeqCst;
    let store = match app.store.probe().await {
        Ok(()) => "ok".to_owned(),
        Err(e) => {
            tracing::error!(error = %e, "readiness probe: the store does not take writes");
            format!("failing: {e}")
        }
    };
    let background = app.config.background;
    let state = |running: bool, wanted: bool| match (wanted, running) {
        (false, _) => "off",
        (true, true) => "running",
        (true, false) => "stopped",
    };
    let w = &app.workers;
    let mut body = serde_json::json!({
        "store": store,
        "scheduler": state(w.scheduler.load(SeqCst), background),
        "notifier": state(w.notifier.load(SeqCst), background),
        "engine": state(w.engine.load(SeqCst), background && app.config.engine.enabled),
    });
    let mut ready = store == "ok" && !body.as_object().is_some_and(|o| o.values().any(|v| v == "stopped"));
    if let Some((instances, listening)) = app.cluster() {
        body["instances"] = instances.into();
        body["bus"] = if listening { "listening" } else { "reconnecting" }.into();
        ready &= listening;
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;
    use std::sync::atomic::Ordering::SeqCst;

    async fn readiness(app: &App) -> (StatusCode, serde_json::Value) {
        let response = ready(State(app.clone())).await;
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }

    async fn app_with_token(token: Option<&str>) -> (tempfile::TempDir, App) {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_owned(),
            admin_token: token.map(|t| t.to_owned().into()),
            ..Config::default()
        };
        let app = App::builder(config).build().await.unwrap();
        (dir, app)
    }

    fn bearer(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
        headers
    }

    /// Off without a token; with one, only that token gets in; an unknown
    /// action is not found.
    #[tokio::test]
    async fn the_admin_api_is_off_without_a_token_and_shut_to_a_wrong_one() {
        let status =
            |r: Result<Json<PlansBody>, ApiError>| r.map_or_else(|e| e.into_response().status(), |_| StatusCode::OK);
        let (_dir, off) = app_with_token(None).await;
        let listed = plans(State(off), bearer("anything"), Path("ana".into())).await;
        assert_eq!(status(listed), StatusCode::NOT_FOUND);
        let token = "an-operator-token-of-thirty-two-chars";
        let (_dir, on) = app_with_token(Some(token)).await;
        let wrong = plans(
            State(on.clone()),
            bearer("an-operator-token-of-thirty-two-charz"),
            Path("ana".into()),
        )
        .await;
        assert_eq!(status(wrong), StatusCode::UNAUTHORIZED);
        let none = plans(State(on.clone()), HeaderMap::new(), Path("ana".into())).await;
        assert_eq!(status(none), StatusCode::UNAUTHORIZED);
        let right = plans(State(on.clone()), bearer(token), Path("ana".into())).await;
        assert_eq!(status(right), StatusCode::OK);
        let place = ("ana".into(), "p1".into(), "a".into(), "explode".into());
        let unknown = act(State(on), bearer(token), Path(place)).await;
        assert_eq!(
            unknown.map_or_else(|e| e.into_response().status(), |_| StatusCode::OK),
            StatusCode::NOT_FOUND
        );
    }

    /// A worker that stopped makes the instance not ready, and says which.
    #[tokio::test]
    async fn readiness_is_refused_while_a_background_worker_is_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_owned(),
            background: true,
            ..Config::default()
        };
        let app = App::builder(config).build().await.unwrap();
        // Built, background never started: every worker is stopped.
        let (status, body) = readiness(&app).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["store"], "ok");
        assert_eq!(body["scheduler"], "stopped");
        let w = &app.workers;
        for flag in [&w.scheduler, &w.notifier, &w.engine] {
            flag.store(true, SeqCst);
        }
        assert_eq!(readiness(&app).await.0, StatusCode::OK);
        w.engine.store(false, SeqCst);
        let (status, body) = readiness(&app).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["engine"], "stopped");
        assert_eq!(body["notifier"], "running");
    }
}
