//! Which of the user's plans and steps their words name — the referent
//! rule (README, "Which plan a message means"): by id; by position ("the
//! second step"); else by the most title words in common. When a name fits
//! several, the plan the user last saw or acted on is meant if it is one of
//! them; otherwise steward asks, and nothing changes before the answer.

use crate::plan::{Plan, PlanId, Step, render};

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.trim_end_matches("'s").trim_end_matches("’s").to_lowercase())
        .collect()
}

/// Two words match if one starts the other and they share at least four
/// letters ("onboarding" ~ "onboard"), or they are equal.
fn similar(a: &str, b: &str) -> bool {
    a == b || (a.len().min(b.len()) >= 4 && (a.starts_with(b) || b.starts_with(a)))
}

pub(super) enum Pick<'a> {
    One(&'a Plan),
    /// Several fit equally well: ask.
    Ambiguous(Vec<&'a Plan>),
    None,
}

/// The plan the words name (`None`: no words), with `referent` the plan
/// the user last saw or acted on.
pub(super) fn pick_plan<'a>(said: Option<&str>, plans: &'a [Plan], referent: Option<PlanId>) -> Pick<'a> {
    let said = said.unwrap_or("").trim();
    if let Some(id) = words(said).iter().find_map(|w| PlanId::parse(w)) {
        return plans.iter().find(|p| p.id == id).map(Pick::One).unwrap_or(Pick::None);
    }
    let wanted = words(said);
    let last_seen = referent.and_then(|id| plans.iter().find(|p| p.id == id));
    if wanted.is_empty() {
        return match (plans, last_seen) {
            ([only], _) => Pick::One(only),
            ([], _) => Pick::None,
            (_, Some(seen)) => Pick::One(seen),
            _ => Pick::Ambiguous(plans.iter().collect()),
        };
    }
    let score = |p: &Plan| {
        let mut known = words(&p.title);
        known.extend(p.objective.kind.split('_').map(str::to_owned));
        wanted.iter().filter(|w| known.iter().any(|k| similar(w, k))).count()
    };
    let top = plans.iter().map(score).max().unwrap_or(0);
    // Words that name none of the plans ("the gym plan") name none: the
    // only plan is not guessed.
    if top == 0 {
        return Pick::None;
    }
    let best: Vec<&Plan> = plans.iter().filter(|p| score(p) == top).collect();
    match best.as_slice() {
        [one] => Pick::One(one),
        _ => match last_seen.filter(|seen| best.iter().any(|p| p.id == seen.id)) {
            Some(seen) => Pick::One(seen),
            None => Pick::Ambiguous(best),
        },
    }
}

pub(super) enum StepPick<'a> {
    One(&'a Plan, &'a Step),
    /// Several fit equally well: ask.
    Ambiguous(Vec<(&'a Plan, &'a Step)>),
    None,
}

const STEP_STOP: &[&str] = &[
    "the", "a", "an", "for", "and", "of", "to", "with", "on", "in", "my", "our",
];

const ORDINALS: [&str; 10] = [
    "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
];

/// A position said as a number or an ordinal: "2", "second", "the 2nd".
pub(super) fn ordinal(said: &str) -> Option<usize> {
    let wanted: Vec<String> = words(said)
        .into_iter()
        .filter(|w| !matches!(w.as_str(), "the" | "one" | "step" | "plan" | "option"))
        .collect();
    match wanted.as_slice() {
        [n] => n
            .trim_end_matches(|c: char| c.is_ascii_alphabetic())
            .parse::<usize>()
            .ok()
            .filter(|_| n.chars().next().is_some_and(|c| c.is_ascii_digit()))
            .or_else(|| ORDINALS.iter().position(|o| o == n).map(|i| i + 1)),
        _ => None,
    }
}

/// The step the user's words name: by position in the plan in view, by
/// id, or by the most title words in common.
pub(super) fn find_step<'a>(said: &str, plans: &'a [Plan], referent: Option<PlanId>) -> StepPick<'a> {
    let wanted: Vec<String> = words(said)
        .into_iter()
        .filter(|w| !STEP_STOP.contains(&w.as_str()))
        .collect();
    let last_seen = referent.and_then(|id| plans.iter().find(|p| p.id == id));
    if let Some(n) = ordinal(said) {
        let in_view = match (plans, last_seen) {
            ([only], _) => Some(only),
            (_, seen) => seen,
        };
        return match in_view {
            // Positions as the plan is shown (`render::ordered`).
            Some(plan) => match render::ordered(plan).get(n.saturating_sub(1)).filter(|_| n > 0) {
                Some(step) => StepPick::One(plan, step),
                None => StepPick::None,
            },
            None => {
                let all: Vec<(&Plan, &Step)> = plans
                    .iter()
                    .filter_map(|p| render::ordered(p).get(n.checked_sub(1)?).map(|s| (p, *s)))
                    .collect();
                match all.as_slice() {
                    [(p, s)] => StepPick::One(p, s),
                    [] => StepPick::None,
                    _ => StepPick::Ambiguous(all),
                }
            }
        };
    }
    let mut scored: Vec<(&Plan, &Step, usize)> = Vec::new();
    for plan in plans {
        for step in &plan.steps {
            if step.id == said.trim() {
                return StepPick::One(plan, step);
            }
            let title = words(&step.title);
            let id_words: Vec<String> = step.id.split('_').map(str::to_owned).collect();
            let score = wanted
                .iter()
                .filter(|w| title.iter().chain(&id_words).any(|t| similar(w, t)))
                .count();
            if score > 0 {
                scored.push((plan, step, score));
            }
        }
    }
    let top = scored.iter().map(|(_, _, s)| *s).max().unwrap_or(0);
    let best: Vec<(&Plan, &Step)> = scored
        .into_iter()
        .filter(|(_, _, s)| *s == top)
        .map(|(p, s, _)| (p, s))
        .collect();
    let in_seen: Vec<(&Plan, &Step)> = best
        .iter()
        .copied()
        .filter(|(p, _)| last_seen.is_some_and(|seen| seen.id == p.id))
        .collect();
    match (best.as_slice(), in_seen.as_slice()) {
        ([], _) => StepPick::None,
        ([(p, s)], _) => StepPick::One(p, s),
        (_, [(p, s)]) => StepPick::One(p, s),
        _ => StepPick::Ambiguous(best),
    }
}

/// Which of `options` (as listed to the user) an answer picks: a position
/// ("the second", "2") or the option sharing the most words with it
/// ("Ana's", the title). `None` when no single option fits.
pub(super) fn choose(answer: &str, options: &[String]) -> Option<usize> {
    if let Some(n) = ordinal(answer) {
        return (1..=options.len()).contains(&n).then(|| n - 1);
    }
    let said: Vec<String> = words(answer);
    let last = [
        &["last"][..],
        &["the", "last"],
        &["last", "one"],
        &["the", "last", "one"],
    ];
    if last
        .iter()
        .any(|l| said.iter().map(String::as_str).eq(l.iter().copied()))
        && !options.is_empty()
    {
        return Some(options.len() - 1);
    }
    let wanted: Vec<String> = words(answer)
        .into_iter()
        .filter(|w| !STEP_STOP.contains(&w.as_str()) && !matches!(w.as_str(), "one" | "plan" | "step"))
        .collect();
    let score = |o: &String| {
        let known = words(o);
        wanted.iter().filter(|w| known.iter().any(|k| similar(w, k))).count()
    };
    let top = options.iter().map(score).max().unwrap_or(0);
    let best: Vec<usize> = (0..options.len())
        .filter(|&i| top > 0 && score(&options[i]) == top)
        .collect();
    match best.as_slice() {
        [one] => Some(*one),
        _ => None,
    }
}
