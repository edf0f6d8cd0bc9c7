//! `plan_from_template`: a configured model hands over a structured
//! objective (`{kind, slots}`, checked against the template's typed slots)
//! and the server expands the template into a plan proposal, exactly as the
//! offline engine does. Dates are resolved by the model into YYYY-MM-DD.

use super::update_plan::PlanResult;
use super::{Tool, ToolContext, ToolError};
use crate::planner::templates::{SlotType, Template, Templates};
use crate::planner::{self, expand, missing_slot};
use crate::service::NewPlan;
use async_trait::async_trait;
use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::sync::Arc;

pub(crate) struct PlanFromTemplate {
    pub(crate) templates: Arc<Templates>,
}

/// The schema the model sees is built from the templates
/// ([`PlanFromTemplate::parameters`]): one typed slot schema per kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    pub(crate) kind: String,
    /// Required by the schema too (an empty object when none is known).
    pub(crate) slots: Map<String, Value>,
}

/// Longest text slot value.
const MAX_SLOT_CHARS: usize = 200;

/// Why a slot value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlotError {
    #[error("`{name}` is not a slot of {kind}; its slots are {known}")]
    Unknown { name: String, kind: String, known: String },
    #[error("slot `{0}` must be a single line of 1-{MAX_SLOT_CHARS} characters")]
    Text(String),
    #[error("slot `{name}` must be a date as YYYY-MM-DD, not `{value}`")]
    Date { name: String, value: String },
    #[error("slot `{name}` must be a month as YYYY-MM, not `{value}`")]
    Month { name: String, value: String },
    #[error("slot `{0}` must be a year such as 2027")]
    Year(String),
    #[error("slot `{0}` must list 1-20 items")]
    List(String),
}

/// Checks one slot value against the template's typed slot.
fn check_slot(template: &Template, name: &str, value: &Value) -> Result<Value, SlotError> {
    let Some(spec) = template.slots.iter().find(|s| s.name == name) else {
        let known: Vec<&str> = template.slots.iter().map(|s| s.name.as_str()).collect();
        return Err(SlotError::Unknown {
            name: name.to_owned(),
            kind: template.kind.clone(),
            known: known.join(", "),
        });
    };
    let text = |v: &Value| -> Result<String, SlotError> {
        match v.as_str().map(str::trim) {
            Some(s) if !s.is_empty() && s.chars().count() <= MAX_SLOT_CHARS && !s.chars().any(char::is_control) => {
                Ok(s.to_owned())
            }
            _ => Err(SlotError::Text(name.to_owned())),
        }
    };
    match spec.kind {
        SlotType::Person | SlotType::Org | SlotType::Text => text(value).map(Value::from),
        SlotType::Date => {
            let s = text(value)?;
            match NaiveDate::parse_from_str(&s, "%Y-%m-%d") {
                Ok(_) => Ok(Value::from(s)),
                Err(_) => Err(SlotError::Date {
                    name: name.to_owned(),
                    value: s,
                }),
            }
        }
        SlotType::Month => {
            let s = text(value)?;
            match NaiveDate::parse_from_str(&format!("{s}-01"), "%Y-%m-%d") {
                Ok(_) => Ok(Value::from(s)),
                Err(_) => Err(SlotError::Month {
                    name: name.to_owned(),
                    value: s,
                }),
            }
        }
        SlotType::Year => {
            let s = match value {
                Value::Number(n) => n.to_string(),
                other => text(other)?,
            };
            (s.len() == 4 && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| Value::from(s.clone()))
                .ok_or_else(|| SlotError::Year(name.to_owned()))
        }
        SlotType::List => {
            let items: Vec<Value> = match value {
                Value::Array(items) => items
                    .iter()
                    .map(text)
                    .collect::<Result<Vec<_>, _>>()?
                    .into_iter()
                    .map(Value::from)
                    .collect(),
                single => vec![Value::from(text(single)?)],
            };
            if items.is_empty() || items.len() > 20 {
                return Err(SlotError::List(name.to_owned()));
            }
            Ok(Value::from(items))
        }
    }
}

#[async_trait]
impl Tool for PlanFromTemplate {
    const NAME: &'static str = "plan_from_template";
    const DESCRIPTION: &'static str = "Propose a plan from a goal template (kind, slots; dates in the person's zone).";
    type Args = Args;
    type Output = PlanResult;

    fn parameters(&self) -> Value {
        let kinds: Vec<&str> = self.templates.all.iter().map(|t| t.kind.as_str()).collect();
        json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["kind", "slots"],
            "properties": {
                "kind": {"type": "string", "enum": kinds},
                "slots": {
                    "description": "The slots of the chosen kind (the variant named after it)",
                    "anyOf": self.templates.all.iter().map(slot_schema).collect::<Vec<_>>()
                }
            }
        })
    }

    async fn run(&self, ctx: ToolContext<'_>, args: Args) -> Result<PlanResult, ToolError> {
        let Some(template) = self.templates.get(&args.kind) else {
            let kinds: Vec<&str> = self.templates.all.iter().map(|t| t.kind.as_str()).collect();
            return Err(ToolError::invalid(format!(
                "unknown kind `{}`; known kinds: {}",
                args.kind,
                kinds.join(", ")
            )));
        };
        let mut slots = Map::new();
        for (name, value) in &args.slots {
            if value.is_null() {
                continue;
            }
            slots.insert(
                name.clone(),
                check_slot(template, name, value).map_err(|e| ToolError::invalid(e.to_string()))?,
            );
        }
        let tz = ctx.session.tz;
        let today = ctx.service.now().with_timezone(&tz).date_naive();
        if let Some(missing) = missing_slot(template, &slots) {
            return Err(ToolError::invalid(format!(
                "slot `{}` is missing; ask the user: {}",
                missing.name,
                planner::fill(&missing.question, &slots, today, None)
            )));
        }
        let e = expand(template, &slots, today, tz).map_err(|e| ToolError::invalid(e.to_string()))?;
        let new = NewPlan {
            title: e.title,
            goal: e.goal,
            objective: Some(e.objective),
            mode: e.mode,
            ops: e.ops,
            why: e.summary,
        };
        Ok(PlanResult(ctx.service.create(ctx.session, new).await?))
    }
}

/// The JSON Schema of one kind's slots, from its template: typed values,
/// required slots required, nothing else allowed. Templates dropped into
/// the directory get their schema the same way.
pub(crate) fn slot_schema(t: &Template) -> Value {
    let mut properties = Map::new();
    for s in &t.slots {
        let schema = match s.kind {
            SlotType::Date => {
                json!({"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$", "description": "YYYY-MM-DD"})
            }
            SlotType::Month => json!({"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$", "description": "YYYY-MM"}),
            SlotType::Year => json!({"type": "string", "pattern": "^[0-9]{4}$"}),
            SlotType::List => json!({"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 20}),
            SlotType::Person | SlotType::Org | SlotType::Text => json!({"type": "string", "minLength": 1}),
        };
        properties.insert(s.name.clone(), schema);
    }
    let required: Vec<&str> = t.slots.iter().filter(|s| s.required).map(|s| s.name.as_str()).collect();
    json!({
        "title": format!("{} slots", t.kind),
        "description": format!("{} slots", t.kind),
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false
    })
}

#[cfg(test)]
mod schema_tests {
    use super::*;

    #[test]
    fn each_kind_has_a_typed_slot_schema_with_its_required_slots() {
        let templates = Templates::built_in().unwrap();
        let onboard = slot_schema(templates.get("onboard_employee").unwrap());
        assert_eq!(onboard["title"], "onboard_employee slots");
        assert_eq!(onboard["required"], json!(["name", "start_date"]));
        assert_eq!(onboard["additionalProperties"], false);
        assert_eq!(
            onboard["properties"]["start_date"]["pattern"],
            "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
        );
        let trip = slot_schema(templates.get("trip").unwrap());
        assert_eq!(trip["properties"]["destinations"]["type"], "array");
        let parameters = PlanFromTemplate {
            templates: Arc::new(templates),
        }
        .parameters();
        assert_eq!(parameters["properties"]["slots"]["anyOf"].as_array().unwrap().len(), 9);
    }
}
