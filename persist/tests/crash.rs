//! Crash test: a child process appends in a loop and prints each message id once its
//! append resolved durable; the parent SIGKILLs it at a random moment and checks that
//! every printed id is recovered with its bytes. The child is this test binary run again
//! with `HIE_WAL_CRASH_DIR` set.

mod common;

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    rc::Rc,
    sync::mpsc,
    time::{Duration, Instant},
};

use common::{body, received, run};
use hie_persist::{Wal, WalConfig};

const CHILD_ENV: &str = "HIE_WAL_CRASH_DIR";
const ITERATIONS: usize = 12;
const TIME_BUDGET: Duration = Duration::from_secs(40);

fn config() -> WalConfig {
    WalConfig::default().with_segment_bytes(2 << 20)
}

/// Entry point of the child process; does nothing in a normal test run.
#[test]
fn crash_child_entry_point() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    run(move || async move {
        let (wal, _) = Wal::open(&dir, config()).await.unwrap();
        let wal = Rc::new(wal);
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let wal = wal.clone();
            tasks.push(glommio::spawn_local(async move {
                loop {
                    let id = wal.next_message_id();
                    let bytes = body(id, 700);
                    wal.append(&received(id, "crash", &bytes)).await.unwrap();
                    use std::io::Write;
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "durable {id}").unwrap();
                    out.flush().unwrap();
                }
            }));
        }
        for t in tasks {
            t.detach();
        }
        // Appends until the parent kills this process.
        futures_lite::future::pending::<()>().await;
    });
}

#[test]
fn sigkill_at_random_moments_never_loses_a_durable_append() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let started = Instant::now();
    let mut seed = started.elapsed().as_nanos() as u64 ^ 0x2545_F491_4F6C_DD1D;
    let mut durable: Vec<u64> = Vec::new();
    let mut iterations = 0;
    while iterations < ITERATIONS && started.elapsed() < TIME_BUDGET {
        iterations += 1;
        let mut child = Command::new(&exe)
            .args([
                "crash_child_entry_point",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(id) = line
                    .strip_prefix("durable ")
                    .and_then(|v| v.parse::<u64>().ok())
                {
                    let _ = tx.send(id);
                }
            }
        });
        // Wait for the first durable append, then kill at a random moment.
        let first = rx.recv_timeout(Duration::from_secs(20));
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_micros(seed % 300_000));
        child.kill().unwrap();
        child.wait().unwrap();
        reader.join().unwrap();
        durable.extend(first.ok());
        durable.extend(rx.try_iter());
        let path = dir.path().to_owned();
        let expect = durable.clone();
        let (recovered, torn) = run(move || async move {
            let (wal, recovery) = Wal::open(&path, config()).await.unwrap();
            for id in &expect {
                let message = recovery
                    .messages
                    .get(id)
                    .unwrap_or_else(|| panic!("durable message {id} lost"));
                assert_eq!(message.bytes, body(*id, 700), "message {id}");
            }
            assert!(
                recovery.stats.corrupt.is_empty(),
                "{:?}",
                recovery.stats.corrupt
            );
            // A crash leaves a torn tail at most: never less than the marker says.
            assert!(recovery.stats.lost.is_empty(), "{:?}", recovery.stats.lost);
            wal.close().await.unwrap();
            (recovery.messages.len(), recovery.stats.torn_bytes_dropped)
        });
        assert!(recovered >= durable.len());
        eprintln!(
            "iteration {iterations}: {} durable, {recovered} recovered, {torn} torn bytes",
            durable.len()
        );
    }
    assert!(iterations >= 3, "only {iterations} iterations");
    assert!(!durable.is_empty());
}
