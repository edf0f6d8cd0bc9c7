//! The one-click actions a notification about a step carries (in its
//! email and as web-push buttons): "done" and "snooze a day". The link is
//! signed for its user, its step and the step's state when it was sent;
//! opening it shows what it will do (`GET`, which mail scanners fetch and
//! which changes nothing), the button acts (`POST`) through the plan
//! service under the same rules as the chat, and the page then shows the
//! plan as it is now. A link used twice, after the step changed, or with
//! another user's name acts at most once and says what happened.

use super::error::ApiError;
use super::extract::Params;
use super::links::{TokenQuery, render};
use crate::app::App;
use crate::channels::links::{Links, StepAction};
use crate::plan::{Actor, Op, Plan, PlanId, StepStatus, render as plan_render};
use crate::service::{Applied, PlanChange, ServiceError, Session};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use minijinja::context;
use serde::Serialize;

type Place = (String, String, String, String);

#[derive(Serialize)]
struct StepView {
    mark: &'static str,
    title: String,
    due: Option<String>,
}

#[derive(Serialize)]
struct PlanView {
    title: String,
    steps: Vec<StepView>,
}

fn view(plan: &Plan, s: &Session, app: &App) -> PlanView {
    let now = app.now().with_timezone(&s.tz);
    PlanView {
        title: plan.title.clone(),
        steps: plan
            .steps
            .iter()
            .map(|step| StepView {
                mark: match step.status {
                    StepStatus::Completed => "✓",
                    StepStatus::Cancelled => "✗",
                    StepStatus::InProgress => "…",
                    StepStatus::Failed => "!",
                    StepStatus::Pending => "○",
                },
                title: step.title.clone(),
                due: step.due_at.map(|d| plan_render::day(d, now)),
            })
            .collect(),
    }
}

fn page(
    app: &App,
    status: StatusCode,
    heading: &str,
    message: &str,
    ask: Option<&str>,
    plan: Option<PlanView>,
) -> Response {
    let html = render(
        "step.html",
        context! { heading, message, ask, plan => minijinja::value::Serde(plan), widget_url => app.links.widget() },
    );
    (status, Html(html)).into_response()
}

fn invalid(app: &App) -> Response {
    page(
        app,
        StatusCode::NOT_FOUND,
        "Link not valid",
        "This link is not valid: it may have been changed, or it belongs to someone else.",
        None,
        None,
    )
}

/// The checked link: its user's session, the action, the plan as it is
/// now and the step's id and state the link was made for.
struct Checked {
    session: Session,
    action: StepAction,
    plan: Plan,
    step: String,
    state: String,
}

async fn check(app: &App, (action, plan, step, state): Place, token: &str) -> Result<Option<Checked>, ApiError> {
    let (Some(action), Some(user)) = (StepAction::parse(&action), Links::claimed_user(token)) else {
        return Ok(None);
    };
    if !app
        .links
        .check_step_action(token, &user, (&plan, &step, action, &state))
    {
        return Ok(None);
    }
    let Some(id) = PlanId::parse(&plan) else {
        return Ok(None);
    };
    let session = app.service.session(&user, Actor::User).await;
    let Some(plan) = app.store.get_plan(&user, id).await? else {
        return Ok(None);
    };
    Ok(Some(Checked {
        session,
        action,
        plan,
        step,
        state,
    }))
}

/// What the link does, in words, for the step titled `title`.
fn question(action: StepAction, title: &str) -> (String, &'static str) {
    match action {
        StepAction::Done => (format!("Mark “{title}” done?"), "Mark it done"),
        StepAction::Snooze => (format!("Move “{title}” a day later?"), "Snooze a day"),
    }
}

/// Says what the step is now, when it is no longer as the link knew it.
fn moved_on(app: &App, c: &Checked) -> Option<Response> {
    let step = c.plan.step(&c.step)?;
    if step.state_tag() == c.state {
        return None;
    }
    let now = app.now().with_timezone(&c.session.tz);
    let what = match (step.status, step.due_at) {
        (StepStatus::Completed, _) => "it is already done".to_owned(),
        (StepStatus::Cancelled, _) => "it was skipped".to_owned(),
        (_, Some(due)) => format!("it is {} and due {}", step.status, plan_render::day(due, now)),
        (_, None) => format!("it is {}", step.status),
    };
    let message = format!(
        "“{}” changed since this link was sent: {what}. Nothing was changed.",
        step.title
    );
    Some(page(
        app,
        StatusCode::OK,
        "Already taken care of",
        &message,
        None,
        Some(view(&c.plan, &c.session, app)),
    ))
}

/// The checked link and its step as it is now, or the page that says why
/// the link does nothing (not valid, or the step moved on).
async fn usable(
    app: &App,
    place: Place,
    token: &str,
) -> Result<Result<(Checked, crate::plan::Step), Response>, ApiError> {
    let Some(c) = check(app, place, token).await? else {
        return Ok(Err(invalid(app)));
    };
    if let Some(changed) = moved_on(app, &c) {
        return Ok(Err(changed));
    }
    match c.plan.step(&c.step).cloned() {
        Some(step) => Ok(Ok((c, step))),
        None => Ok(Err(invalid(app))),
    }
}

/// `GET /act/{action}/{plan}/{step}/{state}?token=…`: what the button will do.
pub(crate) async fn show(
    State(app): State<App>,
    Path(place): Path<Place>,
    Params(q): Params<TokenQuery>,
) -> Result<Response, ApiError> {
    let (c, step) = match usable(&app, place, &q.token).await? {
        Ok(found) => found,
        Err(page) => return Ok(page),
    };
    let (heading, button) = question(c.action, &step.title);
    let message = format!("From your plan “{}”.", c.plan.title);
    Ok(page(
        &app,
        StatusCode::OK,
        &heading,
        &message,
        Some(button),
        Some(view(&c.plan, &c.session, &app)),
    ))
}

/// `POST` of the same link: acts once, then shows the plan as it is now.
pub(crate) async fn act(
    State(app): State<App>,
    Path(place): Path<Place>,
    Params(q): Params<TokenQuery>,
) -> Result<Response, ApiError> {
    let (c, step) = match usable(&app, place, &q.token).await? {
        Ok(found) => found,
        Err(page) => return Ok(page),
    };
    let op = match c.action {
        StepAction::Done => Op::SetStatus {
            step: step.id.clone(),
            status: StepStatus::Completed,
            result: None,
        },
        StepAction::Snooze => Op::UpdateStep {
            step: step.id.clone(),
            title: None,
            depends_on: None,
            due_at: Some(step.due_at.map(|d| d + chrono::Duration::days(1))),
            result: None,
        },
    };
    let change = PlanChange {
        plan_id: c.plan.id,
        expected_version: c.plan.version,
        ops: vec![op],
        why: format!("the user clicked “{}” in a notification", c.action.as_str()),
    };
    // The click is the user's yes to the change the page named.
    let done = match app.service.change_confirmed(&c.session, change).await {
        Ok(Applied::Changed { plan, .. } | Applied::Unchanged { plan }) => Ok(plan),
        Ok(Applied::Proposed { .. }) => Err("it needs your yes in the chat".to_owned()),
        Err(ServiceError::Refused(r)) => Err(r.to_string()),
        Err(e) => return Err(e.into()),
    };
    Ok(outcome_page(&app, &c, &step, done))
}

/// The page after the button: what changed and the plan now, or why not.
fn outcome_page(app: &App, c: &Checked, step: &crate::plan::Step, done: Result<Plan, String>) -> Response {
    match done {
        Ok(plan) => {
            let message = match c.action {
                StepAction::Done => format!("“{}” is done.", step.title),
                StepAction::Snooze => {
                    let due = plan.step(&step.id).and_then(|s| s.due_at);
                    let now = app.now().with_timezone(&c.session.tz);
                    format!(
                        "“{}” is now due {}.",
                        step.title,
                        due.map_or_else(|| "later".to_owned(), |d| plan_render::day(d, now))
                    )
                }
            };
            page(
                app,
                StatusCode::OK,
                "Done",
                &message,
                None,
                Some(view(&plan, &c.session, app)),
            )
        }
        Err(why) => {
            let message = format!("Nothing was changed: {why}");
            page(
                app,
                StatusCode::CONFLICT,
                "Not changed",
                &message,
                None,
                Some(view(&c.plan, &c.session, app)),
            )
        }
    }
}
