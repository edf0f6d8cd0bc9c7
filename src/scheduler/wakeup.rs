//! The wall-clock heartbeat: a tokio-cron-scheduler cron job that wakes
//! the scheduler every minute, a safety net for wall-clock jumps (a
//! suspended VM, an NTP step) that a monotonic timer would sleep through.
//! It only pokes the scheduler; what is due is always read from the store.
//!
//! The precise wake-up for the earliest trigger is a tokio timer in
//! [`super::Scheduler::run`], not a one-shot job here: tokio-cron-scheduler
//! keeps one-shots as whole seconds and polls every 500 ms, so a one-shot
//! can run up to a second early or late. Its in-memory jobs, missing
//! misfire policy and frozen-offset time zones are also why local-time
//! recurrences are computed with chrono-tz and kept in the store.

use std::sync::Arc;
use tokio::sync::Notify;
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};

pub(crate) struct Wakeup {
    scheduler: JobScheduler,
}

impl Wakeup {
    pub(crate) async fn start(signal: Arc<Notify>) -> Result<Wakeup, JobSchedulerError> {
        let scheduler = JobScheduler::new().await?;
        scheduler
            .add(Job::new_async("0 * * * * *", move |_, _| {
                let beat = signal.clone();
                Box::pin(async move { beat.notify_one() })
            })?)
            .await?;
        scheduler.start().await?;
        Ok(Wakeup { scheduler })
    }

    pub(crate) async fn shutdown(mut self) {
        if let Err(e) = self.scheduler.shutdown().await {
            tracing::warn!(error = %e, "cron scheduler shutdown");
        }
    }
}
