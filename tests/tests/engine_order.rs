//! Per-patient order through a service whose port is shared over two shards, end to end:
//! each patient's messages are sent one after the other, each on a new connection (as a
//! sender that reconnects between messages does), so the kernel hands them to either
//! shard; the downstream system must receive each patient's messages in the order they
//! were acknowledged.
//!
//! Without the ordered acknowledgment of a shared port (a service ACKs only once its
//! message is in its operation's queue) a message could be acknowledged while it still
//! waited in the first shard's router queue, and the sender's next message, taken by the
//! other shard, could reach the operation first. The operation's small queue and the slow
//! downstream keep the routers' queues from emptying at once, so that window stays open.
//!
//! Production: `In` (TCP service, PoolSize 2) → `Router` → `Out` (TCP operation,
//! PoolSize 2, one instance per shard, QueueSize 2) → the test's sink, which waits 2 ms
//! before each ACK. Bounded: 4 patients × 25 messages, every wait with a deadline.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Answer, TestSink, adt, control_id, item_entries, patient, start_hie};
use hie_tests::{MllpConn, field, free_port, wait_until};

const PATIENTS: usize = 4;
const MESSAGES_PER_PATIENT: usize = 25;

fn production(in_port: u16, sink_port: u16) -> String {
    let service = common::tcp_service("In", in_port, "Router", &[]);
    let operation = common::tcp_operation("Out", sink_port, &[("QueueSize", "2")], &[]);
    [
        common::head("Order", 2),
        common::pooled(&service, 2),
        common::router("Router", "Out", &[]),
        common::pooled(&operation, 2),
    ]
    .concat()
}

#[test]
fn a_patients_messages_keep_their_order_when_each_comes_on_a_new_connection_to_either_shard() {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, sink_port) = (free_port(), free_port());
    let sink = TestSink::start(sink_port, Answer::Code("AA"));
    sink.set_delay(Duration::from_millis(2));
    let (hie, data) = start_hie(dir.path(), &production(in_port, sink_port));

    let senders: Vec<_> = (0..PATIENTS)
        .map(|p| {
            std::thread::spawn(move || {
                let patient = format!("P{p}");
                let mut sent = Vec::new();
                for n in 0..MESSAGES_PER_PATIENT {
                    let id = format!("{patient}-{n:03}");
                    let mut conn =
                        MllpConn::connect(&format!("127.0.0.1:{in_port}")).expect("connect");
                    let ack = conn.exchange(&adt(&id, &patient)).expect("ACK");
                    assert_eq!(field(&ack, "MSA", 1).as_deref(), Some("AA"), "{id}");
                    sent.push(id);
                }
                (patient, sent)
            })
        })
        .collect();
    let sent: BTreeMap<String, Vec<String>> = senders
        .into_iter()
        .map(|s| s.join().expect("sender"))
        .collect();

    let total = PATIENTS * MESSAGES_PER_PATIENT;
    assert!(
        wait_until(Duration::from_secs(30), || sink.count() >= total),
        "{} of {total} arrived; log:\n{}",
        sink.count(),
        hie.log()
    );
    let status = common::status(&data);
    let received: Vec<u64> = item_entries(&status, "In")
        .iter()
        .map(|e| e["received"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(received.len(), 2, "one In instance per shard: {status:#}");
    assert!(
        received.iter().all(|&n| n > 0),
        "both shards took connections: {received:?}"
    );

    let mut arrived: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for msg in sink.stop() {
        let ids = arrived.entry(patient(&msg)).or_default();
        let id = control_id(&msg);
        // At least once: a redelivery of the last one is not a reordering.
        if ids.last() != Some(&id) {
            ids.push(id);
        }
    }
    assert_eq!(
        arrived, sent,
        "each patient's messages in the order they were ACKed"
    );
    assert!(
        !hie.log().contains("acknowledged anyway"),
        "every ACK waited for its message to reach the operation's queue:\n{}",
        hie.log()
    );
}
