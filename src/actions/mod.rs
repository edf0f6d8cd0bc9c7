//! The tools a plan step can be bound to, for the execution engine to run:
//! the built-in ones (`send_email` to the user, `schedule_reminder`,
//! `create_calendar_event` into the user's calendar feed, `http_request`
//! to hosts the operator listed) and the ones declared in TOML files under
//! the tools directory (`declared`), called over HTTP (`http`).
//!
//! Each has a JSON Schema for its arguments, checked with the `jsonschema`
//! crate before anything runs: when a binding is added to a plan (so a
//! user never confirms a call that cannot run) and again before each call.
//! [`Actions::catalog`] is the one list the model is shown.

mod declared;
pub(crate) mod http;

use crate::config::Config;
use crate::execution::RetryPolicy;
use crate::plan::ToolBinding;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub(crate) use declared::{DeclaredError, HttpTool};

/// The tools steward runs itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Builtin {
    SendEmail,
    ScheduleReminder,
    CreateCalendarEvent,
    HttpRequest,
}

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Builtin(Builtin),
    Http(Box<HttpTool>),
}

/// One tool a step can be bound to.
pub(crate) struct Action {
    pub name: String,
    pub description: String,
    /// The JSON Schema its arguments are held to.
    pub parameters: Value,
    /// Changes something outside steward (an email, a ticket): the user
    /// confirms the step before it first runs.
    pub side_effects: bool,
    /// Takes an idempotency key, so a call whose outcome is unknown after a
    /// crash may be sent again with the same key.
    pub takes_key: bool,
    pub timeout: Duration,
    pub retry: RetryPolicy,
    pub kind: Kind,
    validator: jsonschema::Validator,
}

impl std::fmt::Debug for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Action")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// Why a binding cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindingError {
    #[error("there is no tool `{name}`; steps can be bound to: {known}")]
    Unknown { name: String, known: String },
    #[error("the arguments for `{tool}` do not fit its schema: {problems}")]
    Arguments { tool: String, problems: String },
}

impl Action {
    fn new(name: &str, description: &str, parameters: Value, side_effects: bool, kind: Kind) -> Result<Action, String> {
        let validator =
            jsonschema::validator_for(&parameters).map_err(|e| format!("its parameters are not a JSON Schema: {e}"))?;
        Ok(Action {
            name: name.to_owned(),
            description: description.to_owned(),
            parameters,
            side_effects,
            takes_key: true,
            timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            kind,
            validator,
        })
    }

    fn kind_is(&self, which: Builtin) -> bool {
        matches!(self.kind, Kind::Builtin(b) if b == which)
    }

    /// Every way `args` breaks the schema, at most five, each with where.
    pub(crate) fn check_args(&self, args: &Value) -> Result<(), BindingError> {
        let problems: Vec<String> = self
            .validator
            .iter_errors(args)
            .take(5)
            .map(|e| {
                let at = e.instance_path().to_string();
                if at.is_empty() {
                    e.to_string()
                } else {
                    format!("{at}: {e}")
                }
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(BindingError::Arguments {
                tool: self.name.clone(),
                problems: problems.join("; "),
            })
        }
    }

    /// `name(a*, b): description`, required arguments starred (whether it
    /// needs a yes is the confirmation policy's business, not the model's).
    fn summary(&self) -> String {
        let required: Vec<&str> = self
            .parameters
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let args: Vec<String> = self
            .parameters
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| {
                p.keys()
                    .map(|k| format!("{k}{}", if required.contains(&k.as_str()) { "*" } else { "" }))
                    .collect()
            })
            .unwrap_or_default();
        format!("{}({}): {}", self.name, args.join(", "), self.description)
    }
}

/// Every tool a step can be bound to. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Actions {
    by_name: Arc<BTreeMap<String, Arc<Action>>>,
}

/// Why the tools could not be loaded; names the file.
#[derive(Debug, thiserror::Error)]
pub enum ActionsError {
    #[error(transparent)]
    Declared(#[from] DeclaredError),
}

impl Actions {
    /// The built-in tools and those declared in `config.tools_dir` (a
    /// missing directory declares none). `reserved` are names taken by the
    /// model's own tools.
    pub fn load(config: &Config, reserved: &[&str]) -> Result<Actions, ActionsError> {
        let mut by_name = BTreeMap::new();
        for action in builtins() {
            by_name.insert(action.name.clone(), Arc::new(action));
        }
        for tool in declared::load_dir(&config.tools_dir, config, reserved, &by_name)? {
            by_name.insert(tool.name.clone(), Arc::new(tool));
        }
        Ok(Actions {
            by_name: Arc::new(by_name),
        })
    }

    /// Only the built-in tools.
    pub fn built_in() -> Actions {
        Actions {
            by_name: Arc::new(builtins().into_iter().map(|a| (a.name.clone(), Arc::new(a))).collect()),
        }
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Arc<Action>> {
        self.by_name.get(name)
    }

    /// Every tool, by name.
    pub(crate) fn all(&self) -> impl Iterator<Item = &Arc<Action>> {
        self.by_name.values()
    }

    /// Checks a binding: the tool exists and the arguments fit its schema.
    pub(crate) fn check(&self, binding: &ToolBinding) -> Result<&Arc<Action>, BindingError> {
        let action = self.get(&binding.name).ok_or_else(|| BindingError::Unknown {
            name: binding.name.clone(),
            known: self.by_name.keys().cloned().collect::<Vec<_>>().join(", "),
        })?;
        action.check_args(&binding.args)?;
        Ok(action)
    }

    /// What the model is told about the tools steps can be bound to: one
    /// line each. The one list; the model sees exactly these.
    pub(crate) fn catalog(&self) -> String {
        self.all().map(|a| a.summary()).collect::<Vec<_>>().join("; ")
    }
}

/// Whether `path` is in the tools directory as a declared tool file.
pub(crate) fn is_tool_file(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "toml")
}

fn builtin(name: &str, description: &str, parameters: Value, side_effects: bool, which: Builtin) -> Action {
    match Action::new(name, description, parameters, side_effects, Kind::Builtin(which)) {
        Ok(action) => action,
        // The schemas below are literals checked by every test run.
        Err(e) => unreachable!("built-in tool {name}: {e}"),
    }
}

fn builtins() -> Vec<Action> {
    let date = "RFC 3339, or YYYY-MM-DD (09:00 in the user's zone)";
    vec![
        builtin(
            "send_email",
            "Emails the user",
            json!({
                "type": "object",
                "properties": {
                    "subject": {"type": "string", "minLength": 1, "maxLength": 200},
                    "body": {"type": "string", "minLength": 1, "maxLength": 20000}
                },
                "required": ["subject", "body"],
                "additionalProperties": false
            }),
            true,
            Builtin::SendEmail,
        ),
        builtin(
            "schedule_reminder",
            "Reminds the user at a time",
            json!({
                "type": "object",
                "properties": {
                    "text": {"type": "string", "minLength": 1, "maxLength": 500},
                    "at": {"type": "string", "minLength": 10, "maxLength": 40, "description": date}
                },
                "required": ["text", "at"],
                "additionalProperties": false
            }),
            false,
            Builtin::ScheduleReminder,
        ),
        builtin(
            "create_calendar_event",
            "Adds an event to the user's calendar feed",
            json!({
                "type": "object",
                "properties": {
                    "title": {"type": "string", "minLength": 1, "maxLength": 200},
                    "starts": {"type": "string", "minLength": 10, "maxLength": 40, "description": date},
                    "minutes": {"type": "integer", "minimum": 1, "maximum": 10080},
                    "location": {"type": "string", "maxLength": 200}
                },
                "required": ["title", "starts"],
                "additionalProperties": false
            }),
            false,
            Builtin::CreateCalendarEvent,
        ),
        builtin(
            "http_request",
            "HTTP call to an allowed host",
            json!({
                "type": "object",
                "properties": {
                    "method": {"enum": ["GET", "POST", "PUT", "PATCH", "DELETE"]},
                    "url": {"type": "string", "minLength": 8, "maxLength": 2000},
                    "body": {"type": "object"}
                },
                "required": ["method", "url"],
                "additionalProperties": false
            }),
            true,
            Builtin::HttpRequest,
        ),
    ]
    .into_iter()
    .map(|mut a| {
        // An allowed host need not honour `Idempotency-Key`: a call whose
        // outcome is unknown is handed to the person, not sent again.
        a.takes_key = !a.kind_is(Builtin::HttpRequest);
        a
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bindings_are_checked_against_the_tool_and_its_schema() {
        let actions = Actions::built_in();
        let bind = |name: &str, args: Value| ToolBinding {
            name: name.into(),
            args,
        };
        assert!(
            actions
                .check(&bind("send_email", json!({"subject": "Hi", "body": "Welcome"})))
                .is_ok()
        );
        let unknown = actions.check(&bind("rm_rf", json!({}))).unwrap_err();
        assert!(unknown.to_string().contains("there is no tool `rm_rf`"), "{unknown}");
        assert!(unknown.to_string().contains("send_email"), "{unknown}");
        for bad in [
            json!({"subject": "Hi"}),
            json!({"subject": "Hi", "body": "x", "to": "someone@else.example"}),
            json!({"subject": 7, "body": "x"}),
            json!([1, 2]),
        ] {
            let e = actions.check(&bind("send_email", bad.clone())).unwrap_err();
            assert!(matches!(e, BindingError::Arguments { .. }), "{bad}: {e}");
        }
        let catalog = actions.catalog();
        assert!(
            catalog.contains("send_email(body*, subject*): Emails the user"),
            "{catalog}"
        );
    }
}
