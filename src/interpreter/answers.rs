//! Answers to a question steward asked while setting up a goal: the
//! dialogue state is the goal's kind, the slots known, and the slot asked.
//! "never mind" ends it; a command is a command; a message that clearly
//! starts another goal replaces it; anything else is read as an answer —
//! the asked slot from the start of the message ("Maria Garcia", "it's
//! Maria", "the 4th of January", "Lisbon and Porto"), and any other slot
//! it names ("Maria, she starts Jan 4, reporting to Sam").

use super::commands::{self, re};
use super::dates::{self, Token};
use super::goals;
use super::slots::{apply_case, month, person, year};
use super::text::{Input, lower_same_offsets, title_case};
use super::{Command, Interpretation, Pending};
use crate::planner::templates::{SlotSpec, SlotType, Templates};
use chrono::DateTime;
use chrono_tz::Tz;
use regex::Regex;
use serde_json::Value;
use std::sync::LazyLock;

static DISMISS: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^((eh|meh|nah|ok|okay),? )?(leave it|let it be)\b|^i (don't|do not) need (this|it|that)( anymore| any more)?\b|^forget (the|this|my) [a-z-]+( [a-z-]+)? for now\b|^(no|nope|no thanks|not now|let's not|let it go)\W*$|^((we're|we are|i'm|i am) )?not doing (it|this|that)( anymore| after all| at all| today| now| right now)?(\W+(bye|thanks|cheers))?\W*$|^(let's|lets) not (do|bother with) (this|it|that)( after all| anymore| now)?\W*$|^((nah|no|ok|okay|actually|hmm|ahh|ah|oh|meh|ugh|well)[, ]+)?(cancel|cancel (that|it|this)|never ?mind|nevermind|nvm|forget (it|that|about it|the whole thing|all of it|all that)|stop|skip it|drop it|scrap (that|it)|scratch (that|it)|abort|i changed my mind|(don't|do not) bother( setting (it|this|that) up)?|(don't|do not) worry about (it|this|that|the [a-z]+( plan)?)\W*$)\b|^(let's |lets )?(drop|scrap|forget|abandon|ditch) (this|it|that)( one)?\W*$",
    )
});

/// A correction inside an answer: the answer is what follows it.
static CORRECTION: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b(sorry,? no|actually,? no|no wait|i meant|i mean|make it|scratch that)\b[,:]?\s*"));

/// Putting off the answer: "let me check", "I'll get back to you".
static DEFER: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^((hmm+|um+|uh+|ok|okay|well|oh)[, ]+)*(let me (ask|check|think|find out|get back)|i('ll| will) (ask|check|get back|find out|let you know)|i need to (ask|check)|not sure( yet)?|no idea( yet)?|idk( yet)?|i don't know( yet)?|dunno|good question|give me a (sec|second|minute|moment))\b",
    )
});

/// Putting off the answer anywhere in it: "their CTO is on leave, I'll
/// find out next week", "somewhere warm, haven't decided", "hmm can't
/// remember, hold on".
static DEFER_ANYWHERE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(wherever|whichever|whatever|whoever|anywhere|the ones)\b|\b(i('ll| will) (ask|check|find out|get back|let you know|confirm|tell you)|(can't|cant|don't|dont) remember|(haven't|havent|have not|not) (yet )?decided|undecided|hold on\W*$|let me (ask|check|think|find out|get back|confirm))\b",
    )
});

/// A question back instead of an answer: "what topics do people usually
/// pick?" ("what about Lisbon?" suggests one, and "the 14th?" or "should
/// be Maria?" answer with doubt: both are read as answers).
fn asks_back(said_with_mark: &str) -> bool {
    let first = said_with_mark.split_whitespace().next().unwrap_or("");
    said_with_mark.trim_end().ends_with('?')
        && matches!(first, "what" | "which" | "who" | "why" | "how")
        && !said_with_mark.starts_with("what about")
        && !said_with_mark.starts_with("how about")
}

/// Words that drop the goal being set up, before what replaces it.
static SWITCH: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^((actually|ok|okay|hmm|well|wait|no|nah|oh|sorry)[, ]+)*(no|nah|scrap (that|it|this)|forget (it|that|this|about it|the [^,;]+)|never ?mind( that)?|cancel (that|it|this)|change of plans?|on second thought|i changed my mind|(a )?different thing|something else( entirely)?)\s*[,;:.!—–-]+\s*",
    )
});

/// Another goal after words that drop the one being set up, or said to be
/// "instead": read alone, it must be a goal (of any kind, this one's too).
fn switched(input: &Input, templates: &Templates) -> Option<Interpretation> {
    let lower = input.lower.trim();
    let lead = SWITCH.find(lower).map(|m| m.end());
    let instead = lower.trim_end_matches(['.', '!', ' ']).ends_with(" instead");
    let from = match (lead, instead) {
        (Some(at), _) => at,
        (None, true) => 0,
        (None, false) => return None,
    };
    let offset = input.lower.len() - input.lower.trim_start().len();
    let rest = input.text.get(offset + from..)?;
    let rest = rest.trim().trim_end_matches(['.', '!', ' ']);
    let rest = rest
        .strip_suffix(" instead")
        .unwrap_or(rest)
        .replacen(" instead,", ",", 1);
    let (kind, slots) = goals::detect(&Input::new(&rest, input.today), templates)?;
    Some(Interpretation::NewGoal { kind, slots })
}

static INTERJECTION: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^(?i)((oh|ah|um|uh|hmm|oops|sorry|my bad|whoops|ok|okay|so)[ ,!]*)+,\s*|^(?i)(oh|ah|ok so|okay so|so) +")
});

/// Words before the answer itself: "it's Maria", "she's called Maria".
const LEADS: &[&str] = &[
    "her name's",
    "his name's",
    "their name's",
    "name's",
    "her name is",
    "his name is",
    "their name is",
    "the name is",
    "name is",
    "she's called",
    "he's called",
    "they're called",
    "she is called",
    "he is called",
    "it's called",
    "it's about",
    "it is about",
    "called",
    "named",
    "it's for",
    "it is for",
    "it's",
    "its",
    "it is",
    "that's",
    "that is",
    "we're calling it",
    "we are calling it",
    "we'll call it",
    "let's call it",
    "he'll report to",
    "she'll report to",
    "they'll report to",
    "he reports to",
    "she reports to",
    "they report to",
    "reports to",
    "reporting to",
    "he reports into",
    "she reports into",
    "they report into",
    "reports into",
    "reporting into",
    "he'll be our new",
    "she'll be our new",
    "they'll be our new",
    "he'll be our",
    "she'll be our",
    "they'll be our",
    "he'll be a",
    "he'll be an",
    "she'll be a",
    "she'll be an",
    "they'll be a",
    "they'll be an",
    "he'll be",
    "she'll be",
    "they'll be",
    "she's",
    "he's",
    "they're",
    "we're going to",
    "going to",
    "to",
    "the",
    "on",
    "by",
    "from",
    "a",
    "an",
];

/// Where an answer's first part ends: a comma, or words that start another
/// detail ("Maria starting Jan 4", "Omar as a backend engineer").
const ENDS: &[&str] = &[
    " — ",
    " – ",
    " starting",
    " starts",
    " start",
    " who ",
    " joining",
    " joins",
    " reporting",
    " as a ",
    " as an ",
    " from ",
    " and she",
    " and he",
    " and his ",
    " and her ",
    " and their ",
];

/// Where an answer ends only when a date follows: "the impact of remote
/// work on productivity" is one topic, "Maria on the 4th" is two details.
const ENDS_BEFORE_A_DATE: &[&str] = &[" on ", " by ", " due ", " for "];

pub(super) fn read(
    input: &Input,
    now: DateTime<Tz>,
    templates: &Templates,
    pending: &Pending,
) -> Option<Interpretation> {
    let template = templates.get(&pending.kind)?;
    // "the 12th, sorry no, the 14th", "sorry, I meant we leave on the
    // 14th": what follows the correction is the answer.
    let corrected = CORRECTION.find_iter(&input.lower).last().map(|m| m.end());
    let owned;
    let input = match corrected.and_then(|at| input.text.get(at..)) {
        Some(rest) if !rest.trim().is_empty() => {
            owned = Input::new(rest.trim(), input.today);
            &owned
        }
        _ => input,
    };
    let said = input.lower.trim().trim_end_matches(['.', '!', '?', ' ']);
    // "scrap that, plan a trip to Oslo instead": another goal, asked for
    // after words that drop this one.
    if let Some(reading) = switched(input, templates) {
        return Some(reading);
    }
    if DISMISS.is_match(said) {
        return Some(Interpretation::Command(Command::Dismiss {}));
    }
    // "hmm let me ask my wife first": the answer is still to come.
    if DEFER.is_match(said) || DEFER_ANYWHERE.is_match(said) {
        return Some(Interpretation::Chat);
    }
    if let Some(command) = commands::command(input, now) {
        return Some(Interpretation::Command(command));
    }
    if asks_back(input.lower.trim()) {
        return Some(Interpretation::Chat);
    }
    let toks = input.tokens();
    // Another goal, asked for in so many words, replaces this one.
    if let Some((kind, slots)) = goals::detect(input, templates)
        && kind != pending.kind
        && goals::requests(&toks)
    {
        return Some(Interpretation::NewGoal { kind, slots });
    }
    let asked = template.slots.iter().find(|s| s.name == pending.asked)?;
    let mut slots = pending.slots.clone();
    // A list is the whole answer ("Kyoto, Osaka and Nara"); anything else
    // is its first part ("Maria, she starts Jan 4").
    let first = match asked.kind {
        SlotType::List => None,
        _ => first_part(input, matches!(asked.kind, SlotType::Person | SlotType::Org)),
    };
    // An answer with a time that cannot be used ("2027-10-12" when that
    // has passed, "29/02/2027") gets a question.
    if asked.kind == SlotType::Date
        && let Some(problem) = dates::problem(&input.lower, &toks, now)
    {
        return Some(Interpretation::Unclear { problem });
    }
    let answer = first
        .and_then(|part| answer(asked, &Input::new(&part, input.today)))
        .or_else(|| answer(asked, input));
    let found_asked = answer.is_some();
    if let Some(value) = answer {
        slots.insert(asked.name.clone(), value);
    }
    // Other slots the answer names fill the ones still missing.
    let mut others = false;
    if let Some((kind, more)) = goals::detect_as(input, template) {
        debug_assert_eq!(kind, pending.kind);
        for (name, value) in more {
            if name != asked.name && !slots.contains_key(&name) {
                slots.insert(name, value);
                others = true;
            }
        }
    }
    end_after_start(&mut slots, &toks, input.today);
    (found_asked || others).then(|| Interpretation::NewGoal {
        kind: pending.kind.clone(),
        slots,
    })
}

/// The answer's first part, up to a comma or a word that starts another
/// detail, without lead words.
fn first_part(input: &Input, name: bool) -> Option<String> {
    let text = trim_end(input.text.trim());
    // "oh sorry, it's Grace Okonkwo": an interjection is not the answer.
    let text = INTERJECTION.find(text).map_or(text, |m| &text[m.end()..]);
    // Same byte offsets as `text`, so the cut lands on its boundaries.
    let lower = lower_same_offsets(text);
    let mut end = text.find(',').unwrap_or(text.len());
    for marker in ENDS {
        if let Some(at) = lower.find(marker)
            && at > 0
        {
            end = end.min(at);
        }
    }
    for marker in ENDS_BEFORE_A_DATE {
        let dated = |at: usize| {
            let rest = &lower[at + 1..];
            let toks = dates::tokens(rest);
            dates::find_dates(&toks, input.today)
                .first()
                .is_some_and(|m| m.first <= 1)
        };
        if let Some(at) = lower.find(marker)
            && at > 0
            && dated(at)
        {
            end = end.min(at);
        }
    }
    let part = text.get(..end)?.trim();
    Some(strip_lead(part, name).to_owned()).filter(|p| !p.is_empty())
}

/// `text` without its lead words; a `name` keeps a capitalised first
/// "A"/"An" ("An Nguyen", "A Plus Tutoring Ltd"), not "a new hire called …".
fn strip_lead(text: &str, name: bool) -> &str {
    let mut text = text.trim();
    // "the new app is called Driftwood": what it is called is the answer.
    let lower = lower_same_offsets(text);
    if let Some(at) = [" is called ", " is named ", " will be called ", " will be named "]
        .iter()
        .find_map(|k| lower.find(k).map(|at| at + k.len()))
    {
        text = text.get(at..).unwrap_or(text).trim();
    }
    loop {
        let lower = lower_same_offsets(text);
        let article = |p: &&&str| name && text.starts_with('A') && matches!(**p, "a" | "an");
        let Some(lead) = LEADS
            .iter()
            .filter(|p| !article(p))
            .find(|p| lower.starts_with(&format!("{p} ")))
        else {
            return text;
        };
        text = text.get(lead.len() + 1..).unwrap_or_default().trim();
    }
}

/// The value of `slot` in a short answer, if it holds one.
fn answer(slot: &SlotSpec, input: &Input) -> Option<Value> {
    let toks = input.tokens();
    let name = matches!(slot.kind, SlotType::Person | SlotType::Org);
    let text = strip_lead(trim_end(input.text.trim()), name);
    match slot.kind {
        SlotType::Date => dates::find_dates(&toks, input.today)
            .first()
            .map(|m| Value::from(m.date.format("%Y-%m-%d").to_string())),
        SlotType::Person => {
            if !dates::find_dates(&toks, input.today).is_empty() {
                return person(input, &toks, &[], false, true).map(Value::from);
            }
            let words: Vec<&str> = text.split_whitespace().collect();
            let name_like = |w: &&str| w.chars().all(|c| c.is_alphabetic() || matches!(c, '-' | '\'' | '’'));
            (!words.is_empty() && words.len() <= 4 && words.iter().all(name_like))
                .then(|| Value::from(title_case(&words.join(" "))))
        }
        SlotType::Org | SlotType::Text => {
            // "the people ops team" answers "which team?" with "people ops".
            let text = match slot.name.as_str() {
                "team" => text
                    .strip_suffix(" team")
                    .or_else(|| text.strip_suffix(" Team"))
                    .unwrap_or(text),
                _ => text,
            };
            let ok = !text.is_empty() && text.split_whitespace().count() <= 8 && !mostly_dates(&toks, input);
            ok.then(|| Value::from(apply_case(text, slot.case)))
        }
        SlotType::List => {
            let items: Vec<Value> = text
                .split([',', '&', '+'])
                .flat_map(|p| p.split(" and "))
                .flat_map(|p| p.split(" n "))
                .flat_map(|p| p.split(" then "))
                .flat_map(|p| p.split(" plus "))
                .map(|i| strip_lead(i.trim(), false).trim())
                // "a lipid panel — starting tomorrow": a dash ends the item.
                .map(|i| i.split(" - ").next().unwrap_or(i).trim())
                .map(|i| {
                    [
                        "just a ", "just an ", "just ", "only ", "then ", "a ", "an ", "and ", "plus ",
                    ]
                    .iter()
                    .find_map(|a| i.strip_prefix(a))
                    .unwrap_or(i)
                    .trim()
                })
                // "just Vienna this time".
                .map(|i| {
                    [" this time", " this year", " for now"]
                        .iter()
                        .find_map(|t| i.strip_suffix(t))
                        .unwrap_or(i)
                        .trim()
                })
                .filter(|i| !i.is_empty())
                .map(|i| Value::from(apply_case(i, slot.case)))
                .collect();
            (!items.is_empty() && !mostly_dates(&toks, input)).then(|| Value::from(items))
        }
        SlotType::Month => month(&toks, input).map(Value::from),
        SlotType::Year => year(&toks, input.today)
            .or_else(|| {
                toks.iter()
                    .find(|t| t.word.len() == 4 && t.word.starts_with("20") && t.word.parse::<u32>().is_ok())
                    .map(|t| t.word.to_owned())
            })
            .map(Value::from),
    }
}

/// The text without closing punctuation, except the dot of a last initial
/// ("Zeta-Nine Robotics S.A.", "Kwame A.").
fn trim_end(text: &str) -> &str {
    let text = text.trim_end_matches([' ', '—', '–', '-', ',', ';', ':']);
    let trimmed = text.trim_end_matches(['.', '!', '?']);
    let initial = trimmed
        .rsplit(['.', ' '])
        .next()
        .is_some_and(|w| w.chars().count() == 1);
    if initial && text[trimmed.len()..].starts_with('.') {
        &text[..trimmed.len() + 1]
    } else {
        trimmed
    }
}

/// Whether the message is mostly a date ("next Friday"): not a name.
fn mostly_dates(toks: &[Token<'_>], input: &Input) -> bool {
    dates::find_dates(toks, input.today)
        .iter()
        .map(|m| m.last - m.first)
        .sum::<usize>()
        * 2
        >= toks.len()
}

/// "back on the 16th" for a trip from Oct 9 is Oct 16: an end given as a
/// day alone, read before the start, is that day on or after the start.
fn end_after_start(slots: &mut serde_json::Map<String, Value>, toks: &[Token<'_>], today: chrono::NaiveDate) {
    use chrono::{Datelike, Months, NaiveDate};
    let day = |name: &str| {
        slots
            .get(name)
            .and_then(Value::as_str)
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
    };
    let (Some(start), Some(end)) = (day("start_date"), day("end_date")) else {
        return;
    };
    let said_alone = dates::find_dates(toks, today).iter().any(|m| {
        m.date == end && !m.explicit_year && toks[m.first..m.last].iter().all(|t| dates::month(t.word).is_none())
    });
    if end >= start || !said_alone {
        return;
    }
    let rolled = (1..=12)
        .filter_map(|n| end.checked_add_months(Months::new(n)))
        .find(|d| *d >= start && d.day() == end.day());
    if let Some(date) = rolled {
        slots.insert("end_date".into(), Value::from(date.format("%Y-%m-%d").to_string()));
    }
}
