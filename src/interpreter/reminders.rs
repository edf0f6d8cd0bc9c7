//! Reminders and digests in plain words: "remind me tomorrow at 9 to …",
//! "in 20 minutes", "send me a weekly digest on Mondays at 8".

use super::Command;
use super::commands::re;
use super::dates;
use super::text::Input;
use crate::triggers::Frequency;
use chrono::{DateTime, NaiveTime, TimeZone};
use chrono_tz::Tz;
use regex::Regex;
use std::sync::LazyLock;

pub(super) static DIGEST: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(digests?|(daily|weekly) (summary|summaries|emails?|updates?|recap|round-?up|roundup))\b|\b(monday|tuesday|wednesday|thursday|friday|saturday|sunday|morning|weekly|daily) (morning )?(summary|recap|round-?up) (email|mail|message)\b|\b(summary|summaries|recap|round-?up)\b.*\b(every|each) (morning|day|evening|week|weekday|monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b",
    )
});
static DIGEST_OFF: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(stop|kill|no more|turn off|switch off|cancel|disable|unsubscribe|don'?t (send|want)|do not (send|want)|(turn|switch) (the |my )?(digests?|summary|summaries|recap) off)\b",
    )
});
static WEEKDAY: LazyLock<Regex> = LazyLock::new(|| re(r"\b(mon|tues?|wed(nes)?|thu(rs)?|fri|sat(ur)?|sun)(days?)?\b"));

/// A digest schedule in words: off, weekly (on a named day), or daily.
pub(super) fn digest(input: &Input, l: &str) -> Command {
    if DIGEST_OFF.is_match(l) {
        return Command::Digest {
            frequency: Frequency::Off,
            weekday: None,
            time: None,
        };
    }
    // "a daily digest instead of the weekly one": what follows "instead
    // of" is what the user leaves.
    let l = l.split(" instead of ").next().unwrap_or(l);
    let weekday = WEEKDAY.captures(l).map(|c| {
        match &c[1] {
            "mon" => "monday",
            "tue" | "tues" => "tuesday",
            "wed" | "wednes" => "wednesday",
            "thu" | "thurs" => "thursday",
            "fri" => "friday",
            "sat" | "satur" => "saturday",
            _ => "sunday",
        }
        .to_owned()
    });
    let weekly = weekday.is_some() || l.contains("weekly") || l.contains("every week") || l.contains("each week");
    let time = dates::find_time(&input.tokens()).map(|t| t.time.format("%H:%M").to_string());
    Command::Digest {
        frequency: if weekly { Frequency::Weekly } else { Frequency::Daily },
        weekday: if weekly {
            Some(weekday.unwrap_or_else(|| "monday".into()))
        } else {
            None
        },
        time,
    }
}

/// "in 10 minutes", "in an hour", "in 2 hrs": a reminder relative to now.
static IN_DURATION: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\bin (\d{1,3}|a|an|one|two|three|five|ten|fifteen|twenty|thirty) ?(minutes?|mins?|hours?|hrs?)( and a half)?\b",
    )
});

fn in_duration(l: &str) -> Option<(std::ops::Range<usize>, chrono::Duration)> {
    let caps = IN_DURATION.captures(l)?;
    let n: i64 = match &caps[1] {
        "a" | "an" | "one" => 1,
        "two" => 2,
        "three" => 3,
        "five" => 5,
        "ten" => 10,
        "fifteen" => 15,
        "twenty" => 20,
        "thirty" => 30,
        digits => digits.parse().ok()?,
    };
    let unit = if caps[2].starts_with('h') {
        chrono::Duration::hours(1)
    } else {
        chrono::Duration::minutes(1)
    };
    if n == 0 {
        return None;
    }
    // "in an hour and a half": half a unit more.
    let half = if caps.get(3).is_some() {
        unit / 2
    } else {
        chrono::Duration::zero()
    };
    Some((caps.get(0)?.range(), unit * i32::try_from(n).ok()? + half))
}

pub(super) fn remind(input: &Input, l: &str, base: usize, now: DateTime<Tz>) -> Option<Command> {
    let toks = input.tokens();
    let relative = in_duration(l).map(|(range, after)| (base + range.start..base + range.end, after));
    let date = input.dates().first().copied();
    let time = dates::find_time(&toks);
    // The reminder text: after "to", "about" or "that", minus date and time phrases.
    // Not a "to" inside the time ("quarter to 6").
    let spoken = time.map(|m| toks[m.first].start..toks[m.last.max(m.first + 1) - 1].end);
    let marker = [" to ", " about ", " that ", ": ", " - "]
        .iter()
        .filter_map(|m| {
            l.match_indices(m)
                .find(|(at, _)| !spoken.as_ref().is_some_and(|r| r.contains(&(base + at + 1))))
                .map(|(at, _)| (at, m.len()))
        })
        .min();
    let (start, end) = match marker {
        Some((at, len)) => (base + at + len, input.lower.len()),
        None => return None,
    };
    let mut words: Vec<&str> = Vec::new();
    let mut kept: Vec<usize> = Vec::new();
    for (i, t) in toks.iter().enumerate() {
        if t.start < start || t.end > end || relative.as_ref().is_some_and(|(r, _)| r.contains(&t.start)) {
            continue;
        }
        let in_date = date.is_some_and(|d| i >= d.first && i < d.last);
        let in_time = time.is_some_and(|m| i >= m.first && i < m.last);
        let joiner = matches!(t.word, "at" | "on" | "by")
            && toks
                .get(i + 1)
                .is_some_and(|_| date.is_some_and(|d| d.first == i + 1) || time.is_some_and(|m| m.first == i + 1));
        if !(in_date || in_time || joiner) {
            words.push(&input.text[t.start..t.end]);
            kept.push(i);
        }
    }
    // Words kept in one run keep their punctuation ("call Dr. Okafor").
    let contiguous = kept.windows(2).all(|p| p[1] == p[0] + 1);
    let text = match (kept.first(), kept.last()) {
        (Some(&a), Some(&b)) if contiguous => input.text[toks[a].start..toks[b].end].to_owned(),
        _ => words.join(" "),
    };
    // "… to pay my credit card bill thanks": thanks are not the task, nor
    // is a "remind me" said again after it ("renew the MOT — remind me on
    // the 3rd").
    let text = [" thanks", " thank you", " thx", " cheers", " pls", " please"]
        .iter()
        .find_map(|t| text.strip_suffix(t))
        .unwrap_or(&text);
    let text = [" — remind me", " - remind me", ", remind me"]
        .iter()
        .find_map(|t| text.find(t).map(|at| &text[..at]))
        .unwrap_or(text)
        .to_owned();
    if text.is_empty() {
        return None;
    }
    if let Some((_, after)) = relative {
        return Some(Command::Remind {
            text,
            at: (now + after).fixed_offset(),
        });
    }
    let today = now.date_naive();
    let at_time = time
        .map(|t| t.time)
        .unwrap_or_else(|| NaiveTime::from_hms_opt(9, 0, 0).unwrap_or_default());
    let day = match (date, time) {
        // "tonight at 12", "tonight at midnight": the night's end.
        (Some(d), Some(t)) if t.time == NaiveTime::MIN && toks[d.first].word == "tonight" => d.date.succ_opt()?,
        (Some(d), _) => d.date,
        (None, Some(t)) if t.time > now.time() => today,
        (None, Some(_)) => today.succ_opt()?,
        (None, None) => today.succ_opt()?,
    };
    // A local time in a DST gap moves forward to the first valid instant;
    // in a repeated hour the earlier one is taken.
    let local = now.timezone().from_local_datetime(&day.and_time(at_time));
    let at = local.earliest().or_else(|| {
        now.timezone()
            .from_local_datetime(&(day.and_time(at_time) + chrono::Duration::hours(1)))
            .earliest()
    })?;
    Some(Command::Remind {
        text,
        at: at.fixed_offset(),
    })
}
