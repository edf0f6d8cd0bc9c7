//! The server's Prometheus series, rendered as text at `/metrics`. One
//! [`Metrics`] per app (tests run many apps in one process and read their
//! own); the service, the engine and the transport count into it.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Kind {
    /// The plan's template kind, or `custom`.
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ToolOutcome {
    pub tool: String,
    /// `ok`, `transient`, `user`, `permanent`.
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Tool {
    pub tool: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Outcome {
    /// `ok`, or the error's class.
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ChannelOutcome {
    /// `socket`, `push`, `email`, `inbox`, `webhook`.
    pub channel: String,
    pub outcome: String,
}

fn seconds() -> Histogram {
    // 1 ms … ~4.5 min.
    Histogram::new(exponential_buckets(0.001, 3.0, 12))
}

fn commit() -> Histogram {
    // 100 µs … ~6 s: a durable commit (sled's flush, PostgreSQL's COMMIT).
    Histogram::new(exponential_buckets(0.0001, 3.0, 11))
}

fn latency() -> Histogram {
    // 10 ms … ~5.8 days: a step may wait on a slow tool or a long retry.
    Histogram::new(exponential_buckets(0.01, 4.0, 16))
}

/// Every series steward exports.
pub struct Metrics {
    registry: Registry,
    pub(crate) plans_created: Family<Kind, Counter>,
    pub(crate) steps_completed: Family<Kind, Counter>,
    pub(crate) steps_failed: Family<Kind, Counter>,
    pub(crate) step_latency: Family<Kind, Histogram, fn() -> Histogram>,
    pub(crate) tool_calls: Family<ToolOutcome, Counter>,
    pub(crate) tool_retries: Family<Tool, Counter>,
    pub(crate) replans: Counter,
    pub(crate) steps_running: Gauge,
    pub(crate) turns: Counter,
    pub(crate) turn_seconds: Histogram,
    pub(crate) ws_connections: Gauge,
    pub(crate) http_connections: Gauge,
    pub(crate) model_calls: Family<Outcome, Counter>,
    pub(crate) model_prompt_tokens: Counter,
    pub(crate) model_completion_tokens: Counter,
    pub(crate) model_call_seconds: Histogram,
    pub(crate) notifications: Family<ChannelOutcome, Counter>,
    pub(crate) deliveries: Family<ChannelOutcome, Counter>,
    pub(crate) trigger_lateness_seconds: Histogram,
    pub(crate) store_commit_seconds: Histogram,
    pub(crate) turns_queued: Gauge,
    pub(crate) outbound_frames_queued: Gauge,
    pub(crate) outbound_queue_fullest: Gauge,
    pub(crate) outbox_open: Gauge,
    pub(crate) outbox_oldest_seconds: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Registers `metric` under `name` and hands it back to be kept.
fn reg<M: prometheus_client::registry::Metric + Clone>(r: &mut Registry, name: &str, help: &str, metric: M) -> M {
    r.register(name, help, metric.clone());
    metric
}

impl Metrics {
    /// Every series, registered in the order the export lists them.
    // Long: one registration per series, in one place: the list is the
    // export's table of contents.
    pub fn new() -> Metrics {
        let mut r = Registry::with_prefix("steward");
        Metrics {
            plans_created: reg(
                &mut r,
                "plans_created",
                "Plans created, by template kind",
                Family::default(),
            ),
            steps_completed: reg(
                &mut r,
                "steps_completed",
                "Steps bound to tools the engine completed, by template kind",
                Family::default(),
            ),
            steps_failed: reg(
                &mut r,
                "steps_failed",
                "Steps bound to tools that failed for good, by template kind",
                Family::default(),
            ),
            step_latency: reg(
                &mut r,
                "step_latency_seconds",
                "From a tool step being ready to its being done, by template kind",
                Family::new_with_constructor(latency),
            ),
            tool_calls: reg(
                &mut r,
                "tool_calls",
                "Tool calls by tool and outcome",
                Family::default(),
            ),
            tool_retries: reg(
                &mut r,
                "tool_retries",
                "Tool calls retried after a transient failure",
                Family::default(),
            ),
            replans: reg(
                &mut r,
                "replans",
                "Replans proposed after a step failed for good",
                Counter::default(),
            ),
            steps_running: reg(&mut r, "steps_running", "Tool steps running now", Gauge::default()),
            turns: reg(&mut r, "turns", "Chat turns answered", Counter::default()),
            ws_connections: reg(&mut r, "ws_connections", "Open websocket connections", Gauge::default()),
            http_connections: reg(
                &mut r,
                "http_connections",
                "Open TCP connections, websockets included",
                Gauge::default(),
            ),
            turn_seconds: reg(
                &mut r,
                "turn_seconds",
                "Chat turns from the message to the answer",
                seconds(),
            ),
            model_calls: reg(
                &mut r,
                "model_calls",
                "Model calls (with their retries) by outcome",
                Family::default(),
            ),
            model_prompt_tokens: reg(
                &mut r,
                "model_prompt_tokens",
                "Tokens sent to the model (as the provider reports them, else estimated)",
                Counter::default(),
            ),
            model_completion_tokens: reg(
                &mut r,
                "model_completion_tokens",
                "Tokens the model answered with (as reported, else estimated)",
                Counter::default(),
            ),
            model_call_seconds: reg(
                &mut r,
                "model_call_seconds",
                "Model calls (with their retries), end to end",
                seconds(),
            ),
            notifications: reg(
                &mut r,
                "notifications",
                "Notifications routed, by channel",
                Family::default(),
            ),
            deliveries: reg(
                &mut r,
                "deliveries",
                "Emails, pushes and webhooks attempted, by channel and outcome",
                Family::default(),
            ),
            trigger_lateness_seconds: reg(
                &mut r,
                "trigger_lateness_seconds",
                "How late triggers fired after their time",
                seconds(),
            ),
            store_commit_seconds: reg(
                &mut r,
                "store_commit_seconds",
                "Durable commits: a sled flush, or a PostgreSQL transaction's COMMIT",
                commit(),
            ),
            turns_queued: reg(
                &mut r,
                "turns_queued",
                "Messages accepted and waiting for their turn, all sockets",
                Gauge::default(),
            ),
            outbound_frames_queued: reg(
                &mut r,
                "outbound_frames_queued",
                "Frames queued for the sockets' writers, all sockets (read at scrape)",
                Gauge::default(),
            ),
            outbound_queue_fullest: reg(
                &mut r,
                "outbound_queue_fullest",
                "Frames queued for the socket with the most waiting (read at scrape)",
                Gauge::default(),
            ),
            outbox_open: reg(
                &mut r,
                "outbox_open",
                "Emails, pushes and webhooks not yet sent or failed for good (read at scrape)",
                Gauge::default(),
            ),
            outbox_oldest_seconds: reg(
                &mut r,
                "outbox_oldest_seconds",
                "Age of the oldest open outbox item, 0 when none (read at scrape)",
                Gauge::default(),
            ),
            registry: r,
        }
    }

    /// Counts one model call (its retries included): how long, and `ok`
    /// or the error's class.
    /// Tokens a model call used (reported by the provider, or estimated).
    pub(crate) fn model_tokens(&self, prompt: u64, completion: u64) {
        self.model_prompt_tokens.inc_by(prompt);
        self.model_completion_tokens.inc_by(completion);
    }

    pub(crate) fn model_call(&self, took: std::time::Duration, outcome: &str) {
        self.model_call_seconds.observe(took.as_secs_f64());
        let outcome = Outcome {
            outcome: outcome.to_owned(),
        };
        self.model_calls.get_or_create(&outcome).inc();
    }

    pub(crate) fn kind(kind: &str) -> Kind {
        Kind { kind: kind.to_owned() }
    }

    /// The Prometheus text exposition of every series.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "metrics could not be encoded");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_render_as_prometheus_text_with_their_labels() {
        let m = Metrics::new();
        m.plans_created.get_or_create(&Metrics::kind("trip")).inc();
        m.tool_calls
            .get_or_create(&ToolOutcome {
                tool: "send_email".into(),
                outcome: "ok".into(),
            })
            .inc_by(2);
        m.step_latency.get_or_create(&Metrics::kind("trip")).observe(0.5);
        let text = m.render();
        assert!(text.contains("steward_plans_created_total{kind=\"trip\"} 1"), "{text}");
        assert!(
            text.contains("steward_tool_calls_total{tool=\"send_email\",outcome=\"ok\"} 2"),
            "{text}"
        );
        assert!(text.contains("# TYPE steward_step_latency_seconds histogram"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
