//! "show my onboarding plan", "can I see the trip plan", "how does the
//! launch look": asked to see a plan (or the one being talked about).

use super::Command;
use super::commands::{plan_words, re};
use super::text::Input;
use regex::Regex;
use std::sync::LazyLock;

static SHOW: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(show|display|open|view|see|pull up|bring up|give me)( me)?\s+(.+)$|^(where are we|where do we stand|where do things stand|where are things|what's the status|what is the status|status|status update|progress|how's|how is|how are|what's next|what is next|what's left|what is left|what remains|what do i have left)\b(.*)$|^(?:what does|what do|how does|how do)\s+(.+?)\s+look(?:\s+like)?(?:\s+(?:so far|now|right now|at the moment|today))?$|^show(?: me)? (?:what|how)\s+(.+?)\s+looks(?:\s+like)?(?:\s+(?:so far|now|right now|at the moment|today))?$",
    )
});
static SEE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^((can|could|may) (i|we) (see|look at|have a look at)|let me see|lemme see|let's see|lets see|what(?:'s|s| is) (in|on))\s+",
    )
});

/// "can you see my Google calendar?": what steward can reach, not a plan
/// to show (unless a plan is named).
static CAN_YOU_SEE: LazyLock<Regex> =
    LazyLock::new(|| re(r"^(can|could|do) you (see|access|read|reach|get into|look into)\b"));

pub(super) fn show(input: &Input, l: &str) -> Option<Command> {
    if CAN_YOU_SEE.is_match(input.lower.trim()) && !l.contains("plan") {
        return None;
    }
    // "can i see the trip plan", "what's in my launch plan?": asked to see.
    let asked = match SEE.find(l) {
        Some(m) if !m.as_str().starts_with("what") || l.contains("plan") => format!("show {}", &l[m.end()..]),
        _ => l.to_owned(),
    };
    let c = SHOW.captures(&asked)?;
    let rest = c
        .get(7)
        .or(c.get(3))
        .or(c.get(5))
        .or(c.get(6))
        .map(|m| m.as_str())
        .unwrap_or("");
    let plan = plan_words(rest);
    // "show me how to..." is not about a plan.
    if plan.as_deref().is_some_and(|p| p.split_whitespace().count() > 4) {
        return None;
    }
    Some(Command::ShowPlan { plan })
}
