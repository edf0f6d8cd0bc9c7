//! System prompts, rendered from editable templates in `prompts/` (with
//! built-in copies as defaults). Templates are checked at start-up, so a
//! broken edit stops the server with the file name and the reason instead of
//! failing the first turn.

use crate::plan::{Plan, render};
use crate::planner::templates::Templates;
use crate::templating;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use minijinja::{Environment, context};
use std::path::Path;

/// The prompt files, with their built-in copies.
const FILES: [(&str, &str); 3] = [
    ("system.j2", include_str!("../prompts/system.j2")),
    ("notification.j2", include_str!("../prompts/notification.j2")),
    ("replan.j2", include_str!("../prompts/replan.j2")),
];

#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("prompt template {file}: {reason}")]
    Template { file: String, reason: String },
}

/// What one system prompt is made of.
pub struct Facts<'a> {
    /// The person's active plans, in full.
    pub plans: &'a [Plan],
    /// Plans finished or cancelled lately: named in one line.
    pub finished: &'a [Plan],
    /// The running summary of the turns older than the window.
    pub summary: Option<&'a str>,
    /// The person's local time.
    pub now: DateTime<Tz>,
}

pub struct Prompts {
    env: Environment<'static>,
    /// The goal templates, listed once at start-up.
    templates: String,
}

impl Prompts {
    /// Loads `system.j2` and `notification.j2` from `dir` where present,
    /// else the built-in copies, and renders each once with sample facts.
    pub fn load(dir: &Path) -> Result<Prompts, PromptError> {
        let env = templating::load(dir, &FILES)
            .map_err(|templating::FileError { file, reason }| PromptError::Template { file, reason })?;
        let prompts = Prompts {
            env,
            templates: "(none)".into(),
        };
        prompts.system(&Facts {
            plans: &[],
            finished: &[],
            summary: Some("- Mon Nov 30 09:00 person: \"hi\""),
            now: Utc::now().with_timezone(&chrono_tz::UTC),
        })?;
        prompts.notification("due_soon", "“Order laptop” is due tomorrow at 09:00.")?;
        Ok(prompts)
    }

    fn render(&self, name: &str, facts: minijinja::Value) -> Result<String, PromptError> {
        let failed = |e: minijinja::Error| PromptError::Template {
            file: name.to_owned(),
            reason: format!("{e:#}"),
        };
        self.env
            .get_template(name)
            .map_err(failed)?
            .render(facts)
            .map_err(failed)
    }

    /// Lists `templates` in every prompt (for `plan_from_template`).
    pub fn with_templates(mut self, templates: &Templates) -> Prompts {
        self.templates = templates.prompt_section();
        self
    }

    /// The system prompt for one model call. Pure: same facts, same text.
    pub fn system(&self, facts: &Facts<'_>) -> Result<String, PromptError> {
        let now = facts.now;
        let finished: Vec<String> = facts
            .finished
            .iter()
            .map(|p| format!("{} {} ({})", p.id, render::quoted(&p.title), p.status.as_str()))
            .collect();
        self.render(
            "system.j2",
            context! {
                local => now.format("%A %Y-%m-%d %H:%M").to_string(),
                offset => now.format("%:z").to_string(),
                time_zone => now.timezone().name(),
                plans => render::prompt_section(facts.plans, now.timezone()),
                finished => finished.join(", "),
                summary => facts.summary,
                templates => self.templates.as_str(),
            },
        )
    }

    /// The message that asks the model to word a notification of `kind`
    /// (`due_soon`, `overdue`, …) whose offline wording is `text`.
    pub fn notification(&self, kind: &str, text: &str) -> Result<String, PromptError> {
        self.render("notification.j2", context! { kind => kind, text => text })
    }

    /// The message that asks the model for a replan after the step
    /// `step_id` of `plan` failed for good with `error`.
    pub fn replan(&self, plan: &Plan, step_id: &str, error: &str) -> Result<String, PromptError> {
        let step = plan.step(step_id).map_or(step_id, |s| s.title.as_str());
        self.render(
            "replan.j2",
            context! {
                plan_id => plan.id.to_string(),
                plan => plan.title.clone(),
                step_id => step_id,
                step => step,
                error => error,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{PlanId, Step};
    use chrono::TimeZone;

    #[test]
    fn the_system_prompt_carries_every_active_plan_and_the_time() {
        let prompts = Prompts::load(Path::new("/nonexistent")).unwrap();
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap();
        let mut plan = Plan::draft("Onboard Ana", "", now);
        plan.id = PlanId(2);
        plan.version = 5;
        plan.steps.push(Step::new("laptop", "Order laptop"));
        let local = now.with_timezone(&chrono_tz::Europe::Berlin);
        let mut done = prompts_plan(now);
        done.id = PlanId(1);
        done.title = "Trip to \"Rome\"".into();
        done.status = crate::plan::PlanStatus::Done;
        let facts = |plans: &[Plan]| {
            let text = prompts.system(&Facts {
                plans,
                finished: std::slice::from_ref(&done),
                summary: Some("- Sun Nov 22 10:00 person: \"hi\""),
                now: local,
            });
            text.unwrap()
        };
        let text = facts(&[plan]);
        assert!(
            text.contains("Now: Sunday 2026-11-22 11:00 in Europe/Berlin (UTC+01:00), the person's zone; read and write dates in it."),
            "{text}"
        );
        assert!(
            text.contains("p2 \"Onboard Ana\" version=5 active 0/1 done\n  [ ] laptop \"Order laptop\"\n"),
            "{text}"
        );
        assert!(
            text.contains("Recently finished: p1 \"Trip to \\\"Rome\\\"\" (done)\n"),
            "{text}"
        );
        assert!(
            text.contains("## Earlier\n- Sun Nov 22 10:00 person: \"hi\"\n"),
            "{text}"
        );
        assert_eq!(text, facts(&[prompts_plan(now)]));
    }

    #[test]
    fn a_notification_event_is_marked_as_not_written_by_the_person() {
        let prompts = Prompts::load(Path::new("/nonexistent")).unwrap();
        assert_eq!(
            prompts.notification("overdue", "“Order laptop” is overdue.").unwrap(),
            "[steward scheduler event; the person did not write this]\n\
             overdue: “Order laptop” is overdue.\n\
             Write the message steward sends the person about this event: one or two short, concrete sentences. \
             Do not call tools."
        );
    }

    fn prompts_plan(now: DateTime<Utc>) -> Plan {
        let mut plan = Plan::draft("Onboard Ana", "", now);
        plan.id = PlanId(2);
        plan.version = 5;
        plan.steps.push(Step::new("laptop", "Order laptop"));
        plan
    }

    #[test]
    fn a_broken_template_is_refused_at_load_with_its_file_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("system.j2"), "Hello {{ plans ").unwrap();
        let err = Prompts::load(dir.path()).err().unwrap().to_string();
        assert!(err.contains("system.j2"), "{err}");
        std::fs::write(dir.path().join("system.j2"), "Hello {{ no_such_variable }}").unwrap();
        let err = Prompts::load(dir.path()).err().unwrap().to_string();
        assert!(err.contains("undefined"), "{err}");
    }
}
