//! A damaged data directory. sled panics on some truncations of its file
//! and fails reads on others, so opening reads every record once: damage is
//! found at start with a clear refusal, not by a scheduler tick hours
//! later. Other truncations make sled recover quietly to an older state;
//! a census of records written at each clean stop catches those (after a
//! crash there is nothing to compare with). `salvage` exports what can
//! still be read.

use super::{Inner, SledStore};
use crate::store::StoreError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

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
    let partial = dir.join("census.json.partial");
    let file = std::fs::File::create(&partial)?;
    serde_json::to_writer(&file, census)?;
    file.sync_all()?;
    std::fs::rename(&partial, dir.join(CENSUS))
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
