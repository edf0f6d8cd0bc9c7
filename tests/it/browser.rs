//! The widget in a real browser: `tests/e2e/widget.test.mjs` drives Debian's
//! headless Chromium with playwright-core against the real binary. This test
//! installs what that needs (`tests/e2e/setup.sh`) and runs it, so
//! `cargo test` alone covers the browser. Screenshots land in
//! `target/e2e-screenshots/`.

use std::path::Path;
use std::process::Command;

#[test]
fn the_widget_works_end_to_end_in_headless_chromium() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let e2e = root.join("tests/e2e");
    let setup = Command::new("bash")
        .arg(e2e.join("setup.sh"))
        .status()
        .expect("running tests/e2e/setup.sh");
    assert!(
        setup.success(),
        "tests/e2e/setup.sh failed: the browser tests cannot run"
    );

    let shots = root.join("target/e2e-screenshots");
    let out = Command::new("node")
        .args(["--test", "--test-reporter=spec", "--test-concurrency=1"])
        .arg(e2e.join("widget.test.mjs"))
        .current_dir(&e2e)
        .env("E2E_STEWARD_BIN", env!("CARGO_BIN_EXE_steward"))
        .env("E2E_SCREENSHOTS", &shots)
        .output()
        .expect("running node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(out.status.success(), "browser tests failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("ℹ fail 0"), "no failures reported:\n{stdout}");
    assert!(
        !stdout.contains("ℹ pass 0\n"),
        "some browser tests must have run:\n{stdout}"
    );
}
