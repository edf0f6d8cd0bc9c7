//! Housekeeping on a cron schedule, with tokio-cron-scheduler: its jobs say
//! *when* (`notify.prune_cron`, UTC, default daily at 03:17); the work runs
//! in this task, one of the server's own, so shutdown waits for it and no
//! job ever outlives the store. Triggers never live here: the store is the
//! schedule for those (tokio-cron-scheduler keeps jobs in memory and has
//! no misfire policy).
//!
//! Chores: pruning what is finished and older than `notify.retention_days`
//! (fired-trigger records, routed notifications, sent or failed deliveries),
//! once at start and then on the schedule.

use crate::clock::Clock;
use crate::store::{Pruned, Store, StoreError};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};
use tokio_util::sync::CancellationToken;

/// Why the schedule could not start.
#[derive(Debug, thiserror::Error)]
#[error("housekeeping schedule `{cron}`: {source}")]
pub struct ScheduleError {
    cron: String,
    #[source]
    source: JobSchedulerError,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chore {
    Prune,
}

pub struct Housekeeping {
    pub store: Arc<dyn Store>,
    pub clock: Clock,
    /// Finished records older than this are removed.
    pub retention: chrono::Duration,
    /// When pruning runs (six fields, seconds first, UTC).
    pub prune_cron: String,
}

/// The running cron jobs and the chores they ask for.
pub struct Schedule {
    jobs: JobScheduler,
    chores: mpsc::Receiver<Chore>,
}

impl Housekeeping {
    /// Starts the cron jobs; a bad expression is refused here, at start-up.
    pub async fn schedule(&self) -> Result<Schedule, ScheduleError> {
        let fail = |source| ScheduleError {
            cron: self.prune_cron.clone(),
            source,
        };
        // One chore waiting is enough: a job that fires while the last run
        // is still going does not queue another.
        let (tx, chores) = mpsc::channel(1);
        let jobs = JobScheduler::new().await.map_err(fail)?;
        let job = Job::new_async(self.prune_cron.as_str(), move |_, _| {
            let tx = tx.clone();
            Box::pin(async move {
                let _ = tx.try_send(Chore::Prune);
            })
        })
        .map_err(fail)?;
        jobs.add(job).await.map_err(fail)?;
        jobs.start().await.map_err(fail)?;
        Ok(Schedule { jobs, chores })
    }

    /// Runs the chores the schedule asks for until `stop`.
    pub async fn run(self, mut schedule: Schedule, stop: CancellationToken) {
        self.log(self.prune().await);
        loop {
            let chore = tokio::select! {
                _ = stop.cancelled() => break,
                chore = schedule.chores.recv() => chore,
            };
            match chore {
                Some(Chore::Prune) => self.log(self.prune().await),
                None => break,
            }
        }
        if let Err(e) = schedule.jobs.shutdown().await {
            tracing::warn!(error = %e, "the cron schedule did not shut down cleanly");
        }
    }

    /// Removes finished records older than the retention.
    pub async fn prune(&self) -> Result<Pruned, StoreError> {
        self.store.prune((self.clock)() - self.retention).await
    }

    fn log(&self, pruned: Result<Pruned, StoreError>) {
        match pruned {
            Ok(p) => tracing::info!(
                fired = p.fired,
                notifications = p.notifications,
                outbox = p.outbox,
                "pruned old records"
            ),
            Err(e) => tracing::error!(error = %e, "pruning failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SledStore;

    fn housekeeping(cron: &str) -> (tempfile::TempDir, Housekeeping) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SledStore::open(dir.path()).unwrap());
        let h = Housekeeping {
            store,
            clock: crate::clock::system(),
            retention: chrono::Duration::days(90),
            prune_cron: cron.into(),
        };
        (dir, h)
    }

    #[tokio::test]
    async fn a_bad_cron_expression_is_refused_at_start_with_the_expression() {
        let (_dir, h) = housekeeping("every night at three");
        let err = h.schedule().await.err().unwrap().to_string();
        assert!(err.contains("every night at three"), "{err}");
    }

    #[tokio::test]
    async fn the_schedule_asks_for_pruning_when_its_job_fires() {
        let (_dir, h) = housekeeping("* * * * * *");
        let mut schedule = h.schedule().await.unwrap();
        let chore = tokio::time::timeout(std::time::Duration::from_secs(5), schedule.chores.recv()).await;
        assert_eq!(chore.unwrap(), Some(Chore::Prune));
        schedule.jobs.shutdown().await.unwrap();
    }
}
