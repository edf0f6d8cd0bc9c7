//! Confirmations: a whole message that is a yes or a no to what steward
//! proposed ("yep do it", "not right now, no", "👍").

use super::commands::re;
use super::text::Input;
use regex::Regex;
use std::sync::LazyLock;

static YES: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(do$|go on( then)?$|make it happen|aye|sounds right|yes+|yse|lgtm|yeah|yep|yup|ya|sure|sure,? why not|that's (correct|right)|that is (correct|right)|ok|okay|k|y|confirm|confirmed|correct|approved?|accept|sounds good|looks good|sounds great|looks great|go ahead|go for it|do it|please do|absolutely|definitely|of course|let's do it|lets do it|let's go|perfect|that works|works for me|fine|alright|all right)\b",
    )
});
static NO: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(yeah,? nah|yea,? nah|not quite|i'd rather you didn't|i would rather you didn't|i'd rather you did not|no+|nope|nah|n|i'd rather not|i would rather not|hold on,? (don't|do not)|don't|dont|do not|not now|not right now|not yet|cancel that|cancel it|never ?mind|forget it|stop|decline|declined|reject|hold off|wait|no thanks|no thank you|negative|scratch that|leave it|not like that)\b",
    )
});
/// Words that show a message is more than a yes or no.
static CONTENT: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(plan|plans|step|steps|starting|started|beginning|working on|add|remove|delete|move|show|list|remind|redo|rename|retry|onboard|launch|trip|budget|deploy|research|schedule|reschedule|undo|history|help|what|how|why|when|where|digests?|summary|summaries|emails?)\b",
    )
});

/// Phrasings about notifications and settings: "don't notify me between
/// 22:00 and 07:00" is a preference, never a "no".
static SETTINGS: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(notify|notif\w*|disturb|quiet|mute|pings?|alerts?|dnd|ping me|email me|message me|bother me|remind me|time ?zone|between \S+ and|from \S+ (to|till|until) \S+|(start|do|begin) .+ (before|until|after))\b",
    )
});

/// "no need for X", "no worries": not an answer to a proposal.
static NOT_A_NO: LazyLock<Regex> =
    LazyLock::new(|| re(r"^(no need|no point|no worries|no problem|no rush|no hurry|not a problem|no biggie)\b"));

/// `Some(accept)` if the whole message is a yes or a no.
pub(crate) fn confirmation(input: &Input) -> Option<bool> {
    let l = without_lead(input.lower.trim().trim_end_matches(['.', '!', '?', ' ']));
    if let Some(answer) = emoji_answer(l) {
        return Some(answer);
    }
    // "❌ no", "👍 yes please": a symbol before the words.
    let l = l
        .trim_start_matches(|c: char| !c.is_alphanumeric() && !c.is_whitespace())
        .trim_start();
    let words = l.split_whitespace().count();
    // A longer answer starts with a plain yes or no ("yes, that looks right
    // — go ahead and create it"), not with "ok so …".
    let plain = ["yes", "yeah", "yep", "no", "noo", "nope", "nah"].iter().any(|w| {
        l.strip_prefix(w)
            .is_some_and(|r| r.starts_with([',', ' ']) || r.starts_with(" -"))
    });
    if words == 0 || words > 12 || words > 8 && !plain {
        return None;
    }
    // "no-one has booked it", "yes-men": a word, not an answer; "yes but
    // change the date first", "yeah I'm not sure", "ok?": not a plain one.
    let joined = l
        .split_whitespace()
        .next()
        .is_some_and(|w| w.contains('-') && w.chars().any(char::is_alphanumeric) && !w.ends_with('-'));
    if joined || HEDGE.is_match(l) || super::commands::asked(&input.lower) {
        return None;
    }
    if SETTINGS.is_match(l) || NOT_A_NO.is_match(l) {
        return None;
    }
    let no = NO.is_match(l);
    let yes = !no && YES.is_match(l);
    if !(yes || no) {
        return None;
    }
    // "yes, maybe" does not agree; "no, maybe later" still declines.
    if yes && MAYBE.is_match(l) {
        return None;
    }
    // "no, don't do that" and "yes please, go ahead" are confirmations;
    // "ok, show my plans" is a command.
    let rest = l.split_once([',', ' ']).map(|(_, r)| r).unwrap_or("");
    let allowed_rest = re_rest().is_match(rest.trim());
    // Beyond eight words a yes says only that it agrees, clause by clause
    // ("yes, that looks right — go ahead and create it"); a longer no may
    // give its reason ("no — the dates are off, don't create it yet").
    let agreed = || {
        rest.split([',', ';', '—', '-', '.', '!'])
            .flat_map(|c| c.split(" and "))
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .all(|c| re_rest().is_match(c) || AGREE.is_match(c))
    };
    // "no, don't move anything", "nah, leave the budget plan alone", "no
    // thanks, I'll add the step myself": a no that says what not to do.
    let refused = || no && REFUSED.is_match(rest);
    let free = allowed_rest || yes && agreed() || refused();
    if CONTENT.is_match(l) && !free {
        return None;
    }
    if words > 8 && yes && !agreed() {
        return None;
    }
    // "ok wow, that storm came out of nowhere": a weak yes word opens a
    // remark; it agrees only when the rest does.
    let weak = ["ok", "okay", "k", "sure", "fine", "alright", "right"]
        .iter()
        .any(|w| l.strip_prefix(w).is_some_and(|r| r.starts_with([',', ' '])));
    if yes && weak && rest.split_whitespace().count() >= 3 && !allowed_rest && !agreed() {
        return None;
    }
    Some(yes)
}

/// "please don't, not yet": the message without a polite word before
/// the answer.
fn without_lead(l: &str) -> &str {
    [
        "please ",
        "pls ",
        "oh ",
        "ah ",
        "hmm ",
        "hmm, ",
        "actually ",
        "actually, ",
    ]
    .iter()
    .fold(l, |l, lead| l.strip_prefix(lead).unwrap_or(l))
}

/// A thumbs-up or -down alone answers a proposal.
fn emoji_answer(l: &str) -> Option<bool> {
    let all = |f: fn(char) -> bool| !l.is_empty() && l.chars().all(f);
    if all(|c| matches!(c, '👍' | '👌' | '✅' | '🙌' | '\u{1f3fb}'..='\u{1f3ff}')) {
        return Some(true);
    }
    all(|c| matches!(c, '👎' | '❌' | '\u{1f3fb}'..='\u{1f3ff}')).then_some(false)
}

/// Counter-proposals and doubt: the answer is not a plain yes or no ("yes
/// but …", "no, first …", "do the hotel instead", "yeah I'm not sure").
static HEDGE: LazyLock<Regex> = LazyLock::new(|| re(r"\b(but|instead|first|not sure)\b"));
/// What a longer no goes on to refuse.
static REFUSED: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b(don't|dont|do not|never|alone|myself|ourselves|as it is|as is|keep (it|the|them))\b"));
/// Doubt, which undoes a yes but not a no.
static MAYBE: LazyLock<Regex> = LazyLock::new(|| re(r"\b(maybe|perhaps|possibly|probably)\b"));

/// A clause that only agrees: "that looks right", "go ahead and create it".
static AGREE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^((that|this|it|all|everything) )?(looks|sounds|seems|is|all) (right|good|great|fine|correct|perfect|ok|okay)$|^(go ahead|do it|please)( and (create|make|set up|start|do|save|apply) (it|that|this|them))?$|^(please )?(create|make|set up|start|save|apply) (it|that|this|them|the plan)$|^(sounds|looks) (good|great|fine|perfect)$|^i'm (happy|ok|okay|fine) with (that|it|this)$|^by me$|^go on( then)?$|^leave (the plan|it) as it is$|^(cool|great|nice|good|perfect|lovely|brilliant|thanks|ty|thing|go|go go|go on|then|fine by me|works for me|that works|let's do it|lets do it|let's go|lets go|go ahead|go for it|sounds good|looks good)$",
    )
});

fn re_rest() -> &'static Regex {
    static REST: LazyLock<Regex> = LazyLock::new(|| {
        re(
            r"^(|please|thanks|thank you|why not|leave (the plan|it) as it is|do it|do that|go ahead|sounds good|that's fine|that is fine|don't do that|do not do that|not now|not that|not yet|i changed my mind|let's not|leave it|keep it as it is|(that's |that is )?not what i (wanted|meant|asked for)|(that's |that is )?(wrong|not right)|set it up|set this up|make the change|apply it|for now)\W*(please|thanks|for now)?\W*$",
        )
    });
    &REST
}
