//! Plan commands in plain words.

use super::Command;
use super::adding::add_step;
use super::agenda;
pub(crate) use super::confirm::confirmation;
use super::dates::DateMention;
use super::more;
pub(super) use super::objects::{names_a_goal_kind, names_a_plan, reads_as_result, this_plan, unsure, vague_step};
use super::reminders;
use super::shift;
use super::showing;
use super::text::{Input, strip_reference};
use chrono::DateTime;
use chrono_tz::Tz;
use regex::Regex;
use std::sync::LazyLock;

pub(super) fn re(pattern: &str) -> Regex {
    // The patterns below are literals checked by the unit tests; a typo in
    // one is a programming error caught on the first test run.
    Regex::new(pattern).unwrap_or_else(|e| panic!("bad pattern {pattern}: {e}"))
}

/// Messages that ask for something to be done (so a time that cannot be
/// used gets a question, not silence).
static ACTION: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(remind|set|schedule|book|add|put|move|reschedule|push|postpone|delay|shift|bump|plan|launch|onboard|deploy|start|begin|make|change|create|due|organi[sz]e|arrange|prepare|close|ping|nudge|alert|notify|wake)\b|\b(remind me|set (a|up a) reminder|due (on|by)|deadline)\b",
    )
});

pub(crate) fn asks_for_action(input: &Input) -> bool {
    let (_, l) = clean(&input.lower);
    ACTION.is_match(l)
}

static POLITE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^((please|pls|hey|hi|ok|okay|so|also|and|now|steward|oops|oh|hmm|ah|actually|well|wait|right|alright|sorry|honestly)[,!]?\s+|(just a heads up|a heads up|heads up|fyi|btw|by the way|good news|great news|bad news|unfortunately|quick update|update)[,!:.]*\s+|(can|could|would|will) (you|we)\s+(please\s+)?|i'd like you to\s+|i want you to\s+)+",
    )
});

static HELP: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(?:(?:hey|hi|hello|ok|so|help|help me),? )?(help|help me|\?|commands|menu|what can you do|what all can you do|what do you do|how does this work|how do i use (this|you)|what are the commands|what can i say( to you)?|what are you able to do|is there a list of (the )?(things|commands) you (understand|know|can do)|what can i ask( you)?( to do)?|what (kind|kinds|sort) of (stuff|things) can i ask( you)?( to do)?|what can you help( me)? with|(give me |show me )?the (full )?(menu|list) of (things|stuff) you can (handle|do)|how do i use (steward|this( thing| bot| app)?)|(a )?list of (the )?commands|what (kinds? of )?things can you help( me)? with|how can you help( me)?|what can you help with|how do you work|what (commands|things|phrases) (do|can) you (understand|do|handle)|what are (all )?the things you can do|what do you understand|(show|give|tell)( me)? (the |a )?list of commands|list (the |all )?commands)\W*$",
    )
});
/// "I'm a bit lost, how does this thing work", "what are my options here?
/// help": asking how to use steward, anywhere in the message.
static HELP_LOOSE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\bhow does (this|this thing|it|steward|this bot|this app) work\b|\bwhat are (my|the|our) options\b|\bwhat options do (i|we) have\b|\bwhat (kinds? of )?things can you help( me)? with\b|\b(i|we) don't (know|get|understand) how (this|it|you|steward) works?\b|\bwhat (can|should|do) i (type|say|write)( here| to you)?\b|\bwhat i (can|should) (type|say|write)\b|\bwhat you can (actually |really )?do\b|\b(you're|you are) able to help( me)? with\b|\btour of what you (can do|do)\b|\bcheat ?sheet\b|\bfirst time using (this|steward|you)\b|^i'm new (here|to this)\b|\? ?(please )?help( me| please)?\W*$|^(help[,!.]* )?i'm (a bit |a little |so |totally |completely )?(lost|confused)(\W*$|, (what|how) )",
    )
});
static UNDO: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(undo|undo again|undo (that|it|this|the last change|my last change|the last thing)( again)?|revert (that|it|the last change)(, (it|that) was a mistake)?|take (that|it) back|roll (that|it) back|go back|put it back( the way it was)?|go back to (how|the way) (it|things) (was|were)( before( that( last)? change| the last change| that)?)?)\W*$",
    )
});
static HISTORY: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(show|see|view|display|give|list|get|pull up|open)\b.*\bhistory\b|^history\b|\b(what('s| has)? changed|what did (you|we|i) change|who (changed|moved|edited|touched|modified|updated)|audit trail|recent changes|what edits (were|have been) made|change log|changelog|changes (to|in|on|for|made)|edits (to|on|in|i've made|i made)|what('s| has) been changed|show me the log|the log of|(activity|audit|change) log)\b",
    )
});
static LIST: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^((list|show|display|see|view|give)( me)?( all)?( of)? (my|our|the|all)?\s*plans|(what|which) plans (do|have) (i|we)( got| have)?|my plans|all (my )?plans|plans|what am i (working on|tracking)( at the moment| right now| currently)?|what are my plans|what plans are there|what plans do i have|(list|show)( me)? everything( you're| you are| i'm| i am)? (tracking|keeping)( for me)?|(list|show|see|view)( me)? (every|each) (plan|one of my plans)( (you're|you are|i'm|i am|we're|we are) (tracking|keeping|running)| (i've|i have|we've|we have) got| (i|we) have)?( on the go| going| at the moment| right now)?( for (me|us))?)( first| again| now| please)?\W*$",
    )
});
/// "which plans are active?", "an overview of all the plans I have".
static LIST_LOOSE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(which|what|how many|overview of|summary of|all (of )?(the |my )?)\s*((current|active|open|existing|ongoing) )?plans\b|\bplans (are (active|running|open)|do i have|i have|have i got)\b",
    )
});
static NEW_STEP: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^(new|another|extra|one more) (step|task|item|todo|to-do)(?: please| pls)?\s*[:\-]?\s*(.+)$")
});
static REMIND_WHY: LazyLock<Regex> =
    LazyLock::new(|| re(r"^remind me (again )?(why|what|how|who|where|which|whether|if)\b"));
static REMIND: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(remind me|set (a|up a) reminder|reminder|ping me|nudge me|i need a (nudge|reminder)|give me a (nudge|reminder|shout)|(don't|do not) let me forget)\b|^(in (\d+|a|an|one|two|ten|twenty|thirty) \w+|tomorrow|tonight|later today|this (morning|afternoon|evening))( at [\w:]+)?,? (remind me|ping me|nudge me)\b",
    )
});
static CANCEL_PLAN: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(cancel|abandon|scrap|drop|kill|stop|forget about|call off|shelve)\s+(.+?)(?:\s+(?:entirely|completely|altogether|for good))?$",
    )
});
/// Words before a kind that describe a step rather than name a plan
/// ("the final budget", "the next launch").
const COMMON_ADJECTIVE: &[&str] = &[
    "final",
    "last",
    "first",
    "next",
    "new",
    "old",
    "big",
    "small",
    "main",
    "whole",
    "draft",
    "team",
    "annual",
    "monthly",
    "weekly",
    "quarterly",
    "soft",
    "full",
    "early",
    "late",
    "real",
    "test",
    "actual",
    "official",
];
static REMOVE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(remove|delete|drop|take out|get rid of|strike|cross out)\s+(.+?)(\s+(from|off|out of)\s+(.+))?$|^(take)\s+(.+?)(\s+(off|out of)\s+(.+))$|^take\s+(.+?)\s+out(?:,.*)?$",
    )
});
static SKIP: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(skip|we can skip|let's skip|lets skip|we can do without|we could do without|leave out|we can leave out|we could leave out|we don't need( to)?|we do not need( to)?|no need (for|to)|(?:let's not|lets not|don't|do not|no need to) bother with|no point(?: in)?(?: doing| having)?)\s+(.+?)(?:\s+this time)?(?:,\s*(?:just\s+)?skip(?: it)?)?$|^mark\s+(.+?)\s+as\s+skipped(?:,.*)?$|^(.+?)\s+(isn't|is not|aren't|are not) needed( anymore| any more)?(?:,.*)?$",
    )
});
/// What steward itself does, after "no need to …": asking, telling,
/// reminding the user.
static ABOUT_STEWARD: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(no need|no point)( for you)?( to)? (ask|tell|remind|notify|check with|confirm with|bother|message|ping|email) (me|us)\b",
    )
});
static RESCHEDULE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(?:let's |lets )?(move|reschedule|push|postpone|delay|shift|bump|change|pull|bring|set)\s+(.+?)\s+(to|for|until|till|back to|out to|forward to|up to|on|by|due)\s+(.+)$|^(.+?)\s+(?:should be|needs to be|has to be|must be|needs to move|has to move|must move|should move|is moving|moves|is now|are now)\s+(due|done|moved to|on|by|to)\s+(.+)$|^(?:can|could)\s+(.+?)\s+(?:happen|be done|take place|be moved|move)\s+(on|to|for|by)\s+(.+)$",
    )
});
/// "… on monday instead", "… rather than friday": a question that asks for
/// a change, not whether one is possible.
static INSTEAD: LazyLock<Regex> = LazyLock::new(|| re(r"\b(instead|rather)\b"));
/// "change the due date of audit prep to March 2": the step is after "of".
static DUE_CHANGE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(?:change|set|move|update|push|shift)\s+(?:the\s+)?(?:due date|deadline|date)\s+(?:of|for|on)\s+(.+?)\s+(?:to|for|until)\s+(.+)$",
    )
});
static DUE_OF: LazyLock<Regex> = LazyLock::new(|| re(r"^(the )?(due date|deadline|date)( of| for)?\s+"));
static ADD: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(add|include|put(?: in)?|insert|append|create)\s+(a |an |one more |another )?(new )?((step|task|item|todo|to-do|thing)\s*(:|to|-|called|named)?\s*)?(.+)$|^(also|don't forget to|do not forget to|we also need to|i also need to|also need to|we also need a step to|we need a step to|slot in a step to|there's one more thing we need: a step to)\s+(.+)$",
    )
});
static COMPLETE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^((?:you can |i'm |i am |i've |i have |we've |we have |we're |we are |i |we )?(?:just )?(?:all )?)(done with|finished with|finished|finsihed|finshed|completed|complete|did|done|ticked off|checked off|check off|tick off|crossed off|cross off|wrapped up|finish)\s+(.+)$|^(?:you can |please )?mark\s+(.+?)\s+(as\s+)?(done|complete|completed|finished)$|^(.+?)(?:\s+(is|are|was|were|has been|have been)|'s|’s)\s+(done|finished|complete|completed|sorted|taken care of|booked|sent|sent out|paid|signed|ordered|submitted|filed|delivered|approved|installed|set up)$|^(.+?)\s+(done|finished|completed|sorted|booked)$",
    )
});
static RETRY: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(?:please\s+)?(?:retry|re-try|rerun|re-run|re-attempt|reattempt)\s+(.+?)(?:\s+again)?$|^(?:please\s+)?(?:let's\s+|lets\s+)?(?:try|run|do)\s+(.+?)\s+(?:again|one more time|once more)$|^(?:please\s+)?give\s+(.+?)\s+another\s+(?:go|try|shot)$|^(?:can we |let's |lets )?(?:have|take|give it) another (?:shot|go|try|crack|stab) at\s+(.+)$|^(?:let's |lets )?attempt\s+(.+?)\s+again$",
    )
});
static START: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(i'm |i am |we're |we are |i've |i have |let's |lets )?(?:now |just )?(start(?:ed|ing)? working on|start(?:ed|ing)? on|start(?:ed|ing)? with|begin(?:ning)? with|working on|get(?:ting)? going on|start|starting|started|begin|beginning|began|begun|kick off|kicking off)\s+(.+)$|^(?:mark|set|move|put)\s+(.+?)\s+(as\s+|to\s+|into\s+)?(in progress|started|in-progress|ongoing|doing)(?:,.*)?$",
    )
});

/// The message without politeness and trailing punctuation, and the byte
/// offset where it starts in `lower` (so spans map back to the original).
fn clean(lower: &str) -> (usize, &str) {
    let leading = lower.len() - lower.trim_start().len();
    // Trailing emoji and emoticons ("✅", ":(") are tone, not words.
    let mut l = lower
        .trim()
        .trim_end_matches(|c: char| !c.is_alphanumeric() && !matches!(c, '\'' | '"' | '’' | '”' | ')'))
        .trim_end_matches([' ', ':', ';']);
    l = l
        .strip_suffix(" :(")
        .or_else(|| l.strip_suffix(" :)"))
        .unwrap_or(l)
        .trim_end();
    for tail in [" please", " thanks", " thank you", " for me"] {
        l = l.strip_suffix(tail).unwrap_or(l).trim_end_matches([',', ' ']);
    }
    let polite = POLITE.find(l).map(|m| m.end()).unwrap_or(0);
    let rest = l[polite..].trim_start();
    (leading + l.len() - rest.len(), rest.trim_end())
}

/// Whether the message ends in a question mark, before any trailing emoji,
/// emoticon or other punctuation ("report done?? 😬", "booked? :)").
pub(crate) fn asked(lower: &str) -> bool {
    lower
        .trim_end_matches(|c: char| !c.is_alphanumeric() && c != '?')
        .ends_with('?')
}

pub(super) fn reference(words: &str) -> Option<String> {
    let r = strip_reference(words);
    (!r.is_empty()).then_some(r)
}

/// The plan or step words of a captured phrase: "the orientation", "my
/// onboarding plan", "on the trip plan" → "orientation", "onboarding", "trip".
pub(super) fn plan_words(rest: &str) -> Option<String> {
    let rest = rest.trim();
    let rest = ["with ", "of ", "on ", "for ", "in ", "is ", "are ", "about "]
        .iter()
        .find_map(|p| rest.strip_prefix(p))
        .unwrap_or(rest);
    let rest = [
        "my plan for ",
        "the plan for ",
        "plan for ",
        "my plan of ",
        "the plan of ",
        "plans for ",
    ]
    .iter()
    .find_map(|p| rest.strip_prefix(p))
    .unwrap_or(rest);
    let rest = rest
        .trim_end_matches(" going")
        .trim_end_matches(" doing")
        .trim_end_matches(" looking");
    reference(rest)
}

/// The date mention inside `lower[offset..]`, if any.
pub(super) fn date_in(input: &Input, offset: usize) -> Option<DateMention> {
    let toks = input.tokens();
    input.dates().into_iter().find(|m| toks[m.first].start >= offset)
}

// Long: the command rules in priority order (first match wins); one list
// keeps the order visible, which is what decides ambiguous messages.
pub(crate) fn command(input: &Input, now: DateTime<Tz>) -> Option<Command> {
    let (base, l) = clean(&input.lower);
    let l = l.to_owned();
    if agenda::small_talk(&l) {
        return None;
    }
    if HELP.is_match(&l) || HELP_LOOSE.is_match(&l) && !l.contains(" plan") {
        return Some(Command::Help {});
    }
    if let Some(c) = more::undo_or_redo(&l) {
        return Some(c);
    }
    if UNDO.is_match(&l) {
        return Some(Command::Undo { plan: None });
    }
    if let Some(c) = more::quiet_hours(input, &l)
        .or_else(|| more::time_zone(input, &l))
        .or_else(|| more::email(input, base, &l))
    {
        return Some(c);
    }
    // "remind me again why I agreed to this?" asks nothing to be set.
    if REMIND.is_match(&l) && !REMIND_WHY.is_match(&l) {
        return reminders::remind(input, &l, base, now);
    }
    // "who even reads the weekly digest?" is talk about digests.
    if reminders::DIGEST.is_match(&l) && !l.starts_with("who ") && !l.starts_with("why ") {
        return Some(reminders::digest(input, &l));
    }
    if LIST.is_match(&l) {
        return Some(Command::ListPlans {});
    }
    // "what's due this week across all my plans?" asks about steps;
    // "what's changed in the launch plan this week?" about history.
    if !HISTORY.is_match(&l)
        && let Some(c) = agenda::agenda(&l, asked(&input.lower))
    {
        return Some(c);
    }
    if LIST_LOOSE.is_match(&l) {
        return Some(Command::ListPlans {});
    }
    if HISTORY.is_match(&l) && !l.starts_with("add ") {
        let plan = [
            "history of",
            "history for",
            "changed in",
            "changed on",
            "changed with",
            "changes to",
            "changes in",
            "changes on",
            "changes for",
            "history on",
            "log for",
            "log of",
            " in the ",
            " on the ",
            " for the ",
            " in my ",
            " on my ",
            "edited ",
            "touched ",
        ]
        .iter()
        .find_map(|k| l.split_once(k).map(|(_, r)| r.to_owned()))
        .and_then(|r| plan_words(&r));
        let plan = plan.or_else(|| {
            l.split_once(" history")
                .and_then(|(before, _)| plan_words(before.trim_start_matches("show").trim_start_matches(" me")))
        });
        return Some(Command::History {
            plan: plan.filter(|p| {
                !matches!(
                    p.as_str(),
                    "show" | "the" | "plan" | "" | "edit" | "change" | "full" | "whole"
                )
            }),
        });
    }
    if let Some(c) = more::rename(input, base, &l)
        .or_else(|| shift::shift(&l))
        .or_else(|| more::dependency(input, &l))
    {
        return Some(c);
    }
    if let Some(c) = DUE_CHANGE.captures(&l)
        && let (Some(step), Some(when)) = (c.get(1), c.get(2))
        && let Some(m) = date_in(input, base + when.start())
        && let Some(step) = reference(step.as_str())
    {
        return Some(Command::RescheduleStep { step, due: m.date });
    }
    if let Some(c) = RESCHEDULE.captures(&l) {
        // "can the dry run happen on monday instead?" asks for the move.
        let (step, when) = match (c.get(2), c.get(4), c.get(5), c.get(7), c.get(8), c.get(10)) {
            (Some(s), Some(w), ..) => (s.as_str(), w),
            // "annual budget for product, FY27, needs to be done by Friday":
            // a subject in several parts describes a goal, not a step.
            (_, _, Some(s), Some(w), ..) if !s.as_str().contains(',') => (s.as_str(), w),
            // "could the audit be done by the 15th?" asks whether it can.
            (.., Some(s), Some(w)) if INSTEAD.is_match(w.as_str()) => (s.as_str(), w),
            _ => return None,
        };
        // "set up onboarding for Marco …" is a goal, not a date change.
        let set_up = l.starts_with("set up ");
        if !set_up && let Some(m) = date_in(input, base + when.start()) {
            let step = DUE_OF.replace(step, "");
            let step = ["'s due date", "'s deadline", "'s date", "’s due date", "'s"]
                .iter()
                .find_map(|s| step.strip_suffix(s))
                .unwrap_or(&step);
            // "December, and it has to be done by the 7th" is not a step.
            // "let's do the december close, due by …" asks for a goal.
            let request = [
                "let's ",
                "lets ",
                "let us ",
                "help me ",
                "i need ",
                "we need ",
                "i want ",
                "we want ",
                "start a ",
                "start an ",
                "set up ",
                "create ",
                "plan a ",
                "plan an ",
                "plan my ",
            ]
            .iter()
            .any(|r| step.trim_start().starts_with(r));
            let named = reference(step).filter(|s| !request && s != "it" && super::dates::month(s).is_none());
            if let Some(step) = named {
                return Some(Command::RescheduleStep { step, due: m.date });
            }
        }
    }
    if let Some(c) = NEW_STEP.captures(&l)
        && let Some(body) = c.get(3)
    {
        return add_step(input, base + body.start(), body.as_str());
    }
    // "put together …" makes something; "put X in progress" starts it.
    if let Some(c) = ADD
        .captures(&l)
        .filter(|_| !(l.starts_with("put together") || l.starts_with("put ") && START.is_match(&l)))
    {
        let (body_start, body) = match (c.get(7), c.get(9)) {
            (Some(b), _) => (b.start(), b.as_str()),
            (_, Some(b)) => (b.start(), b.as_str()),
            _ => return None,
        };
        return add_step(input, base + body_start, body);
    }
    if let Some(c) = REMOVE.captures(&l)
        && let Some(object) = c.get(2).or(c.get(7)).or(c.get(11))
        && let Some(name) = reference(object.as_str())
    {
        // "delete the budget plan" is the plan, not a step called "budget".
        let object_words = object.as_str().split([',', ';']).next().unwrap_or("");
        // "delete the helsinki trip": a kind with its name is a plan ("the
        // launch" alone, "the final budget" or "the hotel in the Lisbon
        // trip" may be steps).
        let named: Vec<&str> = object_words
            .split_whitespace()
            .filter(|w| !matches!(*w, "the" | "my" | "our" | "this" | "that" | "whole" | "entire"))
            .collect();
        let named_kind = names_a_goal_kind(object_words)
            && matches!(named.as_slice(), [name, _] if !COMMON_ADJECTIVE.contains(name));
        if (names_a_plan(object_words) || named_kind) && c.get(5).or(c.get(10)).is_none() {
            return Some(Command::CancelPlan { plan: Some(name) });
        }
        return Some(Command::RemoveStep { step: name });
    }
    if let Some(c) = CANCEL_PLAN.captures(&l) {
        let object = c.get(2).map(|m| m.as_str()).unwrap_or("");
        // "scrap the insurance step, just delete it": the first clause names
        // a step; the rest says whether it goes or is skipped.
        let (first, rest) = object.split_once([',', ';']).unwrap_or((object, ""));
        let first = first.trim();
        if first.ends_with(" step") || first.ends_with(" task") {
            // "scrap the visit step": gone; "cancel the visit step": skipped.
            let scrapped = matches!(c.get(1).map(|m| m.as_str()), Some("scrap" | "ditch" | "kill"));
            let removed = scrapped || ["delete", "remove", "get rid"].iter().any(|w| rest.contains(w));
            return reference(first).map(|step| match removed {
                true => Command::RemoveStep { step },
                false => Command::SkipStep { step },
            });
        }
        // "cancel culture is wild": a sentence about something, not a plan's
        // name ("the …", "my …", "… plan", or a few words without a verb).
        let words = || {
            object
                .split_whitespace()
                .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()))
        };
        let verb = |w: &str| {
            matches!(
                w,
                "is" | "are" | "was" | "were" | "has" | "have" | "will" | "would" | "can" | "could" | "should"
            )
        };
        let named = ["the ", "my ", "our ", "this ", "that "]
            .iter()
            .any(|d| object.starts_with(d))
            || words().any(|w| w == "plan")
            || !words().any(verb);
        if !named {
            return None;
        }
        // "cancel this whole plan": the plan being talked about.
        if this_plan(object) {
            return Some(Command::CancelPlan { plan: None });
        }
        return reference(object).map(|plan| Command::CancelPlan { plan: Some(plan) });
    }
    // A step named together with a date ("start the budget by Dec 20") is a
    // new goal, not a status change.
    let dated = !input.dates().is_empty();
    // "did I miss anything?", "is the draft done?": a question changes nothing.
    let question = asked(&input.lower) || QUESTION.is_match(&l);
    if question {
        return showing::show(input, &l).or_else(|| tail_clause(input, now));
    }
    if let Some(c) = more::fail(input, base, &l).filter(|_| !dated) {
        return Some(c);
    }
    if let Some(c) = RETRY.captures(&l).filter(|_| !dated) {
        let step = (1..=5).find_map(|g| c.get(g)).and_then(|s| reference(s.as_str()))?;
        return Some(Command::RetryStep { step });
    }
    // "no need to ask me before every change" is about steward, not a step.
    if let Some(c) = SKIP.captures(&l).filter(|_| !dated && !ABOUT_STEWARD.is_match(&l)) {
        let step = c.get(5).or(c.get(6)).or(c.get(7)).and_then(|s| reference(s.as_str()))?;
        return Some(Command::SkipStep { step });
    }
    // "mark the bank reconciliation complete: all 4 accounts match".
    for sep in [", result: ", "; result: ", ", result ", ": ", " - ", " — ", ", "] {
        if let Some((head, rest)) = l.split_once(sep)
            && (sep != ", " || reads_as_result(rest))
            && let Some(c) = COMPLETE.captures(head)
            && let Some(said) = said_done(&c)
            && let Some(step) = reference(said.as_str()).filter(|s| named_done(&c, s))
        {
            let from = base + head.len() + sep.len();
            let result = input.text.get(from..base + l.len()).map(|r| r.trim().to_owned());
            return Some(Command::CompleteStep {
                step,
                result: result.filter(|r| !r.is_empty()),
            });
        }
    }
    if let Some(c) = COMPLETE.captures(&l) {
        let said = said_done(&c)?;
        // "done with accounts: created ana@corp" records what it produced.
        let separator = [":", " — ", "—", " - "]
            .iter()
            .filter_map(|sep| said.as_str().find(sep).map(|at| (at, sep.len())))
            .min();
        let (step, result) = match separator {
            Some((at, skip)) => {
                let from = base + said.start() + at + skip;
                let result = input.text.get(from..base + said.end()).map(|r| r.trim().to_owned());
                (&said.as_str()[..at], result.filter(|r| !r.is_empty()))
            }
            None if dated => return None,
            None => (said.as_str(), None),
        };
        let step = reference(step).filter(|s| named_done(&c, s))?;
        return Some(Command::CompleteStep { step, result });
    }
    // "kicking off the data import today": today is when, not a due date.
    let only_today = input.dates().iter().all(|m| m.date == input.today) && input.lower.contains("today");
    if let Some(c) = START.captures(&l).filter(|_| !dated || only_today) {
        let object = c.get(3).or(c.get(4)).map_or("", |m| m.as_str());
        // "start a research report", "start the close for last month": a
        // new goal (steps are named with "the", and a period is a goal's).
        let new_goal = ["a ", "an ", "new ", "a new "].iter().any(|a| object.starts_with(a))
            || PERIOD.is_match(object)
            || names_a_goal_kind(object);
        if !new_goal {
            let step = reference(object)?;
            return Some(Command::StartStep { step });
        }
        return None;
    }
    showing::show(input, &l).or_else(|| tail_clause(input, now))
}

/// The step words of a COMPLETE match.
fn said_done<'h>(c: &regex::Captures<'h>) -> Option<regex::Match<'h>> {
    c.get(3).or(c.get(4)).or(c.get(7)).or(c.get(10))
}

/// Whether `step` (from `c`) names a step said to be finished: not vague,
/// not negated, wished or expected ("the report still isn't finished", "the
/// deck must be done"), and a bare "X done" names no more than a few words.
fn named_done(c: &regex::Captures<'_>, step: &str) -> bool {
    let bare = c.get(10).is_some();
    let long = bare && step.split_whitespace().count() > 4;
    !(vague_step(step) || unsure(step) || long)
}

static QUESTION: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(did|do|does|is|are|was|were|have (i|we|you|they)|has|which|what|what's|whats|how|how's|any|anything|can|could|should|when|where|why)\b",
    )
});
static PERIOD: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\bfor (last|this|next) month\b|\bfor (january|february|march|april|may|june|july|august|september|october|november|december)\b",
    )
});

/// "if the client pulls out, …", "worst case, …": what follows only might
/// be wanted.
static CONDITION: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(if|unless|in case|worst case|maybe|perhaps|possibly|whether|should (we|i|they|it)|in the event|otherwise|or else)\b",
    )
});

/// "we lost the deal, delete the Soylent plan": the command in the last
/// clause, when it names what it acts on.
fn tail_clause(input: &Input, now: DateTime<Tz>) -> Option<Command> {
    let lower = input.lower.as_str();
    let (at, skip) = [", ", " — ", " - ", "; ", ". "]
        .iter()
        .filter_map(|sep| lower.rfind(sep).map(|at| (at, sep.len())))
        .max_by_key(|(at, _)| *at)?;
    let tail = input.text.get(at + skip..)?;
    if tail.split_whitespace().count() < 2 || at == 0 || CONDITION.is_match(&lower[..at]) {
        return None;
    }
    let sub = Input::new(tail, input.today);
    let vague = |w: &str| matches!(w, "it" | "that" | "this" | "them" | "everything");
    match command(&sub, now)? {
        Command::CancelPlan { plan: Some(plan) } if vague(&plan) => None,
        // "…, scrap this plan": which plan is not said, and a plan is not
        // cancelled or renamed on a guess.
        Command::CancelPlan { plan: None } | Command::RenamePlan { plan: None, .. } => None,
        Command::RemoveStep { step } | Command::SkipStep { step } | Command::CompleteStep { step, .. }
            if vague(&step) =>
        {
            None
        }
        Command::ShowPlan { plan: None } | Command::Help {} => None,
        c => Some(c),
    }
}
