//! Agenda questions answered from the plans in hand: what is due today or
//! this week, what is overdue, what comes next, how far along a plan is.
//! Days are the user's (the zone of their local `now`).

use crate::interpreter::Ask;
use crate::plan::{Plan, StepStatus, render};
use crate::wording::Wording;
use chrono::{DateTime, Datelike, Days, NaiveDate};
use chrono_tz::Tz;
use serde::Serialize;

#[derive(Serialize)]
struct Item<'a> {
    #[serde(skip)]
    at: Option<chrono::DateTime<chrono::Utc>>,
    title: &'a str,
    plan: &'a str,
    due: Option<String>,
}

#[derive(Serialize)]
struct Progress<'a> {
    title: &'a str,
    done: usize,
    total: usize,
    next: Option<&'a str>,
}

#[derive(Serialize)]
struct Facts<'a> {
    ask: Ask,
    items: Vec<Item<'a>>,
    plans: Vec<Progress<'a>>,
    /// Items come from more than one plan: each names its plan.
    several: bool,
}

fn open(status: StepStatus) -> bool {
    matches!(
        status,
        StepStatus::Pending | StepStatus::InProgress | StepStatus::Failed
    )
}

/// The last day of the user's week (Sunday).
fn end_of_week(today: NaiveDate) -> NaiveDate {
    today + Days::new(u64::from(6 - today.weekday().num_days_from_monday()))
}

pub(super) fn answer(w: &Wording, ask: Ask, plans: &[&Plan], now: DateTime<Tz>) -> String {
    let zone = now.timezone();
    let today = now.date_naive();
    let mut items = Vec::new();
    let mut progress = Vec::new();
    for plan in plans {
        match ask {
            Ask::Next => {
                if let Some(step) = render::next_step(plan) {
                    items.push(Item {
                        at: step.due_at,
                        title: &step.title,
                        plan: &plan.title,
                        due: step.due_at.map(|d| render::day(d, now)),
                    });
                }
            }
            Ask::Progress => progress.push(Progress {
                title: &plan.title,
                done: plan.count(StepStatus::Completed),
                total: plan.steps.iter().filter(|s| s.status != StepStatus::Cancelled).count(),
                next: render::next_step(plan).map(|s| s.title.as_str()),
            }),
            Ask::DueToday | Ask::DueThisWeek | Ask::Overdue => {
                for step in plan.steps.iter().filter(|s| open(s.status)) {
                    let Some(due) = step.due_at else { continue };
                    let day = due.with_timezone(&zone).date_naive();
                    let wanted = match ask {
                        Ask::DueToday => day == today,
                        Ask::DueThisWeek => day >= today && day <= end_of_week(today),
                        _ => due < now,
                    };
                    if wanted {
                        items.push(Item {
                            at: Some(due),
                            title: &step.title,
                            plan: &plan.title,
                            due: Some(render::day(due, now)),
                        });
                    }
                }
            }
        }
    }
    // Soonest first; undated last.
    items.sort_by_key(|i| (i.at.is_none(), i.at));
    let several = plans.len() > 1;
    w.reply(
        "agenda",
        &Facts {
            ask,
            items,
            plans: progress,
            several,
        },
    )
}
