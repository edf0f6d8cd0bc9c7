//! The `[engine]` section: how the execution engine runs steps bound to
//! tools, and which hosts tools may call.

use serde::{Deserialize, Deserializer, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// Run steps bound to tools when they are ready (off: they wait).
    pub enabled: bool,
    /// Steps running at once, across all users.
    pub max_concurrency: usize,
    /// Steps of one user running at once, so one user's plans never hold
    /// every slot.
    pub per_user: usize,
    /// Steps of one orchestrated plan running at once.
    pub per_plan: usize,
    /// No retry of a step starts later than this after its first try.
    pub step_deadline_secs: u64,
    /// Replans proposed per plan after a step failed for good; past this
    /// the user is told plainly what happened and what they can do.
    pub max_replans: u32,
    /// Hosts `http_request` may call; also declared tools whose URL is on
    /// loopback or a private network (outside dev mode). One host, or a
    /// comma-separated list.
    #[serde(deserialize_with = "one_or_many")]
    pub allow_hosts: Vec<String>,
    /// A tool step running (or waiting to retry) longer than this is
    /// stalled: listed at `/admin/steps/stalled`, and emailed once to
    /// `operator_email`.
    pub stall_after_secs: u64,
    /// Where stalled steps are reported.
    pub operator_email: Option<String>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            enabled: true,
            max_concurrency: 8,
            per_user: 4,
            per_plan: 3,
            step_deadline_secs: 3600,
            max_replans: 2,
            allow_hosts: Vec::new(),
            stall_after_secs: 3600,
            operator_email: None,
        }
    }
}

impl EngineConfig {
    pub(crate) fn check(&self) -> Result<(), String> {
        for (name, value) in [
            ("engine.max_concurrency", self.max_concurrency),
            ("engine.per_user", self.per_user),
            ("engine.per_plan", self.per_plan),
            ("engine.step_deadline_secs", self.step_deadline_secs as usize),
            ("engine.stall_after_secs", self.stall_after_secs as usize),
        ] {
            if value == 0 {
                return Err(format!("{name} must be greater than 0"));
            }
        }
        if let Some(bad) = self
            .allow_hosts
            .iter()
            .find(|h| h.is_empty() || h.contains(['/', ':', ' ', '@']))
        {
            return Err(format!(
                "engine.allow_hosts: `{bad}` is not a host name (write `tickets.example.com`, without scheme or port)"
            ));
        }
        if let Some(email) = &self.operator_email
            && email.parse::<lettre::Address>().is_err()
        {
            return Err(format!(
                "engine.operator_email `{email}` is not an email address (write ops@example.com)"
            ));
        }
        Ok(())
    }

    /// Whether `host` is one the operator listed.
    /// Steps running or waiting since before this are stalled.
    pub(crate) fn stall_threshold(&self, now: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
        i64::try_from(self.stall_after_secs)
            .ok()
            .and_then(chrono::Duration::try_seconds)
            .and_then(|age| now.checked_sub_signed(age))
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC)
    }

    pub(crate) fn allows(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.');
        self.allow_hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
    }
}

/// A list, or one string holding a comma-separated list (how an
/// environment variable spells it).
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Form {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Form::deserialize(d)? {
        Form::One(s) => s
            .split(',')
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .collect(),
        Form::Many(v) => v.into_iter().map(|h| h.trim().to_owned()).collect(),
    })
}

/// The value of an environment variable a declared tool's header names
/// (`${HELPDESK_TOKEN}`): the configuration is the one place that reads
/// the environment.
pub(crate) fn tool_secret(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.is_empty())
}
