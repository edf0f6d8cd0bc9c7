//! The goal interpreter: every message becomes one of four routes —
//! `chat`, `new_goal` (a template kind with typed slots), `command` (a plan
//! command with the user's own words for plans and steps), or
//! `confirmation`. Rules, not a model: fast, predictable, and when unsure it
//! says `chat` so the assistant asks instead of acting. `steward interpret`
//! runs this same code.

mod adding;
mod agenda;
mod answers;
pub(crate) mod commands;
mod confirm;
pub(crate) mod dates;
pub(crate) mod goals;
mod items;
mod more;
mod objects;
mod periods;
mod problems;
mod remarks;
mod reminders;
mod shift;
mod showing;
mod slots;
pub(crate) mod text;
mod times;

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
    NewGoal {
        kind: String,
        slots: Map<String, Value>,
    },
    Command(Command),
    Confirmation {
        accept: bool,
    },
    /// The person asked for something, but the time they gave cannot be
    /// used: steward asks instead of guessing.
    Unclear {
        problem: Problem,
    },
}

/// Why a time cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Problem {
    /// No such time or day: "25:00", "Feb 29" in a common year, "Nov 31".
    TimeInvalid,
    /// Already past: "yesterday", "in -5 minutes", 08:00 today at 10:00.
    TimePast,
    /// A date in digits that reads as two days: "01/09/2027" (1 September
    /// or 9 January).
    DateAmbiguous,
}

/// A goal being set up: steward asked for one of its slots.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Pending {
    pub kind: String,
    /// The slot the question asked for.
    pub asked: String,
    /// The slots known so far.
    pub slots: Map<String, Value>,
}

/// What agenda question was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ask {
    DueToday,
    DueThisWeek,
    Overdue,
    Next,
    Progress,
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
        /// What it produced ("done with accounts: created ana@corp").
        #[serde(skip_serializing_if = "Option::is_none")]
        result: Option<String>,
    },
    FailStep {
        step: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    StartStep {
        step: String,
    },
    /// "retry the welcome email": a failed step back to pending, so a step
    /// bound to a tool runs again (a new attempt epoch).
    RetryStep {
        step: String,
    },
    SkipStep {
        step: String,
    },
    RescheduleStep {
        step: String,
        due: NaiveDate,
    },
    /// Moves a step by a number of days ("push X back a week": 7).
    ShiftStep {
        step: String,
        days: i64,
    },
    AddStep {
        title: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        due: Option<NaiveDate>,
        /// The step it waits for, in the user's words.
        #[serde(skip_serializing_if = "Option::is_none")]
        after: Option<String>,
    },
    /// "the welcome email should wait for the accounts".
    AddDependency {
        step: String,
        after: String,
    },
    RemoveStep {
        step: String,
    },
    RenameStep {
        step: String,
        title: String,
    },
    /// `plan` is absent for "this plan" (the one being talked about).
    RenamePlan {
        #[serde(skip_serializing_if = "Option::is_none")]
        plan: Option<String>,
        title: String,
    },
    /// `plan` is absent for "this whole plan".
    CancelPlan {
        #[serde(skip_serializing_if = "Option::is_none")]
        plan: Option<String>,
    },
    Undo {
        #[serde(skip_serializing_if = "Option::is_none")]
        plan: Option<String>,
    },
    Redo {
        #[serde(skip_serializing_if = "Option::is_none")]
        plan: Option<String>,
    },
    /// "what's due this week?", "what should I do next?"
    Agenda {
        ask: Ask,
        #[serde(skip_serializing_if = "Option::is_none")]
        plan: Option<String>,
    },
    History {
        #[serde(skip_serializing_if = "Option::is_none")]
        plan: Option<String>,
    },
    Remind {
        text: String,
        /// With its offset written out, "+00:00" included (never "Z").
        #[serde(serialize_with = "with_offset")]
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
    /// An IANA zone ("I'm in Tokyo now").
    SetTimezone {
        zone: String,
    },
    SetEmail {
        email: String,
    },
    /// Local `HH:MM` to `HH:MM`.
    SetQuietHours {
        start: String,
        end: String,
    },
    QuietHoursOff {},
    Help {},
    /// "never mind" while a goal is being set up.
    Dismiss {},
}

fn with_offset<S: serde::Serializer>(at: &DateTime<FixedOffset>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&at.to_rfc3339())
}

/// Interprets one message for a user whose local time is `now`.
pub fn interpret(message: &str, now: DateTime<Tz>, templates: &Templates) -> Interpretation {
    interpret_in(message, now, templates, None)
}

/// Interprets one message while a goal may be `pending` (steward just
/// asked for one of its slots): a dismissal ends it, a command or a
/// clearly new goal is read as such, anything else is an answer that fills
/// the slot asked (and any other it names).
pub fn interpret_in(
    message: &str,
    now: DateTime<Tz>,
    templates: &Templates,
    pending: Option<&Pending>,
) -> Interpretation {
    // "would you mind renaming …", "go ahead and scrap …": read as said
    // directly.
    let input = text::Input::new(message, now.date_naive());
    if let Some(direct) = text::direct(&input) {
        return interpret_in(&direct, now, templates, pending);
    }
    if input.lower.trim().is_empty()
        || text::addressed_to_someone_else(message)
        || text::asks_how_steward_works(&input.lower)
    {
        return Interpretation::Chat;
    }
    if let Some(pending) = pending
        && let Some(reading) = answers::read(&input, now, templates, pending)
    {
        return reading;
    }
    if let Some(problem) = dates::problem(&input.lower, &input.tokens(), now)
        && (commands::asks_for_action(&input) || goals::asks_for_goal(&input, templates))
    {
        return Interpretation::Unclear { problem };
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
