//! The periods a goal is about: the month being closed ("June", "last
//! month's books") and a budget's fiscal year ("FY27", "the 2028 budget").

use super::dates::{self, Token};
use super::text::{Input, find_phrase};
use chrono::{Datelike, Months};

/// A month as YYYY-MM: its most recent occurrence not after this month.
pub(super) fn month(toks: &[Token<'_>], input: &Input) -> Option<String> {
    let today = input.today;
    let said = |p: &str| find_phrase(toks, p).is_some() || find_phrase(toks, &format!("{p}'s")).is_some();
    if said("last month") || said("previous month") {
        let d = today.with_day(1)?.checked_sub_months(Months::new(1))?;
        return Some(d.format("%Y-%m").to_string());
    }
    if said("this month") {
        return Some(today.format("%Y-%m").to_string());
    }
    for (i, t) in toks.iter().enumerate() {
        let Some(m) = dates::month(t.word) else { continue };
        // "may" is a month only when it looks like one.
        if t.word == "may" && !matches!(toks.get(i.wrapping_sub(1)).map(|t| t.word), Some("for" | "of" | "in")) {
            continue;
        }
        // A month followed by a day number is a date, not a period.
        if toks.get(i + 1).is_some_and(|n| {
            n.word
                .trim_end_matches(|c: char| c.is_ascii_alphabetic())
                .parse::<u32>()
                .is_ok_and(|d| d <= 31)
        }) {
            continue;
        }
        let explicit = toks
            .get(i + 1)
            .and_then(|n| n.word.parse::<i32>().ok())
            .filter(|y| (2000..=2100).contains(y));
        let year = explicit.unwrap_or(if m > today.month() {
            today.year() - 1
        } else {
            today.year()
        });
        return Some(format!("{year}-{m:02}"));
    }
    None
}

/// A fiscal year: "FY2027", "FY27", "fiscal year 2027", "for 2027", "the
/// 2028 budget", or a year said alone ("finance team, 2027"). "Next year"
/// is left unresolved, as the development set reads it. A year far from
/// `today`'s ("2025 actuals" in 2026, "needs 2000 more") is not a fiscal
/// year being planned.
pub(super) fn year(toks: &[Token<'_>], today: chrono::NaiveDate) -> Option<String> {
    let near = |y: &str| {
        y.parse::<i32>()
            .is_ok_and(|y| (today.year()..=today.year() + 5).contains(&y))
    };
    if let Some(y) = named_year(toks).filter(|y| near(y)) {
        return Some(y);
    }
    // A year that is not part of a date ("Jan 8 2027") or a deadline ("by
    // the end of 2026").
    let w = |k: usize| toks.get(k).map_or("", |t| t.word);
    let day = |s: &str| {
        s.trim_end_matches(|c: char| c.is_ascii_alphabetic())
            .parse::<u32>()
            .is_ok_and(|d| d <= 31)
    };
    (0..toks.len())
        .find(|&i| {
            let t = w(i);
            let before = if i > 0 { w(i - 1) } else { "" };
            t.len() == 4
                && near(t)
                && dates::month(before).is_none()
                && !day(before)
                && !matches!(before, "by" | "before" | "until" | "in" | "since" | "of" | "end")
                && dates::month(w(i + 1)).is_none()
        })
        .map(|i| w(i).to_owned())
}

fn named_year(toks: &[Token<'_>]) -> Option<String> {
    for (i, t) in toks.iter().enumerate() {
        let w = t.word;
        if let Some(digits) = w.strip_prefix("fy") {
            let digits = if digits.is_empty() {
                toks.get(i + 1).map(|n| n.word).unwrap_or("")
            } else {
                digits
            };
            match digits.len() {
                4 if digits.parse::<u32>().is_ok() => return Some(digits.to_owned()),
                2 if digits.parse::<u32>().is_ok() => return Some(format!("20{digits}")),
                _ => {}
            }
        }
        if w.len() == 4 && w.starts_with("20") && w.parse::<u32>().is_ok() {
            let before = if i > 0 { toks[i - 1].word } else { "" };
            if matches!(before, "for" | "year" | "fy" | "of" | "fiscal") {
                return Some(w.to_owned());
            }
        }
    }
    None
}
