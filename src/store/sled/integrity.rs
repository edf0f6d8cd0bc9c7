//! A damaged data directory. sled panics on some truncations of its file
//! and fails reads on others, so opening reads every record once: damage is
//! found at start with a clear refusal, not by a scheduler tick hours
//! later. Other truncations make sled recover quietly to an older state.
//! Two records outside sled catch those: a census of records written at
//! each clean stop, and a watermark — a number sled is given and flushes,
//! written to a file after the flush, at most once a second — which also
//! holds after a crash: sled never holds a lower mark than the file unless
//! it lost data it had flushed. `salvage` exports what can still be read.

use super::{Inner, SledStore};
use crate::store::StoreError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::time::{Duration, Instant};

/// Consecutive read errors after which a tree's scan in one direction stops.
const ERRORS_PER_SCAN: usize = 64;

/// Runs `f`, turning a panic inside sled into [`StoreError::Damaged`].
pub(super) fn guard<T>(dir: &Path, doing: &str, f: impl FnOnce() -> T) -> Result<T, StoreError> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into());
        damaged(dir, format!("sled failed {doing}: {message}"))
    })
}

fn damaged(dir: &Path, detail: String) -> StoreError {
    StoreError::Damaged {
        path: dir.display().to_string(),
        detail,
    }
}

/// The census file in the data directory.
const CENSUS: &str = "census.json";

/// How many records the store held when it stopped cleanly; `clean` is
/// false from the first write of a run until its clean stop.
#[derive(Serialize, Deserialize)]
struct Census {
    records: u64,
    clean: bool,
}

fn read_census(dir: &Path) -> Option<Census> {
    serde_json::from_slice(&std::fs::read(dir.join(CENSUS)).ok()?).ok()
}

fn write_census(dir: &Path, census: &Census) -> std::io::Result<()> {
    write_synced(dir, CENSUS, &serde_json::to_vec(census)?)
}

/// Replaces `dir/name` with `bytes`, synced before the rename: the file
/// holds the old bytes or the new ones, never a part.
fn write_synced(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let partial = dir.join(format!("{name}.partial"));
    let mut file = std::fs::File::create(&partial)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&partial, dir.join(name))
}

/// The watermark file in the data directory.
const WATERMARK: &str = "watermark";
/// The mark sled was last given, in `meta`.
const MARK_KEY: &[u8] = b"watermark";
/// How often a flush also moves the watermark (a file written and synced).
const MARK_EVERY: Duration = Duration::from_secs(1);

/// The watermark of a running store. Flushes run one at a time, so the
/// lock is never contended.
#[derive(Default)]
pub(super) struct Marks(std::sync::Mutex<MarkState>);

#[derive(Default)]
struct MarkState {
    /// The last mark given to sled.
    last: u64,
    /// When it was given (none yet in this run).
    at: Option<Instant>,
}

impl Marks {
    /// Continues from the mark sled holds.
    pub(super) fn from_store(meta: &sled::Tree) -> Marks {
        let last = stored_mark(meta).unwrap_or(0);
        Marks(std::sync::Mutex::new(MarkState { last, at: None }))
    }
}

fn stored_mark(meta: &sled::Tree) -> Option<u64> {
    let bytes = meta.get(MARK_KEY).ok()??;
    Some(u64::from_be_bytes(bytes.as_ref().try_into().ok()?))
}

/// Before a flush: when the watermark is due to move, the next mark, given
/// to sled so that this flush makes it durable.
pub(super) fn next_mark(inner: &Inner) -> Option<u64> {
    let mut marks = inner.marks.0.lock().ok()?;
    if marks.at.is_some_and(|at| at.elapsed() < MARK_EVERY) {
        return None;
    }
    let next = marks.last + 1;
    inner.meta.insert(MARK_KEY, &next.to_be_bytes()).ok()?;
    *marks = MarkState {
        last: next,
        at: Some(Instant::now()),
    };
    Some(next)
}

/// After the flush that made `mark` durable: the file may now say so.
pub(super) fn record_mark(inner: &Inner, mark: u64) {
    if let Err(e) = write_synced(&inner.dir, WATERMARK, mark.to_string().as_bytes()) {
        tracing::warn!(error = %e, "could not write the store's watermark");
    }
}

/// Refuses a store whose mark is below its watermark file's: sled had
/// flushed data it no longer holds.
pub(super) fn compare_watermark(dir: &Path, meta: &sled::Tree) -> Result<(), StoreError> {
    let Some(file) = std::fs::read_to_string(dir.join(WATERMARK))
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok())
    else {
        return Ok(());
    };
    let held = stored_mark(meta).unwrap_or(0);
    if held < file {
        return Err(damaged(
            dir,
            format!(
                "it had flushed up to mark {file} (see the `{WATERMARK}` file) and holds mark {held} now: \
                 the database file was cut short or replaced after data was saved"
            ),
        ));
    }
    Ok(())
}

/// Refuses a store that holds fewer records than at its last clean stop:
/// nothing ran since, so records can only have been lost.
pub(super) fn compare_census(dir: &Path, records: u64) -> Result<(), StoreError> {
    match read_census(dir) {
        Some(census) if census.clean && records < census.records => Err(damaged(
            dir,
            format!(
                "it held {} records when steward last stopped cleanly and {records} can be read now: \
                 the database file was cut short or replaced",
                census.records
            ),
        )),
        _ => Ok(()),
    }
}

/// Before the first flush of a run: the census no longer describes the
/// store until the run stops cleanly.
pub(super) fn mark_running(inner: &Inner) {
    if inner.census_unclean.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return;
    }
    let records = read_census(&inner.dir).map_or(0, |c| c.records);
    if let Err(e) = write_census(&inner.dir, &Census { records, clean: false }) {
        tracing::warn!(error = %e, "could not write the store's census");
    }
}

/// At a clean stop (nothing is writing): the records there are now.
pub(super) fn mark_stopped(store: &SledStore) {
    if !store.inner.census_unclean.load(std::sync::atomic::Ordering::SeqCst) {
        return; // nothing written this run: the census still holds
    }
    // Counted only over what is on disk: after a failed write sled may
    // hold records in memory that the next start will not find.
    if store.inner.broken.get().is_some() || store.inner.db.flush().is_err() {
        return;
    }
    match store.check_readable(&store.inner.dir) {
        Ok(records) => {
            match write_census(&store.inner.dir, &Census { records, clean: true }) {
                // A later write of this process marks the run again.
                Ok(()) => store
                    .inner
                    .census_unclean
                    .store(false, std::sync::atomic::Ordering::SeqCst),
                Err(e) => tracing::warn!(error = %e, "could not write the store's census"),
            }
        }
        Err(e) => tracing::error!(error = %e, "the store could not be read whole at shutdown"),
    }
}

/// What `salvage` wrote and what it could not read.
#[derive(Debug, Default)]
pub struct Salvage {
    pub written: u64,
    /// Per tree: records (or pages) that could not be read or decoded.
    pub lost: BTreeMap<&'static str, u64>,
    /// When sled could not open the file whole: the bytes of it read.
    pub shortened_to: Option<u64>,
}

impl SledStore {
    /// Reads every record of every tree once; the number read.
    pub(super) fn check_readable(&self, dir: &Path) -> Result<u64, StoreError> {
        let mut records = 0;
        for name in SledStore::TREES {
            let Some(tree) = self.tree(name) else { continue };
            let read = guard(dir, &format!("reading {name}"), || {
                tree.iter().try_fold(0u64, |n, item| item.map(|_| n + 1))
            })?;
            records += read.map_err(|e| damaged(dir, format!("reading {name}: {e}")))?;
        }
        Ok(records)
    }

    /// Writes, as an export, every record of `dir` that can still be read:
    /// each tree is read forwards until its first unreadable page and then
    /// backwards from its end to meet it, so records past the damage are
    /// kept too. Values that do not decode are left out and counted.
    pub fn salvage(dir: &Path, out: &mut dyn std::io::Write) -> Result<Salvage, StoreError> {
        match SledStore::open_unchecked(dir) {
            Ok(store) => store.salvage_from(dir, out),
            Err(StoreError::Damaged { .. }) => {
                // sled cannot open it at all: open a copy whose file is cut
                // back, step by step, to the last state sled can read.
                let scratch = dir.with_file_name(format!(
                    ".{}.salvage-{}",
                    dir.file_name()
                        .map_or("data".into(), |n| n.to_string_lossy().into_owned()),
                    std::process::id()
                ));
                let salvaged = SledStore::open_shortened(dir, &scratch).and_then(|(store, kept)| {
                    let mut report = store.salvage_from(dir, out)?;
                    report.shortened_to = Some(kept);
                    Ok(report)
                });
                let _ = std::fs::remove_dir_all(&scratch);
                salvaged
            }
            Err(e) => Err(e),
        }
    }

    /// A copy of `dir` in `scratch` with its database file cut back to the
    /// longest prefix (whole, then in steps of `STEP` bytes) that sled
    /// opens; the store and the bytes kept.
    fn open_shortened(dir: &Path, scratch: &Path) -> Result<(SledStore, u64), StoreError> {
        const STEP: u64 = 64 * 1024;
        let fs = |e: std::io::Error| StoreError::Backend(format!("copying the data directory to salvage it: {e}"));
        let _ = std::fs::remove_dir_all(scratch);
        std::fs::create_dir_all(scratch).map_err(fs)?;
        // Without its snapshot files sled rebuilds its index from the log
        // alone (a snapshot newer than what is left refuses the open).
        for entry in std::fs::read_dir(dir).map_err(fs)? {
            let entry = entry.map_err(fs)?;
            let snapshot = entry.file_name().to_string_lossy().starts_with("snap.");
            if entry.file_type().map_err(fs)?.is_file() && !snapshot {
                std::fs::copy(entry.path(), scratch.join(entry.file_name())).map_err(fs)?;
            }
        }
        let db = std::fs::OpenOptions::new()
            .write(true)
            .open(scratch.join("db"))
            .map_err(fs)?;
        let whole = db.metadata().map_err(fs)?.len();
        let mut len = whole;
        while len > 0 {
            db.set_len(len).map_err(fs)?;
            if let Ok(store) = SledStore::open_unchecked(scratch) {
                return Ok((store, len));
            }
            len = (len - 1) / STEP * STEP;
        }
        Err(damaged(dir, "no part of the database file can be opened".into()))
    }

    fn salvage_from(&self, dir: &Path, out: &mut dyn std::io::Write) -> Result<Salvage, StoreError> {
        let store = self;
        let io = |e: std::io::Error| StoreError::Backend(format!("writing the salvage: {e}"));
        writeln!(out, "{}", serde_json::json!({"steward_export": super::FORMAT})).map_err(io)?;
        let mut report = Salvage::default();
        for name in SledStore::TREES {
            let Some(tree) = store.tree(name) else { continue };
            let mut records: BTreeMap<sled::IVec, sled::IVec> = BTreeMap::new();
            let mut lost = 0u64;
            let forward = guard(dir, &format!("reading {name}"), || {
                scan(tree.iter(), &mut records, None)
            });
            let (errors, last) = forward.unwrap_or((1, None));
            lost += errors;
            if errors > 0 {
                let backward = guard(dir, &format!("reading {name} backwards"), || {
                    scan(tree.iter().rev(), &mut records, last.as_ref())
                });
                lost += backward.map_or(1, |(errors, _)| errors);
            }
            for (key, value) in &records {
                match SledStore::line(name, key, value) {
                    Ok(line) => {
                        writeln!(out, "{line}").map_err(io)?;
                        report.written += 1;
                    }
                    Err(_) => lost += 1,
                }
            }
            if lost > 0 {
                report.lost.insert(name, lost);
            }
        }
        out.flush().map_err(io)?;
        Ok(report)
    }
}

/// Collects records from `items` until it meets `stop` (a key already
/// read from the other side) or errors `ERRORS_PER_SCAN` times in a row;
/// the errors and the last key read.
fn scan(
    items: impl Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>,
    records: &mut BTreeMap<sled::IVec, sled::IVec>,
    stop: Option<&sled::IVec>,
) -> (u64, Option<sled::IVec>) {
    let (mut errors, mut in_a_row, mut last) = (0u64, 0usize, None);
    for item in items {
        match item {
            Ok((key, value)) => {
                if stop == Some(&key) {
                    break;
                }
                in_a_row = 0;
                last = Some(key.clone());
                records.insert(key, value);
            }
            Err(_) => {
                errors += 1;
                in_a_row += 1;
                if in_a_row >= ERRORS_PER_SCAN {
                    break;
                }
            }
        }
    }
    (errors, last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{AccountStore, Store};
    use crate::user::UserId;

    /// Copies the files of `from` (not directories) into `to`.
    fn copy_files(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
            }
        }
    }

    #[tokio::test]
    async fn a_store_that_lost_flushed_data_after_a_crash_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let older = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        // A run that writes and crashes (no clean stop: no census to compare).
        {
            let store = SledStore::open(&data).unwrap();
            store.ensure_user(&UserId::parse("ana").unwrap()).await.unwrap();
        }
        assert_eq!(std::fs::read_to_string(data.join(WATERMARK)).unwrap(), "1");
        copy_files(&data, older.path());
        // The next run's first flush moves the mark again.
        {
            let store = SledStore::open(&data).unwrap();
            store.ensure_user(&UserId::parse("ben").unwrap()).await.unwrap();
        }
        assert_eq!(std::fs::read_to_string(data.join(WATERMARK)).unwrap(), "2");
        // Every file of sled goes back to the first run's; the watermark
        // file stays: flushed data is gone.
        let watermark = std::fs::read(data.join(WATERMARK)).unwrap();
        std::fs::remove_dir_all(&data).unwrap();
        copy_files(older.path(), &data);
        std::fs::write(data.join(WATERMARK), &watermark).unwrap();
        let Err(refused) = SledStore::open(&data) else {
            panic!("a store that lost flushed data opened")
        };
        assert!(matches!(refused, StoreError::Damaged { .. }), "{refused}");
        assert!(refused.to_string().contains("flushed up to mark 2"), "{refused}");
        assert!(refused.to_string().contains("holds mark 1"), "{refused}");
        // The same files with their own watermark open (and so does a data
        // directory without one, as before this file existed).
        std::fs::copy(older.path().join(WATERMARK), data.join(WATERMARK)).unwrap();
        SledStore::open(&data).unwrap().quiesce().await;
        std::fs::remove_file(data.join(WATERMARK)).unwrap();
        SledStore::open(&data).unwrap();
    }
}
