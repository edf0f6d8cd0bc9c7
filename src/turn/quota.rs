//! A user's daily model tokens: a token must be left before each model
//! call, and what the call used (as the provider reports it, else an
//! estimate) is charged after it, into debt when it used more than was
//! left; the debt refills before the next call is allowed.

use super::{TurnError, Turns};
use crate::llm::{ModelRequest, ModelResponse, Usage};
use crate::store::{Budget, Spend};
use crate::user::UserId;

pub(super) struct Quota<'a> {
    app: &'a Turns,
    bucket: String,
    budget: Budget,
}

impl<'a> Quota<'a> {
    pub(super) fn new(app: &'a Turns, user: &UserId) -> Quota<'a> {
        Quota {
            app,
            bucket: format!("model:{user}"),
            budget: Budget::per_day(app.model_tokens_per_day),
        }
    }

    /// Refuses the call when the day's tokens are used up.
    pub(super) async fn before_call(&self) -> Result<(), TurnError> {
        let now = self.app.service.now();
        match self
            .app
            .store
            .spend(&self.bucket, self.budget, Spend::Take(1.0), now)
            .await?
        {
            Ok(()) => Ok(()),
            Err(wait) => Err(TurnError::Quota(wait)),
        }
    }

    /// Charges what the call used, and counts it in the metrics.
    pub(super) async fn after_call(&self, request: &ModelRequest, answer: &ModelResponse) -> Result<(), TurnError> {
        let used = answer.usage.unwrap_or_else(|| Usage::estimate(request, answer));
        self.app.service.metrics().model_tokens(used.prompt, used.completion);
        let now = self.app.service.now();
        // A charge is always taken (down to one day's debt).
        let _ = self
            .app
            .store
            .spend(&self.bucket, self.budget, Spend::Charge(used.total() as f64), now)
            .await?;
        Ok(())
    }
}
