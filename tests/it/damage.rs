//! Faults of the data directory: a damaged one is refused at start with a
//! clear message and `steward export --salvage` saves what can still be
//! read; after a write error (a full disk) the server says so on
//! `/readyz` and stops, and a restart has every acknowledged change.

use std::path::Path;
use steward::conversation::{Entry, Message};
use steward::store::{AccountStore, ConversationStore, SledStore};
use steward::user::UserId;

/// A data directory holding about `kib` KiB of transcript for 20 users.
pub(crate) async fn fill(dir: &Path, kib: usize) {
    let store = SledStore::open(dir).unwrap();
    for n in 0..20 {
        store
            .ensure_user(&UserId::parse(&format!("user-{n}")).unwrap())
            .await
            .unwrap();
    }
    // Records are stored zstd-compressed: the text is noise so that a
    // kilobyte written stays most of a kilobyte on disk.
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .";
    for n in 0..kib {
        let user = UserId::parse(&format!("user-{}", n % 20)).unwrap();
        let text: String = (0..1000)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                char::from(alphabet[(seed % 64) as usize])
            })
            .collect();
        let entry = Entry {
            at: chrono::Utc::now(),
            message: Message::User {
                text: format!("{n} {text}"),
                id: None,
            },
        };
        store
            .append_message(&user, &entry, steward::store::Flush::Now)
            .await
            .unwrap();
    }
}

/// A copy of the data directory `data` with its database file `cut` bytes
/// shorter.
fn truncated_copy(data: &Path, to: &Path, cut: u64) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(data).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
    let db = std::fs::OpenOptions::new().write(true).open(to.join("db")).unwrap();
    let len = db.metadata().unwrap().len();
    db.set_len(len - cut).unwrap();
}

/// Runs the binary on `data`; success, exit code and stderr. A command
/// still running after 30 s (a server that started) is killed and fails.
async fn steward(args: &[&str], data: &Path) -> (bool, i32, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_steward"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .arg("--data")
        .arg(data)
        .env("RUST_LOG", "off")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(30), out)
        .await
        .unwrap_or_else(|_| panic!("`steward {}` still running after 30 s", args.join(" ")))
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.success(), out.status.code().unwrap_or(-1), stderr)
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path).unwrap().lines().count()
}

#[tokio::test]
async fn a_cut_database_is_refused_at_start_and_salvage_saves_what_sled_can_read_or_says_it_can_read_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    fill(&data, 4000).await;
    // Stopped cleanly: the census knows how many records there are.
    {
        let store = SledStore::open(&data).unwrap();
        steward::store::Store::quiesce(&store).await;
    }
    let whole = dir.path().join("whole.jsonl");
    let (ok, _, stderr) = steward(&["export", "--out", whole.to_str().unwrap()], &data).await;
    assert!(ok, "{stderr}");
    let len = std::fs::metadata(data.join("db")).unwrap().len();
    eprintln!("database: {len} bytes");
    assert!(
        len > 2_500_000,
        "the filled database is only {len} bytes; the cuts below need more"
    );
    // Cut by 2 MB, sled panics or refuses its snapshot; cut by half, it
    // may instead recover quietly to an older, emptier state. (A small cut
    // can fall on space sled no longer uses, and lose nothing.)
    for cut in [2_000_000, len / 2] {
        let copy = dir.path().join(format!("cut-{cut}"));
        truncated_copy(&data, &copy, cut);
        let (ok, code, stderr) = steward(&["serve", "--addr", "127.0.0.1:0"], &copy).await;
        assert!(!ok && code != 101, "cut {cut}: exit {code}: {stderr}");
        assert!(stderr.contains("is damaged"), "cut {cut}: {stderr}");
        assert!(stderr.contains("export --salvage"), "cut {cut}: {stderr}");
        let (ok, _, stderr) = steward(&["export", "--out", "/dev/null"], &copy).await;
        assert!(!ok && stderr.contains("is damaged"), "cut {cut}: {stderr}");

        let rescue = dir.path().join(format!("rescue-{cut}.jsonl"));
        let (ok, code, stderr) = steward(&["export", "--salvage", "--out", rescue.to_str().unwrap()], &copy).await;
        if !ok {
            // sled could read nothing back: said so, and no file is left.
            assert!(
                code != 101 && stderr.contains("could be read; restore a backup"),
                "cut {cut}: {stderr}"
            );
            assert!(!rescue.exists());
            continue;
        }
        let saved = lines(&rescue);
        eprintln!(
            "cut {cut}: salvaged {} of {} lines; {}",
            saved,
            lines(&whole),
            stderr.trim()
        );
        assert!(saved <= lines(&whole));
        let restored = dir.path().join(format!("restored-{cut}"));
        {
            let (ok, _, stderr) = steward(&["import", rescue.to_str().unwrap()], &restored).await;
            assert!(ok, "cut {cut}: {stderr}");
            let again = dir.path().join(format!("again-{cut}.jsonl"));
            let (ok, _, stderr) = steward(&["export", "--out", again.to_str().unwrap()], &restored).await;
            assert!(ok, "cut {cut}: the restored directory does not open: {stderr}");
            assert_eq!(lines(&again), saved, "cut {cut}");
        }
    }
}

#[tokio::test]
async fn after_a_write_error_readyz_fails_the_process_exits_and_a_restart_has_every_acknowledged_change() {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // A 1 MiB file size limit stands in for a full disk: past it every
    // write fails (EFBIG; SIGXFSZ ignored), and sled keeps failing after.
    let mut child = tokio::process::Command::new("bash")
        .arg("-c")
        .arg(r#"ulimit -S -f 1024; trap '' XFSZ; exec "$0" serve --addr 127.0.0.1:0 --data "$1""#)
        .arg(env!("CARGO_BIN_EXE_steward"))
        .arg(&data)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines.next_line().await.unwrap().unwrap();
    let addr = line.trim_start_matches("steward listening on http://").to_owned();
    let mut stderr = child.stderr.take().unwrap();
    let said = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    let client = reqwest::Client::new();
    let mut acknowledged = Vec::new();
    for n in 0..2000 {
        let put = client
            .put(format!("http://{addr}/api/preferences?user=u{n}"))
            .json(&serde_json::json!({"email": format!("u{n}@example.com")}))
            .send()
            .await;
        match put {
            Ok(r) if r.status() == 200 => acknowledged.push(n),
            Ok(r) => {
                assert_eq!(r.status(), 503, "{}", r.text().await.unwrap());
                break;
            }
            Err(_) => break,
        }
    }
    assert!(
        !acknowledged.is_empty() && acknowledged.len() < 2000,
        "{}",
        acknowledged.len()
    );
    // Until it stops, readiness says why.
    if let Ok(ready) = client.get(format!("http://{addr}/readyz")).send().await {
        assert_eq!(ready.status(), 503);
        let body: serde_json::Value = ready.json().await.unwrap();
        assert!(body["store"].as_str().unwrap().starts_with("failing"), "{body}");
    }
    // It stops by itself, non-zero, saying why, so a supervisor restarts it.
    let status = tokio::time::timeout(std::time::Duration::from_secs(20), child.wait())
        .await
        .expect("the server kept running on a store that takes no writes")
        .unwrap();
    assert!(!status.success());
    let said = said.await.unwrap();
    assert!(said.contains("the store stopped taking writes"), "{said}");
    // Restarted with room: every acknowledged change is there, and it writes.
    let (_server, addr) = crate::harness::spawn_binary(&data, &[]).await;
    for n in &acknowledged {
        let prefs: serde_json::Value = client
            .get(format!("http://{addr}/api/preferences?user=u{n}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(prefs["email"], format!("u{n}@example.com"));
    }
    let put = client
        .put(format!("http://{addr}/api/preferences?user=after"))
        .json(&serde_json::json!({"email": "after@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
}

#[tokio::test]
async fn salvage_through_the_binary_leaves_out_an_undecodable_record_and_what_it_writes_imports() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    fill(&data, 50).await;
    let whole = dir.path().join("whole.jsonl");
    let (ok, _, stderr) = steward(&["export", "--out", whole.to_str().unwrap()], &data).await;
    assert!(ok, "{stderr}");
    // A record whose bytes sled reads back fine but that is not a record.
    {
        let db = sled::open(&data).unwrap();
        db.open_tree("plans")
            .unwrap()
            .insert(b"garbage", &b"{not json"[..])
            .unwrap();
        db.flush().unwrap();
    }
    let (ok, _, stderr) = steward(&["export", "--out", "/dev/null"], &data).await;
    assert!(!ok && stderr.contains("corrupt record"), "{stderr}");
    let rescue = dir.path().join("rescue.jsonl");
    let (ok, _, stderr) = steward(&["export", "--salvage", "--out", rescue.to_str().unwrap()], &data).await;
    assert!(ok, "{stderr}");
    assert!(stderr.contains("could not read some records (plans: 1)"), "{stderr}");
    assert_eq!(lines(&rescue), lines(&whole), "everything else is kept");
    let restored = dir.path().join("restored");
    let (ok, _, stderr) = steward(&["import", rescue.to_str().unwrap()], &restored).await;
    assert!(ok, "{stderr}");
    let again = dir.path().join("again.jsonl");
    let (ok, _, stderr) = steward(&["export", "--out", again.to_str().unwrap()], &restored).await;
    assert!(ok, "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&again).unwrap(),
        std::fs::read_to_string(&whole).unwrap()
    );
}
