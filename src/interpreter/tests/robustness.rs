//! Templates added without code, and input that must never panic (random
//! messages and proptest).

use super::*;

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
