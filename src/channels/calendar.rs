//! The iCalendar feed of a user's dated steps and of the events tools put
//! in their calendar, so Google Calendar, Outlook or Apple Calendar can
//! subscribe to their plans. Pure: plans and events in, text out.

use crate::execution::CalendarEvent;
use crate::plan::{Plan, PlanStatus, StepStatus};
use crate::user::UserId;
use chrono::{DateTime, Duration, Utc};
use icalendar::{Calendar, Component, Event, EventLike};
use sha2::{Digest, Sha256};

/// A short, stable tag for the user in UIDs: step ids repeat across users
/// ("p1.laptop"), and a calendar app that merges feeds must not merge
/// two people's events. Hashed, so the UID does not name the user.
fn user_tag(user: &UserId) -> String {
    let digest = Sha256::digest(user.as_str().as_bytes());
    digest[..6].iter().map(|b| format!("{b:02x}")).collect()
}

/// One event per dated step of the user's active plans (30 minutes at the
/// due time; finished steps are marked so in the title), and one per
/// event a tool added. UIDs are unique per user and server.
pub(crate) fn feed(
    user: &UserId,
    plans: &[Plan],
    events: &[CalendarEvent],
    domain: &str,
    now: DateTime<Utc>,
) -> String {
    let mut cal = Calendar::new();
    cal.name("steward plans");
    let tag = user_tag(user);
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
                    .uid(&format!("{tag}.{}.{}@{domain}", plan.id, step.id))
                    .summary(&format!("{mark}{}", one_line(&step.title)))
                    .description(&format!("{} — {} ({})", one_line(&plan.title), step.status, plan.id))
                    .timestamp(now)
                    .starts(due)
                    .ends(due + Duration::minutes(30))
                    .done(),
            );
        }
    }
    for event in events {
        let mut e = Event::new();
        e.uid(&format!("{}@{domain}", event.key))
            .summary(&one_line(&event.title))
            .timestamp(event.created_at)
            .starts(event.starts)
            .ends(event.ends);
        if let Some(location) = &event.location {
            e.location(&one_line(location));
        }
        cal.push(e.done());
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
    use crate::user::UserId;

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
        let ana = UserId::parse("ana").unwrap();
        let event = CalendarEvent {
            key: "stw-k1".into(),
            title: "Departure to Lisbon".into(),
            starts: now + Duration::days(3),
            ends: now + Duration::days(3) + Duration::hours(2),
            location: Some("LIS".into()),
            plan_id: Some(PlanId(2)),
            created_at: now,
        };
        let ics = feed(&ana, std::slice::from_ref(&p), &[event], "steward.test", now);
        assert_eq!(ics.matches("BEGIN:VEVENT").count(), 2);
        let uid = format!("UID:{}.p2.laptop@steward.test", user_tag(&ana));
        assert!(ics.contains(&uid), "{ics}");
        assert!(
            ics.contains("UID:stw-k1@steward.test") && ics.contains("SUMMARY:Departure to Lisbon"),
            "{ics}"
        );
        // Another user's feed with the same plan and step ids has other UIDs.
        let bob = feed(&UserId::parse("bob").unwrap(), &[p], &[], "steward.test", now);
        assert!(!bob.contains(&uid), "{bob}");
        assert!(ics.contains("DTSTART:20261124T100000Z"), "{ics}");
        assert!(!ics.contains("\nX-Injected"), "{ics}");
    }
}
