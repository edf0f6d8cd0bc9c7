//! Which tools a model call offers. Every call carries `update_plan` and
//! `load_tools`; the others come when the person's message calls for them
//! (as the interpreter reads it), when the turns the call carries used
//! them, when the person has no plan yet (a first goal), or when the model
//! asks with `load_tools`. Offering is about what a request carries, not
//! what may run: a call to any tool of the registry runs.

use crate::conversation::{Message, ToolCall};
use crate::interpreter::{Command, Interpretation};
use crate::tools::load_tools::{self, LoadTools};
use crate::tools::{Offer, Registry, Tool};

/// The tools a message calls for, beside those always offered.
fn called_for(reading: &Interpretation) -> &'static [&'static str] {
    match reading {
        Interpretation::NewGoal { .. } => &["plan_from_template"],
        Interpretation::Command(command) => match command {
            Command::Undo { .. } | Command::Redo { .. } => &["undo", "redo"],
            Command::History { .. } => &["plan_history"],
            Command::Remind { .. } => &["remind"],
            Command::ListPlans {} => &["list_plans"],
            Command::ShowPlan { .. } => &["show_plan"],
            Command::Digest { .. }
            | Command::SetTimezone { .. }
            | Command::SetEmail { .. }
            | Command::SetQuietHours { .. }
            | Command::QuietHoursOff {} => &["set_preferences"],
            _ => &[],
        },
        Interpretation::Chat | Interpretation::Confirmation { .. } | Interpretation::Unclear { .. } => &[],
    }
}

/// What a turn's first call offers.
pub(super) fn first(tools: &Registry, reading: &Interpretation, carried: &[Message], has_plans: bool) -> Offer {
    let mut offer = tools.offer(tools.always(), called_for(reading).iter().copied());
    for message in carried {
        if let Message::Assistant { tool_calls, .. } = message {
            offer = tools.offer(offer, tool_calls.iter().map(|c| c.name.as_str()));
        }
    }
    if !has_plans {
        offer = tools.offer(offer, ["plan_from_template"]);
    }
    offer
}

/// The offer after `call` ran: what a `load_tools` call asked for joins.
pub(super) fn after(tools: &Registry, offer: Offer, call: &ToolCall) -> Offer {
    if call.name != LoadTools::NAME {
        return offer;
    }
    let names = load_tools::requested(&call.arguments);
    tools.offer(offer, names.iter().map(String::as_str))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::Actions;
    use crate::planner::templates::Templates;
    use std::sync::Arc;

    fn registry() -> Registry {
        crate::tools::registry(Arc::new(Templates::built_in().unwrap()), &Actions::built_in())
    }

    fn names(tools: &Registry, offer: Offer) -> Vec<&'static str> {
        tools.specs_for(offer).iter().map(|s| s.name).collect()
    }

    #[test]
    fn a_plain_message_offers_the_two_tools_of_every_call() {
        let tools = registry();
        let offer = first(&tools, &Interpretation::Chat, &[], true);
        assert_eq!(names(&tools, offer), ["update_plan", "load_tools"]);
    }

    #[test]
    fn a_message_calls_for_its_tools_and_a_person_without_plans_for_templates() {
        let tools = registry();
        let undo = Interpretation::Command(Command::Undo { plan: None });
        assert_eq!(
            names(&tools, first(&tools, &undo, &[], true)),
            ["update_plan", "load_tools", "undo", "redo"]
        );
        assert_eq!(
            names(&tools, first(&tools, &Interpretation::Chat, &[], false)),
            ["update_plan", "load_tools", "plan_from_template"]
        );
        let zone = Interpretation::Command(Command::SetTimezone {
            zone: "Asia/Tokyo".into(),
        });
        assert!(names(&tools, first(&tools, &zone, &[], true)).contains(&"set_preferences"));
    }

    #[test]
    fn tools_used_in_the_carried_turns_stay_offered_and_load_tools_adds_what_it_names() {
        let tools = registry();
        let call = |name: &str, arguments: &str| ToolCall {
            id: "c".into(),
            name: name.into(),
            arguments: arguments.into(),
        };
        let carried = [Message::Assistant {
            text: String::new(),
            tool_calls: vec![call("remind", "{}")],
            notification: None,
        }];
        let offer = first(&tools, &Interpretation::Chat, &carried, true);
        assert_eq!(names(&tools, offer), ["update_plan", "load_tools", "remind"]);
        let offer = after(
            &tools,
            offer,
            &call("load_tools", r#"{"names":["plan_history","no_such"]}"#),
        );
        assert_eq!(
            names(&tools, offer),
            ["update_plan", "load_tools", "plan_history", "remind"]
        );
        assert_eq!(after(&tools, offer, &call("load_tools", "not json")), offer);
        assert_eq!(after(&tools, offer, &call("show_plan", r#"{"names":["undo"]}"#)), offer);
    }
}
