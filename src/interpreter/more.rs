//! The commands beyond steps' statuses: agenda questions, renames,
//! failures, dependencies, relative moves, undo and redo of one plan, and
//! preferences said in chat (time zone, email, quiet hours). Each rule
//! reads the cleaned lowercase message; titles, reasons and results keep
//! the person's own case.

use super::commands::{plan_words, re, reference};
use super::dates::{self, Token};
use super::text::Input;
use super::{Ask, Command};
use regex::Regex;
use std::sync::LazyLock;

/// The original text of `lower[range]` (same byte offsets), trimmed of
/// quotes and trailing punctuation.
fn original(input: &Input, base: usize, range: std::ops::Range<usize>) -> Option<String> {
    let text = input.text.get(base + range.start..base + range.end)?;
    let text = text
        .trim()
        .trim_end_matches(['.', '!', '?', ',', ';'])
        .trim_matches(['"', '\'', '“', '”', '‘', '’'])
        .trim();
    (!text.is_empty()).then(|| text.to_owned())
}

static REDO: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(redo|re-do|undo (the|my|that) undo|undo the undoing|bring (it|that) back|restore what (i|you) undid|(reapply|re-apply|redo|restore) (the )?(change|changes|edit|edits) (i|you|we) (undid|undone|reverted))\b(?P<rest>.*)$",
    )
});
static UNDO: LazyLock<Regex> = LazyLock::new(|| re(r"^(undo|revert|roll ?back|take back|reverse)\b(.*)$"));
/// The plan named after an undo or redo: "the last change to the budget".
fn undone_plan(rest: &str) -> Option<Option<String>> {
    let rest = rest.trim();
    if ["the last", "my last", "the previous", "what i", "what you", "that last"]
        .iter()
        .any(|p| rest.starts_with(p))
        && ![" to ", " on ", " in ", " for "].iter().any(|k| rest.contains(k))
    {
        return Some(None);
    }
    // ("the last change", "my last edit" … are the prefixes above.)
    if ["", "it", "that", "this", "the change", "please"].contains(&rest) {
        return Some(None);
    }
    let words = ["to ", "on ", "in ", "for ", "of "]
        .iter()
        .find_map(|k| rest.find(k).map(|at| &rest[at + k.len()..]))?;
    Some(reference(words))
}

pub(super) fn undo_or_redo(l: &str) -> Option<Command> {
    // "actually put it back, redo": the word decides.
    if l.split(|c: char| !c.is_alphanumeric() && c != '-')
        .any(|w| w == "redo" || w == "re-do")
        && !REDO.is_match(l)
    {
        return Some(Command::Redo { plan: None });
    }
    if let Some(c) = REDO.captures(l) {
        let plan = undone_plan(c.name("rest").map_or("", |m| m.as_str()))?;
        return Some(Command::Redo { plan });
    }
    let c = UNDO.captures(l)?;
    let plan = undone_plan(c.get(2).map_or("", |m| m.as_str()))?;
    Some(Command::Undo { plan })
}

static QUIET: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(quiet hours?|quiet time|do not disturb|do-not-disturb|dnd|(don't|do not|never) (notify|disturb|message|ping|bother|email|contact) me|no (notif\w*|messages|pings)|(mute|silence|hold) (everything|all|notifications|all notifications|messages))\b",
    )
});
static OFF: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(turn off|switch off|disable|remove|clear|delete|stop|cancel|no more|get rid of|end|drop|off|don't need|do not need|no longer)\b",
    )
});

/// Every time of day in `toks`, in order.
fn times(toks: &[Token<'_>]) -> Vec<String> {
    let mut out = Vec::new();
    let mut from = 0;
    while from < toks.len() {
        match dates::find_time(&toks[from..]) {
            Some(t) => {
                out.push(t.time.format("%H:%M").to_string());
                from += t.last.max(1);
            }
            None => break,
        }
    }
    out
}

pub(super) fn quiet_hours(input: &Input, l: &str) -> Option<Command> {
    if !QUIET.is_match(l) {
        return None;
    }
    // "20:00-08:00": a range written with a dash.
    let spaced = input.lower.replace('-', " - ");
    let found = times(&dates::tokens(&spaced));
    match found.as_slice() {
        [start, end, ..] => Some(Command::SetQuietHours {
            start: start.clone(),
            end: end.clone(),
        }),
        [] if OFF.is_match(l) && l.contains("quiet") || l.contains("do not disturb") && OFF.is_match(l) => {
            Some(Command::QuietHoursOff {})
        }
        _ => None,
    }
}

static ZONE_CUE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(time ?zone|timezone|zone|tz|(i'm|i am|we're|we are) (now )?(in|based in|living in)\b.*\bnow\b|i (moved|relocated) to|i live in|i'm based in|i am based in|use .+ time)\b",
    )
});

/// An IANA zone named in the text, by its name or its city.
fn zone_in(text: &str) -> Option<String> {
    let fold = |s: &str| -> String {
        s.chars()
            .map(|c| match c {
                'á' | 'à' | 'â' | 'ã' | 'ä' => 'a',
                'é' | 'è' | 'ê' | 'ë' => 'e',
                'í' | 'ì' | 'î' | 'ï' => 'i',
                'ó' | 'ò' | 'ô' | 'õ' | 'ö' => 'o',
                'ú' | 'ù' | 'û' | 'ü' => 'u',
                'ç' => 'c',
                '_' => ' ',
                c => c,
            })
            .collect::<String>()
            .to_lowercase()
    };
    let folded = format!(" {} ", fold(text).replace([',', '.', '!', '?'], " "));
    let mut best: Option<&str> = None;
    for tz in chrono_tz::TZ_VARIANTS {
        let name = tz.name();
        if !name.contains('/') || name.starts_with("Etc/") {
            continue;
        }
        let city = fold(name.rsplit('/').next().unwrap_or(name));
        let whole = fold(name);
        let hit = folded.contains(&format!(" {whole} ")) || folded.contains(&format!(" {city} "));
        if hit && best.is_none_or(|b| name.len() < b.len() || b.starts_with("US/")) {
            best = Some(name);
        }
    }
    best.map(str::to_owned)
}

pub(super) fn time_zone(input: &Input, l: &str) -> Option<Command> {
    if !ZONE_CUE.is_match(l) {
        return None;
    }
    zone_in(&input.text).map(|zone| Command::SetTimezone { zone })
}

static EMAIL: LazyLock<Regex> = LazyLock::new(|| re(r"[a-z0-9._%+-]+@[a-z0-9-]+(\.[a-z0-9-]+)+"));
static EMAIL_CUE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(e-?mail|mail|address|send (my |the )?(emails?|digests?|notifications?|reminders?|stuff|everything|things|it all) to|reach me at)\b",
    )
});

static EMAIL_FOR: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^\s*(for|as)\s+(my\s+)?(notifications?|e-?mails?|the digests?|digests?|reminders?|updates?|contact)\b")
});

pub(super) fn email(input: &Input, base: usize, l: &str) -> Option<Command> {
    let found = EMAIL.find(l)?;
    let cue_after = EMAIL_FOR.is_match(&l[found.end()..]);
    if !EMAIL_CUE.is_match(&l[..found.start()]) && !cue_after {
        return None;
    }
    let email = input
        .text
        .get(base + found.start()..base + found.end())?
        .trim_end_matches('.')
        .to_owned();
    Some(Command::SetEmail { email })
}

static AGENDA_QUESTION: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(what|what's|whats|which|any|anything|is there|are there|is anything|do i|do we|did i|did we|have i|have we|show|list|tell me|give me|how|how's|hows|where|am i|are we|so what|progress|status|i want to know|i'd like to know|i would like to know)\b",
    )
});
static OVERDUE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(overdue|past due|late|behind( schedule)?|missed|slipped|running behind|miss(ed)? (any|a|the)? ?(deadlines?|due dates?))\b",
    )
});
static TODAY: LazyLock<Regex> = LazyLock::new(|| re(r"\btoday\b|\btoday's\b"));
static WEEK: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b(this week|the week|rest of the week|before the weekend|by friday)\b"));
static NEXT: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(what('s| is)? next|next step|next up|what (should|do|can|shall) (i|we) (do|tackle|work on|pick up)( next| now| first)?|what now|next thing( to do)?|what to (do|work on|tackle)( next| now| first)?|where (do|should) (i|we) (start|begin)|what should i focus on)\b",
    )
});
static PROGRESS: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(how far|progress|how much (is )?(left|done|remaining|to go)|percent(age)?|how close|how (is|are|'s) .+ (going|coming along|doing)|how's .+ (going|coming along|doing)|how many steps)\b",
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
                | "list"
                | "agenda"
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
            plan_words(rest)
        })
        .find(|p| !stop(p) && p.split_whitespace().count() <= 4 && !p.contains("due") && !p.contains("overdue"))
}

pub(super) fn agenda(l: &str, asked: bool) -> Option<Command> {
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

static RENAME: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(rename|retitle)\s+(.+?)\s+(to|as|into)\s+(.+)$|^change\s+(the\s+)?(name|title)\s+of\s+(.+?)\s+to\s+(.+)$|^change\s+(.+?)(?:'s|’s)\s+(name|title)\s+to\s+(.+)$|^(call|name)\s+(.+?)\s+(plan|step)\s+(.+)$|^(.+?)\s+should be (?:called|named|renamed to|titled)\s+(.+)$",
    )
});

pub(super) fn rename(input: &Input, base: usize, l: &str) -> Option<Command> {
    let c = RENAME.captures(l)?;
    let (object, title) = match (c.get(2), c.get(4), c.get(7), c.get(8), c.get(9), c.get(11)) {
        (Some(o), Some(t), ..) => (o.as_str().to_owned(), t.range()),
        (_, _, Some(o), Some(t), ..) => (o.as_str().to_owned(), t.range()),
        (.., Some(o), Some(t)) => (o.as_str().to_owned(), t.range()),
        _ => match (c.get(13), c.get(14), c.get(15), c.get(16), c.get(17)) {
            (Some(o), Some(kind), Some(t), ..) => (format!("{} {}", o.as_str(), kind.as_str()), t.range()),
            (.., Some(o), Some(t)) => (o.as_str().to_owned(), t.range()),
            _ => return None,
        },
    };
    let title = quoted_title(&original(input, base, title)?);
    let is_plan = super::commands::names_a_plan(&object);
    let object = object.trim().strip_prefix("plan ").unwrap_or(object.trim()).to_owned();
    let name = reference(&object)?;
    Some(if is_plan {
        Command::RenamePlan { plan: name, title }
    } else {
        Command::RenameStep { step: name, title }
    })
}

/// A new title as said: the quoted part if it is quoted ("'Hooli go-live'
/// from now on"), without words about when ("instead", "from now on").
fn quoted_title(said: &str) -> String {
    for (open, close) in [('\'', '\''), ('"', '"'), ('‘', '’'), ('“', '”')] {
        if let Some(rest) = said.strip_prefix(open)
            && let Some(end) = rest.find(close)
        {
            return rest[..end].trim().to_owned();
        }
    }
    let mut title = said.trim();
    for tail in [" instead", " from now on", " please", " thanks"] {
        title = title.strip_suffix(tail).unwrap_or(title);
    }
    title.trim_matches(['\'', '"', '‘', '’', '“', '”']).trim().to_owned()
}

static FAIL: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^mark\s+(.+?)\s+as\s+failed\b(.*)$|^(?:i |we )?(?:couldn't|could not|can't|cannot|wasn't able to|weren't able to|failed to)\s+(?:get|book|do|make|finish|complete|secure|reserve|find|arrange)\s+(.+?)(,.*|:.*|;.*| because .*)?$|^(.+?)\s+(failed|has failed|fell through|didn't work out|didn't work|did not work|didn't happen|did not happen|couldn't be done|could not be done|is blocked|was blocked|got blocked|went wrong)\b(.*)$",
    )
});

pub(super) fn fail(input: &Input, base: usize, l: &str) -> Option<Command> {
    let c = FAIL.captures(l)?;
    let (step, rest) = match (c.get(1), c.get(2), c.get(3), c.get(4), c.get(5), c.get(7)) {
        (Some(s), r, ..) => (s, r),
        (_, _, Some(s), r, ..) => (s, r),
        (.., Some(s), r) => (s, r),
        _ => return None,
    };
    let step = reference(step.as_str())?;
    if step.split_whitespace().count() > 6 {
        return None;
    }
    let reason = rest.and_then(|r| {
        let text = r.as_str();
        let skip = text.len() - text.trim_start_matches([',', ':', ';', '-', '—', ' ']).len();
        let lead = ["because of ", "because ", "since ", "as ", "due to "]
            .iter()
            .find_map(|p| text[skip..].strip_prefix(p).map(|_| p.len()))
            .unwrap_or(0);
        original(input, base, r.start() + skip + lead..r.end())
    });
    Some(Command::FailStep { step, reason })
}

static DEPEND: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(?:don't|do not|never|can't|cannot)\s+(?:start|do|begin|book)\s+(.+?)\s+(?:before|until)\s+(.+)$|^(?:make|let|have)\s+(.+?)\s+(?:wait for|wait until|depend on|come after|follow)\s+(.+)$|^(.+?)\s+(?:should|must|has to|have to|needs to|need to|can only|can't|cannot|shouldn't|should not|won't|will)\s+(?:wait for|wait until|come after|happen after|start after|begin after|go after|happen until|start until|begin until|only start after|only happen after|only start once|start once|happen once)\s+(.+)$|^(.+?)\s+(?:depends on|waits for|comes after|follows|is blocked by|is waiting on|waits on)\s+(.+)$|^(.+?)\s+(?:can't|cannot|can not)\s+(?:happen|start|begin)\s+(?:until|before)\s+(.+)$|^(?:do|start|begin|schedule)\s+(.+?)\s+(?:only\s+)?(?:after|once)\s+(.+)$",
    )
});

static PARTICIPLE: LazyLock<Regex> =
    LazyLock::new(|| re(r"\s+(is|are|has been|have been|gets|get|got|was|were)\s+[a-z]+(ed|en|t)$"));

/// The prerequisite in "after the accounts are done": "accounts".
fn prerequisite(words: &str) -> Option<String> {
    let words = words.trim();
    let cut = [
        " is done",
        " are done",
        " is finished",
        " are finished",
        " is complete",
        " are complete",
        " is completed",
        " are completed",
        " has been done",
        " have been done",
        " is ready",
        " are ready",
        " is sorted",
        " are in place",
        " is in place",
        " are created",
        " is created",
        " is booked",
        " are booked",
        " finishes",
        " is over",
        " done",
        " finished",
    ]
    .iter()
    .find_map(|s| words.strip_suffix(s))
    .unwrap_or(words);
    // "the sources are collected", "the room gets booked".
    let cut = PARTICIPLE.replace(cut, "");
    reference(&cut)
}

pub(super) fn dependency(l: &str) -> Option<Command> {
    let c = DEPEND.captures(l)?;
    let pairs = [(1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12)];
    let (step, after) = pairs
        .iter()
        .find_map(|&(a, b)| Some((c.get(a)?.as_str(), c.get(b)?.as_str())))?;
    let step = reference(step)?;
    let after = prerequisite(after)?;
    if step.split_whitespace().count() > 6 || after.split_whitespace().count() > 6 {
        return None;
    }
    Some(Command::AddDependency { step, after })
}

static SHIFT: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(push|move|delay|postpone|shift|bump|pull|bring|slide|slip)\s+(.+?)\s+(?:(back|out|forward|up|ahead|earlier|later|off)\s+)?(?:by\s+)?(a|an|one|two|three|four|five|six|seven|ten|fourteen|\d{1,3})\s+(days?|weeks?)(?:\s+(back|later|earlier|forward|out|ahead|sooner))?$",
    )
});

pub(super) fn shift(l: &str) -> Option<Command> {
    let c = SHIFT.captures(l)?;
    let n = match &c[4] {
        "fourteen" => 14,
        word => i64::from(dates::number(word)?),
    };
    let unit = if c[5].starts_with("week") { 7 } else { 1 };
    let direction = [c.get(3), c.get(6)].into_iter().flatten().map(|m| m.as_str()).next();
    let earlier = matches!(direction, Some("forward" | "up" | "ahead" | "earlier" | "sooner"))
        || (direction.is_none() && matches!(&c[1], "pull" | "bring"));
    let step = reference(&c[2])?;
    Some(Command::ShiftStep {
        step,
        days: if earlier { -n * unit } else { n * unit },
    })
}

/// "… after the accounts step", "… once the laptop is ordered": the
/// prerequisite of a step being added, and where the title ends.
pub(super) fn added_after(title: &str) -> (usize, Option<String>) {
    // Same byte offsets as `title`, so the cut lands on its boundaries.
    let lower = super::text::lower_same_offsets(title);
    for marker in [" after ", " once ", " when "] {
        if let Some(at) = lower.rfind(marker)
            && let Some(after) = prerequisite(&lower[at + marker.len()..])
            && after.split_whitespace().count() <= 5
        {
            return (at, Some(after));
        }
    }
    (title.len(), None)
}
