//! The real binary: start-up refusals are fast and clear.

use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

fn steward() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_steward"));
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RUST_LOG", "error")
        .kill_on_drop(true);
    command
}

#[tokio::test]
async fn a_second_server_on_the_same_data_directory_exits_at_once_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = steward()
        .args(["serve", "--addr", "127.0.0.1:0", "--data"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(first.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(line.starts_with("steward listening on http://127.0.0.1:"), "{line}");

    let started = Instant::now();
    let second = steward()
        .args(["--addr", "127.0.0.1:0", "--data"])
        .arg(dir.path())
        .output();
    let second = tokio::time::timeout(Duration::from_secs(5), second)
        .await
        .unwrap()
        .unwrap();
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success());
    assert!(stderr.contains("is in use by another steward process"), "{stderr}");
    assert!(took < Duration::from_secs(1), "refusal took {took:?}");
    first.start_kill().unwrap();
}

#[tokio::test]
async fn a_public_address_without_an_auth_secret_is_refused() {
    let out = steward()
        .args(["serve", "--addr", "0.0.0.0:0", "--data", "/nonexistent/never-created"])
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("without an auth secret"), "{stderr}");
}

#[tokio::test]
async fn help_lists_the_commands() {
    let out = steward().arg("--help").output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for word in ["serve", "interpret", "token", "--addr", "--data", "--config"] {
        assert!(stdout.contains(word), "--help lacks {word}: {stdout}");
    }
}

#[tokio::test]
async fn interpret_prints_one_json_object_per_message() {
    let cases = [
        (
            vec![
                "--now",
                "2026-11-22T10:00:00Z",
                "--tz",
                "Europe/Berlin",
                "onboard my new hire Ana Souza starting Dec 1",
            ],
            r#"{"route":"new_goal","kind":"onboard_employee","slots":{"name":"Ana Souza","start_date":"2026-12-01"}}"#,
        ),
        (
            vec![
                "--now",
                "2026-11-22T10:00:00Z",
                "--tz",
                "Europe/Berlin",
                "move",
                "the",
                "orientation",
                "to",
                "Friday",
            ],
            r#"{"route":"command","command":"reschedule_step","args":{"step":"orientation","due":"2026-11-27"}}"#,
        ),
        (
            vec!["sounds good, go ahead"],
            r#"{"route":"confirmation","accept":true}"#,
        ),
        (vec!["how was your weekend?"], r#"{"route":"chat"}"#),
    ];
    for (args, expected) in cases {
        let out = steward().arg("interpret").args(&args).output().await.unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), expected, "{args:?}");
    }
    let bad = steward()
        .args(["interpret", "--tz", "Mars/Olympus", "hi"])
        .output()
        .await
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not an IANA time zone"));
}

#[tokio::test]
async fn export_and_import_round_trip_through_the_binary() {
    let (a, b, dir) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let backup = dir.path().join("backup.jsonl");
    {
        use steward::store::AccountStore;
        let store = steward::store::SledStore::open(a.path()).unwrap();
        store
            .ensure_user(&steward::user::UserId::parse("ana").unwrap())
            .await
            .unwrap();
    }
    let out = steward()
        .args(["export", "--data"])
        .arg(a.path())
        .arg("--out")
        .arg(&backup)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(&backup).unwrap().lines().next(),
        Some(r#"{"steward_export":1}"#)
    );
    let out = steward()
        .args(["import", "--data"])
        .arg(b.path())
        .arg(&backup)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Only the header: nothing to restore, refused.
    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "{\"steward_export\":1}\n").unwrap();
    let out = steward()
        .args(["import", "--data"])
        .arg(dir.path().join("from-empty"))
        .arg(&empty)
        .output()
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds no records"));
    assert!(!dir.path().join("from-empty").exists());
    let garbage = dir.path().join("garbage.jsonl");
    std::fs::write(&garbage, "not json\n").unwrap();
    let out = steward()
        .args(["import", "--data"])
        .arg(dir.path().join("fresh"))
        .arg(&garbage)
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("line 1"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn steward_digest_sends_a_users_digest_once_per_period_through_the_file_outbox() {
    use steward::preferences::Preferences;
    use steward::store::{AccountStore, SledStore};
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open(dir.path()).unwrap();
        let ana = steward::user::UserId::parse("ana").unwrap();
        store.ensure_user(&ana).await.unwrap();
        let prefs = Preferences {
            email: Some("ana@example.com".into()),
            email_verified: true,
            ..Preferences::default()
        };
        assert!(
            store
                .save_preferences(&ana, &Preferences::default(), &prefs, None, None)
                .await
                .unwrap()
        );
    }
    let run = || {
        steward()
            .args(["digest", "--user", "ana", "--data"])
            .arg(dir.path())
            .output()
    };
    let first = run().await.unwrap();
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(first.status.success(), "{stderr}");
    assert!(
        stderr.contains("1 digests queued, 1 messages sent via files in"),
        "{stderr}"
    );
    let second = run().await.unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(second.status.success(), "{stderr}");
    assert!(
        stderr.contains("already sent or queued") && stderr.contains("0 messages sent"),
        "{stderr}"
    );
    let emls: Vec<_> = std::fs::read_dir(dir.path().join("outbox"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .collect();
    assert_eq!(emls.len(), 1);
    let raw = std::fs::read_to_string(emls[0].path()).unwrap();
    assert!(raw.contains("To: ana@example.com"), "{raw}");
    assert!(raw.contains("Message-ID: <digest.ana."), "{raw}");
    let future = steward()
        .args(["digest", "--now", "2099-01-01T00:00:00Z", "--data"])
        .arg(dir.path())
        .output()
        .await
        .unwrap();
    assert!(!future.status.success());
    assert!(String::from_utf8_lossy(&future.stderr).contains("--now must not be in the future"));
}
