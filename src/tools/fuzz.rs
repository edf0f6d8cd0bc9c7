//! Property tests: `update_plan` with arbitrary arguments in both forms,
//! through the real registry, plan service and sled store. Whatever the
//! model sends, the call answers (never a panic or a failed turn), a
//! refused change leaves the plan exactly as it was, and an applied one
//! leaves a plan that passes every invariant. `PROPTEST_CASES` sets the
//! number of cases (a short run by default; see the README for long ones).

use super::*;
use crate::config::{Config, ConfirmConfig};
use crate::conversation::ToolCall;
use crate::plan::invariants::{PlanLimits, validate};
use crate::plan::{Actor, Plan};
use crate::service::{Session, testing};
use crate::store::{SledStore, Store};
use crate::user::UserId;
use proptest::prelude::*;
use serde_json::{Value, json};

fn id() -> impl Strategy<Value = Value> {
    prop_oneof![
        8 => prop::sample::select(vec!["a", "b", "c", "d", "e-1"]).prop_map(Value::from),
        1 => prop::sample::select(vec!["Bad Id", ""]).prop_map(Value::from),
    ]
}

fn text() -> impl Strategy<Value = Value> {
    prop_oneof![
        12 => "[a-zA-Z][a-zA-Z ]{0,19}".prop_map(Value::from),
        1 => ".{0,30}".prop_map(Value::from),
        1 => Just(Value::from("x".repeat(400))),
        1 => Just(Value::from("two\nlines")),
        1 => Just(Value::from("\u{202e}reversed \" quoted")),
        1 => any::<i64>().prop_map(Value::from),
    ]
}

fn due() -> impl Strategy<Value = Value> {
    prop::sample::select(vec![
        json!("2026-12-01"),
        json!("2026-12-24T09:00:00Z"),
        json!("2027-01-15"),
        json!("2026-12-05T17:30:00+11:00"),
        json!("2027-02-30"),
        json!("yesterday"),
        json!("1969-12-31T23:59:59Z"),
        json!("9999-12-31"),
        json!(null),
        json!(17),
    ])
}

fn status() -> impl Strategy<Value = Value> {
    prop::sample::select(vec![
        "pending",
        "in_progress",
        "completed",
        "completed",
        "failed",
        "cancelled",
    ])
    .prop_map(Value::from)
}

/// One operation, mostly well formed, sometimes not.
fn op() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => (id(), text(), prop::collection::vec(id(), 0..3), due(), prop::option::of(id())).prop_map(
            |(id, title, depends_on, due_at, after)| {
                let mut op = json!({"op": "add_step", "id": id, "title": title, "depends_on": depends_on, "due_at": due_at});
                if let Some(after) = after {
                    op["after"] = after;
                }
                op
            }
        ),
        4 => (id(), prop::option::of(text()), prop::option::of(due()), prop::option::of(prop::collection::vec(id(), 0..3)))
            .prop_map(|(step, title, due_at, depends_on)| {
                let mut op = json!({"op": "update_step", "step": step});
                if let Some(t) = title {
                    op["title"] = t;
                }
                if let Some(d) = due_at {
                    op["due_at"] = d;
                }
                if let Some(d) = depends_on {
                    op["depends_on"] = Value::from(d);
                }
                op
            }),
        4 => (id(), status()).prop_map(|(step, status)| json!({"op": "set_status", "step": step, "status": status})),
        4 => id().prop_map(|step| json!({"op": "remove_step", "step": step})),
        4 => prop::collection::vec(id(), 0..5).prop_map(|order| json!({"op": "reorder", "order": order})),
        4 => text().prop_map(|title| json!({"op": "rename_plan", "title": title})),
        1 => Just(json!({"op": "cancel_plan"})),
        4 => (id(), text()).prop_map(|(step, reason)| json!({"op": "reopen", "step": step, "reason": reason})),
        1 => Just(json!({"op": "launch_rockets"})),
        1 => Just(json!({"op": "add_step", "title": "No id"})),
    ]
}

/// Arguments in the patch form, the snapshot form, or neither.
fn arguments() -> impl Strategy<Value = String> {
    // Mostly the plan's current version (filled in at the call), which a
    // model reading the system prompt sends; sometimes a stale one.
    let version = prop_oneof![4 => Just(json!("CURRENT")), 1 => (0u64..4).prop_map(Value::from)];
    let plan_id = prop_oneof![6 => Just(json!("p1")), 1 => Just(json!("p9")), 1 => Just(json!(1))];
    let patch = (prop::collection::vec(op(), 1..4), version, plan_id).prop_map(
        |(ops, version, id)| json!({"plan_id": id, "expected_version": version, "explanation": "fuzz", "ops": ops}),
    );
    let snapshot_item = (
        text(),
        prop::sample::select(vec!["pending", "in_progress", "completed", "done"]),
    )
        .prop_map(|(step, status)| json!({"step": step, "status": status}));
    let snapshot =
        prop::collection::vec(snapshot_item, 0..6).prop_map(|plan| json!({"explanation": "fuzz", "plan": plan}));
    prop_oneof![
        12 => patch.prop_map(|v| v.to_string()),
        4 => snapshot.prop_map(|v| v.to_string()),
        1 => ".{0,60}",
        1 => Just(json!({"plan_id": "p1", "ops": "all of them"}).to_string()),
    ]
}

struct Bench {
    runtime: tokio::runtime::Runtime,
    service: crate::service::Service,
    store: Arc<dyn Store>,
    registry: Registry,
    session: Session,
    _dir: tempfile::TempDir,
}

impl Bench {
    /// A store with one plan (p1, version 1, steps a and b, b after a).
    fn new() -> Bench {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).unwrap());
        let config = Config {
            confirm: ConfirmConfig::never(),
            ..Config::default()
        };
        let service = testing::service_with(store.clone(), crate::clock::system(), &config);
        let session = Session {
            user: UserId::parse("ana").unwrap(),
            actor: Actor::Model,
            tz: "Australia/Sydney".parse().unwrap(),
        };
        let registry = registry(
            Arc::new(Templates::built_in().unwrap()),
            &crate::actions::Actions::built_in(),
        );
        let bench = Bench {
            runtime,
            service,
            store,
            registry,
            session,
            _dir: dir,
        };
        let created = json!({"title": "Onboard Ana", "explanation": "start", "ops": [
            {"op": "add_step", "id": "a", "title": "Order laptop", "due_at": "2026-12-20"},
            {"op": "add_step", "id": "b", "title": "Create accounts", "depends_on": ["a"]}]});
        bench
            .runtime
            .block_on(bench.store.ensure_user(&bench.session.user))
            .unwrap();
        let out = bench.call(&created.to_string());
        assert!(out.contains("\"ok\":true"), "{out}");
        bench
    }

    fn call(&self, arguments: &str) -> String {
        let version = self.plans().first().map_or(0, |p| p.version);
        let call = ToolCall {
            id: "c".into(),
            name: "update_plan".into(),
            arguments: arguments.replace("\"CURRENT\"", &version.to_string()),
        };
        let ctx = ToolContext {
            service: &self.service,
            session: &self.session,
        };
        let out = self.runtime.block_on(self.registry.call(ctx, &call));
        out.map(|o| o.content)
            .unwrap_or_else(|e| panic!("the call failed the turn: {e}"))
    }

    fn plans(&self) -> Vec<Plan> {
        self.runtime
            .block_on(self.store.list_plans(&self.session.user))
            .unwrap()
    }
}

proptest! {
    #![proptest_config(crate::config::proptest_config(128))]

    #[test]
    fn update_plan_applies_whole_changes_that_keep_every_invariant_or_changes_nothing(
        batches in prop::collection::vec(arguments(), 1..4)
    ) {
        let bench = Bench::new();
        let limits = PlanLimits::default();
        for arguments in batches {
            let before = bench.plans();
            let out = bench.call(&arguments);
            let answer: Value = serde_json::from_str(&out).unwrap_or_else(|_| panic!("not JSON: {out}"));
            let after = bench.plans();
            if answer["ok"] == true {
                for plan in &after {
                    prop_assert!(validate(plan, &limits).is_ok(), "{:?} broke {:#?}", validate(plan, &limits), plan);
                }
            } else {
                prop_assert_eq!(&before, &after, "a refused change wrote something: {}", out);
                prop_assert!(answer["error"].as_str().is_some_and(|e| !e.is_empty()), "no reason given: {}", out);
            }
        }
    }
}
