//! Slot values read from a message, by type: a person's or organisation's
//! name after its cue words, free text, a list, a month, a fiscal year.
//! Dates are read by [`super::dates`].

use super::dates::{self, DateMention, Token};
pub(super) use super::periods::{month, year};
use super::text::{Input, find_phrase, title_case};
use crate::planner::templates::Case;

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
    "account",
    "accounts",
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

/// "Chloé", "A", not "QA": an all-capitals word is an acronym, not a name.
fn looks_like_a_name(word: &str) -> bool {
    is_capitalised(word) && (word.chars().count() == 1 || word.chars().skip(1).any(char::is_lowercase))
}

/// Whether the text between two words lets a name go on: nothing, an
/// initial's dot ("Kwame A. Mensah", "K.K."), or for a company an ampersand.
fn name_continues(gap: &str, previous: &str, org: bool) -> bool {
    let initial = previous.chars().count() == 1 && matches!(gap, "." | ". ");
    gap.trim().is_empty() || initial || org && gap.trim() == "&"
}

/// A person's or organisation's name: capitalised words after a cue (or
/// anywhere), else the lowercase words right after the cue, title-cased.
// Long: one name reader with its fallbacks in order (after a cue, an
// apposition, a full name first, any capitalised run), so the order shows.
pub(super) fn person(input: &Input, toks: &[Token<'_>], cues: &[String], org: bool, anywhere: bool) -> Option<String> {
    let original = |i: usize| &input.text[toks[i].start..toks[i].end];
    let is_date_word = |w: &str| dates::month(w).is_some() || dates::weekday(w).is_some();
    let name_at = |start: usize, need_caps: bool| -> Option<(String, usize)> {
        let mut end = start;
        let limit = if org { 6 } else { 4 };
        while end < toks.len() && end - start < limit {
            let w = toks[end].word;
            let cap = if org {
                is_capitalised(original(end))
            } else {
                looks_like_a_name(original(end))
            };
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
                !name_continues(&input.text[toks[end - 1].end..next.start], toks[end - 1].word, org)
            }) {
                break;
            }
        }
        (end > start).then(|| {
            let mut last = toks[end - 1].end;
            // "J.P. Hartley Inc.", "Kwame A.": an initial or a suffix keeps its dot.
            let abbreviated = toks[end - 1].word.chars().count() == 1 || ORG_SUFFIXES.contains(&toks[end - 1].word);
            if abbreviated && input.text[last..].starts_with('.') {
                last += 1;
            }
            let span = &input.text[toks[start].start..last];
            let span = span
                .strip_suffix("'s")
                .or_else(|| span.strip_suffix("’s"))
                .unwrap_or(span);
            (if org { span.to_owned() } else { title_case(span) }, end)
        })
    };
    if let Some(at) = after_cue(toks, cues) {
        // Skip filler between the cue and the name ("onboard my new hire Ana").
        let mut k = at;
        while k < toks.len()
            && matches!(
                toks[k].word,
                "my" | "our"
                    | "the"
                    | "a"
                    | "an"
                    | "new"
                    | "hire"
                    | "employee"
                    | "engineer"
                    | "called"
                    | "named"
                    | "for"
            )
        {
            k += 1;
        }
        if let Some((name, end)) = name_at(k, false) {
            // "our new accountant, Chloé Martin": a role (lowercase, after
            // "our"/"the"/"a"), then the name; not "onboard maria, Ahmed is
            // her buddy".
            let role = !is_capitalised(original(k))
                && toks[at..k]
                    .iter()
                    .any(|t| matches!(t.word, "my" | "our" | "the" | "a" | "an" | "new"));
            let apposition = toks
                .get(end)
                .filter(|next| role && matches!(input.text[toks[end - 1].end..next.start].trim(), "," | "-" | "—"))
                .and_then(|_| name_at(end, true))
                .filter(|(_, after)| {
                    !toks
                        .get(*after)
                        .is_some_and(|t| matches!(t.word, "is" | "are" | "was" | "will" | "has" | "can" | "should"))
                });
            return Some(apposition.map_or(name, |(n, _)| n));
        }
    }
    if !anywhere {
        return None;
    }
    // Any capitalised run not at the very start of the message; at the
    // start, only a full name ("Jake Sullivan's starting…").
    let full_name_first = name_at(0, true).filter(|(_, end)| *end >= 2 && !org);
    // "Globex wants to be live by…", "Initech has signed": a company
    // first, then a verb saying what it does or wants.
    let company_first =
        name_at(0, true).filter(|(_, end)| org && toks.get(*end).is_some_and(|t| COMPANY_VERBS.contains(&t.word)));
    full_name_first.or(company_first).map(|(n, _)| n).or_else(|| {
        (1..toks.len())
            .filter(|&i| is_capitalised(original(i)))
            .find_map(|i| name_at(i, true).map(|(n, _)| n))
    })
}

/// What a company said first does or wants: "Globex wants…", "Initech has…".
const COMPANY_VERBS: &[&str] = &[
    "wants", "needs", "signed", "goes", "is", "are", "was", "has", "have", "will", "would", "should", "must", "just",
    "plans", "asked", "agreed", "starts", "joins", "hopes", "expects",
];

/// Free text after a cue, up to a stop word, punctuation or a date; or, for
/// a `~cue`, the word right before it ("the marketing team").
// Long: where the text starts and where it stops are read in one scan, so
// the stop rules (dates, prepositions, punctuation) stay side by side.
pub(super) fn text_after(
    input: &Input,
    toks: &[Token<'_>],
    cues: &[String],
    mentions: &[DateMention],
    colon: bool,
) -> Option<String> {
    for cue in cues.iter().filter_map(|c| c.strip_prefix('~')) {
        if let Some(value) = word_before(input, toks, cue) {
            return Some(value);
        }
    }
    let cued = after_cue(toks, cues).filter(|&at| {
        // "research report: urban heat islands": the cue word names the kind.
        !(colon && toks.get(at).is_some_and(|t| TEXT_STOPS.contains(&t.word)) && input.text.contains(": "))
    });
    let start = cued.or_else(|| after_colon(input, toks).filter(|_| colon))?;
    let mut start = start;
    // "the launch for our app Hearth", "launch day for Trailhead": what it
    // is called, not what it is.
    while start + 1 < toks.len()
        && (matches!(toks[start].word, "the" | "a" | "an" | "our" | "my" | "new" | "for")
            || matches!(toks[start].word, "app" | "product")
                && is_capitalised(&input.text[toks[start + 1].start..toks[start + 1].end])
            || matches!(toks[start].word, "day" | "date" | "plan") && toks[start + 1].word == "for")
    {
        start += 1;
    }
    // "budget for FY2027": a year, not a name.
    let year_like = |w: &str| w.starts_with("fy") || w.len() == 4 && w.starts_with("20");
    let first = toks.get(start).map_or("", |t| t.word);
    if year_like(first) {
        return None;
    }
    // "our new hire": a kind of person, not what they do.
    if matches!(
        first,
        "hire" | "employee" | "starter" | "colleague" | "joiner" | "recruit"
    ) {
        return None;
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
    let generic = end == start + 1
        && matches!(
            toks[start].word,
            "date" | "day" | "deadline" | "time" | "plan" | "it" | "me" | "us" | "you" | "them" | "myself"
        );
    (end > start && end - start <= 8 && !generic).then(|| input.span(toks, start, end))
}

/// The name right before a `~cue` ("the marketing team", "Vela Pro goes on
/// sale"): one word, or a run of capitalised ones, or "R&D"; not a year, a
/// count or a word that only points ("every team's", "annual budget").
fn word_before(input: &Input, toks: &[Token<'_>], cue: &str) -> Option<String> {
    let n = cue.split_whitespace().count();
    let original = |i: usize| &input.text[toks[i].start..toks[i].end];
    let spaced = |i: usize| input.text[toks[i - 1].end..toks[i].start].trim().is_empty();
    let acronym = |w: &str| w.len() >= 2 && w.chars().all(|c| c.is_ascii_uppercase());
    (0..toks.len().saturating_sub(n - 1))
        .filter(|&at| at > 0 && find_phrase(&toks[at..at + n], cue) == Some(0))
        .find_map(|at| {
            let last = at - 1;
            let w = toks[last].word;
            let pointing = matches!(
                w,
                "annual" | "yearly" | "every" | "each" | "whole" | "entire" | "all" | "next" | "this" | "new" | "total"
            );
            if pointing || w.chars().any(|c| c.is_ascii_digit()) || NOT_NAMES.contains(&w) && !acronym(original(last)) {
                return None;
            }
            let mut first = last;
            while first > 0 && last - first < 3 {
                let gap = input.text[toks[first - 1].end..toks[first].start].trim();
                let joined = gap == "&"
                    || spaced(first) && is_capitalised(original(first)) && is_capitalised(original(first - 1))
                    || spaced(first) && toks[first - 1].word == "customer";
                if !joined || NOT_NAMES.contains(&toks[first - 1].word) && toks[first - 1].word != "customer" {
                    break;
                }
                first -= 1;
            }
            Some(input.text[toks[first].start..toks[last].end].to_owned())
        })
}

/// "research report: urban heat islands", "road trip: Denver → Moab": the
/// value after a colon, where no cue names it.
fn after_colon(input: &Input, toks: &[Token<'_>]) -> Option<usize> {
    let colon = input.text.find(": ")?;
    toks.iter().position(|t| t.start > colon)
}

/// A list after a cue: "Lisbon, Porto and Madrid", "blood test, MRI and a cardiology check".
// Long: where the list starts, where it stops and how it splits are read
// in one scan, so the stop rules stay side by side.
pub(super) fn list_after(
    input: &Input,
    toks: &[Token<'_>],
    cues: &[String],
    mentions: &[DateMention],
    colon: bool,
) -> Option<Vec<String>> {
    let mut start = after_cue(toks, cues).or_else(|| after_colon(input, toks).filter(|_| colon))?;
    // "visiting mum in Edinburgh": the place, not who is there.
    let place_after = |k: usize| {
        toks.get(k + 1).is_some_and(|t| {
            let w = &input.text[t.start..t.end];
            is_capitalised(w) && dates::month(t.word).is_none() && dates::weekday(t.word).is_none()
        })
    };
    if let Some(k) = (start..toks.len().min(start + 3)).find(|&k| toks[k].word == "in" && place_after(k))
        && (start..k).all(|j| !is_capitalised(&input.text[toks[j].start..toks[j].end]))
    {
        start = k + 1;
    }
    // "I want to plan a trip": a cue word before a verb names no place.
    if toks.get(start).is_some_and(|t| {
        matches!(
            t.word,
            "plan" | "book" | "organise" | "organize" | "go" | "get" | "take" | "do" | "make" | "have" | "help" | "see"
        )
    }) {
        return None;
    }
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
        "sometime",
        "someday",
        "over",
        "start",
    ];
    // "Tokyo sometime, can you help me plan": after a comma, a new clause
    // ends the list.
    let clause_after_comma = |k: usize| {
        k > start
            && input.text[toks[k - 1].end..toks[k].start].contains([',', '.'])
            && matches!(
                toks[k].word,
                "can"
                    | "could"
                    | "please"
                    | "help"
                    | "i"
                    | "we"
                    | "it"
                    | "that"
                    | "thanks"
                    | "so"
                    | "let's"
                    | "lets"
                    | "need"
                    | "want"
                    | "would"
                    | "plan"
                    | "book"
                    | "they"
                    | "them"
            )
    };
    while end < toks.len()
        && !stops.contains(&toks[end].word)
        && !mentions.iter().any(|m| m.first == end)
        && !clause_after_comma(end)
    {
        end += 1;
    }
    if end == start {
        return None;
    }
    let span = input.span(toks, start, end);
    let items: Vec<String> = span
        .split([',', '&', '+', '/', '→'])
        .flat_map(|part| part.split(" and "))
        .flat_map(|part| part.split(" n "))
        .flat_map(|part| part.split(" then "))
        .flat_map(|part| part.split("->"))
        .map(super::items::list_item)
        .filter(|i| !i.is_empty())
        .collect();
    (!items.is_empty()).then_some(items)
}
