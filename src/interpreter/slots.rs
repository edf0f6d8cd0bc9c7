//! Slot values read from a message, by type: a person's or organisation's
//! name after its cue words, free text, a list, a month, a fiscal year.
//! Dates are read by [`super::dates`].

use super::dates::{self, DateMention, Token};
use super::text::{Input, find_phrase, title_case};
use crate::planner::templates::Case;
use chrono::{Datelike, Months};

/// Words that never start or form a name.
const NOT_NAMES: &[&str] = &[
    "first",
    "just",
    "then",
    "needs",
    "need",
    "wants",
    "will",
    "should",
    "must",
    "goes",
    "going",
    "are",
    "was",
    "were",
    "them",
    "him",
    "me",
    "you",
    "there",
    "here",
    "have",
    "has",
    "signed",
    "i",
    "i'm",
    "i've",
    "we",
    "we're",
    "my",
    "our",
    "the",
    "a",
    "an",
    "help",
    "please",
    "plan",
    "onboard",
    "onboarding",
    "hire",
    "new",
    "she",
    "he",
    "they",
    "her",
    "his",
    "their",
    "starting",
    "starts",
    "start",
    "on",
    "from",
    "who",
    "is",
    "and",
    "to",
    "for",
    "next",
    "this",
    "as",
    "with",
    "by",
    "in",
    "at",
    "can",
    "could",
    "you",
    "let's",
    "hey",
    "hi",
    "schedule",
    "book",
    "get",
    "set",
    "up",
    "need",
    "joining",
    "joins",
    "us",
    "team",
    "that",
    "it",
    "some",
    "someone",
    "employee",
    "engineer",
    "called",
    "named",
    "welcome",
    "tomorrow",
    "today",
    "customer",
    "client",
    "go-live",
    "live",
    "corp",
    "will",
    "be",
    "our",
    "new",
    "starter",
    "colleague",
    "designer",
    "manager",
    "ok",
    "okay",
    "so",
    "also",
];

pub(super) fn is_org_suffix(word: &str) -> bool {
    ORG_SUFFIXES.contains(&word)
}

const ORG_SUFFIXES: &[&str] = &[
    "corp",
    "corporation",
    "inc",
    "ltd",
    "llc",
    "gmbh",
    "co",
    "plc",
    "sa",
    "ag",
    "bv",
    "group",
    "labs",
    "systems",
    "bank",
];

/// Words that end a free-text slot value.
const TEXT_STOPS: &[&str] = &[
    "by", "on", "next", "this", "due", "starting", "from", "before", "for", "report", "to", "in", "at", "until",
    "with", "so", "that", "which", "who", "when", "she", "he", "they", "it", "go-live", "going", "live", "please",
    "is", "will", "needs", "has",
];

pub(super) fn apply_case(s: &str, case: Case) -> String {
    match case {
        Case::AsWritten => s.to_owned(),
        Case::Title => title_case(s),
        Case::Lower => s.to_lowercase(),
    }
}

/// Whether one of `cues` ends right before token `at` (allowing one filler word).
pub(super) fn cue_before(toks: &[Token<'_>], at: usize, cues: &[String]) -> bool {
    cues.iter().filter(|c| !c.starts_with('~')).any(|cue| {
        let n = cue.split_whitespace().count();
        (0..=1).any(|gap| {
            at >= n + gap
                && find_phrase(&toks[at - n - gap..at - gap], cue) == Some(0)
                && (gap == 0 || matches!(toks[at - 1].word, "on" | "the" | "by" | "from" | "is" | "of"))
        })
    })
}

/// Token index right after the first (longest) cue found.
fn after_cue(toks: &[Token<'_>], cues: &[String]) -> Option<usize> {
    let mut best: Option<(usize, usize)> = None; // (position after cue, cue length)
    for cue in cues.iter().filter(|c| !c.starts_with('~')) {
        if let Some(at) = find_phrase(toks, cue) {
            let n = cue.split_whitespace().count();
            let candidate = (at + n, n);
            best = match best {
                Some((pos, len)) if len > n || (len == n && pos <= candidate.0) => Some((pos, len)),
                _ => Some(candidate),
            };
        }
    }
    best.map(|(pos, _)| pos)
}

fn is_capitalised(word: &str) -> bool {
    word.chars().next().is_some_and(char::is_uppercase)
}

/// A person's or organisation's name: capitalised words after a cue (or
/// anywhere), else the lowercase words right after the cue, title-cased.
pub(super) fn person(input: &Input, toks: &[Token<'_>], cues: &[String], org: bool, anywhere: bool) -> Option<String> {
    let original = |i: usize| &input.text[toks[i].start..toks[i].end];
    let is_date_word = |w: &str| dates::month(w).is_some() || dates::weekday(w).is_some();
    let name_at = |start: usize, need_caps: bool| -> Option<String> {
        let mut end = start;
        while end < toks.len() && end - start < 4 {
            let w = toks[end].word;
            let cap = is_capitalised(original(end));
            let suffix = org && ORG_SUFFIXES.contains(&w);
            if is_date_word(w) || (NOT_NAMES.contains(&w) && !suffix) || w.chars().any(|c| c.is_ascii_digit()) {
                break;
            }
            if need_caps && !cap && !suffix {
                break;
            }
            end += 1;
            // A name ends at punctuation ("Ana, she starts..."); a company's
            // may hold an ampersand ("Harbor & Finch Ltd").
            if toks.get(end).is_some_and(|next| {
                let gap = input.text[toks[end - 1].end..next.start].trim();
                !(gap.is_empty() || org && gap == "&")
            }) {
                break;
            }
        }
        (end > start).then(|| {
            if org {
                return input.text[toks[start].start..toks[end - 1].end].to_owned();
            }
            let words: Vec<&str> = (start..end).map(original).collect();
            title_case(&words.join(" "))
        })
    };
    if let Some(at) = after_cue(toks, cues) {
        // Skip filler between the cue and the name ("onboard my new hire Ana").
        let mut k = at;
        while k < toks.len()
            && matches!(
                toks[k].word,
                "my" | "our" | "the" | "a" | "an" | "new" | "hire" | "employee" | "engineer" | "called" | "named"
            )
        {
            k += 1;
        }
        if let Some(name) = name_at(k, false) {
            return Some(name);
        }
    }
    if !anywhere {
        return None;
    }
    // Any capitalised run not at the very start of the message.
    (1..toks.len())
        .filter(|&i| is_capitalised(original(i)))
        .find_map(|i| name_at(i, true))
}

/// Free text after a cue, up to a stop word, punctuation or a date; or, for
/// a `~cue`, the word right before it ("the marketing team").
pub(super) fn text_after(
    input: &Input,
    toks: &[Token<'_>],
    cues: &[String],
    mentions: &[DateMention],
) -> Option<String> {
    for cue in cues.iter().filter_map(|c| c.strip_prefix('~')) {
        if let Some(at) = find_phrase(toks, cue)
            && at > 0
            && !NOT_NAMES.contains(&toks[at - 1].word)
        {
            return Some(input.text[toks[at - 1].start..toks[at - 1].end].to_owned());
        }
    }
    let start = after_cue(toks, cues)?;
    let mut start = start;
    // "the launch for our app Hearth": what it is called, not what it is.
    while start + 1 < toks.len()
        && matches!(
            toks[start].word,
            "the" | "a" | "an" | "our" | "my" | "new" | "for" | "app" | "product"
        )
    {
        start += 1;
    }
    let mut end = start;
    // A preposition ends the text only where a date follows ("on Dec 1",
    // "by the 3rd"); "impact of remote work on junior developers" stays whole.
    let date_at = |k: usize| {
        mentions.iter().any(|m| m.first == k || m.first == k + 1)
            || toks
                .get(k)
                .is_some_and(|t| matches!(t.word, "next" | "this" | "end" | "tomorrow" | "today"))
    };
    while end < toks.len() {
        let word = toks[end].word;
        let preposition = matches!(word, "on" | "in" | "for" | "to" | "at" | "with");
        // "the payments gateway to production": where it goes, not its name.
        let environment = matches!(word, "to" | "into" | "in")
            && toks
                .get(end + 1)
                .is_some_and(|t| matches!(t.word, "prod" | "production" | "staging" | "live"));
        if (TEXT_STOPS.contains(&word) && (!preposition || date_at(end + 1)))
            || environment
            || mentions.iter().any(|m| m.first == end)
        {
            break;
        }
        end += 1;
        if toks.get(end).is_some_and(|next| {
            let between = &input.text[toks[end - 1].end..next.start];
            between.contains([',', ';', '!', '?', '(', '—']) || between.contains(" - ")
        }) {
            break;
        }
        if toks
            .get(end)
            .is_some_and(|next| input.text[toks[end - 1].end..next.start].contains(". "))
        {
            break;
        }
    }
    // "launch date jan 20" names a date, not a product called "date".
    let generic = end == start + 1 && matches!(toks[start].word, "date" | "day" | "deadline" | "time" | "plan" | "it");
    (end > start && end - start <= 8 && !generic).then(|| input.span(toks, start, end))
}

/// A list after a cue: "Lisbon, Porto and Madrid", "blood test, MRI and a cardiology check".
pub(super) fn list_after(
    input: &Input,
    toks: &[Token<'_>],
    cues: &[String],
    mentions: &[DateMention],
) -> Option<Vec<String>> {
    let start = after_cue(toks, cues)?;
    let mut end = start;
    let stops = [
        "from",
        "starting",
        "on",
        "next",
        "this",
        "by",
        "before",
        "for",
        "in",
        "leaving",
        "departing",
        "between",
        "with",
        "at",
        "please",
        "soon",
        "ideally",
        "asap",
    ];
    while end < toks.len() && !stops.contains(&toks[end].word) && !mentions.iter().any(|m| m.first == end) {
        end += 1;
    }
    if end == start {
        return None;
    }
    let span = input.span(toks, start, end);
    let items: Vec<String> = span
        .split([',', '&', '+', '/'])
        .flat_map(|part| part.split(" and "))
        .map(|item| {
            // "a lipid panel — starting tomorrow": a dash ends the list.
            let item = item.split(" - ").next().unwrap_or("").split(" — ").next().unwrap_or("");
            let item = item.trim().trim_end_matches(['.', '!', '?']);
            let mut words: Vec<&str> = item.split_whitespace().collect();
            while words.first().is_some_and(|w| {
                matches!(
                    w.to_lowercase().as_str(),
                    "a" | "an" | "the" | "my" | "our" | "and" | "also" | "then" | "me" | "just" | "only"
                )
            }) {
                words.remove(0);
            }
            // "get my ECG and blood work done"
            while words.len() > 1
                && words.last().is_some_and(|w| {
                    matches!(
                        w.to_lowercase().as_str(),
                        "done" | "booked" | "scheduled" | "sorted" | "please"
                    )
                })
            {
                words.pop();
            }
            words.join(" ")
        })
        .filter(|i| !i.is_empty())
        .collect();
    (!items.is_empty()).then_some(items)
}

/// A month as YYYY-MM: its most recent occurrence not after this month.
pub(super) fn month(toks: &[Token<'_>], input: &Input) -> Option<String> {
    let today = input.today;
    if find_phrase(toks, "last month").is_some() || find_phrase(toks, "previous month").is_some() {
        let d = today.with_day(1)?.checked_sub_months(Months::new(1))?;
        return Some(d.format("%Y-%m").to_string());
    }
    if find_phrase(toks, "this month").is_some() {
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

/// A fiscal year: "FY2027", "FY27", "fiscal year 2027", "for 2027".
pub(super) fn year(toks: &[Token<'_>]) -> Option<String> {
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
            if matches!(before, "for" | "year" | "fy" | "of") {
                return Some(w.to_owned());
            }
        }
    }
    None
}
