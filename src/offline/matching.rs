//! Which of the user's plans and steps their words name: by id, by
//! position ("the second step"), or by the most title words in common.

use crate::plan::{Plan, PlanId, Step};

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Two words match if one starts the other and they share at least four
/// letters ("onboarding" ~ "onboard"), or they are equal.
fn similar(a: &str, b: &str) -> bool {
    a == b || (a.len().min(b.len()) >= 4 && (a.starts_with(b) || b.starts_with(a)))
}

pub(super) enum Pick<'a> {
    One(&'a Plan),
    Ambiguous,
    None,
}

pub(super) fn pick_plan<'a>(said: Option<&str>, plans: &'a [Plan]) -> Pick<'a> {
    let said = said.unwrap_or("").trim();
    if let Some(id) = words(said).iter().find_map(|w| PlanId::parse(w)) {
        return plans.iter().find(|p| p.id == id).map(Pick::One).unwrap_or(Pick::None);
    }
    let wanted = words(said);
    if wanted.is_empty() {
        return match plans {
            [only] => Pick::One(only),
            [] => Pick::None,
            _ => Pick::Ambiguous,
        };
    }
    let score = |p: &Plan| {
        let mut known = words(&p.title);
        known.extend(p.objective.kind.split('_').map(str::to_owned));
        wanted.iter().filter(|w| known.iter().any(|k| similar(w, k))).count()
    };
    let best = plans
        .iter()
        .map(|p| (score(p), p))
        .max_by_key(|(s, p)| (*s, p.updated_at));
    match best {
        Some((s, p)) if s > 0 => Pick::One(p),
        _ if plans.len() == 1 => Pick::One(&plans[0]),
        _ => Pick::None,
    }
}

const STEP_STOP: &[&str] = &[
    "the", "a", "an", "for", "and", "of", "to", "with", "on", "in", "my", "our",
];

/// The step the user's words name: by position ("2", "second"), by id, or by
/// the most title words in common; ties go to the most recently updated plan.
pub(super) fn find_step<'a>(said: &str, plans: &'a [Plan]) -> Option<(&'a Plan, &'a Step)> {
    let wanted: Vec<String> = words(said)
        .into_iter()
        .filter(|w| !STEP_STOP.contains(&w.as_str()))
        .collect();
    let ordinal = match wanted.as_slice() {
        [n] => n.parse::<usize>().ok().or_else(|| {
            [
                "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
            ]
            .iter()
            .position(|o| o == n)
            .map(|i| i + 1)
        }),
        _ => None,
    };
    let newest = plans.iter().max_by_key(|p| p.updated_at)?;
    if let Some(n) = ordinal {
        return newest.steps.get(n.checked_sub(1)?).map(|s| (newest, s));
    }
    let mut best: Option<(&Plan, &Step, usize)> = None;
    for plan in plans {
        for step in &plan.steps {
            if step.id == said.trim() {
                return Some((plan, step));
            }
            let title = words(&step.title);
            let id_words: Vec<String> = step.id.split('_').map(str::to_owned).collect();
            let score = wanted
                .iter()
                .filter(|w| title.iter().chain(&id_words).any(|t| similar(w, t)))
                .count();
            let better = match best {
                None => score > 0,
                Some((bp, _, bs)) => score > bs || (score == bs && plan.updated_at > bp.updated_at),
            };
            if better && score > 0 {
                best = Some((plan, step, score));
            }
        }
    }
    best.map(|(p, s, _)| (p, s))
}
