//! The contract between what the model is told and what the server
//! accepts: every tool's JSON Schema (derived from its argument type)
//! accepts what the type accepts, and both refuse unknown fields and wrong
//! types. Checked with a JSON Schema validator, on typed values serialized
//! and on argument documents as a model would write them.

use super::*;
use crate::plan::snapshot::{SnapshotItem, SnapshotStatus};
use crate::plan::{Objective, Op, PlanId, StepStatus, ToolBinding};
use crate::preferences::{Channels, DigestBody, QuietHoursBody};
use crate::triggers::Frequency;
use chrono::{TimeZone, Utc};
use serde_json::json;

fn templates() -> Arc<Templates> {
    Arc::new(Templates::built_in().unwrap())
}

/// Checks `tool`'s schema against its argument type: every document in
/// `valid` is accepted by both, every one in `invalid` refused by both.
fn check<T: Tool>(tool: &T, valid: &[Value], invalid: &[Value]) {
    let schema = tool.parameters();
    let validator = jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{}: {e}", T::NAME));
    // What the model is sent is looser, never stricter.
    let compact = jsonschema::validator_for(&super::compact_schema(&schema)).unwrap();
    for doc in valid {
        let errors: Vec<String> = compact.iter_errors(doc).map(|e| e.to_string()).collect();
        assert!(
            errors.is_empty(),
            "{}: the model's schema refuses {doc}: {errors:?}",
            T::NAME
        );
        let parsed = serde_json::from_value::<T::Args>(doc.clone());
        assert!(
            parsed.is_ok(),
            "{}: the type refuses {doc}: {:?}",
            T::NAME,
            parsed.err()
        );
        let errors: Vec<String> = validator.iter_errors(doc).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{}: the schema refuses {doc}: {errors:?}", T::NAME);
    }
    for doc in invalid {
        assert!(
            serde_json::from_value::<T::Args>(doc.clone()).is_err(),
            "{}: the type accepts {doc}",
            T::NAME
        );
        assert!(!validator.is_valid(doc), "{}: the schema accepts {doc}", T::NAME);
    }
    // Every valid document with an extra field: refused by both.
    for doc in valid {
        let mut extra = doc.clone();
        if let Some(object) = extra.as_object_mut() {
            object.insert("user".into(), json!("mallory"));
            assert!(serde_json::from_value::<T::Args>(extra.clone()).is_err(), "{}", T::NAME);
            assert!(!validator.is_valid(&extra), "{}: the schema accepts {extra}", T::NAME);
        }
    }
}

/// Every operation, with every field it takes, as the server would write it.
fn every_op() -> Vec<Op> {
    let due = Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap();
    vec![
        Op::AddStep {
            id: Some("badge".into()),
            title: "Print badge".into(),
            depends_on: vec!["laptop".into()],
            due_at: Some(due),
            after: Some("laptop".into()),
            status: Some(StepStatus::Pending),
            tool: Some(ToolBinding {
                name: "http_request".into(),
                args: json!({"url": "https://example.com"}),
            }),
            checks: Some("laptop".into()),
        },
        Op::AddStep {
            id: None,
            title: "Minimal".into(),
            depends_on: vec![],
            due_at: None,
            after: None,
            status: None,
            tool: None,
            checks: None,
        },
        Op::UpdateStep {
            step: "laptop".into(),
            title: Some("Order a laptop".into()),
            depends_on: Some(vec![]),
            due_at: Some(Some(due)),
            result: Some("ordered".into()),
        },
        Op::UpdateStep {
            step: "laptop".into(),
            title: None,
            depends_on: None,
            due_at: Some(None),
            result: None,
        },
        Op::RemoveStep { step: "lunch".into() },
        Op::Reorder {
            order: vec!["b".into(), "a".into()],
        },
        Op::SetStatus {
            step: "laptop".into(),
            status: StepStatus::Completed,
            result: Some("MacBook, #1234".into()),
        },
        Op::RenamePlan { title: "New".into() },
        Op::CancelPlan {},
        Op::Reopen {
            step: "laptop".into(),
            reason: Some("the check failed".into()),
        },
    ]
}

#[test]
fn update_plan_accepts_every_operation_the_type_takes_in_both_forms() {
    let typed = [
        update_plan::Args {
            plan_id: Some(PlanId(1)),
            expected_version: Some(4),
            explanation: Some("laptop arrived".into()),
            ops: Some(every_op()),
            ..Default::default()
        },
        update_plan::Args {
            title: Some("Onboard Ana".into()),
            goal: Some("Ana is ready on day one".into()),
            objective: Some(Objective {
                kind: "onboard_employee".into(),
                slots: json!({"name": "Ana"}).as_object().cloned().unwrap_or_default(),
            }),
            explanation: Some("new hire".into()),
            ops: Some(vec![]),
            ..Default::default()
        },
        update_plan::Args {
            explanation: Some("progress".into()),
            plan: Some(vec![SnapshotItem {
                step: "Write changelog".into(),
                status: SnapshotStatus::InProgress,
            }]),
            ..Default::default()
        },
    ];
    let mut valid: Vec<Value> = typed.iter().map(|a| serde_json::to_value(a).unwrap()).collect();
    valid.extend([
        json!({"plan_id": "p1", "expected_version": 4, "explanation": "x",
               "ops": [{"op": "update_step", "step": "a", "due_at": "2026-12-01"}]}),
        json!({"plan": [{"step": "Ship it", "status": "completed"}]}),
    ]);
    check(
        &update_plan::UpdatePlan,
        &valid,
        &[
            json!({"plan_id": 7}),
            json!({"ops": [{"op": "explode"}]}),
            json!({"ops": [{"op": "add_step", "title": "x", "bogus": 1}]}),
            json!({"ops": [{"op": "set_status", "step": "a", "status": "done"}]}),
            json!({"plan": [{"step": "x", "status": "completed", "extra": true}]}),
            json!({"expected_version": -1}),
        ],
    );
}

#[test]
fn the_other_tools_schemas_match_their_argument_types() {
    let at = "2026-11-24T09:00:00+01:00";
    check(
        &show_plan::ShowPlan,
        &[json!({"plan_id": "p3"})],
        &[json!({}), json!({"plan_id": 3})],
    );
    check(
        &list_plans::ListPlans,
        &[json!({}), json!({"include_closed": true})],
        &[json!({"include_closed": "yes"})],
    );
    check(
        &plan_history::PlanHistory,
        &[json!({"plan_id": "p1"}), json!({"plan_id": "p1", "limit": 5})],
        &[json!({"limit": 5}), json!({"plan_id": "p1", "limit": -2})],
    );
    check(
        &undo::Undo,
        &[json!({}), json!({"plan_id": "p1"})],
        &[json!({"plan_id": 1}), json!({"plan": "p1"})],
    );
    check(
        &undo::Redo,
        &[json!({}), json!({"plan_id": "p2"})],
        &[json!({"plan_id": []})],
    );
    check(
        &remind::Remind,
        &[
            json!({"text": "call the recruiter", "at": at}),
            json!({"text": "stretch", "at": at, "lapse_on_reply": true}),
        ],
        &[json!({"text": "x"}), json!({"text": "x", "at": 5})],
    );
    let typed = set_preferences::Args {
        time_zone: Some("Europe/Berlin".into()),
        quiet_hours: Some(QuietHoursBody {
            start: "22:00".into(),
            end: "07:00".into(),
        }),
        clear_quiet_hours: true,
        digest: Some(DigestBody {
            frequency: Frequency::Weekly,
            weekday: Some("monday".into()),
            time: Some("08:00".into()),
        }),
        channels: Some(Channels {
            push: false,
            email: true,
        }),
    };
    check(
        &set_preferences::SetPreferences,
        &[
            serde_json::to_value(typed).unwrap(),
            json!({"digest": {"frequency": "off"}}),
            json!({}),
        ],
        &[
            json!({"digest": {"frequency": "hourly"}}),
            json!({"channels": {"sms": true}}),
            json!({"quiet_hours": {"start": "22:00"}}),
        ],
    );
    check(
        &plan_from_template::PlanFromTemplate { templates: templates() },
        &[
            json!({"kind": "onboard_employee", "slots": {"name": "Ana Souza", "start_date": "2026-12-01"}}),
            json!({"kind": "trip", "slots": {"destinations": ["Lisbon", "Porto"], "start_date": "2027-05-04"}}),
        ],
        &[json!({"kind": "trip"}), json!({"kind": 5, "slots": {}})],
    );
}

#[test]
fn the_registry_lists_each_tool_once_with_an_object_schema() {
    let registry = registry(templates(), &crate::actions::Actions::built_in());
    let specs = registry.specs();
    let names: Vec<&str> = specs.iter().map(|s| s.name).collect();
    assert_eq!(
        names,
        [
            "update_plan",
            "load_tools",
            "show_plan",
            "list_plans",
            "plan_history",
            "plan_from_template",
            "undo",
            "redo",
            "remind",
            "set_preferences"
        ]
    );
    for spec in specs.iter() {
        assert_eq!(spec.parameters["type"], "object", "{}", spec.name);
        assert!(
            !spec.parameters.to_string().contains("$ref"),
            "{}: subschemas are inlined",
            spec.name
        );
    }
}

#[tokio::test]
async fn a_bare_date_from_the_model_is_that_day_in_the_users_zone() {
    use crate::conversation::ToolCall;
    use crate::plan::Actor;
    use crate::service::{Session, testing};
    use crate::store::{SledStore, Store};
    use crate::user::UserId;
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).unwrap());
    let service = testing::service(store.clone(), crate::clock::system());
    let ana = UserId::parse("ana").unwrap();
    store.ensure_user(&ana).await.unwrap();
    // Honolulu is UTC-10: 09:00 UTC on Dec 18 would be the evening of Dec 17 there.
    let session = Session {
        user: ana.clone(),
        actor: Actor::Model,
        tz: "Pacific/Honolulu".parse().unwrap(),
    };
    let call = ToolCall {
        id: "c1".into(),
        name: "update_plan".into(),
        arguments: json!({"title": "Trip", "explanation": "a trip", "ops": [
            {"op": "add_step", "id": "pack", "title": "Pack", "due_at": "2026-12-18"},
            {"op": "add_step", "id": "fly", "title": "Fly", "due_at": "2026-12-19T06:00:00Z"}]})
        .to_string(),
    };
    let ctx = ToolContext {
        service: &service,
        session: &session,
    };
    let out = registry(templates(), &crate::actions::Actions::built_in())
        .call(ctx, &call)
        .await
        .unwrap();
    assert!(
        out.content.contains("\"awaiting_confirmation\":true"),
        "{}",
        out.content
    );
    // The model reads the proposal in words, not its changes again.
    let said: serde_json::Value = serde_json::from_str(&out.content).unwrap();
    assert!(said["proposal"]["summary"].as_str().unwrap().contains("Pack"), "{said}");
    assert_eq!(said["proposal"].get("changes"), None, "{said}");
    let proposal = store.open_proposals(&ana).await.unwrap().pop().unwrap();
    let Some(crate::proposal::Action::Create { plan }) = &proposal.action else {
        panic!("{:?}", proposal.action)
    };
    let due = |id: &str| plan.step(id).unwrap().due_at.unwrap().to_rfc3339();
    assert_eq!(due("pack"), "2026-12-18T19:00:00+00:00", "09:00 in Honolulu");
    assert_eq!(due("fly"), "2026-12-19T06:00:00+00:00", "an instant stays as sent");
    // Once decided, the stored proposal keeps its words and changes, not the
    // copy of the plan it would have made.
    let decided = service.decide(&session, Some(&proposal.id), true).await.unwrap();
    assert!(
        matches!(decided, crate::service::Decision::Applied { created: true, .. }),
        "{decided:?}"
    );
    let stored = store.get_proposal(&ana, &proposal.id).await.unwrap().unwrap();
    assert_eq!(stored.status, crate::proposal::ProposalStatus::Accepted);
    assert_eq!(stored.action, None);
    assert_eq!(stored.changes, proposal.changes);
    assert_eq!(stored.summary, proposal.summary);
}
