//! The planning brain end to end with the offline engine: goals become
//! proposals, a yes creates the plan, commands work on real plans, dates move
//! only with confirmation, undo reverts, and all of it survives a restart.

use crate::harness::{Client, Spawn, TestApp, clock_from, of_type};
use serde_json::{Value, json};
use std::sync::Arc;
use steward::config::ConfirmConfig;
use steward::offline::OfflineEngine;
use steward::planner::templates::Templates;

/// Sunday 2026-11-22, 11:00 in Berlin.
const NOW: &str = "2026-11-22T10:00:00Z";

pub(crate) fn engine() -> Arc<OfflineEngine> {
    Arc::new(OfflineEngine::new(Arc::new(Templates::built_in().unwrap())))
}

/// How [`app`] is started, for tests that change more settings.
pub(crate) fn app_spawn() -> Spawn {
    TestApp::with(engine())
        .config(|c| {
            c.confirm = ConfirmConfig::default();
            c.time_zone = "Europe/Berlin".into();
        })
        .clock(clock_from(NOW))
}

pub(crate) async fn app() -> TestApp {
    app_spawn().spawn().await
}

pub(crate) fn reply(frames: &[Value]) -> String {
    let last = frames.last().unwrap();
    assert_eq!(last["type"], "reply", "{frames:#?}");
    last["text"].as_str().unwrap().to_owned()
}

fn due(plan: &Value, step: &str) -> Value {
    plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == step)
        .unwrap()["due_at"]
        .clone()
}

async fn set_up_onboarding(ana: &mut Client) -> Value {
    let frames = ana.turn("g1", "help me onboard Ana Souza, she starts December 1").await;
    assert!(of_type(&frames, "plan").is_empty(), "nothing is created before the yes");
    let proposal = of_type(&frames, "proposal")[0]["proposal"].clone();
    assert_eq!(proposal["status"], "open");
    assert_eq!(proposal["plan_id"], Value::Null);
    let text = reply(&frames);
    assert!(
        text.starts_with(
            "To onboard Ana Souza by Dec 1, I'll:\n- Order laptop and equipment for Ana Souza — due Tue Nov 24\n"
        ),
        "{text}"
    );
    assert!(text.ends_with("Shall I set this up?"), "{text}");

    let frames = ana.turn("g2", "yes").await;
    let plan = of_type(&frames, "plan")[0]["plan"].clone();
    assert_eq!(of_type(&frames, "proposal")[0]["proposal"]["status"], "accepted");
    assert!(reply(&frames).starts_with("Done — your plan is set up.\n**Onboard Ana Souza** (p1) — 0/7 steps done"));
    plan
}

#[tokio::test]
async fn goal_proposal_yes_show_move_confirm_undo_and_restart_keep_the_plan_right() {
    let app = app().await;
    let mut ana = app.connect("ana").await;

    let plan = set_up_onboarding(&mut ana).await;
    assert_eq!(
        plan["objective"],
        json!({"kind": "onboard_employee", "slots": {"name": "Ana Souza", "start_date": "2026-12-01"}})
    );
    let ids: Vec<&str> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "order_hardware",
            "create_accounts",
            "assign_buddy",
            "prepare_desk",
            "welcome_email",
            "orientation",
            "first_week_checkin"
        ]
    );
    // 09:00 in Berlin (UTC+1) on the template's offsets from Dec 1.
    assert_eq!(due(&plan, "order_hardware"), "2026-11-24T08:00:00Z");
    assert_eq!(due(&plan, "orientation"), "2026-12-01T08:00:00Z");
    assert_eq!(plan["steps"][5]["depends_on"], json!(["prepare_desk", "welcome_email"]));

    let shown = reply(&ana.turn("s1", "show my onboarding plan").await);
    assert!(
        shown.contains("6. [ ] First-day orientation with Ana Souza — due Tue Dec 1"),
        "{shown}"
    );
    assert!(
        shown.ends_with("Next: Order laptop and equipment for Ana Souza\n"),
        "{shown}"
    );

    let frames = ana.turn("m1", "move the orientation to Friday").await;
    assert!(of_type(&frames, "plan").is_empty(), "a date moves only after a yes");
    let proposal = of_type(&frames, "proposal")[0]["proposal"].clone();
    assert_eq!(proposal["plan_id"], "p1");
    assert_eq!(
        proposal["changes"],
        json!([{"kind": "step_due", "step": "orientation", "from": "2026-12-01T08:00:00Z", "to": "2026-11-27T08:00:00Z"}])
    );
    assert_eq!(
        reply(&frames),
        "Move “First-day orientation with Ana Souza” from Tue Dec 1 to Fri Nov 27. Note: “First-day orientation \
         with Ana Souza” would then be due before “Set up the desk and test the hardware” (due Mon Nov 30), which it \
         waits for. Shall I go ahead?"
    );

    // Confirmed with the button (a confirm frame) this time.
    ana.send(json!({"type": "confirm", "proposal_id": proposal["id"], "accept": true}))
        .await;
    let moved = ana.until("plan").await.last().unwrap()["plan"].clone();
    assert_eq!(
        (moved["version"].clone(), due(&moved, "orientation")),
        (json!(2), json!("2026-11-27T08:00:00Z"))
    );
    assert_eq!(
        ana.until("proposal").await.last().unwrap()["proposal"]["status"],
        "accepted"
    );

    let frames = ana.turn("u1", "undo").await;
    let undone = of_type(&frames, "plan")[0]["plan"].clone();
    assert_eq!(
        (undone["version"].clone(), due(&undone, "orientation")),
        (json!(3), json!("2026-12-01T08:00:00Z"))
    );
    assert!(
        reply(&frames).starts_with("Undone: Move “First-day orientation with Ana Souza” from Tue Dec 1 to Fri Nov 27.")
    );

    let history = reply(&ana.turn("h1", "what changed in the onboarding plan?").await);
    let lines: Vec<&str> = history.lines().collect();
    assert_eq!(lines[0], "History of “Onboard Ana Souza”, newest first:");
    assert!(
        lines[1].contains("by user: Move “First-day orientation with Ana Souza” from Fri Nov 27 to Tue Dec 1 (undo: "),
        "{history}"
    );
    assert!(
        lines[2]
            .contains("by user: Move “First-day orientation with Ana Souza” from Tue Dec 1 to Fri Nov 27 (confirmed: "),
        "{history}"
    );
    assert!(
        lines[3].contains("by user: Create the plan “Onboard Ana Souza”"),
        "{history}"
    );
    drop(ana);

    let app = app.restart(engine()).await;
    let ana = app.connect("ana").await;
    let plans = ana.ready.clone().unwrap()["plans"].clone();
    assert_eq!(plans.as_array().unwrap().len(), 1);
    assert_eq!(plans[0], undone);
}

#[tokio::test]
async fn a_proposal_survives_a_restart_and_a_stale_one_is_refused_with_the_new_state() {
    let app = app().await;
    let mut ana = app.connect("ana").await;
    set_up_onboarding(&mut ana).await;

    let frames = ana.turn("k1", "skip the welcome email").await;
    assert_eq!(
        reply(&frames),
        "Skip “Welcome email for Ana Souza: a draft with the first-day agenda, sent to you to forward”. Shall I go ahead?"
    );
    drop(ana);
    let app = app.restart(engine()).await;
    let mut ana = app.connect("ana").await;
    let frames = ana.turn("k2", "yes please").await;
    let plan = of_type(&frames, "plan")[0]["plan"].clone();
    assert_eq!(plan["steps"][4]["status"], "cancelled");

    // Propose a move, then change the plan directly before answering.
    let frames = ana.turn("k3", "push the buddy step to Dec 2").await;
    let stale = of_type(&frames, "proposal")[0]["proposal"].clone();
    let frames = ana.turn("k4", "done with order laptop").await;
    assert_eq!(
        of_type(&frames, "plan")[0]["plan"]["steps"][0]["status"],
        "completed",
        "status updates apply at once"
    );
    let frames = ana.turn("k5", "yes").await;
    let text = reply(&frames);
    assert!(text.starts_with("That proposal is out of date"), "{text}");
    ana.send(json!({"type": "confirm", "proposal_id": stale["id"], "accept": true}))
        .await;
    let answer = ana.until("proposal").await.last().unwrap().clone();
    assert_eq!(
        answer["proposal"]["status"], "stale",
        "an answered proposal shows its outcome"
    );
    let stored = app
        .app
        .store
        .get_plan(&steward::user::UserId::parse("ana").unwrap(), steward::plan::PlanId(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        due(&serde_json::to_value(&stored).unwrap(), "assign_buddy"),
        "2026-11-27T08:00:00Z"
    );
}

#[tokio::test]
async fn a_no_declines_and_missing_details_are_asked_one_at_a_time() {
    let app = app().await;
    let mut bo = app.connect("bo").await;
    assert_eq!(reply(&bo.turn("1", "plan a trip").await), "Where are you going?");
    assert_eq!(reply(&bo.turn("2", "Lisbon and Porto").await), "When do you leave?");
    let frames = bo.turn("3", "May 4").await;
    assert!(
        reply(&frames).starts_with("To get you to Lisbon and Porto from May 4, 2027, I'll:"),
        "{}",
        reply(&frames)
    );
    let frames = bo.turn("4", "no, don't do that").await;
    assert_eq!(reply(&frames), "OK, I won't make that change.");
    assert_eq!(of_type(&frames, "proposal")[0]["proposal"]["status"], "declined");
    assert!(
        app.app
            .store
            .list_plans(&steward::user::UserId::parse("bo").unwrap())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        reply(&bo.turn("5", "yes").await),
        "There is nothing waiting for your confirmation right now."
    );
}

#[tokio::test]
async fn a_configured_model_proposes_from_templates_with_checked_slots_and_the_same_confirmation_rules() {
    use steward::llm::scripted::{Script, ScriptedModel};
    let model = Arc::new(ScriptedModel::new(vec![
        Script::tool(
            "t1",
            "plan_from_template",
            json!({"kind": "product_launch", "slots": {"product": "Nimbus", "launch_date": "next spring"}}),
        ),
        Script::tool(
            "t2",
            "plan_from_template",
            json!({"kind": "product_launch", "slots": {"product": "Nimbus"}}),
        ),
        Script::tool(
            "t3",
            "plan_from_template",
            json!({"kind": "product_launch", "slots": {"product": "Nimbus", "launch_date": "2027-03-03"}}),
        ),
        Script::text("I can set up the Nimbus launch; shall I?"),
    ]));
    let app = TestApp::with(model.clone())
        .config(|c| {
            c.confirm = ConfirmConfig::default();
            c.time_zone = "Europe/Berlin".into();
        })
        .clock(clock_from(NOW))
        .spawn()
        .await;
    let mut ana = app.connect("ana").await;
    let frames = ana.turn("1", "plan the launch of Nimbus on March 3").await;
    let results: Vec<String> = model.requests()[3]
        .messages
        .iter()
        .filter_map(|m| match m {
            steward::conversation::Message::Tool { content, .. } => Some(content.clone()),
            _ => None,
        })
        .collect();
    assert!(
        results[0].contains("slot `launch_date` must be a date as YYYY-MM-DD, not `next spring`"),
        "{}",
        results[0]
    );
    assert!(
        results[1].contains("slot `launch_date` is missing; ask the user: When should Nimbus launch?"),
        "{}",
        results[1]
    );
    assert!(results[2].contains("\"awaiting_confirmation\":true"), "{}", results[2]);
    assert!(
        model.requests()[0]
            .system
            .contains("\nproduct_launch: product, launch_date\n")
    );
    assert!(of_type(&frames, "plan").is_empty());
    assert_eq!(of_type(&frames, "proposal").len(), 1);
    // The model cannot confirm for the user: only the user's yes applies it.
    let frames = ana.turn("2", "yes").await;
    let plan = &of_type(&frames, "plan")[0]["plan"];
    assert_eq!(plan["title"], "Launch Nimbus");
    assert_eq!(due(plan, "launch"), "2027-03-03T08:00:00Z");
}

#[tokio::test]
async fn what_steward_says_comes_from_the_chat_templates_a_deployment_edits() {
    let dir = tempfile::tempdir().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/chat");
    let replies = std::fs::read_to_string(root.join("replies.j2"))
        .unwrap()
        .replace("Shall I set this up?", "Reply yes to start.")
        .replace("OK, I won't make that change.", "Fine, left as it was.");
    std::fs::write(dir.path().join("replies.j2"), replies).unwrap();
    let changes = std::fs::read_to_string(root.join("changes.j2"))
        .unwrap()
        .replace("Move “{{ m.step }}”", "Shift “{{ m.step }}”");
    std::fs::write(dir.path().join("changes.j2"), changes).unwrap();
    let app = TestApp::with(engine())
        .config(|c| {
            c.confirm = ConfirmConfig::default();
            c.time_zone = "Europe/Berlin".into();
            c.chat_templates_dir = dir.path().to_owned();
        })
        .clock(clock_from(NOW))
        .spawn()
        .await;
    let mut ana = app.connect("ana").await;
    let frames = ana.turn("g1", "help me onboard Ana Souza, she starts December 1").await;
    assert!(reply(&frames).ends_with("Reply yes to start."), "{}", reply(&frames));
    ana.turn("g2", "yes").await;
    let frames = ana.turn("m1", "move the orientation to Friday").await;
    let text = reply(&frames);
    assert!(text.starts_with("Shift “First-day orientation"), "{text}");
    assert_eq!(reply(&ana.turn("m2", "no").await), "Fine, left as it was.");
}

#[tokio::test]
async fn a_user_far_east_of_utc_reads_every_date_on_the_day_they_said() {
    // Sunday Nov 22, 21:00 in Sydney; 09:00 there is 22:00 the day before in UTC.
    let app = TestApp::with(engine())
        .config(|c| {
            c.confirm = ConfirmConfig::default();
            c.time_zone = "Australia/Sydney".into();
        })
        .clock(clock_from(NOW))
        .spawn()
        .await;
    let mut ana = app.connect("ana").await;
    let text = reply(&ana.turn("g1", "help me onboard Ana Souza, she starts December 1").await);
    assert!(
        text.contains("First-day orientation with Ana Souza — due Tue Dec 1"),
        "{text}"
    );
    let frames = ana.turn("g2", "yes").await;
    let plan = &of_type(&frames, "plan")[0]["plan"];
    assert_eq!(due(plan, "orientation"), "2026-11-30T22:00:00Z");
    let text = reply(&frames);
    assert!(
        text.contains("First-day orientation with Ana Souza — due Tue Dec 1"),
        "{text}"
    );
    let text = reply(&ana.turn("m1", "move the orientation to Friday").await);
    assert_eq!(
        text,
        "Move “First-day orientation with Ana Souza” from Tue Dec 1 to Fri Nov 27. Note: “First-day orientation \
         with Ana Souza” would then be due before “Set up the desk and test the hardware” (due Mon Nov 30), which it \
         waits for. Shall I go ahead?"
    );
    let text = reply(&ana.turn("m2", "yes").await);
    assert!(
        text.contains("First-day orientation with Ana Souza — due Fri Nov 27"),
        "{text}"
    );
    let text = reply(&ana.turn("h1", "what changed in the onboarding plan?").await);
    assert!(
        text.contains("- Sun Nov 22 21:00 by user: Move “First-day orientation"),
        "{text}"
    );
    assert!(text.contains("from Tue Dec 1 to Fri Nov 27"), "{text}");
    assert_eq!(
        reply(&ana.turn("l1", "list my plans").await),
        "Your plans:\n- Onboard Ana Souza (p1) — 0/7 done, next: Order laptop and equipment for Ana Souza\n"
    );
}
