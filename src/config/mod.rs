//! Typed configuration: built-in defaults, then an optional `steward.toml`,
//! then `STEWARD_*` environment variables, then command-line flags. No other
//! module reads the environment.
//!
//! Plain data: this module imports no domain module. Each module reads its
//! policy from its section: as it is where the section is the policy
//! (`plan` is `PlanLimits`, `confirm` is `ConfirmPolicy`), or converted
//! where units change (`TriggerPolicy::from(&config.notify)`).
//! Secrets are [`SecretString`]s: they never show in `Debug` output or logs.

mod database;
mod engine;
mod env;
#[cfg(test)]
pub(crate) use env::proptest_config;
mod errors;
mod limits;
pub(crate) mod origins;
mod proxies;
pub use database::DatabaseConfig;
pub use engine::EngineConfig;
pub(crate) use engine::tool_secret;
use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
pub use limits::Limits;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize, Serializer};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// sled's page cache unless `store_cache_mib` says otherwise (sled's own
/// default is 1 GiB).
pub const DEFAULT_STORE_CACHE_MIB: u64 = 128;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP and websocket server binds to.
    pub addr: SocketAddr,
    /// Directory of the embedded store (created if missing).
    pub data_dir: PathBuf,
    /// Memory for the embedded store's cache of pages (sled), in MiB.
    pub store_cache_mib: u64,
    /// HMAC secret for signed user tokens. Without one the server runs in
    /// dev mode (`?user=` names the user) and only on a loopback address.
    #[serde(serialize_with = "redacted")]
    pub auth_secret: Option<SecretString>,
    /// Bearer token for `/metrics` and the admin API (`/admin/…`). Without
    /// one the admin API is off, and `/metrics` answers only in dev mode.
    #[serde(serialize_with = "redacted")]
    pub admin_token: Option<SecretString>,
    /// Seconds of clock difference allowed when checking a token's `exp`
    /// and `nbf`.
    pub auth_leeway_secs: u64,
    /// `STEWARD_*` variables that name no setting: ignored, and named in a
    /// warning at start (a typo in `steward.toml` is an error instead).
    #[serde(skip)]
    pub ignored_variables: Vec<String>,
    /// Origins allowed to open `/ws` from a browser, besides the server's
    /// own. Empty: the server's own only (and any loopback origin in dev
    /// mode). One URL or a comma-separated list; `*` is refused.
    #[serde(deserialize_with = "origins::list")]
    pub allowed_origins: Vec<String>,
    /// Proxies whose `X-Forwarded-For` names the client (addresses or
    /// networks: `10.0.0.0/8, 127.0.0.1`); from anyone else the header is
    /// ignored and the connection's address counts.
    #[serde(deserialize_with = "proxies::list")]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Directory with prompt templates; missing files fall back to the
    /// built-in ones.
    pub prompts_dir: PathBuf,
    /// Directory with the widget and demo page.
    pub static_dir: PathBuf,
    /// `text` or `json` log lines.
    pub log_format: LogFormat,
    pub llm: LlmConfig,
    pub limits: Limits,
    pub plan: PlanConfig,
    /// Which plan changes wait for the user's yes.
    pub confirm: ConfirmConfig,
    /// Directory of plan templates (`*.toml`); the built-in set if missing.
    pub templates_dir: PathBuf,
    /// Directory of chat wording (`replies.j2`, `changes.j2`,
    /// `notifications.j2`); missing files fall back to built-in copies.
    pub chat_templates_dir: PathBuf,
    /// IANA time zone used to read dates in messages ("Friday", "tomorrow")
    /// for users who have not set their own.
    pub time_zone: String,
    /// The address links in emails point to (verification, unsubscribe,
    /// the widget). Default: `http://<addr>`.
    pub public_url: Option<String>,
    /// Run the scheduler and notifier inside the server (tests that drive
    /// time themselves turn this off).
    pub background: bool,
    pub notify: NotifyConfig,
    pub email: EmailConfig,
    pub push: PushConfig,
    /// Receivers of notification events (`[[webhooks]]` in steward.toml).
    pub webhooks: Vec<WebhookConfig>,
    /// Tools declared without recompiling: one TOML file per tool.
    pub tools_dir: PathBuf,
    pub engine: EngineConfig,
    /// PostgreSQL instead of the embedded store (`STEWARD_DATABASE_URL`).
    pub database: DatabaseConfig,
}

/// Size limits on plans and on the changes made to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlanConfig {
    pub max_steps: usize,
    pub max_title_chars: usize,
    pub max_goal_chars: usize,
    pub max_result_chars: usize,
    pub max_depends_on: usize,
    pub max_ops: usize,
    pub max_explanation_chars: usize,
}

impl Default for PlanConfig {
    fn default() -> Self {
        PlanConfig {
            max_steps: 200,
            max_title_chars: 200,
            max_goal_chars: 1000,
            max_result_chars: 2000,
            max_depends_on: 20,
            max_ops: 250,
            max_explanation_chars: 1000,
        }
    }
}

/// Which kinds of plan change wait for the user's yes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConfirmConfig {
    pub create_plan: bool,
    pub remove: bool,
    pub reschedule: bool,
    pub tool_steps: bool,
}

impl Default for ConfirmConfig {
    fn default() -> Self {
        ConfirmConfig {
            create_plan: true,
            remove: true,
            reschedule: true,
            tool_steps: true,
        }
    }
}

impl ConfirmConfig {
    /// Every change applies at once (tests that exercise updates directly).
    pub fn never() -> ConfirmConfig {
        ConfirmConfig {
            create_plan: false,
            remove: false,
            reschedule: false,
            tool_steps: false,
        }
    }
}

/// A receiver of notification events (`[[webhooks]]` in steward.toml).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    /// Signs each request (HMAC-SHA256); at least 16 characters.
    #[serde(serialize_with = "redacted_one")]
    pub secret: SecretString,
}

/// Secrets serialize as a placeholder: the defaults (the only thing ever
/// serialized, to seed figment) hold none, and nothing else may leak one.
pub(super) fn redacted<S: Serializer>(secret: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    match secret {
        Some(_) => s.serialize_some("[redacted]"),
        None => s.serialize_none(),
    }
}

fn redacted_one<S: Serializer>(_: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("[redacted]")
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyConfig {
    /// "Due soon" notices go out this many hours before a step's due time.
    pub due_lead_hours: u32,
    /// An active plan untouched this many days gets a nudge.
    pub idle_days: u32,
    /// Triggers found due at most this late (e.g. after a restart) still
    /// fire; older ones are recorded as missed and reported in the digest.
    pub catch_up_minutes: u32,
    /// Attempts per email, push or webhook delivery before it is failed.
    pub max_attempts: u32,
    /// First retry delay of a failed delivery (doubling, jittered, ≤ 1 h).
    pub retry_base_ms: u64,
    /// Longest single delivery (SMTP conversation, HTTP request).
    pub send_timeout_secs: u64,
    /// Finished notifications, fired-trigger records and sent or failed
    /// deliveries older than this are removed.
    pub retention_days: u32,
    /// When that pruning runs: a cron expression with seconds, in UTC.
    pub prune_cron: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmailConfig {
    /// `smtps://user:pass@host:465` or `smtp://user:pass@host:587?tls=required`.
    /// None: messages are written as `.eml` files to `outbox_dir`.
    pub smtp_url: Option<String>,
    /// The From mailbox.
    pub from: String,
    /// Where `.eml` files go without SMTP. Default: `<data_dir>/outbox`.
    pub outbox_dir: Option<PathBuf>,
    /// Email templates; missing files fall back to the built-in ones.
    pub templates_dir: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PushConfig {
    pub enabled: bool,
    /// Contact sent to push services with the VAPID signature.
    pub contact: String,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            due_lead_hours: 24,
            idle_days: 7,
            catch_up_minutes: 360,
            max_attempts: 8,
            retry_base_ms: 30_000,
            send_timeout_secs: 30,
            retention_days: 90,
            prune_cron: "0 17 3 * * *".into(),
        }
    }
}

impl Default for EmailConfig {
    fn default() -> Self {
        EmailConfig {
            smtp_url: None,
            from: "steward <steward@localhost>".into(),
            outbox_dir: None,
            templates_dir: PathBuf::from("templates/email"),
        }
    }
}

impl Default for PushConfig {
    fn default() -> Self {
        PushConfig {
            enabled: true,
            contact: "mailto:steward@localhost".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Text with colours on a terminal, JSON lines otherwise (a service
    /// manager or a log collector reads them).
    Auto,
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmConfig {
    /// OpenAI-compatible base URL including `/v1`. Unset: the offline engine.
    pub base_url: Option<String>,
    #[serde(serialize_with = "redacted")]
    pub api_key: Option<SecretString>,
    pub model: String,
    /// Time allowed until the first byte of an answer.
    pub first_token_timeout_secs: u64,
    /// Time allowed for one whole model call.
    pub request_timeout_secs: u64,
    /// Retries of one model call after 429, 5xx, timeouts and malformed answers.
    pub max_retries: u32,
    /// Longest Retry-After honoured; longer waits end the turn with an error.
    pub max_retry_after_secs: u64,
    /// First backoff delay between retries (doubling, with jitter, up to 8 s).
    pub retry_base_ms: u64,
    pub temperature: Option<f32>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            store_cache_mib: DEFAULT_STORE_CACHE_MIB,
            auth_secret: None,
            admin_token: None,
            auth_leeway_secs: 5,
            ignored_variables: Vec::new(),
            allowed_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            prompts_dir: PathBuf::from("prompts"),
            static_dir: PathBuf::from("static"),
            log_format: LogFormat::Auto,
            llm: LlmConfig::default(),
            limits: Limits::default(),
            plan: PlanConfig::default(),
            confirm: ConfirmConfig::default(),
            templates_dir: PathBuf::from("templates/plans"),
            chat_templates_dir: PathBuf::from("templates/chat"),
            time_zone: "UTC".into(),
            public_url: None,
            background: true,
            notify: NotifyConfig::default(),
            email: EmailConfig::default(),
            push: PushConfig::default(),
            webhooks: Vec::new(),
            tools_dir: PathBuf::from("tools"),
            engine: EngineConfig::default(),
            database: DatabaseConfig::default(),
        }
    }
}

impl Default for LlmConfig {
    fn default() -> Self {
        LlmConfig {
            base_url: None,
            api_key: None,
            model: "gpt-4o-mini".into(),
            first_token_timeout_secs: 30,
            request_timeout_secs: 120,
            max_retries: 3,
            max_retry_after_secs: 30,
            retry_base_ms: 500,
            temperature: None,
        }
    }
}

impl LlmConfig {
    pub(crate) fn first_token_timeout(&self) -> Duration {
        Duration::from_secs(self.first_token_timeout_secs)
    }
    pub(crate) fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(String),
    #[error("configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Loads defaults ← `file` (if it exists) ← `STEWARD_*` variables from
    /// `env` (pairs, so tests need not touch the process environment).
    pub(crate) fn load(file: &Path, env: impl IntoIterator<Item = (String, String)>) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if file.exists() {
            figment = figment.merge(Toml::file_exact(file));
        }
        let (env_table, mut ignored) = env::settings(env);
        figment = figment.merge(Serialized::globals(env_table));
        let mut config: Config = figment.extract().map_err(|e| ConfigError::Load(errors::describe(e)))?;
        config.check()?;
        ignored.sort();
        config.ignored_variables = ignored;
        Ok(config)
    }

    /// Loads from the real process environment; only `main` calls this.
    /// An explicit `--config` file must exist; without one, `steward.toml`
    /// is read if it is there.
    pub fn from_process(file: Option<&Path>) -> Result<Config, ConfigError> {
        let file = match file {
            Some(file) if !file.exists() => {
                return Err(ConfigError::Invalid(format!(
                    "the configuration file {} does not exist",
                    file.display()
                )));
            }
            Some(file) => file,
            None => Path::new("steward.toml"),
        };
        Config::load(
            file,
            std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }

    /// Refuses settings that cannot work, with the reason.
    pub fn check(&self) -> Result<(), ConfigError> {
        self.check_server()?;
        self.limits.check()?;
        if self.store_cache_mib < 8 {
            return Err(ConfigError::Invalid("store_cache_mib must be at least 8 (MiB)".into()));
        }
        self.engine.check().map_err(ConfigError::Invalid)?;
        self.database.check().map_err(ConfigError::Invalid)?;
        self.check_outreach()
    }

    /// Where the server listens, who may use it, where its links point.
    fn check_server(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(m.to_owned()));
        if self.auth_secret.is_none() && !self.addr.ip().is_loopback() {
            return bad(&format!(
                "refusing to listen on {} without an auth secret: set STEWARD_AUTH_SECRET (or auth_secret in steward.toml), \
                 or bind to 127.0.0.1 for local development",
                self.addr
            ));
        }
        if let Some(secret) = &self.auth_secret
            && secret.expose_secret().len() < 32
        {
            return bad("auth_secret must be at least 32 characters");
        }
        if let Some(token) = &self.admin_token
            && token.expose_secret().len() < 32
        {
            return bad("admin_token must be at least 32 characters");
        }
        if self.time_zone.parse::<chrono_tz::Tz>().is_err() {
            return bad(&format!(
                "time_zone `{}` is not an IANA time zone (e.g. Europe/Berlin)",
                self.time_zone
            ));
        }
        if let Some(url) = &self.llm.base_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return bad("llm.base_url must start with http:// or https:// (and usually end in /v1)");
        }
        if let Some(url) = &self.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return bad("public_url must start with http:// or https://");
        }
        Ok(())
    }

    /// Notifications, email and webhooks.
    fn check_outreach(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(m.to_owned()));
        if self.notify.max_attempts == 0 || self.notify.send_timeout_secs == 0 {
            return bad("notify.max_attempts and notify.send_timeout_secs must be greater than 0");
        }
        // Digest periods (a week) and the catch-up window must stay
        // deduplicated: keep at least 30 days.
        if self.notify.retention_days < 30 {
            return bad("notify.retention_days must be at least 30");
        }
        if let Some(url) = &self.email.smtp_url
            && !(url.starts_with("smtp://") || url.starts_with("smtps://"))
        {
            return bad("email.smtp_url must start with smtp:// or smtps://");
        }
        if self
            .email
            .from
            .rsplit_once('<')
            .map_or(self.email.from.as_str(), |(_, a)| a.trim_end_matches('>'))
            .trim()
            .parse::<lettre::Address>()
            .is_err()
        {
            return bad("email.from must be an address, optionally with a name: `steward <steward@example.com>`");
        }
        for hook in &self.webhooks {
            if !(hook.url.starts_with("http://") || hook.url.starts_with("https://"))
                || hook.secret.expose_secret().len() < 16
            {
                return bad("each webhook needs an http(s) url and a secret of at least 16 characters");
            }
            // Outside dev mode the server calls only public addresses (the
            // same rule as for push services; see channels::egress).
            let internal = url::Url::parse(&hook.url).map_or(true, |u| crate::net::internal_host(&u));
            if !self.dev_mode() && internal {
                return bad(
                    "webhook urls must name a public host; local and private addresses are only allowed in dev mode",
                );
            }
        }
        Ok(())
    }

    /// The configured time zone (checked at load).
    pub fn tz(&self) -> chrono_tz::Tz {
        self.time_zone.parse().unwrap_or(chrono_tz::UTC)
    }

    /// Where links in emails point.
    pub(crate) fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.addr))
    }

    /// Where `.eml` files go when no SMTP server is configured.
    pub(crate) fn outbox_dir(&self) -> PathBuf {
        self.email
            .outbox_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("outbox"))
    }

    /// Dev mode: no secret, loopback only; the user comes from `?user=`.
    pub fn dev_mode(&self) -> bool {
        self.auth_secret.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn an_unknown_variable_is_ignored_and_named_not_refused() {
        let c = Config::load(
            Path::new("/none"),
            env(&[
                ("STEWARD_HOME", "/x"),
                ("STEWARD_LIMITS_TURN_QUEUE", "4"),
                ("STEWARD_LLM_MODELL", "m"),
            ]),
        )
        .unwrap();
        assert_eq!(c.ignored_variables, ["STEWARD_HOME", "STEWARD_LLM_MODELL"]);
        assert_eq!(c.limits.turn_queue, 4);
        let err = Config::from_process(Some(Path::new("/nonexistent/steward.toml"))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "configuration: the configuration file /nonexistent/steward.toml does not exist"
        );
    }

    #[test]
    fn defaults_run_offline_on_loopback() {
        let c = Config::load(Path::new("/nonexistent/steward.toml"), env(&[])).unwrap();
        assert_eq!(format!("{c:?}"), format!("{:?}", Config::default()));
        assert!(c.dev_mode());
        assert_eq!(c.llm.base_url, None);
    }

    #[test]
    fn environment_overrides_file_and_reaches_sections() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("steward.toml");
        std::fs::write(
            &file,
            "data_dir = \"/srv/steward\"\n[llm]\nmodel = \"from-file\"\nmax_retries = 5\n",
        )
        .unwrap();
        let c = Config::load(
            &file,
            env(&[
                ("STEWARD_LLM_BASE_URL", "http://127.0.0.1:11434/v1"),
                ("STEWARD_LLM_MODEL", "llama3"),
                ("STEWARD_LIMITS_TURN_QUEUE", "3"),
                ("STEWARD_ADDR", "127.0.0.1:9999"),
                ("OTHER_VAR", "ignored"),
            ]),
        )
        .unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/srv/steward"));
        assert_eq!(c.llm.model, "llama3");
        assert_eq!(c.llm.max_retries, 5);
        assert_eq!(c.llm.base_url.as_deref(), Some("http://127.0.0.1:11434/v1"));
        assert_eq!(c.limits.turn_queue, 3);
        assert_eq!(c.addr, "127.0.0.1:9999".parse().unwrap());
    }

    #[test]
    fn unknown_keys_and_unsafe_settings_are_refused_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("steward.toml");
        std::fs::write(&file, "adress = \"0.0.0.0:80\"\n").unwrap();
        let err = Config::load(&file, env(&[])).unwrap_err().to_string();
        assert!(err.contains("unknown setting `adress`"), "{err}");

        let err = Config::load(Path::new("/none"), env(&[("STEWARD_ADDR", "0.0.0.0:8080")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("without an auth secret"), "{err}");

        let err = Config::load(Path::new("/none"), env(&[("STEWARD_LIMITS_TURN_QUEUE", "0")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("limits.turn_queue must be greater than 0"), "{err}");
    }

    #[test]
    fn the_database_url_selects_postgres_and_must_be_one() {
        let c = Config::load(
            Path::new("/none"),
            env(&[
                ("STEWARD_DATABASE_URL", "postgres://steward:pw@db.internal:5432/steward"),
                ("STEWARD_DATABASE_POOL_SIZE", "32"),
            ]),
        )
        .unwrap();
        assert!(c.database.url.is_some() && c.ignored_variables.is_empty());
        assert_eq!(c.database.pool_size, 32);
        let shown = serde_json::to_string(&c).unwrap();
        assert!(!shown.contains("pw@"), "the URL's password is never printed: {shown}");
        let err = Config::load(Path::new("/none"), env(&[("STEWARD_DATABASE_URL", "mysql://x/y")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("STEWARD_DATABASE_URL) must be a PostgreSQL URL"), "{err}");
    }
}
