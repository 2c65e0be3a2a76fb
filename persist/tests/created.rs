//! A message an item made (`Created`): recovered with its bytes and parent, redelivered
//! to the targets it was made for, and closed by the same rule as a received message.

mod common;

use common::{body, fill, received, retaining_config, run};
use hie_persist::{DeliveryState, MessageMeta, Record, Targets, Wal};

fn created<'a>(id: u64, parent: u64, targets: &'a [&'a str], bytes: &'a [u8]) -> Record<'a> {
    Record::Created {
        message_id: id,
        parent,
        source: "Router",
        meta: MessageMeta {
            message_type: "ADT^A08",
            control_id: "made",
            partition_key: "P1",
        },
        targets: Targets::List(targets),
        bytes,
    }
}

#[test]
fn a_created_message_is_redelivered_to_its_targets_and_closed_by_the_same_rules() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let config = retaining_config();
        let (wal, _) = Wal::open(&path, config.clone()).await.unwrap();
        let parent = wal.next_message_id();
        let original = body(parent, 300);
        wal.append_many(&[
            received(parent, "p", &original),
            Record::Enqueued {
                message_id: parent,
                target: "Router",
            },
        ])
        .await
        .unwrap();
        // The router made two messages from it and completed its part of the parent.
        let (child, done) = (wal.next_message_id(), wal.next_message_id());
        let made = body(child, 200);
        wal.append_many(&[
            created(child, parent, &["A", "B"], &made),
            created(done, parent, &["A"], b"MSH|done"),
            Record::Completed {
                message_id: parent,
                target: "Router",
            },
            Record::Completed {
                message_id: done,
                target: "A",
            },
        ])
        .await
        .unwrap();
        assert_eq!(
            wal.open_messages(),
            1,
            "only the child still owes deliveries"
        );
        wal.close().await.unwrap();

        let (wal, recovery) = Wal::open(&path, config.clone()).await.unwrap();
        assert_eq!(
            recovery.messages.keys().copied().collect::<Vec<_>>(),
            [child]
        );
        let message = &recovery.messages[&child];
        assert_eq!(message.parent, Some(parent));
        assert_eq!(message.bytes, made, "redelivered as made, not made again");
        assert_eq!(message.source, "Router");
        assert_eq!(message.message_type, "ADT^A08");
        assert!(recovery.unrouted.is_empty(), "its record enqueued it");
        for target in ["A", "B"] {
            let owed = &recovery.targets[target];
            assert_eq!(owed.len(), 1, "{target}");
            assert_eq!(owed[0].message_id, child);
            assert_eq!(owed[0].state, DeliveryState::Queued);
        }
        assert_eq!(recovery.stats.orphan_records, 0);
        let found = wal.find_message(child).await.unwrap().expect("in the WAL");
        assert!(matches!(found.record(), Some(Record::Created { bytes, .. }) if bytes == made));

        // A delivers it, B fails it: held for an operator, so still open.
        wal.append_many(&[
            Record::Completed {
                message_id: child,
                target: "A",
            },
            Record::Failed {
                message_id: child,
                target: "B",
                reason: "AR",
            },
        ])
        .await
        .unwrap();
        wal.close().await.unwrap();
        let (wal, recovery) = Wal::open(&path, config.clone()).await.unwrap();
        assert_eq!(
            recovery.messages.keys().copied().collect::<Vec<_>>(),
            [child]
        );
        assert!(!recovery.targets.contains_key("A"));
        let failed = DeliveryState::Failed {
            reason: "AR".into(),
        };
        assert_eq!(recovery.targets["B"][0].state, failed);
        let first_segment = wal.segments()[0];

        // The operator discards it: closed, and its segment may go.
        wal.append(&Record::Discarded {
            message_id: child,
            target: "B",
            reason: "discarded by an operator",
        })
        .await
        .unwrap();
        assert_eq!(wal.open_messages(), 0);
        // Enough closed messages after it to fill its segment.
        fill(&wal, 2000, |_| true).await;
        glommio::timer::sleep(std::time::Duration::from_millis(2)).await;
        // (Retention also runs by itself when a segment fills up.)
        wal.run_retention().await.unwrap();
        assert!(
            !wal.segments().contains(&first_segment),
            "{:?}",
            wal.segments()
        );
        wal.close().await.unwrap();
        let (wal, recovery) = Wal::open(&path, config).await.unwrap();
        assert!(recovery.messages.is_empty());
        wal.close().await.unwrap();
    });
}
