//! steward on PostgreSQL: the same conversation as on sled, over a real
//! server on a private cluster (`steward::store::postgres::cluster`), and
//! two instances on one database serving one user. Skipped, with the
//! reason printed, only where PostgreSQL cannot be installed (never under
//! `CI=true`).

use crate::harness::{TestApp, of_type};
use crate::planning::{app_spawn, engine, reply};
use serde_json::Value;
use steward::store::postgres::cluster::Database;

async fn app_on(db: &Database) -> TestApp {
    let url = db.url().to_owned();
    app_spawn()
        .config(move |c| c.database.url = Some(url.into()))
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
/// a change made through either is the next version of the same plan, and
/// every frame of a turn reaches the user's socket on the other instance
/// (and no one else's).
#[tokio::test]
async fn two_instances_on_one_database_serve_one_user_the_same_plans() {
    let Some(db) = Database::fresh().await else { return };
    let (first, second) = (app_on(&db).await, app_on(&db).await);
    for app in [&first, &second] {
        let ready: Value = reqwest::get(app.url("/readyz")).await.unwrap().json().await.unwrap();
        assert_eq!(ready["bus"], "listening", "{ready}");
        assert_eq!(ready["store"], "ok", "{ready}");
    }
    // The second one's hello reaches the first.
    let mut ready = Value::Null;
    for _ in 0..100 {
        ready = reqwest::get(first.url("/readyz")).await.unwrap().json().await.unwrap();
        if ready["instances"] == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(ready["instances"], 2, "{ready}");
    let mut on_first = first.connect("ana").await;
    on_first
        .turn("g1", "help me onboard Ana Souza, she starts December 1")
        .await;
    let created = of_type(&on_first.turn("g2", "yes").await, "plan")[0]["plan"].clone();

    let mut on_second = second.connect("ana").await;
    assert_eq!(on_second.ready.clone().unwrap()["plans"][0], created);
    let mut bob = first.connect("bob").await;
    assert_eq!(
        bob.ready.clone().unwrap()["plans"],
        serde_json::json!([]),
        "another user sees nothing"
    );
    let frames = on_second.turn("g3", "done with order laptop").await;
    // A frame of the first instance's earlier turn may still be on its way
    // to this new socket (a state its `ready` already showed): the change
    // is the last plan frame.
    let changed = of_type(&frames, "plan").last().unwrap()["plan"].clone();
    assert_eq!(changed["version"], created["version"].as_u64().unwrap() + 1);

    // The socket on the first instance saw the same turn: the message,
    // the plan change and the answer, in that order.
    let seen = on_first.until("reply").await;
    let kinds: Vec<&str> = seen.iter().filter_map(|f| f["type"].as_str()).collect();
    assert_eq!(kinds.first(), Some(&"message"), "{kinds:?}");
    assert_eq!(of_type(&seen, "plan")[0]["plan"], changed);
    assert_eq!(seen.last().unwrap()["reply_to"], "g3");
    bob.expect_silence(std::time::Duration::from_millis(500)).await;

    let text = reply(&on_first.turn("g4", "show my onboarding plan").await);
    assert!(text.contains("1/7 steps done"), "{text}");
    let echoed = on_second.until("reply").await;
    assert_eq!(echoed.last().unwrap()["reply_to"], "g4");
    first.shutdown().await;
    second.shutdown().await;
}

/// The way a deployment moves: a conversation on sled, the server stopped,
/// `steward migrate`, and the same conversation goes on on PostgreSQL.
#[tokio::test]
async fn steward_migrate_moves_a_deployment_from_sled_to_postgres() {
    let Some(db) = Database::fresh().await else { return };
    let data = tempfile::tempdir().unwrap();
    let path = data.path().to_owned();
    let on_sled = app_spawn().config(move |c| c.data_dir = path).spawn().await;
    let mut ana = on_sled.connect("ana").await;
    ana.turn("g1", "help me onboard Ana Souza, she starts December 1").await;
    let plan = of_type(&ana.turn("g2", "yes").await, "plan")[0]["plan"].clone();
    ana.turn("g3", "done with order laptop").await;
    drop(ana);
    on_sled.shutdown().await;

    let run = migrate(&db, data.path()).await;
    let (out, err) = (
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr),
    );
    assert!(run.status.success(), "{out}\n{err}");
    assert!(err.contains("verified every family"), "{err}");
    assert!(
        out.lines().any(|l| l.starts_with("plans") && l.contains(" 1 ")),
        "{out}"
    );

    let on_postgres = app_on(&db).await;
    let mut ana = on_postgres.connect("ana").await;
    let moved = ana.ready.clone().unwrap()["plans"][0].clone();
    assert_eq!(moved["id"], plan["id"]);
    assert_eq!(step_status(&moved, "order_hardware"), "completed");
    let text = reply(&ana.turn("g4", "undo").await);
    assert!(text.to_lowercase().contains("order laptop"), "{text}");

    // Into a database that holds users already: refused, nothing changed.
    let again = migrate(&db, data.path()).await;
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("empty database"));
    on_postgres.shutdown().await;
}

/// `steward migrate --from <data>` into the database, as an operator runs it.
async fn migrate(db: &Database, data: &std::path::Path) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_steward"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RUST_LOG", "error")
        .env("STEWARD_DATABASE_URL", db.url())
        .args(["migrate", "--from"])
        .arg(data)
        .output()
        .await
        .unwrap()
}
