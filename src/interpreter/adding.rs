//! A step added in words: "add a step to book the venue by Friday",
//! "we also need a step to …", "new step: snapshot the database, after the
//! maintenance window". The title ends where its date or "after …" begins.

use super::Command;
use super::commands::{date_in, re};
use super::more;
use super::text::Input;
use regex::Regex;
use std::sync::LazyLock;

static ADD_TAIL: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\s+(to|on|in|into)\s+(the|my|our|this)\s+([\w' -]+\s+)?(plan|list|checklist)\s*$|\s+(to|on|in|into)\s+(the|my|our|this)\s+plan\b.*$",
    )
});

pub(super) fn add_step(input: &Input, body_start: usize, body: &str) -> Option<Command> {
    let toks = input.tokens();
    let mention = date_in(input, body_start);
    // The title ends where its date phrase starts, including "by"/"on"/"due".
    let mut end = body_start + body.len();
    if let Some(m) = mention {
        let mut first = m.first;
        while first > 0
            && matches!(toks[first - 1].word, "by" | "on" | "due" | "before" | "for" | "until")
            && toks[first - 1].start >= body_start
        {
            first -= 1;
        }
        end = end.min(toks[first].start);
    }
    let raw = input
        .text
        .get(body_start..end)?
        .trim()
        .trim_end_matches([',', ';', '-', ':'])
        .trim();
    let lower_raw = input.lower.get(body_start..body_start + raw.len())?.to_owned();
    let cut = ADD_TAIL.find(&lower_raw).map(|m| m.start()).unwrap_or(raw.len());
    let title = raw[..cut].trim().trim_matches(['"', '\'', '“', '”', '‘', '’']).trim();
    let unquoted = |t: &str| t.trim().trim_matches(['"', '\'', '“', '”', '‘', '’']).trim().to_owned();
    if title.is_empty() || title.split_whitespace().count() > 20 {
        return None;
    }
    let (cut, after) = more::added_after(title);
    let title = unquoted(title[..cut].trim_end().trim_end_matches([',', ';', ':']));
    // "create it", "add that": a pronoun names no step; "create the
    // plan", "put a launch plan together" ask for a plan, not a step.
    let lower_title = title.to_lowercase();
    if title.is_empty()
        || matches!(
            lower_title.as_str(),
            "it" | "that" | "this" | "them" | "one" | "something"
        )
        || lower_title.ends_with("plan")
        || lower_title.contains(" plan for ")
        || lower_title.contains(" plan to ")
        || lower_title.ends_with("plan together")
    {
        return None;
    }
    Some(Command::AddStep {
        title,
        due: mention.map(|m| m.date),
        after,
    })
}
