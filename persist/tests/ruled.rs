//! A router's rule outcome (`Ruled`): found for its message however many segments after
//! the message's it was written, across a reopen, and without any effect on what recovery
//! redelivers.

mod common;

use common::{body, received, retaining_config, run};
use hie_persist::{Record, Targets, Wal};

fn ruled(id: u64, decisions: &'static [&'static str]) -> Record<'static> {
    Record::Ruled {
        message_id: id,
        router: "Router",
        rule_set: "Main",
        fired: Targets::List(&["Emergency (when 1)"]),
        decisions: Targets::List(decisions),
    }
}

#[test]
fn a_rule_outcome_is_found_segments_later_and_changes_nothing_recovery_does() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let config = retaining_config();
        let (wal, _) = Wal::open(&path, config.clone()).await.unwrap();
        let id = wal.next_message_id();
        let bytes = body(id, 300);
        wal.append_many(&[
            received(id, "r", &bytes),
            Record::Enqueued {
                message_id: id,
                target: "Router",
            },
        ])
        .await
        .unwrap();
        // Other messages fill three segments (1 MiB each) so that the router's records
        // land two segment rolls or more after the message's.
        let big = body(0, 200 << 10);
        for _ in 0..16 {
            let other = wal.next_message_id();
            wal.append(&received(other, "o", &big)).await.unwrap();
        }
        wal.append_many(&[
            ruled(id, &["Out", "File via Demo.T"]),
            Record::Enqueued {
                message_id: id,
                target: "Out",
            },
            Record::Completed {
                message_id: id,
                target: "Router",
            },
        ])
        .await
        .unwrap();
        let found = wal.find_ruled(id).await.unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].record(),
            Some(ruled(id, &["Out", "File via Demo.T"]))
        );
        let message_segment = wal
            .find_message(id)
            .await
            .unwrap()
            .unwrap()
            .location
            .segment;
        let between = segments(&path)
            .into_iter()
            .filter(|&s| s > message_segment && s < found[0].location.segment)
            .count();
        assert!(
            between >= 1,
            "written two segment rolls or more after the message ({between} between)"
        );
        wal.close().await.unwrap();

        let (wal, recovery) = Wal::open(&path, config).await.unwrap();
        assert_eq!(recovery.stats.orphan_records, 0);
        assert_eq!(recovery.targets["Out"].len(), 1, "still owed to Out only");
        assert!(!recovery.targets.contains_key("Router"));
        assert_eq!(wal.find_ruled(id).await.unwrap().len(), 1, "after a reopen");
        assert!(wal.find_ruled(id + 1).await.unwrap().is_empty());
        wal.close().await.unwrap();
    });
}

/// First LSNs of the segment files in WAL directory `dir`.
fn segments(dir: &std::path::Path) -> Vec<u64> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().ok()?;
            name.strip_suffix(".wal")?.parse().ok()
        })
        .collect()
}
