//! Unit tests of the interpreter: every command, every template kind, dates
//! in several time zones; phrasings by family in [`phrasings`], readings
//! that must never act in [`unasked`], odd input and fuzzing in [`robustness`].

use super::*;
use chrono::TimeZone;
use serde_json::json;

mod phrasings;
mod robustness;
mod unasked;

fn at(tz: Tz, utc: &str) -> DateTime<Tz> {
    DateTime::parse_from_rfc3339(utc).unwrap().with_timezone(&tz)
}

fn run(text: &str, now: DateTime<Tz>) -> Value {
    let templates = Templates::built_in().unwrap();
    serde_json::to_value(interpret(text, now, &templates)).unwrap()
}

/// How `text` reads as an answer while a `kind` goal holding `slots`
/// waits for its `asked` slot, at [`berlin`]'s time.
fn answered(kind: &str, asked: &str, slots: Value, text: &str) -> Value {
    let templates = Templates::built_in().unwrap();
    let pending = Pending {
        kind: kind.into(),
        asked: asked.into(),
        slots: serde_json::from_value(slots).unwrap(),
    };
    serde_json::to_value(interpret_in(text, berlin(), &templates, Some(&pending))).unwrap()
}

fn berlin() -> DateTime<Tz> {
    at(chrono_tz::Europe::Berlin, "2026-11-22T10:00:00Z")
}

#[test]
fn every_command_is_recognised() {
    let cases = [
        (
            "show my onboarding plan",
            json!({"route": "command", "command": "show_plan", "args": {"plan": "onboarding"}}),
        ),
        (
            "list my plans",
            json!({"route": "command", "command": "list_plans", "args": {}}),
        ),
        (
            "mark the laptop step as done",
            json!({"route": "command", "command": "complete_step", "args": {"step": "laptop"}}),
        ),
        (
            "start the orientation",
            json!({"route": "command", "command": "start_step", "args": {"step": "orientation"}}),
        ),
        (
            "skip the welcome lunch",
            json!({"route": "command", "command": "skip_step", "args": {"step": "welcome lunch"}}),
        ),
        (
            "move the orientation to Friday",
            json!({"route": "command", "command": "reschedule_step", "args": {"step": "orientation", "due": "2026-11-27"}}),
        ),
        (
            "add a step: book a meeting room by Dec 3",
            json!({"route": "command", "command": "add_step", "args": {"title": "book a meeting room", "due": "2026-12-03"}}),
        ),
        (
            "remove the badge step",
            json!({"route": "command", "command": "remove_step", "args": {"step": "badge"}}),
        ),
        (
            "cancel the trip plan",
            json!({"route": "command", "command": "cancel_plan", "args": {"plan": "trip"}}),
        ),
        (
            "cancel Reykjavik trip",
            json!({"route": "command", "command": "cancel_plan", "args": {"plan": "reykjavik trip"}}),
        ),
        ("cancel culture is wild", json!({"route": "chat"})),
        ("undo", json!({"route": "command", "command": "undo", "args": {}})),
        (
            "what changed in the launch plan?",
            json!({"route": "command", "command": "history", "args": {"plan": "launch"}}),
        ),
        (
            "remind me tomorrow at 9 to call the recruiter",
            json!({"route": "command", "command": "remind", "args": {"text": "call the recruiter", "at": "2026-11-23T09:00:00+01:00"}}),
        ),
        ("help", json!({"route": "command", "command": "help", "args": {}})),
        (
            "send me a weekly digest on Mondays at 8",
            json!({"route": "command", "command": "digest", "args": {"frequency": "weekly", "weekday": "monday", "time": "08:00"}}),
        ),
        (
            "email me a daily summary at 7:30",
            json!({"route": "command", "command": "digest", "args": {"frequency": "daily", "time": "07:30"}}),
        ),
        (
            "I'd like the digest every friday",
            json!({"route": "command", "command": "digest", "args": {"frequency": "weekly", "weekday": "friday"}}),
        ),
        (
            "no more digests",
            json!({"route": "command", "command": "digest", "args": {"frequency": "off"}}),
        ),
        (
            "stop the digest please",
            json!({"route": "command", "command": "digest", "args": {"frequency": "off"}}),
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(run(text, berlin()), expected, "{text}");
    }
}

#[test]
fn every_template_kind_is_recognised_with_its_slots() {
    let cases = [
        (
            "onboard my new hire Ana Souza starting Dec 1",
            json!({"kind": "onboard_employee", "slots": {"name": "Ana Souza", "start_date": "2026-12-01"}}),
        ),
        (
            "plan the launch of Nimbus on March 3",
            json!({"kind": "product_launch", "slots": {"product": "Nimbus", "launch_date": "2027-03-03"}}),
        ),
        (
            "plan a trip to Lisbon, Porto and Madrid from May 4",
            json!({"kind": "trip", "slots": {"destinations": ["Lisbon", "Porto", "Madrid"], "start_date": "2027-05-04"}}),
        ),
        (
            "prepare the team's annual budget by Jan 15",
            json!({"kind": "annual_budget", "slots": {"due_date": "2027-01-15"}}),
        ),
        (
            "close the books for November",
            json!({"kind": "month_end_close", "slots": {"period": "2026-11"}}),
        ),
        (
            "onboard Acme Corp, go-live Feb 1",
            json!({"kind": "customer_onboarding", "slots": {"customer": "Acme Corp", "go_live_date": "2027-02-01"}}),
        ),
        (
            "schedule my blood test, MRI and cardiology check",
            json!({"kind": "medical_tests", "slots": {"tests": ["blood test", "mri", "cardiology check"]}}),
        ),
        (
            "deploy the billing microservice next Tuesday",
            json!({"kind": "deploy_service", "slots": {"service": "billing microservice", "date": "2026-11-24"}}),
        ),
        (
            "research AI agent architectures, report by Friday",
            json!({"kind": "research_report", "slots": {"topic": "AI agent architectures", "due_date": "2026-11-27"}}),
        ),
    ];
    for (text, expected) in cases {
        let got = run(text, berlin());
        assert_eq!(got["route"], "new_goal", "{text}: {got}");
        assert_eq!(json!({"kind": got["kind"], "slots": got["slots"]}), expected, "{text}");
    }
}

#[test]
fn confirmations_and_chat_are_told_apart() {
    for (text, accept) in [
        ("yes", true),
        ("sounds good, go ahead", true),
        ("Yes please!", true),
        ("nope", false),
        ("no, don't do that", false),
        ("not now", false),
    ] {
        assert_eq!(
            run(text, berlin()),
            json!({"route": "confirmation", "accept": accept}),
            "{text}"
        );
    }
    for text in [
        "thanks!",
        "how was your weekend?",
        "what's the weather like in Lisbon?",
        "I had a long day",
    ] {
        assert_eq!(run(text, berlin()), json!({"route": "chat"}), "{text}");
    }
}

#[test]
fn tomorrow_is_the_users_local_tomorrow() {
    // 23:30 UTC on Nov 22 is already Nov 23 in Kolkata (05:00) but still Nov 22 in New York.
    let utc = "2026-11-22T23:30:00Z";
    let due = |tz: Tz| run("move the orientation to tomorrow", at(tz, utc))["args"]["due"].clone();
    assert_eq!(due(chrono_tz::Asia::Kolkata), "2026-11-24");
    assert_eq!(due(chrono_tz::America::New_York), "2026-11-23");
    assert_eq!(due(chrono_tz::UTC), "2026-11-23");
    let remind = run(
        "remind me tomorrow at 9 to call the recruiter",
        at(chrono_tz::Australia::Lord_Howe, utc),
    );
    assert_eq!(remind["args"]["at"], "2026-11-24T09:00:00+11:00");
    let remind = run(
        "remind me tomorrow at 9 to call the recruiter",
        at(chrono_tz::America::New_York, utc),
    );
    assert_eq!(remind["args"]["at"], "2026-11-23T09:00:00-05:00");
}

#[test]
fn reminders_can_be_relative_to_now() {
    let now = berlin(); // 11:00 in Berlin
    let cases = [
        (
            "remind me in 10 minutes to call the IT desk",
            "2026-11-22T11:10:00+01:00",
            "call the IT desk",
        ),
        (
            "remind me to call the IT desk in 2 hours",
            "2026-11-22T13:00:00+01:00",
            "call the IT desk",
        ),
        (
            "remind me in an hour to stretch",
            "2026-11-22T12:00:00+01:00",
            "stretch",
        ),
        (
            "remind me in 1 min to check the oven",
            "2026-11-22T11:01:00+01:00",
            "check the oven",
        ),
    ];
    for (text, at, what) in cases {
        let got = run(text, now);
        assert_eq!(got["command"], "remind", "{text}: {got}");
        assert_eq!(got["args"]["at"], at, "{text}");
        assert_eq!(got["args"]["text"], what, "{text}");
    }
}

#[test]
fn ranges_and_relative_dates_fill_trip_slots() {
    let got = run(
        "plan a trip to Rome and Florence from December 20 to January 3",
        berlin(),
    );
    assert_eq!(
        got["slots"],
        json!({"destinations": ["Rome", "Florence"], "start_date": "2026-12-20", "end_date": "2027-01-03"})
    );
    let got = run("help me onboard Ana, she starts in two weeks", berlin());
    assert_eq!(got["slots"], json!({"name": "Ana", "start_date": "2026-12-06"}));
    let _ = chrono_tz::UTC.with_ymd_and_hms(2026, 1, 1, 0, 0, 0);
}

/// Asserts the reading of each message (Berlin, Sunday 2026-11-22 11:00).
fn expect_all(cases: &[(&str, Value)]) {
    for (text, expected) in cases {
        assert_eq!(&run(text, berlin()), expected, "{text}");
    }
}

fn goal(kind: &str, slots: Value) -> Value {
    json!({"route": "new_goal", "kind": kind, "slots": slots})
}

fn command(name: &str, args: Value) -> Value {
    json!({"route": "command", "command": name, "args": args})
}

/// The reading's route and command name ("command:complete_step", "chat").
fn route_of(text: &str) -> String {
    let got = run(text, berlin());
    match (got["route"].as_str(), got["command"].as_str(), got["kind"].as_str()) {
        (Some(r), Some(c), _) => format!("{r}:{c}"),
        (Some(r), None, Some(k)) => format!("{r}:{k}"),
        (Some(r), ..) => r.to_owned(),
        _ => String::new(),
    }
}

/// Asserts that no message is read as `reading` (a route or
/// "command:<name>" or "new_goal:<kind>").
fn never(reading: &str, texts: &[&str]) {
    for text in texts {
        assert_ne!(route_of(text), reading, "{text}");
    }
}
