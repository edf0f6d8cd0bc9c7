//! The goal interpreter: every message becomes one of four routes —
//! `chat`, `new_goal` (a template kind with typed slots), `command` (a plan
//! command with the user's own words for plans and steps), or
//! `confirmation`. Rules, not a model: fast, predictable, and when unsure it
//! says `chat` so the assistant asks instead of acting. `steward interpret`
//! runs this same code.

pub(crate) mod commands;
pub(crate) mod dates;
pub(crate) mod goals;
mod slots;
pub(crate) mod text;

use crate::planner::templates::Templates;
use crate::triggers::Frequency;
use chrono::{DateTime, FixedOffset, NaiveDate};
use chrono_tz::Tz;
use serde::Serialize;
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "route", rename_all = "snake_case")]
pub enum Interpretation {
    Chat,
    NewGoal { kind: String, slots: Map<String, Value> },
    Command(Command),
    Confirmation { accept: bool },
}

/// Plan commands. `plan` and `step` are the user's own words ("onboarding",
/// "the laptop step" → "laptop"), resolved against their plans later.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "command", content = "args", rename_all = "snake_case")]
pub enum Command {
    ShowPlan {
        #[serde(skip_serializing_if = "Option::is_none")]
        plan: Option<String>,
    },
    ListPlans {},
    CompleteStep {
        step: String,
    },
    StartStep {
        step: String,
    },
    SkipStep {
        step: String,
    },
    RescheduleStep {
        step: String,
        due: NaiveDate,
    },
    AddStep {
        title: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        due: Option<NaiveDate>,
    },
    RemoveStep {
        step: String,
    },
    CancelPlan {
        plan: String,
    },
    Undo {},
    History {
        #[serde(skip_serializing_if = "Option::is_none")]
        plan: Option<String>,
    },
    Remind {
        text: String,
        at: DateTime<FixedOffset>,
    },
    /// "send me a weekly digest on Mondays at 8", "stop the digest".
    Digest {
        frequency: Frequency,
        #[serde(skip_serializing_if = "Option::is_none")]
        weekday: Option<String>,
        /// `HH:MM`, when a time was said.
        #[serde(skip_serializing_if = "Option::is_none")]
        time: Option<String>,
    },
    Help {},
}

/// Interprets one message for a user whose local time is `now`.
pub fn interpret(message: &str, now: DateTime<Tz>, templates: &Templates) -> Interpretation {
    let input = text::Input::new(message, now.date_naive());
    if input.lower.trim().is_empty() {
        return Interpretation::Chat;
    }
    if let Some(accept) = commands::confirmation(&input) {
        return Interpretation::Confirmation { accept };
    }
    if let Some(command) = commands::command(&input, now) {
        return Interpretation::Command(command);
    }
    if let Some((kind, slots)) = goals::detect(&input, templates) {
        return Interpretation::NewGoal { kind, slots };
    }
    Interpretation::Chat
}

#[cfg(test)]
mod tests;
