//! The wake-up: tokio-cron-scheduler holds a one-shot job at the earliest
//! armed trigger and a per-minute cron heartbeat (a safety net for wall
//! clock jumps and anything missed). Both only poke the scheduler; which
//! triggers are due is always read from the store, because the cron
//! scheduler keeps jobs in memory, has no misfire policy, and computes
//! time-zoned cron ticks with a frozen offset (wrong after a DST change),
//! so local-time recurrences are computed with chrono-tz instead.

use chrono::{DateTime, Utc};
use std::sync::Arc;
use tokio::sync::{Mutex, Notify};
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};
use uuid::Uuid;

pub struct Wakeup {
    scheduler: JobScheduler,
    signal: Arc<Notify>,
    /// The armed one-shot and the instant it is for.
    armed: Mutex<Option<(Uuid, DateTime<Utc>)>>,
}

impl Wakeup {
    pub async fn start(signal: Arc<Notify>) -> Result<Wakeup, JobSchedulerError> {
        let scheduler = JobScheduler::new().await?;
        let beat = signal.clone();
        scheduler
            .add(Job::new_async("0 * * * * *", move |_, _| {
                let beat = beat.clone();
                Box::pin(async move { beat.notify_one() })
            })?)
            .await?;
        scheduler.start().await?;
        Ok(Wakeup {
            scheduler,
            signal,
            armed: Mutex::new(None),
        })
    }

    /// Makes sure a one-shot fires at `at` (replacing one for another time).
    pub async fn arm(&self, at: DateTime<Utc>, now: DateTime<Utc>) {
        let mut armed = self.armed.lock().await;
        if let Some((_, when)) = *armed
            && when == at
        {
            return;
        }
        if let Some((id, _)) = armed.take()
            && let Err(e) = self.scheduler.remove(&id).await
        {
            tracing::warn!(error = %e, "could not remove the previous wake-up");
        }
        let delay = (at - now).to_std().unwrap_or_default();
        let signal = self.signal.clone();
        let job = Job::new_one_shot_at_instant_async(std::time::Instant::now() + delay, move |_, _| {
            let signal = signal.clone();
            Box::pin(async move { signal.notify_one() })
        });
        match job {
            Ok(job) => match self.scheduler.add(job).await {
                Ok(id) => *armed = Some((id, at)),
                Err(e) => tracing::error!(error = %e, "could not arm the wake-up"),
            },
            Err(e) => tracing::error!(error = %e, "could not build the wake-up"),
        }
    }

    pub async fn shutdown(mut self) {
        if let Err(e) = self.scheduler.shutdown().await {
            tracing::warn!(error = %e, "cron scheduler shutdown");
        }
    }
}
