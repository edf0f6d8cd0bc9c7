//! steward: a chat backend whose assistant keeps long-lived, durable plans
//! for each user.
//!
//! - [`config`]: typed configuration (defaults ← `steward.toml` ← `STEWARD_*`)
//! - [`app`]: the assembled application shared by all handlers
//! - [`http`]: router, `/ws` endpoint, authentication
//! - [`protocol`]: the websocket wire contract (frames, error codes)
//! - [`hub`]: open sockets per user, turn serialisation, rate limits
//! - [`turn`]: one chat turn: model calls, tool rounds, durable transcript
//! - [`interpreter`]: messages → chat / new goal / command / confirmation; dates
//! - [`planner`]: plan templates and their expansion into proposed plans
//! - [`plan`]: LivePlan types, invariants, patches, snapshots, rendering (pure)
//! - [`tools`]: the tools the model calls (`update_plan`, `show_plan`, `list_plans`)
//! - [`llm`]: the `ChatModel` seam: OpenAI-compatible, offline engine, scripted
//! - [`proposals`]: changes that wait for the user's yes; the confirmation policy
//! - [`scheduler`]: durable triggers, the misfire policy, the cron wake-up
//! - [`notify`]: notifications, preferences, routing, email, web push, webhooks
//! - [`prompts`]: system prompts rendered from `prompts/`
//! - [`store`]: the `Store` trait and its sled implementation
//! - [`conversation`]: stored chat messages and transcript repair
//! - [`user`]: the authenticated user's id

pub mod app;
pub mod channels;
pub mod clock;
pub mod config;
pub mod conversation;
pub(crate) mod events;
pub mod http;
pub mod hub;
pub mod interpreter;
pub mod llm;
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
pub mod tools;
pub mod triggers;
pub mod turn;
pub mod user;
pub mod wording;

pub use app::App;
pub use config::Config;
