//! steward on PostgreSQL: the same conversation as on sled, over a real
//! server on a private cluster (`steward::store::postgres::cluster`), and
//! two instances on one database serving one user. Skipped, with the
//! reason printed, only where PostgreSQL cannot be installed (never under
//! `CI=true`).

use crate::harness::{TestApp, clock_from, of_type};
use crate::planning::reply;
use serde_json::Value;
use std::sync::Arc;
use steward::config::ConfirmConfig;
use steward::offline::OfflineEngine;
use steward::planner::templates::Templates;
use steward::store::postgres::cluster::Database;

const NOW: &str = "2026-11-22T10:00:00Z";

fn engine() -> Arc<OfflineEngine> {
    Arc::new(OfflineEngine::new(Arc::new(Templates::built_in().unwrap())))
}

async fn app_on(db: &Database) -> TestApp {
    let url = db.url().to_owned();
    TestApp::with(engine())
        .config(move |c| {
            c.confirm = ConfirmConfig::default();
            c.time_zone = "Europe/Berlin".into();
            c.database.url = Some(url.into());
        })
        .clock(clock_from(NOW))
        .spawn()
        .await
}

fn step_status(plan: &Value, step: &str) -> Value {
    plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == step)
        .unwrap()["status"]
        .clone()
}

#[tokio::test]
async fn the_planning_conversation_runs_on_postgres_and_survives_a_restart() {
    let Some(db) = Database::fresh().await else { return };
    let app = app_on(&db).await;
    let mut ana = app.connect("ana").await;
    let frames = ana.turn("g1", "help me onboard Ana Souza, she starts December 1").await;
    assert!(of_type(&frames, "plan").is_empty(), "nothing is created before the yes");
    let frames = ana.turn("g2", "yes").await;
    let plan = of_type(&frames, "plan")[0]["plan"].clone();
    assert_eq!(plan["steps"].as_array().unwrap().len(), 7);
    let frames = ana.turn("g3", "done with order laptop").await;
    let plan = of_type(&frames, "plan")[0]["plan"].clone();
    assert_eq!(step_status(&plan, "order_hardware"), "completed");
    drop(ana);

    let app = app.restart(engine()).await;
    let mut ana = app.connect("ana").await;
    let ready = ana.ready.clone().unwrap();
    assert_eq!(ready["plans"][0], plan, "the plan reads back as it was acknowledged");
    let text = reply(&ana.turn("g4", "show my onboarding plan").await);
    assert!(text.contains("1/7 steps done"), "{text}");
    let text = reply(&ana.turn("g5", "what changed in the onboarding plan?").await);
    assert!(text.contains("Order laptop"), "{text}");
    app.shutdown().await;
}

/// Two instances on one database: what one acknowledges, the other reads;
/// a change made through either is the next version of the same plan.
#[tokio::test]
async fn two_instances_on_one_database_serve_one_user_the_same_plans() {
    let Some(db) = Database::fresh().await else { return };
    let (first, second) = (app_on(&db).await, app_on(&db).await);
    let mut on_first = first.connect("ana").await;
    on_first
        .turn("g1", "help me onboard Ana Souza, she starts December 1")
        .await;
    let created = of_type(&on_first.turn("g2", "yes").await, "plan")[0]["plan"].clone();

    let mut on_second = second.connect("ana").await;
    assert_eq!(on_second.ready.clone().unwrap()["plans"][0], created);
    let frames = on_second.turn("g3", "done with order laptop").await;
    let changed = of_type(&frames, "plan")[0]["plan"].clone();
    assert_eq!(changed["version"], created["version"].as_u64().unwrap() + 1);

    let text = reply(&on_first.turn("g4", "show my onboarding plan").await);
    assert!(text.contains("1/7 steps done"), "{text}");
    let bob = second.connect("bob").await;
    assert_eq!(
        bob.ready.clone().unwrap()["plans"],
        serde_json::json!([]),
        "another user sees nothing"
    );
    first.shutdown().await;
    second.shutdown().await;
}
