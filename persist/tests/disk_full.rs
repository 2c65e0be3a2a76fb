//! Disk full: a child process (this test binary run again with `HIE_WAL_FULL_DIR` set)
//! opens a WAL, then lowers `RLIMIT_FSIZE` so writes past 512 KiB of a file fail with
//! `EFBIG`, as they would on a full disk. Appends must fail with errors (never panic),
//! the WAL must refuse further appends (poisoned), and after a reopen without the limit
//! every append that resolved `Ok` must be recovered.

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

/// Makes writes past `bytes` of any file fail with `EFBIG` instead of killing us.
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
                            lines.push(format!("error {error}"));
                            return lines;
                        }
                    }
                }
            }));
        }
        for task in tasks {
            for line in task.await {
                println!("{line}");
            }
        }
        let after = wal.append(&received(u64::MAX, "x", b"x")).await;
        match after {
            Err(WalError::Poisoned { .. }) => println!("poisoned"),
            other => println!("unexpected {other:?}"),
        }
    });
}

#[test]
fn disk_full_fails_appends_with_errors_and_keeps_every_acknowledged_record() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
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
    assert!(started.elapsed() < Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let durable: Vec<u64> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("durable ")?.parse().ok())
        .collect();
    let errors: Vec<&str> = stdout.lines().filter(|l| l.starts_with("error ")).collect();
    assert_eq!(errors.len(), 4, "every task sees an error: {stdout}");
    assert!(errors.iter().any(|e| e.contains("I/O error")), "{errors:?}");
    assert!(stdout.lines().any(|l| l == "poisoned"), "{stdout}");
    assert!(
        durable.len() > 100,
        "{} durable before the disk filled",
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
        // With space back, the reopened WAL appends again.
        let id = wal.next_message_id();
        wal.append(&received(id, "again", b"MSH|again"))
            .await
            .unwrap();
        wal.close().await.unwrap();
    });
}
