//! The iCalendar feed of a user's dated steps, so Google Calendar, Outlook
//! or Apple Calendar can subscribe to their plans. Pure: plans in, text out.

use crate::plan::{Plan, PlanStatus, StepStatus};
use chrono::{DateTime, Duration, Utc};
use icalendar::{Calendar, Component, Event, EventLike};

/// One event per dated step of the user's active plans (30 minutes at the
/// due time); finished steps are marked so in the title.
pub(crate) fn feed(plans: &[Plan], domain: &str, now: DateTime<Utc>) -> String {
    let mut cal = Calendar::new();
    cal.name("steward plans");
    for plan in plans.iter().filter(|p| p.status == PlanStatus::Active) {
        for step in &plan.steps {
            let Some(due) = step.due_at else { continue };
            let mark = match step.status {
                StepStatus::Completed => "✓ ",
                StepStatus::Cancelled => "✗ ",
                StepStatus::Pending | StepStatus::InProgress | StepStatus::Failed => "",
            };
            cal.push(
                Event::new()
                    .uid(&format!("{}.{}@{domain}", plan.id, step.id))
                    .summary(&format!("{mark}{}", one_line(&step.title)))
                    .description(&format!("{} — {} ({})", one_line(&plan.title), step.status, plan.id))
                    .timestamp(now)
                    .starts(due)
                    .ends(due + Duration::minutes(30))
                    .done(),
            );
        }
    }
    cal.to_string()
}

/// icalendar escapes commas, semicolons and LF but not CR: keep text on one line.
fn one_line(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{PlanId, Step};

    #[test]
    fn the_feed_has_one_event_per_dated_step_with_a_stable_uid() {
        let now = DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut p = Plan::draft("Onboard Ana", "", now);
        p.id = PlanId(2);
        let mut laptop = Step::new("laptop", "Order laptop\r\nX-Injected: yes");
        laptop.due_at = Some(now + Duration::days(1));
        p.steps = vec![laptop, Step::new("lunch", "Lunch")];
        let ics = feed(&[p], "steward.test", now);
        assert_eq!(ics.matches("BEGIN:VEVENT").count(), 1);
        assert!(ics.contains("UID:p2.laptop@steward.test"), "{ics}");
        assert!(ics.contains("DTSTART:20261124T100000Z"), "{ics}");
        assert!(!ics.contains("\nX-Injected"), "{ics}");
    }
}
