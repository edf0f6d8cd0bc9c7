//! `list_plans`: the user's plans, one line each.

use super::{Tool, ToolContext, ToolError};
use crate::plan::{Plan, PlanId, PlanStatus, StepStatus, render};
use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize, Serializer};

pub(crate) struct ListPlans;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    /// Also list done and cancelled plans.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) include_closed: bool,
}

/// The listed plans.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed(pub Vec<Plan>);

#[derive(Serialize)]
struct Line<'a> {
    id: PlanId,
    title: &'a str,
    status: PlanStatus,
    version: u64,
    done: usize,
    steps: usize,
    next: Option<&'a str>,
}

impl Serialize for Listed {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Body<'a> {
            plans: Vec<Line<'a>>,
        }
        Body {
            plans: self
                .0
                .iter()
                .map(|p| Line {
                    id: p.id,
                    title: &p.title,
                    status: p.status,
                    version: p.version,
                    done: p.count(StepStatus::Completed),
                    steps: p.steps.len(),
                    next: render::next_step(p).map(|s| s.title.as_str()),
                })
                .collect(),
        }
        .serialize(s)
    }
}

#[async_trait]
impl Tool for ListPlans {
    const NAME: &'static str = "list_plans";
    const DESCRIPTION: &'static str = "Every plan, closed ones too, with progress and next step.";
    const HINT: &'static str = "closed ones too";
    type Args = Args;
    type Output = Listed;

    async fn run(&self, ctx: ToolContext<'_>, args: Args) -> Result<Listed, ToolError> {
        Ok(Listed(ctx.service.plans(ctx.session, args.include_closed).await?))
    }
}
