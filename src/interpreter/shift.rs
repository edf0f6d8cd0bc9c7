//! Moves by a relative amount: "push the orientation back a week", "the
//! welcome email needs to happen two days earlier", "delay the data import
//! a fortnight".

use super::Command;
use super::commands::{re, reference};
use super::dates;
use regex::Regex;
use std::sync::LazyLock;

static SHIFT: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(push|move|delay|postpone|shift|bump|pull|bring|slide|slip)\s+(?:in\s+)?(?:back\s+)?(.+?)\s+(?:(back|out|forward|up|ahead|earlier|later|off)\s+)?(?:by\s+)?(a|an|one|two|three|four|five|six|seven|ten|fourteen|\d{1,3})\s+(days?|weeks?)(?:\s+(back|later|earlier|forward|out|ahead|sooner))?$",
    )
});

/// "the welcome email needs to happen a week earlier".
static SHIFT_NEEDS: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(.+?)\s+(?:needs to|has to|should|must)\s+(?:happen|be|be done|move|be moved|slip|slide|be pushed|be delayed)\s+(?:by\s+)?(a|an|one|two|three|four|five|six|seven|ten|\d{1,3})\s+(days?|weeks?)(?:\s+(earlier|later|sooner))?$",
    )
});

/// Amounts said in words: "a fortnight", "a couple of days".
const AMOUNTS: [(&str, &str); 5] = [
    ("a fortnight", "two weeks"),
    ("a couple of days", "two days"),
    ("a couple days", "two days"),
    ("a couple of weeks", "two weeks"),
    ("a couple weeks", "two weeks"),
];

/// "could the go-live happen 10 days earlier than planned?"
static SHIFT_COULD: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(?:could|can)\s+(.+?)\s+(?:happen|be done|move|be moved)\s+(a|an|one|two|three|four|five|six|seven|ten|\d{1,3})\s+(days?|weeks?)\s+(earlier|later|sooner)(?:\s+than (?:planned|scheduled))?$",
    )
});

pub(super) fn shift(l: &str) -> Option<Command> {
    let mut l = l.to_owned();
    for (said, plain) in AMOUNTS {
        l = l.replace(said, plain);
    }
    // "delay the data import a week, the export isn't ready": the reason
    // after the comma is not part of the step.
    shift_said(&l).or_else(|| shift_said(l.split_once(", ")?.0))
}

fn shift_said(l: &str) -> Option<Command> {
    if let Some(c) = SHIFT_NEEDS.captures(l).or_else(|| SHIFT_COULD.captures(l)) {
        let n = i64::from(dates::number(&c[2])?) * if c[3].starts_with("week") { 7 } else { 1 };
        let step = reference(&c[1])?;
        let days = if c.get(4).is_none_or(|d| d.as_str() == "later") {
            n
        } else {
            -n
        };
        return Some(Command::ShiftStep { step, days });
    }
    let c = SHIFT.captures(l)?;
    let n = match &c[4] {
        "fourteen" => 14,
        word => i64::from(dates::number(word)?),
    };
    let unit = if c[5].starts_with("week") { 7 } else { 1 };
    // "bring forward the UAT by 2 days": the direction before the step.
    let (ahead, said) = match c[2].split_once(' ') {
        Some((w @ ("forward" | "up" | "ahead"), rest)) => (Some(w), rest),
        _ => (None, &c[2]),
    };
    let direction = [c.get(3).map(|m| m.as_str()), ahead, c.get(6).map(|m| m.as_str())]
        .into_iter()
        .flatten()
        .next();
    let earlier = matches!(direction, Some("forward" | "up" | "ahead" | "earlier" | "sooner"))
        || (direction.is_none() && matches!(&c[1], "pull" | "bring"));
    let step = reference(said)?;
    Some(Command::ShiftStep {
        step,
        days: if earlier { -n * unit } else { n * unit },
    })
}
