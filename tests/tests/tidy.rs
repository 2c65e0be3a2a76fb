//! Keeps the tree tidy without anyone having to remember: `cargo fmt --check` and
//! `cargo clippy -D warnings` over the whole workspace, run as a test.
//!
//! Clippy runs with its own target directory (`target/tidy`) so it never waits on the
//! build lock of the `cargo test` that started it.

use std::process::Command;

use hie_tests::workspace_root;

fn cargo() -> Command {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(workspace_root());
    cmd
}

#[test]
fn workspace_is_formatted() {
    let out = cargo()
        .args(["fmt", "--all", "--check"])
        .output()
        .expect("run cargo fmt");
    assert!(
        out.status.success(),
        "cargo fmt --check found unformatted code (run `cargo fmt --all`):\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn workspace_has_no_clippy_warnings() {
    let target = workspace_root().join("target/tidy");
    let out = cargo()
        .env("CARGO_TARGET_DIR", target)
        .args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--quiet",
            "--",
            "-D",
            "warnings",
        ])
        .output()
        .expect("run cargo clippy");
    assert!(
        out.status.success(),
        "cargo clippy -D warnings failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
