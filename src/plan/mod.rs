//! The LivePlan model: plans, steps, statuses, history entries, and the pure
//! functions that change and render them. Nothing in here does I/O.

pub mod invariants;
pub mod patch;
pub mod render;
pub(crate) mod snapshot;
pub(crate) mod undo;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// When a step due on `day` (a date without a time, as people and models
/// say it) is due: 09:00 that day in the zone `tz`; if a clock change skips
/// that hour, the same wall-clock time read as UTC.
pub fn due_on(day: chrono::NaiveDate, tz: chrono_tz::Tz) -> DateTime<Utc> {
    use chrono::TimeZone;
    let local = day.and_time(chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap_or_default());
    tz.from_local_datetime(&local)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| local.and_utc())
}

pub use invariants::{PlanError, PlanLimits};
pub use patch::{Op, PatchOutcome};

/// A plan id as the user and the model see it: `p` followed by the plan's
/// per-user sequence number ("p1", "p12"). Ids are scoped to their owner; the
/// store never resolves one user's id in another user's key space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PlanId(pub u64);

impl PlanId {
    pub(crate) fn parse(text: &str) -> Option<PlanId> {
        let digits = text
            .trim()
            .strip_prefix('p')
            .or_else(|| text.trim().strip_prefix('P'))?;
        if digits.is_empty() || digits.len() > 19 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok().map(PlanId)
    }
}

impl fmt::Display for PlanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p{}", self.0)
    }
}

impl Serialize for PlanId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl schemars::JsonSchema for PlanId {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "PlanId".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[pP][0-9]{1,19}$",
            "description": "A plan id, e.g. p1"
        })
    }
}

impl<'de> Deserialize<'de> for PlanId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        PlanId::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("`{text}` is not a plan id (expected p<number>, e.g. p1)")))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Pending,
    InProgress,
    Completed,
    Failed,
    Cancelled,
}

impl StepStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            StepStatus::Pending => "pending",
            StepStatus::InProgress => "in_progress",
            StepStatus::Completed => "completed",
            StepStatus::Failed => "failed",
            StepStatus::Cancelled => "cancelled",
        }
    }

    /// Completed and cancelled steps never change status again; "done" for a
    /// plan means every step is in one of these.
    pub(crate) fn is_terminal(self) -> bool {
        match self {
            StepStatus::Completed | StepStatus::Cancelled => true,
            StepStatus::Pending | StepStatus::InProgress | StepStatus::Failed => false,
        }
    }
}

impl fmt::Display for StepStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PlanStatus {
    Active,
    Done,
    Cancelled,
}

impl PlanStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            PlanStatus::Active => "active",
            PlanStatus::Done => "done",
            PlanStatus::Cancelled => "cancelled",
        }
    }
}

/// `single`: at most one step in progress (a person works through the plan).
/// `orchestrated`: independent tool-bound steps may run in parallel.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum PlanMode {
    #[default]
    Single,
    Orchestrated,
}

/// What the plan is for, as the goal interpreter understood it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema, schemars::JsonSchema)]
pub struct Objective {
    /// A template kind (e.g. onboard_employee), or `custom`.
    pub kind: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub slots: serde_json::Map<String, serde_json::Value>,
}

/// A step bound to a tool the execution engine may run when the step is ready.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema, schemars::JsonSchema)]
pub struct ToolBinding {
    /// The tool's name.
    pub name: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub args: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Step {
    pub id: String,
    pub title: String,
    pub status: StepStatus,
    #[serde(default)]
    pub depends_on: Vec<String>,
    #[serde(default)]
    pub due_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub result: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<ToolBinding>,
    /// This step checks the result of that step (which it depends on):
    /// when the check fails, that step is reopened and done again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<String>,
}

impl Step {
    /// The step's state as a link binds it: its status and due time. A
    /// link made for one state does nothing in another.
    pub(crate) fn state_tag(&self) -> String {
        let due = self
            .due_at
            .map_or_else(|| "none".to_owned(), |d| d.timestamp().to_string());
        format!("{}-{due}", self.status)
    }

    pub fn new(id: impl Into<String>, title: impl Into<String>) -> Step {
        Step {
            id: id.into(),
            title: title.into(),
            status: StepStatus::Pending,
            depends_on: Vec::new(),
            due_at: None,
            result: None,
            tool: None,
            checks: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Plan {
    #[schema(value_type = String, example = "p1")]
    pub id: PlanId,
    pub title: String,
    #[serde(default)]
    pub goal: String,
    #[serde(default)]
    pub objective: Objective,
    pub status: PlanStatus,
    #[serde(default)]
    pub mode: PlanMode,
    /// Bumped on every change; `update_plan` callers must name the version
    /// they saw, so a stale writer can never overwrite a newer plan.
    pub version: u64,
    pub steps: Vec<Step>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The next number for a generated step id. Kept so ids of removed steps
    /// are never handed out again (history keeps referring to them).
    #[serde(default)]
    pub next_step_seq: u32,
}

impl Plan {
    /// A new, empty, unsaved plan; the store assigns the real id on creation.
    pub fn draft(title: impl Into<String>, goal: impl Into<String>, now: DateTime<Utc>) -> Plan {
        Plan {
            id: PlanId(0),
            title: title.into(),
            goal: goal.into(),
            objective: Objective {
                kind: "custom".into(),
                slots: Default::default(),
            },
            status: PlanStatus::Active,
            mode: PlanMode::Single,
            version: 0,
            steps: Vec::new(),
            created_at: now,
            updated_at: now,
            next_step_seq: 1,
        }
    }

    /// Active plans are shown in every prompt and can change; done and
    /// cancelled ones stay readable.
    pub(crate) fn is_active(&self) -> bool {
        self.status == PlanStatus::Active
    }

    pub(crate) fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }

    pub(crate) fn step_index(&self, id: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.id == id)
    }

    pub(crate) fn count(&self, status: StepStatus) -> usize {
        self.steps.iter().filter(|s| s.status == status).count()
    }

    /// A step is ready to start when it is pending and everything it depends
    /// on is resolved.
    pub(crate) fn is_ready(&self, step: &Step) -> bool {
        step.status == StepStatus::Pending && self.unresolved_deps(step).is_empty()
    }

    /// The first step ready to start, in plan order.
    pub(crate) fn next_ready(&self) -> Option<&Step> {
        self.steps.iter().find(|s| self.is_ready(s))
    }

    /// Dependencies of `step` that are not yet resolved. A dependency is
    /// resolved when it is completed, or cancelled (a skipped step must not
    /// block the rest of the plan forever).
    pub(crate) fn unresolved_deps<'a>(&'a self, step: &'a Step) -> Vec<&'a str> {
        step.depends_on
            .iter()
            .filter(|dep| !self.step(dep).is_some_and(|d| d.status.is_terminal()))
            .map(String::as_str)
            .collect()
    }

    /// Derives the plan status from its steps: a plan whose steps are all
    /// completed or cancelled is done. A cancelled plan stays cancelled.
    pub(crate) fn derived_status(&self) -> PlanStatus {
        match self.status {
            PlanStatus::Cancelled => PlanStatus::Cancelled,
            PlanStatus::Active | PlanStatus::Done => {
                if !self.steps.is_empty() && self.steps.iter().all(|s| s.status.is_terminal()) {
                    PlanStatus::Done
                } else {
                    PlanStatus::Active
                }
            }
        }
    }

    /// Generates a fresh step id that no current step uses.
    pub(crate) fn fresh_step_id(&mut self) -> String {
        loop {
            let id = format!("s{}", self.next_step_seq.max(1));
            self.next_step_seq = self.next_step_seq.max(1) + 1;
            if self.step(&id).is_none() {
                return id;
            }
        }
    }
}

/// Who made a change. The acting user always comes from the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    User,
    Model,
    Scheduler,
    Tool,
    /// The operator, through the admin API.
    Operator,
}

/// One thing a change did, with enough detail to explain or invert it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    PlanCreated {
        title: String,
    },
    PlanRenamed {
        from: String,
        to: String,
    },
    PlanStatus {
        from: PlanStatus,
        to: PlanStatus,
    },
    StepAdded {
        step: Step,
        index: usize,
    },
    StepRemoved {
        step: Step,
        index: usize,
    },
    StepStatus {
        step: String,
        from: StepStatus,
        to: StepStatus,
    },
    StepTitle {
        step: String,
        from: String,
        to: String,
    },
    StepDue {
        step: String,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    },
    StepDeps {
        step: String,
        from: Vec<String>,
        to: Vec<String>,
    },
    StepResult {
        step: String,
        from: Option<String>,
        to: Option<String>,
    },
    Reordered {
        from: Vec<String>,
        to: Vec<String>,
    },
}

/// The append-only record of one applied change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HistoryEntry {
    pub at: DateTime<Utc>,
    pub actor: Actor,
    pub why: String,
    /// The plan version this change produced.
    pub version: u64,
    pub changes: Vec<Change>,
    /// For an undo: the version whose change it reverted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undoes: Option<u64>,
}

#[cfg(test)]
pub(crate) mod fixtures;
