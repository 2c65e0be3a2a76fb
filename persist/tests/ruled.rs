//! A router's rule outcome (`Ruled`): found for its message in the message's segment or
//! the next, across a reopen, and without any effect on what recovery redelivers.

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
fn a_rule_outcome_is_found_in_the_next_segment_and_changes_nothing_recovery_does() {
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
        // Other messages fill the segment (1 MiB) so that the router's records land in
        // the next one.
        let big = body(0, 200 << 10);
        for _ in 0..6 {
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
        assert!(
            found[0].location.segment
                > wal
                    .find_message(id)
                    .await
                    .unwrap()
                    .unwrap()
                    .location
                    .segment,
            "written in a later segment than the message"
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
