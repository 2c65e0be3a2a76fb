//! Disk full: a child process (this test binary run again with `HIE_WAL_FULL_DIR` set)
//! opens a WAL, then lowers `RLIMIT_FSIZE` so writes past 512 KiB of a file fail with
//! `EFBIG`, as they would on a full disk. Appends must fail with errors (never panic)
//! and the WAL must refuse further appends at once (unavailable). Then the limit is
//! raised again ("space returns"): the WAL must resume by itself, call its `on_resume`
//! hook once, and take appends again.
//! After a reopen every append that resolved `Ok`, before and after, must be recovered,
//! and none that failed.

mod common;

use std::{
    process::Command,
    rc::Rc,
    time::{Duration, Instant},
};

use common::{body, received, run};
use hie_persist::{Wal, WalConfig, WalError};

const CHILD_ENV: &str = "HIE_WAL_FULL_DIR";
const FILE_BYTES_MAX: u64 = 512 << 10;

fn config() -> WalConfig {
    WalConfig::default().with_segment_bytes(1 << 20)
}

/// Makes writes past `bytes` of any file fail with `EFBIG` instead of killing us
/// (`RLIM_INFINITY` lifts the limit again).
fn limit_file_size(bytes: u64) {
    // SAFETY: ignoring SIGXFSZ installs no handler code; it only changes the default
    // action so that oversized writes return EFBIG.
    let previous = unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    assert_ne!(previous, libc::SIG_ERR);
    let limit = libc::rlimit {
        rlim_cur: bytes,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: `limit` is a valid, initialized rlimit that outlives the call.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, &limit) };
    assert_eq!(rc, 0, "setrlimit: {}", std::io::Error::last_os_error());
}

/// Four tasks append until each sees an error; returns their lines.
async fn append_until_full(wal: &Rc<Wal>) -> Vec<String> {
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let wal = wal.clone();
        tasks.push(glommio::spawn_local(async move {
            let mut lines = Vec::new();
            loop {
                let id = wal.next_message_id();
                let bytes = body(id, 900);
                match wal.append(&received(id, "full", &bytes)).await {
                    Ok(_) => lines.push(format!("durable {id}")),
                    Err(error) => {
                        lines.push(format!("error {id} {error}"));
                        return lines;
                    }
                }
            }
        }));
    }
    let mut lines = Vec::new();
    for task in tasks {
        lines.extend(task.await);
    }
    lines
}

/// Appends every 50 ms until one succeeds (at most 30 s); prints what happened.
async fn append_until_resumed(wal: &Wal) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let id = wal.next_message_id();
        match wal.append(&received(id, "full", &body(id, 900))).await {
            Ok(_) => {
                println!("resumed");
                println!("durable {id}");
                return;
            }
            Err(WalError::Unavailable { .. }) => println!("refused {id}"),
            Err(other) => println!("error {id} {other}"),
        }
        glommio::timer::sleep(Duration::from_millis(50)).await;
    }
    println!("never resumed");
}

/// Entry point of the child process; does nothing in a normal test run.
#[test]
fn disk_full_child_entry_point() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    run(move || async move {
        let (wal, _) = Wal::open(&dir, config()).await.unwrap();
        limit_file_size(FILE_BYTES_MAX);
        let wal = Rc::new(wal);
        let hooked = Rc::new(std::cell::Cell::new(0u32));
        wal.on_resume({
            let hooked = Rc::clone(&hooked);
            move || hooked.set(hooked.get() + 1)
        });
        for line in append_until_full(&wal).await {
            println!("{line}");
        }
        if wal.unavailable().is_some() {
            println!("unavailable");
        }
        let id = wal.next_message_id();
        match wal.append(&received(id, "x", b"x")).await {
            Err(WalError::Unavailable { .. }) => println!("refused {id}"),
            other => println!("unexpected {other:?}"),
        }
        // Space returns.
        limit_file_size(libc::RLIM_INFINITY);
        append_until_resumed(&wal).await;
        for _ in 0..50 {
            let id = wal.next_message_id();
            wal.append(&received(id, "after", &body(id, 900)))
                .await
                .unwrap();
            println!("durable {id}");
        }
        if wal.unavailable().is_none() && wal.stats().resumptions == 1 {
            println!("writable");
        }
        if hooked.get() == 1 {
            println!("on_resume called once");
        }
        wal.close().await.unwrap();
    });
}

fn ids(stdout: &str, prefix: &str) -> Vec<u64> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix(prefix)?.split(' ').next()?.parse().ok())
        .collect()
}

#[test]
fn disk_full_refuses_appends_then_resumes_by_itself_and_keeps_every_acknowledged_record() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "disk_full_child_entry_point",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let durable = ids(&stdout, "durable ");
    let failed: Vec<u64> = ids(&stdout, "error ")
        .into_iter()
        .chain(ids(&stdout, "refused "))
        .collect();
    let errors: Vec<&str> = stdout.lines().filter(|l| l.starts_with("error ")).collect();
    assert_eq!(errors.len(), 4, "every task sees an error: {stdout}");
    assert!(errors.iter().any(|e| e.contains("I/O error")), "{errors:?}");
    for line in [
        "unavailable",
        "resumed",
        "writable",
        "on_resume called once",
    ] {
        assert!(stdout.lines().any(|l| l == line), "no {line:?} in {stdout}");
    }
    assert!(
        durable.len() > 150,
        "{} durable before and after the disk filled",
        durable.len()
    );
    let path = dir.path().to_owned();
    run(move || async move {
        let (wal, recovery) = Wal::open(&path, config()).await.unwrap();
        for id in &durable {
            let message = recovery
                .messages
                .get(id)
                .unwrap_or_else(|| panic!("acknowledged {id} lost"));
            assert_eq!(message.bytes, body(*id, 900));
        }
        for id in &failed {
            assert!(
                !recovery.messages.contains_key(id),
                "refused {id} came back"
            );
        }
        assert!(recovery.stats.lost.is_empty(), "{:?}", recovery.stats.lost);
        wal.close().await.unwrap();
    });
}
