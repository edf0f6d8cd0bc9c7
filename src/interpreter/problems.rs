//! Times that cannot be used: days that do not exist ("Feb 30",
//! "29/02/2027", "25:00") and times already past ("yesterday", "in -5
//! minutes", an ISO date before today). Steward asks instead of guessing.

use super::dates::{Token, find_time, month, weekday, year};
use chrono::{Datelike, NaiveDate};

/// Dates written in digits ("29/02/2027", "01/09/27", "15.03.2027"; with
/// dots only with a four-digit year, so "v1.2.3" is no date; without a
/// year only after "on", "by" … , so "1/2 kg" is none), each as its two
/// readings: day first and month first (`None` where no such day).
fn written_readings(lower: &str) -> impl Iterator<Item = (Option<NaiveDate>, Option<NaiveDate>, bool)> + '_ {
    let words: Vec<&str> = lower.split_whitespace().collect();
    (0..words.len()).filter_map(move |i| {
        let before = if i == 0 { "" } else { words[i - 1] };
        let word = words[i].trim_matches(|c: char| !c.is_ascii_digit());
        let slashed = word.contains('/');
        let parts: Vec<&str> = word.split(['/', '.']).collect();
        // "31/09" without a year: checked in a leap year, so only a day no
        // year has is refused.
        let (a, b, y) = match parts.as_slice() {
            [a, b] if slashed && matches!(before, "on" | "from" | "to" | "by" | "until" | "till" | "due") => {
                (a, b, &"2000")
            }
            [a, b, y] if slashed || y.len() == 4 => (a, b, y),
            _ => return None,
        };
        let (a, b, y) = (a.parse::<u32>().ok()?, b.parse::<u32>().ok()?, y.parse::<i32>().ok()?);
        let y = if y < 100 { 2000 + y } else { y };
        let year_given = parts.len() == 3;
        Some((
            NaiveDate::from_ymd_opt(y, b, a),
            NaiveDate::from_ymd_opt(y, a, b),
            year_given,
        ))
    })
}

/// "29/02/2027", "31/04/2026": a written date that is no day read either
/// way round.
fn slashed_date_invalid(lower: &str) -> bool {
    written_readings(lower).any(|(day_first, month_first, _)| day_first.is_none() && month_first.is_none())
}

/// "01/09/2027": a written date that is a different day each way round.
fn slashed_date_ambiguous(lower: &str) -> bool {
    written_readings(lower).any(|(d, m, _)| d.is_some() && m.is_some() && d != m)
}

/// A time the person gave that cannot be used: a day or time that does not
/// exist ("Feb 29" in a common year, "Nov 31", "December 32", "25:00",
/// "13pm"), or one already past ("yesterday", "last Monday", "3 days ago",
/// "in -5 minutes", "at 8am today" at 10:00, an ISO date before today).
// Long: each kind of impossible or past time is one short check, in one
// scan over the words, so the list of what is refused reads in one place.
pub(crate) fn problem(lower: &str, toks: &[Token<'_>], now: chrono::DateTime<chrono_tz::Tz>) -> Option<super::Problem> {
    use super::Problem::{TimeInvalid, TimePast};
    // Tokens drop a leading minus: "in -5 minutes" is read on the text
    // ("Berlin - Hamburg" or "check-in -" are not).
    let negative = ["in -", "in minus "].iter().any(|cue| {
        lower.match_indices(cue).any(|(at, _)| {
            let before = lower[..at].chars().next_back();
            let after = lower[at + cue.len()..].trim_start().chars().next();
            before.is_none_or(|c| !c.is_alphanumeric() && c != '-') && after.is_some_and(|c| c.is_ascii_digit())
        })
    });
    if negative {
        return Some(TimePast);
    }
    if slashed_date_invalid(lower) {
        return Some(TimeInvalid);
    }
    if slashed_date_ambiguous(lower) {
        return Some(super::Problem::DateAmbiguous);
    }
    let today = now.date_naive();
    // "15.01.2026" when that day is gone (read one way, or the same both;
    // without a year a date is the next such day).
    let past = |(d, m, year_given): (Option<NaiveDate>, Option<NaiveDate>, bool)| match (d, m) {
        _ if !year_given => false,
        (Some(d), Some(m)) => d == m && d < today,
        (Some(x), None) | (None, Some(x)) => x < today,
        (None, None) => false,
    };
    if written_readings(lower).any(past) {
        return Some(TimePast);
    }
    let w = |k: usize| toks.get(k).map(|t| t.word).unwrap_or("");
    let raw_day = |word: &str| -> Option<u32> {
        let digits = word.trim_end_matches(|c: char| c.is_ascii_alphabetic());
        (digits.len() <= 2 && !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()))
            .then(|| digits.parse().ok())
            .flatten()
    };
    let exists = |m: u32, d: u32, year: Option<i32>| -> bool {
        let y = year.unwrap_or_else(|| {
            // The next occurrence: this year unless that day has passed.
            let this = today.year();
            match NaiveDate::from_ymd_opt(this, m, d.min(28)) {
                Some(day) if (m, d) < (today.month(), today.day()) && day < today => this + 1,
                _ => this,
            }
        });
        NaiveDate::from_ymd_opt(y, m, d).is_some()
    };
    for i in 0..toks.len() {
        // "Feb 29", "November 31", "december 32nd", "31 April", "the 31st of June".
        let named = |k: usize| month(w(k)).filter(|_| !matches!(w(k), "may" | "march") || raw_day(w(k + 1)).is_some());
        if let (Some(m), Some(d)) = (named(i), raw_day(w(i + 1)))
            && !exists(m, d, year(w(i + 2)))
        {
            return Some(TimeInvalid);
        }
        // "November the 31st".
        if let (Some(m), "the", Some(d)) = (month(w(i)), w(i + 1), raw_day(w(i + 2)))
            && !exists(m, d, year(w(i + 3)))
        {
            return Some(TimeInvalid);
        }
        let k = if w(i + 1) == "of" { i + 2 } else { i + 1 };
        if let (Some(d), Some(m)) = (raw_day(w(i)), month(w(k)))
            && (i == 0 || month(w(i - 1)).is_none())
            && !exists(m, d, year(w(k + 1)))
        {
            return Some(TimeInvalid);
        }
        // "25:00", "13pm", "at 24".
        let word = w(i);
        if let Some((h, m)) = word.split_once(':')
            && h.len() <= 2
            && let (Ok(h), Ok(m)) = (h.parse::<u32>(), m.trim_end_matches(['a', 'p', 'm']).parse::<u32>())
            && (h > 23 || m > 59)
        {
            return Some(TimeInvalid);
        }
        let hour = word.strip_suffix("pm").or_else(|| word.strip_suffix("am"));
        if let Some(h) = hour.and_then(|h| h.parse::<u32>().ok())
            && !(1..=12).contains(&h)
        {
            return Some(TimeInvalid);
        }
        if word == "at" && w(i + 1).parse::<u32>().is_ok_and(|h| h > 24) {
            return Some(TimeInvalid);
        }
        // "on the 32nd": no month has that day.
        let ordinal = ["st", "nd", "rd", "th"].iter().any(|s| word.ends_with(s));
        if ordinal && i > 0 && w(i - 1) == "the" && raw_day(word).is_some_and(|d| d > 31) {
            return Some(TimeInvalid);
        }
        // The past, where it is the time asked for ("remind me yesterday",
        // "move it to last Monday", "due 2 days ago"), not a remark
        // ("the invoice we sent 2 weeks ago").
        let cue = |k: usize| {
            k < toks.len()
                && matches!(
                    w(k),
                    "me" | "to" | "on" | "by" | "for" | "at" | "due" | "until" | "till"
                )
        };
        // "to the day before yesterday".
        let day_before = |k: usize| {
            k >= 2
                && w(k - 1) == "before"
                && w(k - 2) == "day"
                && (k == 2 || cue(k - 3) || k == 3 && w(0) == "the" || k >= 4 && cue(k - 4))
        };
        let past = match (word, w(i + 1)) {
            ("yesterday", _) => i == 0 || cue(i - 1) || day_before(i),
            ("last", next) => (weekday(next).is_some() || next == "night") && (i == 0 || cue(i - 1)),
            // "due 2 days ago"; "two days ago" alone, as an answer.
            ("ago", _) => i >= 3 && cue(i - 3) || i == 2 && toks.len() == 3,
            _ => false,
        };
        if past {
            return Some(TimePast);
        }
        // ISO dates: one that does not exist, or one already past.
        let iso = word.len() == 10 && word.as_bytes().get(4) == Some(&b'-') && word.as_bytes().get(7) == Some(&b'-');
        if iso {
            match NaiveDate::parse_from_str(word, "%Y-%m-%d") {
                Ok(date) if date < today => return Some(TimePast),
                Ok(_) => {}
                Err(_) if word.chars().filter(char::is_ascii_digit).count() == 8 => return Some(TimeInvalid),
                Err(_) => {}
            }
        }
        // "10 November 2026", "Nov 10 2026": a named date with a past year-day.
        if let (Some(d), Some(m), Some(y)) = (raw_day(w(i)), month(w(i + 1)), year(w(i + 2)))
            && NaiveDate::from_ymd_opt(y, m, d).is_some_and(|date| date < today)
        {
            return Some(TimePast);
        }
        if let (Some(m), Some(d), Some(y)) = (month(w(i)), raw_day(w(i + 1)), year(w(i + 2)))
            && NaiveDate::from_ymd_opt(y, m, d).is_some_and(|date| date < today)
        {
            return Some(TimePast);
        }
    }
    // A time today that has passed: "at 8am today", "this morning at 7".
    let today_named = toks.iter().any(|t| matches!(t.word, "today" | "tonight"))
        || toks
            .windows(2)
            .any(|p| p[0].word == "this" && matches!(p[1].word, "morning" | "afternoon" | "arvo" | "evening"));
    if today_named
        && let Some(t) = find_time(toks)
        && t.time < now.time()
        && !(t.time == chrono::NaiveTime::MIN && toks.iter().any(|t| t.word == "tonight"))
        && !toks.iter().any(|t| t.word == "tomorrow")
    {
        return Some(TimePast);
    }
    None
}
