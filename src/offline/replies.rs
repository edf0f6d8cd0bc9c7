//! What the offline engine says: help, small talk, and the words for the
//! typed outcome of each tool it calls. The sentences are in
//! `templates/chat/replies.j2`; here are the facts each one gets.

use super::commands::Choice;
use super::{Call, Outcome};
use crate::interpreter::Problem;
use crate::plan::{Actor, Change, Plan, render};
use crate::service::Applied;
use crate::service::Undone;
use crate::tools::update_plan;
use crate::triggers::Frequency;
use crate::wording::{NoFacts, Wording};
use chrono::DateTime;
use chrono_tz::Tz;
use serde::Serialize;

/// A plan named in a question: “Onboard Ana” (p1).
#[derive(Serialize)]
pub(super) struct Named<'a> {
    title: &'a str,
    id: String,
}

pub(super) fn named(plans: &[Plan]) -> Vec<Named<'_>> {
    plans
        .iter()
        .map(|p| Named {
            title: &p.title,
            id: p.id.to_string(),
        })
        .collect()
}

/// "Which plan? You have: …".
pub(super) fn which_plan(w: &Wording, question: &str, plans: &[Plan]) -> String {
    #[derive(Serialize)]
    struct Facts<'a> {
        question: &'a str,
        plans: Vec<Named<'a>>,
    }
    w.reply(
        "which_plan",
        &Facts {
            question,
            plans: named(plans),
        },
    )
}

/// No step of the user's plans matches `words`.
pub(super) fn no_such_step(w: &Wording, words: &str, plans: &[Plan]) -> String {
    #[derive(Serialize)]
    struct Facts<'a> {
        words: &'a str,
        plans: Vec<Named<'a>>,
    }
    w.reply(
        "no_such_step",
        &Facts {
            words,
            plans: named(plans),
        },
    )
}

/// A template could not be expanded into a plan.
pub(super) fn cannot_plan(w: &Wording, error: &impl std::fmt::Display) -> String {
    #[derive(Serialize)]
    struct Facts {
        error: String,
    }
    w.reply(
        "cannot_plan",
        &Facts {
            error: error.to_string(),
        },
    )
}

/// "Which one do you mean? 1. … 2. …" — answered in words.
pub(super) fn choose(w: &Wording, choice: &Choice) -> String {
    #[derive(Serialize)]
    struct Facts<'a> {
        question: &'a str,
        options: &'a [String],
    }
    w.reply(
        "choose",
        &Facts {
            question: choice.question,
            options: &choice.options,
        },
    )
}

/// A time that cannot be used: asks for another.
pub(super) fn unclear_time(w: &Wording, problem: Problem) -> String {
    #[derive(Serialize)]
    struct Facts {
        problem: Problem,
    }
    w.reply("unclear_time", &Facts { problem })
}

/// A relative move of a step that has no date to move from.
pub(super) fn no_due_date(w: &Wording, title: &str) -> String {
    #[derive(Serialize)]
    struct Facts<'a> {
        title: &'a str,
    }
    w.reply("no_due_date", &Facts { title })
}

/// An answer to a slot question that was not understood; asks again.
pub(super) fn not_caught(w: &Wording, question: &str) -> String {
    #[derive(Serialize)]
    struct Facts<'a> {
        question: &'a str,
    }
    w.reply("not_caught", &Facts { question })
}

pub(super) fn say(w: &Wording, name: &str) -> String {
    w.reply(name, &NoFacts {})
}

/// Greetings, thanks, and anything else that is not a plan.
pub(super) fn chat(w: &Wording, said: &str) -> String {
    let lower = said.trim().to_lowercase();
    let first = lower.split(|c: char| !c.is_alphanumeric()).next().unwrap_or("");
    if matches!(first, "hi" | "hello" | "hey" | "morning" | "evening" | "hiya" | "yo") {
        return say(w, "greeting");
    }
    if lower.starts_with("thank") || lower.starts_with("cheers") || lower.starts_with("great, thanks") {
        return say(w, "thanks");
    }
    say(w, "not_understood")
}

#[derive(Serialize)]
struct Message<'a> {
    message: &'a str,
}

#[derive(Serialize)]
struct HistoryFacts<'a> {
    title: &'a str,
    entries: Vec<Entry<'a>>,
}

#[derive(Serialize)]
struct Entry<'a> {
    at: String,
    who: Actor,
    what: &'a str,
    why: &'a str,
}

#[derive(Serialize)]
struct UndoneFacts<'a> {
    summary: &'a str,
    plan: Option<String>,
    redo: bool,
}

#[derive(Serialize)]
struct Settings<'a> {
    /// What was set: time_zone, email, quiet, quiet_off.
    what: &'a str,
    time_zone: &'a str,
    email: Option<&'a str>,
    verified: bool,
    quiet: Option<(String, String)>,
}

#[derive(Serialize)]
struct Reminded {
    when: String,
    time: String,
    text: String,
}

#[derive(Serialize)]
struct Digest {
    frequency: Frequency,
    weekday: Option<String>,
    time: String,
    verified: bool,
}

/// A refusal written for the model, in the words a person reads: step and
/// plan ids become their titles (from `plans`, the plans in hand), field
/// names and status codes become words.
pub(super) fn plain(message: &str, plans: &[Plan]) -> String {
    let title_of = |id: &str| -> Option<&str> {
        plans.iter().find_map(|p| {
            if p.id.to_string() == id {
                return Some(p.title.as_str());
            }
            p.step(id).map(|s| s.title.as_str())
        })
    };
    let mut out = String::with_capacity(message.len());
    for (n, part) in message.split('`').enumerate() {
        match (n % 2, title_of(part)) {
            (1, Some(title)) => {
                out.push('“');
                out.push_str(title);
                out.push('”');
            }
            _ => out.push_str(part),
        }
    }
    let words = [
        ("change their depends_on first", "change what they wait for first"),
        ("depends_on", "what it waits for"),
        ("in_progress", "in progress"),
        ("expected_version", "the version"),
        ("plan_id", "the plan"),
    ];
    words.iter().fold(out, |text, (code, plain)| text.replace(code, plain))
}

/// Words for the outcome of the tool call the engine made; `plans` are the
/// plans in hand when it was made.
// Long: one arm per kind of outcome, each naming the macro that words it.
pub(crate) fn explain(w: &Wording, call: &Call, outcome: &Outcome, plans: &[Plan], now: DateTime<Tz>) -> String {
    let args = match call {
        Call::UpdatePlan(a) => Some(a),
        _ => None,
    };
    match outcome {
        Outcome::Refused { message, .. } => w.reply(
            "refused",
            &Message {
                message: &plain(message, plans),
            },
        ),
        Outcome::Plan(result) => applied(w, &result.0, args, now),
        Outcome::Shown(shown) => render::for_people(&shown.plan, now),
        // The tool's own result has what the message needs.
        Outcome::Listed(listed) => w.reply("listed", listed),
        Outcome::History(history) => w.reply(
            "history",
            &HistoryFacts {
                title: &history.title,
                entries: history
                    .history
                    .iter()
                    .map(|e| Entry {
                        at: render::moment(e.at, now),
                        who: e.who,
                        what: &e.what,
                        why: &e.why,
                    })
                    .collect(),
            },
        ),
        Outcome::Undone(undone) => match &undone.0 {
            Undone::Applied { plan, summary } => {
                let facts = UndoneFacts {
                    summary,
                    plan: plan.is_active().then(|| render::for_people(plan, now)),
                    redo: matches!(call, Call::Redo(_)),
                };
                w.reply("undone", &facts)
            }
            Undone::Proposed { proposal } => w.reply(
                "proposal_change",
                &Summary {
                    summary: proposal.summary.trim_end_matches('.'),
                },
            ),
        },
        Outcome::Reminded(r) => w.reply(
            "reminded",
            &Reminded {
                when: r.when().to_string(),
                time: r.time().to_string(),
                text: r.text().to_string(),
            },
        ),
        Outcome::Preferences(saved) if !matches!(call, Call::SetPreferences(a) if a.digest.is_some()) => {
            let prefs = &saved.0.prefs;
            let facts = Settings {
                what: match call {
                    Call::SetEmail(_) => "email",
                    Call::SetPreferences(a) if a.time_zone.is_some() => "time_zone",
                    Call::SetPreferences(a) if a.clear_quiet_hours => "quiet_off",
                    _ => "quiet",
                },
                time_zone: saved.0.tz.name(),
                email: prefs.email.as_deref(),
                verified: prefs.email_verified,
                quiet: prefs
                    .quiet_hours
                    .as_ref()
                    .map(|q| (q.start.format("%H:%M").to_string(), q.end.format("%H:%M").to_string())),
            };
            w.reply("settings_saved", &facts)
        }
        Outcome::Preferences(saved) => {
            let prefs = &saved.0.prefs;
            let weekday = match prefs.digest.frequency {
                Frequency::Weekly => Some(
                    prefs
                        .digest
                        .weekday
                        .map(|w| w.to_string())
                        .unwrap_or_else(|| "Monday".into()),
                ),
                Frequency::Daily | Frequency::Off => None,
            };
            let facts = Digest {
                frequency: prefs.digest.frequency,
                weekday,
                time: prefs.digest.time.format("%H:%M").to_string(),
                verified: prefs.email_verified,
            };
            w.reply("digest_set", &facts)
        }
    }
}

#[derive(Serialize)]
struct Proposed<'a> {
    intro: &'a str,
    steps: Vec<ProposedStep<'a>>,
}

#[derive(Serialize)]
struct ProposedStep<'a> {
    title: &'a str,
    due: Option<String>,
}

#[derive(Serialize)]
struct Summary<'a> {
    summary: &'a str,
}

#[derive(Serialize)]
struct PlanText {
    plan: String,
}

#[derive(Serialize)]
struct Completed {
    id: String,
}

fn applied(w: &Wording, applied: &Applied, args: Option<&update_plan::Args>, now: DateTime<Tz>) -> String {
    match applied {
        Applied::Proposed { proposal } => {
            let creates = proposal.changes.iter().any(|c| matches!(c, Change::PlanCreated { .. }));
            if !creates {
                let summary = Summary {
                    summary: proposal.summary.trim_end_matches('.'),
                };
                return w.reply("proposal_change", &summary);
            }
            // The explanation the engine gave with the call ("To onboard Ana by Dec 1").
            let intro = args
                .and_then(|a| a.explanation.as_deref())
                .unwrap_or("Here is the plan");
            let steps = proposal
                .changes
                .iter()
                .filter_map(|change| match change {
                    Change::StepAdded { step, .. } => Some(ProposedStep {
                        title: &step.title,
                        due: step.due_at.map(|due| render::day(due, now)),
                    }),
                    _ => None,
                })
                .collect();
            w.reply("proposal_new", &Proposed { intro, steps })
        }
        Applied::Changed { plan, .. } | Applied::Unchanged { plan } if plan.is_active() => w.reply(
            "updated",
            &PlanText {
                plan: render::for_people(plan, now),
            },
        ),
        Applied::Changed { plan, .. } | Applied::Unchanged { plan } => w.reply(
            "completed",
            &Completed {
                id: plan.id.to_string(),
            },
        ),
    }
}
