//! `GET /api/conversation`: the conversation as the widget shows it, so a
//! reload (or another device) shows the same thread.

use super::error::{ApiError, ErrorBody};
use super::extract::{AuthUser, Params};
use crate::app::App;
use crate::conversation::thread::{self, ThreadItem};
use crate::plan::{Actor, Plan, PlanId};
use crate::proposal::ProposalView;
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

/// Notifications looked at for the thread.
const NOTIFICATIONS: usize = 100;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(crate) struct ConversationQuery {
    /// How many stored transcript entries to read (default 200, at most 1000).
    pub(crate) limit: Option<usize>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ConversationBody {
    /// Oldest first: messages, where plans and proposals were shown, and
    /// notifications.
    pub(crate) items: Vec<ThreadItem>,
    /// Every plan the items refer to, as it is now.
    pub(crate) plans: Vec<Plan>,
    /// Every proposal the items refer to, as it is now (open, accepted, …).
    pub(crate) proposals: Vec<ProposalView>,
    /// A turn of this user's is running: an answer may still be on its way.
    pub(crate) busy: bool,
}

/// The conversation as the widget shows it, so a reload (or another device)
/// shows the same thread: messages, plan cards, proposals and notifications.
#[utoipa::path(get, path = "/api/conversation", tag = "conversation", params(ConversationQuery),
    responses((status = 200, body = ConversationBody), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody)))]
pub(crate) async fn conversation(
    State(app): State<App>,
    AuthUser(user): AuthUser,
    Params(q): Params<ConversationQuery>,
) -> Result<Json<ConversationBody>, ApiError> {
    let limit = q.limit.unwrap_or(200);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad("invalid_field", "`limit` must be between 1 and 1000"));
    }
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
        .recent_notifications(&user, NOTIFICATIONS)
        .await?
        .iter()
        .filter(|n| since.is_none_or(|s| n.created_at >= s))
        .map(|n| n.view())
        .collect();
    let items = thread::merge_notifications(items, notifications);
    // The proposals the thread shows, as they are now, and the plans it
    // shows or those proposals made (one read of the user's plans).
    let session = app.service.session(&user, Actor::User).await;
    let mut proposals: Vec<ProposalView> = Vec::new();
    let mut wanted: Vec<PlanId> = Vec::new();
    for item in &items {
        match item {
            ThreadItem::Plan { plan_id, .. } => wanted.extend(PlanId::parse(plan_id)),
            ThreadItem::Proposal { proposal_id, .. } if !proposals.iter().any(|p| &p.id == proposal_id) => {
                if let Some(proposal) = app.service.proposal(&session, proposal_id).await? {
                    wanted.extend(proposal.plan_id);
                    proposals.push(proposal.view());
                }
            }
            ThreadItem::Proposal { .. }
            | ThreadItem::User { .. }
            | ThreadItem::Assistant { .. }
            | ThreadItem::Notification { .. } => {}
        }
    }
    let plans = if wanted.is_empty() {
        Vec::new()
    } else {
        let mut all = app.service.plans(&session, true).await?;
        all.retain(|p| wanted.contains(&p.id));
        all
    };
    Ok(Json(ConversationBody {
        items,
        plans,
        proposals,
        busy: app.hub.turn_running(&user),
    }))
}
