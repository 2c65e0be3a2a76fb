//! Helpers shared by the WAL integration tests.
#![allow(dead_code)]

use std::future::Future;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use hie_persist::{MessageMeta, Record, SyncMode, Wal, WalConfig};

/// Longest a test's executor may run. An append that never resolves (a lost batch, a
/// committer that stopped) fails the test here instead of hanging the whole run. The
/// slowest test (bit flips: one recovery, with its syncs, per bit of four records) is
/// bound by the disk: 94 s (23 s of CPU) while other builds loaded it, so the bound leaves
/// room for a loaded CI machine.
pub const RUN_DEADLINE: Duration = Duration::from_secs(300);

/// Runs `f` to completion on a fresh glommio executor (its own thread), failing the test
/// if it has not finished within [`RUN_DEADLINE`].
pub fn run<F, T>(f: impl FnOnce() -> F + Send + 'static) -> T
where
    F: Future<Output = T> + 'static,
    T: Send + 'static,
{
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let executor = glommio::LocalExecutorBuilder::default()
        .spawn(move || async move {
            let out = f().await;
            let _ = done_tx.send(());
            out
        })
        .expect("spawn executor");
    // A panic inside the executor drops the sender: join reports it.
    match done_rx.recv_timeout(RUN_DEADLINE) {
        Ok(()) | Err(RecvTimeoutError::Disconnected) => executor.join().expect("executor thread"),
        Err(RecvTimeoutError::Timeout) => panic!(
            "the test's WAL executor did not finish within {RUN_DEADLINE:?}: an append or \
             the committer hangs"
        ),
    }
}

/// Message bytes derived from the id, `len` bytes long.
pub fn body(id: u64, len: usize) -> Vec<u8> {
    let mut out = format!("MSH|^~\\&|SRC|FAC|DST|FAC|20240101||ADT^A01|{id}|P|2.5\r").into_bytes();
    let mut x = id.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push(b'A' + (x % 26) as u8);
    }
    out.truncate(len.max(1));
    out
}

pub fn received<'a>(id: u64, control_id: &'a str, bytes: &'a [u8]) -> Record<'a> {
    Record::MessageReceived {
        message_id: id,
        source: "HL7.In",
        meta: MessageMeta {
            message_type: "ADT^A01",
            control_id,
            partition_key: "P1",
        },
        bytes,
    }
}

/// Writes `n` 1000-byte messages enqueued to "T", completing those where `done(id)`.
pub async fn fill(wal: &Wal, n: u64, done: impl Fn(u64) -> bool) -> Vec<u64> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let id = wal.next_message_id();
        let bytes = body(id, 1000);
        wal.append_many(&[
            received(id, "r", &bytes),
            Record::Enqueued {
                message_id: id,
                target: "T",
            },
        ])
        .await
        .unwrap();
        if done(id) {
            wal.append(&Record::Completed {
                message_id: id,
                target: "T",
            })
            .await
            .unwrap();
        }
        ids.push(id);
    }
    ids
}

/// 1 MiB segments, no sync, and retention that removes a closed segment at once: for
/// tests of what retention keeps.
pub fn retaining_config() -> WalConfig {
    WalConfig::default()
        .with_segment_bytes(1 << 20)
        .with_sync(SyncMode::None)
        .with_retention_age_s(Some(0))
}
