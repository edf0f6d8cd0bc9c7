//! Plan templates: data files under `templates/plans/`, one per goal kind.
//! Each file declares the kind, how to recognise it (keywords), its slots
//! (typed, with cue words and the question to ask when one is missing), and
//! its steps with dependencies, due offsets from a slot date and optional
//! tool bindings. Files are checked at start-up; an error names the file and
//! the line.

use crate::plan::invariants::valid_step_id;
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Template {
    pub(crate) kind: String,
    /// Plan title, with `{slot}` placeholders.
    pub(crate) title: String,
    pub(crate) goal: String,
    /// How the proposal starts: "To onboard {name} by {start_date}".
    pub(crate) summary: String,
    /// Phrases that point to this kind of goal.
    pub(crate) keywords: Vec<String>,
    #[serde(default)]
    pub(crate) slots: Vec<SlotSpec>,
    pub(crate) steps: Vec<StepSpec>,
    /// Due dates computed from an offset avoid Saturdays and Sundays (on
    /// unless the template says `working_days = false`, as personal kinds
    /// like trips do).
    #[serde(default = "working_days_default")]
    pub(crate) working_days: bool,
    /// `orchestrated`: independent steps bound to tools run at the same
    /// time; `single` (the default): one step in progress at a time.
    #[serde(default)]
    pub(crate) mode: crate::plan::PlanMode,
    /// Not read from the file: where it came from, for error messages.
    #[serde(skip)]
    pub(crate) source: String,
}

fn working_days_default() -> bool {
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SlotType {
    /// A person's name, Title Case.
    Person,
    /// An organisation's name as written.
    Org,
    /// Free text as written (a product, a topic, a service).
    Text,
    Date,
    /// A list of names ("Lisbon, Porto and Madrid").
    List,
    /// A month as YYYY-MM ("November", "last month").
    Month,
    /// A year ("FY2027", "2027").
    Year,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SlotSpec {
    pub(crate) name: String,
    #[serde(rename = "type")]
    pub(crate) kind: SlotType,
    #[serde(default)]
    pub(crate) required: bool,
    /// Asked when the slot is required and missing.
    #[serde(default)]
    pub(crate) question: String,
    /// Words right before the value ("starting" Dec 1, "onboard" Ana).
    #[serde(default)]
    pub(crate) cues: Vec<String>,
    /// For an optional date: an expression used when it is missing
    /// ("today + 7d").
    #[serde(default)]
    pub(crate) default: Option<String>,
    /// How names in this slot are written: `title` ("Lisbon"), `lower`
    /// ("blood test") or as the user wrote them (the default).
    #[serde(default)]
    pub(crate) case: Case,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Case {
    #[default]
    AsWritten,
    Title,
    Lower,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StepSpec {
    pub(crate) id: String,
    pub(crate) title: String,
    #[serde(default)]
    pub(crate) depends_on: Vec<String>,
    /// `<date slot | today> [+|- N(d|w)]`, e.g. "start_date - 7d".
    #[serde(default)]
    pub(crate) due: Option<String>,
    /// Repeat this step once per item of a list slot; `{item}` in the title.
    #[serde(default)]
    pub(crate) for_each: Option<String>,
    #[serde(default)]
    pub(crate) tool: Option<crate::plan::ToolBinding>,
    /// Not part of the plan at first: added when the step it names fails
    /// for good (an alternative, e.g. "send the welcome email by hand").
    #[serde(default)]
    pub(crate) fallback_for: Option<String>,
    /// This step checks the result of the step it names (an earlier
    /// step); when the check fails, that step is done again.
    #[serde(default)]
    pub(crate) checks: Option<String>,
}

/// A parsed due expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DueExpr {
    /// A date slot name, or "today".
    pub(crate) base: String,
    pub(crate) offset_days: i64,
}

/// Why a due expression (`start_date - 7d`) is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DueError {
    #[error("due `{0}` names no date slot")]
    NoDate(String),
    #[error("due `{0}`: expected a number of days or weeks")]
    Number(String),
    #[error("due `{0}`: units are d (days) or w (weeks)")]
    Unit(String),
    #[error("due `{expr}`: `{base}` is not a date slot (or `today`)")]
    NotADateSlot { expr: String, base: String },
}

impl DueExpr {
    pub(crate) fn parse(text: &str) -> Result<DueExpr, DueError> {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let (base, rest) = match compact.find(['+', '-']) {
            Some(at) => (&compact[..at], &compact[at..]),
            None => (compact.as_str(), ""),
        };
        if base.is_empty() {
            return Err(DueError::NoDate(text.to_owned()));
        }
        let offset_days = if rest.is_empty() {
            0
        } else {
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            let body = &rest[1..];
            let (digits, unit) = body.split_at(body.find(|c: char| !c.is_ascii_digit()).unwrap_or(body.len()));
            let n: i64 = digits.parse().map_err(|_| DueError::Number(text.to_owned()))?;
            let per = match unit {
                "d" | "" => 1,
                "w" => 7,
                _ => return Err(DueError::Unit(text.to_owned())),
            };
            sign * n * per
        };
        Ok(DueExpr {
            base: base.to_owned(),
            offset_days,
        })
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{file}:{line}: {message}")]
pub struct TemplateError {
    pub(crate) file: String,
    pub(crate) line: usize,
    pub(crate) message: String,
}

/// All loaded templates, in a stable order (by kind).
#[derive(Debug, Clone, Default)]
pub struct Templates {
    pub(crate) all: Vec<Template>,
}

const BUILT_IN: &[(&str, &str)] = &[
    (
        "onboard_employee.toml",
        include_str!("../../templates/plans/onboard_employee.toml"),
    ),
    (
        "product_launch.toml",
        include_str!("../../templates/plans/product_launch.toml"),
    ),
    ("trip.toml", include_str!("../../templates/plans/trip.toml")),
    (
        "annual_budget.toml",
        include_str!("../../templates/plans/annual_budget.toml"),
    ),
    (
        "month_end_close.toml",
        include_str!("../../templates/plans/month_end_close.toml"),
    ),
    (
        "customer_onboarding.toml",
        include_str!("../../templates/plans/customer_onboarding.toml"),
    ),
    (
        "medical_tests.toml",
        include_str!("../../templates/plans/medical_tests.toml"),
    ),
    (
        "deploy_service.toml",
        include_str!("../../templates/plans/deploy_service.toml"),
    ),
    (
        "research_report.toml",
        include_str!("../../templates/plans/research_report.toml"),
    ),
];

impl Templates {
    /// The templates compiled into the binary (the files in this repository).
    pub fn built_in() -> Result<Templates, TemplateError> {
        let mut all = Vec::new();
        for (name, text) in BUILT_IN {
            all.push(parse(&format!("built-in {name}"), text)?);
        }
        Templates::from_list(all)
    }

    /// Every `*.toml` in `dir`; the built-in set if the directory does not
    /// exist. Users add templates by dropping a file in the directory.
    pub fn load(dir: &Path) -> Result<Templates, TemplateError> {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Templates::built_in(),
            Err(e) => {
                return Err(TemplateError {
                    file: dir.display().to_string(),
                    line: 0,
                    message: e.to_string(),
                });
            }
        };
        let mut paths: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        let mut all = Vec::new();
        for path in paths {
            let file = path.display().to_string();
            let text = std::fs::read_to_string(&path).map_err(|e| TemplateError {
                file: file.clone(),
                line: 0,
                message: e.to_string(),
            })?;
            all.push(parse(&file, &text)?);
        }
        Templates::from_list(all)
    }

    fn from_list(mut all: Vec<Template>) -> Result<Templates, TemplateError> {
        let mut seen: HashMap<String, String> = HashMap::new();
        for t in &all {
            if let Some(other) = seen.insert(t.kind.clone(), t.source.clone()) {
                return Err(TemplateError {
                    file: t.source.clone(),
                    line: 1,
                    message: format!("kind `{}` is also defined in {other}", t.kind),
                });
            }
        }
        all.sort_by(|a, b| a.kind.cmp(&b.kind));
        Ok(Templates { all })
    }

    /// The template catalogue for the system prompt: one line per kind with
    /// its slots (* = required). The slots' types live in the schema of
    /// `plan_from_template`, so they are not repeated here.
    /// One line per kind with its required slots: the optional ones are
    /// in `plan_from_template`'s schema, sent when that tool is offered.
    pub(crate) fn prompt_section(&self) -> String {
        let mut out = String::new();
        for t in &self.all {
            let slots: Vec<&str> = t.slots.iter().filter(|s| s.required).map(|s| s.name.as_str()).collect();
            out.push_str(&format!("{}: {}\n", t.kind, slots.join(", ")));
        }
        out
    }

    pub(crate) fn get(&self, kind: &str) -> Option<&Template> {
        self.all.iter().find(|t| t.kind == kind)
    }

    /// Every tool binding in the templates: (file, step id, binding).
    pub(crate) fn bindings(&self) -> impl Iterator<Item = (&str, &str, &crate::plan::ToolBinding)> {
        self.all.iter().flat_map(|t| {
            t.steps
                .iter()
                .filter_map(move |s| Some((t.source.as_str(), s.id.as_str(), s.tool.as_ref()?)))
        })
    }
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map(|n| n + 1)
        .unwrap_or(1)
}

/// Parses and checks one template file.
// Long: every rule of a template file, checked in file order, each
// naming the line it is about; one list is what a template author reads.
pub(crate) fn parse(file: &str, text: &str) -> Result<Template, TemplateError> {
    let mut template: Template = toml::from_str(text).map_err(|e| {
        let message = e.message().to_owned();
        // toml points unknown fields at their table; the field's own line is more useful.
        let field = message
            .strip_prefix("unknown field `")
            .and_then(|r| r.split('`').next());
        let line = match field {
            Some(field) => line_of(text, field),
            None => e
                .span()
                .map(|s| text[..s.start.min(text.len())].lines().count().max(1))
                .unwrap_or(1),
        };
        TemplateError {
            file: file.to_owned(),
            line,
            message,
        }
    })?;
    template.source = file.to_owned();
    let fail = |needle: &str, message: String| TemplateError {
        file: file.to_owned(),
        line: line_of(text, needle),
        message,
    };

    if !valid_step_id(&template.kind) {
        return Err(fail(
            "kind",
            format!("kind `{}` must use a-z, 0-9, `_` and `-`", template.kind),
        ));
    }
    if template.keywords.is_empty() {
        return Err(fail(
            "keywords",
            "at least one keyword is needed to recognise this kind of goal".into(),
        ));
    }
    let mut slots: HashMap<&str, SlotType> = HashMap::new();
    for slot in &template.slots {
        if slots.insert(&slot.name, slot.kind).is_some() {
            return Err(fail(
                &format!("\"{}\"", slot.name),
                format!("slot `{}` is declared twice", slot.name),
            ));
        }
        if slot.required && slot.question.trim().is_empty() {
            return Err(fail(
                &format!("\"{}\"", slot.name),
                format!("required slot `{}` needs a question", slot.name),
            ));
        }
        if let Some(default) = &slot.default {
            if slot.kind != SlotType::Date {
                return Err(fail(
                    default,
                    format!("only date slots take a default (slot `{}`)", slot.name),
                ));
            }
            check_due(default, &slots, "today").map_err(|e| fail(default, e.to_string()))?;
        }
    }
    // The first placeholder in `s` that names no slot, as a message.
    let unknown_placeholder = |s: &str, extra: Option<&str>| {
        placeholders_in(s)
            .into_iter()
            .find(|name| !slots.contains_key(name) && Some(*name) != extra)
            .map(|name| format!("`{{{name}}}` in `{s}` is not a slot of this template"))
    };
    for field in [&template.title, &template.goal, &template.summary] {
        if let Some(message) = unknown_placeholder(field, None) {
            return Err(fail(field, message));
        }
    }
    let ids: HashSet<&str> = template.steps.iter().map(|s| s.id.as_str()).collect();
    if ids.len() != template.steps.len() {
        let dup = template
            .steps
            .iter()
            .find(|s| template.steps.iter().filter(|o| o.id == s.id).count() > 1);
        let id = dup.map(|s| s.id.clone()).unwrap_or_default();
        return Err(fail(&format!("\"{id}\""), format!("step id `{id}` is used twice")));
    }
    if template.steps.is_empty() {
        return Err(fail("[[steps]]", "a template needs at least one step".into()));
    }
    let fallbacks: HashSet<&str> = template
        .steps
        .iter()
        .filter(|s| s.fallback_for.is_some())
        .map(|s| s.id.as_str())
        .collect();
    for step in &template.steps {
        let at = format!("\"{}\"", step.id);
        if !valid_step_id(&step.id) || step.id.len() > 32 {
            return Err(fail(
                &at,
                format!(
                    "step id `{}` must be 1-32 characters from a-z, 0-9, `_` and `-`",
                    step.id
                ),
            ));
        }
        if let Some(list) = &step.for_each
            && slots.get(list.as_str()) != Some(&SlotType::List)
        {
            return Err(fail(list, format!("for_each `{list}` is not a list slot")));
        }
        if let Some(message) = unknown_placeholder(&step.title, step.for_each.as_ref().map(|_| "item")) {
            return Err(fail(&at, message));
        }
        for dep in &step.depends_on {
            if !ids.contains(dep.as_str()) {
                return Err(fail(
                    &at,
                    format!("step `{}` depends on `{dep}`, which is not a step here", step.id),
                ));
            }
            if fallbacks.contains(dep.as_str()) {
                return Err(fail(
                    &at,
                    format!(
                        "step `{}` depends on `{dep}`, a fallback that may never be added",
                        step.id
                    ),
                ));
            }
        }
        if let Some(checked) = &step.checks
            && (!ids.contains(checked.as_str()) || fallbacks.contains(checked.as_str()) || checked == &step.id)
        {
            return Err(fail(
                &at,
                format!("checks `{checked}` must name another step of this template that is not a fallback"),
            ));
        }
        if let Some(of) = &step.fallback_for
            && (!ids.contains(of.as_str()) || fallbacks.contains(of.as_str()))
        {
            return Err(fail(
                &at,
                format!("fallback_for `{of}` must name a step of this template that is not itself a fallback"),
            ));
        }
        if let Some(due) = &step.due {
            check_due(due, &slots, "today").map_err(|e| fail(&at, e.to_string()))?;
        }
    }
    if let Some(cycle) = cycle(&template.steps) {
        return Err(fail(
            &format!("\"{}\"", cycle[0]),
            format!("steps depend on each other in a cycle: {}", cycle.join(" -> ")),
        ));
    }
    Ok(template)
}

fn check_due(expr: &str, slots: &HashMap<&str, SlotType>, today: &str) -> Result<(), DueError> {
    let due = DueExpr::parse(expr)?;
    if due.base != today && slots.get(due.base.as_str()) != Some(&SlotType::Date) {
        return Err(DueError::NotADateSlot {
            expr: expr.to_owned(),
            base: due.base,
        });
    }
    Ok(())
}

/// `{name}` placeholders in a pattern.
pub(crate) fn placeholders_in(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else { break };
        out.push(&rest[open + 1..open + close]);
        rest = &rest[open + close + 1..];
    }
    out
}

fn cycle(steps: &[StepSpec]) -> Option<Vec<String>> {
    let index: HashMap<&str, usize> = steps.iter().enumerate().map(|(i, s)| (s.id.as_str(), i)).collect();
    // Kahn's algorithm: whatever cannot be ordered sits on a cycle.
    let mut indegree: Vec<usize> = steps.iter().map(|s| s.depends_on.len()).collect();
    let mut ready: Vec<usize> = (0..steps.len()).filter(|&i| indegree[i] == 0).collect();
    let mut done = 0;
    while let Some(i) = ready.pop() {
        done += 1;
        for (j, s) in steps.iter().enumerate() {
            if s.depends_on.iter().any(|d| index.get(d.as_str()) == Some(&i)) {
                indegree[j] -= 1;
                if indegree[j] == 0 {
                    ready.push(j);
                }
            }
        }
    }
    (done < steps.len()).then(|| {
        steps
            .iter()
            .zip(&indegree)
            .filter(|(_, d)| **d > 0)
            .map(|(s, _)| s.id.clone())
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_templates_load_and_cover_the_nine_kinds() {
        let t = Templates::built_in().unwrap();
        let kinds: Vec<&str> = t.all.iter().map(|t| t.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "annual_budget",
                "customer_onboarding",
                "deploy_service",
                "medical_tests",
                "month_end_close",
                "onboard_employee",
                "product_launch",
                "research_report",
                "trip"
            ]
        );
        // Real parallel branches exist where the work allows them.
        let deploy = t.get("deploy_service").unwrap();
        let deps = |id: &str| deploy.steps.iter().find(|s| s.id == id).unwrap().depends_on.clone();
        assert_eq!(deps("install_dependencies"), deps("configure_network"));
    }

    #[test]
    fn the_templates_directory_matches_the_built_in_copies() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/plans");
        let from_disk = Templates::load(&dir).unwrap();
        let built_in = Templates::built_in().unwrap();
        assert_eq!(from_disk.all.len(), built_in.all.len());
    }

    fn error_of(text: &str) -> String {
        parse("t.toml", text).unwrap_err().to_string()
    }

    const HEAD: &str = "kind = \"x\"\ntitle = \"X {name}\"\ngoal = \"g\"\nsummary = \"s\"\nkeywords = [\"x\"]\n\
                        [[slots]]\nname = \"name\"\ntype = \"person\"\nrequired = true\nquestion = \"Who?\"\n";

    #[test]
    fn broken_templates_are_refused_with_file_line_and_reason() {
        assert_eq!(
            error_of("kind = 5"),
            "t.toml:1: invalid type: integer `5`, expected a string"
        );
        let unknown_dep = format!("{HEAD}[[steps]]\nid = \"a\"\ntitle = \"A\"\ndepends_on = [\"zzz\"]\n");
        assert_eq!(
            error_of(&unknown_dep),
            "t.toml:12: step `a` depends on `zzz`, which is not a step here"
        );
        let bad_due = format!("{HEAD}[[steps]]\nid = \"a\"\ntitle = \"A\"\ndue = \"name - 2d\"\n");
        assert_eq!(
            error_of(&bad_due),
            "t.toml:12: due `name - 2d`: `name` is not a date slot (or `today`)"
        );
        let bad_placeholder = format!("{HEAD}[[steps]]\nid = \"a\"\ntitle = \"Call {{boss}}\"\n");
        assert_eq!(
            error_of(&bad_placeholder),
            "t.toml:12: `{boss}` in `Call {boss}` is not a slot of this template"
        );
        let cyclic = format!(
            "{HEAD}[[steps]]\nid = \"a\"\ntitle = \"A\"\ndepends_on = [\"b\"]\n[[steps]]\nid = \"b\"\ntitle = \"B\"\ndepends_on = [\"a\"]\n"
        );
        assert_eq!(
            error_of(&cyclic),
            "t.toml:12: steps depend on each other in a cycle: a -> b"
        );
        let unknown_field = format!("{HEAD}[[steps]]\nid = \"a\"\ntitle = \"A\"\nduration = 3\n");
        assert!(
            error_of(&unknown_field).starts_with("t.toml:14: unknown field `duration`"),
            "{}",
            error_of(&unknown_field)
        );
    }

    #[test]
    fn due_expressions_parse() {
        assert_eq!(
            DueExpr::parse("start_date - 7d"),
            Ok(DueExpr {
                base: "start_date".into(),
                offset_days: -7
            })
        );
        assert_eq!(
            DueExpr::parse("launch_date+2w"),
            Ok(DueExpr {
                base: "launch_date".into(),
                offset_days: 14
            })
        );
        assert_eq!(
            DueExpr::parse("today"),
            Ok(DueExpr {
                base: "today".into(),
                offset_days: 0
            })
        );
        assert!(DueExpr::parse("today + 3 months").is_err());
    }

    /// Property tests: a template file damaged anywhere (bytes cut, put in,
    /// replaced) is loaded or refused with a reason, never a panic.
    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        fn original() -> String {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/plans");
            std::fs::read_to_string(dir.join("onboard_employee.toml")).unwrap()
        }

        proptest! {
            #![proptest_config(crate::config::proptest_config(256))]

            #[test]
            fn a_damaged_template_is_loaded_or_refused_with_a_reason(
                edits in prop::collection::vec((any::<prop::sample::Index>(), 0usize..3, ".{0,8}"), 1..6)
            ) {
                let mut text: Vec<char> = original().chars().collect();
                for (at, kind, insert) in edits {
                    let i = at.index(text.len() + 1);
                    match kind {
                        0 => {
                            let end = (i + insert.chars().count().max(1)).min(text.len());
                            text.drain(i.min(end)..end);
                        }
                        1 => text.splice(i..i, insert.chars()).for_each(drop),
                        _ => {
                            let end = (i + insert.chars().count()).min(text.len());
                            text.splice(i.min(end)..end, insert.chars()).for_each(drop);
                        }
                    }
                }
                let text: String = text.into_iter().collect();
                if let Err(e) = parse("onboard_employee.toml", &text) {
                    prop_assert!(!e.to_string().is_empty());
                }
            }
        }
    }
}
