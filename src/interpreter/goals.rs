//! New goals: which template kind a message asks for, and its slots.
//! Kinds are recognised by the keywords each template declares, and slots
//! are filled by type using the template's cue words, so a template dropped
//! into `templates/plans/` is understood without code changes.

use super::dates::{self, Token};
use super::remarks::{NEVER_A_GOAL, PAST, REMARKS, about_someone_else, conditional, others_doing_it};
use super::slots::{apply_case, cue_before, list_after, month, person, text_after, year};
use super::text::{Input, find_phrase};
use crate::planner::templates::{SlotSpec, SlotType, Template, Templates};
use serde_json::{Map, Value};

/// Phrases that make a message a request rather than a remark.
const REQUEST_VERBS: &[&str] = &[
    "help me",
    "help us",
    "help with",
    "plan",
    "planning",
    "prepare",
    "organize",
    "organise",
    "set up",
    "need to",
    "have to",
    "want to",
    "schedule",
    "book",
    "let's",
    "lets",
    "can you",
    "could you",
    "please",
    "get ready",
    "start",
    "kick off",
    "going to",
    "gonna",
    "write",
    "create",
    "make",
    "organising",
    "organizing",
    "arrange",
    "draft",
    "build",
    "need a",
    "need an",
    "need my",
    "sort out",
    "to organise",
];

/// Verbs that name the goal itself ("we're launching Orbit").
const GOAL_VERBS: &[&str] = &[
    "we're",
    "we are",
    "i'm",
    "i am",
    "deploy",
    "launch",
    "launching",
    "onboard",
    "research",
    "close",
];

const QUESTION_WORDS: &[&str] = &[
    "how", "what", "why", "did", "was", "were", "is", "are", "do", "does", "who", "when", "what's", "whats", "how's",
    "who's", "where", "where's", "which", "any",
];

/// Asking for advice about a kind of goal ("any tips on writing a good
/// research report intro?") is talk, not a request for one.
const ADVICE: &[&str] = &[
    "tips",
    "advice",
    "ideas on",
    "how to",
    "how do you",
    "how should i",
    "what's a good",
];

/// Requests that stand even in a hedged message ("maybe … can you plan it").
const STRONG_REQUESTS: &[&str] = &["help me", "please", "can you", "could you", "set up", "let's", "lets"];

pub(crate) fn detect(input: &Input, templates: &Templates) -> Option<(String, Map<String, Value>)> {
    let toks = input.tokens();
    let words: Vec<&str> = toks.iter().map(|t| t.word).collect();
    let template = best_template(input, &toks, templates)?;
    let requests = requests(&toks);
    let asks = requests || names_goal_verb(&toks);
    // "do you …" asks; "do the monthly close for january" tells.
    let told = words.first() == Some(&"do")
        && !input.lower.trim_end().ends_with('?')
        && !words
            .get(1)
            .is_some_and(|w| matches!(*w, "i" | "you" | "we" | "they" | "he" | "she" | "it" | "steward"));
    let question = !told && words.first().is_some_and(|w| QUESTION_WORDS.contains(w));
    // "how did the launch go?" talks about a goal; it does not ask for one.
    if question && !requests {
        return None;
    }
    let advice = ADVICE.iter().any(|a| find_phrase(&toks, a).is_some());
    if advice && (question || input.lower.trim_end().ends_with('?')) {
        return None;
    }
    // A statement with a date ("Tom joins on Monday") is a goal; without one
    // ("my trip was great") it is talk.
    let dated = !dates::find_dates(&toks, input.today).is_empty();
    if !asks && words.len() > 3 && !starts_imperatively(&words) && !dated {
        return None;
    }
    let slots = fill_slots(input, &toks, template);
    // "budget" alone, or "maybe we should launch something, idk": a goal
    // is named but not asked for; its kind's whole name ("medical tests",
    // "ANNUAL BUDGET") picks it, as from a menu.
    if !asks && !dated && slots.is_empty() && !names_the_kind(&words, template) {
        return None;
    }
    // One word ("launch") names a goal without asking for one.
    if words.len() == 1 {
        return None;
    }
    let strong = STRONG_REQUESTS.iter().any(|v| find_phrase(&toks, v).is_some());
    let hedged = ["maybe", "perhaps", "someday", "idk", "might", "eventually", "not sure"]
        .iter()
        .any(|h| find_phrase(&toks, h).is_some());
    let past = PAST.iter().any(|p| find_phrase(&toks, p).is_some());
    let remark = REMARKS.iter().any(|p| find_phrase(&toks, p).is_some());
    if (hedged || past || remark) && !strong {
        return None;
    }
    // News without a request: someone else's doing, or something done
    // already ("Anna already booked her MRI for next week").
    if (about_someone_else(&words) || words.contains(&"already")) && !requests {
        return None;
    }
    if !strong && (others_doing_it(&words) || conditional(&words)) {
        return None;
    }
    if NEVER_A_GOAL.iter().any(|p| find_phrase(&toks, p).is_some()) {
        return None;
    }
    // "has anyone touched the launch plan since Monday?": a plan that
    // exists, named without a word that asks for a new one.
    let names_existing = toks
        .iter()
        .enumerate()
        .any(|(at, t)| t.word == "plan" && plan_as_noun(&toks, at));
    if names_existing && !strong && !requests {
        return None;
    }
    Some((template.kind.clone(), slots))
}

/// Whether the words ask for a goal ("help me", "plan", "set up", …).
/// "plan" as a noun ("what does the research plan say", "bring the deploy
/// plan up") names a plan that exists; it asks for none.
pub(crate) fn requests(toks: &[Token<'_>]) -> bool {
    REQUEST_VERBS.iter().any(|v| match *v {
        "plan" | "planning" => toks
            .iter()
            .enumerate()
            .any(|(at, t)| t.word == *v && !plan_as_noun(toks, at)),
        _ => find_phrase(toks, v).is_some(),
    })
}

/// Whether "plan" at `at` is a noun after a determiner: "the plan", "my
/// launch plan", "the Kōwhai launch plan".
fn plan_as_noun(toks: &[Token<'_>], at: usize) -> bool {
    toks[at.saturating_sub(3)..at].iter().any(|t| {
        matches!(
            t.word,
            "the" | "my" | "our" | "this" | "that" | "his" | "her" | "their" | "your"
        )
    })
}

/// The slots of `template` the message names (an answer while that goal
/// is being set up).
pub(crate) fn detect_as(input: &Input, template: &Template) -> Option<(String, Map<String, Value>)> {
    let toks = input.tokens();
    let slots = fill_slots(input, &toks, template);
    (!slots.is_empty()).then(|| (template.kind.clone(), slots))
}

/// Whether the message names a kind of goal and asks for it.
pub(crate) fn asks_for_goal(input: &Input, templates: &Templates) -> bool {
    let toks = input.tokens();
    best_template(input, &toks, templates).is_some() && (requests(&toks) || names_goal_verb(&toks))
}

/// A goal verb said as a verb: "we're launching Orbit", "deploy X", not
/// the noun in "the conference happens after the launch".
fn names_goal_verb(toks: &[Token<'_>]) -> bool {
    GOAL_VERBS.iter().any(|v| {
        find_phrase(toks, v).is_some_and(|at| {
            !(at > 0
                && matches!(
                    toks[at - 1].word,
                    "the" | "a" | "an" | "our" | "my" | "this" | "that" | "its"
                ))
        })
    })
}

fn starts_imperatively(words: &[&str]) -> bool {
    !matches!(
        words.first(),
        Some(&("i" | "we" | "my" | "our" | "the" | "that" | "it" | "this"))
    )
}

/// Where keyword `k` is said: its words in a row, where `<month>` stands
/// for any month's name, `<year>` for a year ("close <month>") and
/// `<place>` for a capitalised name that is not a date ("going to <place>"),
/// in a message that says how long one stays there (two dates, "for a
/// week", "over new year"): "going to Costco on Saturday" is an errand.
fn keyword_at(input: &Input, toks: &[Token<'_>], k: &str) -> Option<usize> {
    if !k.contains('<') {
        return find_phrase(toks, k);
    }
    if k.contains("<place>") && dates::find_dates(toks, input.today).len() < 2 && !STAY.is_match(&input.lower) {
        return None;
    }
    let words: Vec<&str> = k.split_whitespace().collect();
    let fits = |w: &str, t: &Token<'_>| match w {
        "<month>" => dates::month(t.word).is_some() && t.word != "may",
        "<year>" => t.word.len() == 4 && t.word.starts_with("20") && t.word.parse::<u32>().is_ok(),
        "<place>" => {
            input.text[t.start..t.end].starts_with(char::is_uppercase)
                && dates::month(t.word).is_none()
                && dates::weekday(t.word).is_none()
        }
        _ => w == t.word,
    };
    (0..toks.len().saturating_sub(words.len() - 1))
        .find(|&i| words.iter().enumerate().all(|(j, w)| fits(w, &toks[i + j])))
}

/// How long a stay lasts: "for a week", "for 3 nights", "over the weekend".
static STAY: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    super::commands::re(
        r"\bfor (a|an|one|two|three|four|five|six|seven|ten|a few|a couple of|\d{1,2}) (days?|nights?|weeks?|months?)\b|\bfor the (weekend|week|holidays)\b|\bover (the weekend|the holidays|new year|christmas|easter)\b|\b(long weekend|week away|weekend away)\b",
    )
});

/// Words that say the one being onboarded is a customer, not an employee:
/// "client", "customer", "go live", "be live by".
fn names_a_customer(toks: &[Token<'_>]) -> bool {
    let word = toks.iter().enumerate().any(|(i, t)| {
        matches!(t.word, "client" | "clients" | "customer" | "customers")
            && !toks
                .get(i + 1)
                .is_some_and(|n| matches!(n.word, "team" | "team's" | "success" | "service" | "support"))
    });
    word || ["go live", "go-live", "golive", "going live", "be live", "live by"]
        .iter()
        .any(|p| find_phrase(toks, p).is_some())
}

fn best_template<'a>(input: &Input, toks: &[Token<'_>], templates: &'a Templates) -> Option<&'a Template> {
    // "the customer success team's budget": a keyword naming a team is not
    // the kind of goal.
    let names_team = |k: &str| {
        let at = keyword_at(input, toks, k).map(|i| i + k.split_whitespace().count());
        at.and_then(|j| toks.get(j)).is_some_and(|t| {
            matches!(
                t.word,
                "team" | "team's" | "success" | "service" | "support" | "meeting" | "meetings" | "call" | "sync"
            )
        })
    };
    let said = |t: &'a Template| -> Vec<&'a String> {
        t.keywords
            .iter()
            .filter(|k| keyword_at(input, toks, k).is_some() && !names_team(k))
            .collect()
    };
    // A company suffix ("GmbH", "Ltd", "& Söhne") points to the kind with
    // an organisation slot, whatever else is said ("onboard Müller GmbH").
    let company = toks.iter().any(|t| super::slots::is_org_suffix(t.word)) || toks.iter().any(|t| t.word == "&");
    let org_slot = |t: &'a Template| t.slots.iter().find(|s| s.kind == SlotType::Org);
    // Words about a customer ("a new client", "be live by") point there only
    // when a name fills its organisation slot, or no other kind's own words
    // are said: "a research report on customer churn", "deploy X, needs to
    // be live by 9am", "the launch of our client portal" are not.
    let customer = names_a_customer(toks);
    let score = |t: &'a Template| -> usize {
        let keys = said(t);
        let Some(slot) = org_slot(t) else {
            return keys.iter().map(|k| k.len()).sum();
        };
        let shared =
            |k: &str| t.keywords.iter().any(|o| o == k) || slot.cues.iter().any(|c| c.trim_start_matches('~') == k);
        let others_own = templates
            .all
            .iter()
            .filter(|o| org_slot(o).is_none())
            .any(|o| said(o).iter().any(|k| !shared(k)));
        let for_customer = company || customer && (customer_named(input, toks) || !others_own);
        let words: usize = keys
            .iter()
            .filter(|k| for_customer || !CUSTOMER_WORDS.iter().any(|w| k.contains(w)))
            .map(|k| k.len())
            .sum();
        words + if for_customer && words > 0 { 20 } else { 0 }
    };
    templates
        .all
        .iter()
        .map(|t| (score(t), t))
        .filter(|(s, _)| *s > 0)
        .max_by_key(|(s, _)| *s)
        .map(|(_, t)| t)
}

/// "our new customer Halcyon Media", "new client: Initech": a name right
/// after the word for a customer.
fn customer_named(input: &Input, toks: &[Token<'_>]) -> bool {
    toks.iter().enumerate().any(|(i, t)| {
        let mut k = i + 1;
        while toks
            .get(k)
            .is_some_and(|t| matches!(t.word, "the" | "our" | "my" | "new" | "a" | "an" | "called" | "named"))
        {
            k += 1;
        }
        // "go-live for Pinehurst Dental is the 15th": the name after it too.
        let go_live_for = matches!(t.word, "go-live" | "golive") && toks.get(i + 1).is_some_and(|n| n.word == "for");
        if go_live_for {
            k = i + 2;
        }
        (go_live_for || matches!(t.word, "customer" | "client"))
            && toks.get(k).is_some_and(|n| {
                input.text[n.start..n.end].starts_with(char::is_uppercase)
                    && dates::month(n.word).is_none()
                    && dates::weekday(n.word).is_none()
            })
    })
}

/// Parts of keywords that only say the one onboarded is a customer.
const CUSTOMER_WORDS: &[&str] = &["customer", "client", "live"];

fn fill_slots(input: &Input, toks: &[Token<'_>], template: &Template) -> Map<String, Value> {
    let mentions = dates::find_dates(toks, input.today);
    let mut used = vec![false; mentions.len()];
    let mut slots = Map::new();
    // Dates first (by cue, then in order), so text slots can stop at them.
    let date_slots: Vec<&SlotSpec> = template.slots.iter().filter(|s| s.kind == SlotType::Date).collect();
    let mut assigned: Vec<(&str, usize)> = Vec::new();
    // A cue that says which date it is ("back on the 14th", "leaving
    // friday") wins over a bare preposition ("on", "by").
    let weak = |c: &String| {
        matches!(
            c.as_str(),
            "on" | "in" | "by" | "for" | "at" | "next" | "this" | "and" | "of"
        )
    };
    for strong_only in [true, false] {
        for slot in &date_slots {
            if assigned.iter().any(|(n, _)| *n == slot.name) {
                continue;
            }
            let cues: Vec<String> = slot
                .cues
                .iter()
                .filter(|c| !(strong_only && weak(c)))
                .cloned()
                .collect();
            if let Some(k) = (0..mentions.len()).find(|&k| !used[k] && cue_before(toks, mentions[k].first, &cues)) {
                used[k] = true;
                assigned.push((&slot.name, k));
            }
        }
    }
    for slot in &date_slots {
        if assigned.iter().any(|(n, _)| *n == slot.name) {
            continue;
        }
        if let Some(k) = (0..mentions.len()).find(|&k| !used[k]) {
            used[k] = true;
            assigned.push((&slot.name, k));
        }
    }
    // A later date slot must not come before an earlier one (start, end).
    for (name, k) in &assigned {
        slots.insert(
            (*name).to_owned(),
            Value::from(mentions[*k].date.format("%Y-%m-%d").to_string()),
        );
    }
    for slot in &template.slots {
        let value = match slot.kind {
            SlotType::Date => continue,
            SlotType::Person => person(input, toks, &slot.cues, false, slot.required).map(Value::from),
            SlotType::Org => person(input, toks, &slot.cues, true, slot.required).map(Value::from),
            SlotType::Text => text_after(input, toks, &slot.cues, &mentions, slot.required)
                .map(|t| Value::from(apply_case(&t, slot.case))),
            SlotType::List => list_after(input, toks, &slot.cues, &mentions, slot.required)
                .map(|items| Value::from(items.into_iter().map(|i| apply_case(&i, slot.case)).collect::<Vec<_>>())),
            SlotType::Month => month(toks, input).map(Value::from),
            SlotType::Year => year(toks, input.today).map(Value::from),
        };
        if let Some(v) = value.filter(|v| !placeholder(v)) {
            slots.insert(slot.name.clone(), v);
        }
    }
    slots
}

/// "help me deploy a service", "get their onboarding sorted": a word that
/// stands for a value names none.
fn placeholder(value: &Value) -> bool {
    let stands_for = |v: &str| {
        let v = v.to_lowercase();
        // "annual budget for fiscal 2027": a year is no team.
        v.starts_with("fiscal ")
            || matches!(
                v.as_str(),
                "service"
                    | "a service"
                    | "the service"
                    | "product"
                    | "a product"
                    | "the product"
                    | "something"
                    | "someone"
                    | "somebody"
                    | "sorted"
                    | "done"
                    | "ready"
                    | "things"
                    | "tests"
                    | "medical tests"
                    | "some medical tests"
                    | "some tests"
                    | "a few tests"
            )
    };
    match value {
        Value::String(v) => stands_for(v),
        Value::Array(items) => !items.is_empty() && items.iter().all(|i| i.as_str().is_some_and(stands_for)),
        _ => false,
    }
}

/// Whether the words are the kind's own name: "annual budget", "month-end
/// close", "product launch".
fn names_the_kind(words: &[&str], template: &Template) -> bool {
    let said: Vec<&str> = words
        .iter()
        .flat_map(|w| w.split('-'))
        .filter(|w| !w.is_empty())
        .collect();
    said.len() >= 2 && template.kind.split('_').eq(said.iter().copied())
}
