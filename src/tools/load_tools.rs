//! `load_tools`: the model asks for tools beyond those offered on every
//! call. Each call offers `update_plan` and this tool, plus the tools the
//! person's message or the recent turns call for (`turn::offer`); the
//! others are listed, one line each, in this tool's description, and come
//! with their schemas from the next call of the turn once asked for by
//! name. What the model may call does not change: any tool of the
//! registry runs when called; only what each request carries does.

use super::{Tool, ToolContext, ToolError};
use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub(crate) struct LoadTools {
    /// The tools steps can be bound to, one line each (`Actions::catalog`).
    pub(crate) step_tools: String,
}

/// The name that asks for the tools steps can be bound to.
pub(crate) const STEP_TOOLS: &str = "step_tools";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    /// Names from the list.
    pub(crate) names: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Loaded {
    pub(crate) loaded: Vec<String>,
    /// What `step_tools` asked for: `name(args, * required): what it does`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) step_tools: Option<String>,
    pub(crate) note: &'static str,
}

/// The tools offered on every call; the rest come through `load_tools`.
pub(crate) const ALWAYS: [&str; 2] = ["update_plan", LoadTools::NAME];

/// What a `load_tools` call asks for, if its arguments read, in the order
/// given (`Registry::offer` passes over names of no tool).
pub(crate) fn requested(arguments: &str) -> Vec<String> {
    serde_json::from_str::<Args>(arguments)
        .map(|a| a.names)
        .unwrap_or_default()
}

#[async_trait]
impl Tool for LoadTools {
    const NAME: &'static str = "load_tools";
    /// Replaced by the registry with the list of the other tools.
    const DESCRIPTION: &'static str = "More tools, by name.";
    type Args = Args;
    type Output = Loaded;

    async fn run(&self, _ctx: ToolContext<'_>, args: Args) -> Result<Loaded, ToolError> {
        if args.names.is_empty() {
            return Err(ToolError::invalid("name at least one tool"));
        }
        let unknown: Vec<&str> = args
            .names
            .iter()
            .map(String::as_str)
            .filter(|n| *n != STEP_TOOLS && !super::NAMES.contains(n))
            .collect();
        if !unknown.is_empty() {
            return Err(ToolError::invalid(format!(
                "no tool named {}; the tools are {}, and {STEP_TOOLS} lists the tools a step can be bound to",
                unknown.join(", "),
                super::NAMES.join(", ")
            )));
        }
        let step_tools = args
            .names
            .iter()
            .any(|n| n == STEP_TOOLS)
            .then(|| self.step_tools.clone());
        let loaded: Vec<String> = args.names.into_iter().filter(|n| n != STEP_TOOLS).collect();
        Ok(Loaded {
            note: if loaded.is_empty() {
                "bind a step with add_step's tool: {name, args}"
            } else {
                "offered from your next call on; call them now"
            },
            loaded,
            step_tools,
        })
    }
}
