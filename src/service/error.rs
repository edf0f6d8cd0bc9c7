//! The plan service's errors: a [`Refusal`] is for whoever asked (the model
//! corrects its call, a person rephrases, REST answers 4xx) and changes
//! nothing; a store failure ends the turn or request.

use super::reminders::ReminderError;
use crate::channels::email::MailError;
use crate::plan::{Plan, PlanError, PlanId};
use crate::preferences::PreferencesError;
use crate::store::StoreError;
use std::fmt;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Refused; nothing changed.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The server failed: fatal for this turn or request.
    #[error(transparent)]
    Failed(#[from] Failure),
}

/// A failure of the server's own, not of the request.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error(transparent)]
    Store(StoreError),
    /// An email could not be rendered (templates are checked at start-up).
    #[error(transparent)]
    Mail(#[from] MailError),
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> ServiceError {
        match e {
            StoreError::Conflict { current } => ServiceError::Refused(Refusal::ChangedMeanwhile { current }),
            other => ServiceError::Failed(Failure::Store(other)),
        }
    }
}

impl From<MailError> for ServiceError {
    fn from(e: MailError) -> ServiceError {
        ServiceError::Failed(Failure::Mail(e))
    }
}

impl From<PlanError> for ServiceError {
    fn from(e: PlanError) -> ServiceError {
        ServiceError::Refused(Refusal::Invalid(e))
    }
}

/// A plan named in a refusal: "p1 (Onboard Ana)".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanRef {
    pub(crate) id: PlanId,
    pub(crate) title: String,
}

impl PlanRef {
    pub(crate) fn of(plan: &Plan) -> PlanRef {
        PlanRef {
            id: plan.id,
            title: plan.title.clone(),
        }
    }
}

impl fmt::Display for PlanRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.id, self.title)
    }
}

struct Listed<'a>(&'a [PlanRef]);

impl fmt::Display for Listed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        for (n, plan) in self.0.iter().enumerate() {
            if n > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{plan}")?;
        }
        Ok(())
    }
}

/// Why a request was refused. The messages are written for the model and
/// the person alike: each says what is wrong and what would work.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// A foreign or unknown id is simply not found.
    #[error("plan {id} not found; active plans: {}", Listed(.active))]
    PlanNotFound { id: PlanId, active: Vec<PlanRef> },
    /// The caller changed a version it did not read last.
    #[error(
        "plan {} is at version {}, not {expected}: it changed since you read it; redo your change against the current plan",
        .current.id, .current.version
    )]
    StaleVersion { expected: u64, current: Box<Plan> },
    /// Another change landed between reading and writing.
    #[error(
        "plan {} changed meanwhile and is now at version {}; redo your change against the current plan",
        .current.id, .current.version
    )]
    ChangedMeanwhile { current: Box<Plan> },
    #[error(transparent)]
    Invalid(#[from] PlanError),
    #[error("there are already {active} active plans, the most allowed; finish or cancel one first")]
    TooManyPlans { active: usize },
    #[error("the user has several active plans; say which with plan_id: {}", Listed(.active))]
    WhichPlan { active: Vec<PlanRef> },
    #[error("there is no change left to undo")]
    NothingToUndo,
    #[error("there is no undone change to redo")]
    NothingToRedo,
    /// Undo without a plan while several plans have changes to undo.
    #[error("changes to several plans can be undone; say which with plan_id: {}", Listed(.plans))]
    WhichUndo { plans: Vec<PlanRef> },
    #[error(transparent)]
    Reminder(#[from] ReminderError),
    #[error(transparent)]
    Preferences(#[from] PreferencesError),
    #[error(
        "a verification email was sent less than ten minutes ago; try another address in {} s",
        .retry_after.as_secs().max(1)
    )]
    VerificationRateLimited { retry_after: Duration },
    /// A step bound to a tool that does not exist, or to arguments its
    /// schema refuses.
    #[error(transparent)]
    Binding(#[from] crate::actions::BindingError),
    /// A verification link for an address that is no longer the one set.
    #[error("this link confirms an address that is no longer the one in the settings")]
    AddressChanged,
}

impl Refusal {
    /// The plan as it is now, when the refusal is about a stale view of it.
    pub(crate) fn current_plan(&self) -> Option<&Plan> {
        match self {
            Refusal::StaleVersion { current, .. } | Refusal::ChangedMeanwhile { current } => Some(current),
            Refusal::PlanNotFound { .. }
            | Refusal::Invalid(_)
            | Refusal::TooManyPlans { .. }
            | Refusal::WhichPlan { .. }
            | Refusal::NothingToUndo
            | Refusal::NothingToRedo
            | Refusal::WhichUndo { .. }
            | Refusal::Reminder(_)
            | Refusal::Preferences(_)
            | Refusal::VerificationRateLimited { .. }
            | Refusal::Binding(_)
            | Refusal::AddressChanged => None,
        }
    }
}
