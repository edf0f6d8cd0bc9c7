//! REST for proposals: the open ones, and answering one exactly like the
//! widget's buttons.

use super::error::{ApiError, ErrorBody};
use super::extract::{AuthUser, Body};
use crate::app::App;
use crate::plan::{Actor, Plan};
use crate::proposal::{Proposal, ProposalView};
use crate::service::Decision;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ProposalsBody {
    pub(crate) proposals: Vec<ProposalView>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfirmBody {
    pub(crate) accept: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct DecisionBody {
    /// `accepted`, `declined`, `stale` or `already_decided`.
    pub(crate) outcome: String,
    pub(crate) proposal: ProposalView,
    /// The plan after an accepted change, or as it is now after a stale one.
    pub(crate) plan: Option<Plan>,
}

/// Changes waiting for the user's yes or no.
#[utoipa::path(get, path = "/api/proposals", tag = "proposals",
    responses((status = 200, body = ProposalsBody), (status = 401, body = ErrorBody)))]
pub(crate) async fn open_proposals(
    State(app): State<App>,
    AuthUser(user): AuthUser,
) -> Result<Json<ProposalsBody>, ApiError> {
    let session = app.service.session(&user, Actor::User).await;
    let open = app.service.open_proposals(&session).await?;
    Ok(Json(ProposalsBody {
        proposals: open.iter().map(Proposal::view).collect(),
    }))
}

/// Accepts or declines a proposal, exactly like the widget's buttons; a
/// proposal made against an older version of its plan is refused (409)
/// with the plan as it is now.
#[utoipa::path(post, path = "/api/proposals/{id}/confirm", tag = "proposals",
    params(("id" = String, Path, description = "proposal id, e.g. r1")),
    request_body = ConfirmBody,
    responses((status = 200, body = DecisionBody), (status = 404, body = ErrorBody),
              (status = 409, description = "stale or already decided", body = DecisionBody)))]
pub(crate) async fn confirm_proposal(
    State(app): State<App>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
    Body(body): Body<ConfirmBody>,
) -> Result<(StatusCode, Json<DecisionBody>), ApiError> {
    let session = app.service.session(&user, Actor::User).await;
    let decided = |status, outcome: &str, proposal: &Proposal, plan: Option<Plan>| {
        let body = DecisionBody {
            outcome: outcome.into(),
            proposal: proposal.view(),
            plan,
        };
        Ok((status, Json(body)))
    };
    match app.service.decide(&session, Some(&id), body.accept).await? {
        Decision::Applied { proposal, plan, .. } => decided(StatusCode::OK, "accepted", &proposal, Some(plan)),
        Decision::Declined { proposal } => decided(StatusCode::OK, "declined", &proposal, None),
        Decision::Stale { proposal, current } => decided(StatusCode::CONFLICT, "stale", &proposal, current),
        Decision::AlreadyDecided { proposal } => decided(StatusCode::CONFLICT, "already_decided", &proposal, None),
        Decision::NotFound | Decision::NothingOpen => Err(ApiError::not_found("proposal")),
    }
}
