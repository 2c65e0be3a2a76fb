//! Round trip, rotation, retention, read API and many appending tasks.

mod common;

use std::rc::Rc;

use common::{body, fill, received, run};
use hie_persist::{DeliveryState, Record, SyncMode, Wal, WalConfig, WalError};

const MIB: u64 = 1 << 20;

#[test]
fn round_trip_recovers_open_messages_per_target_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let (wal, recovery) = Wal::open(&path, WalConfig::default()).await.unwrap();
        assert!(recovery.messages.is_empty());
        let n = 3000u64;
        for _ in 0..n {
            let id = wal.next_message_id();
            let bytes = body(id, 300);
            let control = id.to_string();
            wal.append(&received(id, &control, &bytes)).await.unwrap();
            wal.append_many(&[
                Record::Enqueued {
                    message_id: id,
                    target: "A",
                },
                Record::Enqueued {
                    message_id: id,
                    target: "B",
                },
            ])
            .await
            .unwrap();
            // A completes everything but multiples of 3; B completes the even ones;
            // multiples of 5 fail on B.
            if id % 3 != 0 {
                wal.append(&Record::Completed {
                    message_id: id,
                    target: "A",
                })
                .await
                .unwrap();
            }
            if id % 2 == 0 {
                wal.append(&Record::Completed {
                    message_id: id,
                    target: "B",
                })
                .await
                .unwrap();
            } else if id % 5 == 0 {
                let suspended = Record::Suspended {
                    message_id: id,
                    target: "B",
                    reason: "AE",
                };
                wal.append(&suspended).await.unwrap();
            } else if id % 7 == 0 {
                // A failure keeps the delivery owed, for an operator (held list).
                let failed = Record::Failed {
                    message_id: id,
                    target: "B",
                    reason: "AR after FailureTimeout",
                };
                wal.append(&failed).await.unwrap();
            }
        }
        // One message never routed.
        let lone = wal.next_message_id();
        wal.append(&received(lone, "lone", b"MSH|lone"))
            .await
            .unwrap();
        wal.append(&Record::Checkpoint { data: b"cp" })
            .await
            .unwrap();
        wal.close().await.unwrap();

        let (wal, recovery) = Wal::open(&path, WalConfig::default()).await.unwrap();
        let expect_a: Vec<u64> = (1..=n).filter(|id| id % 3 == 0).collect();
        let failed_b = |id: u64| id % 2 != 0 && id % 5 != 0 && id % 7 == 0;
        let expect_b: Vec<u64> = (1..=n).filter(|&id| id % 2 != 0).collect();
        let ids =
            |t: &str| -> Vec<u64> { recovery.targets[t].iter().map(|d| d.message_id).collect() };
        assert_eq!(ids("A"), expect_a);
        assert_eq!(ids("B"), expect_b);
        for d in &recovery.targets["B"] {
            let suspended = matches!(d.state, DeliveryState::Suspended { .. });
            assert_eq!(suspended, d.message_id % 5 == 0, "message {}", d.message_id);
            let failed = matches!(d.state, DeliveryState::Failed { .. });
            assert_eq!(failed, failed_b(d.message_id), "message {}", d.message_id);
        }
        assert_eq!(recovery.unrouted, vec![lone]);
        let open: usize = (1..=n).filter(|&id| id % 3 == 0 || id % 2 != 0).count() + 1;
        assert_eq!(recovery.messages.len(), open);
        for (id, message) in &recovery.messages {
            if *id != lone {
                assert_eq!(message.bytes, body(*id, 300));
                assert_eq!(message.control_id, id.to_string());
                assert_eq!(message.message_type, "ADT^A01");
            }
        }
        assert_eq!(
            recovery.last_checkpoint.as_ref().map(|c| c.1.as_slice()),
            Some(&b"cp"[..])
        );
        assert!(recovery.stats.corrupt.is_empty());
        assert_eq!(recovery.stats.torn_bytes_dropped, 0);
        assert_eq!(wal.open_messages(), open);
        assert!(wal.next_message_id() > lone);
        wal.close().await.unwrap();
    });
}

#[test]
fn small_commits_rewrite_the_partial_tail_block_without_losing_earlier_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let (wal, _) = Wal::open(&path, WalConfig::default()).await.unwrap();
        // 100-byte records: ~40 commits share each 4 KiB block, each rewriting it.
        for _ in 0..500 {
            let id = wal.next_message_id();
            let bytes = body(id, 37);
            wal.append(&received(id, "c", &bytes)).await.unwrap();
        }
        assert!(wal.stats().commits >= 500);
        wal.close().await.unwrap();
        let (_wal, recovery) = Wal::open(&path, WalConfig::default()).await.unwrap();
        assert_eq!(recovery.messages.len(), 500);
        for id in 1..=500 {
            assert_eq!(recovery.messages[&id].bytes, body(id, 37));
        }
    });
}

#[test]
fn rotation_spreads_thousands_of_records_over_segments_and_recovers_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let config = WalConfig::default()
            .with_segment_bytes(MIB)
            .with_sync(SyncMode::None);
        let (wal, _) = Wal::open(&path, config.clone()).await.unwrap();
        let wal = Rc::new(wal);
        let n = 10_000u64;
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let wal = wal.clone();
            tasks.push(glommio::spawn_local(async move {
                for _ in 0..n / 8 {
                    let id = wal.next_message_id();
                    let bytes = body(id, 1000);
                    wal.append(&received(id, "r", &bytes)).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await;
        }
        let segments = wal.segments();
        assert!(segments.len() >= 10, "{} segments", segments.len());
        wal.close().await.unwrap();
        let (wal, recovery) = Wal::open(&path, config).await.unwrap();
        assert_eq!(recovery.messages.len() as u64, n);
        assert_eq!(recovery.unrouted.len() as u64, n);
        assert_eq!(recovery.stats.segments, segments.len() as u64);
        assert_eq!(recovery.stats.lsn_gaps, 0);
        for id in 1..=n {
            assert_eq!(recovery.messages[&id].bytes, body(id, 1000), "message {id}");
        }
        // Every segment file is named by the LSN of its first record.
        for pair in segments.windows(2) {
            assert!(pair[0] < pair[1]);
        }
        wal.close().await.unwrap();
    });
}

#[test]
fn retention_removes_closed_segments_and_keeps_the_first_open_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let config = WalConfig::default()
            .with_segment_bytes(MIB)
            .with_sync(SyncMode::None)
            .with_retention_age_s(Some(0));
        let (wal, _) = Wal::open(&path, config.clone()).await.unwrap();
        // All closed: everything but the active segment may go.
        fill(&wal, 3000, |_| true).await;
        glommio::timer::sleep(std::time::Duration::from_millis(2)).await;
        // Two passes at once: each segment is retired (and counted) once, neither fails.
        let (a, b) = futures_lite::future::zip(wal.run_retention(), wal.run_retention()).await;
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(wal.segments().len(), 1, "{:?}", wal.segments());
        let removed = wal.stats().segments_removed;
        assert!(removed >= 2);
        assert!(a.len() as u64 <= removed && b.len() as u64 <= removed);
        let files = std::fs::read_dir(&path)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "wal")
            })
            .count();
        assert_eq!(files, 1);
        // One open message pins its segment and every later one.
        let open_id = fill(&wal, 1, |_| false).await[0];
        fill(&wal, 3000, |_| true).await;
        glommio::timer::sleep(std::time::Duration::from_millis(2)).await;
        wal.run_retention().await.unwrap();
        let kept = wal.segments();
        assert!(kept.len() >= 3, "{kept:?}");
        let files = std::fs::read_dir(&path)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "wal")
            })
            .count();
        assert_eq!(files, kept.len());
        wal.close().await.unwrap();
        let (wal, recovery) = Wal::open(&path, config).await.unwrap();
        assert_eq!(
            recovery.messages.keys().copied().collect::<Vec<_>>(),
            vec![open_id]
        );
        assert_eq!(recovery.targets["T"].len(), 1);
        assert_eq!(recovery.messages[&open_id].bytes, body(open_id, 1000));
        // Message ids are never reused after retention.
        assert!(wal.next_message_id() > open_id + 3000);
        // Completing it frees everything but the active segment.
        wal.append(&Record::Completed {
            message_id: open_id,
            target: "T",
        })
        .await
        .unwrap();
        glommio::timer::sleep(std::time::Duration::from_millis(2)).await;
        wal.run_retention().await.unwrap();
        assert_eq!(wal.segments().len(), 1);
        wal.close().await.unwrap();
    });
}

#[test]
fn retention_archives_segments_when_an_archive_dir_is_set() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wal");
    let archive = dir.path().join("archive");
    run(move || async move {
        let config = WalConfig::default()
            .with_segment_bytes(MIB)
            .with_sync(SyncMode::None)
            .with_retention_age_s(None)
            .with_retention_bytes_max(Some(2 * MIB))
            .with_archive_dir(Some(archive.clone()));
        let (wal, _) = Wal::open(&path, config).await.unwrap();
        fill(&wal, 5000, |_| true).await;
        wal.run_retention().await.unwrap();
        assert!(wal.segments().len() <= 2);
        let archived = std::fs::read_dir(&archive).unwrap().count() as u64;
        assert_eq!(archived, wal.stats().segments_removed);
        assert!(archived >= 3);
        wal.close().await.unwrap();
    });
}

#[test]
fn many_tasks_appending_keep_each_task_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let (wal, _) = Wal::open(&path, WalConfig::default()).await.unwrap();
        let wal = Rc::new(wal);
        let tasks_n = 64;
        let per_task = 100;
        let mut tasks = Vec::new();
        for t in 0..tasks_n {
            let wal = wal.clone();
            tasks.push(glommio::spawn_local(async move {
                let mut lsns = Vec::new();
                for i in 0..per_task {
                    let id = wal.next_message_id();
                    let control = format!("{t}:{i}");
                    let bytes = body(id, 200);
                    lsns.push(wal.append(&received(id, &control, &bytes)).await.unwrap());
                }
                lsns
            }));
        }
        for t in tasks {
            let lsns = t.await;
            assert!(lsns.windows(2).all(|w| w[0] < w[1]));
        }
        let stats = wal.stats();
        assert!(
            stats.commits < (tasks_n * per_task) as u64,
            "no batching: {stats:?}"
        );
        wal.close().await.unwrap();
        let (_wal, recovery) = Wal::open(&path, WalConfig::default()).await.unwrap();
        assert_eq!(recovery.messages.len(), tasks_n * per_task);
        let mut by_lsn: Vec<_> = recovery.messages.values().collect();
        by_lsn.sort_by_key(|m| m.lsn);
        let mut next = vec![0usize; tasks_n];
        for m in by_lsn {
            let (t, i) = m.control_id.split_once(':').unwrap();
            let (t, i): (usize, usize) = (t.parse().unwrap(), i.parse().unwrap());
            assert_eq!(i, next[t], "task {t} out of order");
            next[t] += 1;
        }
    });
}

#[test]
fn read_api_finds_messages_by_id_location_and_time_range() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let config = WalConfig::default()
            .with_segment_bytes(MIB)
            .with_sync(SyncMode::Interval { interval_ms: 5 });
        let (wal, _) = Wal::open(&path, config).await.unwrap();
        fill(&wal, 1500, |_| false).await;
        let middle = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros() as u64;
        glommio::timer::sleep(std::time::Duration::from_millis(2)).await;
        let late = fill(&wal, 1500, |_| false).await;
        assert!(wal.segments().len() >= 3);
        // Interval mode syncs a write by itself within the interval.
        let syncs = wal.stats().syncs;
        wal.append(&Record::Checkpoint { data: b"x" })
            .await
            .unwrap();
        glommio::timer::sleep(std::time::Duration::from_millis(30)).await;
        assert!(
            wal.stats().syncs > syncs,
            "no interval sync: {:?}",
            wal.stats()
        );
        let found = wal.find_message(late[700]).await.unwrap().expect("found");
        match found.record() {
            Some(Record::MessageReceived {
                message_id, bytes, ..
            }) => {
                assert_eq!(message_id, late[700]);
                assert_eq!(bytes, &body(late[700], 1000)[..]);
            }
            other => panic!("unexpected {other:?}"),
        }
        let again = wal.read_at(found.location).await.unwrap();
        assert_eq!(again, found);
        assert!(wal.find_message(999_999).await.unwrap().is_none());
        let mut reader = wal.records_between(middle, u64::MAX);
        let mut received = Vec::new();
        while let Some(r) = reader.next().await.unwrap() {
            if let Some(Record::MessageReceived { message_id, .. }) = r.record() {
                received.push(message_id);
            }
        }
        assert_eq!(received, late);
        let bad = hie_persist::Location {
            segment: found.location.segment,
            offset: found.location.offset + 8,
        };
        assert!(matches!(
            wal.read_at(bad).await,
            Err(WalError::NoRecordAt { .. })
        ));
        wal.close().await.unwrap();
    });
}

#[test]
fn open_on_an_unusable_path_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let path = file.join("wal");
    run(move || async move {
        let err = Wal::open(&path, WalConfig::default()).await.unwrap_err();
        assert!(matches!(err, WalError::Io { .. }), "{err}");
        let big = vec![0u8; 2 << 20];
        let dir2 = tempfile::tempdir().unwrap();
        let config = WalConfig::default().with_segment_bytes(MIB);
        let (wal, _) = Wal::open(dir2.path(), config).await.unwrap();
        let err = wal.append(&received(1, "x", &big)).await.unwrap_err();
        assert!(matches!(err, WalError::RecordTooLarge { .. }), "{err}");
        wal.close().await.unwrap();
        let err = wal.append(&received(2, "x", b"x")).await.unwrap_err();
        assert!(matches!(err, WalError::Closed { .. }), "{err}");
        drop(wal);
        // One directory, one Wal: a second open while the first runs is refused.
        let (first, _) = Wal::open(dir2.path(), WalConfig::default().with_segment_bytes(MIB))
            .await
            .unwrap();
        let err = Wal::open(dir2.path(), WalConfig::default())
            .await
            .unwrap_err();
        assert!(matches!(err, WalError::Locked { .. }), "{err}");
        first.close().await.unwrap();
        drop(first);
        let (again, _) = Wal::open(dir2.path(), WalConfig::default().with_segment_bytes(MIB))
            .await
            .unwrap();
        again.close().await.unwrap();
    });
}

#[test]
fn rotation_uses_the_zero_filled_spare_and_a_reopen_adopts_a_finished_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let config = WalConfig::default()
            .with_segment_bytes(MIB)
            .with_sync(SyncMode::None);
        let (wal, _) = Wal::open(&path, config.clone()).await.unwrap();
        // Fill a bit more than half a segment: the spare is prepared, close waits for it.
        fill(&wal, 600, |_| false).await;
        wal.close().await.unwrap();
        let spare = path.join("spare.zero");
        assert_eq!(std::fs::metadata(&spare).unwrap().len(), MIB);
        assert!(!path.join("spare.zero.tmp").exists());
        let (wal, recovery) = Wal::open(&path, config.clone()).await.unwrap();
        assert_eq!(recovery.messages.len(), 600);
        // Rotating consumes the adopted spare: the new segment is a full-size file.
        fill(&wal, 600, |_| false).await;
        let segments = wal.segments();
        assert_eq!(segments.len(), 2);
        let second = path.join(format!("{:020}.wal", segments[1]));
        assert_eq!(std::fs::metadata(second).unwrap().len(), MIB);
        wal.close().await.unwrap();
        let (_wal, recovery) = Wal::open(&path, config).await.unwrap();
        assert_eq!(recovery.messages.len(), 1200);
        assert_eq!(recovery.stats.torn_bytes_dropped, 0);
        assert!(recovery.stats.corrupt.is_empty());
    });
}

#[test]
fn discards_close_deliveries_and_suspensions_are_recovered_with_their_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let (wal, _) = Wal::open(&path, WalConfig::default()).await.unwrap();
        let ids: Vec<u64> = (0..4).map(|_| wal.next_message_id()).collect();
        for &id in &ids {
            wal.append(&received(id, "d", b"MSH|x")).await.unwrap();
        }
        // ids[0]: routed nowhere. ids[1]: discarded on overflow. ids[2]: suspended.
        // ids[3]: queued, no outcome yet.
        wal.append_many(&[
            Record::Discarded {
                message_id: ids[0],
                target: "",
                reason: "no route",
            },
            Record::Enqueued {
                message_id: ids[1],
                target: "T",
            },
            Record::Enqueued {
                message_id: ids[2],
                target: "T",
            },
            Record::Enqueued {
                message_id: ids[3],
                target: "T",
            },
            Record::Discarded {
                message_id: ids[1],
                target: "T",
                reason: "overflow",
            },
            Record::Suspended {
                message_id: ids[2],
                target: "T",
                reason: "AR",
            },
        ])
        .await
        .unwrap();
        wal.close().await.unwrap();
        let (wal, recovery) = Wal::open(&path, WalConfig::default()).await.unwrap();
        assert!(recovery.unrouted.is_empty());
        let mut open: Vec<u64> = recovery.messages.keys().copied().collect();
        open.sort_unstable();
        assert_eq!(open, vec![ids[2], ids[3]]);
        let t = &recovery.targets["T"];
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].message_id, ids[2]);
        assert_eq!(
            t[0].state,
            DeliveryState::Suspended {
                reason: "AR".into()
            }
        );
        assert_eq!(t[1].message_id, ids[3]);
        assert_eq!(t[1].state, DeliveryState::Queued);
        assert_eq!(recovery.stats.orphan_records, 0);
        wal.close().await.unwrap();
    });
}

#[test]
fn append_many_spanning_a_rotation_and_records_larger_than_a_batch_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let config = WalConfig::default()
            .with_segment_bytes(MIB)
            .with_batch_bytes_max(64 << 10)
            .with_sync(SyncMode::None);
        let (wal, _) = Wal::open(&path, config.clone()).await.unwrap();
        // 3000 records of ~500 bytes in one call: about 1.5 segments, many batches.
        let ids: Vec<u64> = (0..3000).map(|_| wal.next_message_id()).collect();
        let bodies: Vec<Vec<u8>> = ids.iter().map(|&id| body(id, 420)).collect();
        let records: Vec<Record<'_>> = ids
            .iter()
            .zip(&bodies)
            .map(|(&id, b)| received(id, "m", b))
            .collect();
        let first = wal.append_many(&records).await.unwrap();
        assert_eq!(
            wal.last_lsn(),
            first + 2999 + 1,
            "one SegmentStart in between"
        );
        assert_eq!(wal.segments().len(), 2);
        // A record larger than a batch goes out alone.
        let big_id = wal.next_message_id();
        let big = body(big_id, 200 << 10);
        wal.append(&received(big_id, "big", &big)).await.unwrap();
        wal.close().await.unwrap();
        let (wal, recovery) = Wal::open(&path, config).await.unwrap();
        assert_eq!(recovery.messages.len(), 3001);
        let mut by_lsn: Vec<_> = recovery.messages.values().collect();
        by_lsn.sort_by_key(|m| m.lsn);
        let order: Vec<u64> = by_lsn.iter().map(|m| m.message_id).collect();
        let mut expect = ids.clone();
        expect.push(big_id);
        assert_eq!(order, expect);
        assert_eq!(recovery.messages[&big_id].bytes, big);
        wal.close().await.unwrap();
    });
}

#[test]
fn fsync_mode_with_commits_in_flight_resolves_an_append_only_once_it_is_counted_durable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        // Small segments: the pipeline of writes and syncs is drained at every rotation.
        let config = WalConfig::default().with_segment_bytes(MIB);
        let (wal, _) = Wal::open(&path, config.clone()).await.unwrap();
        let wal = Rc::new(wal);
        let (tasks_n, per_task) = (64, 60);
        let mut tasks = Vec::new();
        for _ in 0..tasks_n {
            let wal = wal.clone();
            tasks.push(glommio::spawn_local(async move {
                for _ in 0..per_task {
                    let id = wal.next_message_id();
                    let bytes = body(id, 900);
                    let lsn = wal.append(&received(id, "f", &bytes)).await.unwrap();
                    // The durable LSN covers this append the moment it resolves.
                    assert!(
                        wal.last_lsn() >= lsn,
                        "{lsn} resolved before it was durable"
                    );
                }
            }));
        }
        for t in tasks {
            t.await;
        }
        let stats = wal.stats();
        assert!(wal.segments().len() >= 3, "{stats:?}");
        assert_eq!(
            stats.records,
            (tasks_n * per_task) as u64 + stats.segments_created
        );
        assert!(
            stats.syncs >= 1 && stats.syncs <= stats.commits,
            "{stats:?}"
        );
        wal.close().await.unwrap();
        let (wal, recovery) = Wal::open(&path, config).await.unwrap();
        assert_eq!(recovery.messages.len(), tasks_n * per_task);
        assert_eq!(recovery.stats.lsn_gaps, 0);
        assert!(recovery.stats.corrupt.is_empty());
        for m in recovery.messages.values() {
            assert_eq!(m.bytes, body(m.message_id, 900));
        }
        wal.close().await.unwrap();
    });
}

#[test]
fn submitted_records_are_durable_once_a_later_append_is_and_keep_their_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let (wal, _) = Wal::open(&path, WalConfig::default()).await.unwrap();
        let id = wal.next_message_id();
        // The service's way: received and enqueued for the router, durable.
        wal.append_many(&[
            received(id, "1", b"MSH|submit"),
            Record::Enqueued {
                message_id: id,
                target: "Router",
            },
        ])
        .await
        .unwrap();
        // The router's way: queue the routing records, do not wait for them.
        wal.submit(&[
            Record::Enqueued {
                message_id: id,
                target: "Out",
            },
            Record::Completed {
                message_id: id,
                target: "Router",
            },
        ])
        .unwrap();
        let submitted_last = wal.stats().records;
        // A later record that is awaited makes the submitted ones durable before it.
        let lsn = wal
            .append(&Record::Checkpoint { data: b"after" })
            .await
            .unwrap();
        assert!(wal.last_lsn() >= lsn);
        assert!(
            wal.stats().records >= submitted_last + 3,
            "all three durable"
        );
        wal.close().await.unwrap();
        assert!(
            matches!(
                wal.submit(&[Record::Checkpoint { data: b"late" }]),
                Err(WalError::Closed { .. })
            ),
            "a submit after close is an error"
        );

        let (wal, recovery) = Wal::open(&path, WalConfig::default()).await.unwrap();
        let out: Vec<u64> = recovery.targets["Out"]
            .iter()
            .map(|d| d.message_id)
            .collect();
        assert_eq!(out, vec![id], "the submitted Enqueued survived the reopen");
        assert!(
            !recovery.targets.contains_key("Router"),
            "the submitted Completed closed the router's delivery"
        );
        assert!(recovery.unrouted.is_empty());
        wal.close().await.unwrap();
    });
}
