//! Whole conversations with the offline engine over the real socket, as a
//! person has them: a goal set up by answering its questions, a preference
//! said while a proposal waits, agenda questions, a result recorded with
//! "done", undo and redo, a destructive undo shown before it acts, a name
//! that fits two plans answered in words, and times that cannot be used.

use crate::harness::{Client, of_type};
use crate::planning::{app, reply};
use serde_json::Value;

async fn say(c: &mut Client, id: &str, text: &str) -> (String, Vec<Value>) {
    let frames = c.turn(id, text).await;
    (reply(&frames), frames)
}

fn step<'a>(plan: &'a Value, id: &str) -> &'a Value {
    plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap()
}

#[tokio::test]
async fn a_goal_set_up_by_answers_then_changes_undo_and_redo_read_as_a_person_means_them() {
    let app = app().await;
    let mut ana = app.connect("ana").await;

    // The answers fill the slot that was asked, in the words people use.
    let (text, _) = say(&mut ana, "1", "I need to onboard someone new").await;
    assert_eq!(text, "Who is joining? Tell me their name.");
    let (text, _) = say(&mut ana, "2", "it's Maria Garcia").await;
    assert_eq!(text, "When does Maria Garcia start?");
    let (text, _) = say(&mut ana, "3", "hmm, not sure yet").await;
    assert_eq!(text, "Sorry, I didn't catch that. When does Maria Garcia start?");
    let (text, frames) = say(&mut ana, "4", "the 7th of December").await;
    assert!(text.starts_with("To onboard Maria Garcia by Dec 7, I'll:\n"), "{text}");
    let proposal = of_type(&frames, "proposal")[0]["proposal"].clone();

    // A preference with "don't" in it is a preference, not a "no".
    let (text, frames) = say(&mut ana, "5", "don't notify me between 22:00 and 07:00").await;
    assert_eq!(text, "OK — I'll hold non-urgent notices between 22:00 and 07:00.");
    assert!(of_type(&frames, "proposal").is_empty(), "the proposal was not answered");
    let (_, frames) = say(&mut ana, "6", "yes").await;
    let accepted = of_type(&frames, "proposal")[0]["proposal"].clone();
    assert_eq!(
        (accepted["id"].clone(), accepted["status"].clone()),
        (proposal["id"].clone(), "accepted".into())
    );

    // Questions about the plan get answers, not the help text.
    let (text, _) = say(&mut ana, "7", "what should I do next?").await;
    assert_eq!(
        text,
        "Next up:\n- Order laptop and equipment for Maria Garcia — due Mon Nov 30\n"
    );
    let (text, _) = say(&mut ana, "8", "how far along is the onboarding?").await;
    assert!(text.starts_with("“Onboard Maria Garcia”: 0 of 7 steps done"), "{text}");

    // "done" with a result keeps the result.
    let (_, frames) = say(&mut ana, "9", "done with accounts: created maria@corp").await;
    let plan = of_type(&frames, "plan")[0]["plan"].clone();
    let accounts = step(&plan, "create_accounts");
    assert_eq!(
        (accounts["status"].as_str(), accounts["result"].as_str()),
        (Some("completed"), Some("created maria@corp"))
    );

    // Undo takes it back and says how to redo; redo puts it back.
    let (text, frames) = say(&mut ana, "10", "undo").await;
    assert!(text.contains("Say \"redo\" to put it back."), "{text}");
    let plan = of_type(&frames, "plan")[0]["plan"].clone();
    assert_eq!(step(&plan, "create_accounts")["status"], "pending");
    let (text, frames) = say(&mut ana, "11", "redo").await;
    assert!(text.starts_with("Redone: "), "{text}");
    let plan = of_type(&frames, "plan")[0]["plan"].clone();
    assert_eq!(step(&plan, "create_accounts")["result"], "created maria@corp");

    // Undoing the creation would cancel the plan: it is shown first.
    say(&mut ana, "12", "undo").await;
    let (text, frames) = say(&mut ana, "13", "undo").await;
    assert!(of_type(&frames, "plan").is_empty(), "nothing changes before a yes");
    assert!(text.ends_with("Shall I go ahead?"), "{text}");
    let (_, frames) = say(&mut ana, "14", "yes").await;
    let cancelled = of_type(&frames, "plan")[0]["plan"].clone();
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(
        cancelled["steps"].as_array().unwrap().len(),
        7,
        "a cancelled plan keeps its steps"
    );

    // Times that cannot be used get a question, never a default.
    let (text, _) = say(&mut ana, "15", "remind me at 25:00 to stretch").await;
    assert_eq!(text, "That day or time doesn't exist. Which one did you mean?");
    let (text, _) = say(&mut ana, "16", "remind me yesterday to call Bob").await;
    assert_eq!(text, "That time has already passed. When should it be?");
}

#[tokio::test]
async fn a_name_that_fits_two_plans_is_asked_about_and_answered_in_words() {
    let app = app().await;
    let mut ana = app.connect("ana").await;
    for (n, who) in ["Ana Souza", "Ben Okafor"].iter().enumerate() {
        say(
            &mut ana,
            &format!("g{n}"),
            &format!("onboard {who}, starting December 7"),
        )
        .await;
        say(&mut ana, &format!("y{n}"), "yes").await;
    }
    // Listing shows both; no single plan is in view after it.
    say(&mut ana, "l", "list my plans").await;
    let (text, frames) = say(&mut ana, "d1", "done with order laptop").await;
    assert!(of_type(&frames, "plan").is_empty(), "nothing changes before the answer");
    assert_eq!(
        text,
        "Which one do you mean?\n1. “Order laptop and equipment for Ana Souza” in “Onboard Ana Souza”\n\
         2. “Order laptop and equipment for Ben Okafor” in “Onboard Ben Okafor”\n\
         Answer with the number or the name; nothing changes until you do."
    );
    let (_, frames) = say(&mut ana, "d2", "Ben's").await;
    let plan = of_type(&frames, "plan")[0]["plan"].clone();
    assert_eq!(plan["title"], "Onboard Ben Okafor");
    assert_eq!(step(&plan, "order_hardware")["status"], "completed");

    // Ben's plan is the one in view now: a step name both have means his.
    let (_, frames) = say(&mut ana, "d3", "start the accounts step").await;
    let plan = of_type(&frames, "plan")[0]["plan"].clone();
    assert_eq!(plan["title"], "Onboard Ben Okafor");

    // "the second" works as an answer too.
    say(&mut ana, "l2", "list my plans").await;
    let (text, _) = say(&mut ana, "s1", "show my onboarding plan").await;
    assert!(
        text.starts_with("Which plan?\n1. “Onboard Ana Souza”\n2. “Onboard Ben Okafor”\n"),
        "{text}"
    );
    let (text, _) = say(&mut ana, "s2", "the first").await;
    assert!(text.starts_with("**Onboard Ana Souza** (p1)"), "{text}");
}
