//! Agenda questions about the plans: what is due today or this week,
//! what is overdue, what comes next, how far along a plan is ("what's
//! due this week?", "how far along is the budget?").

use super::commands::{plan_words, re};
use super::{Ask, Command};
use regex::Regex;
use std::sync::LazyLock;

static AGENDA_QUESTION: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(what|what's|whats|wats|wat's|which|any|anything|is there|are there|is anything|do i|do we|did i|did we|have i|have we|show|list|tell me|give me|how|how's|hows|where|am i|are we|so what|progress|status|i want to know|i'd like to know|i would like to know)\b",
    )
});
static OVERDUE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(overdue|past due|slipping|dropped the ball|late|behind( schedule)?|missed|slipped|running behind|miss(ed)? (any|a|the)? ?(deadlines?|due dates?)|(blown|blew) (through|past)|slip(ped)? past|past (its|their) due dates?|(deadlines?|due dates?) (have |has )?(passed|gone by))\b",
    )
});
static SMALL_TALK: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^(hey,? |hi,? |so,? )?how (are|were|was|is|'s) (you|ya|your|it going|everyone|the family|life)\b")
});
static TODAY: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\btoday\b|\b2day\b|\btoday's\b|\b(by )?(the )?end of (the )?day\b|\beod\b|\bbefore i (leave|log off|go home)\b",
    )
});
static WEEK: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(this week|the week|rest of the week|before the weekend|by friday|between now and (friday|saturday|sunday|the weekend))\b",
    )
});
static NEXT: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(what('s| is)? next|next step|next up|what (should|do|can|shall) (i|we) (do|tackle|work on|pick up)( next| now| first)?|what now|next thing( to do)?|what to (do|work on|tackle)( next| now| first)?|where (do|should) (i|we) (start|begin)|what should i focus on)\b",
    )
});
static PROGRESS: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(\bwhat ?%|\b(how far|progress|how much (is )?(left|done|remaining|to go)|percent(age)?|what (fraction|share|proportion|part)|how close|how (is|are|'s) .+ (going|coming along|doing)|how's .+ (going|coming along|doing)|how many steps)\b)",
    )
});

fn agenda_plan(l: &str) -> Option<String> {
    let stop = |w: &str| {
        matches!(
            w,
            "today"
                | "this week"
                | "week"
                | "the week"
                | "next"
                | "me"
                | "it"
                | "there"
                | "all"
                | "everything"
                | "anything"
                | "something"
                | "left"
                | "track"
                | "schedule"
                | "plate"
                | "my plate"
                | "day"
                | "the day"
                | "end of day"
                | "end of the day"
                | "list"
                | "agenda"
                | "rundown"
                | "deadlines"
                | "any deadlines"
                | "rundown for"
                | "the rundown"
        )
    };
    [" in ", " on ", " for ", " with ", " of ", " is ", " are ", " the "]
        .iter()
        .filter_map(|k| l.find(k).map(|at| &l[at + k.len()..]))
        .filter_map(|rest| {
            let rest = rest
                .split([',', '?'])
                .next()
                .unwrap_or("")
                .trim_end_matches(" going")
                .trim_end_matches(" coming along")
                .trim_end_matches(" doing")
                .trim_end_matches(" so far")
                .trim_end_matches(" along");
            // "on my plate this week", "how far along the close is".
            let rest = [" this week", " today", " right now", " now", " lately", " is", " are"]
                .iter()
                .fold(rest, |r, tail| r.strip_suffix(tail).unwrap_or(r));
            let rest = [" due ", " is ", " are ", " done"]
                .iter()
                .fold(rest, |r, cut| r.split(cut).next().unwrap_or(r));
            // "what should I focus on next for the budget?"
            plan_words(rest.strip_prefix("next ").unwrap_or(rest))
        })
        .find(|p| !stop(p) && p.split_whitespace().count() <= 4 && !p.contains("due") && !p.contains("overdue"))
}

/// "how are you today?", "how was your week?": small talk, never a command.
pub(super) fn small_talk(l: &str) -> bool {
    SMALL_TALK.is_match(l)
}

pub(super) fn agenda(l: &str, asked: bool) -> Option<Command> {
    // "what day of the week is christmas?" asks the calendar, not the plans.
    if l.starts_with("what day") || l.starts_with("what date") || l.starts_with("what time") {
        return None;
    }
    // "how many steps does a typical launch have?" asks about launches in
    // general, not the user's.
    if [" typical ", " usually ", " normally ", " in general", " on average"]
        .iter()
        .any(|w| l.contains(w))
    {
        return None;
    }
    // "how far back does undo go?" asks how steward works.
    if l.split(|c: char| !c.is_alphanumeric())
        .any(|w| matches!(w, "undo" | "redo"))
    {
        return None;
    }
    let ask = if OVERDUE.is_match(l) {
        Ask::Overdue
    } else if NEXT.is_match(l) {
        Ask::Next
    } else if PROGRESS.is_match(l) {
        Ask::Progress
    } else if TODAY.is_match(l) && !l.contains("remind") {
        Ask::DueToday
    } else if WEEK.is_match(l) && !l.contains("remind") {
        Ask::DueThisWeek
    } else {
        return None;
    };
    if !AGENDA_QUESTION.is_match(l) && !asked && !matches!(ask, Ask::Next) {
        return None;
    }
    let plan = if matches!(ask, Ask::Progress) {
        agenda_plan(l)
    } else {
        agenda_plan(l).filter(|p| !p.starts_with("due") && !p.contains("today"))
    };
    Some(Command::Agenda { ask, plan })
}
