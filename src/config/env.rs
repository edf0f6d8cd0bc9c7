//! `STEWARD_*` variables as settings. Sections are spelled with their own
//! prefix: `STEWARD_LLM_BASE_URL` → `llm.base_url`, `STEWARD_LIMITS_TURN_QUEUE`
//! → `limits.turn_queue`. A variable that names no setting is set aside
//! (and named in a warning at start) instead of refusing to start.

use super::Config;
use figment::value::{Dict, Value};
use std::collections::HashSet;

/// The settings the variables in `env` give, and the names of those that
/// name no setting.
pub(super) fn settings(env: impl IntoIterator<Item = (String, String)>) -> (Dict, Vec<String>) {
    let (known, sections) = setting_names();
    let mut ignored = Vec::new();
    let mut table = Dict::new();
    let vars = env
        .into_iter()
        .filter_map(|(k, v)| k.strip_prefix("STEWARD_").map(|k| (k.to_ascii_lowercase(), v)));
    for (key, value) in vars {
        let section = sections
            .iter()
            .find(|s| key.strip_prefix(s.as_str()).is_some_and(|rest| rest.starts_with('_')));
        let (section, field) = match section {
            Some(section) => (Some(section.as_str()), key[section.len() + 1..].to_owned()),
            None => (None, key.clone()),
        };
        let name = match section {
            Some(section) => format!("{section}.{field}"),
            None => field.clone(),
        };
        if !known.contains(&name) {
            ignored.push(format!("STEWARD_{}", key.to_ascii_uppercase()));
            continue;
        }
        let value = value.parse().unwrap_or_else(|_| Value::from(value.as_str()));
        match section {
            Some(section) => {
                let entry = table
                    .entry(section.to_owned())
                    .or_insert_with(|| Value::from(Dict::new()));
                if let Value::Dict(_, dict) = entry {
                    dict.insert(field, value);
                }
            }
            None => {
                table.insert(field, value);
            }
        }
    }
    (table, ignored)
}

/// Every setting's name as the variables spell it, lowercase (`addr`,
/// `llm.base_url`, `limits.turn_queue`), and the sections (`llm`, `limits`).
fn setting_names() -> (HashSet<String>, Vec<String>) {
    let mut names = HashSet::new();
    let mut sections = Vec::new();
    if let Ok(serde_json::Value::Object(top)) = serde_json::to_value(Config::default()) {
        for (key, value) in top {
            match value {
                serde_json::Value::Object(section) => {
                    names.extend(section.keys().map(|field| format!("{key}.{field}")));
                    sections.push(key);
                }
                _ => {
                    names.insert(key);
                }
            }
        }
    }
    (names, sections)
}

/// The property tests' configuration: `default_cases` cases, or
/// `PROPTEST_CASES` for a long run.
#[cfg(test)]
pub(crate) fn proptest_config(default_cases: u32) -> proptest::test_runner::Config {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok());
    proptest::test_runner::Config::with_cases(cases.unwrap_or(default_cases))
}
