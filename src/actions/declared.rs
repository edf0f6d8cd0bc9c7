//! Tools declared in TOML files, one per file in the tools directory, so a
//! deployment adds its own (a helpdesk, a provisioning API) without
//! recompiling. The format is a contract users write against:
//!
//! ```toml
//! name = "open_ticket"                      # a-z 0-9 _, starts with a letter
//! description = "Opens an IT helpdesk ticket"
//! method = "POST"                           # GET POST PUT PATCH DELETE
//! url = "https://helpdesk.example.com/api/tickets/{queue}"  # {arg}: in the path or query
//! side_effects = true                       # the user confirms before it first runs
//! idempotency_header = "Idempotency-Key"    # how it takes steward's key
//! timeout_secs = 10
//! [headers]
//! Authorization = "Bearer ${HELPDESK_TOKEN}"  # from the environment, never logged
//! [parameters]                              # JSON Schema of the arguments
//! type = "object"
//! required = ["queue", "title"]
//! properties.queue = { type = "string" }
//! properties.title = { type = "string", maxLength = 200 }
//! [retry]
//! max_attempts = 5
//! base_ms = 500
//! ```
//!
//! Every file is checked at start; an error names the file and the key.

use super::{Action, Kind, is_tool_file};
use crate::config::Config;
use crate::execution::RetryPolicy;
use reqwest::header::{HeaderName, HeaderValue};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Largest tool file read.
const MAX_FILE_BYTES: u64 = 64 * 1024;
/// Most tool files read.
const MAX_FILES: usize = 200;

#[derive(Debug, thiserror::Error)]
#[error("tool file {}: {problem}", file.display())]
pub struct DeclaredError {
    pub file: PathBuf,
    pub problem: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolFile {
    name: String,
    description: String,
    method: String,
    url: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    parameters: toml::Table,
    /// Safe by default: a tool is taken to change things unless it says not.
    #[serde(default = "yes")]
    side_effects: bool,
    #[serde(default)]
    idempotency_header: Option<String>,
    #[serde(default = "default_timeout")]
    timeout_secs: u64,
    #[serde(default)]
    retry: Option<RetryPolicy>,
}

fn yes() -> bool {
    true
}

fn default_timeout() -> u64 {
    30
}

/// How to call a declared tool.
#[derive(Clone)]
pub(crate) struct HttpTool {
    pub method: reqwest::Method,
    /// With `{arg}` placeholders in the path or query.
    pub url: String,
    /// Values marked sensitive: never printed.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub idempotency_header: Option<HeaderName>,
    /// The host is on loopback or a private network and the operator
    /// allowed it (or dev mode).
    pub internal_ok: bool,
}

impl std::fmt::Debug for HttpTool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("HttpTool")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &names)
            .finish_non_exhaustive()
    }
}

/// Reads every `*.toml` file of `dir`, sorted by name.
pub(super) fn load_dir(
    dir: &Path,
    config: &Config,
    reserved: &[&str],
    builtins: &BTreeMap<String, Arc<Action>>,
) -> Result<Vec<Action>, DeclaredError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(DeclaredError {
                file: dir.to_owned(),
                problem: format!("cannot read the tools directory: {e}"),
            });
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| is_tool_file(p))
        .collect();
    files.sort();
    if files.len() > MAX_FILES {
        return Err(DeclaredError {
            file: dir.to_owned(),
            problem: format!("{} tool files; at most {MAX_FILES} are read", files.len()),
        });
    }
    let mut tools: Vec<(PathBuf, Action)> = Vec::new();
    for file in files {
        let fail = |problem: String| DeclaredError {
            file: file.clone(),
            problem,
        };
        let size = std::fs::metadata(&file).map_err(|e| fail(e.to_string()))?.len();
        if size > MAX_FILE_BYTES {
            return Err(fail(format!("{size} bytes; a tool file is at most {MAX_FILE_BYTES}")));
        }
        let text = std::fs::read_to_string(&file).map_err(|e| fail(e.to_string()))?;
        let action = parse(&text, config, reserved).map_err(fail)?;
        if builtins.contains_key(&action.name) {
            return Err(fail(format!(
                "`{}` is a built-in tool; choose another name",
                action.name
            )));
        }
        if let Some((other, _)) = tools.iter().find(|(_, t)| t.name == action.name) {
            return Err(fail(format!(
                "`{}` is also declared in {}",
                action.name,
                other.display()
            )));
        }
        tools.push((file, action));
    }
    Ok(tools.into_iter().map(|(_, t)| t).collect())
}

/// One tool file's text as a tool; the error names the key at fault.
pub(super) fn parse(text: &str, config: &Config, reserved: &[&str]) -> Result<Action, String> {
    let file: ToolFile = toml::from_str(text).map_err(|e| e.to_string())?;
    let name_ok = file.name.len() <= 64
        && file.name.starts_with(|c: char| c.is_ascii_lowercase())
        && file
            .name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !name_ok {
        return Err(format!(
            "name `{}`: use a-z, 0-9 and _, starting with a letter, at most 64 characters",
            file.name
        ));
    }
    if reserved.contains(&file.name.as_str()) {
        return Err(format!("name `{}` is one of steward's own tools", file.name));
    }
    if file.description.trim().is_empty() || file.description.len() > 500 {
        return Err("description: say in 1 to 500 characters what the tool does".into());
    }
    let method = match file.method.to_ascii_uppercase().as_str() {
        m @ ("GET" | "POST" | "PUT" | "PATCH" | "DELETE") => {
            reqwest::Method::from_bytes(m.as_bytes()).map_err(|e| e.to_string())?
        }
        other => return Err(format!("method `{other}`: use GET, POST, PUT, PATCH or DELETE")),
    };
    let parameters = serde_json::to_value(&file.parameters).map_err(|e| format!("parameters: {e}"))?;
    if parameters.get("type").and_then(|t| t.as_str()) != Some("object") {
        return Err("parameters: the schema must have `type = \"object\"`".into());
    }
    let internal_ok = check_url(&file.url, &parameters, config)?;
    let headers = file
        .headers
        .iter()
        .map(|(name, value)| header(name, value))
        .collect::<Result<Vec<_>, String>>()?;
    let idempotency_header = file
        .idempotency_header
        .as_deref()
        .map(|h| {
            HeaderName::from_bytes(h.as_bytes()).map_err(|_| format!("idempotency_header `{h}` is not a header name"))
        })
        .transpose()?;
    if !(1..=300).contains(&file.timeout_secs) {
        return Err("timeout_secs: between 1 and 300".into());
    }
    let retry = file.retry.unwrap_or_default();
    if !(1..=20).contains(&retry.max_attempts) || !(10..=60_000).contains(&retry.base_ms) {
        return Err("retry: max_attempts between 1 and 20, base_ms between 10 and 60000".into());
    }
    let kind = Kind::Http(Box::new(HttpTool {
        method,
        url: file.url.clone(),
        headers,
        idempotency_header: idempotency_header.clone(),
        internal_ok,
    }));
    let mut action = Action::new(&file.name, file.description.trim(), parameters, file.side_effects, kind)
        .map_err(|e| format!("parameters: {e}"))?;
    action.takes_key = idempotency_header.is_some();
    action.timeout = Duration::from_secs(file.timeout_secs);
    action.retry = retry;
    Ok(action)
}

/// The URL's placeholders name required arguments and sit in the path or
/// query (never the host); a host on loopback or a private network needs
/// dev mode or the operator's listing. Returns whether it is such a host.
fn check_url(url: &str, parameters: &serde_json::Value, config: &Config) -> Result<bool, String> {
    let required: Vec<&str> = parameters
        .get("required")
        .and_then(|r| r.as_array())
        .map(|r| r.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    let mut rest = url;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            return Err(format!("url: `{{` without `}}` in `{url}`"));
        };
        let name = &rest[open + 1..open + close];
        if !required.contains(&name) {
            return Err(format!(
                "url: the placeholder {{{name}}} must name a required argument (list it under parameters.required)"
            ));
        }
        rest = &rest[open + close + 1..];
    }
    let parsed = url::Url::parse(url).map_err(|e| format!("url `{url}`: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("url `{url}`: use http or https"));
    }
    let host = parsed.host_str().unwrap_or_default();
    if host.contains(['{', '}']) || host.contains("%7B") || host.contains("%7b") {
        return Err("url: placeholders go in the path or the query, not the host".into());
    }
    let internal = crate::net::internal_host(&parsed);
    if internal && !config.dev_mode() && !config.engine.allows(host) {
        return Err(format!(
            "url: {host} is a local or private address; list it in engine.allow_hosts to allow it"
        ));
    }
    Ok(internal || config.engine.allows(host))
}

/// A header with `${VAR}` taken from the environment.
fn header(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), String> {
    let header =
        HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("headers: `{name}` is not a header name"))?;
    let mut out = String::new();
    let mut rest = value;
    let mut secret = false;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let Some(end) = rest[at..].find('}') else {
            return Err(format!("headers.{name}: `${{` without `}}`"));
        };
        let var = &rest[at + 2..at + end];
        let Some(found) = crate::config::tool_secret(var) else {
            return Err(format!(
                "headers.{name} names ${{{var}}}, which is not set in the environment"
            ));
        };
        out.push_str(&found);
        secret = true;
        rest = &rest[at + end + 1..];
    }
    out.push_str(rest);
    let mut value = HeaderValue::from_str(&out).map_err(|_| format!("headers.{name}: not a valid header value"))?;
    value.set_sensitive(secret || header == reqwest::header::AUTHORIZATION);
    Ok((header, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "open_ticket"
description = "Opens an IT helpdesk ticket"
method = "post"
url = "https://helpdesk.example.com/api/{queue}/tickets"
idempotency_header = "Idempotency-Key"
timeout_secs = 5
[headers]
X-Team = "steward"
[parameters]
type = "object"
required = ["queue", "title"]
additionalProperties = false
properties.queue = { type = "string" }
properties.title = { type = "string", maxLength = 20 }
[retry]
max_attempts = 3
base_ms = 100
"#;

    #[test]
    fn a_declared_tool_reads_as_written() {
        let tool = parse(GOOD, &Config::default(), &["update_plan"]).unwrap();
        assert_eq!(tool.name, "open_ticket");
        assert!(tool.side_effects && tool.takes_key);
        assert_eq!(tool.timeout, Duration::from_secs(5));
        assert_eq!(tool.retry.max_attempts, 3);
        let Kind::Http(http) = &tool.kind else { panic!() };
        assert_eq!(http.method, reqwest::Method::POST);
        assert!(!http.internal_ok);
        assert!(
            tool.check_args(&serde_json::json!({"queue": "it", "title": "laptop"}))
                .is_ok()
        );
        assert!(tool.check_args(&serde_json::json!({"queue": "it"})).is_err());
    }

    /// The directory as a whole: two files naming one tool, a file taking a
    /// built-in's name, and an oversized file are each refused, naming the
    /// file; a missing directory is no tools.
    #[test]
    fn a_tools_directory_is_refused_for_a_clash_or_an_oversized_file() {
        let config = Config::default();
        let builtins: BTreeMap<String, Arc<Action>> = super::super::builtins()
            .into_iter()
            .map(|a| (a.name.clone(), Arc::new(a)))
            .collect();
        let load = |dir: &Path| load_dir(dir, &config, &["update_plan"], &builtins);
        let dir = tempfile::tempdir().unwrap();
        assert!(load(&dir.path().join("missing")).unwrap().is_empty());
        std::fs::write(dir.path().join("a.toml"), GOOD).unwrap();
        assert_eq!(load(dir.path()).unwrap().len(), 1);
        std::fs::write(dir.path().join("b.toml"), GOOD).unwrap();
        let twice = load(dir.path()).unwrap_err();
        assert!(
            twice.file.ends_with("b.toml") && twice.problem.contains("also declared in"),
            "{twice}"
        );
        std::fs::remove_file(dir.path().join("b.toml")).unwrap();
        let builtin = GOOD.replace("name = \"open_ticket\"", "name = \"send_email\"");
        std::fs::write(dir.path().join("b.toml"), builtin).unwrap();
        let clash = load(dir.path()).unwrap_err();
        assert!(clash.problem.contains("is a built-in tool"), "{clash}");
        std::fs::remove_file(dir.path().join("b.toml")).unwrap();
        let padded = format!("{GOOD}\n#{}\n", "x".repeat(MAX_FILE_BYTES as usize));
        std::fs::write(dir.path().join("big.toml"), padded).unwrap();
        let big = load(dir.path()).unwrap_err();
        assert!(
            big.file.ends_with("big.toml") && big.problem.contains("a tool file is at most"),
            "{big}"
        );
    }

    #[test]
    fn a_bad_file_is_refused_naming_what_is_wrong() {
        let cases: &[(&str, &str, &str)] = &[
            ("name = \"open_ticket\"", "name = \"Open Ticket\"", "name `Open Ticket`"),
            (
                "name = \"open_ticket\"",
                "name = \"update_plan\"",
                "steward's own tools",
            ),
            ("method = \"post\"", "method = \"TRACE\"", "method `TRACE`"),
            ("{queue}/tickets", "{team}/tickets", "placeholder {team}"),
            (
                "https://helpdesk.example.com",
                "https://{queue}.example.com",
                "placeholder",
            ),
            (
                "https://helpdesk.example.com",
                "http://127.0.0.1:9",
                "list it in engine.allow_hosts",
            ),
            (
                "https://helpdesk.example.com",
                "ftp://helpdesk.example.com",
                "use http or https",
            ),
            ("timeout_secs = 5", "timeout_secs = 0", "timeout_secs"),
            ("max_attempts = 3", "max_attempts = 50", "retry"),
            (
                "X-Team = \"steward\"",
                "X-Team = \"${STEWARD_TEST_NEVER_SET}\"",
                "STEWARD_TEST_NEVER_SET",
            ),
            ("type = \"object\"", "type = \"array\"", "type = \"object\""),
            (
                "timeout_secs = 5",
                "timeout_secs = 5\nsecret = 1",
                "unknown field `secret`",
            ),
            (
                "properties.title = { type = \"string\", maxLength = 20 }",
                "properties.title = { type = \"strin\" }",
                "parameters",
            ),
        ];
        let mut config = Config {
            auth_secret: Some("x".repeat(40).into()),
            ..Config::default()
        };
        for (from, to, expect) in cases {
            let text = GOOD.replace(from, to);
            assert_ne!(text, GOOD, "{from}");
            let Err(e) = parse(&text, &config, &["update_plan"]) else {
                panic!("{to}: accepted")
            };
            assert!(e.contains(expect), "{to}: {e}");
        }
        // A listed private host is allowed outside dev mode.
        config.engine.allow_hosts = vec!["127.0.0.1".into()];
        let local = GOOD.replace("https://helpdesk.example.com", "http://127.0.0.1:9");
        let tool = parse(&local, &config, &[]).unwrap();
        assert!(matches!(&tool.kind, Kind::Http(h) if h.internal_ok));
    }
}
