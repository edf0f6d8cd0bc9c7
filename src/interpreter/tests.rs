//! Unit tests of the interpreter: every command, every template kind, dates
//! in several time zones.

use super::*;
use chrono::TimeZone;
use serde_json::json;

fn at(tz: Tz, utc: &str) -> DateTime<Tz> {
    DateTime::parse_from_rfc3339(utc).unwrap().with_timezone(&tz)
}

fn run(text: &str, now: DateTime<Tz>) -> Value {
    let templates = Templates::built_in().unwrap();
    serde_json::to_value(interpret(text, now, &templates)).unwrap()
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

#[test]
fn customers_are_onboarded_as_customers_and_goal_kinds_name_goals() {
    expect_all(&[
        ("onboard a new client please", goal("customer_onboarding", json!({}))),
        (
            "kick off onboarding for the Meridian account, target go-live friday 4 dec",
            goal(
                "customer_onboarding",
                json!({"customer": "Meridian", "go_live_date": "2026-12-04"}),
            ),
        ),
        (
            "Globex wants to be live by new year's day, let's start their onboarding",
            goal(
                "customer_onboarding",
                json!({"customer": "Globex", "go_live_date": "2027-01-01"}),
            ),
        ),
        // Negative: an employee's accounts are not a customer.
        (
            "onboard Ana Souza, she starts Dec 1",
            goal(
                "onboard_employee",
                json!({"name": "Ana Souza", "start_date": "2026-12-01"}),
            ),
        ),
        ("start the month-end close", goal("month_end_close", json!({}))),
        (
            "start the orientation",
            command("start_step", json!({"step": "orientation"})),
        ),
        (
            "rename the Globex onboarding to Globex Rollout",
            command(
                "rename_plan",
                json!({"plan": "globex onboarding", "title": "Globex Rollout"}),
            ),
        ),
        (
            "can you retitle my Bali trip as Family Holiday 2027",
            command(
                "rename_plan",
                json!({"plan": "bali trip", "title": "Family Holiday 2027"}),
            ),
        ),
        // Negative: a step keeps being a step.
        (
            "rename the kickoff call to Kickoff with Hooli",
            command(
                "rename_step",
                json!({"step": "kickoff call", "title": "Kickoff with Hooli"}),
            ),
        ),
        ("please cancel this whole plan", command("cancel_plan", json!({}))),
        (
            "call this plan 'Q2 Close' instead",
            command("rename_plan", json!({"title": "Q2 Close"})),
        ),
        (
            "any tips on writing a good research report intro?",
            json!({"route": "chat"}),
        ),
        ("cancel culture is wild honestly", json!({"route": "chat"})),
    ]);
}

#[test]
fn goal_phrasings_of_the_fifth_batch_fill_their_slots() {
    expect_all(&[
        (
            "we're rolling out the recommendation engine on 22 december",
            goal(
                "deploy_service",
                json!({"service": "recommendation engine", "date": "2026-12-22"}),
            ),
        ),
        (
            "need to push auth-service to prod on friday",
            goal(
                "deploy_service",
                json!({"service": "auth-service", "date": "2026-11-27"}),
            ),
        ),
        (
            "ok so we're shipping ledger-service to production on March 1st, help",
            goal(
                "deploy_service",
                json!({"service": "ledger-service", "date": "2027-03-01"}),
            ),
        ),
        (
            "help me plan a weekend in Barcelona, leaving friday and back sunday",
            goal(
                "trip",
                json!({"destinations": ["Barcelona"], "start_date": "2026-11-27", "end_date": "2026-11-29"}),
            ),
        ),
        (
            "going to Nairobi next monday through friday for work, plan it pls",
            goal(
                "trip",
                json!({"destinations": ["Nairobi"], "start_date": "2026-11-23", "end_date": "2026-11-27"}),
            ),
        ),
        (
            "visiting mum in Edinburgh from 23 dec till the 28th",
            goal(
                "trip",
                json!({"destinations": ["Edinburgh"], "start_date": "2026-12-23", "end_date": "2026-12-28"}),
            ),
        ),
        ("I want to plan a trip", goal("trip", json!({}))),
        (
            "Marketing budget for FY2027, due Dec 31",
            goal(
                "annual_budget",
                json!({"team": "marketing", "fiscal_year": "2027", "due_date": "2026-12-31"}),
            ),
        ),
        (
            "yearly budget for the IT team, fiscal 2028",
            goal("annual_budget", json!({"team": "it", "fiscal_year": "2028"})),
        ),
        (
            "we need to close October, deadline is December 7",
            goal(
                "month_end_close",
                json!({"period": "2026-10", "due_date": "2026-12-07"}),
            ),
        ),
        (
            "my cardiologist ordered a sleep study and an echocardiogram, can you organise them",
            goal("medical_tests", json!({"tests": ["sleep study", "echocardiogram"]})),
        ),
        (
            "help me get my ECG and blood work done",
            goal("medical_tests", json!({"tests": ["ecg", "blood work"]})),
        ),
        (
            "research report: urban heat islands. deadline 1 dec",
            goal(
                "research_report",
                json!({"topic": "urban heat islands", "due_date": "2026-12-01"}),
            ),
        ),
        (
            "launch day for Trailhead is two weeks from tomorrow, can you make a plan",
            goal(
                "product_launch",
                json!({"product": "Trailhead", "launch_date": "2026-12-07"}),
            ),
        ),
        (
            "onboard Kestrel Bank, go live end of next month",
            goal(
                "customer_onboarding",
                json!({"customer": "Kestrel Bank", "go_live_date": "2026-12-31"}),
            ),
        ),
    ]);
}

#[test]
fn command_phrasings_of_the_fifth_batch_are_recognised() {
    expect_all(&[
        ("👍", json!({"route": "confirmation", "accept": true})),
        ("not right now, no", json!({"route": "confirmation", "accept": false})),
        (
            "ok so the Sakura deal fell apart, cancel the Sakura Robotics onboarding",
            command("cancel_plan", json!({"plan": "sakura robotics onboarding"})),
        ),
        (
            "in 2 hours remind me to call the plumber",
            command(
                "remind",
                json!({"text": "call the plumber", "at": "2026-11-22T13:00:00+01:00"}),
            ),
        ),
        (
            "remind me tonight at 8 to water the plants",
            command(
                "remind",
                json!({"text": "water the plants", "at": "2026-11-22T20:00:00+01:00"}),
            ),
        ),
        (
            "let's try the dns switch one more time",
            command("retry_step", json!({"step": "dns switch"})),
        ),
        (
            "have another go at the vendor call",
            command("retry_step", json!({"step": "vendor call"})),
        ),
        (
            "let's not bother with the exit survey, skip it",
            command("skip_step", json!({"step": "exit survey"})),
        ),
        (
            "flights are booked ✅",
            command("complete_step", json!({"step": "flights"})),
        ),
        (
            "reconciliation done – variance was 12 dollars, written off",
            command(
                "complete_step",
                json!({"step": "reconciliation", "result": "variance was 12 dollars, written off"}),
            ),
        ),
        ("all done", json!({"route": "chat"})),
        ("I'm a bit lost, how does this thing work", command("help", json!({}))),
        (
            "ctrl+z on the Lisbon trip",
            command("undo", json!({"plan": "lisbon trip"})),
        ),
        (
            "silence alerts between 1pm and 2pm, that's my lunch",
            command("set_quiet_hours", json!({"start": "13:00", "end": "14:00"})),
        ),
        (
            "can the dry run happen on monday instead?",
            command("reschedule_step", json!({"step": "dry run", "due": "2026-11-23"})),
        ),
        (
            "change the due date of audit prep to 2026-12-02",
            command("reschedule_step", json!({"step": "audit prep", "due": "2026-12-02"})),
        ),
        (
            "the bank reconciliation has to come before the statements",
            command(
                "add_dependency",
                json!({"step": "statements", "after": "bank reconciliation"}),
            ),
        ),
        (
            "couldn't get the venue, mark it as failed",
            command("fail_step", json!({"step": "venue"})),
        ),
        (
            "what does the trip look like so far",
            command("show_plan", json!({"plan": "trip"})),
        ),
    ]);
}

#[test]
fn an_answer_with_a_time_that_cannot_be_used_gets_a_question() {
    let templates = Templates::built_in().unwrap();
    let pending = Pending {
        kind: "deploy_service".into(),
        asked: "date".into(),
        slots: serde_json::from_value(json!({"service": "cache-service"})).unwrap(),
    };
    let read = |text: &str| serde_json::to_value(interpret_in(text, berlin(), &templates, Some(&pending))).unwrap();
    assert_eq!(read("2026-11-12"), json!({"route": "unclear", "problem": "time_past"}));
    assert_eq!(
        read("29/02/2027"),
        json!({"route": "unclear", "problem": "time_invalid"})
    );
    assert_eq!(
        read("2026-12-12"),
        goal(
            "deploy_service",
            json!({"service": "cache-service", "date": "2026-12-12"})
        )
    );
}

#[test]
fn a_template_dropped_into_the_directory_is_understood_without_code_changes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("move_house.toml"),
        r#"kind = "move_house"
title = "Move to {city}"
goal = "Live in {city} from {move_date}"
summary = "To move you to {city} by {move_date}"
keywords = ["move house", "moving house", "relocate", "relocating"]

[[slots]]
name = "city"
type = "text"
required = true
question = "Where are you moving?"
cues = ["to"]

[[slots]]
name = "move_date"
type = "date"
required = true
question = "When do you move?"
cues = ["on", "by"]

[[steps]]
id = "movers"
title = "Book movers"
due = "move_date - 14d"
"#,
    )
    .unwrap();
    let templates = Templates::load(dir.path()).unwrap();
    let got = serde_json::to_value(interpret(
        "help me relocate to Hamburg on March 1",
        berlin(),
        &templates,
    ))
    .unwrap();
    assert_eq!(
        got,
        json!({"route": "new_goal", "kind": "move_house", "slots": {"city": "Hamburg", "move_date": "2027-03-01"}})
    );
}

#[test]
fn no_input_makes_the_interpreter_panic() {
    use rand::Rng;
    let templates = Templates::built_in().unwrap();
    let fixed = [
        "",
        " ",
        "?",
        "ok ok add a step: ünïcödé by Dec 1",
        "İstanbul trip from Dec 1 to",
        "remind me to",
        "add a step:",
        "move  to Friday",
        "ＹＥＳ",
        "🚀 launch 🚀 on March 3",
        "remind me at 25:99 to x",
        "add ß step by tomorrow ,,,",
        "done with",
        "the 32nd of May",
        "in 99999999999 days",
    ];
    for text in fixed {
        let _ = interpret(text, berlin(), &templates);
    }
    let alphabet: Vec<char> = "aAbdeimnorstuyİß ü🚀,.:;-'0123456789".chars().collect();
    let words = [
        "add", "move", "to", "by", "remind", "me", "at", "step", "plan", "trip", "onboard", "dec", "1", "friday", "in",
        "two", "weeks", "yes", "no", "the", "from",
    ];
    let mut rng = rand::rng();
    for _ in 0..3000 {
        let mut text = String::new();
        for _ in 0..rng.random_range(0..12) {
            if rng.random_bool(0.7) {
                text.push_str(words[rng.random_range(0..words.len())]);
            } else {
                text.push(alphabet[rng.random_range(0..alphabet.len())]);
            }
            text.push(if rng.random_bool(0.8) { ' ' } else { ',' });
        }
        let _ = interpret(&text, berlin(), &templates);
    }
}

/// Property tests: any message, in any zone, at any moment, is interpreted
/// without a panic into something that serializes (`PROPTEST_CASES` for
/// long runs).
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn word() -> impl Strategy<Value = String> {
        let vocabulary = prop::sample::select(vec![
            "remind",
            "me",
            "in",
            "at",
            "on",
            "by",
            "to",
            "tomorrow",
            "yesterday",
            "next",
            "week",
            "friday",
            "dec",
            "december",
            "1",
            "31",
            "29",
            "feb",
            "2027",
            "25:00",
            "9am",
            "-5",
            "minutes",
            "hours",
            "onboard",
            "ana",
            "she",
            "starts",
            "launch",
            "budget",
            "plan",
            "show",
            "my",
            "done",
            "with",
            "move",
            "undo",
            "cancel",
            "yes",
            "no",
            "don't",
            "between",
            "22:00",
            "and",
            "07:00",
            "end",
            "of",
            "month",
            "é",
            "日本",
            "🙂",
        ]);
        prop_oneof![
            6 => vocabulary.prop_map(str::to_owned),
            1 => ".{0,12}",
            1 => "[0-9]{1,6}",
        ]
    }

    fn message() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => prop::collection::vec(word(), 0..12).prop_map(|w| w.join(" ")),
            1 => ".{0,120}",
        ]
    }

    proptest! {
        #![proptest_config(crate::config::proptest_config(512))]

        #[test]
        fn any_message_is_interpreted_into_json(
            text in message(),
            zone in prop::sample::select(vec!["UTC", "Australia/Sydney", "America/New_York", "Pacific/Kiritimati", "Asia/Kolkata"]),
            secs in 0i64..4_102_444_800,
        ) {
            let tz: Tz = zone.parse().unwrap();
            let now = chrono::Utc.timestamp_opt(secs, 0).unwrap().with_timezone(&tz);
            let templates = Templates::built_in().unwrap();
            let interpretation = interpret(&text, now, &templates);
            prop_assert!(serde_json::to_value(&interpretation).is_ok());
        }
    }
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

#[test]
fn a_step_is_finished_only_when_the_user_says_it_is() {
    never(
        "command:complete_step",
        &[
            "the report still isn't finished",
            "the deck must be done",
            "the slides will be done",
            "the report's not quite done",
            "not sure the flights were booked",
            "the invoice should have been paid",
            "I hope the contract was signed",
            "the flights are booked? 🤔",
            "report done?? 😬",
            "the audit and the whole quarterly report for the board done",
        ],
    );
    expect_all(&[
        (
            "the report is finished",
            command("complete_step", json!({"step": "report"})),
        ),
        (
            "flights are booked ✅",
            command("complete_step", json!({"step": "flights"})),
        ),
        ("slides done", command("complete_step", json!({"step": "slides"}))),
    ]);
}

#[test]
fn asking_whether_a_date_works_does_not_move_it() {
    never(
        "command:reschedule_step",
        &[
            "could the audit be done by the 15th?",
            "can the kickoff happen on monday, or is that too soon?",
        ],
    );
    expect_all(&[(
        "can the dry run happen on monday instead?",
        command("reschedule_step", json!({"step": "dry run", "due": "2026-11-23"})),
    )]);
}

#[test]
fn a_conditional_or_unnamed_plan_is_not_cancelled_from_a_tail_clause() {
    never(
        "command:cancel_plan",
        &[
            "if the client pulls out, scrap this plan",
            "worst case, drop the plan",
            "maybe next week, cancel the trip plan",
            "in case it rains, cancel the Bali trip",
        ],
    );
    never("command:rename_plan", &["if they agree, rename this plan to Go-live"]);
    expect_all(&[(
        "we lost the deal, delete the Soylent plan",
        command("cancel_plan", json!({"plan": "soylent"})),
    )]);
}

#[test]
fn a_yes_or_no_with_conditions_is_not_a_confirmation() {
    never(
        "confirmation",
        &[
            "yes but change the date to the 14th first, then go ahead",
            "yeah I'm not sure about this one, let me think",
            "no-one has booked the hotel yet, can you check?",
            "no-one replied",
            "ok?",
            "yes, and also add a step for the visa and move the flights",
        ],
    );
    expect_all(&[
        (
            "yes, that looks right — go ahead and create it",
            json!({"route": "confirmation", "accept": true}),
        ),
        (
            "no, hold off on that for now",
            json!({"route": "confirmation", "accept": false}),
        ),
        ("yes please", json!({"route": "confirmation", "accept": true})),
    ]);
}

#[test]
fn dates_and_facts_are_not_dependencies() {
    never(
        "command:add_dependency",
        &[
            "the kickoff has to happen before the 3rd",
            "the review has to be done before friday",
            "the party starts after dinner",
            "the conference happens after the launch",
        ],
    );
    expect_all(&[
        (
            "the bank reconciliation has to come before the statements",
            command(
                "add_dependency",
                json!({"step": "statements", "after": "bank reconciliation"}),
            ),
        ),
        (
            "make sure the press kit only happens after the positioning",
            command("add_dependency", json!({"step": "press kit", "after": "positioning"})),
        ),
        // A goal's verb said as a noun ("the launch") asks for no goal.
        ("the conference happens after the launch", json!({"route": "chat"})),
    ]);
}

#[test]
fn a_quoted_name_is_a_step_and_settings_change_only_when_asked() {
    expect_all(&[
        (
            "rename 'Draft the budget' to 'First draft'",
            command(
                "rename_step",
                json!({"step": "draft the budget", "title": "First draft"}),
            ),
        ),
        (
            "rename my trip plan to Summer in Lisbon",
            command("rename_plan", json!({"plan": "trip", "title": "Summer in Lisbon"})),
        ),
        ("turn off dnd", command("quiet_hours_off", json!({}))),
        ("quiet hours off", command("quiet_hours_off", json!({}))),
        ("switch off do-not-disturb", command("quiet_hours_off", json!({}))),
        (
            "no more quiet hours, I want pings whenever",
            command("quiet_hours_off", json!({})),
        ),
        (
            "the welcome email needs to happen a week earlier",
            command("shift_step", json!({"step": "welcome email", "days": -7})),
        ),
    ]);
    never(
        "command:quiet_hours_off",
        &["turn dnd on, I'm off to bed", "dnd till the end of the day"],
    );
    never("command:shift_step", &["the delivery will be two days later"]);
    // Washington state is Pacific, the city Eastern: no guess.
    never("command:set_timezone", &["I live in Washington"]);
}

#[test]
fn evening_times_and_weekdays_in_a_named_week() {
    expect_all(&[
        (
            "remind me tonight at 7:30 to call mum",
            command("remind", json!({"text": "call mum", "at": "2026-11-22T19:30:00+01:00"})),
        ),
        (
            "remind me tonight at 12 to lock up",
            command("remind", json!({"text": "lock up", "at": "2026-11-23T00:00:00+01:00"})),
        ),
        (
            "remind me this evening at 8 to water the plants",
            command(
                "remind",
                json!({"text": "water the plants", "at": "2026-11-22T20:00:00+01:00"}),
            ),
        ),
        (
            "move the orientation to friday next week",
            command("reschedule_step", json!({"step": "orientation", "due": "2026-11-27"})),
        ),
        (
            "move the orientation to wednesday next week",
            command("reschedule_step", json!({"step": "orientation", "due": "2026-11-25"})),
        ),
    ]);
    // 8 am tonight has passed at 11:00: asked, not moved to 20:00.
    assert_eq!(
        run("remind me tonight at 8 am to call mum", berlin()),
        json!({"route": "unclear", "problem": "time_past"})
    );
}

#[test]
fn long_and_odd_messages_stay_fast_and_do_not_panic() {
    let templates = Templates::built_in().unwrap();
    let started = std::time::Instant::now();
    for text in [
        "mon ".repeat(2000),
        "1 to ".repeat(1600),
        "two weeks from ".repeat(500),
        "couldn't get the venue, mar\u{212A} it as bloc\u{212A}ed".to_owned(),
        "couldn't get the venue, \u{212A}\u{212A} mark it as failed - no dates".to_owned(),
    ] {
        let _ = interpret(&text, berlin(), &templates);
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

#[test]
fn customer_words_and_broad_keywords_do_not_pick_the_kind() {
    let kind = |text: &str| run(text, berlin())["kind"].as_str().map(str::to_owned);
    assert_eq!(
        kind("research report on customer churn by Friday").as_deref(),
        Some("research_report")
    );
    assert_eq!(
        kind("deploy the billing service Friday, needs to be live by 9am").as_deref(),
        Some("deploy_service")
    );
    assert_ne!(
        kind("plan the launch of our client portal").as_deref(),
        Some("customer_onboarding")
    );
    assert_eq!(
        kind("new client Initech needs to be live by Dec 20").as_deref(),
        Some("customer_onboarding")
    );
    assert_eq!(
        kind("I need to onboard our new customer Halcyon Media").as_deref(),
        Some("customer_onboarding")
    );
    never(
        "new_goal:month_end_close",
        &["return the books by Friday", "close out the sprint"],
    );
    never("new_goal:trip", &["going to Costco on Saturday"]);
    never("new_goal:medical_tests", &["seeing my cardiologist on Monday"]);
    assert_eq!(
        kind("close out the books for January by end of next week").as_deref(),
        Some("month_end_close")
    );
    assert_eq!(
        kind("going to Nairobi next monday through friday for work, plan it pls").as_deref(),
        Some("trip")
    );
    // Years far from this one are not the fiscal year being planned.
    let budget = run("sales budget, 2025 actuals attached, due Jan 8 2027", berlin());
    assert_eq!(budget["slots"].get("fiscal_year"), None, "{budget}");
    let budget = run("plan the marketing budget for 2027, it needs 2000 more", berlin());
    assert_eq!(budget["slots"]["fiscal_year"], json!("2027"), "{budget}");
}

#[test]
fn names_keep_their_article_and_a_role_comes_before_the_name() {
    let templates = Templates::built_in().unwrap();
    let ask = |kind: &str, slot: &str, text: &str| {
        let pending = Pending {
            kind: kind.into(),
            asked: slot.into(),
            slots: Map::new(),
        };
        serde_json::to_value(interpret_in(text, berlin(), &templates, Some(&pending))).unwrap()["slots"][slot].clone()
    };
    assert_eq!(ask("onboard_employee", "name", "An Nguyen"), json!("An Nguyen"));
    assert_eq!(ask("onboard_employee", "name", "it's Maria"), json!("Maria"));
    assert_eq!(
        ask("customer_onboarding", "customer", "A Plus Tutoring Ltd"),
        json!("A Plus Tutoring Ltd")
    );
    let name = |text: &str| run(text, berlin())["slots"]["name"].clone();
    assert_eq!(name("onboard maria, Ahmed is her buddy"), json!("Maria"));
    assert_eq!(name("onboard our new accountant, Chloé Martin"), json!("Chloé Martin"));
}
