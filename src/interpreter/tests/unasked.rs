//! Readings that must never act where the user did not ask: unfinished or
//! hedged work, conditional cancels, conditional yes/no, dates that are not
//! steps, quoted names, settings.

use super::*;

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
    let ask = |kind: &str, slot: &str, text: &str| answered(kind, slot, json!({}), text)["slots"][slot].clone();
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

#[test]
fn news_memories_and_hypotheticals_about_a_goal_start_none() {
    for text in [
        "my colleague is onboarding a new hire next week, lucky her",
        "if we ever launch in Japan I'll definitely need your help",
        "I don't want to cancel the trip plan, just thinking out loud",
        "my manager literally said 'remind me tomorrow to review the budget' and then left lol",
        "the launch party is on friday, so excited!!",
        "remember when we planned that trip to Oslo? good times",
        "Anna already booked her MRI for next week",
        "my team lead is rolling out the new auth service tomorrow, fingers crossed",
    ] {
        assert!(!route_of(text).starts_with("new_goal"), "{text}");
    }
    // A request made in so many words still stands.
    assert_eq!(
        route_of("my sister is getting married in Lisbon, can you plan a trip there from May 3 to May 9"),
        "new_goal:trip"
    );
    // "create it" names no step, and "that's correct" agrees.
    assert_eq!(route_of("that's correct, create it"), "confirmation");
}

#[test]
fn putting_off_an_answer_is_not_the_answer() {
    for text in [
        "hmm let me ask my wife first",
        "not sure yet",
        "I'll get back to you on that",
    ] {
        let got = answered("trip", "destinations", json!({}), text);
        assert_eq!(got["route"], json!("chat"), "{text}: {got}");
    }
}

#[test]
fn a_date_in_digits_is_read_only_when_its_order_is_clear() {
    let at = |text: &str| run(text, berlin())["args"]["at"].clone();
    assert_eq!(
        at("remind me on 14/03/2027 to renew my passport"),
        json!("2027-03-14T09:00:00+01:00")
    );
    assert_eq!(
        at("remind me on 15.03.2027 to call the bank"),
        json!("2027-03-15T09:00:00+01:00")
    );
    // Day first or month first? Not guessed: steward asks.
    let ambiguous = run("remind me on 01/09/2027 to renew my passport", berlin());
    assert_eq!(ambiguous, json!({"route": "unclear", "problem": "date_ambiguous"}));
    // A version number is not a date.
    assert_eq!(
        route_of("we're launching Nimbus 2.0 on april 4th, help me plan it"),
        "new_goal:product_launch"
    );
}

#[test]
fn talk_about_plans_settings_and_other_people_changes_nothing() {
    for text in [
        // Written to someone else and pasted here.
        "Hi Marco, could you move the kickoff to Thursday and let the client know? Cheers, Lena",
        // A plan that exists, named as a noun.
        "what does the research plan say right now",
        "has anyone touched the launch plan since Monday?",
        "bring the deploy plan up on screen",
        // Sarcasm, memories, notes to self.
        "oh sure, let's just launch it tomorrow with zero testing, what could go wrong",
        "last year's December close took us nine days, absolute nightmare",
        "note to self: never schedule a deploy on a Friday afternoon",
        // Questions and stories that use a command's words.
        "remind me again why I agreed to run the budget this year?",
        "who even reads the weekly digest emails from HR",
        "my email used to be jojo1987@hotmail.com back in 2005 haha",
        "what day of the week is christmas this year?",
        "ok wow, that storm came out of nowhere",
    ] {
        assert_eq!(route_of(text), "chat", "{text}");
    }
    // Greeting steward by name is still talking to steward.
    assert_eq!(route_of("Hey Steward, list my plans"), "command:list_plans");
    // "plan" as a verb still asks for a plan.
    assert_eq!(
        route_of("help me plan the Nimbus launch on March 3"),
        "new_goal:product_launch"
    );
    assert_eq!(route_of("ok, let's do it"), "confirmation");
}

#[test]
fn a_correction_inside_an_answer_keeps_what_follows_it() {
    let got = answered(
        "onboard_employee",
        "start_date",
        json!({"name": "Tariq"}),
        "the 12th, sorry no, the 14th",
    );
    assert_eq!(got["slots"]["start_date"], json!("2026-12-14"), "{got}");
    // A symbol before a plain no still declines.
    assert_eq!(
        run("❌ no", berlin()),
        json!({"route": "confirmation", "accept": false})
    );
}

#[test]
fn a_version_number_is_no_date_to_question() {
    for text in [
        "deploy analytics-api v1.2.3 tomorrow",
        "deploy analytics-api v2.0.1 on Friday",
    ] {
        assert_ne!(run(text, berlin())["route"], json!("unclear"), "{text}");
    }
}

#[test]
fn questions_about_steward_and_wishes_do_not_act() {
    for text in [
        "why do reminders sometimes show up late?",
        "what happens if I miss a deadline, do you nag me?",
        "how many plans can I have at once?",
        "do you sync with google calendar?",
        "if I had to launch a product in a month, would that even be realistic?",
        "I wish someone else could do my month-end close for me",
        "oh wonderful, month-end close again. my absolute favourite",
    ] {
        assert_eq!(run(text, berlin())["route"], json!("chat"), "{text}");
    }
    // Asking about one's own plans still works.
    assert_eq!(route_of("how many plans do i have going?"), "command:list_plans");
}

#[test]
fn remarks_about_a_kind_of_goal_and_general_questions_do_not_act() {
    for text in [
        "we're onboarding three people next month, crazy times",
        "deploying on Fridays is a terrible idea, everyone knows that",
        "blood tests always make me nervous",
        "next time I'll start the research earlier, lesson learned",
        "Globex is our biggest customer, so their onboarding matters a lot",
        "how many steps does a typical product launch have?",
    ] {
        assert_eq!(run(text, berlin())["route"], json!("chat"), "{text}");
    }
    // A plan asked for by "create a … plan for …" is a goal, not a step.
    assert_eq!(
        route_of("create a launch plan for the Aurora smart thermostat"),
        "new_goal:product_launch"
    );
    // A written date already past is asked about.
    assert_eq!(
        run("plan the launch of Tidepool on 15.01.2026", berlin()),
        json!({"route": "unclear", "problem": "time_past"})
    );
    assert_eq!(
        answered(
            "product_launch",
            "launch_date",
            json!({"product": "Zephyr"}),
            "let's not do this after all"
        ),
        command("dismiss", json!({}))
    );
}

// From a review of this session's rules: none of these may cancel a plan
// or start a goal, and a time is after noon only when the words next to
// it say so.
#[test]
fn a_step_inside_a_plan_is_not_the_plan_and_a_question_is_not_a_goal() {
    for text in [
        "delete the last step of the trip",
        "remove the hotel in the Lisbon trip",
        "delete the final budget",
        "delete the welcome email in Marco's onboarding",
    ] {
        assert_ne!(route_of(text), "command:cancel_plan", "{text}");
    }
    for text in [
        "does the trip to Lisbon on the 14th include Sintra?",
        "does my holiday in Crete from June 3 include the ferry?",
    ] {
        assert_eq!(run(text, berlin())["route"], json!("chat"), "{text}");
    }
    let at = |text: &str| run(text, berlin())["args"]["at"].clone();
    assert_eq!(
        at("remind me at 9 tomorrow about the afternoon standup"),
        json!("2026-11-23T09:00:00+01:00")
    );
    assert_eq!(
        at("remind me tomorrow at 6 in the evening to call mum"),
        json!("2026-11-23T18:00:00+01:00")
    );
    let got = answered(
        "product_launch",
        "product",
        json!({}),
        "we're not doing it as Orbit anymore, call it Nova",
    );
    assert_ne!(got, command("dismiss", json!({})), "{got}");
}

/// The twelfth development batch's rules, each with the reading it must
/// leave alone.
#[test]
fn feelings_stories_and_questions_back_change_nothing_while_requests_still_do() {
    for text in [
        "kinda nervous about my MRI on Friday",
        "deploy day tomorrow, wish me luck",
        "my flatmate is doing a trip to Lisbon next month",
        "my old email was bob.smith@aol.com lol",
        "can you see my Google calendar?",
        "no need to ask me before every little change",
    ] {
        assert_eq!(run(text, berlin())["route"], json!("chat"), "{text}");
    }
    // A feeling beside a clear request is still the request.
    assert_eq!(
        run(
            "I'm nervous about the launch, can you help me plan the Nova launch for Dec 18",
            berlin()
        )["kind"],
        json!("product_launch")
    );
    assert_eq!(
        run("yeah nah, not yet", berlin()),
        json!({"route": "confirmation", "accept": false})
    );
    assert_eq!(
        run("no point doing the dry-run migration, skip", berlin()),
        command("skip_step", json!({"step": "dry-run migration"}))
    );
    // Putting off an answer, or asking back, is no answer; a correction
    // that starts with "hold on" and a doubtful answer still are.
    for text in [
        "hmm can't remember, hold on",
        "their CTO is on leave, I'll find out next week",
        "what topics do people usually pick?",
    ] {
        let got = answered("research_report", "topic", json!({}), text);
        assert_eq!(got["route"], json!("chat"), "{text}: {got}");
    }
    let got = answered(
        "trip",
        "start_date",
        json!({"destinations": ["Oslo"]}),
        "hold on, the 14th",
    );
    assert_eq!(got["slots"]["start_date"], json!("2026-12-14"), "{got}");
    let got = answered(
        "trip",
        "start_date",
        json!({"destinations": ["Oslo"]}),
        "should be the 14th?",
    );
    assert_eq!(got["slots"]["start_date"], json!("2026-12-14"), "{got}");
    // A command asked while a goal is set up is still the command.
    let got = answered(
        "trip",
        "start_date",
        json!({}),
        "which plans am I running at the moment?",
    );
    assert_eq!(got, command("list_plans", json!({})), "{got}");
}

/// The thirteenth development batch's rules and the readings they must
/// leave alone.
#[test]
fn news_sarcasm_conditions_and_other_peoples_details_change_nothing() {
    for text in [
        "apparently Samsung is launching a new foldable on the 9th",
        "I moved to Berlin in 2019 and still can't handle the winters",
        "if the client signs this week we'll need to onboard them before Christmas",
        "how far back does undo go, just the last change?",
        "my manager is organising a trip to Singapore for the whole team",
        "Lerato's email is lerato.dube@example.com in case you need it",
        "sure, let's onboard twelve people the week before Christmas, what could possibly go wrong",
        "we're not deploying anything this week, change freeze",
        "Tomás, remind me to bring the HDMI adapter tomorrow",
        "can one step wait for two others?",
    ] {
        assert_eq!(run(text, berlin())["route"], json!("chat"), "{text}");
    }
    // What those rules must not catch.
    expect_all(&[
        (
            "our new client Hooli just signed, they need to go live on the 1st of March",
            goal(
                "customer_onboarding",
                json!({"customer": "Hooli", "go_live_date": "2027-03-01"}),
            ),
        ),
        (
            "don't book the hotel before the flights are confirmed",
            command("add_dependency", json!({"step": "hotel", "after": "flights"})),
        ),
        (
            "Steward, remind me tomorrow at 9 to call the bank",
            command(
                "remind",
                json!({"text": "call the bank", "at": "2026-11-23T09:00:00+01:00"}),
            ),
        ),
        (
            "if possible, plan a trip to Oslo from Dec 3 to Dec 6",
            goal(
                "trip",
                json!({"destinations": ["Oslo"], "start_date": "2026-12-03", "end_date": "2026-12-06"}),
            ),
        ),
        (
            "set my email to me@example.com",
            command("set_email", json!({"email": "me@example.com"})),
        ),
    ]);
    assert_eq!(
        run("nah, leave the budget plan alone", berlin()),
        json!({"route": "confirmation", "accept": false})
    );
}
