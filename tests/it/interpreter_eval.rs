//! The interpreter's evaluation set (`tests/data/interpreter_eval.jsonl`):
//! varied messages with the interpretation a person would expect. Prints
//! the accuracy and every miss; a miss that acts (any route but `chat`) is
//! unsafe, a miss that falls back to `chat` makes the assistant ask.

use serde_json::Value;
use steward::interpreter::interpret;
use steward::planner::templates::Templates;

fn lowercase(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::from(s.to_lowercase()),
        Value::Array(items) => Value::from(items.iter().map(lowercase).collect::<Vec<_>>()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), lowercase(v))).collect()),
        other => other.clone(),
    }
}

#[test]
fn the_interpreter_reads_at_least_95_percent_of_the_evaluation_set_right_and_misses_safely() {
    let data = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/interpreter_eval.jsonl"
    ))
    .unwrap();
    let templates = Templates::built_in().unwrap();
    let (mut right, mut total, mut unsafe_misses) = (0usize, 0usize, 0usize);
    for (n, line) in data.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let case: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("line {}: {e}", n + 1));
        let tz: chrono_tz::Tz = case["tz"].as_str().unwrap().parse().unwrap();
        let now = chrono::DateTime::parse_from_rfc3339(case["now"].as_str().unwrap())
            .unwrap()
            .with_timezone(&tz);
        let got = serde_json::to_value(interpret(case["text"].as_str().unwrap(), now, &templates)).unwrap();
        total += 1;
        if lowercase(&got) == lowercase(&case["expect"]) {
            right += 1;
        } else {
            let acted = got["route"] != "chat";
            unsafe_misses += usize::from(acted);
            println!(
                "{} miss line {}: {:?}\n    expected {}\n    got      {}",
                if acted { "UNSAFE" } else { "safe" },
                n + 1,
                case["text"].as_str().unwrap(),
                case["expect"],
                got
            );
        }
    }
    let accuracy = right as f64 / total as f64;
    println!(
        "interpreter evaluation: {right}/{total} right ({:.1} %), {unsafe_misses} unsafe misses",
        accuracy * 100.0
    );
    assert!(total >= 100, "the evaluation set has only {total} messages");
    assert!(accuracy >= 0.95, "accuracy {:.1} % is below 95 %", accuracy * 100.0);
    assert_eq!(unsafe_misses, 0, "a miss must fall back to chat (ask), never act");
}
