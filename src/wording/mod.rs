//! The words steward speaks, as data: chat replies, how a change reads,
//! and the offline wording of notifications live in `templates/chat/`
//! (minijinja macros, one per message; a deployment may override any file
//! with its own copy in `chat_templates_dir`). Code computes the facts —
//! titles, counts, dates already formatted in the user's zone — and the
//! templates arrange them into sentences. Every macro is rendered once with
//! sample facts at start-up, so a broken edit stops the server with the
//! file and the reason instead of failing a reply.

mod changes;
mod notifications;

pub(crate) use notifications::relative_day;

use crate::templating;
use minijinja::{Environment, Value};
use serde::Serialize;
use std::path::Path;

/// The template files, with the built-in copies.
const FILES: [(&str, &str); 3] = [
    ("replies.j2", include_str!("../../templates/chat/replies.j2")),
    ("changes.j2", include_str!("../../templates/chat/changes.j2")),
    (
        "notifications.j2",
        include_str!("../../templates/chat/notifications.j2"),
    ),
];

#[derive(Debug, thiserror::Error)]
#[error("chat template {file}: {reason}")]
pub struct WordingError {
    file: String,
    reason: String,
}

/// The loaded chat templates.
pub struct Wording {
    env: Environment<'static>,
}

impl Wording {
    /// Loads `templates/chat/*.j2` from `dir` where present, else the
    /// built-in copies, and checks every macro with sample facts.
    pub fn load(dir: &Path) -> Result<Wording, WordingError> {
        let env = templating::load(dir, &FILES)
            .map_err(|templating::FileError { file, reason }| WordingError { file, reason })?;
        let wording = Wording { env };
        wording.check()?;
        Ok(wording)
    }

    /// The built-in templates (tests, and tools that load no files).
    pub fn built_in() -> Result<Wording, WordingError> {
        Wording::load(Path::new("/nonexistent"))
    }

    /// Renders macro `name` of `file` with the facts `m`.
    fn render(&self, file: &str, name: &str, m: &impl Serialize) -> Result<String, minijinja::Error> {
        let template = self.env.get_template(file)?;
        let mut captured = template.render_captured(())?;
        captured.with_state_mut(|state| state.call_macro(name, &[Value::from(minijinja::value::Serde(m))]))
    }

    /// Macro `name` of `file` with the facts `m`. Every macro is checked at
    /// load with sample facts, so a failure here is a field the code did
    /// not pass (or a branch the samples miss): a release build logs it and
    /// says that the words are missing; a debug build (every test) stops,
    /// so the mismatch cannot pass unnoticed.
    fn say(&self, file: &str, name: &str, m: &impl Serialize) -> String {
        self.render(file, name, m).unwrap_or_else(|e| {
            tracing::error!(file, name, error = %e, "a chat template could not be rendered");
            if cfg!(debug_assertions) {
                panic!("chat template {file}, macro `{name}`: {e:#}");
            }
            format!("(steward has no words for {name}: {e})")
        })
    }

    /// A chat reply from `templates/chat/replies.j2`.
    pub fn reply(&self, name: &str, m: &impl Serialize) -> String {
        self.say("replies.j2", name, m)
    }

    /// Renders every macro with sample facts.
    fn check(&self) -> Result<(), WordingError> {
        for (file, name, sample) in samples() {
            self.render(file, name, &sample).map_err(|e| WordingError {
                file: file.to_owned(),
                reason: format!("macro `{name}`: {e:#}"),
            })?;
        }
        Ok(())
    }
}

/// A message without facts.
#[derive(Serialize)]
pub struct NoFacts {}

/// One sample per macro: what the code passes it.
// Long: a table, one row per macro and case; splitting it would hide a
// missing row.
fn samples() -> Vec<(&'static str, &'static str, serde_json::Value)> {
    use serde_json::json;
    let plans = json!([{"title": "Onboard Ana", "id": "p1"}]);
    let plan = "**Onboard Ana** (p1) — 0/1 steps done";
    let mut out = vec![
        (
            "replies.j2",
            "which_plan",
            json!({"question": "Which plan?", "plans": plans}),
        ),
        ("replies.j2", "no_such_step", json!({"words": "laptop", "plans": plans})),
        (
            "replies.j2",
            "cannot_plan",
            json!({"error": "the slot `name` is missing"}),
        ),
        ("replies.j2", "not_caught", json!({"question": "When?"})),
        ("replies.j2", "refused", json!({"message": "no"})),
        (
            "replies.j2",
            "proposal_new",
            json!({"intro": "To go", "steps": [{"title": "a", "due": "Mon Dec 1"}, {"title": "b", "due": null}]}),
        ),
        ("replies.j2", "proposal_change", json!({"summary": "Remove “a”"})),
        ("replies.j2", "updated", json!({"plan": plan})),
        ("replies.j2", "completed", json!({"id": "p1"})),
        (
            "replies.j2",
            "listed",
            json!({"plans": [{"title": "a", "id": "p1", "done": 0, "steps": 1, "next": null}]}),
        ),
        ("replies.j2", "listed", json!({"plans": []})),
        (
            "replies.j2",
            "history",
            json!({"title": "a", "entries": [{"at": "Nov 22 10:00", "who": "user", "what": "x", "why": "y"}]}),
        ),
        (
            "replies.j2",
            "undone",
            json!({"summary": "x", "plan": plan, "redo": false}),
        ),
        (
            "replies.j2",
            "undone",
            json!({"summary": "x", "plan": null, "redo": true}),
        ),
        (
            "replies.j2",
            "choose",
            json!({"question": "Which one?", "options": ["“a” in “p”", "“a” in “q”"]}),
        ),
        ("replies.j2", "unclear_time", json!({"problem": "time_past"})),
        ("replies.j2", "unclear_time", json!({"problem": "time_invalid"})),
        ("replies.j2", "unclear_time", json!({"problem": "date_ambiguous"})),
        ("replies.j2", "no_due_date", json!({"title": "a"})),
        (
            "replies.j2",
            "agenda",
            json!({"ask": "progress", "items": [], "several": false,
                   "plans": [{"title": "p", "done": 1, "total": 3, "next": "b"}]}),
        ),
        (
            "replies.j2",
            "agenda",
            json!({"ask": "due_this_week", "plans": [], "several": true,
                   "items": [{"title": "a", "plan": "p", "due": "Mon Nov 30"}]}),
        ),
        (
            "replies.j2",
            "agenda",
            json!({"ask": "overdue", "items": [], "plans": [], "several": false}),
        ),
        (
            "replies.j2",
            "settings_saved",
            json!({"what": "quiet", "time_zone": "UTC", "email": null, "verified": false, "quiet": ["22:00", "07:00"]}),
        ),
        (
            "replies.j2",
            "settings_saved",
            json!({"what": "email", "time_zone": "UTC", "email": "a@b.c", "verified": false, "quiet": null}),
        ),
        (
            "replies.j2",
            "reminded",
            json!({"when": "tomorrow", "time": "09:00", "text": "call"}),
        ),
        (
            "replies.j2",
            "digest_set",
            json!({"frequency": "weekly", "weekday": "Mon", "time": "08:00", "verified": false}),
        ),
        (
            "replies.j2",
            "digest_set",
            json!({"frequency": "off", "weekday": null, "time": "08:00", "verified": true}),
        ),
        ("replies.j2", "cannot_apply", json!({"message": "no"})),
        ("changes.j2", "added", json!({"steps": [{"title": "a", "due": null}]})),
        (
            "changes.j2",
            "date_warning",
            json!({"kind": "before_dependency", "step": "a", "other": "b", "other_due": "Mon Nov 30"}),
        ),
        (
            "changes.j2",
            "date_warning",
            json!({"kind": "past", "step": "a", "other": null, "other_due": null}),
        ),
        (
            "notifications.j2",
            "due_soon",
            json!({"step": "a", "plan": "p", "when": "today", "time": "09:00"}),
        ),
        (
            "notifications.j2",
            "overdue",
            json!({"step": "a", "plan": "p", "when": "today"}),
        ),
        (
            "notifications.j2",
            "idle",
            json!({"plan": "p", "since": "Nov 20", "next": null}),
        ),
        ("notifications.j2", "reminder", json!({"text": "call"})),
        (
            "notifications.j2",
            "missed",
            json!({"kind": "due", "step": null, "plan": "p", "text": "", "when": "Nov 22 12:00"}),
        ),
        (
            "notifications.j2",
            "while_offline",
            json!({"missed": "a digest (Nov 22 08:00)"}),
        ),
        (
            "notifications.j2",
            "step_done",
            json!({"step": "Send the welcome email", "plan": "Onboard Ana", "result": "queued"}),
        ),
    ];
    for next in [
        "fallback",
        "fallback_proposed",
        "replan",
        "model_replan",
        "reopened",
        "ask",
        "unknown",
        "told",
    ] {
        out.push((
            "notifications.j2",
            "step_failed",
            json!({"step": "Order", "plan": "Onboard Ana", "error": "out of stock", "next": next, "fallback": "Order by hand"}),
        ));
    }
    for outcome in [
        "created",
        "cancelled",
        "applied",
        "declined",
        "stale",
        "gone",
        "already",
        "nothing",
    ] {
        out.push((
            "replies.j2",
            "decision",
            json!({"outcome": outcome, "plan": plan, "title": "a", "status": "accepted"}),
        ));
    }
    for status in ["open", "declined", "stale", "superseded"] {
        out.push((
            "replies.j2",
            "decision",
            json!({"outcome": "already", "plan": null, "title": null, "status": status}),
        ));
    }
    for kind in [
        "plan_created",
        "step_removed",
        "step_skipped",
        "step_status",
        "step_due",
        "plan_cancelled",
        "plan_renamed",
        "step_title",
        "step_deps",
        "step_result",
        "reordered",
    ] {
        out.push((
            "changes.j2",
            "change",
            json!({"kind": kind, "title": "p", "plan": "p", "step": "a", "status": "completed",
                   "old": null, "new": "Tue Dec 1", "to": "b", "deps": ["x"]}),
        ));
    }
    for name in [
        "help",
        "greeting",
        "thanks",
        "not_understood",
        "no_plans",
        "nothing_to_confirm",
        "dismissed",
    ] {
        out.push(("replies.j2", name, json!({})));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_macro_renders_with_the_facts_the_code_passes() {
        let w = Wording::built_in().unwrap();
        assert!(w.reply("help", &NoFacts {}).starts_with("I keep plans for you"));
        assert_eq!(
            w.reply(
                "which_plan",
                &serde_json::json!({"question": "Which plan?", "plans": [
                {"title": "A", "id": "p1"}, {"title": "B", "id": "p2"}]})
            ),
            "Which plan? You have: “A” (p1), “B” (p2)."
        );
    }

    #[test]
    fn a_broken_override_is_refused_at_load_with_its_file_and_macro() {
        let dir = tempfile::tempdir().unwrap();
        // The built-in file with one macro reading a field nobody passes.
        let built_in = FILES[0].1;
        let broken = built_in.replace("{{ m.message }}", "{{ m.message }} {{ m.nothing_here }}");
        assert_ne!(broken, built_in);
        std::fs::write(dir.path().join("replies.j2"), broken).unwrap();
        let err = Wording::load(dir.path()).err().unwrap().to_string();
        assert!(err.contains("replies.j2") && err.contains("nothing_here"), "{err}");
        // A file that leaves a macro out is refused too, naming it.
        std::fs::write(dir.path().join("replies.j2"), "{% macro help(m) %}Hi{% endmacro %}").unwrap();
        let err = Wording::load(dir.path()).err().unwrap().to_string();
        assert!(err.contains("which_plan"), "{err}");
    }
}
