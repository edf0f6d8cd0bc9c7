//! Phrasings by family, from the development batches: customers and goal
//! kinds, goal slots, commands, answers whose time cannot be used.

use super::*;

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
    let read = |text: &str| answered("deploy_service", "date", json!({"service": "cache-service"}), text);
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
fn times_and_days_said_in_words_are_read() {
    expect_all(&[
        (
            "set a reminder for quarter to 6 this evening: pick up the dry cleaning",
            command(
                "remind",
                json!({"text": "pick up the dry cleaning", "at": "2026-11-22T17:45:00+01:00"}),
            ),
        ),
        (
            "remind me at half past seven tomorrow to call Ana",
            command("remind", json!({"text": "call Ana", "at": "2026-11-23T07:30:00+01:00"})),
        ),
        (
            "send me a daily digest at quarter past 6",
            command("digest", json!({"frequency": "daily", "time": "06:15"})),
        ),
        (
            "quiet hours from midnight to 7",
            command("set_quiet_hours", json!({"start": "00:00", "end": "07:00"})),
        ),
        (
            "plan a trip to Kyoto and Osaka, 10-18 December",
            goal(
                "trip",
                json!({"destinations": ["Kyoto", "Osaka"], "start_date": "2026-12-10", "end_date": "2026-12-18"}),
            ),
        ),
        (
            "launch the Kite lamp on the first Monday of March",
            goal(
                "product_launch",
                json!({"product": "Kite lamp", "launch_date": "2027-03-01"}),
            ),
        ),
        (
            "start the annual budget for the engineering team",
            goal("annual_budget", json!({"team": "engineering"})),
        ),
    ]);
    let got = answered(
        "annual_budget",
        "due_date",
        json!({"team": "IT"}),
        "by the end of january",
    );
    assert_eq!(got["slots"]["due_date"], json!("2027-01-31"), "{got}");
    // A day no month has is asked about.
    assert_eq!(
        run("remind me on the 32nd to renew my passport", berlin()),
        json!({"route": "unclear", "problem": "time_invalid"})
    );
}

#[test]
fn hurried_typing_is_read() {
    expect_all(&[
        ("shwo my plans", command("list_plans", json!({}))),
        ("whats next", command("agenda", json!({"ask": "next"}))),
        ("disable quiet hrs", command("quiet_hours_off", json!({}))),
        (
            "move kickoff to frday",
            command("reschedule_step", json!({"step": "kickoff", "due": "2026-11-27"})),
        ),
        (
            "delete the helsinki trip",
            command("cancel_plan", json!({"plan": "helsinki trip"})),
        ),
        ("medical tests", goal("medical_tests", json!({}))),
        ("ANNUAL BUDGET", goal("annual_budget", json!({}))),
        (
            "do the monthly close for october by dec 4",
            goal(
                "month_end_close",
                json!({"period": "2026-10", "due_date": "2026-12-04"}),
            ),
        ),
        (
            "trip 2 berlin on the 14th",
            goal("trip", json!({"destinations": ["Berlin"], "start_date": "2026-12-14"})),
        ),
        (
            "remind me on 31/09 to renew my passport",
            json!({"route": "unclear", "problem": "time_invalid"}),
        ),
    ]);
    // "the launch" alone may be a step; "1/2 kg" is no date.
    assert_eq!(route_of("delete the launch"), "command:remove_step");
    assert_eq!(
        run("remind me tomorrow to buy 1/2 kg of flour", berlin())["command"],
        json!("remind")
    );
    assert_eq!(
        answered("trip", "destinations", json!({}), "lisbon n porto")["slots"]["destinations"],
        json!(["Lisbon", "Porto"])
    );
    for unsure in ["idk yet", "not sure, my doctor didnt say which ones"] {
        assert_eq!(
            answered("medical_tests", "tests", json!({}), unsure),
            json!({"route": "chat"}),
            "{unsure}"
        );
    }
    // An offset of zero is written out, as every other offset is.
    let london = at(chrono_tz::Europe::London, "2027-01-10T10:00:00Z");
    assert_eq!(
        run("remind me in 10 minutes to stretch", london)["args"]["at"],
        json!("2027-01-10T10:10:00+00:00")
    );
}

#[test]
fn settings_and_answers_in_everyday_words() {
    expect_all(&[
        (
            "I've moved to Nairobi",
            command("set_timezone", json!({"zone": "Africa/Nairobi"})),
        ),
        ("help, I'm lost", command("help", json!({}))),
        (
            "switch my digest to Sunday evenings at 6",
            command(
                "digest",
                json!({"frequency": "weekly", "weekday": "sunday", "time": "18:00"}),
            ),
        ),
        ("not like that, no", json!({"route": "confirmation", "accept": false})),
        ("I need to book some medical tests", goal("medical_tests", json!({}))),
    ]);
    let got = answered(
        "onboard_employee",
        "manager",
        json!({"name": "Tunde Bakare"}),
        "he'll report to Ngozi Adeyemi-Cole",
    );
    assert_eq!(got["slots"]["manager"], json!("Ngozi Adeyemi-Cole"), "{got}");
    let got = run("annual budget for fiscal 2027, due by the end of the year", berlin());
    assert_eq!(got["slots"].get("team"), None, "{got}");
}

/// Indirect requests are read as said directly; agreeing with a proposal
/// in the same words stays a yes.
#[test]
fn indirect_requests_read_as_the_command_they_ask_for() {
    expect_all(&[
        (
            "would you mind renaming the Kyoto trip to Kansai loop",
            command("rename_plan", json!({"plan": "kyoto trip", "title": "Kansai loop"})),
        ),
        (
            "go ahead and scrap the second site visit step",
            command("remove_step", json!({"step": "second site visit"})),
        ),
        (
            "Halvorsen pulled out, so would you mind cancelling the Halvorsen onboarding",
            command("cancel_plan", json!({"plan": "halvorsen onboarding"})),
        ),
        (
            "go ahead and lift my quiet hours",
            command("quiet_hours_off", json!({})),
        ),
        (
            "the export failed earlier, run it again please",
            command("retry_step", json!({"step": "export"})),
        ),
    ]);
    assert_eq!(
        run("go ahead and create it", berlin()),
        json!({"route": "confirmation", "accept": true})
    );
    assert_eq!(
        run("go ahead", berlin()),
        json!({"route": "confirmation", "accept": true})
    );
}
