//! REST for plans and proposals: the user's plans, one plan, its history,
//! open proposals and confirming them, and the conversation as shown. The same authentication as `/ws`;
//! another user's ids are simply not found. Every handler is described
//! for the OpenAPI document (`/api/openapi.json`).

use super::api::{ApiError, user_of};
use super::auth::AuthQuery;
use crate::app::App;
use crate::conversation::thread::{self, ThreadItem};
use crate::plan::{HistoryEntry, Plan, PlanId, PlanStatus};
use crate::proposal::ProposalView;
use crate::proposals::{self, Decision};
use crate::tools::ToolError;
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PlansBody {
    pub plans: Vec<Plan>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HistoryBody {
    /// Newest first.
    pub history: Vec<HistoryEntry>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProposalsBody {
    pub proposals: Vec<ProposalView>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmBody {
    pub accept: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DecisionBody {
    /// `accepted`, `declined` or `stale`.
    pub outcome: String,
    pub proposal: ProposalView,
    /// The plan after an accepted change, or as it is now after a stale one.
    pub plan: Option<Plan>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct PlansQuery {
    /// Also list done and cancelled plans.
    #[serde(default)]
    pub include_closed: bool,
}

fn not_found(what: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
}

fn plan_id(text: &str) -> Result<PlanId, ApiError> {
    PlanId::parse(text).ok_or_else(|| ApiError::bad("invalid_field", format!("`{text}` is not a plan id (p1, p2, …)")))
}

/// The user's plans (active ones unless `include_closed`), oldest first.
#[utoipa::path(get, path = "/api/plans", tag = "plans", params(PlansQuery),
    responses((status = 200, body = PlansBody), (status = 401, body = super::api::ErrorBody)))]
pub async fn list_plans(
    State(app): State<App>,
    Query(auth): Query<AuthQuery>,
    Query(q): Query<PlansQuery>,
    headers: HeaderMap,
) -> Response {
    let user = match user_of(&app, &headers, &auth).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    match app.store.list_plans(&user).await {
        Ok(plans) => Json(PlansBody {
            plans: plans
                .into_iter()
                .filter(|p| q.include_closed || p.status == PlanStatus::Active)
                .collect(),
        })
        .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// One of the user's plans.
#[utoipa::path(get, path = "/api/plans/{id}", tag = "plans",
    params(("id" = String, Path, description = "plan id, e.g. p1")),
    responses((status = 200, body = Plan), (status = 400, body = super::api::ErrorBody), (status = 404, body = super::api::ErrorBody)))]
pub async fn get_plan(
    State(app): State<App>,
    Query(auth): Query<AuthQuery>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let user = match user_of(&app, &headers, &auth).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let result = async {
        let id = plan_id(&id)?;
        app.store.get_plan(&user, id).await?.ok_or_else(|| not_found("plan"))
    }
    .await;
    match result {
        Ok(plan) => Json(plan).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Who changed what in a plan, and why; newest first (at most 200).
#[utoipa::path(get, path = "/api/plans/{id}/history", tag = "plans",
    params(("id" = String, Path, description = "plan id, e.g. p1")),
    responses((status = 200, body = HistoryBody), (status = 404, body = super::api::ErrorBody)))]
pub async fn plan_history(
    State(app): State<App>,
    Query(auth): Query<AuthQuery>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let user = match user_of(&app, &headers, &auth).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let result = async {
        let id = plan_id(&id)?;
        if app.store.get_plan(&user, id).await?.is_none() {
            return Err(not_found("plan"));
        }
        Ok(app.store.history(&user, id, 200).await?)
    }
    .await;
    match result {
        Ok(history) => Json(HistoryBody { history }).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Changes waiting for the user's yes or no.
#[utoipa::path(get, path = "/api/proposals", tag = "proposals",
    responses((status = 200, body = ProposalsBody), (status = 401, body = super::api::ErrorBody)))]
pub async fn open_proposals(State(app): State<App>, Query(auth): Query<AuthQuery>, headers: HeaderMap) -> Response {
    let user = match user_of(&app, &headers, &auth).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    match app.store.open_proposals(&user).await {
        Ok(list) => Json(ProposalsBody {
            proposals: list.iter().map(|p| p.view()).collect(),
        })
        .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// Accepts or declines a proposal, exactly like the widget's buttons; a
/// proposal made against an older version of its plan is refused (409)
/// with the plan as it is now.
#[utoipa::path(post, path = "/api/proposals/{id}/confirm", tag = "proposals",
    params(("id" = String, Path, description = "proposal id, e.g. r1")),
    request_body = ConfirmBody,
    responses((status = 200, body = DecisionBody), (status = 404, body = super::api::ErrorBody),
              (status = 409, description = "stale or already decided", body = DecisionBody)))]
pub async fn confirm_proposal(
    State(app): State<App>,
    Query(auth): Query<AuthQuery>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Json<ConfirmBody>, JsonRejection>,
) -> Response {
    let user = match user_of(&app, &headers, &auth).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let Json(body) = match body {
        Ok(b) => b,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let ctx = app.tool_context(&user, crate::plan::Actor::User).await;
    let decided = |status, outcome: &str, proposal: &crate::proposal::Proposal, plan: Option<Plan>| {
        (
            status,
            Json(DecisionBody {
                outcome: outcome.into(),
                proposal: proposal.view(),
                plan,
            }),
        )
            .into_response()
    };
    match proposals::decide(&ctx, Some(&id), body.accept).await {
        Ok(Decision::Applied { proposal, plan }) => decided(StatusCode::OK, "accepted", &proposal, Some(plan)),
        Ok(Decision::Declined { proposal }) => decided(StatusCode::OK, "declined", &proposal, None),
        Ok(Decision::Stale { proposal, current }) => decided(StatusCode::CONFLICT, "stale", &proposal, current),
        Ok(Decision::AlreadyDecided { proposal }) => decided(StatusCode::CONFLICT, "already_decided", &proposal, None),
        Ok(Decision::NotFound | Decision::NothingOpen) => not_found("proposal").into_response(),
        Err(ToolError::Invalid { message, .. }) => ApiError::bad("invalid_field", message).into_response(),
        Err(ToolError::Fatal(e)) => ApiError::from(e).into_response(),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ConversationQuery {
    /// How many stored transcript entries to read (default 200, at most 1000).
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConversationBody {
    /// Oldest first: messages, where plans and proposals were shown, and
    /// notifications.
    pub items: Vec<ThreadItem>,
    /// Every plan the items refer to, as it is now.
    pub plans: Vec<Plan>,
    /// Every proposal the items refer to, as it is now (open, accepted, …).
    pub proposals: Vec<ProposalView>,
    /// A turn of this user's is running: an answer may still be on its way.
    pub busy: bool,
}

/// The conversation as the widget shows it, so a reload (or another device)
/// shows the same thread: messages, plan cards, proposals and notifications.
#[utoipa::path(get, path = "/api/conversation", tag = "conversation", params(ConversationQuery),
    responses((status = 200, body = ConversationBody), (status = 400, body = super::api::ErrorBody),
              (status = 401, body = super::api::ErrorBody)))]
pub async fn conversation(
    State(app): State<App>,
    Query(auth): Query<AuthQuery>,
    Query(q): Query<ConversationQuery>,
    headers: HeaderMap,
) -> Response {
    let user = match user_of(&app, &headers, &auth).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let limit = q.limit.unwrap_or(200);
    if !(1..=1000).contains(&limit) {
        return ApiError::bad("invalid_field", "`limit` must be between 1 and 1000").into_response();
    }
    let result: Result<ConversationBody, ApiError> = async {
        let entries = app.store.recent_messages(&user, limit).await?;
        let items = thread::thread(&entries);
        // Notifications older than the transcript window belong to older
        // parts of the conversation and stay out, like those parts.
        let since = if entries.len() < limit {
            None
        } else {
            entries.first().map(|e| e.at)
        };
        let notifications = app
            .store
            .recent_notifications(&user, 100)
            .await?
            .iter()
            .filter(|n| since.is_none_or(|s| n.created_at >= s))
            .map(|n| n.view())
            .collect();
        let items = thread::merge_notifications(items, notifications);
        // The proposals the thread shows, as they are now, and the plans it
        // shows or those proposals made (one read of the user's plans).
        let mut proposals: Vec<ProposalView> = Vec::new();
        let mut wanted: Vec<PlanId> = Vec::new();
        for item in &items {
            match item {
                ThreadItem::Plan { plan_id, .. } => wanted.extend(PlanId::parse(plan_id)),
                ThreadItem::Proposal { proposal_id, .. } if !proposals.iter().any(|p| &p.id == proposal_id) => {
                    if let Some(proposal) = app.store.get_proposal(&user, proposal_id).await? {
                        wanted.extend(proposal.plan_id);
                        proposals.push(proposal.view());
                    }
                }
                _ => {}
            }
        }
        let plans = if wanted.is_empty() {
            Vec::new()
        } else {
            app.store
                .list_plans(&user)
                .await?
                .into_iter()
                .filter(|p| wanted.contains(&p.id))
                .collect()
        };
        Ok(ConversationBody {
            items,
            plans,
            proposals,
            busy: app.hub.turn_running(&user),
        })
    }
    .await;
    match result {
        Ok(body) => Json(body).into_response(),
        Err(e) => e.into_response(),
    }
}
