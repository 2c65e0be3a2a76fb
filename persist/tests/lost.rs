//! Recovery tells the truth: a segment that holds less than was durable in it (cut short,
//! emptied, removed) is reported with the acknowledged messages it lost, while a torn
//! tail after a crash is not; what is intact is recovered either way.

mod common;

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use common::{body, received, run};
use hie_persist::{MARKER_INTERVAL_S, SegmentLoss, Wal, WalConfig};

const CHILD_ENV: &str = "HIE_WAL_LOST_DIR";
/// Bytes of each message: about 250 fill a 1 MiB segment.
const BODY_BYTES: usize = 4000;

fn config() -> WalConfig {
    WalConfig::default().with_segment_bytes(1 << 20)
}

/// Writes `n` messages of [`BODY_BYTES`], closes the WAL; returns its segments' paths and
/// each message's segment and offset.
async fn write_and_close(dir: &Path, n: u64) -> (Vec<PathBuf>, Vec<(u64, u64)>) {
    let (wal, _) = Wal::open(dir, config()).await.unwrap();
    for _ in 0..n {
        let id = wal.next_message_id();
        wal.append(&received(id, "c", &body(id, BODY_BYTES)))
            .await
            .unwrap();
    }
    let mut places = Vec::new();
    for id in 1..=n {
        let stored = wal.find_message(id).await.unwrap().unwrap();
        places.push((stored.location.segment, stored.location.offset));
    }
    let paths = wal
        .segments()
        .iter()
        .map(|s| dir.join(format!("{s:020}.wal")))
        .collect();
    wal.close().await.unwrap();
    (paths, places)
}

/// Reopens the WAL in `dir`: the ids recovered (bytes checked) and the losses reported.
async fn reopen(dir: &Path) -> (Vec<u64>, Vec<SegmentLoss>) {
    let (wal, recovery) = Wal::open(dir, config()).await.unwrap();
    let mut ids: Vec<u64> = recovery.messages.keys().copied().collect();
    ids.sort_unstable();
    for id in &ids {
        assert_eq!(recovery.messages[id].bytes, body(*id, BODY_BYTES));
    }
    wal.close().await.unwrap();
    (ids, recovery.stats.lost)
}

#[test]
fn a_segment_cut_mid_file_reports_the_acknowledged_messages_it_lost() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let (segments, places) = write_and_close(&path, 50).await;
        assert_eq!(segments.len(), 1);
        // Cut inside message 31's record: 30 stay whole.
        let cut = places[30].1 + 100;
        std::fs::OpenOptions::new()
            .write(true)
            .open(&segments[0])
            .unwrap()
            .set_len(cut)
            .unwrap();
        let (ids, lost) = reopen(&path).await;
        assert_eq!(ids, (1..=30).collect::<Vec<_>>());
        assert_eq!(lost.len(), 1, "{lost:?}");
        assert_eq!(lost[0].messages_lost, 20, "{lost:?}");
        assert!(!lost[0].missing);
        assert_eq!(lost[0].found_end_offset, places[30].1);
        // Reported once: the next close records what is there now.
        let (_, lost) = reopen(&path).await;
        assert!(lost.is_empty(), "{lost:?}");
    });
}

#[test]
fn an_emptied_segment_reports_every_acknowledged_message_it_held() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let (segments, _) = write_and_close(&path, 50).await;
        std::fs::write(&segments[0], b"").unwrap();
        let (ids, lost) = reopen(&path).await;
        assert!(ids.is_empty());
        assert_eq!(lost.len(), 1, "{lost:?}");
        assert_eq!(lost[0].messages_lost, 50, "{lost:?}");
        let text = lost[0].to_string();
        assert!(text.contains("50 acknowledged messages lost"), "{text}");
    });
}

#[test]
fn a_removed_sealed_segment_is_reported_and_the_others_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let (segments, places) = write_and_close(&path, 700).await;
        assert!(segments.len() >= 3, "{segments:?}");
        std::fs::remove_file(&segments[1]).unwrap();
        let second = places.iter().filter(|(s, _)| {
            *s == segments[1]
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse().ok())
                .unwrap()
        });
        let in_second = second.count() as u64;
        let (ids, lost) = reopen(&path).await;
        assert_eq!(ids.len() as u64, 700 - in_second);
        assert_eq!(lost.len(), 1, "{lost:?}");
        assert!(lost[0].missing);
        assert_eq!(lost[0].messages_lost, in_second);
    });
}

#[test]
fn a_torn_tail_of_unacknowledged_bytes_is_no_loss() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let (segments, places) = write_and_close(&path, 20).await;
        // Garbage after the last record, as a write that was never acknowledged leaves.
        let end = places[19].1 + BODY_BYTES as u64 + 1024;
        let mut bytes = std::fs::read(&segments[0]).unwrap();
        bytes[end as usize..end as usize + 300].fill(0xA5);
        std::fs::write(&segments[0], &bytes).unwrap();
        let (ids, lost) = reopen(&path).await;
        assert_eq!(ids, (1..=20).collect::<Vec<_>>());
        assert!(lost.is_empty(), "{lost:?}");
    });
}

/// Entry point of the child process of the crash test; does nothing in a normal run.
/// Appends 50 messages, waits past the marker interval, appends one more (after which the
/// marker is rewritten), says `ready` and waits to be killed.
#[test]
fn crashed_child_entry_point() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    run(move || async move {
        let (wal, _) = Wal::open(&dir, config()).await.unwrap();
        for _ in 0..50 {
            let id = wal.next_message_id();
            wal.append(&received(id, "c", &body(id, BODY_BYTES)))
                .await
                .unwrap();
        }
        glommio::timer::sleep(Duration::from_millis(MARKER_INTERVAL_S * 1000 + 300)).await;
        let id = wal.next_message_id();
        wal.append(&received(id, "c", &body(id, BODY_BYTES)))
            .await
            .unwrap();
        glommio::timer::sleep(Duration::from_millis(500)).await;
        println!("ready");
        futures_lite::future::pending::<()>().await;
    });
}

#[test]
fn a_segment_cut_after_a_crash_reports_what_was_synced_before_the_crash() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "crashed_child_entry_point",
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
    let ready = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|line| line.ends_with("ready"));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(ready, "the child did not get ready");
    let segment = dir.path().join(format!("{:020}.wal", 1));
    let bytes = std::fs::read(&segment).unwrap();
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap()
        .set_len(end as u64 / 2)
        .unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let (ids, lost) = reopen(&path).await;
        assert_eq!(lost.len(), 1, "{lost:?}");
        let messages_lost = lost[0].messages_lost as usize;
        assert!(messages_lost > 0, "{lost:?}");
        // The marker is a lower bound: it may not know the last message yet.
        let counted = ids.len() + messages_lost;
        assert!((50..=51).contains(&counted), "{} + {lost:?}", ids.len());
    });
}
