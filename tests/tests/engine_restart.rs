//! Restart policies of operations, end to end: a file operation whose `FilePath` cannot
//! be made fails at its start and is started again per `RestartPolicy`, `MaxRestarts` and
//! `RestartDelay` (`always`: past `MaxRestarts`), counted in `restarts` like a service
//! that cannot bind. Its messages wait in its queue meanwhile and are written once it
//! runs.
//!
//! Production: `In` (TCP service) → `Router` → `FileOut` (file operation); one shard.
//! `FilePath` runs through a regular file (`blocker`), which no user, root included, can
//! make a directory of; removing that file lets the operation start.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{adt, counter, ctl, head, router, send_one, start_hie, states, tcp_service};
use hie_tests::{free_port, wait_until};

fn file_operation(out: &Path, host: &[(&str, &str)]) -> String {
    let mut s = "\n[[item]]\nname = \"FileOut\"\nclass = \"EnsLib.HL7.Operation.FileOperation\"\n[item.host]\nFilename = \"out.hl7\"\n".to_string();
    for (key, value) in host {
        s.push_str(&format!("{key} = \"{value}\"\n"));
    }
    s.push_str(&format!(
        "[item.adapter]\nFilePath = \"{}\"\n",
        out.display()
    ));
    s
}

/// A directory with `blocker` (a regular file) in it; the operation writes below it.
fn blocked_output() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("blocker");
    std::fs::write(&blocker, b"not a directory").unwrap();
    let out = blocker.join("out");
    (dir, blocker, out)
}

fn production(in_port: u16, out: &Path, host: &[(&str, &str)]) -> String {
    head("Restart", 1)
        + &tcp_service("In", in_port, "Router", &[])
        + &router("Router", "FileOut", &[])
        + &file_operation(out, host)
}

/// The output file's content, empty while it does not exist.
fn written(out: &Path) -> String {
    std::fs::read_to_string(out.join("out.hl7")).unwrap_or_default()
}

#[test]
fn on_failure_starts_a_file_operation_again_until_its_file_path_can_be_made() {
    let (dir, blocker, out) = blocked_output();
    let in_port = free_port();
    let host = [
        ("RestartPolicy", "on_failure"),
        ("MaxRestarts", "1000"),
        ("RestartDelay", "0.2"),
    ];
    let (hie, data) = start_hie(dir.path(), &production(in_port, &out, &host));
    assert_eq!(send_one(in_port, &adt("RS-1", "P1")), "AA");
    let status = common::wait_status(&hie, &data, Duration::from_secs(10), "restarting", |s| {
        counter(s, "FileOut", "restarts") >= 3
    });
    assert_eq!(states(&status, "FileOut"), ["running"], "{status:#}");
    assert_eq!(counter(&status, "FileOut", "failed"), 0, "{status:#}");
    assert!(written(&out).is_empty());

    std::fs::remove_file(&blocker).unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || written(&out).contains("RS-1")),
        "the waiting message is written once the operation starts; log:\n{}",
        hie.log()
    );
    let status = common::wait_status(&hie, &data, Duration::from_secs(5), "completed", |s| {
        counter(s, "FileOut", "completed") == 1
    });
    let restarts = counter(&status, "FileOut", "restarts");
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        counter(&common::status(&data), "FileOut", "restarts"),
        restarts,
        "a running operation is not restarted"
    );
}

#[test]
fn max_restarts_fails_a_file_operation_and_an_operators_enable_brings_it_back() {
    let (dir, blocker, out) = blocked_output();
    let in_port = free_port();
    let host = [
        ("RestartPolicy", "on_failure"),
        ("MaxRestarts", "2"),
        ("RestartDelay", "0.2"),
    ];
    let (hie, data) = start_hie(dir.path(), &production(in_port, &out, &host));
    let status = common::wait_status(&hie, &data, Duration::from_secs(10), "failed", |s| {
        states(s, "FileOut") == ["failed"]
    });
    // Two restarts allowed: three attempts, each counted (as for a service).
    assert_eq!(counter(&status, "FileOut", "restarts"), 3, "{status:#}");

    // A failed operation keeps what it is sent.
    assert_eq!(send_one(in_port, &adt("RS-2", "P1")), "AA");
    common::wait_status(&hie, &data, Duration::from_secs(5), "queued", |s| {
        common::item_entries(s, "FileOut")
            .iter()
            .any(|e| e["queued"] == 1)
    });
    std::fs::remove_file(&blocker).unwrap();
    let (code, text) = ctl(&data, &["enable", "FileOut"]);
    assert_eq!(code, 0, "{text}");
    assert!(
        wait_until(Duration::from_secs(10), || written(&out).contains("RS-2")),
        "enabled again, it writes the kept message; log:\n{}",
        hie.log()
    );
    assert_eq!(states(&common::status(&data), "FileOut"), ["running"]);
}

#[test]
fn restart_policy_always_goes_on_past_max_restarts() {
    let (dir, blocker, out) = blocked_output();
    let in_port = free_port();
    let host = [
        ("RestartPolicy", "always"),
        ("MaxRestarts", "1"),
        ("RestartDelay", "0.1"),
    ];
    let (hie, data) = start_hie(dir.path(), &production(in_port, &out, &host));
    assert_eq!(send_one(in_port, &adt("RS-3", "P1")), "AA");
    // `on_failure` with MaxRestarts 1 gives up at the second failure; `always` does not.
    let status = common::wait_status(&hie, &data, Duration::from_secs(10), "restarting", |s| {
        counter(s, "FileOut", "restarts") >= 5
    });
    assert_eq!(states(&status, "FileOut"), ["running"], "{status:#}");
    assert!(
        !hie.log().contains("item failed"),
        "always never gives up:\n{}",
        hie.log()
    );
    std::fs::remove_file(&blocker).unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || written(&out).contains("RS-3")),
        "the waiting message is written once the operation starts; log:\n{}",
        hie.log()
    );
}

#[test]
fn restart_policy_never_fails_a_file_operation_at_its_first_failed_start() {
    let (dir, _blocker, out) = blocked_output();
    let in_port = free_port();
    let host = [("RestartPolicy", "never"), ("RestartDelay", "0.2")];
    let (hie, data) = start_hie(dir.path(), &production(in_port, &out, &host));
    let status = common::wait_status(&hie, &data, Duration::from_secs(10), "failed", |s| {
        states(s, "FileOut") == ["failed"]
    });
    assert_eq!(counter(&status, "FileOut", "restarts"), 1, "{status:#}");
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        counter(&common::status(&data), "FileOut", "restarts"),
        1,
        "no retry"
    );
    assert!(
        hie.log().contains("FileOut") && hie.log().contains("item failed"),
        "the log says which item failed and why:\n{}",
        hie.log()
    );
}
