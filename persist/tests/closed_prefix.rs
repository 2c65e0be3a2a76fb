//! Recovery skips the sealed segments whose messages were all closed (the synced-length
//! marker's `closed-below`), and recovers exactly what a full scan recovers.

mod common;

use std::path::Path;

use common::{body, received, run};
use hie_persist::{Record, Recovery, SyncMode, Wal, WalConfig};

const MIB: u64 = 1 << 20;

fn config() -> WalConfig {
    WalConfig::default()
        .with_segment_bytes(MIB)
        .with_sync(SyncMode::Fsync)
}

/// Appends `n` messages, each enqueued for "A"; the ones `open(id)` says stay open, the
/// others complete. Returns the ids.
async fn write(wal: &Wal, n: u64, open: impl Fn(u64) -> bool) -> Vec<u64> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let id = wal.next_message_id();
        let bytes = body(id, 400);
        let control = id.to_string();
        wal.append(&received(id, &control, &bytes)).await.unwrap();
        let enqueued = Record::Enqueued {
            message_id: id,
            target: "A",
        };
        wal.append(&enqueued).await.unwrap();
        if !open(id) {
            let completed = Record::Completed {
                message_id: id,
                target: "A",
            };
            wal.append(&completed).await.unwrap();
        }
        ids.push(id);
    }
    ids
}

/// What recovery owes, comparable between two recoveries.
fn owed(recovery: &Recovery) -> (Vec<u64>, Vec<u64>, u64) {
    let mut open: Vec<u64> = recovery.messages.keys().copied().collect();
    open.sort_unstable();
    let a = recovery
        .targets
        .get("A")
        .map_or_else(Vec::new, |q| q.iter().map(|d| d.message_id).collect());
    (open, a, recovery.next_message_id)
}

async fn reopen(path: &Path) -> Recovery {
    let (wal, recovery) = Wal::open(path, config()).await.unwrap();
    wal.close().await.unwrap();
    recovery
}

#[test]
fn closed_segments_are_not_read_and_recovery_owes_exactly_what_a_full_scan_owes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let (wal, _) = Wal::open(&path, config()).await.unwrap();
        write(&wal, 6000, |_| false).await;
        let open = write(&wal, 10, |_| true).await;
        let next = wal.next_message_id();
        wal.close().await.unwrap();

        let skipped = reopen(&path).await;
        assert!(
            skipped.stats.segments_closed_skipped >= 2,
            "{:?}",
            skipped.stats
        );
        assert_eq!(
            skipped.stats.segments_closed_skipped + 1,
            skipped.stats.segments
        );
        assert_eq!(owed(&skipped), (open.clone(), open.clone(), next));
        assert!(skipped.stats.lost.is_empty());

        // Without the marker every segment is read: the same is owed.
        std::fs::remove_file(path.join("SYNCED")).unwrap();
        let full = reopen(&path).await;
        assert_eq!(full.stats.segments_closed_skipped, 0);
        assert!(full.stats.records > skipped.stats.records);
        assert_eq!(owed(&full), owed(&skipped));
    });
}

#[test]
fn an_open_message_keeps_its_segment_and_every_later_one_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let (wal, _) = Wal::open(&path, config()).await.unwrap();
        let first = write(&wal, 1, |_| true).await;
        write(&wal, 6000, |_| false).await;
        wal.close().await.unwrap();

        let recovery = reopen(&path).await;
        assert_eq!(recovery.stats.segments_closed_skipped, 0);
        assert!(recovery.stats.segments >= 3);
        assert_eq!(recovery.targets["A"].len(), 1);
        assert_eq!(recovery.targets["A"][0].message_id, first[0]);
    });
}

#[test]
fn skipped_segments_still_go_by_retention_and_the_log_carries_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let (wal, _) = Wal::open(&path, config()).await.unwrap();
        write(&wal, 6000, |_| false).await;
        wal.close().await.unwrap();

        // Reopened with skipping, then retention at age 0: every sealed segment goes.
        let config = config().with_retention_age_s(Some(0));
        let (wal, recovery) = Wal::open(&path, config.clone()).await.unwrap();
        let segments = recovery.stats.segments;
        assert_eq!(recovery.stats.segments_closed_skipped + 1, segments);
        let removed = wal.run_retention().await.unwrap();
        assert_eq!(removed.len() as u64, segments - 1);
        let open = write(&wal, 3, |_| true).await;
        wal.close().await.unwrap();

        let (wal, recovery) = Wal::open(&path, config).await.unwrap();
        assert_eq!(owed(&recovery).0, open);
        assert!(recovery.stats.lost.is_empty(), "{:?}", recovery.stats.lost);
        wal.close().await.unwrap();
    });
}
