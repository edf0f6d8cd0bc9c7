//! `steward export` / `steward import`: every record as JSON lines (key in
//! hex; a JSON record as its JSON, uncompressed, the others as stored, in
//! hex; each value is checked to decode), so a backup does
//! not depend on sled's on-disk format and restores into an empty store.

use super::notifications::{NOTE, OUTBOX};
use super::{FORMAT, SledStore, backend, codec, keys};
use crate::store::StoreError;
use std::path::Path;

impl SledStore {
    pub(super) const TREES: [&'static str; 9] = [
        "users",
        "plans",
        "history",
        "messages",
        "meta",
        "proposals",
        "timers",
        "notify",
        "engine",
    ];

    /// Trees whose values are not all JSON envelopes: exported as hex.
    fn binary_tree(name: &str) -> bool {
        matches!(name, "users" | "meta" | "timers" | "notify" | "engine")
    }

    pub(super) fn tree(&self, name: &str) -> Option<&sled::Tree> {
        let i = &self.inner;
        Some(match name {
            "users" => &i.users,
            "plans" => &i.plans,
            "history" => &i.history,
            "messages" => &i.messages,
            "meta" => &i.meta,
            "proposals" => &i.proposals,
            "timers" => &i.timers,
            "notify" => &i.notify,
            "engine" => &i.engine,
            _ => return None,
        })
    }

    /// Writes every record as JSON lines (`{"tree","key","value"}`, key in
    /// hex, value as stored), so a backup does not depend on sled's on-disk
    /// format. Each line is checked to decode before it is written.
    pub fn export(&self, out: &mut dyn std::io::Write) -> Result<u64, StoreError> {
        let io = |e: std::io::Error| StoreError::Backend(format!("writing the export: {e}"));
        writeln!(out, "{}", serde_json::json!({"steward_export": FORMAT})).map_err(io)?;
        let mut count = 0;
        for name in Self::TREES {
            let Some(tree) = self.tree(name) else { continue };
            for item in tree.iter() {
                let (key, value) = item.map_err(backend)?;
                let line =
                    Self::line(name, &key, &value).map_err(|reason| StoreError::Corrupt { tree: "export", reason })?;
                writeln!(out, "{line}").map_err(io)?;
                count += 1;
            }
        }
        out.flush().map_err(io)?;
        Ok(count)
    }

    /// One record as an export line: the value as JSON in the JSON trees
    /// (it must parse), as hex in the others.
    pub(super) fn line(name: &str, key: &[u8], value: &[u8]) -> Result<serde_json::Value, String> {
        // A JSON tree's record is written as its JSON, compressed or not.
        let json = if Self::binary_tree(name) {
            std::borrow::Cow::Borrowed(value)
        } else {
            codec::unpack(value).map_err(|e| format!("{name}: {e}"))?
        };
        let value_text = std::str::from_utf8(&json)
            .ok()
            .filter(|_| !Self::binary_tree(name))
            .map(serde_json::from_str::<serde_json::Value>)
            .transpose()
            .map_err(|e| format!("{name}: {e}"))?;
        Ok(serde_json::json!({
            "tree": name,
            "key": hex(key),
            "value": value_text.unwrap_or_else(|| serde_json::Value::from(hex(value))),
        }))
    }

    /// Restores an export into `dir`, which must be absent or empty. The
    /// records go into a temporary directory beside it, are read back as
    /// typed records, and that directory is renamed into place only when
    /// all of it is good: a refused import leaves nothing behind.
    pub async fn import_into(dir: &Path, input: impl std::io::BufRead) -> Result<u64, StoreError> {
        let fs = |what: &str, e: std::io::Error| StoreError::Backend(format!("{what}: {e}"));
        if dir.exists() {
            let mut entries = std::fs::read_dir(dir).map_err(|e| fs(&format!("reading {}", dir.display()), e))?;
            if entries.next().is_some() {
                return Err(StoreError::Backend(format!(
                    "import needs an empty or new data directory; {} has files",
                    dir.display()
                )));
            }
        }
        let name = dir
            .file_name()
            .map_or("data".into(), |n| n.to_string_lossy().into_owned());
        let staging = dir.with_file_name(format!(".{name}.importing-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&staging);
        let staged = async {
            let store = SledStore::open_unchecked(&staging)?;
            let count = store.import(input).await?;
            // Every record read back typed, as a migration reads it.
            store.snapshot()?;
            Ok::<u64, StoreError>(count)
        }
        .await;
        let count = match staged {
            Ok(count) => count,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&staging);
                return Err(e);
            }
        };
        if dir.exists() {
            std::fs::remove_dir(dir).map_err(|e| fs(&format!("replacing {}", dir.display()), e))?;
        }
        std::fs::rename(&staging, dir).map_err(|e| fs(&format!("moving the import to {}", dir.display()), e))?;
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::File::open(parent)
                .and_then(|d| d.sync_all())
                .map_err(|e| fs("syncing the parent directory", e))?;
        }
        Ok(count)
    }

    /// Loads an export into this (empty) store and flushes it.
    pub async fn import(&self, input: impl std::io::BufRead) -> Result<u64, StoreError> {
        if Self::TREES.iter().filter_map(|t| self.tree(t)).any(|t| !t.is_empty()) {
            return Err(StoreError::Backend("import needs an empty data directory".into()));
        }
        let bad = |line: usize, why: String| StoreError::Corrupt {
            tree: "import",
            reason: format!("line {line}: {why}"),
        };
        let mut count = 0;
        let mut seen: std::collections::HashMap<(String, Vec<u8>), usize> = std::collections::HashMap::new();
        for (n, line) in input.lines().enumerate() {
            let line = line.map_err(|e| StoreError::Backend(e.to_string()))?;
            let record: serde_json::Value = serde_json::from_str(&line).map_err(|e| bad(n + 1, e.to_string()))?;
            if n == 0 {
                if record["steward_export"] != serde_json::json!(FORMAT) {
                    return Err(bad(1, "not a steward export of a known format".into()));
                }
                continue;
            }
            let name = record["tree"].as_str().unwrap_or_default();
            let tree = self
                .tree(name)
                .ok_or_else(|| bad(n + 1, format!("unknown tree `{name}`")))?;
            let key = record["key"]
                .as_str()
                .and_then(unhex)
                .ok_or_else(|| bad(n + 1, "bad key".into()))?;
            let value = match &record["value"] {
                serde_json::Value::String(s) if Self::binary_tree(name) => {
                    unhex(s).ok_or_else(|| bad(n + 1, "bad value".into()))?
                }
                other => codec::pack(serde_json::to_vec(other).map_err(|e| bad(n + 1, e.to_string()))?),
            };
            if let Some(first) = seen.insert((name.to_owned(), key.clone()), n + 1) {
                return Err(bad(n + 1, format!("the same {name} record as line {first}")));
            }
            tree.insert(key, value).map_err(backend)?;
            count += 1;
        }
        if seen.is_empty() {
            return Err(bad(
                1,
                "the export holds no records (an empty file, or only its header)".into(),
            ));
        }
        // sled's id generator numbers users, transcript entries,
        // notifications and outbox rows; it does not travel with the
        // records, so it is moved past every number the import brought
        // (otherwise the next new user would get an imported user's number).
        let highest = self.highest_id()?;
        while self.inner.db.generate_id().map_err(backend)? <= highest {}
        self.durable().await?;
        Ok(count)
    }

    /// The largest number the id generator handed out that the records
    /// keep: user numbers, transcript sequence numbers, notification and
    /// outbox sequence numbers.
    fn highest_id(&self) -> Result<u64, StoreError> {
        let tail = |key: &[u8]| key.len().checked_sub(8).and_then(|at| keys::decode_u64(&key[at..]));
        let mut highest = 0;
        for value in self.inner.users.iter().values() {
            highest = highest.max(keys::decode_u64(&value.map_err(backend)?).unwrap_or(0));
        }
        for key in self.inner.messages.iter().keys() {
            highest = highest.max(tail(&key.map_err(backend)?).unwrap_or(0));
        }
        for tag in [NOTE, OUTBOX] {
            for key in self.inner.notify.scan_prefix([tag]).keys() {
                highest = highest.max(tail(&key.map_err(backend)?).unwrap_or(0));
            }
        }
        Ok(highest)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}
