//! Dates and times in chat text, resolved against the user's local "now".
//!
//! Rules (documented for users in the README):
//! - "today", "tomorrow", "day after tomorrow": the user's local date (+1, +2).
//! - a weekday, with or without "this"/"next"/"on"/"by": the next such day
//!   strictly after today.
//! - "Dec 1", "December 1st", "1 December", "the 3rd of March": the next
//!   occurrence on or after today, unless a year is given.
//! - "in N days/weeks/months" (digits or words); "next week" (its Monday);
//!   "next month" (its 1st); "end of the week" (the coming Friday, today if
//!   Friday); "end of the month"; "end of the year".
//! - ISO dates "2027-01-04"; dates in digits whose order is clear
//!   ("14/03/2027", "15.03.2027", "on 14/11"); one that reads two ways
//!   ("01/09/2027") is not read (`problems` asks which day is meant).
//! - two dates joined by "to", "until", "through", "till", "-" or "and" form a
//!   range; an end before its start (and without a year) rolls to next year.
//! - "friday next week", "friday in 2 weeks": that weekday of the week named.
//! - times: "at 9", "9am", "3:30 pm", "14:30", "noon", "midnight", "tonight"
//!   (21:00), "this morning"/"in the morning" (09:00), "this afternoon"
//!   (15:00), "this evening" (19:00); "tonight at 7:30" / "this evening at
//!   8" are after noon unless "am" is said, and "tonight at 12" is midnight;
//!   "half past seven", "quarter to 6" (after noon when the message speaks
//!   of the afternoon or evening).
//! - "the end of November" (its last day), "the first Monday of March",
//!   "the last Friday of the month"; "10-18 October" is a range.
//! - "Monday after next" (the one after the coming Monday), "two weeks
//!   today", "a fortnight from today"; "at 11.30" and "10.30pm" (a dot
//!   between hour and minutes, after "at" or with am/pm); "this arvo" is
//!   this afternoon.
//!
//! The text is scanned as lowercase tokens; every mention carries its byte
//! span so callers can tell which words a date belongs to.

use chrono::{Datelike, Days, Months, NaiveDate, NaiveTime, Weekday};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token<'a> {
    pub(crate) word: &'a str,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// Lowercase words with byte offsets; `:` and `-` stay inside words so
/// "9:30" and "2027-01-04" are one token. Apostrophes are kept ("don't").
pub(crate) fn tokens(text: &str) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    let mut start = None;
    let mut previous = ' ';
    for (i, c) in text.char_indices() {
        // "14/03/2027", "15.03.2027": a slash or dot between digits stays
        // inside the word, so a written date is one token.
        let between_digits = matches!(c, '/' | '.')
            && previous.is_ascii_digit()
            && text[i + 1..].starts_with(|n: char| n.is_ascii_digit());
        previous = c;
        let inside = c.is_alphanumeric()
            || c == ':'
            || c == '\''
            || c == '’'
            || (c == '-' && start.is_some())
            || (between_digits && start.is_some());
        match (inside, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push(Token {
                    word: text[s..i].trim_end_matches([':', '-', '\'', '’']),
                    start: s,
                    end: i,
                });
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push(Token {
            word: text[s..].trim_end_matches([':', '-', '\'', '’']),
            start: s,
            end: text.len(),
        });
    }
    out.retain(|t| !t.word.is_empty());
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DateMention {
    /// Index of the first and one past the last token of the mention.
    pub(crate) first: usize,
    pub(crate) last: usize,
    pub(crate) date: NaiveDate,
    /// Set when the mention named its year (ranges do not roll it).
    pub(crate) explicit_year: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeMention {
    pub(crate) first: usize,
    pub(crate) last: usize,
    pub(crate) time: NaiveTime,
}

pub(crate) fn weekday(word: &str) -> Option<Weekday> {
    Some(match word {
        "mon" | "monday" | "mondays" => Weekday::Mon,
        "tue" | "tues" | "tuesday" | "tuesdays" => Weekday::Tue,
        "wed" | "weds" | "wednesday" | "wednesdays" => Weekday::Wed,
        "thu" | "thur" | "thurs" | "thursday" | "thursdays" => Weekday::Thu,
        "fri" | "friday" | "fridays" => Weekday::Fri,
        "sat" | "saturday" | "saturdays" => Weekday::Sat,
        "sun" | "sunday" | "sundays" => Weekday::Sun,
        _ => return None,
    })
}

pub(crate) fn month(word: &str) -> Option<u32> {
    Some(match word {
        "jan" | "january" => 1,
        "feb" | "february" => 2,
        "mar" | "march" => 3,
        "apr" | "april" => 4,
        "may" => 5,
        "jun" | "june" => 6,
        "jul" | "july" => 7,
        "aug" | "august" => 8,
        "sep" | "sept" | "september" => 9,
        "oct" | "october" => 10,
        "nov" | "november" => 11,
        "dec" | "december" => 12,
        _ => return None,
    })
}

pub(crate) fn number(word: &str) -> Option<u32> {
    if let Ok(n) = word.parse() {
        return Some(n);
    }
    Some(match word {
        "a" | "an" | "one" => 1,
        "two" | "couple" => 2,
        "three" => 3,
        "four" => 4,
        "five" => 5,
        "six" => 6,
        "seven" => 7,
        "eight" => 8,
        "nine" => 9,
        "ten" => 10,
        "eleven" => 11,
        "twelve" => 12,
        _ => return None,
    })
}

/// A day of the month: "1", "1st", "22nd", "3rd", "4th".
fn day_number(word: &str) -> Option<u32> {
    let digits = word.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = &word[digits.len()..];
    if digits.is_empty() || !matches!(suffix, "" | "st" | "nd" | "rd" | "th") {
        return None;
    }
    digits.parse().ok().filter(|d| (1..=31).contains(d))
}

pub(crate) fn year(word: &str) -> Option<i32> {
    (word.len() == 4)
        .then(|| word.parse().ok())
        .flatten()
        .filter(|y| (2000..=2100).contains(y))
}

fn next_weekday(today: NaiveDate, day: Weekday) -> NaiveDate {
    let ahead = (7 + day.num_days_from_monday() as i64 - today.weekday().num_days_from_monday() as i64) % 7;
    today + chrono::Duration::days(if ahead == 0 { 7 } else { ahead })
}

/// A date written in digits: "14/03/2027", "15.03.2027", or "14/11"
/// after "on", "from", "to", "by", "until" or "due". The order is read
/// from the numbers: a day above 12 says which is the month; "01/09/2026"
/// could be either and is not read (steward asks for the date instead).
fn written(word: &str, before: &str, today: NaiveDate) -> Option<NaiveDate> {
    let slashed = word.contains('/');
    let parts: Vec<u32> = word
        .split(['/', '.'])
        .map(|p| p.parse().ok().filter(|_| (1..=4).contains(&p.len())))
        .collect::<Option<_>>()?;
    let (a, b, year) = match parts.as_slice() {
        [a, b, y] if *y >= 100 || slashed => (*a, *b, Some(if *y < 100 { 2000 + *y } else { *y })),
        [a, b]
            if slashed
                && matches!(
                    before,
                    "on" | "from" | "to" | "for" | "by" | "until" | "till" | "due" | "-"
                ) =>
        {
            (*a, *b, None)
        }
        _ => return None,
    };
    let (month, day) = match (a, b) {
        (a, b) if a == b => (a, b),
        (a, b) if a > 12 && b <= 12 => (b, a),
        (a, b) if b > 12 && a <= 12 => (a, b),
        _ => return None,
    };
    match year {
        Some(y) => NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, month, day),
        None => next_month_day(today, month, day),
    }
}

/// The next occurrence of month/day on or after `today`.
fn next_month_day(today: NaiveDate, month: u32, day: u32) -> Option<NaiveDate> {
    let this_year = NaiveDate::from_ymd_opt(today.year(), month, day);
    match this_year {
        Some(d) if d >= today => Some(d),
        _ => NaiveDate::from_ymd_opt(today.year() + 1, month, day),
    }
}

/// "first" … "fourth" as 1 … 4, "last" as 0.
fn ordinal_word(word: &str) -> Option<u32> {
    Some(match word {
        "first" | "1st" => 1,
        "second" | "2nd" => 2,
        "third" | "3rd" => 3,
        "fourth" | "4th" => 4,
        "last" => 0,
        _ => return None,
    })
}

/// The `nth` `day` of month `m` of year `y` (`nth` 0: the last one).
fn nth_weekday(y: i32, m: u32, day: Weekday, nth: u32) -> Option<NaiveDate> {
    if nth == 0 {
        let last = last_day_of_month(NaiveDate::from_ymd_opt(y, m, 1)?);
        let back = (7 + last.weekday().num_days_from_monday() - day.num_days_from_monday()) % 7;
        return last.checked_sub_days(Days::new(u64::from(back)));
    }
    NaiveDate::from_weekday_of_month_opt(y, m, day, u8::try_from(nth).ok()?)
}

fn last_day_of_month(d: NaiveDate) -> NaiveDate {
    let first_next = d
        .with_day(1)
        .and_then(|f| f.checked_add_months(Months::new(1)))
        .unwrap_or(d);
    first_next.pred_opt().unwrap_or(d)
}

/// Every date mentioned in `toks`, in order, ranges resolved.
pub(crate) fn find_dates(toks: &[Token<'_>], today: NaiveDate) -> Vec<DateMention> {
    let w = |i: usize| toks.get(i).map(|t| t.word).unwrap_or("");
    let mut out: Vec<DateMention> = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let found = match_date(toks, i, today, false);
        match found {
            Some(m) => {
                out.push(m);
                i = m.last;
            }
            None => i += 1,
        }
    }
    // Ranges: "from A to B" / "A - B" / "between A and B".
    for n in 1..out.len() {
        let (a, b) = (out[n - 1], out[n]);
        let joined =
            b.first == a.last + 1 && matches!(w(a.last), "to" | "until" | "till" | "through" | "thru" | "and" | "-");
        let adjacent_dash = b.first == a.last && toks[a.last - 1].end < toks[b.first].start;
        // "from 23 dec till the 28th": a day alone ending a range is that
        // day on or after its start.
        let day_only = w(b.first) == "the" && b.last == b.first + 2 && day_number(w(b.first + 1)).is_some();
        if joined && day_only && b.date < a.date {
            let day = b.date.day();
            let same = a.date.with_day(day).filter(|d| *d >= a.date);
            if let Some(date) = same.or_else(|| a.date.with_day(1)?.checked_add_months(Months::new(1))?.with_day(day)) {
                out[n].date = date;
                continue;
            }
        }
        // "next monday through friday": a weekday ending a range is the
        // one after its start.
        let bare_weekday = weekday(w(b.first)).is_some() && b.last == b.first + 1;
        if (joined || adjacent_dash) && b.date < a.date && bare_weekday {
            let ahead = (7 + b.date.weekday().num_days_from_monday() - a.date.weekday().num_days_from_monday()) % 7;
            out[n].date = a.date + Days::new(u64::from(ahead));
            continue;
        }
        if (joined || adjacent_dash)
            && b.date < a.date
            && !b.explicit_year
            && let Some(rolled) = b.date.checked_add_months(Months::new(12))
        {
            out[n].date = rolled;
        }
    }
    out
}

// Long: the date forms in the order they are tried (ISO, weekday,
// "Dec 1", "1 December", relative phrases); first match wins, so they
// read best as one list. A `nested` call (the date after a weekday or a
// range's first day) looks no further ahead, so the work stays linear.
fn match_date(toks: &[Token<'_>], i: usize, today: NaiveDate, nested: bool) -> Option<DateMention> {
    let w = |k: usize| toks.get(k).map(|t| t.word).unwrap_or("");
    let one = |date: NaiveDate, len: usize| {
        Some(DateMention {
            first: i,
            last: i + len,
            date,
            explicit_year: false,
        })
    };
    let word = w(i);

    if word.len() == 10
        && word.as_bytes()[4] == b'-'
        && let Ok(d) = NaiveDate::parse_from_str(word, "%Y-%m-%d")
    {
        return Some(DateMention {
            first: i,
            last: i + 1,
            date: d,
            explicit_year: true,
        });
    }
    if let Some(date) = written(word, i.checked_sub(1).map_or("", w), today) {
        return Some(DateMention {
            first: i,
            last: i + 1,
            date,
            explicit_year: word.matches(['/', '.']).count() == 2,
        });
    }
    // "two weeks from tomorrow", "a week from friday", "3 days from now".
    if !nested && let Some(m) = counted_from(toks, i, today) {
        return Some(m);
    }
    if let Some(m) = holiday(toks, i, today) {
        return Some(m);
    }
    match word {
        "today" | "tonight" => return one(today, 1),
        "tomorrow" | "tmrw" | "tommorow" | "tomorow" | "tmr" => return one(today + Days::new(1), 1),
        "day" if w(i + 1) == "after" && matches!(w(i + 2), "tomorrow" | "tmrw") => return one(today + Days::new(2), 3),
        _ => {}
    }
    // [this|next|coming] weekday
    let (skip, qualifier) = match word {
        "this" | "next" | "coming" => (1, true),
        _ => (0, false),
    };
    if let Some(day) = weekday(w(i + skip)) {
        // "friday 13 nov", "Monday the 4th of January": the date names the
        // day; the weekday only repeats it.
        if !nested
            && let Some(m) = match_date(toks, i + skip + 1, today, true).filter(|m| weekday(w(m.first)).is_none())
        {
            // "friday next week", "friday in 2 weeks": that day of the week
            // the words name.
            let date = if w(m.last - 1).starts_with("week") {
                let monday = m.date - Days::new(u64::from(m.date.weekday().num_days_from_monday()));
                monday + Days::new(u64::from(day.num_days_from_monday()))
            } else {
                m.date
            };
            return Some(DateMention { first: i, date, ..m });
        }
        // "Monday after next": the one after the coming one.
        if w(i + skip + 1) == "after" && w(i + skip + 2) == "next" {
            return one(next_weekday(today, day) + Days::new(7), skip + 3);
        }
        return one(next_weekday(today, day), skip + 1);
    }
    if qualifier && word == "next" {
        match w(i + 1) {
            "week" => {
                let monday = next_weekday(today, Weekday::Mon);
                return one(monday, 2);
            }
            "month" => {
                let first = today.with_day(1)?.checked_add_months(Months::new(1))?;
                return one(first, 2);
            }
            _ => {}
        }
    }
    // end of [the] week|month|year
    if word == "end" && w(i + 1) == "of" && w(i + 2) == "next" && w(i + 3) == "week" {
        let friday = next_weekday(today, Weekday::Mon) + Days::new(4);
        return one(friday, 4);
    }
    if word == "end" && w(i + 1) == "of" && w(i + 2) == "next" && w(i + 3) == "month" {
        let next = today.with_day(1)?.checked_add_months(Months::new(1))?;
        return one(last_day_of_month(next), 4);
    }
    // "the end of november": that month's last day, this year or next.
    if matches!(word, "end" | "last")
        && w(i + 1) == "of"
        && (w(i + 2) != "may" || year(w(i + 3)).is_some())
        && let Some(m) = month(w(i + 2))
    {
        let y = if m < today.month() {
            today.year() + 1
        } else {
            today.year()
        };
        return one(last_day_of_month(NaiveDate::from_ymd_opt(y, m, 1)?), 3);
    }
    // "the first Monday of March", "the last Friday of the month".
    if let Some(nth) = ordinal_word(word)
        && let Some(day) = weekday(w(i + 1))
        && matches!(w(i + 2), "of" | "in")
    {
        let (m, len) = match (w(i + 3), w(i + 4)) {
            ("the" | "this", "month") => (today.month(), 5),
            ("next", "month") => (today.month() % 12 + 1, 5),
            (name, _) => (month(name)?, 4),
        };
        let pick = |y: i32| nth_weekday(y, m, day, nth);
        let date = pick(today.year())
            .filter(|d| *d >= today)
            .or_else(|| pick(today.year() + 1))?;
        return one(date, len);
    }
    if word == "end" && w(i + 1) == "of" {
        let k = if w(i + 2) == "the" || w(i + 2) == "this" {
            i + 3
        } else {
            i + 2
        };
        let len = k + 1 - i;
        match w(k) {
            "week" => {
                let friday = if today.weekday() == Weekday::Fri {
                    today
                } else {
                    next_weekday(today, Weekday::Fri)
                };
                return one(friday, len);
            }
            "month" => return one(last_day_of_month(today), len),
            "year" => return one(NaiveDate::from_ymd_opt(today.year(), 12, 31)?, len),
            _ => {}
        }
    }
    // in N days|weeks|months   ("in a couple of weeks", "in 2 weeks")
    if word == "in" {
        let mut k = i + 1;
        if w(k) == "a" && w(k + 1) == "couple" {
            k += 1;
        }
        if let Some(n) = number(w(k)) {
            let mut u = k + 1;
            if w(u) == "of" {
                u += 1;
            }
            let date = match w(u) {
                "day" | "days" => today.checked_add_days(Days::new(n.into())),
                "week" | "weeks" => today.checked_add_days(Days::new(7 * u64::from(n))),
                "month" | "months" => today.checked_add_months(Months::new(n)),
                _ => None,
            };
            if let Some(date) = date {
                return one(date, u + 1 - i);
            }
        }
    }
    // month day [year]   |   [the] day [of] month [year]
    if let Some(m) = month(word)
        && let Some(d) = day_number(w(i + 1))
    {
        return with_year(toks, i, i + 2, m, d, today);
    }
    let k = if word == "the" { i + 1 } else { i };
    if let Some(d) = day_number(w(k)) {
        let mut j = k + 1;
        if w(j) == "of" {
            j += 1;
        }
        if let Some(m) = month(w(j)) {
            return with_year(toks, i, j + 1, m, d, today);
        }
        // "12 to 26 December", "1st to 6th of feb": a range's first day
        // takes the month of its last.
        if matches!(w(j), "to" | "till" | "until" | "through" | "thru" | "-")
            && !nested
            && let Some(end) =
                match_date(toks, j + 1, today, true).filter(|m| day_number(w(m.first)).is_some() || w(m.first) == "the")
            && let Some(date) = end.date.with_day(d)
        {
            let date = if date > end.date {
                date.checked_sub_months(Months::new(1))?
            } else {
                date
            };
            return one(date, j - i);
        }
        // "the 3rd of next month".
        if w(j) == "next" && w(j + 1) == "month" && j > k + 1 {
            let date = today.with_day(1)?.checked_add_months(Months::new(1))?.with_day(d)?;
            return one(date, j + 2 - i);
        }
        // "the 3rd", "on the 12th": that day of this month, or of the next
        // if it has passed (or this month has no such day).
        let ordinal = w(k).ends_with("st") || w(k).ends_with("nd") || w(k).ends_with("rd") || w(k).ends_with("th");
        if word == "the" && ordinal {
            let this = today.with_day(d).filter(|date| *date >= today);
            let next = || (1..=3).find_map(|n| today.with_day(1)?.checked_add_months(Months::new(n))?.with_day(d));
            if let Some(date) = this.or_else(next) {
                return one(date, 2);
            }
        }
    }
    None
}

/// "two weeks from tomorrow", "a week from friday", "3 days from now": a
/// count of days or weeks after another date.
fn counted_from(toks: &[Token<'_>], i: usize, today: NaiveDate) -> Option<DateMention> {
    let w = |k: usize| toks.get(k).map(|t| t.word).unwrap_or("");
    let n = u64::from(number(w(i))?);
    let days = match w(i + 1) {
        "day" | "days" => n,
        "week" | "weeks" => 7 * n,
        "fortnight" | "fortnights" => 14 * n,
        _ => return None,
    };
    // "two weeks today": from today, said without "from".
    if w(i + 2) == "today" {
        return Some(DateMention {
            first: i,
            last: i + 3,
            date: today.checked_add_days(Days::new(days))?,
            explicit_year: false,
        });
    }
    if w(i + 2) != "from" {
        return None;
    }
    let (base, last) = match w(i + 3) {
        "now" | "today" => (today, i + 4),
        _ => match_date(toks, i + 3, today, true).map(|m| (m.date, m.last))?,
    };
    Some(DateMention {
        first: i,
        last,
        date: base.checked_add_days(Days::new(days))?,
        explicit_year: false,
    })
}

/// Fixed-date holidays said by name: "new year's day", "christmas eve",
/// "valentine's day", "halloween", "boxing day".
fn holiday(toks: &[Token<'_>], i: usize, today: NaiveDate) -> Option<DateMention> {
    let w = |k: usize| toks.get(k).map(|t| t.word).unwrap_or("");
    let (month, day, len) = match (w(i), w(i + 1), w(i + 2)) {
        ("new", "year's" | "years" | "year", "day") => (1, 1, 3),
        ("new", "year's" | "years" | "year", "eve") => (12, 31, 3),
        ("christmas", "day", _) => (12, 25, 2),
        ("christmas", "eve", _) => (12, 24, 2),
        ("boxing", "day", _) => (12, 26, 2),
        ("valentine's" | "valentines", "day", _) => (2, 14, 2),
        ("st" | "saint", "patrick's" | "patricks", "day") => (3, 17, 3),
        ("halloween", ..) => (10, 31, 1),
        _ => return None,
    };
    Some(DateMention {
        first: i,
        last: i + len,
        date: next_month_day(today, month, day)?,
        explicit_year: false,
    })
}

fn with_year(toks: &[Token<'_>], first: usize, next: usize, m: u32, d: u32, today: NaiveDate) -> Option<DateMention> {
    match toks.get(next).and_then(|t| year(t.word)) {
        Some(y) => NaiveDate::from_ymd_opt(y, m, d).map(|date| DateMention {
            first,
            last: next + 1,
            date,
            explicit_year: true,
        }),
        None => next_month_day(today, m, d).map(|date| DateMention {
            first,
            last: next,
            date,
            explicit_year: false,
        }),
    }
}

pub(crate) use super::problems::problem;
pub(crate) use super::times::find_time;

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn dates(text: &str, today: &str) -> Vec<String> {
        let lower = text.to_lowercase();
        find_dates(&tokens(&lower), d(today))
            .iter()
            .map(|m| m.date.to_string())
            .collect()
    }

    #[test]
    fn relative_and_absolute_dates_resolve_against_today() {
        // 2026-11-22 is a Sunday.
        let today = "2026-11-22";
        let cases = [
            ("tomorrow", "2026-11-23"),
            ("today", "2026-11-22"),
            ("the day after tomorrow", "2026-11-24"),
            ("friday", "2026-11-27"),
            ("by next Friday", "2026-11-27"),
            ("on sunday", "2026-11-29"),
            ("Dec 1", "2026-12-01"),
            ("December 1st", "2026-12-01"),
            ("1 December", "2026-12-01"),
            ("the 3rd of March", "2027-03-03"),
            ("March 3", "2027-03-03"),
            ("Nov 22", "2026-11-22"),
            ("Nov 21", "2027-11-21"),
            ("Jan 15, 2028", "2028-01-15"),
            ("in two weeks", "2026-12-06"),
            ("in 3 days", "2026-11-25"),
            ("in a month", "2026-12-22"),
            ("in a couple of weeks", "2026-12-06"),
            ("next week", "2026-11-23"),
            ("next month", "2026-12-01"),
            ("end of the month", "2026-11-30"),
            ("end of the week", "2026-11-27"),
            ("2027-01-04", "2027-01-04"),
            ("friday next week", "2026-11-27"),
            ("monday next week", "2026-11-23"),
            ("friday in 2 weeks", "2026-12-04"),
            ("friday 13 nov", "2027-11-13"),
            ("valentine's day", "2027-02-14"),
        ];
        for (text, expected) in cases {
            assert_eq!(dates(text, today), [expected], "{text}");
        }
    }

    #[test]
    fn ranges_roll_their_end_into_the_next_year() {
        assert_eq!(
            dates("from December 20 to January 3", "2026-11-22"),
            ["2026-12-20", "2027-01-03"]
        );
        assert_eq!(dates("May 4 - May 12", "2026-11-22"), ["2027-05-04", "2027-05-12"]);
    }

    #[test]
    fn words_that_look_like_dates_are_not_dates() {
        assert!(dates("I may need help with the march of progress", "2026-11-22").is_empty());
        assert!(dates("onboard 3 engineers", "2026-11-22").is_empty());
    }

    #[test]
    fn times_of_day_are_found() {
        let time = |text: &str| find_time(&tokens(&text.to_lowercase())).map(|t| t.time.format("%H:%M").to_string());
        assert_eq!(time("remind me tomorrow at 9 to call"), Some("09:00".into()));
        assert_eq!(time("at 3pm"), Some("15:00".into()));
        assert_eq!(time("3:30 pm friday"), Some("15:30".into()));
        assert_eq!(time("at 14:30"), Some("14:30".into()));
        assert_eq!(time("at noon"), Some("12:00".into()));
        assert_eq!(time("tonight"), Some("21:00".into()));
        assert_eq!(time("this afternoon"), Some("15:00".into()));
        assert_eq!(time("call 3 people"), None);
        // In the evening: after noon unless "am" is said; 12 is midnight.
        assert_eq!(time("tonight at 7:30"), Some("19:30".into()));
        assert_eq!(time("tonight at 12"), Some("00:00".into()));
        assert_eq!(time("tonight at 8 am"), Some("08:00".into()));
        assert_eq!(time("this evening at 8"), Some("20:00".into()));
        assert_eq!(time("tonight at 9pm"), Some("21:00".into()));
    }
}
