//! Times of day in chat text: "at 9", "9:30pm", "noon", "tonight at 8",
//! "half past seven", "quarter to 6 this evening" (the rules are listed in
//! [`super::dates`]).

use super::dates::{TimeMention, Token, number};
use chrono::{NaiveTime, Timelike};

/// The first time of day mentioned.
pub(crate) fn find_time(toks: &[Token<'_>]) -> Option<TimeMention> {
    let w = |k: usize| toks.get(k).map(|t| t.word).unwrap_or("");
    for i in 0..toks.len() {
        let hm = |h: u32, m: u32| NaiveTime::from_hms_opt(h, m, 0);
        let found = match (w(i), w(i + 1)) {
            ("noon" | "midday", _) => hm(12, 0).map(|t| (t, 1)),
            // "half past seven", "quarter to 6", "quarter past 9pm".
            ("half" | "quarter", "past" | "to") => {
                spoken(w(i), w(i + 1), w(i + 2), w(i + 3), said_later(toks, i, i + 4))
            }
            ("midnight", _) => hm(0, 0).map(|t| (t, 1)),
            // "tonight at 8", "this evening at 7:30": the hour said, in the
            // evening.
            ("this", "evening") if w(i + 2) == "at" => {
                clock(w(i + 3), w(i + 4)).map(|(t, n)| (evening(t, w(i + 3), n), n + 3))
            }
            ("tonight" | "evening", "at") => clock(w(i + 2), w(i + 3)).map(|(t, n)| (evening(t, w(i + 2), n), n + 2)),
            ("tonight", _) => hm(21, 0).map(|t| (t, 1)),
            ("this" | "in", _) if w(i + 1) == "morning" || (w(i + 1) == "the" && w(i + 2) == "morning") => {
                hm(9, 0).map(|t| (t, if w(i + 1) == "the" { 3 } else { 2 }))
            }
            ("this", "afternoon" | "arvo") => hm(15, 0).map(|t| (t, 2)),
            ("this", "evening") => hm(19, 0).map(|t| (t, 2)),
            // "Sunday evenings at 6": the hour said, after noon.
            // "at 11.30": a dot between hour and minutes, after "at" only
            // ("11.30" alone may be a date or an amount).
            ("at", next) => clock(&dotted(next), w(i + 2)).map(|(t, n)| {
                let t = if said_later(toks, i, i + 1 + n) {
                    after_noon(t, next, n)
                } else {
                    t
                };
                (t, n + 1)
            }),
            // "10.30pm": a dot between hour and minutes, with am/pm.
            (word, next) => {
                let said = if has_meridiem(word) { dotted(word) } else { word.into() };
                clock(&said, next).filter(|(_, n)| *n == 2 || word.contains(':') || has_meridiem(word))
            }
        };
        if let Some((time, len)) = found {
            return Some(TimeMention {
                first: i,
                last: i + len,
                time,
            });
        }
    }
    None
}

/// "half past seven", "quarter to 6": the time and the words used. An
/// hour without am/pm is after noon when the message speaks of the
/// afternoon or the evening ("quarter to 6 this evening").
fn spoken(part: &str, way: &str, hour: &str, next: &str, later: bool) -> Option<(NaiveTime, usize)> {
    let (said, used) = match clock(hour, next) {
        Some((t, n)) if !hour.contains(':') && t.minute() == 0 => (t, n),
        _ => (
            NaiveTime::from_hms_opt(number(hour).filter(|h| (1..=12).contains(h))?, 0, 0)?,
            1,
        ),
    };
    let said = if later { after_noon(said, hour, used) } else { said };
    let minutes = match part {
        "half" => 30,
        _ => 15,
    };
    let time = if way == "to" {
        said - chrono::Duration::minutes(minutes)
    } else {
        said + chrono::Duration::minutes(minutes)
    };
    Some((time, 2 + used))
}

/// Whether the words right around a time (tokens `first..end`) place it
/// after noon: "Sunday evenings at 6", "at 6 in the evening", "quarter to
/// 6 this evening" — not "at 9 about the afternoon standup".
fn said_later(toks: &[Token<'_>], first: usize, end: usize) -> bool {
    let w = |k: usize| toks.get(k).map(|t| t.word).unwrap_or("");
    let later = |word: &str| {
        matches!(
            word,
            "evening" | "evenings" | "afternoon" | "afternoons" | "arvo" | "tonight"
        )
    };
    let before = (first.saturating_sub(2)..first).any(|k| later(w(k)));
    let after = later(w(end))
        || (matches!(w(end), "this" | "in") && later(w(end + 1)))
        || (w(end) == "in" && w(end + 1) == "the" && later(w(end + 2)));
    before || after
}

/// An hour said about the evening without am/pm ("tonight at 8", "at
/// 7:30") is after noon, and "tonight at 12" is midnight; `used` is 2 when
/// "am"/"pm" followed as a word.
fn evening(time: NaiveTime, said: &str, used: usize) -> NaiveTime {
    match time.hour() {
        12 if !has_meridiem(said) && used == 1 => time - chrono::Duration::hours(12),
        _ => after_noon(time, said, used),
    }
}

/// An hour from 1 to 11 said without am/pm, moved after noon; `used` is 2
/// when "am"/"pm" followed as a word.
fn after_noon(time: NaiveTime, said: &str, used: usize) -> NaiveTime {
    if has_meridiem(said) || used == 2 || !(1..12).contains(&time.hour()) {
        return time;
    }
    time + chrono::Duration::hours(12)
}

/// "11.30" as "11:30", "7.45pm" as "7:45pm"; any other word unchanged.
fn dotted(word: &str) -> std::borrow::Cow<'_, str> {
    let body = word.trim_end_matches(['a', 'p', 'm']);
    match body.split_once('.') {
        Some((h, m))
            if (1..=2).contains(&h.len()) && m.len() == 2 && h.chars().chain(m.chars()).all(|c| c.is_ascii_digit()) =>
        {
            std::borrow::Cow::Owned(word.replacen('.', ":", 1))
        }
        _ => std::borrow::Cow::Borrowed(word),
    }
}

fn has_meridiem(word: &str) -> bool {
    word.ends_with("am") || word.ends_with("pm")
}

/// "9", "9am", "9:30", "9:30pm", "14:30", optionally followed by "am"/"pm".
/// Returns the time and how many tokens it used.
fn clock(word: &str, next: &str) -> Option<(NaiveTime, usize)> {
    let (body, mut meridiem) = if let Some(b) = word.strip_suffix("am") {
        (b, Some(false))
    } else if let Some(b) = word.strip_suffix("pm") {
        (b, Some(true))
    } else {
        (word, None)
    };
    let mut used = 1;
    if meridiem.is_none() && matches!(next, "am" | "pm" | "a.m" | "p.m") {
        meridiem = Some(next.starts_with('p'));
        used = 2;
    }
    let (h, m) = match body.split_once(':') {
        Some((h, m)) => (h.parse::<u32>().ok()?, m.parse::<u32>().ok()?),
        None => (body.parse::<u32>().ok()?, 0),
    };
    if body.is_empty() || !body.chars().all(|c| c.is_ascii_digit() || c == ':') {
        return None;
    }
    let h = match meridiem {
        Some(pm) if (1..=12).contains(&h) => (h % 12) + if pm { 12 } else { 0 },
        Some(_) => return None,
        None if h <= 23 => h,
        None => return None,
    };
    NaiveTime::from_hms_opt(h, m, 0).map(|t| (t, used))
}
