//! The planner: an objective (kind + slots) becomes a proposed plan by
//! expanding its template: placeholders filled, due dates computed from slot
//! dates in the user's time zone, list slots fanned out into one step each.

pub mod templates;

use crate::plan::{Objective, Op, ToolBinding};
use chrono::{Days, NaiveDate, Utc};
use chrono_tz::Tz;
use serde_json::{Map, Value};
use templates::{DueError, DueExpr, SlotSpec, SlotType, Template};

/// A template filled in for one objective.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Expansion {
    pub(crate) title: String,
    pub(crate) goal: String,
    /// "To onboard Ana Souza by Dec 1"
    pub(crate) summary: String,
    pub(crate) objective: Objective,
    pub(crate) mode: crate::plan::PlanMode,
    pub(crate) ops: Vec<Op>,
}

/// The first required slot the objective lacks, in template order.
pub(crate) fn missing_slot<'a>(template: &'a Template, slots: &Map<String, Value>) -> Option<&'a SlotSpec> {
    template
        .slots
        .iter()
        .find(|s| s.required && slots.get(&s.name).is_none_or(Value::is_null))
}

fn date_of(value: &Value) -> Option<NaiveDate> {
    value
        .as_str()
        .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
}

/// A slot value as it reads in a sentence: dates as "Dec 1", lists as
/// "Lisbon, Porto and Madrid".
pub(crate) fn display(value: &Value, today: NaiveDate) -> String {
    if let Some(d) = date_of(value) {
        return if chrono::Datelike::year(&d) == chrono::Datelike::year(&today) {
            d.format("%b %-d").to_string()
        } else {
            d.format("%b %-d, %Y").to_string()
        };
    }
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(|i| display(i, today)).collect();
            match items.len() {
                0 => String::new(),
                1 => items[0].clone(),
                n => format!("{} and {}", items[..n - 1].join(", "), items[n - 1]),
            }
        }
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Fills `{slot}` placeholders; missing optional slots leave nothing behind.
pub(crate) fn fill(pattern: &str, slots: &Map<String, Value>, today: NaiveDate, item: Option<&str>) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}') else {
            out.push_str(&rest[open..]);
            rest = "";
            break;
        };
        let name = &rest[open + 1..open + close];
        match (name, item) {
            ("item", Some(item)) => out.push_str(item),
            _ => out.push_str(&slots.get(name).map(|v| display(v, today)).unwrap_or_default()),
        }
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Why a template could not be expanded for the given slots.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    #[error("the slot `{0}` is missing")]
    MissingSlot(String),
    #[error("the date `{0}` is missing")]
    MissingDate(String),
    #[error("`{0}` is out of range")]
    OutOfRange(String),
    #[error(transparent)]
    Due(#[from] DueError),
}

fn resolve_due(expr: &str, dates: &Map<String, Value>, today: NaiveDate) -> Result<NaiveDate, ExpandError> {
    let due = DueExpr::parse(expr)?;
    let base = if due.base == "today" {
        today
    } else {
        dates
            .get(&due.base)
            .and_then(date_of)
            .ok_or_else(|| ExpandError::MissingDate(due.base.clone()))?
    };
    let shifted = if due.offset_days >= 0 {
        base.checked_add_days(Days::new(due.offset_days as u64))
    } else {
        base.checked_sub_days(Days::new(due.offset_days.unsigned_abs()))
    };
    shifted.ok_or_else(|| ExpandError::OutOfRange(expr.to_owned()))
}

/// A computed date on a Saturday or Sunday moves back to the Friday before
/// (a deadline is safer early), or forward to Monday if that Friday has
/// passed.
fn working_day(date: NaiveDate, today: NaiveDate) -> NaiveDate {
    use chrono::{Datelike, Weekday};
    let back = match date.weekday() {
        Weekday::Sat => 1,
        Weekday::Sun => 2,
        _ => return date,
    };
    match date.checked_sub_days(Days::new(back)) {
        Some(friday) if friday >= today => friday,
        _ => date + Days::new(3 - back),
    }
}

/// When a step with due expression `expr` is due: that day at 09:00 local,
/// on a working day if the template keeps them, never before today.
fn due_moment(
    template: &Template,
    expr: &str,
    slots: &Map<String, Value>,
    today: NaiveDate,
    tz: Tz,
) -> Result<Option<chrono::DateTime<Utc>>, ExpandError> {
    let mut date = resolve_due(expr, slots, today)?;
    if template.working_days && DueExpr::parse(expr)?.offset_days != 0 {
        date = working_day(date, today);
    }
    Ok(Some(crate::plan::due_on(date.max(today), tz)))
}

/// Expands `template` for `slots`. Missing optional dates take their
/// defaults; a due date that would fall before today is set to today.
// Long: every feature of a template step (fan-out, dependencies, checks,
// dates, tool arguments) is resolved here in one pass, in file order.
pub(crate) fn expand(
    template: &Template,
    slots: &Map<String, Value>,
    today: NaiveDate,
    tz: Tz,
) -> Result<Expansion, ExpandError> {
    if let Some(missing) = missing_slot(template, slots) {
        return Err(ExpandError::MissingSlot(missing.name.clone()));
    }
    let mut slots = slots.clone();
    for slot in &template.slots {
        if slot.kind == SlotType::Date
            && !slots.contains_key(&slot.name)
            && let Some(default) = &slot.default
        {
            let date = resolve_due(default, &slots, today)?;
            slots.insert(slot.name.clone(), Value::from(date.format("%Y-%m-%d").to_string()));
        }
    }
    let due_at = |expr: &Option<String>| match expr {
        Some(expr) => due_moment(template, expr, &slots, today, tz),
        None => Ok(None),
    };

    // Steps with for_each fan out; dependents wait for every copy.
    let mut expanded_ids: std::collections::HashMap<&str, Vec<String>> = Default::default();
    let mut ops = Vec::new();
    for step in template.steps.iter().filter(|s| s.fallback_for.is_none()) {
        let items: Vec<Option<String>> = match &step.for_each {
            Some(list) => match slots.get(list) {
                Some(Value::Array(items)) if !items.is_empty() => {
                    items.iter().map(|i| Some(display(i, today))).collect()
                }
                _ => vec![None],
            },
            None => vec![None],
        };
        let many = items.len() > 1;
        let mut ids = Vec::new();
        for (n, item) in items.iter().enumerate() {
            let id = if many {
                format!("{}_{}", step.id, n + 1)
            } else {
                step.id.clone()
            };
            let mut depends_on: Vec<String> = step
                .depends_on
                .iter()
                .flat_map(|d| expanded_ids.get(d.as_str()).cloned().unwrap_or_else(|| vec![d.clone()]))
                .collect();
            // A check waits for what it checks (the first copy of a
            // `for_each` step).
            let checks = step.checks.as_ref().map(|c| {
                expanded_ids
                    .get(c.as_str())
                    .and_then(|ids| ids.first().cloned())
                    .unwrap_or_else(|| c.clone())
            });
            if let Some(c) = &checks
                && !depends_on.contains(c)
            {
                depends_on.push(c.clone());
            }
            let tool = step.tool.as_ref().map(|t| ToolBinding {
                name: t.name.clone(),
                args: fill_json(&t.args, &slots, today, item.as_deref()),
            });
            ops.push(Op::AddStep {
                id: Some(id.clone()),
                title: fill(&step.title, &slots, today, item.as_deref()),
                depends_on,
                due_at: due_at(&step.due)?,
                after: None,
                status: None,
                tool,
                checks,
            });
            ids.push(id);
        }
        expanded_ids.insert(&step.id, ids);
    }
    Ok(Expansion {
        title: fill(&template.title, &slots, today, None),
        goal: fill(&template.goal, &slots, today, None),
        summary: fill(&template.summary, &slots, today, None),
        objective: Objective {
            kind: template.kind.clone(),
            slots: slots.clone(),
        },
        mode: template.mode,
        ops,
    })
}

/// The operations that put the template's fallback for the failed step
/// `failed` into `plan`: the fallback step, waiting on what the failed one
/// waited on, due when it was due, placed after it; and every step that
/// waited on the failed one now waits on the fallback. `None` when the
/// template has no fallback for that step (a copy of a `for_each` step,
/// "book_2", takes the fallback of "book").
pub(crate) fn fallback(
    template: &Template,
    plan: &crate::plan::Plan,
    failed: &str,
    today: NaiveDate,
) -> Option<Vec<Op>> {
    let step = plan.step(failed)?;
    let base = match failed.rsplit_once('_') {
        Some((base, n)) if n.parse::<u32>().is_ok() && template.steps.iter().all(|s| s.id != failed) => base,
        _ => failed,
    };
    let spec = template
        .steps
        .iter()
        .find(|s| s.fallback_for.as_deref() == Some(base))?;
    let slots = &plan.objective.slots;
    let item = (base != failed).then(|| step.title.clone());
    let mut id = spec.id.clone();
    let mut n = 1;
    while plan.step(&id).is_some() {
        n += 1;
        id = format!("{}_{n}", spec.id);
    }
    let mut ops = vec![Op::AddStep {
        id: Some(id.clone()),
        title: fill(&spec.title, slots, today, item.as_deref()),
        depends_on: step.depends_on.clone(),
        due_at: step.due_at,
        after: Some(failed.to_owned()),
        status: None,
        tool: spec.tool.as_ref().map(|t| ToolBinding {
            name: t.name.clone(),
            args: fill_json(&t.args, slots, today, item.as_deref()),
        }),
        checks: None,
    }];
    ops.extend(crate::plan::patch::repoint_dependents(plan, failed, &id));
    Some(ops)
}

fn fill_json(value: &Value, slots: &Map<String, Value>, today: NaiveDate, item: Option<&str>) -> Value {
    match value {
        // A date given whole stays a date a tool can read ("2026-12-01").
        Value::String(s)
            if s.starts_with('{') && s.ends_with('}') && slots.get(&s[1..s.len() - 1]).and_then(date_of).is_some() =>
        {
            slots[&s[1..s.len() - 1]].clone()
        }
        Value::String(s) => Value::from(fill(s, slots, today, item)),
        Value::Array(items) => Value::from(
            items
                .iter()
                .map(|i| fill_json(i, slots, today, item))
                .collect::<Vec<_>>(),
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), fill_json(v, slots, today, item)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::templates::Templates;
    use super::*;
    use serde_json::json;

    fn slots(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn onboarding_expands_with_due_dates_before_the_start_in_local_time() {
        let t = Templates::built_in().unwrap();
        let today = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
        let e = expand(
            t.get("onboard_employee").unwrap(),
            &slots(json!({"name": "Ana Souza", "start_date": "2026-12-01"})),
            today,
            chrono_tz::Europe::Berlin,
        )
        .unwrap();
        assert_eq!(e.title, "Onboard Ana Souza");
        assert_eq!(e.summary, "To onboard Ana Souza by Dec 1");
        let Op::AddStep { id, due_at, .. } = &e.ops[0] else {
            panic!()
        };
        assert_eq!(id.as_deref(), Some("order_hardware"));
        // Nov 24 09:00 in Berlin is 08:00 UTC.
        assert_eq!(due_at.unwrap().to_rfc3339(), "2026-11-24T08:00:00+00:00");
        let Op::AddStep { depends_on, .. } = &e.ops[5] else {
            panic!()
        };
        assert_eq!(depends_on, &["prepare_desk", "welcome_email"]);
    }

    #[test]
    fn list_slots_fan_out_into_one_step_each_and_dependents_wait_for_all() {
        let t = Templates::built_in().unwrap();
        let today = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
        let e = expand(
            t.get("trip").unwrap(),
            &slots(json!({"destinations": ["Lisbon", "Porto"], "start_date": "2027-05-04"})),
            today,
            chrono_tz::UTC,
        )
        .unwrap();
        assert_eq!(e.title, "Trip to Lisbon and Porto");
        let titles: Vec<String> = e
            .ops
            .iter()
            .map(|o| match o {
                Op::AddStep { title, .. } => title.clone(),
                _ => String::new(),
            })
            .collect();
        assert!(
            titles.contains(&"Book accommodation in Lisbon".to_owned())
                && titles.contains(&"Book accommodation in Porto".to_owned())
        );
        let Op::AddStep { depends_on, .. } = e
            .ops
            .iter()
            .find(|o| matches!(o, Op::AddStep { id: Some(i), .. } if i == "itinerary"))
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(depends_on, &["stay_1", "stay_2"]);
    }

    #[test]
    fn every_built_in_template_expands_into_a_valid_plan() {
        let t = Templates::built_in().unwrap();
        let today = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
        let full = slots(json!({
            "name": "Ana", "start_date": "2026-12-01", "product": "Nimbus", "launch_date": "2027-03-03",
            "destinations": ["Lisbon"], "due_date": "2027-01-15", "period": "2026-11", "customer": "Acme Corp",
            "go_live_date": "2027-02-01", "tests": ["blood test", "mri"], "service": "billing microservice", "topic": "AI agents"
        }));
        for template in &t.all {
            let e =
                expand(template, &full, today, chrono_tz::UTC).unwrap_or_else(|err| panic!("{}: {err}", template.kind));
            let draft = crate::plan::Plan::draft(e.title.clone(), e.goal.clone(), Utc::now());
            crate::plan::patch::apply(&draft, &e.ops, &crate::plan::PlanLimits::default(), Utc::now())
                .unwrap_or_else(|err| panic!("{}: {err}", template.kind));
        }
    }

    #[test]
    fn a_missing_required_slot_is_named() {
        let t = Templates::built_in().unwrap();
        let template = t.get("onboard_employee").unwrap();
        let s = slots(json!({"name": "Ana"}));
        assert_eq!(missing_slot(template, &s).map(|s| s.name.as_str()), Some("start_date"));
    }
}
