//! What the offline engine says: help, small talk, and the words for the
//! typed outcome of each tool it calls.

use super::Outcome;
use crate::plan::{Actor, Change, render};
use crate::service::Applied;
use crate::tools::update_plan;
use crate::triggers::Frequency;
use chrono_tz::Tz;

pub(crate) const HELP: &str = "I keep plans for you and follow up on them. You can say things like:\n\
- \"help me onboard Ana Souza, she starts Dec 1\"\n\
- \"plan a trip to Lisbon and Porto from May 4\"\n\
- \"show my onboarding plan\" or \"list my plans\"\n\
- \"done with order laptop\", \"start the orientation\", \"skip the welcome lunch\"\n\
- \"move the orientation to Friday\", \"add a step: book a room by Dec 3\"\n\
- \"undo\", \"what changed in the onboarding plan?\"\n\
- \"remind me tomorrow at 9 to call the recruiter\", \"send me a weekly digest on Mondays at 8\"";

pub(crate) const NOTHING_TO_CONFIRM: &str = "There is nothing waiting for your confirmation right now.";

pub(crate) fn no_plans() -> String {
    format!("You have no active plans yet.\n{HELP}")
}

pub(crate) fn chat(said: &str) -> String {
    let lower = said.trim().to_lowercase();
    let first = lower.split(|c: char| !c.is_alphanumeric()).next().unwrap_or("");
    if matches!(first, "hi" | "hello" | "hey" | "morning" | "evening" | "hiya" | "yo") {
        return format!("Hello! {HELP}");
    }
    if lower.starts_with("thank") || lower.starts_with("cheers") || lower.starts_with("great, thanks") {
        return "You're welcome! Tell me whenever something moves and I'll keep the plan up to date.".into();
    }
    format!("I'm not sure how to help with that. {HELP}")
}

fn actor(a: Actor) -> &'static str {
    match a {
        Actor::User => "user",
        Actor::Model => "model",
        Actor::Scheduler => "scheduler",
        Actor::Tool => "tool",
    }
}

/// Words for the outcome of the tool call the engine made; `args` are the
/// arguments it called `update_plan` with, if it did.
pub(crate) fn explain(outcome: &Outcome, args: Option<&update_plan::Args>, tz: Tz) -> String {
    match outcome {
        Outcome::Refused(message) => format!("I couldn't do that: {message}"),
        Outcome::Plan(result) => applied(&result.0, args, tz),
        Outcome::Shown(shown) => render::for_people(&shown.plan),
        Outcome::Listed(listed) => {
            if listed.0.is_empty() {
                return format!("You have no active plans.\n{HELP}");
            }
            let mut out = String::from("Your plans:\n");
            for p in &listed.0 {
                out.push_str(&format!(
                    "- {} ({}) — {}/{} done{}\n",
                    p.title,
                    p.id,
                    p.count(crate::plan::StepStatus::Completed),
                    p.steps.len(),
                    render::next_step(p)
                        .map(|n| format!(", next: {}", n.title))
                        .unwrap_or_default()
                ));
            }
            out
        }
        Outcome::History(history) => {
            let mut out = format!("History of “{}”, newest first:\n", history.plan.title);
            for e in &history.entries {
                out.push_str(&format!(
                    "- {} by {}: {} ({})\n",
                    e.at.with_timezone(&tz).format("%b %-d %H:%M"),
                    actor(e.actor),
                    crate::proposal::summarize(&history.plan, &e.changes),
                    e.why
                ));
            }
            out
        }
        Outcome::Undone(undone) => {
            let u = &undone.0;
            if u.plan.is_active() {
                format!("Undone: {}.\n{}", u.summary, render::for_people(&u.plan))
            } else {
                format!("Undone: {}. That plan is no longer active.", u.summary)
            }
        }
        Outcome::Reminded(r) => format!("OK — I'll remind you {} at {}: {}.", r.when(), r.time(), r.text()),
        Outcome::Preferences(saved) => {
            let prefs = &saved.0.prefs;
            let time = prefs.digest.time.format("%H:%M");
            let when = match prefs.digest.frequency {
                Frequency::Off => return "OK — no more digests.".into(),
                Frequency::Weekly => format!(
                    "every {} at {time}",
                    prefs
                        .digest
                        .weekday
                        .map(|w| w.to_string())
                        .unwrap_or_else(|| "Monday".into())
                ),
                Frequency::Daily => format!("every day at {time}"),
            };
            if prefs.email_verified {
                format!("OK — I'll email you a digest of your plans {when}.")
            } else {
                format!(
                    "OK — your digest is set for {when}. Add and confirm your email address in the settings so I can send it."
                )
            }
        }
    }
}

fn applied(applied: &Applied, args: Option<&update_plan::Args>, tz: Tz) -> String {
    match applied {
        Applied::Proposed { proposal } => {
            let creates = proposal.changes.iter().any(|c| matches!(c, Change::PlanCreated { .. }));
            if !creates {
                return format!("{}. Shall I go ahead?", proposal.summary);
            }
            // The explanation the engine gave with the call ("To onboard Ana by Dec 1").
            let intro = args
                .and_then(|a| a.explanation.as_deref())
                .unwrap_or("Here is the plan");
            let mut out = format!("{intro}, I'll:\n");
            for change in &proposal.changes {
                if let Change::StepAdded { step, .. } = change {
                    match step.due_at {
                        Some(due) => out.push_str(&format!(
                            "- {} — due {}\n",
                            step.title,
                            due.with_timezone(&tz).format("%a %b %-d")
                        )),
                        None => out.push_str(&format!("- {}\n", step.title)),
                    }
                }
            }
            out.push_str("Shall I set this up?");
            out
        }
        Applied::Changed { plan, .. } | Applied::Unchanged { plan } if plan.is_active() => {
            format!("Updated.\n{}", render::for_people(plan))
        }
        Applied::Changed { plan, .. } | Applied::Unchanged { plan } => {
            format!("Done — that completes plan {}. Well done!", plan.id)
        }
    }
}
