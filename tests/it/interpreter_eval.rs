//! The interpreter's evaluation sets: varied messages with the
//! interpretation a person would expect. `interpreter_eval.jsonl` is the
//! development set (fixes are made from it); `interpreter_heldout.jsonl`
//! was written and scored before the fixes it measures and is never edited
//! to fit. Prints the scores and every miss. A miss that acts where the
//! user asked for something else (a different route, command or kind) is
//! *unsafe*; a miss that falls back to `chat` or `unclear` makes the
//! assistant ask.

use serde_json::Value;
use steward::interpreter::{Pending, interpret_in};
use steward::planner::templates::Templates;

fn lowercase(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::from(s.to_lowercase()),
        Value::Array(items) => Value::from(items.iter().map(lowercase).collect::<Vec<_>>()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), lowercase(v))).collect()),
        other => other.clone(),
    }
}

/// What a reading does: its route and, for goals, commands and answers,
/// which one.
fn action(v: &Value) -> (Value, Value) {
    let which = match v["route"].as_str() {
        Some("new_goal") => v["kind"].clone(),
        Some("command") => v["command"].clone(),
        Some("confirmation") => v["accept"].clone(),
        _ => Value::Null,
    };
    (v["route"].clone(), which)
}

#[derive(Debug, Default)]
struct Score {
    total: usize,
    /// Route and kind (or command) right.
    routed: usize,
    /// Everything right, every slot and argument included.
    exact: usize,
    unsafe_misses: usize,
}

fn score(file: &str) -> Score {
    let data = std::fs::read_to_string(format!("{}/tests/data/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let templates = Templates::built_in().unwrap();
    let mut score = Score::default();
    for (n, line) in data.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let case: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{file} line {}: {e}", n + 1));
        let tz: chrono_tz::Tz = case["tz"].as_str().unwrap().parse().unwrap();
        let now = chrono::DateTime::parse_from_rfc3339(case["now"].as_str().unwrap())
            .unwrap()
            .with_timezone(&tz);
        // A goal being set up: steward just asked for one of its slots.
        let pending: Option<Pending> = case.get("pending").map(|p| serde_json::from_value(p.clone()).unwrap());
        let reading = interpret_in(case["text"].as_str().unwrap(), now, &templates, pending.as_ref());
        let got = serde_json::to_value(reading).unwrap();
        let (got, expected) = (lowercase(&got), lowercase(&case["expect"]));
        score.total += 1;
        let routed = action(&got) == action(&expected);
        score.routed += usize::from(routed);
        if got == expected {
            score.exact += 1;
            continue;
        }
        let acted = !matches!(got["route"].as_str(), Some("chat" | "unclear"));
        let unsafe_miss = acted && !routed;
        score.unsafe_misses += usize::from(unsafe_miss);
        println!(
            "{file}: {} miss line {}: {:?}\n    expected {}\n    got      {}",
            if unsafe_miss { "UNSAFE" } else { "safe" },
            n + 1,
            case["text"].as_str().unwrap(),
            case["expect"],
            got
        );
    }
    let pct = |k: usize| k as f64 * 100.0 / score.total as f64;
    println!(
        "{file}: {} messages; route and kind right {} ({:.1} %); every slot right {} ({:.1} %); {} unsafe misses",
        score.total,
        score.routed,
        pct(score.routed),
        score.exact,
        pct(score.exact),
        score.unsafe_misses
    );
    score
}

fn rate(part: usize, score: &Score) -> f64 {
    part as f64 * 100.0 / score.total as f64
}

#[test]
fn the_interpreter_reads_the_development_set_right_and_never_acts_on_something_else() {
    let score = score("interpreter_eval.jsonl");
    assert!(
        score.total >= 1000,
        "the development set has only {} messages",
        score.total
    );
    let (routed, exact) = (rate(score.routed, &score), rate(score.exact, &score));
    // Floors as measured after the fourteenth batch (BENCHMARKS.md): that
    // batch was written to be hard (140 commands said indirectly, 60 goals
    // said as needs) and is only partly fixed, so the set reads lower than
    // before it (98 % / 96.5 % after the thirteenth) while never acting
    // unasked.
    assert!(routed >= 96.5, "route and kind {routed:.1} % is below 96.5 %");
    assert!(exact >= 93.5, "every slot {exact:.1} % is below 93.5 %");
    assert_eq!(score.unsafe_misses, 0, "a miss must ask, never act on something else");
}

/// A floor under the held-out scores as measured (BENCHMARKS.md), so a
/// change that makes unseen messages worse fails. The target (95 %
/// route and kind, 90 % every slot, no unsafe miss) is not reached yet.
#[test]
fn the_held_out_set_does_not_get_worse() {
    let score = score("interpreter_heldout.jsonl");
    assert!(score.total >= 150, "the held-out set has only {} messages", score.total);
    let (routed, exact) = (rate(score.routed, &score), rate(score.exact, &score));
    assert!(routed >= 93.4, "held-out route and kind fell to {routed:.1} %");
    assert!(exact >= 87.5, "held-out every slot fell to {exact:.1} %");
    assert!(
        score.unsafe_misses <= 1,
        "held-out unsafe misses rose to {}",
        score.unsafe_misses
    );
}
