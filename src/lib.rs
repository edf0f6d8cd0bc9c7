//! steward: a chat backend whose assistant keeps long-lived, durable plans
//! for each user.
//!
//! The crate is layered; a module uses its own layer or lower ones
//! (`tests/it/architecture.rs` checks it on every test run):
//!
//! ```text
//!  transport          http
//!  composition root   app
//!  drivers            turn · scheduler · offline · notifier
//!  model's hands      tools
//!  the plan service   service
//!  adapters           store · claims · hub · channels · llm
//!  words              wording · prompts · protocol · events
//!  domain (pure)      plan · planner · interpreter · proposal · triggers
//!                     preferences · notification · conversation
//!  leaves             clock · net · user · config · templating
//! ```
//!
//! A chat message: [`http`] (`/ws`, the user from the token) → [`hub`]
//! (one turn per user at a time) → [`turn`] (stores it, reads it with the
//! [`interpreter`], asks the [`offline`] engine or a model from [`llm`]) →
//! [`tools`] (typed arguments) → [`service`] (the rules, then one flushed
//! [`store`] write with the [`triggers`] it implies, then the change
//! published to every socket of the user through `events`) → the reply,
//! worded from [`wording`]. REST, the [`scheduler`] and the [`notifier`]
//! call the same [`service`].
//!
//! - [`clock`], [`user`], [`config`]: the time source, the authenticated
//!   user's id, typed configuration (defaults ← `steward.toml` ← `STEWARD_*`)
//! - [`plan`]: LivePlan types, invariants, patches, snapshots, rendering
//! - [`planner`]: plan templates and their expansion into proposed plans
//! - [`interpreter`]: message → chat / new goal / command / confirmation
//! - `proposal`, [`triggers`], [`preferences`], [`notification`],
//!   [`conversation`]: the other domain records and their pure rules
//! - [`wording`], [`prompts`]: what steward says (`templates/chat`,
//!   `prompts/`); `protocol`: the wire frames
//! - [`store`]: narrow store traits, the sled store, the conformance suite
//! - [`hub`]: open sockets, per-user turn lock, rate limits, bounded queues
//! - [`channels`]: email, mailer, web push, webhooks, signed links, calendar
//! - [`llm`]: the `ChatModel` seam (OpenAI-compatible; scripted in tests)
//! - [`service`]: the plan service every caller goes through
//! - [`tools`]: the tools a model (and the offline engine) calls
//! - [`offline`]: the built-in engine used when no model is configured
//! - [`notifier`], [`scheduler`]: routing and delivery; timed triggers
//! - [`turn`]: one chat turn; [`app`]: the composition root

pub mod actions;
pub mod app;
pub mod channels;
pub mod claims;
pub mod clock;
pub mod config;
pub mod conversation;
pub mod engine;
pub(crate) mod events;
pub mod execution;
pub mod http;
pub mod hub;
pub mod interpreter;
pub mod llm;
pub mod metrics;
pub(crate) mod net;
pub mod notification;
pub mod notifier;
pub mod offline;
pub mod plan;
pub mod planner;
pub mod preferences;
pub mod prompts;
pub(crate) mod proposal;
pub(crate) mod protocol;
pub mod scheduler;
pub mod service;
pub mod store;
pub(crate) mod templating;
pub mod tools;
pub mod triggers;
pub mod turn;
pub mod user;
pub mod wording;

pub use app::App;
pub use config::Config;
