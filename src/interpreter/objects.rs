//! What a command's words name: a plan, a kind of plan ("the month-end
//! close"), "this plan", or no step at all ("all done"); and whether words
//! after a finished step are its result.

/// "the research plan completely", "my trip plan": the words name a plan.
pub(super) fn names_a_plan(object: &str) -> bool {
    let mut words: Vec<&str> = object.split_whitespace().collect();
    while words.last().is_some_and(|w| {
        matches!(
            *w,
            "completely" | "entirely" | "altogether" | "anymore" | "please" | "now"
        )
    }) {
        words.pop();
    }
    words.last() == Some(&"plan") || words.first() == Some(&"plan")
}

/// "the month-end close", "their onboarding", "my Bali trip", "the research
/// report": the words name a kind of plan (what a goal is), not a step.
pub(super) fn names_a_goal_kind(object: &str) -> bool {
    // "the annual budget for the engineering team": what comes before
    // "for" names it.
    let object = [" for ", " with "]
        .iter()
        .filter_map(|k| object.find(k))
        .min()
        .map_or(object, |at| &object[..at]);
    let words: Vec<&str> = object
        .split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()))
        .filter(|w| !w.is_empty())
        .collect();
    let kind_noun = |w: &str| {
        matches!(
            w,
            "trip" | "onboarding" | "launch" | "budget" | "close" | "deployment" | "rollout" | "vacation" | "holiday"
        )
    };
    match words.as_slice() {
        [.., "research", "report" | "report's"] => true,
        [.., last] => kind_noun(last.trim_end_matches("'s")),
        [] => false,
    }
}

/// "this plan", "this whole plan", "the entire plan": the plan at hand.
pub(super) fn this_plan(object: &str) -> bool {
    let mut words = object
        .split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()));
    let named = words.clone().any(|w| w == "plan");
    named
        && words.all(|w| {
            matches!(
                w,
                "this" | "that" | "the" | "whole" | "entire" | "current" | "plan" | ""
            )
        })
}

/// "all done", "we're done", "help me get my ECG done": no step is named
/// (the last is a request).
pub(super) fn vague_step(step: &str) -> bool {
    let request = step.split_whitespace().any(|w| {
        matches!(
            w,
            "get" | "have" | "need" | "needs" | "want" | "help" | "to" | "i" | "we" | "me" | "you" | "please" | "can"
        )
    });
    request
        || matches!(
            step,
            "all" | "everything" | "i'm" | "we're" | "it" | "that" | "this" | "almost" | "nearly" | "not"
        )
        || step.ends_with(" not")
}

/// Words that say something is not (yet) the case, only expected, hoped
/// for or doubted: "the report still isn't", "the deck must be", "not sure
/// the flights were", "if the invoice is".
pub(super) fn unsure(words: &str) -> bool {
    words
        .split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric() && c != '\''))
        .any(|w| {
            w.ends_with("n't")
                || matches!(
                    w,
                    "not"
                        | "never"
                        | "still"
                        | "yet"
                        | "cannot"
                        | "will"
                        | "must"
                        | "should"
                        | "could"
                        | "would"
                        | "might"
                        | "has"
                        | "had"
                        | "hope"
                        | "hopefully"
                        | "wish"
                        | "if"
                        | "whether"
                        | "unless"
                        | "when"
                        | "once"
                        | "until"
                        | "sure"
                        | "maybe"
                        | "perhaps"
                        | "probably"
                        | "supposed"
                        | "almost"
                        | "nearly"
                        | "quite"
                )
        })
}

/// "finished the literature review, found about 40 sources": what a
/// finished step produced, after a comma; not "…, thanks" or "…, what next?".
pub(super) fn reads_as_result(rest: &str) -> bool {
    let first = rest.split_whitespace().next().unwrap_or("");
    rest.split_whitespace().count() >= 3
        && !matches!(
            first,
            "thanks"
                | "thank"
                | "yay"
                | "finally"
                | "phew"
                | "so"
                | "and"
                | "but"
                | "what"
                | "what's"
                | "now"
                | "next"
                | "can"
                | "could"
                | "please"
                | "let's"
                | "lets"
                | "i"
                | "we"
                | "mark"
                | "tick"
                | "i'm"
                | "we're"
        )
}
