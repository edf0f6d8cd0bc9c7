//! CPU cost of the pure core: rendering plans into the prompt and validating
//! + applying an update. Prints medians; run with `cargo bench --bench core`.

// Benchmark code: a failed unwrap stops the run, and the figures are printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, clippy::print_stderr)]

use chrono::{TimeZone, Utc};
use std::hint::black_box;
use std::time::{Duration, Instant};
use steward::plan::{Op, Plan, PlanId, PlanLimits, Step, StepStatus, patch, render};
use steward::prompts::{Facts, Prompts};

fn plan(steps: usize) -> Plan {
    let now = Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap();
    let mut p = Plan::draft(
        "Onboard Ana Souza",
        "Ana starts on December 1 as a backend engineer",
        now,
    );
    p.id = PlanId(1);
    p.version = 12;
    for i in 0..steps {
        let mut s = Step::new(
            format!("s{i}"),
            format!("Step number {i}: do the thing that needs doing"),
        );
        if i > 0 {
            s.depends_on = vec![format!("s{}", i - 1)];
        }
        s.due_at = Some(now + chrono::Duration::days(i as i64));
        if i < steps / 2 {
            s.status = StepStatus::Completed;
            s.result = Some("done, see ticket #1234".into());
        }
        p.steps.push(s);
    }
    p
}

/// Median and p99 of `samples` timings, each the mean of `batch` runs.
fn measure(name: &str, samples: usize, batch: usize, mut f: impl FnMut()) -> Duration {
    for _ in 0..batch * 10 {
        f(); // warm up
    }
    let mut times: Vec<Duration> = (0..samples)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..batch {
                f();
            }
            start.elapsed() / batch as u32
        })
        .collect();
    times.sort();
    let median = times[times.len() / 2];
    let p99 = times[times.len() * 99 / 100];
    println!("{name:<58} median {median:>10.2?}   p99 {p99:>10.2?}");
    median
}

fn main() {
    let twenty = plan(20);
    let two_hundred = plan(200);
    let limits = PlanLimits::default();
    let now = Utc.with_ymd_and_hms(2026, 11, 22, 11, 0, 0).unwrap();
    let prompts = Prompts::load(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/prompts")))
        .unwrap()
        .with_templates(&steward::planner::templates::Templates::built_in().unwrap());

    measure("render 20-step plan into the prompt section", 500, 200, || {
        black_box(render::prompt_section(
            black_box(std::slice::from_ref(&twenty)),
            chrono_tz::Europe::Berlin,
        ));
    });
    measure(
        "render the whole system prompt (template + 20-step plan)",
        500,
        100,
        || {
            black_box(
                prompts
                    .system(&Facts {
                        plans: black_box(std::slice::from_ref(&twenty)),
                        finished: &[],
                        summary: None,
                        now: now.with_timezone(&chrono_tz::Europe::Berlin),
                    })
                    .unwrap(),
            );
        },
    );
    let ops = vec![
        Op::SetStatus {
            step: "s100".into(),
            status: StepStatus::InProgress,
            result: None,
        },
        Op::UpdateStep {
            step: "s150".into(),
            title: None,
            depends_on: None,
            due_at: Some(Some(now)),
            result: None,
        },
    ];
    measure("validate + apply a 2-op update to a 200-step plan", 500, 20, || {
        black_box(patch::apply(black_box(&two_hundred), &ops, &limits, now).unwrap());
    });
    let mut cyclic = plan(10_000);
    cyclic.steps[0].depends_on = vec!["s9999".into()];
    let big = PlanLimits {
        max_steps: 20_000,
        ..limits
    };
    measure("reject a 10 000-step plan with a cycle (validate)", 50, 2, || {
        black_box(steward::plan::invariants::validate(black_box(&cyclic), &big).unwrap_err());
    });
    let templates = steward::planner::templates::Templates::built_in().unwrap();
    let local = now.with_timezone(&chrono_tz::Europe::Berlin);
    measure("interpret a goal message (kind, slots, dates)", 300, 20, || {
        black_box(steward::interpreter::interpret(
            black_box("help me onboard Ana Souza, she starts December 1"),
            local,
            &templates,
        ));
    });
    measure("interpret a command message", 300, 20, || {
        black_box(steward::interpreter::interpret(
            black_box("move the orientation to Friday"),
            local,
            &templates,
        ));
    });
    let json = serde_json::to_string(&two_hundred).unwrap();
    measure("decode a stored 200-step plan (serde_json)", 300, 10, || {
        black_box(serde_json::from_str::<Plan>(black_box(&json)).unwrap());
    });
}
