//! The commands beyond steps' statuses: renames,
//! failures, dependencies, relative moves, undo and redo of one plan, and
//! preferences said in chat (time zone, email, quiet hours). Each rule
//! reads the cleaned lowercase message; titles, reasons and results keep
//! the person's own case.

use super::Command;
use super::commands::{re, reference};
use super::dates::{self, Token};
use super::text::Input;
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
        r"^(?:(?:ugh|argh|oops|oh|hmm|ok|okay|actually)[,!]?\s+)?(redo|re-do|undo (the|my|that) undo|undo the undoing|bring (it|that) back|restore what (i|you) undid|(reapply|re-apply|redo|restore) (the )?(change|changes|edit|edits) (i|you|we) (just )?(undid|undone|reverted)|(bring back|restore|put back|reapply) what (i|you|we) (just )?(undid|undone|reverted)|(reapply|re-apply|restore|redo|bring back) (my|the) (last |latest )?(undone|reverted) (change|changes|edit|edits)|redo (that|it)\W+(i was right|i had it right|my bad|actually))\b(?P<rest>.*)$",
    )
});
static UNDO: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(undo|revert|roll ?back|take back|reverse|scratch my (?:most recent|last) change|go back one change|ctrl ?\+ ?z|ctrl-z|cmd ?\+ ?z|cmd-z)\b(.*)$",
    )
});
/// The plan named after an undo or redo: "the last change to the budget".
fn undone_plan(rest: &str) -> Option<Option<String>> {
    let rest = rest.trim();
    // "redo that, I was right the first time": a pronoun, then a remark.
    let head = rest.split([',', ';', '—']).next().unwrap_or(rest).trim();
    if head.len() < rest.len() && ["", "it", "that", "this", "the change"].contains(&head) {
        return Some(None);
    }
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
    // Whole words only: "the Kyoto trip" holds "to " but names no target.
    let padded = format!(" {rest}");
    let words = [" to ", " on ", " in ", " for ", " of "]
        .iter()
        .find_map(|k| padded.find(k).map(|at| padded[at + k.len()..].to_owned()))?;
    let words = words.as_str();
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
        r"\b(quiet hours?|quiet time|quiet period|do not disturb|do-not-disturb|dnd|(don't|do not|never) (notify|disturb|message|ping|bother|email|contact) me|(don't|do not) send me (anything|any messages|notifications|any notifications)|no (notif\w*|messages|pings|alerts)|(mute|silence|hold|pause|hush) (me|everything|all|notifications|all notifications|messages|alerts|all alerts|pings|reminders)|keep (it|things|everything) (silent|quiet)|(stay|be|keep) (silent|quiet)|(don't|do not) message me)\b",
    )
});
/// Quiet hours switched off: the off-word next to the setting's name
/// ("turn off dnd", "quiet hours off", "no more quiet hours"), so "turn dnd
/// on, I'm off to bed" or "dnd till the end of the day" are not.
static OFF: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(turn off|switch off|shut off|disable|remove|clear|delete|stop|cancel|scrap|ditch|kill|lift|no more|get rid of|end|drop|don't need|do not need|don't want|do not want|no longer need|no longer want)\s+(the |my |any |all |those |these )?(quiet hours?|quiet time|quiet period|do not disturb|do-not-disturb|dnd)\b|\b(quiet hours?|quiet time|quiet period|do not disturb|do-not-disturb|dnd)\s+(off|disabled|no more)\b|\b(turn|switch|shut)\s+(the |my )?(quiet hours?|quiet time|do not disturb|do-not-disturb|dnd)\s+off\b",
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
    // "from midnight to 7": a bare hour ends the range a time began.
    if out.len() == 1
        && let [way, hour, ..] = &toks[from.min(toks.len())..]
        && matches!(way.word, "to" | "until" | "till" | "-")
        && let Ok(h) = hour.word.parse::<u32>()
        && h <= 23
    {
        out.push(format!("{h:02}:00"));
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
        [] if OFF.is_match(l) => Some(Command::QuietHoursOff {}),
        _ => None,
    }
}

static ZONE_CUE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(time ?zone|timezone|zone|tz|(i'm|i am|we're|we are) (now )?(in|based in|living in)\b.*\bnow\b|(i|we|i've|we've|i have|we have) (just )?(moved|relocated) to|^just (moved|relocated) to|i live in|i'm based in|i am based in|use .+ time)\b",
    )
});

/// Big cities whose zone is named after another city.
const CITY_ZONES: &[(&str, &str)] = &[
    ("mumbai", "Asia/Kolkata"),
    ("bombay", "Asia/Kolkata"),
    ("delhi", "Asia/Kolkata"),
    ("new delhi", "Asia/Kolkata"),
    ("bangalore", "Asia/Kolkata"),
    ("bengaluru", "Asia/Kolkata"),
    ("chennai", "Asia/Kolkata"),
    ("hyderabad", "Asia/Kolkata"),
    ("beijing", "Asia/Shanghai"),
    ("osaka", "Asia/Tokyo"),
    ("kyoto", "Asia/Tokyo"),
    ("san francisco", "America/Los_Angeles"),
    ("seattle", "America/Los_Angeles"),
    ("boston", "America/New_York"),
    ("miami", "America/New_York"),
    ("munich", "Europe/Berlin"),
    ("frankfurt", "Europe/Berlin"),
    ("hamburg", "Europe/Berlin"),
    ("barcelona", "Europe/Madrid"),
    ("milan", "Europe/Rome"),
];

/// An IANA zone named in the text, by its name or its city.
/// Zone names that are links to a current name of the same city.
const OLD_NAMES: &[&str] = &["Asia/Istanbul", "Europe/Nicosia", "Asia/Tel_Aviv", "Europe/Belfast"];

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
        // Old names kept as links ("Asia/Istanbul" for "Europe/Istanbul").
        if !name.contains('/') || name.starts_with("Etc/") || OLD_NAMES.contains(&name) {
            continue;
        }
        let city = fold(name.rsplit('/').next().unwrap_or(name));
        let whole = fold(name);
        let hit = folded.contains(&format!(" {whole} ")) || folded.contains(&format!(" {city} "));
        // "America/Argentina/Buenos_Aires", not its old alias
        // "America/Buenos_Aires": the longer path is the current name.
        let depth = |n: &str| n.matches('/').count();
        let better =
            |b: &str| b.starts_with("US/") || depth(name) > depth(b) || depth(name) == depth(b) && name.len() < b.len();
        if hit && best.is_none_or(better) {
            best = Some(name);
        }
    }
    best.map(str::to_owned).or_else(|| {
        CITY_ZONES
            .iter()
            .find(|(city, _)| folded.contains(&format!(" {city} ")))
            .map(|(_, zone)| (*zone).to_owned())
    })
}

pub(super) fn time_zone(input: &Input, l: &str) -> Option<Command> {
    // "I moved to Berlin in 2019 and still …": a story, not a move today.
    if !ZONE_CUE.is_match(l) || LONG_AGO.is_match(l) {
        return None;
    }
    zone_in(&input.text).map(|zone| Command::SetTimezone { zone })
}

static LONG_AGO: LazyLock<Regex> = LazyLock::new(|| {
    re(r"\b(in (19|20)\d\d|years ago|months ago|back in|when i was|as a kid|still can't|still cant)\b")
});

static EMAIL: LazyLock<Regex> = LazyLock::new(|| re(r"[a-z0-9._%+-]+@[a-z0-9-]+(\.[a-z0-9-]+)+"));
static EMAIL_CUE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(e-?mail|mail|address|send (my |the )?(emails?|digests?|notifications?|reminders?|stuff|everything|things|it all) to|reach me at)\b",
    )
});

static EMAIL_FOR: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^\s*(for|as)\s+(my\s+)?(notifications?|e-?mails?|the digests?|digests?|reminders?|updates?|contact)\b")
});

/// "Lerato's email is …", "his address is …": someone else's address.
static SOMEONE_ELSES: LazyLock<Regex> = LazyLock::new(|| {
    re(r"\b(\w+'s|\w+’s|his|her|their|the client's|the customer's) (e-?mail|address|email address)\b")
});

/// "my old email was …": an address the user had, not one to use.
static OLD_ADDRESS: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b(old|previous|former) (e-?mail|address|email address)\b"));

pub(super) fn email(input: &Input, base: usize, l: &str) -> Option<Command> {
    let found = EMAIL.find(l)?;
    // "my email used to be …" tells a story; it changes nothing.
    if l.contains("used to be") || l.contains(" back in ") || OLD_ADDRESS.is_match(l) || SOMEONE_ELSES.is_match(l) {
        return None;
    }
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

static RENAME: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(?:rename|retitle)\s+(.+?)\s+(?:to|as|into)\s+(.+)$|^(?:let's |lets )?(?:call|name)\s+(this plan|this one)\s+(.+)$|^change\s+(?:the\s+)?(.+?\s+plan)(?:'s|’s)?\s+(?:name|title)\s+to\s+(.+)$|^(?:the\s+)?(.+?\s+step)\s+should\s+(?:say|read)\s+(.+)$|^change\s+(?:the\s+)?(?:name|title)\s+of\s+(.+?)\s+to\s+(.+)$|^change\s+(.+?)(?:'s|’s)\s+(?:name|title)\s+to\s+(.+)$|^(?:call|name)\s+(.+?\s+(?:plan|step))\s+(.+)$|^(.+?)\s+should (?:really )?be (?:called|named|renamed to|titled)\s+(.+)$|^change\s+('[^']+'|\x22[^\x22]+\x22|‘[^’]+’|“[^”]+”)\s+to\s+(.+)$|^(?:rename|retitle)\s+(.+?)\s*:\s+(.+)$",
    )
});

pub(super) fn rename(input: &Input, base: usize, l: &str) -> Option<Command> {
    let c = RENAME.captures(l)?;
    let (object, title) = (1..c.len())
        .step_by(2)
        .find_map(|k| Some((c.get(k)?.as_str(), c.get(k + 1)?.range())))?;
    let title = quoted_title(&original(input, base, title)?);
    // "rename 'Draft the budget' to …": a quoted name is a step's title
    // (unless it says "plan").
    let trimmed = object.trim();
    let quoted = [('\'', '\''), ('"', '"'), ('‘', '’'), ('“', '”')]
        .iter()
        .any(|&(a, b)| trimmed.len() > 2 && trimmed.starts_with(a) && trimmed.ends_with(b));
    // "rename the Globex onboarding", "retitle my Bali trip": a plan's kind
    // names the plan.
    let is_plan = super::commands::names_a_plan(object.trim_matches(['\'', '"', '‘', '’', '“', '”']))
        || !quoted && super::commands::names_a_goal_kind(object);
    if is_plan && super::commands::this_plan(object) {
        return Some(Command::RenamePlan { plan: None, title });
    }
    let object = object.trim().strip_prefix("plan ").unwrap_or(object.trim());
    // "retitle the sources step as: …": the word before the new title.
    let object = object.strip_suffix(" as").unwrap_or(object);
    let object = object.trim_end_matches("'s").trim_end_matches("’s");
    let name = reference(object)?;
    Some(if is_plan {
        Command::RenamePlan {
            plan: Some(name),
            title,
        }
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
        r"^mark\s+(.+?)\s+(?:as\s+)?failed\b(.*)$|^(?:i |we )?(?:couldn't|could not|can't|cannot|wasn't able to|weren't able to|failed to)\s+(?:get|book|do|make|finish|complete|secure|reserve|find|arrange)\s+(.+?)(?:\s+through)?(,.*|:.*|;.*| because .*)?$|^(.+?)\s+(failed|has failed|fell through|didn't work out|didn't work|did not work|didn't happen|did not happen|couldn't be done|could not be done|is blocked|was blocked|got blocked|went wrong|bombed|flopped|didn't go through|did not go through|never went through)\b(.*)$",
    )
});

pub(super) fn fail(input: &Input, base: usize, l: &str) -> Option<Command> {
    let c = FAIL.captures(l)?;
    // "the export failed earlier, run it again please": asked to retry.
    if AGAIN.is_match(l) {
        let step = c.get(1).or(c.get(3)).or(c.get(5)).and_then(|s| reference(s.as_str()))?;
        return Some(Command::RetryStep { step });
    }
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
    // "couldn't get the venue, mark it as failed - no dates left": the words
    // that mark it are not the reason; what follows them is.
    let reason = reason.and_then(|r| {
        // Same byte offsets as `r` (a lowercase form may be shorter: "K").
        let lower = super::text::lower_same_offsets(&r);
        match MARK_IT.find(&lower) {
            Some(m) if m.start() == 0 => {
                let rest = r[m.end()..].trim_start_matches([' ', '-', '—', ':', ',', ';']).trim();
                (!rest.is_empty()).then(|| rest.to_owned())
            }
            _ => Some(r),
        }
    });
    // "mark it failed please, the export is missing": the polite word is
    // not the reason.
    let reason = reason.map(|r| {
        ["please, ", "please ", "pls, ", "pls "]
            .iter()
            .find_map(|p| r.strip_prefix(p).or_else(|| r.strip_prefix(&p.replace('p', "P"))))
            .map_or(r.clone(), str::to_owned)
    });
    let reason = reason.filter(|r| r.chars().any(char::is_alphanumeric));
    Some(Command::FailStep { step, reason })
}

static AGAIN: LazyLock<Regex> = LazyLock::new(|| {
    re(r"\b((run|try|do|send|give) (it|that|this) (again|another go)|retry|re-run|rerun|try again)\b")
});

static MARK_IT: LazyLock<Regex> =
    LazyLock::new(|| re(r"^(mark|set|flag) (it|that|this|the step) (as )?(failed|a failure|blocked)\b"));

static DEPEND: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(?:don't|do not|never|can't|cannot)\s+(?:start|do|begin|book)\s+(.+?)\s+(?:before|until)\s+(.+)$|^(?:make|let|have)\s+(.+?)\s+(?:wait for|wait until|depend on|come after|follow)\s+(.+)$|^(.+?)\s+(?:should|must|has to|have to|needs to|need to|can only|can't|cannot|shouldn't|should not|won't|will)\s+(?:wait for|wait until|come after|happen after|start after|begin after|go after|happen until|start until|begin until|only start after|only happen after|only start once|start once|happen once)\s+(.+)$|^(?:make sure\s+)?(.+?)\s+(?:only happens after|happens after|only starts after|starts after)\s+(.+)$|^(.+?)\s+(?:depends on|waits for|comes after|follows|is blocked by|is waiting on|waits on)\s+(.+)$|^(.+?)\s+(?:can't|cannot|can not)\s+(?:happen|start|begin)\s+(?:until|before)\s+(.+)$|^(?:only\s+)?(?:do|start|begin|schedule)\s+(.+?)\s+(?:only\s+)?(?:after|once)\s+(.+)$|^(.+?)\s+(?:has to|must|should|needs to)\s+(?:come|happen|be done|go)\s+before\s+(.+)$|^(.+?)\s+needs\s+(.+?)\s+(?:done|finished|ready|in place)\s+first$|^(?:can|could)\s+(.+?)\s+wait\s+(?:until|till|til)\s+(.+)$|^(?:make sure\s+)?(.+?)\s+(?:doesn't|does not|don't|do not|won't|will not)\s+(?:start|happen|begin|go ahead)\s+(?:before|until)\s+(.+)$|^block\s+(.+?)\s+on\s+(.+)$|^(.+?)\s+(?:should|must|has to|needs to|can)\s+(?:only\s+)?(?:wait till|wait til|go out once|go out after|happen once|start once|be sent once|be done once)\s+(.+)$",
    )
});

static PARTICIPLE: LazyLock<Regex> = LazyLock::new(|| {
    re(r"\s+(is|are|has been|have been|gets|get|got|was|were)\s+[a-z]+(ed|en|t)( off| out| up| through)?$")
});

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

pub(super) fn dependency(input: &Input, l: &str) -> Option<Command> {
    let c = DEPEND.captures(l)?;
    // "the party starts after dinner" says what happens; "make sure X only
    // happens after Y" asks for the order.
    if let Some(step) = c.get(7)
        && !l.starts_with("make sure")
        && !l[step.end()..].trim_start().starts_with("only")
    {
        return None;
    }
    // "the bank reconciliation has to come before the statements": the
    // second waits for the first.
    let pairs = [
        (1, 2),
        (3, 4),
        (5, 6),
        (7, 8),
        (9, 10),
        (11, 12),
        (13, 14),
        (16, 15),
        (17, 18),
        (19, 20),
        (21, 22),
        (23, 24),
        (25, 26),
    ];
    let (step, after) = pairs
        .iter()
        .find_map(|&(a, b)| Some((c.get(a)?.as_str(), c.get(b)?.as_str())))?;
    // "the kickoff has to happen before the 3rd": a date, not a step.
    let when = |words: &str| {
        let toks = dates::tokens(words);
        !dates::find_dates(&toks, input.today).is_empty() || dates::find_time(&toks).is_some()
    };
    if when(step) || when(after) {
        return None;
    }
    let step = reference(step)?;
    let after = prerequisite(after)?;
    if step.split_whitespace().count() > 6 || after.split_whitespace().count() > 6 {
        return None;
    }
    Some(Command::AddDependency { step, after })
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
