//! The composition root: builds the store, the plan service, the engine
//! that answers (offline or a model), the tools, the connection hub and the
//! outside channels from the configuration, and owns every task the server
//! spawns, so shutdown cancels and awaits all of them.

use crate::actions::http::Caller;
use crate::actions::{Actions, ActionsError};
use crate::channels::egress;
use crate::channels::email::{Mail, MailError};
use crate::channels::links::Links;
use crate::channels::mailer::{Mailer, MailerError};
use crate::channels::push::{PushError, Pusher};
use crate::claims::Claims;
use crate::clock::{self, Clock};
use crate::config::Config;
use crate::engine::{Executor, Replanner};
use crate::hub::{Hub, HubLimits};
use crate::llm::openai::OpenAiModel;
use crate::llm::{ModelError, RetryPolicy};
use crate::metrics::Metrics;
use crate::notifier::digest::Digests;
use crate::notifier::{DeliveryPolicy, Notifier};
use crate::offline::OfflineEngine;
use crate::planner::templates::{TemplateError, Templates};
use crate::prompts::{PromptError, Prompts};
use crate::scheduler::Scheduler;
use crate::scheduler::housekeeping::{Housekeeping, ScheduleError};
use crate::service::{Mailing, Rules, Service};
use crate::store::postgres::{Body, Bus, Remote};
use crate::store::{PostgresOptions, PostgresStore, SledStore, Store, StoreError};
use crate::tools::{self, Registry};
use crate::turn::{Engine, Turns};
use crate::wording::{Wording, WordingError};
use chrono::{DateTime, Utc};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long shutdown waits for the server's tasks before giving up on them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Everything the handlers, the turn and the workers share; cheap to clone.
#[derive(Clone)]
pub struct App {
    pub(crate) config: Arc<Config>,
    pub store: Arc<dyn Store>,
    /// Every read and change of plans, proposals, reminders, preferences.
    pub service: Service,
    /// Who answers chat messages.
    pub engine: Engine,
    /// What the model sees and calls.
    pub tools: Arc<Registry>,
    /// The tools steps can be bound to.
    pub(crate) actions: Actions,
    /// The Prometheus series (`/metrics`).
    pub metrics: Arc<Metrics>,
    pub(crate) templates: Arc<Templates>,
    pub(crate) prompts: Arc<Prompts>,
    /// Runs chat turns.
    pub(crate) turns: Turns,
    /// Open sockets per user; publishes events to them.
    pub hub: Hub,
    pub(crate) mail: Arc<Mail>,
    pub mailer: Mailer,
    /// Signed links (verification, unsubscribe, calendar).
    pub(crate) links: Links,
    /// The web-push sender, if push is enabled.
    pub(crate) pusher: Option<Pusher>,
    /// Pokes the notifier when something may be ready to route or send.
    pub(crate) notifier_wake: Arc<tokio::sync::Notify>,
    clock: Clock,
    /// Every task the server spawns (sockets, turn runners, workers).
    tasks: TaskTracker,
    /// This instance's claims on work shared with other instances.
    pub(crate) claims: Claims,
    /// The shared database, when the store is PostgreSQL: the server
    /// joins the other instances on it (`start_relay`; the hub keeps the
    /// bus).
    shared: Option<PostgresStore>,
    /// Cancelled when the server stops; every task watches it.
    stopping: CancellationToken,
    /// Which background workers are running (`/readyz`).
    pub(crate) workers: Arc<Workers>,
}

/// Set while each background worker runs; cleared when it stops (for
/// good, or by a panic).
#[derive(Default)]
pub(crate) struct Workers {
    pub(crate) scheduler: std::sync::atomic::AtomicBool,
    pub(crate) notifier: std::sync::atomic::AtomicBool,
    pub(crate) engine: std::sync::atomic::AtomicBool,
}

/// Sets `flag` while `work` runs; a drop guard clears it however the
/// work ends.
async fn flagged<T>(flag: &std::sync::atomic::AtomicBool, work: impl Future<Output = T>) -> T {
    struct Clear<'a>(&'a std::sync::atomic::AtomicBool);
    impl Drop for Clear<'_> {
        fn drop(&mut self) {
            self.0.store(false, std::sync::atomic::Ordering::SeqCst);
        }
    }
    flag.store(true, std::sync::atomic::Ordering::SeqCst);
    let _clear = Clear(flag);
    work.await
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
    #[error(transparent)]
    Mailer(#[from] MailerError),
    #[error(transparent)]
    Push(#[from] PushError),
    #[error("http client: {0}")]
    Http(#[from] reqwest::Error),
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    #[error(transparent)]
    Wording(#[from] WordingError),
    #[error(transparent)]
    Tools(#[from] ActionsError),
}

/// Assembles an [`App`]; every part not given is built from the
/// configuration (tests give a temporary store, a scripted model, a clock).
pub struct Builder {
    config: Config,
    store: Option<Arc<dyn Store>>,
    engine: Option<Engine>,
    clock: Option<Clock>,
    mailer: Option<Mailer>,
}

impl Builder {
    pub fn store(mut self, store: Arc<dyn Store>) -> Builder {
        self.store = Some(store);
        self
    }

    pub fn engine(mut self, engine: Engine) -> Builder {
        self.engine = Some(engine);
        self
    }

    pub fn clock(mut self, clock: Clock) -> Builder {
        self.clock = Some(clock);
        self
    }

    /// Replaces the configured mail transport (tests use a loopback server).
    pub fn mailer(mut self, mailer: Mailer) -> Builder {
        self.mailer = Some(mailer);
        self
    }

    /// Opens the store (PostgreSQL at `database.url`, else sled in
    /// `data_dir`) unless one was given, and picks the
    /// engine: an OpenAI-compatible model if configured, else the offline
    /// engine. Reads (or on first start creates) the signing keys.
    // Long: the composition root names every part once, in the order
    // they depend on each other.
    pub async fn build(self) -> Result<App, AppError> {
        let config = self.config;
        let templates = Arc::new(Templates::load(&config.templates_dir)?);
        let wording = Arc::new(Wording::load(&config.chat_templates_dir)?);
        let actions = Actions::load(&config, tools::NAMES)?;
        check_template_tools(&templates, &actions)?;
        let (store, shared): (Arc<dyn Store>, _) = match self.store {
            Some(store) => (store, None),
            None => match &config.database.url {
                Some(url) => {
                    let options = PostgresOptions::from(&config.database);
                    let pg = PostgresStore::connect(secrecy::ExposeSecret::expose_secret(url), &options).await?;
                    (Arc::new(pg.clone()), Some(pg))
                }
                None => (
                    Arc::new(SledStore::open_with_cache(&config.data_dir, config.store_cache_mib)?),
                    None,
                ),
            },
        };
        let engine = match (self.engine, &config.llm.base_url) {
            (Some(engine), _) => engine,
            (None, Some(url)) => Engine::Model(Arc::new(OpenAiModel::new(&config.llm, url)?)),
            (None, None) => Engine::Offline(Arc::new(OfflineEngine::new(templates.clone()))),
        };
        let clock = self.clock.unwrap_or_else(clock::system);
        let prompts = Prompts::load(&config.prompts_dir)?.with_templates(&templates);
        let mail = Arc::new(Mail::load(&config.email.templates_dir, &config.email.from)?);
        let mailer = match self.mailer {
            Some(mailer) => mailer,
            None => Mailer::new(
                config.email.smtp_url.as_deref(),
                config.outbox_dir(),
                Duration::from_secs(config.notify.send_timeout_secs),
            )?,
        };
        let (links, pusher) = signing_keys(&config, store.as_ref()).await?;
        let l = &config.limits;
        let hub = Hub::new(HubLimits {
            connections_per_user: l.connections_per_user,
            max_connections: l.max_connections,
            outbound_queue: l.outbound_queue,
        });
        let notifier_wake = Arc::new(tokio::sync::Notify::new());
        let metrics = Arc::new(Metrics::new());
        store.time_commits(metrics.store_commit_seconds.clone());
        let service = Service::new(
            store.clone(),
            Arc::new(hub.clone()),
            clock.clone(),
            Rules::from_config(&config),
            Mailing {
                mail: mail.clone(),
                links: links.clone(),
            },
            notifier_wake.clone(),
            wording,
            actions.clone(),
            metrics.clone(),
        );
        let tools = Arc::new(tools::registry(templates.clone(), &actions));
        let prompts = Arc::new(prompts);
        let turns = Turns {
            service: service.clone(),
            store: store.clone(),
            hub: hub.clone(),
            engine: engine.clone(),
            tools: tools.clone(),
            prompts: prompts.clone(),
            templates: templates.clone(),
            history: crate::turn::History::from(&config.limits),
            max_tool_rounds: config.limits.max_tool_rounds,
            retry: RetryPolicy::from_config(&config.llm),
            model_tokens_per_day: config.limits.model_tokens_per_day,
        };
        let tasks = TaskTracker::new();
        let claims = Claims::new(store.clone(), tasks.clone());
        let stopping = CancellationToken::new();

        Ok(App {
            config: Arc::new(config),
            store,
            service,
            engine,
            tools,
            actions,
            metrics,
            templates,
            prompts,
            turns,
            hub,
            mail,
            mailer,
            links,
            pusher,
            notifier_wake,
            clock,
            tasks,
            claims,
            shared,
            stopping,
            workers: Arc::new(Workers::default()),
        })
    }
}

/// Every tool a template binds a step to exists (its arguments hold slot
/// placeholders, so they are checked when a plan is made from it).
fn check_template_tools(templates: &Templates, actions: &Actions) -> Result<(), AppError> {
    for (file, step, binding) in templates.bindings() {
        if actions.get(&binding.name).is_none() {
            return Err(AppError::Template(TemplateError {
                file: file.to_owned(),
                line: 0,
                message: format!("step `{step}` is bound to `{}`, which is not a tool here", binding.name),
            }));
        }
    }
    Ok(())
}

/// The signed-link key and the web-push sender, from the keys in the store
/// (made and stored on first start).
async fn signing_keys(config: &Config, store: &dyn Store) -> Result<(Links, Option<Pusher>), AppError> {
    let link_key = store.secret("link-key", rand::random::<[u8; 32]>().to_vec()).await?;
    let links = Links::new(link_key, &config.public_url());
    let pusher = if config.push.enabled {
        let vapid = store.secret("vapid-key", Pusher::generate_key()).await?;
        let client = egress::Client::new(config.dev_mode())?;
        Some(Pusher::new(&vapid, &config.push.contact, client)?)
    } else {
        None
    };
    Ok((links, pusher))
}

impl App {
    pub fn builder(config: Config) -> Builder {
        Builder {
            config,
            store: None,
            engine: None,
            clock: None,
            mailer: None,
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    /// Cancelled when the server stops.
    pub(crate) fn stopping(&self) -> CancellationToken {
        self.stopping.clone()
    }

    /// Runs `task` as one of the server's own: shutdown waits for it.
    pub(crate) fn spawn<T: Send + 'static>(
        &self,
        task: impl Future<Output = T> + Send + 'static,
    ) -> tokio::task::JoinHandle<T> {
        self.tasks.spawn(task)
    }

    /// The tracker every server task belongs to.
    pub(crate) fn tasks(&self) -> &TaskTracker {
        &self.tasks
    }

    /// Tracks a future spawned elsewhere (a websocket upgrade) as the
    /// server's own.
    pub(crate) fn track<F: Future>(&self, future: F) -> tokio_util::task::task_tracker::TrackedFuture<F> {
        self.tasks.track_future(future)
    }

    pub fn scheduler(&self) -> Arc<Scheduler> {
        Arc::new(Scheduler {
            store: self.store.clone(),
            service: self.service.clone(),
            digests: Arc::new(Digests {
                store: self.store.clone(),
                mail: self.mail.clone(),
                links: self.links.clone(),
                service: self.service.clone(),
            }),
            failing: Default::default(),
            claims: self.claims.clone(),
        })
    }

    /// The execution engine over this app's store, service and tools.
    pub fn executor(&self) -> Result<Arc<Executor>, AppError> {
        Ok(Executor::new(
            self.store.clone(),
            self.service.clone(),
            self.actions.clone(),
            Caller::new(self.config.dev_mode())?,
            self.mail.clone(),
            self.links.clone(),
            self.templates.clone(),
            self.config.engine.clone(),
            self.clock.clone(),
            self.tasks.clone(),
            Replanner {
                model: self.engine.model().cloned(),
                prompts: self.prompts.clone(),
                tools: self
                    .tools
                    .specs()
                    .iter()
                    .filter(|s| s.name == "update_plan")
                    .cloned()
                    .collect(),
            },
            self.claims.clone(),
        ))
    }

    pub fn notifier(&self) -> Result<Arc<Notifier>, AppError> {
        let http = egress::Client::new(self.config.dev_mode())?;
        Ok(Arc::new(Notifier {
            store: self.store.clone(),
            service: self.service.clone(),
            hub: Arc::new(self.hub.clone()),
            mail: self.mail.clone(),
            mailer: self.mailer.clone(),
            pusher: self.pusher.clone(),
            links: self.links.clone(),
            webhooks: self.config.webhooks.clone(),
            http,
            policy: DeliveryPolicy {
                emails_per_day: self.config.limits.emails_per_day,
                ..DeliveryPolicy::from(&self.config.notify)
            },
            clock: self.clock.clone(),
            model: self.engine.model().cloned(),
            prompts: self.prompts.clone(),
            word_timeout: self.config.llm.first_token_timeout().min(Duration::from_secs(20)),
            wake: self.notifier_wake.clone(),
            tasks: self.tasks.clone(),
            claims: self.claims.clone(),
        }))
    }

    /// Starts the scheduler, the notifier and the housekeeping schedule as
    /// the server's tasks.
    pub(crate) async fn start_background(&self) -> Result<(), AppError> {
        let housekeeping = Housekeeping {
            store: self.store.clone(),
            clock: self.clock.clone(),
            retention: chrono::Duration::days(i64::from(self.config.notify.retention_days)),
            prune_cron: self.config.notify.prune_cron.clone(),
        };
        let schedule = housekeeping.schedule().await?;
        self.spawn(housekeeping.run(schedule, self.stopping()));
        let (scheduler, notifier) = (self.scheduler(), self.notifier()?);
        // Running from here on (a request right after start sees them so).
        for flag in [&self.workers.scheduler, &self.workers.notifier] {
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        self.workers
            .engine
            .store(self.config.engine.enabled, std::sync::atomic::Ordering::SeqCst);
        let (w, stop) = (self.workers.clone(), self.stopping());
        self.spawn(async move { flagged(&w.scheduler, scheduler.run(stop)).await });
        let (w, stop) = (self.workers.clone(), self.stopping());
        self.spawn(async move { flagged(&w.notifier, notifier.run(stop)).await });
        if self.config.engine.enabled {
            let (executor, w, stop) = (self.executor()?, self.workers.clone(), self.stopping());
            self.spawn(async move { flagged(&w.engine, executor.run(stop)).await });
        }
        Ok(())
    }

    /// With a shared database: how many instances serve it, and whether
    /// this one hears the others (`/readyz`).
    pub(crate) fn cluster(&self) -> Option<(usize, bool)> {
        self.hub.bus().map(|bus| (bus.instances(), bus.listening()))
    }

    /// With a shared database: joins the other instances on it and relays
    /// their frames to the sockets here (once; only a server does this,
    /// not a command that opens the store).
    pub(crate) async fn start_relay(&self) -> Result<(), AppError> {
        let Some(pg) = &self.shared else { return Ok(()) };
        if self.hub.bus().is_some() {
            return Ok(());
        }
        let (bus, mut frames) = pg.join(self.claims.holder(), self.stopping()).await?;
        self.hub.attach(bus.clone());
        let app = self.clone();
        self.spawn(async move {
            let stopping = app.stopping();
            while let Some(remote) = stopping.run_until_cancelled(frames.recv()).await.flatten() {
                app.relay_one(&bus, remote).await;
            }
        });
        Ok(())
    }

    /// One frame from another instance to the sockets here, in order (a
    /// stored one is fetched first, only if a socket of its user is here).
    async fn relay_one(&self, bus: &Bus, remote: Remote) {
        let (user, body, seen) = match remote {
            Remote::Resync => return self.hub.close_all(),
            Remote::ResyncUser(user) => return self.hub.close_user(&user),
            Remote::Frame { user, body, seen } => (user, body, seen),
        };
        if !self.hub.is_online(&user) {
            return;
        }
        let text = match body {
            Body::Inline(text) => text,
            Body::Stored(id) => match bus.fetch(id).await {
                Ok(Some(text)) => text,
                Ok(None) => return tracing::warn!(frame = id, "a stored frame was forgotten before it was fetched"),
                Err(e) => return tracing::warn!(frame = id, error = %e, "could not fetch a stored frame"),
            },
        };
        if seen.is_empty() {
            self.hub.send_text(&user, text);
        } else if let Some(delivery) = self.hub.send_text_tracked(&user, text) {
            crate::notifier::mark_seen_when_written(
                &self.tasks,
                &self.store,
                &user,
                seen,
                Box::pin(delivery.written()),
            );
        }
    }

    /// Stops the server's tasks and waits for them (at most a grace
    /// period), then for the store's background writes, so the store can be
    /// opened again as soon as this returns.
    pub(crate) async fn shutdown(&self) {
        if let Some(bus) = self.hub.bus() {
            // First, so the others do not take this instance for dead when
            // its listening connection closes.
            bus.leave().await;
        }
        self.stopping.cancel();
        self.tasks.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, self.tasks.wait()).await.is_err() {
            tracing::warn!(
                still_running = self.tasks.len(),
                "tasks did not stop within the grace period"
            );
        }
        self.store.quiesce().await;
    }
}
