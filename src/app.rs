//! The assembled application: configuration, store, model, tools, prompts
//! and the connection hub, shared by every handler through axum `State`.

use crate::config::Config;
use crate::http;
use crate::hub::{Hub, HubLimits};
use crate::llm::offline::OfflineEngine;
use crate::llm::openai::OpenAiModel;
use crate::llm::{ChatModel, ModelError};
use crate::plan::Actor;
use crate::planner::templates::{TemplateError, Templates};
use crate::prompts::{PromptError, Prompts};
use crate::store::{SledStore, Store, StoreError};
use crate::tools::{self, Registry, ToolContext};
use crate::user::UserId;
use axum::Router;
use chrono::{DateTime, Utc};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

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
    clock: Clock,
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
}

impl App {
    /// Opens the store in `config.data_dir` and picks the model: an
    /// OpenAI-compatible endpoint if configured, else the offline engine.
    pub fn build(config: Config) -> Result<App, AppError> {
        let templates = Arc::new(Templates::load(&config.templates_dir)?);
        let store = SledStore::open(&config.data_dir)?;
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
            clock: Arc::new(Utc::now),
        })
    }

    pub fn with_clock(mut self, clock: Clock) -> App {
        self.clock = clock;
        self
    }

    pub fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    /// The user's local time (their time zone: the configured one for now).
    pub fn local_now(&self) -> DateTime<chrono_tz::Tz> {
        self.now().with_timezone(&self.config.tz())
    }

    /// What tools may use while acting for `user`.
    pub fn tool_context(&self, user: &UserId, actor: Actor) -> ToolContext {
        ToolContext {
            user: user.clone(),
            actor,
            store: self.store.clone(),
            hub: self.hub.clone(),
            limits: self.config.plan,
            max_active_plans: self.config.limits.max_active_plans,
            confirm: self.config.confirm,
            now: self.now(),
            time_zone: self.config.tz(),
        }
    }

    pub fn router(&self) -> Router {
        http::router(self.clone())
    }

    /// Serves until `shutdown` resolves.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let service = self.router().into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, service).with_graceful_shutdown(shutdown).await
    }
}
