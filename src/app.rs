//! The assembled application: configuration, store, model, tools, prompts
//! and the connection hub, shared by every handler through axum `State`.

use crate::channels::egress;
use crate::channels::email::{Mail, MailError};
use crate::channels::links::Links;
use crate::channels::mailer::Mailer;
use crate::channels::push::Pusher;
use crate::config::Config;
use crate::http;
use crate::hub::{Hub, HubLimits};
use crate::llm::offline::OfflineEngine;
use crate::llm::openai::OpenAiModel;
use crate::llm::{ChatModel, ModelError};
use crate::notifier::digest::Digests;
use crate::notifier::{DeliveryPolicy, Notifier};
use crate::plan::{Actor, PlanLimits};
use crate::planner::templates::{TemplateError, Templates};
use crate::prompts::{PromptError, Prompts};
use crate::proposal::ConfirmPolicy;
use crate::scheduler::Scheduler;
use crate::store::{SledStore, Store, StoreError};
use crate::tools::{self, Registry, ToolContext};
use crate::triggers::TriggerPolicy;
use crate::user::UserId;
use axum::Router;
use chrono::{DateTime, Utc};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The source of "now"; tests inject a fixed or moving clock.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

#[derive(Clone)]
pub struct App {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub model: Arc<dyn ChatModel>,
    pub tools: Arc<Registry>,
    pub prompts: Arc<Prompts>,
    pub templates: Arc<Templates>,
    pub hub: Hub,
    pub mail: Arc<Mail>,
    pub mailer: Mailer,
    /// Pokes the notifier when something may be ready to route or send.
    pub notifier_wake: Arc<tokio::sync::Notify>,
    /// Signing keys and the push client, read from (or first written to)
    /// the store on first use.
    secrets: Arc<tokio::sync::OnceCell<Secrets>>,
    clock: Clock,
}

#[derive(Clone)]
struct Secrets {
    links: Links,
    pusher: Option<Pusher>,
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Prompt(#[from] PromptError),
    #[error("model configuration: {0}")]
    Model(#[from] ModelError),
    #[error("plan template {0}")]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Mail(#[from] MailError),
    #[error("email: {0}")]
    Mailer(String),
}

impl App {
    /// Opens the store in `config.data_dir` and picks the model: an
    /// OpenAI-compatible endpoint if configured, else the offline engine.
    pub fn build(config: Config) -> Result<App, AppError> {
        let templates = Arc::new(Templates::load(&config.templates_dir)?);
        let store = SledStore::open(&config.data_dir)?.with_trigger_policy(TriggerPolicy::from(&config.notify));
        let model: Arc<dyn ChatModel> = match &config.llm.base_url {
            Some(url) => Arc::new(OpenAiModel::new(&config.llm, url)?),
            None => Arc::new(OfflineEngine::new(templates.clone())),
        };
        App::assemble(config, Arc::new(store), model, templates)
    }

    /// An app with the given store and model (tests use a scripted model).
    pub fn with_parts(config: Config, store: Arc<dyn Store>, model: Arc<dyn ChatModel>) -> Result<App, AppError> {
        let templates = Arc::new(Templates::load(&config.templates_dir)?);
        App::assemble(config, store, model, templates)
    }

    fn assemble(
        config: Config,
        store: Arc<dyn Store>,
        model: Arc<dyn ChatModel>,
        templates: Arc<Templates>,
    ) -> Result<App, AppError> {
        let prompts = Prompts::load(&config.prompts_dir)?.with_templates(&templates);
        let mail = Mail::load(&config.email.templates_dir, &config.email.from)?;
        let mailer = Mailer::new(
            config.email.smtp_url.as_deref(),
            config.outbox_dir(),
            std::time::Duration::from_secs(config.notify.send_timeout_secs),
        )
        .map_err(AppError::Mailer)?;
        let l = &config.limits;
        let hub = Hub::new(HubLimits {
            connections_per_user: l.connections_per_user,
            max_connections: l.max_connections,
            outbound_queue: l.outbound_queue,
            messages_per_minute: l.messages_per_minute,
        });
        Ok(App {
            config: Arc::new(config),
            store,
            model,
            tools: Arc::new(tools::registry(templates.clone())),
            prompts: Arc::new(prompts),
            templates,
            hub,
            mail: Arc::new(mail),
            mailer,
            notifier_wake: Arc::new(tokio::sync::Notify::new()),
            secrets: Arc::new(tokio::sync::OnceCell::new()),
            clock: Arc::new(Utc::now),
        })
    }

    /// Replaces the mail transport (tests point it at a loopback server).
    pub fn with_mailer(mut self, mailer: Mailer) -> App {
        self.mailer = mailer;
        self
    }

    async fn secrets(&self) -> Result<Secrets, StoreError> {
        self.secrets
            .get_or_try_init(|| async {
                let key = self
                    .store
                    .secret("link-key", rand::random::<[u8; 32]>().to_vec())
                    .await?;
                let links = Links::new(key, &self.config.public_url());
                let pusher = if self.config.push.enabled {
                    let vapid = self.store.secret("vapid-key", Pusher::generate_key()).await?;
                    let client = egress::Client::new(self.config.dev_mode())
                        .map_err(|e| StoreError::Backend(format!("http client: {e}")))?;
                    match Pusher::new(&vapid, &self.config.push.contact, client) {
                        Ok(p) => Some(p),
                        Err(e) => {
                            return Err(StoreError::Corrupt {
                                tree: "notify",
                                reason: e,
                            });
                        }
                    }
                } else {
                    None
                };
                Ok(Secrets { links, pusher })
            })
            .await
            .cloned()
    }

    /// Signed links (verification, unsubscribe, calendar).
    pub async fn links(&self) -> Result<Links, StoreError> {
        Ok(self.secrets().await?.links)
    }

    /// The web-push sender, if push is enabled.
    pub async fn pusher(&self) -> Result<Option<Pusher>, StoreError> {
        Ok(self.secrets().await?.pusher)
    }

    /// The user's time zone: their preference, else the configured one.
    pub async fn user_tz(&self, user: &UserId) -> chrono_tz::Tz {
        match self.store.preferences(user).await {
            Ok(prefs) => prefs.tz(self.config.tz()),
            Err(e) => {
                tracing::warn!(user_id = %user, error = %e, "could not read preferences; using the default zone");
                self.config.tz()
            }
        }
    }

    pub async fn scheduler(&self) -> Result<Arc<Scheduler>, StoreError> {
        Ok(Arc::new(Scheduler {
            store: self.store.clone(),
            policy: TriggerPolicy::from(&self.config.notify),
            default_tz: self.config.tz(),
            digests: Arc::new(Digests {
                store: self.store.clone(),
                mail: self.mail.clone(),
                links: self.links().await?,
                default_tz: self.config.tz(),
            }),
            clock: self.clock.clone(),
            notifier_wake: self.notifier_wake.clone(),
            failing: Default::default(),
        }))
    }

    pub async fn notifier(&self) -> Result<Arc<Notifier>, StoreError> {
        let http = egress::Client::new(self.config.dev_mode())
            .map_err(|e| StoreError::Backend(format!("http client: {e}")))?;
        Ok(Arc::new(Notifier {
            store: self.store.clone(),
            hub: self.hub.clone(),
            mail: self.mail.clone(),
            mailer: self.mailer.clone(),
            pusher: self.pusher().await?,
            links: self.links().await?,
            webhooks: self.config.webhooks.clone(),
            http,
            policy: DeliveryPolicy::from(&self.config.notify),
            default_tz: self.config.tz(),
            clock: self.clock.clone(),
            model: self.model.clone(),
            prompts: self.prompts.clone(),
            word_timeout: self
                .config
                .llm
                .first_token_timeout()
                .min(std::time::Duration::from_secs(20)),
            retention: chrono::Duration::days(i64::from(self.config.notify.retention_days)),
            wake: self.notifier_wake.clone(),
            seen_marks: Default::default(),
        }))
    }

    /// Starts the scheduler and the notifier; they stop when `stop` is
    /// cancelled.
    pub async fn start_background(&self, stop: CancellationToken) -> Result<(), StoreError> {
        let scheduler = self.scheduler().await?;
        let notifier = self.notifier().await?;
        let s = stop.clone();
        tokio::spawn(async move {
            if let Err(e) = scheduler.run(s).await {
                tracing::error!(error = %e, "the scheduler stopped");
            }
        });
        tokio::spawn(notifier.run(stop));
        Ok(())
    }

    pub fn with_clock(mut self, clock: Clock) -> App {
        self.clock = clock;
        self
    }

    pub fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    /// The user's local time, in their time zone.
    pub async fn local_now(&self, user: &UserId) -> DateTime<chrono_tz::Tz> {
        self.now().with_timezone(&self.user_tz(user).await)
    }

    /// What tools may use while acting for `user`.
    pub async fn tool_context(&self, user: &UserId, actor: Actor) -> ToolContext {
        let time_zone = self.user_tz(user).await;
        ToolContext {
            user: user.clone(),
            actor,
            store: self.store.clone(),
            hub: self.hub.clone(),
            limits: PlanLimits::from(&self.config.plan),
            max_active_plans: self.config.limits.max_active_plans,
            confirm: ConfirmPolicy::from(&self.config.confirm),
            now: self.now(),
            time_zone,
            wake: self.notifier_wake.clone(),
        }
    }

    pub fn router(&self) -> Router {
        http::router(self.clone())
    }

    /// Serves until `shutdown` resolves; with `config.background`, the
    /// scheduler and notifier run alongside and stop with it.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let stop = CancellationToken::new();
        // Stops the background tasks however this future ends, aborted
        // included, so they never outlive the server and its store.
        let _stop_on_drop = stop.clone().drop_guard();
        if self.config.background
            && let Err(e) = self.start_background(stop.clone()).await
        {
            return Err(std::io::Error::other(format!("starting the scheduler: {e}")));
        }
        let service = self.router().into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, service).with_graceful_shutdown(shutdown).await
    }
}
