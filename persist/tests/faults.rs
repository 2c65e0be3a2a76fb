//! Fault tests: torn tails at every byte offset, bit flips anywhere, stale bytes after
//! the end of the log.

mod common;

use std::path::{Path, PathBuf};

use common::{body, received, run};
use hie_persist::{Location, SyncMode, Wal, WalConfig};

const MIB: u64 = 1 << 20;
const HEADER_BYTES: u64 = 32;

fn config() -> WalConfig {
    WalConfig::default()
        .with_segment_bytes(MIB)
        .with_sync(SyncMode::Fsync)
}

/// Writes `n` messages of `len` bytes into a fresh WAL in `dir`; returns the segment
/// path and the location and payload length of every message record.
async fn write_log(dir: &Path, n: u64, len: usize) -> (PathBuf, Vec<(Location, u64)>) {
    let (wal, _) = Wal::open(dir, config()).await.unwrap();
    for _ in 0..n {
        let id = wal.next_message_id();
        let bytes = body(id, len);
        wal.append(&received(id, "c", &bytes)).await.unwrap();
    }
    let mut places = Vec::new();
    for id in 1..=n {
        let stored = wal.find_message(id).await.unwrap().unwrap();
        places.push((stored.location, stored.payload.len() as u64));
    }
    assert_eq!(wal.segments().len(), 1);
    let segment = dir.join(format!("{:020}.wal", wal.segments()[0]));
    wal.close().await.unwrap();
    (segment, places)
}

/// Recovers a WAL whose only segment holds `bytes`; returns the ids recovered (with
/// their bytes checked) and the recovery counters (corrupt spans, torn bytes).
async fn recover_bytes(bytes: &[u8], name: &str, len: usize) -> (Vec<u64>, usize, u64) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(name), bytes).unwrap();
    let (wal, recovery) = Wal::open(dir.path(), config()).await.unwrap();
    let mut ids: Vec<u64> = recovery.messages.keys().copied().collect();
    ids.sort_unstable();
    for id in &ids {
        assert_eq!(
            recovery.messages[id].bytes,
            body(*id, len),
            "message {id} returned with wrong bytes"
        );
    }
    wal.close().await.unwrap();
    (
        ids,
        recovery.stats.corrupt.len(),
        recovery.stats.torn_bytes_dropped,
    )
}

#[test]
fn torn_tail_at_every_byte_offset_recovers_exactly_the_records_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let n = 12;
        let (segment, places) = write_log(&path, n, 300).await;
        let original = std::fs::read(&segment).unwrap();
        let name = segment.file_name().unwrap().to_str().unwrap().to_owned();
        let (last, payload) = places[n as usize - 1];
        let expect: Vec<u64> = (1..n).collect();
        for cut in last.offset..last.offset + HEADER_BYTES + payload {
            let cut = cut as usize;
            // The file ends at the cut.
            let (ids, corrupt, _) = recover_bytes(&original[..cut], &name, 300).await;
            assert_eq!(ids, expect, "truncated at {cut}");
            assert_eq!(corrupt, 0, "truncated at {cut}");
            // The file keeps its size: zeros after the cut.
            let mut zeroed = original.clone();
            zeroed[cut..].fill(0);
            let (ids, corrupt, torn) = recover_bytes(&zeroed, &name, 300).await;
            assert_eq!((ids, corrupt), (expect.clone(), 0), "zeroed from {cut}");
            assert_eq!(torn > 0, cut > last.offset as usize, "zeroed from {cut}");
        }
    });
}

#[test]
fn stale_bytes_after_a_torn_record_stop_recovery_cleanly_and_are_zeroed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let n = 12;
        let (segment, places) = write_log(&path, n, 300).await;
        let mut bytes = std::fs::read(&segment).unwrap();
        let (last, _) = places[n as usize - 1];
        // A partially written block: half the last record, then stale garbage to 8 KiB on.
        let cut = last.offset as usize + 100;
        for (i, b) in bytes[cut..cut + 8192].iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(37) | 1;
        }
        std::fs::write(&segment, &bytes).unwrap();
        let (wal, recovery) = Wal::open(&path, config()).await.unwrap();
        assert_eq!(recovery.messages.len() as u64, n - 1);
        assert!(recovery.stats.torn_bytes_dropped >= 8192);
        // The tail is repaired: appending and reopening sees a clean log.
        let id = wal.next_message_id();
        let body_new = body(id, 300);
        wal.append(&received(id, "c", &body_new)).await.unwrap();
        wal.close().await.unwrap();
        let (wal, recovery) = Wal::open(&path, config()).await.unwrap();
        assert_eq!(recovery.messages.len() as u64, n);
        assert_eq!(recovery.messages[&id].bytes, body_new);
        assert_eq!(recovery.stats.torn_bytes_dropped, 0);
        assert!(recovery.stats.corrupt.is_empty());
        wal.close().await.unwrap();
    });
}

#[test]
fn bit_flips_anywhere_are_detected_reported_and_never_returned() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let n = 4u64;
        let len = 40;
        let (segment, places) = write_log(&path, n, len).await;
        let original = std::fs::read(&segment).unwrap();
        let name = segment.file_name().unwrap().to_str().unwrap().to_owned();
        let (last, payload) = places[n as usize - 1];
        let end = (last.offset + HEADER_BYTES + payload) as usize;
        // Every bit of the written records, plus a few blocks of zeros after them.
        let image = &original[..(end + 8192).min(original.len())];
        let covered = |at: usize| {
            // The record whose header+payload (not padding) covers byte `at`.
            places
                .iter()
                .position(|(l, p)| {
                    (l.offset as usize..(l.offset + HEADER_BYTES + p) as usize).contains(&at)
                })
                .map(|i| i as u64 + 1)
        };
        for bit in 0..(end + 64) * 8 {
            let at = bit / 8;
            let mut flipped = image.to_vec();
            flipped[at] ^= 1 << (bit % 8);
            let (ids, corrupt, torn) = recover_bytes(&flipped, &name, len).await;
            match covered(at) {
                Some(hit) => {
                    let expect: Vec<u64> = (1..=n).filter(|&id| id != hit).collect();
                    assert_eq!(ids, expect, "bit {bit} in message {hit}");
                    assert!(corrupt > 0 || torn > 0, "bit {bit} not reported");
                }
                None => {
                    assert_eq!(
                        ids,
                        (1..=n).collect::<Vec<_>>(),
                        "bit {bit} outside messages"
                    );
                    if at < places[0].0.offset as usize {
                        // The WAL's own SegmentStart record.
                        assert!(
                            corrupt > 0 || torn > 0,
                            "bit {bit} in SegmentStart not reported"
                        );
                    }
                    if at >= end.next_multiple_of(8) {
                        assert!(torn > 0, "stray bit {bit} after the end not counted");
                    }
                }
            }
        }
    });
}

/// A valid one-segment log image of 6 messages of 200 bytes (built once).
fn base_image() -> &'static (Vec<u8>, String) {
    static IMAGE: std::sync::OnceLock<(Vec<u8>, String)> = std::sync::OnceLock::new();
    IMAGE.get_or_init(|| {
        run(|| async {
            let dir = tempfile::tempdir().unwrap();
            let (segment, places) = write_log(dir.path(), 6, 200).await;
            let (last, payload) = places[5];
            let end = (last.offset + HEADER_BYTES + payload) as usize;
            let bytes = std::fs::read(&segment).unwrap();
            let name = segment.file_name().unwrap().to_str().unwrap().to_owned();
            (bytes[..end.next_multiple_of(4096) + 4096].to_vec(), name)
        })
    })
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

    /// Arbitrary patches and cuts of a valid log never panic recovery and never turn
    /// into data: whatever is recovered is an original message with its original bytes.
    #[test]
    fn recovery_of_randomly_damaged_logs_returns_only_original_messages(
        patches in proptest::collection::vec(
            (0usize..8192, proptest::collection::vec(proptest::num::u8::ANY, 1..64)),
            0..6,
        ),
        cut in proptest::option::of(0usize..8192),
    ) {
        let (base, name) = base_image();
        let mut image = base.clone();
        for (at, bytes) in &patches {
            let at = (*at).min(image.len());
            let end = (at + bytes.len()).min(image.len());
            image[at..end].copy_from_slice(&bytes[..end - at]);
        }
        if let Some(cut) = cut {
            image.truncate(cut.min(image.len()));
        }
        let name = name.clone();
        let ids = run(move || async move { recover_bytes(&image, &name, 200).await.0 });
        proptest::prop_assert!(ids.iter().all(|id| (1..=6).contains(id)), "{ids:?}");
    }
}
