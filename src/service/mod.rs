//! The plan service: every change to a user's plans, proposals, reminders
//! and preferences goes through here, whoever asks — the chat turn (and its
//! typed yes/no), the tools a model calls, the offline engine, REST, the
//! notification links — and so does every read made on a user's behalf.
//! The background workers (scheduler, notifier, digests) change nothing
//! but their own records; they read plans from the store directly and take
//! the rules, the clock and the wording from here. It owns the rules that
//! are not pure:
//!
//! - who acted (`Session::actor`, from the caller; the user always comes
//!   from the authenticated connection),
//! - the confirmation policy (which changes become proposals),
//! - limits across plans (active plans per user, reminders per user),
//! - which triggers a change implies, handed to the store with the write so
//!   both land in one transaction,
//! - telling the user's sockets (`Publisher`) once a change is stored.
//!
//! Inputs and outputs are typed; a `Refusal` is for whoever asked and
//! changes nothing, a store failure is fatal for the request.

mod error;
mod plans;
mod preferences;
mod proposals;
mod reminders;
mod steps;
mod undo;

pub use error::{Failure, PlanRef, Refusal, ServiceError};
pub(crate) use plans::{Applied, NewPlan, PlanChange, Snapshot};
pub(crate) use preferences::SavedPreferences;
pub(crate) use proposals::Decision;
pub use reminders::ReminderError;
pub(crate) use steps::reopen_for_check;
pub(crate) use undo::{Direction, Undone};

use crate::actions::Actions;
use crate::channels::email::Mail;
use crate::channels::links::Links;
use crate::clock::Clock;
use crate::config::Config;
use crate::events::{Event, Publisher};
use crate::metrics::Metrics;
use crate::plan::{Actor, Plan, PlanLimits};
use crate::proposal::ConfirmPolicy;
use crate::store::{Derived, Store, StoreError};
use crate::triggers::{self, TriggerPolicy};
use crate::user::UserId;
use crate::wording::Wording;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use std::sync::Arc;

/// The rules the service applies, from the configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Rules {
    pub limits: PlanLimits,
    pub max_active_plans: usize,
    pub confirm: ConfirmPolicy,
    pub triggers: TriggerPolicy,
    /// For users who have not set their own zone.
    pub default_tz: Tz,
}

impl Rules {
    pub(crate) fn from_config(config: &Config) -> Rules {
        Rules {
            limits: config.plan,
            max_active_plans: config.limits.max_active_plans,
            confirm: config.confirm,
            triggers: TriggerPolicy::from(&config.notify),
            default_tz: config.tz(),
        }
    }
}

/// Who acts, for whom, read once per turn or request.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// From the authenticated connection, never from arguments.
    pub user: UserId,
    /// Recorded in the history of every change this session makes.
    pub actor: Actor,
    /// The user's time zone (their preference, else the server's).
    pub tz: Tz,
}

/// What the service needs to send a verification email.
pub(crate) struct Mailing {
    pub mail: Arc<Mail>,
    pub links: Links,
}

/// Cheap to clone; every clone is the same service.
#[derive(Clone)]
pub struct Service {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    publisher: Arc<dyn Publisher>,
    clock: Clock,
    rules: Rules,
    mailing: Mailing,
    /// Pokes the notifier: something was queued to send.
    notifier_wake: Arc<tokio::sync::Notify>,
    /// How changes and replies read.
    wording: Arc<Wording>,
    /// The tools steps can be bound to.
    actions: Actions,
    metrics: Arc<Metrics>,
}

/// How long a finished or cancelled plan is still named to the model.
const RECENTLY_FINISHED: chrono::TimeDelta = chrono::TimeDelta::days(7);

impl Service {
    #[allow(clippy::too_many_arguments)] // the service's parts, each named once here
    pub(crate) fn new(
        store: Arc<dyn Store>,
        publisher: Arc<dyn Publisher>,
        clock: Clock,
        rules: Rules,
        mailing: Mailing,
        notifier_wake: Arc<tokio::sync::Notify>,
        wording: Arc<Wording>,
        actions: Actions,
        metrics: Arc<Metrics>,
    ) -> Service {
        Service {
            inner: Arc::new(Inner {
                store,
                publisher,
                clock,
                rules,
                mailing,
                notifier_wake,
                wording,
                actions,
                metrics,
            }),
        }
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        (self.inner.clock)()
    }

    /// Pokes the notifier: something was queued to send.
    pub(crate) fn wake_notifier(&self) {
        self.inner.notifier_wake.notify_one();
    }

    /// The session user's local time: dates they read are in their zone.
    pub(crate) fn local_now(&self, s: &Session) -> DateTime<Tz> {
        self.now().with_timezone(&s.tz)
    }

    pub(crate) fn rules(&self) -> &Rules {
        &self.inner.rules
    }

    /// Where the server's Prometheus series are counted.
    pub(crate) fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The tools steps can be bound to.
    pub(crate) fn actions(&self) -> &Actions {
        &self.inner.actions
    }

    /// How changes and replies read (`templates/chat`).
    pub(crate) fn wording(&self) -> &Arc<Wording> {
        &self.inner.wording
    }

    fn store(&self) -> &dyn Store {
        self.inner.store.as_ref()
    }

    fn publish(&self, user: &UserId, event: Event) {
        self.inner.publisher.publish(user, event);
    }

    /// Counts a plan in `steward_plans_created_total` when it was `created`.
    fn count_creation(&self, plan: &Plan, created: bool) {
        if created {
            let kind = Metrics::kind(&plan.objective.kind);
            self.inner.metrics.plans_created.get_or_create(&kind).inc();
        }
    }

    fn published_plan(&self, user: &UserId, plan: &Plan) {
        self.publish(
            user,
            Event::Plan {
                plan: plan.clone(),
                shown: false,
            },
        );
    }

    /// The user's session: their time zone is read once, here. A failed
    /// read is logged and the server's zone used, so a damaged preferences
    /// record never blocks a user from their plans.
    pub async fn session(&self, user: &UserId, actor: Actor) -> Session {
        Session {
            user: user.clone(),
            actor,
            tz: self.time_zone(user).await,
        }
    }

    /// The user's time zone: their preference, else the configured one.
    pub(crate) async fn time_zone(&self, user: &UserId) -> Tz {
        match self.store().preferences(user).await {
            Ok(prefs) => prefs.tz(self.inner.rules.default_tz),
            Err(e) => {
                tracing::warn!(user_id = %user, error = %e, "could not read preferences; using the default zone");
                self.inner.rules.default_tz
            }
        }
    }

    /// The time zone `prefs` put the user in: theirs, else the server's.
    pub(crate) fn tz_of(&self, prefs: &crate::preferences::Preferences) -> Tz {
        prefs.tz(self.inner.rules.default_tz)
    }

    /// The user's active plans, oldest first.
    pub(crate) async fn active_plans(&self, user: &UserId) -> Result<Vec<Plan>, StoreError> {
        let mut plans = self.store().list_plans(user).await?;
        plans.retain(Plan::is_active);
        Ok(plans)
    }

    /// What a model call shows of the user's plans: the active ones, and
    /// those finished or cancelled in the last `RECENTLY_FINISHED` (named
    /// only), newest first. One read.
    pub(crate) async fn plans_in_view(&self, user: &UserId) -> Result<(Vec<Plan>, Vec<Plan>), StoreError> {
        let since = self.now() - RECENTLY_FINISHED;
        let (active, mut closed): (Vec<Plan>, Vec<Plan>) = self
            .store()
            .list_plans(user)
            .await?
            .into_iter()
            .partition(Plan::is_active);
        closed.retain(|p| p.updated_at >= since);
        closed.sort_by_key(|p| std::cmp::Reverse(p.updated_at));
        closed.truncate(5);
        Ok((active, closed))
    }

    /// The triggers a plan implies under this service's policy, and the
    /// steps the engine may start: what the store syncs in the same
    /// transaction as the plan write.
    fn derive(&self, user: &UserId) -> impl Fn(&Plan) -> Derived + Send + Sync + use<> {
        let (user, policy) = (user.clone(), self.inner.rules.triggers);
        move |plan: &Plan| Derived {
            triggers: triggers::for_plan(&user, plan, &policy),
            arm_after: plan.updated_at,
            runnable: crate::execution::runnable(plan),
        }
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use crate::events::Written;
    use std::path::Path;

    /// Publishes nowhere.
    pub(crate) struct Nobody;

    #[async_trait::async_trait]
    impl Publisher for Nobody {
        fn publish(&self, _: &UserId, _: Event) -> usize {
            0
        }
        fn publish_tracked(&self, _: &UserId, _: Event) -> Option<Written> {
            None
        }
        async fn is_online(&self, _: &UserId) -> bool {
            false
        }
    }

    /// A service over `store` with the default rules (UTC), the built-in
    /// email templates and a fixed link key.
    pub(crate) fn service(store: Arc<dyn Store>, clock: Clock) -> Service {
        service_with(store, clock, &Config::default())
    }

    /// [`service`] with the rules of `config`.
    pub(crate) fn service_with(store: Arc<dyn Store>, clock: Clock, config: &Config) -> Service {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mail = Mail::load(&root.join("templates/email"), "steward <steward@localhost>").unwrap();
        Service::new(
            store,
            Arc::new(Nobody),
            clock,
            Rules::from_config(config),
            Mailing {
                mail: Arc::new(mail),
                links: Links::new(vec![7; 32], "http://127.0.0.1:8080"),
            },
            Arc::new(tokio::sync::Notify::new()),
            Arc::new(Wording::built_in().unwrap()),
            Actions::built_in(),
            Arc::new(Metrics::new()),
        )
    }
}
