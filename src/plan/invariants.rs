//! The rules every stored plan obeys, checked by the server whatever the
//! prompt said. Errors are written for the model: each names the offending
//! step and what would make the change valid.

use super::{Plan, PlanMode, StepStatus};
use crate::config::PlanConfig;
use std::collections::HashMap;

/// Size limits on plans and on the changes made to them: the `plan`
/// section of the configuration, as it is.
pub type PlanLimits = PlanConfig;

/// Why a plan change was refused. Shown to the model as the tool result, so it
/// can correct itself; the plan is left unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("step `{0}` does not exist in this plan")]
    UnknownStep(String),
    #[error("step id `{0}` is used twice; step ids must be unique within a plan")]
    DuplicateStepId(String),
    #[error("step id `{0}` is invalid: use 1-40 characters from a-z, 0-9, `_` and `-`")]
    InvalidStepId(String),
    #[error("step `{step}` depends on `{dependency}`, which is not a step of this plan")]
    MissingDependency { step: String, dependency: String },
    #[error("step `{0}` cannot depend on itself")]
    SelfDependency(String),
    #[error("dependencies form a cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
    #[error("a plan may have at most {limit} steps; this change would make {got}")]
    TooManySteps { limit: usize, got: usize },
    #[error("step `{step}` may depend on at most {limit} steps")]
    TooManyDependencies { step: String, limit: usize },
    #[error("{what} is empty")]
    Empty { what: String },
    #[error("{what} contains line breaks or other control characters; use one plain line")]
    ControlCharacters { what: String },
    #[error(
        "{what} contains a line or paragraph separator or a text-direction control (U+2028, U+2029, U+202A–U+202E, U+2066–U+2069, U+200E, U+200F, U+061C); remove it"
    )]
    HiddenCharacters { what: String },
    #[error("{what} is {got} characters long; the limit is {limit}")]
    TooLong { what: String, limit: usize, got: usize },
    #[error(
        "only one step may be in progress at a time; these would be: {}. Complete or pause one first",
        ticked(.0)
    )]
    TooManyInProgress(Vec<String>),
    #[error(
        "step `{step}` cannot be {status} before its dependencies are completed: waiting on {}",
        ticked(.waiting_on)
    )]
    DependenciesNotDone {
        step: String,
        status: StepStatus,
        waiting_on: Vec<String>,
    },
    #[error("step `{step}` cannot go from {from} to {to}{}", transition_hint(*.from))]
    IllegalTransition {
        step: String,
        from: StepStatus,
        to: StepStatus,
    },
    #[error("step `{step}` cannot be removed: {} depend on it; change their depends_on first", ticked(.dependents))]
    StillDependedOn { step: String, dependents: Vec<String> },
    #[error("reorder must list every step exactly once; {0}")]
    BadReorder(String),
    #[error("the plan is {0} and can no longer be changed")]
    PlanClosed(&'static str),
    #[error("at most {limit} operations per update; got {got}")]
    TooManyOps { limit: usize, got: usize },
    #[error("{0}")]
    Snapshot(String),
    #[error("step `{step}` checks `{checks}`, which must be another step of this plan that `{step}` depends on")]
    BadCheck { step: String, checks: String },
}

fn transition_hint(from: StepStatus) -> &'static str {
    match from {
        StepStatus::Completed => " (completed steps are final)",
        StepStatus::Cancelled => " (cancelled steps are final)",
        StepStatus::Pending | StepStatus::InProgress | StepStatus::Failed => "",
    }
}

/// Whether a step may move from `from` to `to`. Staying put is always allowed
/// so repeated snapshots are idempotent.
pub(crate) fn transition_allowed(from: StepStatus, to: StepStatus) -> bool {
    use StepStatus::*;
    if from == to {
        return true;
    }
    match from {
        Pending => matches!(to, InProgress | Completed | Cancelled),
        InProgress => matches!(to, Pending | Completed | Failed | Cancelled),
        // A failed step the person then did by hand is done.
        Failed => matches!(to, Pending | InProgress | Completed | Cancelled),
        Completed | Cancelled => false,
    }
}

pub(crate) fn check_transition(step: &str, from: StepStatus, to: StepStatus) -> Result<(), PlanError> {
    if transition_allowed(from, to) {
        Ok(())
    } else {
        Err(PlanError::IllegalTransition {
            step: step.to_owned(),
            from,
            to,
        })
    }
}

pub(crate) fn valid_step_id(id: &str) -> bool {
    (1..=40).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Ids in an error message, each in backticks: "`a`, `b`".
fn ticked(ids: &[String]) -> String {
    ids.iter().map(|id| format!("`{id}`")).collect::<Vec<_>>().join(", ")
}

/// Characters that can make text read as something else: line and
/// paragraph separators (a new line to many readers) and bidi controls
/// (text shown in another order than it is stored).
pub(crate) fn forges_text(c: char) -> bool {
    matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}')
}

/// Checks a text field: not blank, no control characters, within its limit.
/// `what` names the field in the error and is only built on failure.
pub(crate) fn check_text(what: &str, text: &str, limit: usize) -> Result<(), PlanError> {
    check_text_with(|| what.to_owned(), text, limit)
}

fn check_text_with(what: impl Fn() -> String, text: &str, limit: usize) -> Result<(), PlanError> {
    if text.trim().is_empty() {
        return Err(PlanError::Empty { what: what() });
    }
    if text.chars().any(char::is_control) {
        return Err(PlanError::ControlCharacters { what: what() });
    }
    check_free_text_with(what, text, limit)
}

/// Checks free text that may span lines (a goal, a result): within its
/// limit, and nothing that reads as something else.
pub(crate) fn check_free_text(what: &str, text: &str, limit: usize) -> Result<(), PlanError> {
    check_free_text_with(|| what.to_owned(), text, limit)
}

fn check_free_text_with(what: impl Fn() -> String, text: &str, limit: usize) -> Result<(), PlanError> {
    if text.chars().any(forges_text) {
        return Err(PlanError::HiddenCharacters { what: what() });
    }
    check_length_with(what, text, limit)
}

fn check_length_with(what: impl Fn() -> String, text: &str, limit: usize) -> Result<(), PlanError> {
    // Bytes bound chars from above: only long texts need counting.
    if text.len() > limit {
        let got = text.chars().count();
        if got > limit {
            return Err(PlanError::TooLong {
                what: what(),
                limit,
                got,
            });
        }
    }
    Ok(())
}

/// Checks every structural invariant of a whole plan. Transition legality is
/// checked separately, where the old status is known.
// Long: every invariant in one pass over the steps, in the order the
// README lists them, so a refused change names the first rule it breaks.
pub fn validate(plan: &Plan, limits: &PlanLimits) -> Result<(), PlanError> {
    check_text("the plan title", &plan.title, limits.max_title_chars)?;
    check_free_text("the plan goal", &plan.goal, limits.max_goal_chars)?;
    if plan.steps.len() > limits.max_steps {
        return Err(PlanError::TooManySteps {
            limit: limits.max_steps,
            got: plan.steps.len(),
        });
    }

    let mut index: HashMap<&str, usize> = HashMap::with_capacity(plan.steps.len());
    for (i, step) in plan.steps.iter().enumerate() {
        if !valid_step_id(&step.id) {
            return Err(PlanError::InvalidStepId(step.id.clone()));
        }
        if index.insert(&step.id, i).is_some() {
            return Err(PlanError::DuplicateStepId(step.id.clone()));
        }
        check_text_with(
            || format!("the title of step `{}`", step.id),
            &step.title,
            limits.max_title_chars,
        )?;
        if let Some(result) = &step.result {
            check_free_text_with(
                || format!("the result of step `{}`", step.id),
                result,
                limits.max_result_chars,
            )?;
        }
        if let Some(checks) = &step.checks
            && (checks == &step.id || !step.depends_on.contains(checks))
        {
            return Err(PlanError::BadCheck {
                step: step.id.clone(),
                checks: checks.clone(),
            });
        }
        if step.depends_on.len() > limits.max_depends_on {
            return Err(PlanError::TooManyDependencies {
                step: step.id.clone(),
                limit: limits.max_depends_on,
            });
        }
    }

    // Dependencies as indices, flattened: step i's are deps[starts[i]..starts[i + 1]].
    let mut deps: Vec<usize> = Vec::with_capacity(plan.steps.len());
    let mut starts: Vec<usize> = Vec::with_capacity(plan.steps.len() + 1);
    for step in &plan.steps {
        starts.push(deps.len());
        for (n, dep) in step.depends_on.iter().enumerate() {
            if dep == &step.id {
                return Err(PlanError::SelfDependency(step.id.clone()));
            }
            let Some(&at) = index.get(dep.as_str()) else {
                return Err(PlanError::MissingDependency {
                    step: step.id.clone(),
                    dependency: dep.clone(),
                });
            };
            // depends_on is short (bounded by max_depends_on): a scan beats a set.
            if step.depends_on[..n].contains(dep) {
                return Err(PlanError::DuplicateStepId(format!(
                    "{dep}` in the depends_on of `{}",
                    step.id
                )));
            }
            deps.push(at);
        }
    }
    starts.push(deps.len());
    let deps_of = |i: usize| &deps[starts[i]..starts[i + 1]];
    if let Some(cycle) = find_cycle(plan, &deps_of) {
        return Err(PlanError::Cycle(cycle));
    }

    if plan.mode == PlanMode::Single {
        let running = plan.steps.iter().filter(|s| s.status == StepStatus::InProgress).count();
        if running > 1 {
            let running = plan
                .steps
                .iter()
                .filter(|s| s.status == StepStatus::InProgress)
                .map(|s| s.id.clone())
                .collect();
            return Err(PlanError::TooManyInProgress(running));
        }
    }

    for (i, step) in plan.steps.iter().enumerate() {
        if matches!(step.status, StepStatus::InProgress | StepStatus::Completed) {
            let resolved = |&d: &usize| plan.steps[d].status.is_terminal();
            if !deps_of(i).iter().all(resolved) {
                let waiting_on = deps_of(i)
                    .iter()
                    .filter(|d| !resolved(d))
                    .map(|&d| plan.steps[d].id.clone())
                    .collect();
                return Err(PlanError::DependenciesNotDone {
                    step: step.id.clone(),
                    status: step.status,
                    waiting_on,
                });
            }
        }
    }
    Ok(())
}

/// Finds one dependency cycle, returned as the path that closes it
/// (`a -> b -> a`). Iterative, so a 10 000-step chain cannot blow the stack.
fn find_cycle<'a>(plan: &Plan, deps_of: &impl Fn(usize) -> &'a [usize]) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let mut mark = vec![Mark::New; plan.steps.len()];
    for root in 0..plan.steps.len() {
        if mark[root] != Mark::New {
            continue;
        }
        // Each frame is (step index, next dependency to look at).
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        mark[root] = Mark::Open;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            let deps = deps_of(node);
            if *next < deps.len() {
                let child = deps[*next];
                *next += 1;
                match mark[child] {
                    Mark::New => {
                        mark[child] = Mark::Open;
                        stack.push((child, 0));
                    }
                    Mark::Open => {
                        let start = stack.iter().position(|&(n, _)| n == child).unwrap_or(0);
                        let mut path: Vec<String> =
                            stack[start..].iter().map(|&(n, _)| plan.steps[n].id.clone()).collect();
                        path.push(plan.steps[child].id.clone());
                        return Some(path);
                    }
                    Mark::Done => {}
                }
            } else {
                mark[node] = Mark::Done;
                stack.pop();
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Plan, Step};
    use chrono::TimeZone;

    fn plan(steps: &[(&str, StepStatus, &[&str])]) -> Plan {
        let now = chrono::Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap();
        let mut p = Plan::draft("Onboard Ana", "", now);
        for (id, status, deps) in steps {
            let mut s = Step::new(*id, format!("Step {id}"));
            s.status = *status;
            s.depends_on = deps.iter().map(|d| d.to_string()).collect();
            p.steps.push(s);
        }
        p
    }

    use StepStatus::*;

    #[test]
    fn structural_invariants_accept_and_reject_as_the_table_says() {
        let limits = PlanLimits::default();
        let cases: Vec<(&str, Plan, Result<(), PlanError>)> = vec![
            ("empty plan is valid", plan(&[]), Ok(())),
            (
                "linear chain",
                plan(&[("a", Completed, &[]), ("b", InProgress, &["a"]), ("c", Pending, &["b"])]),
                Ok(()),
            ),
            (
                "parallel branches",
                plan(&[
                    ("a", Completed, &[]),
                    ("b", Pending, &["a"]),
                    ("c", Pending, &["a"]),
                    ("d", Pending, &["b", "c"]),
                ]),
                Ok(()),
            ),
            (
                "cancelled dependency counts as resolved",
                plan(&[("a", Cancelled, &[]), ("b", InProgress, &["a"])]),
                Ok(()),
            ),
            (
                "two in progress",
                plan(&[("a", InProgress, &[]), ("b", InProgress, &[])]),
                Err(PlanError::TooManyInProgress(vec!["a".into(), "b".into()])),
            ),
            (
                "duplicate id",
                plan(&[("a", Pending, &[]), ("a", Pending, &[])]),
                Err(PlanError::DuplicateStepId("a".into())),
            ),
            (
                "bad id",
                plan(&[("A b", Pending, &[])]),
                Err(PlanError::InvalidStepId("A b".into())),
            ),
            (
                "missing dependency",
                plan(&[("a", Pending, &["zz"])]),
                Err(PlanError::MissingDependency {
                    step: "a".into(),
                    dependency: "zz".into(),
                }),
            ),
            (
                "self dependency",
                plan(&[("a", Pending, &["a"])]),
                Err(PlanError::SelfDependency("a".into())),
            ),
            (
                "two-step cycle",
                plan(&[("a", Pending, &["b"]), ("b", Pending, &["a"])]),
                Err(PlanError::Cycle(vec!["a".into(), "b".into(), "a".into()])),
            ),
            (
                "long cycle",
                plan(&[
                    ("a", Pending, &[]),
                    ("b", Pending, &["d"]),
                    ("c", Pending, &["b"]),
                    ("d", Pending, &["c"]),
                ]),
                Err(PlanError::Cycle(vec!["b".into(), "d".into(), "c".into(), "b".into()])),
            ),
            (
                "started before dependency",
                plan(&[("a", Pending, &[]), ("b", InProgress, &["a"])]),
                Err(PlanError::DependenciesNotDone {
                    step: "b".into(),
                    status: InProgress,
                    waiting_on: vec!["a".into()],
                }),
            ),
            (
                "completed before dependency",
                plan(&[("a", Failed, &[]), ("b", Completed, &["a"])]),
                Err(PlanError::DependenciesNotDone {
                    step: "b".into(),
                    status: Completed,
                    waiting_on: vec!["a".into()],
                }),
            ),
        ];
        for (name, plan, expected) in cases {
            assert_eq!(validate(&plan, &limits), expected, "case: {name}");
        }
    }

    #[test]
    fn orchestrated_plans_may_run_several_steps_at_once() {
        let mut p = plan(&[("a", InProgress, &[]), ("b", InProgress, &[])]);
        p.mode = PlanMode::Orchestrated;
        assert_eq!(validate(&p, &PlanLimits::default()), Ok(()));
    }

    #[test]
    fn text_that_reads_as_something_else_is_refused() {
        let limits = PlanLimits::default();
        for bad in [
            "Ana\u{2028}p9",
            "Ana\u{2029}",
            "\u{202e}anA",
            "Ana\u{2067}x\u{2069}",
            "A\u{200f}",
        ] {
            let mut p = plan(&[("a", Pending, &[])]);
            p.title = bad.into();
            assert!(
                matches!(validate(&p, &limits), Err(PlanError::HiddenCharacters { .. })),
                "title {bad:?}"
            );
            let mut p = plan(&[("a", Pending, &[])]);
            p.steps[0].result = Some(format!("done\n{bad}"));
            let err = validate(&p, &limits).unwrap_err();
            assert!(err.to_string().contains("the result of step `a`"), "{err}");
        }
        // A result may still span lines; a title may not.
        let mut p = plan(&[("a", Pending, &[])]);
        p.steps[0].result = Some("line one\nline two".into());
        assert!(validate(&p, &limits).is_ok());
    }

    #[test]
    fn size_limits_are_enforced() {
        let limits = PlanLimits {
            max_steps: 3,
            max_title_chars: 20,
            ..PlanLimits::default()
        };
        let too_many = plan(&[
            ("a", Pending, &[]),
            ("b", Pending, &[]),
            ("c", Pending, &[]),
            ("d", Pending, &[]),
        ]);
        assert_eq!(
            validate(&too_many, &limits),
            Err(PlanError::TooManySteps { limit: 3, got: 4 })
        );

        let mut long_title = plan(&[("a", Pending, &[])]);
        long_title.steps[0].title = "x".repeat(21);
        assert_eq!(
            validate(&long_title, &limits),
            Err(PlanError::TooLong {
                what: "the title of step `a`".into(),
                limit: 20,
                got: 21
            })
        );

        let mut blank = plan(&[("a", Pending, &[])]);
        blank.steps[0].title = "   ".into();
        assert_eq!(
            validate(&blank, &limits),
            Err(PlanError::Empty {
                what: "the title of step `a`".into()
            })
        );
    }

    #[test]
    fn a_ten_thousand_step_chain_is_checked_without_recursion() {
        let limits = PlanLimits {
            max_steps: 20_000,
            ..PlanLimits::default()
        };
        let mut p = plan(&[]);
        for i in 0..10_000 {
            let mut s = Step::new(format!("s{i}"), "t");
            if i > 0 {
                s.depends_on = vec![format!("s{}", i - 1)];
            }
            p.steps.push(s);
        }
        assert_eq!(validate(&p, &limits), Ok(()));
        p.steps[0].depends_on = vec!["s9999".into()];
        assert!(matches!(validate(&p, &limits), Err(PlanError::Cycle(path)) if path.len() == 10_001));
    }

    #[test]
    fn transitions_follow_the_table() {
        let all = [Pending, InProgress, Completed, Failed, Cancelled];
        let allowed: &[(StepStatus, StepStatus)] = &[
            (Pending, InProgress),
            (Pending, Completed),
            (Pending, Cancelled),
            (InProgress, Pending),
            (InProgress, Completed),
            (InProgress, Failed),
            (InProgress, Cancelled),
            (Failed, Pending),
            (Failed, InProgress),
            (Failed, Completed),
            (Failed, Cancelled),
        ];
        for from in all {
            for to in all {
                let expected = from == to || allowed.contains(&(from, to));
                assert_eq!(transition_allowed(from, to), expected, "{from} -> {to}");
            }
        }
    }
}
