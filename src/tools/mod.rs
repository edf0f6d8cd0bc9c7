//! The tools a model calls: thin adapters that parse the arguments, call
//! the plan service for the session's user, and render the typed result
//! for the model. The acting user comes from the session, never from the
//! arguments. `registry` is the one list of what the model sees; each
//! tool's argument schema is derived from its argument type, so the two
//! cannot drift apart. The offline engine calls the same tools with typed
//! arguments and reads their typed outputs.

pub(crate) mod list_plans;
pub(crate) mod load_tools;
pub(crate) mod plan_from_template;
pub(crate) mod plan_history;
pub(crate) mod remind;
pub(crate) mod set_preferences;
pub(crate) mod show_plan;
pub(crate) mod undo;
pub(crate) mod update_plan;

use crate::actions::Actions;
use crate::conversation::ToolCall;
use crate::llm::ToolSpec;
use crate::plan::Plan;
use crate::planner::templates::Templates;
use crate::service::{Failure, Service, ServiceError, Session};
use async_trait::async_trait;
use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::sync::Arc;
use tracing::Instrument;

/// Largest tool-argument payload accepted from a model.
pub(crate) const MAX_ARGUMENT_BYTES: usize = 64 * 1024;

/// What a tool acts with: the service, for the session's user.
#[derive(Clone, Copy)]
pub struct ToolContext<'a> {
    pub service: &'a Service,
    pub session: &'a Session,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ToolError {
    /// Bad arguments or a refused change: told to the model so it can
    /// correct itself. Nothing was written.
    #[error("{message}")]
    Invalid {
        message: String,
        /// The plan as it is now, when the call was made against an old one.
        current: Option<Box<Plan>>,
    },
    /// The server failed: the turn ends with an error to the user.
    #[error(transparent)]
    Fatal(Failure),
}

impl ToolError {
    pub(crate) fn invalid(message: impl Into<String>) -> ToolError {
        ToolError::Invalid {
            message: message.into(),
            current: None,
        }
    }
}

impl From<ServiceError> for ToolError {
    fn from(e: ServiceError) -> ToolError {
        match e {
            ServiceError::Refused(refusal) => ToolError::Invalid {
                message: refusal.to_string(),
                current: refusal.current_plan().cloned().map(Box::new),
            },
            ServiceError::Failed(failure) => ToolError::Fatal(failure),
        }
    }
}

impl From<crate::plan::PlanError> for ToolError {
    fn from(e: crate::plan::PlanError) -> ToolError {
        ToolError::invalid(e.to_string())
    }
}

/// One tool: typed arguments in, a typed output out.
#[async_trait]
pub(crate) trait Tool: Send + Sync + 'static {
    const NAME: &'static str;
    const DESCRIPTION: &'static str;
    /// A few words beside the name in `load_tools`' list, where the name
    /// alone does not say what the tool does.
    const HINT: &'static str = "";
    type Args: DeserializeOwned + JsonSchema + Send;
    type Output: Serialize + Send;

    /// The JSON Schema of the arguments, as the model sees it.
    fn parameters(&self) -> Value {
        schema_for::<Self::Args>()
    }

    /// Trims what the model is sent of the (compact) schema: fields the
    /// server takes that the tool's description covers in a few words.
    /// The arguments are still held to the whole schema.
    fn model_view(&self, _schema: &mut Value) {}

    /// Adjusts the raw arguments for the session before they are read
    /// (a bare date is a day in the user's zone, not in UTC).
    fn localize(&self, _session: &crate::service::Session, _args: &mut Value) {}

    async fn run(&self, ctx: ToolContext<'_>, args: Self::Args) -> Result<Self::Output, ToolError>;
}

/// The schema of `T`, inlined (no `$ref`s: some OpenAI-compatible servers
/// resolve none) and without the `$schema` and `title` keys.
pub(crate) fn schema_for<T: JsonSchema>() -> Value {
    let generator = SchemaSettings::draft07()
        .with(|s| s.inline_subschemas = true)
        .into_generator();
    let mut schema = generator.into_root_schema_for::<T>().to_value();
    if let Some(object) = schema.as_object_mut() {
        object.remove("$schema");
        object.remove("title");
    }
    schema
}

/// The schema as the model is sent it, on every call: the shape (types,
/// properties, required fields, enums, variants) and the descriptions, but
/// not the constraints the server checks itself and explains when they
/// fail (patterns, lengths, `additionalProperties: false`), nor titles,
/// defaults and formats. An optional field is one the model leaves out, so
/// `null` is dropped from its types unless its description gives `null` a
/// meaning; a `oneOf` of variants told apart by one constant field (the
/// plan operations) is sent as one object whose description says which
/// fields each variant takes, its plain string fields named there only.
/// An enum goes without its type, `additionalProperties` without a value.
/// The full schema stays what arguments are held to.
pub(crate) fn compact_schema(schema: &Value) -> Value {
    if let Some(flat) = flatten_tagged(schema) {
        let mut flat = compact_schema(&flat);
        // The description names every field: a plain string field need not
        // be spelled out again (unlisted fields are allowed).
        if let Some(Value::Object(props)) = flat.get_mut("properties") {
            props.retain(|_, p| p != &json!({"type": "string"}));
        }
        return flat;
    }
    let null_means_something = schema
        .get("description")
        .and_then(Value::as_str)
        .is_some_and(|d| d.contains("null"));
    const DROPPED: [&str; 10] = [
        "$schema",
        "title",
        "default",
        "format",
        "pattern",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "minimum",
    ];
    match schema {
        Value::Object(map) => {
            let mut out = serde_json::Map::with_capacity(map.len());
            for (key, value) in map {
                // `additionalProperties` either way: the server refuses
                // unknown fields itself (false), or it is the default (true).
                // An enum says the type.
                if DROPPED.contains(&key.as_str())
                    || (key == "additionalProperties" && value.is_boolean())
                    || (key == "type" && map.contains_key("enum"))
                {
                    continue;
                }
                let value = match (key.as_str(), value) {
                    ("type" | "enum", Value::Array(options)) if !null_means_something => {
                        let mut kept: Vec<Value> = options
                            .iter()
                            .filter(|o| !o.is_null() && *o != "null")
                            .cloned()
                            .collect();
                        match (key.as_str(), kept.len()) {
                            ("type", 1) => kept.remove(0),
                            _ => Value::Array(kept),
                        }
                    }
                    ("description", Value::String(text)) => {
                        Value::from(text.split_whitespace().collect::<Vec<_>>().join(" "))
                    }
                    // Property names are data, not schema keywords.
                    ("properties", Value::Object(props)) => Value::Object(
                        props
                            .iter()
                            .map(|(name, s)| (name.clone(), compact_schema(s)))
                            .collect(),
                    ),
                    (_, value) => compact_schema(value),
                };
                out.insert(key.clone(), value);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(compact_schema).collect()),
        other => other.clone(),
    }
}

/// `{"oneOf": [variants]}` whose variants all carry one constant field
/// (`"op": {"const": "add_step"}`), as one object: that field an enum of
/// the constants, the other fields merged, and a description naming each
/// variant's fields (required ones marked `*`).
fn flatten_tagged(schema: &Value) -> Option<Value> {
    let variants = schema.get("oneOf")?.as_array()?;
    let tag_of = |v: &Value| -> Option<(String, Value)> {
        let props = v.get("properties")?.as_object()?;
        let mut consts = props
            .iter()
            .filter_map(|(k, p)| Some((k.clone(), p.get("const")?.clone())));
        let tag = consts.next()?;
        consts.next().is_none().then_some(tag)
    };
    let tags: Vec<(String, Value)> = variants.iter().map(tag_of).collect::<Option<_>>()?;
    let field = &tags.first()?.0;
    if tags.iter().any(|(k, _)| k != field) {
        return None;
    }
    let mut merged = serde_json::Map::new();
    let mut lines = Vec::with_capacity(variants.len());
    for (variant, (_, tag)) in variants.iter().zip(&tags) {
        let required: Vec<&str> = variant
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut names = Vec::new();
        for (name, prop) in variant.get("properties")?.as_object()? {
            if name == field {
                continue;
            }
            names.push(format!(
                "{name}{}",
                if required.contains(&name.as_str()) { "*" } else { "" }
            ));
            // A field two variants share keeps the schema that gives `null`
            // a meaning, so the flat form refuses nothing a variant takes.
            let means_null = |p: &Value| {
                p.get("description")
                    .and_then(Value::as_str)
                    .is_some_and(|d| d.contains("null"))
            };
            match merged.get_mut(name) {
                Some(kept) if means_null(prop) && !means_null(kept) => *kept = prop.clone(),
                Some(_) => {}
                None => {
                    merged.insert(name.clone(), prop.clone());
                }
            }
        }
        let about = variant
            .get("description")
            .and_then(Value::as_str)
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        let tag = tag.as_str()?;
        lines.push(match names.is_empty() {
            true => format!("{tag}{about}"),
            false => format!("{tag}: {}{about}", names.join(", ")),
        });
    }
    merged.insert(
        field.clone(),
        json!({"enum": tags.iter().map(|(_, t)| t.clone()).collect::<Vec<_>>()}),
    );
    let intro = schema
        .get("description")
        .and_then(Value::as_str)
        .map(|d| format!("{d} "))
        .unwrap_or_default();
    Some(json!({
        "type": "object",
        "description": format!("{intro}Fields by {field} (strings unless below): {}.", lines.join("; ")),
        "properties": merged,
        "required": [field],
    }))
}

/// What the registry holds: any tool, called with raw JSON arguments.
#[async_trait]
trait Callable: Send + Sync {
    async fn call(&self, ctx: ToolContext<'_>, arguments: &str) -> Result<String, ToolError>;
}

#[async_trait]
impl<T: Tool> Callable for T {
    async fn call(&self, ctx: ToolContext<'_>, arguments: &str) -> Result<String, ToolError> {
        let mut raw: Value = parse_args(T::NAME, arguments)?;
        self.localize(ctx.session, &mut raw);
        let args: T::Args = serde_json::from_value(raw)
            .map_err(|e| ToolError::invalid(format!("invalid arguments for {}: {e}", T::NAME)))?;
        let output = self.run(ctx, args).await?;
        serde_json::to_string(&output).map_err(|e| ToolError::invalid(format!("could not encode the result: {e}")))
    }
}

struct Entry {
    spec: ToolSpec,
    hint: &'static str,
    tool: Box<dyn Callable>,
}

/// The tools the model sees, with their specs built once.
pub struct Registry {
    tools: Vec<Entry>,
    specs: Arc<[ToolSpec]>,
    /// The specs of each set of tools offered so far, built once each.
    offers: std::sync::Mutex<std::collections::HashMap<u32, Arc<[ToolSpec]>>>,
}

/// Some of the registry's tools, by position: what one model call offers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Offer(u32);

/// The outcome of one tool call as the model will read it.
pub struct ToolOutput {
    pub content: String,
}

impl Registry {
    fn with<T: Tool>(mut self, tool: T) -> Registry {
        let mut parameters = compact_schema(&tool.parameters());
        tool.model_view(&mut parameters);
        let spec = ToolSpec {
            name: T::NAME,
            description: T::DESCRIPTION.into(),
            parameters,
        };
        self.tools.push(Entry {
            spec,
            hint: T::HINT,
            tool: Box::new(tool),
        });
        self
    }

    /// Every tool's spec, in registry order (shared, built once).
    pub(crate) fn specs(&self) -> Arc<[ToolSpec]> {
        self.specs.clone()
    }

    /// The tools offered on every call ([`load_tools::ALWAYS`]).
    pub(crate) fn always(&self) -> Offer {
        self.offer(Offer::default(), load_tools::ALWAYS)
    }

    /// `offer` and the tools named; names of no tool are passed over.
    pub(crate) fn offer<'a>(&self, offer: Offer, names: impl IntoIterator<Item = &'a str>) -> Offer {
        names.into_iter().fold(offer, |Offer(mask), name| {
            match self.tools.iter().position(|t| t.spec.name == name) {
                Some(at) => Offer(mask | 1 << at),
                None => Offer(mask),
            }
        })
    }

    /// The specs of the tools in `offer`, in registry order (shared, built
    /// once per set).
    pub(crate) fn specs_for(&self, Offer(mask): Offer) -> Arc<[ToolSpec]> {
        let mut offers = self.offers.lock().unwrap_or_else(|p| p.into_inner());
        offers
            .entry(mask)
            .or_insert_with(|| {
                self.specs
                    .iter()
                    .enumerate()
                    .filter(|(at, _)| mask & 1 << at != 0)
                    .map(|(_, spec)| spec.clone())
                    .collect()
            })
            .clone()
    }

    /// Runs one call for the session's user. Problems the model can fix come
    /// back as an `error` object in the content; only failures of the
    /// server are `Err`.
    pub async fn call(&self, ctx: ToolContext<'_>, call: &ToolCall) -> Result<ToolOutput, Failure> {
        let span = tracing::info_span!("tool", tool = %call.name, user_id = %ctx.session.user, call_id = %call.id);
        async {
            let Some(entry) = self.tools.iter().find(|t| t.spec.name == call.name) else {
                let names: Vec<&str> = self.tools.iter().map(|t| t.spec.name).collect();
                return Ok(error_output(
                    &format!("unknown tool `{}`; available tools: {}", call.name, names.join(", ")),
                    None,
                ));
            };
            if call.arguments.len() > MAX_ARGUMENT_BYTES {
                return Ok(error_output(
                    &format!("arguments are larger than {MAX_ARGUMENT_BYTES} bytes"),
                    None,
                ));
            }
            match entry.tool.call(ctx, &call.arguments).await {
                Ok(content) => {
                    tracing::info!("tool call succeeded");
                    Ok(ToolOutput { content })
                }
                Err(ToolError::Invalid { message, current }) => {
                    tracing::info!(error = %message, "tool call refused");
                    Ok(error_output(&message, current.as_deref()))
                }
                Err(ToolError::Fatal(e)) => {
                    tracing::error!(error = %e, "tool call failed");
                    Err(e)
                }
            }
        }
        .instrument(span)
        .await
    }
}

/// Every tool the model can call, in the order it sees them.
///
/// # Panics
/// If two tools share a name (a programming error caught by every test run).
pub(crate) fn registry(templates: Arc<Templates>, actions: &Actions) -> Registry {
    let mut registry = Registry {
        tools: Vec::new(),
        specs: Arc::new([]),
        offers: Default::default(),
    }
    .with(update_plan::UpdatePlan)
    .with(load_tools::LoadTools {
        step_tools: actions.catalog(),
    })
    .with(show_plan::ShowPlan)
    .with(list_plans::ListPlans)
    .with(plan_history::PlanHistory)
    .with(plan_from_template::PlanFromTemplate { templates })
    .with(undo::Undo)
    .with(undo::Redo)
    .with(remind::Remind)
    .with(set_preferences::SetPreferences);
    let names: std::collections::HashSet<&str> = registry.tools.iter().map(|t| t.spec.name).collect();
    assert_eq!(names.len(), registry.tools.len(), "two tools share a name");
    assert_eq!(
        names,
        NAMES.iter().copied().collect(),
        "NAMES lists exactly the registry's tools"
    );
    for entry in &mut registry.tools {
        describe_bindings(&mut entry.spec.parameters);
    }
    let others: Vec<String> = registry
        .tools
        .iter()
        .filter(|t| !load_tools::ALWAYS.contains(&t.spec.name))
        .map(|t| match t.hint {
            "" => t.spec.name.to_owned(),
            hint => format!("{} ({hint})", t.spec.name),
        })
        .collect();
    if let Some(entry) = registry
        .tools
        .iter_mut()
        .find(|t| t.spec.name == load_tools::LoadTools::NAME)
    {
        entry.spec.description = format!(
            "More tools, offered from your next call on: {}; {} (what a step can be bound to).",
            others.join(", "),
            load_tools::STEP_TOOLS
        )
        .into();
    }
    let specs = registry.tools.iter().map(|t| t.spec.clone()).collect();
    Registry { specs, ..registry }
}

/// The names of the model's own tools: a declared tool may not take one.
pub(crate) const NAMES: &[&str] = &[
    "update_plan",
    "load_tools",
    "show_plan",
    "list_plans",
    "plan_history",
    "plan_from_template",
    "undo",
    "redo",
    "remind",
    "set_preferences",
];

/// Tells the model, where a step takes a `tool` binding, where to find
/// the tools there are (`load_tools` with `step_tools` answers with the
/// one list and what each takes).
fn describe_bindings(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            if let Some(Value::Object(props)) = map.get_mut("properties")
                && let Some(Value::Object(tool)) = props.get_mut("tool")
            {
                if let Some(Value::Object(name)) = tool.get_mut("properties").and_then(|p| p.get_mut("name")) {
                    name.remove("description");
                }
                tool.insert(
                    "description".into(),
                    Value::from(format!(
                        "{{name, args}}, run when ready after the user's yes; load_tools {} lists them",
                        load_tools::STEP_TOOLS
                    )),
                );
            }
            for value in map.values_mut() {
                describe_bindings(value);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(describe_bindings),
        _ => {}
    }
}

/// What a tool result says instead of repeating a plan: every model call
/// renders the plans as they are now into its system prompt.
pub(crate) const SEE_PROMPT: &str = "in the system prompt";

pub(crate) fn error_output(message: &str, current: Option<&Plan>) -> ToolOutput {
    let mut value = json!({"error": message});
    if let Some(plan) = current {
        value["current_version"] = Value::from(plan.version);
        value["current_plan"] = Value::from(SEE_PROMPT);
    }
    ToolOutput {
        content: value.to_string(),
    }
}

/// Parses tool arguments; unknown fields and wrong types are named.
pub(crate) fn parse_args<T: DeserializeOwned>(tool: &str, arguments: &str) -> Result<T, ToolError> {
    let text = if arguments.trim().is_empty() { "{}" } else { arguments };
    serde_json::from_str(text).map_err(|e| ToolError::invalid(format!("invalid arguments for {tool}: {e}")))
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod fuzz;
