//! Plans the unit tests share.

use super::{Plan, PlanId, Step, StepStatus};
use chrono::{DateTime, Utc};

/// An RFC 3339 time.
pub(crate) fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// "Onboard Ana" (p1), made Nov 20: the contract signed; the laptop due
/// Nov 24; accounts, waiting on the laptop, due Dec 20.
pub(crate) fn onboarding() -> Plan {
    let mut p = Plan::draft("Onboard Ana", "", at("2026-11-20T09:00:00Z"));
    p.id = PlanId(1);
    let mut laptop = Step::new("laptop", "Order laptop");
    laptop.due_at = Some(at("2026-11-24T08:00:00Z"));
    let mut accounts = Step::new("accounts", "Create accounts");
    accounts.depends_on = vec!["laptop".into()];
    accounts.due_at = Some(at("2026-12-20T08:00:00Z"));
    let mut contract = Step::new("contract", "Sign contract");
    contract.status = StepStatus::Completed;
    p.steps = vec![contract, laptop, accounts];
    p
}
