//! REST for plans: the user's plans, one plan, its history. Another
//! user's ids are simply not found.

use super::error::{ApiError, ErrorBody};
use super::extract::{AuthUser, Params};
use crate::app::App;
use crate::plan::{Actor, HistoryEntry, Plan, PlanId};
use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};

/// History entries a request returns at most.
const MAX_HISTORY: usize = 200;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct PlansBody {
    pub(crate) plans: Vec<Plan>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct HistoryBody {
    /// Newest first.
    pub(crate) history: Vec<HistoryEntry>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(crate) struct PlansQuery {
    /// Also list done and cancelled plans.
    #[serde(default)]
    pub(crate) include_closed: bool,
}

fn plan_id(text: &str) -> Result<PlanId, ApiError> {
    PlanId::parse(text).ok_or_else(|| ApiError::bad("invalid_field", format!("`{text}` is not a plan id (p1, p2, …)")))
}

/// The user's plans (active ones unless `include_closed`), oldest first.
#[utoipa::path(get, path = "/api/plans", tag = "plans", params(PlansQuery),
    responses((status = 200, body = PlansBody), (status = 401, body = ErrorBody)))]
pub(crate) async fn list_plans(
    State(app): State<App>,
    AuthUser(user): AuthUser,
    Params(q): Params<PlansQuery>,
) -> Result<Json<PlansBody>, ApiError> {
    let session = app.service.session(&user, Actor::User).await;
    let plans = app.service.plans(&session, q.include_closed).await?;
    Ok(Json(PlansBody { plans }))
}

/// One of the user's plans.
#[utoipa::path(get, path = "/api/plans/{id}", tag = "plans",
    params(("id" = String, Path, description = "plan id, e.g. p1")),
    responses((status = 200, body = Plan), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_plan(
    State(app): State<App>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> Result<Json<Plan>, ApiError> {
    let id = plan_id(&id)?;
    let session = app.service.session(&user, Actor::User).await;
    Ok(Json(app.service.plan(&session, id).await?))
}

/// Who changed what in a plan, and why; newest first (at most 200).
#[utoipa::path(get, path = "/api/plans/{id}/history", tag = "plans",
    params(("id" = String, Path, description = "plan id, e.g. p1")),
    responses((status = 200, body = HistoryBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn plan_history(
    State(app): State<App>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> Result<Json<HistoryBody>, ApiError> {
    let id = plan_id(&id)?;
    let session = app.service.session(&user, Actor::User).await;
    let (_, history) = app.service.history(&session, id, MAX_HISTORY).await?;
    Ok(Json(HistoryBody { history }))
}
