//! Overflow strategies of a full queue, end to end (hie host settings `QueueSize` and
//! `Overflow` on the operation that is the service's first hop):
//! - `block`: the service stops acknowledging (and reading) until there is room; the
//!   sender is slowed and nothing is lost;
//! - `drop_oldest`: the oldest queued message is discarded (counted in `hie ctl status`,
//!   closed in the WAL), the rest are delivered in order;
//! - `reject`: the service NAKs with AE and an ERR segment and stores nothing.
//!
//! The downstream (the in-test sink) stays silent at first, so the operation holds its
//! first message (ResponseTimeout 1 s, retried every second) while the queue fills.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{
    Answer, TestSink, adt, counter, head, send_one, start_hie, tcp_operation, tcp_service,
    wait_status,
};
use hie_tests::{MllpConn, field, free_port, wait_until};

fn production(in_port: u16, out_port: u16, queue_size: &str, overflow: &str) -> String {
    let host = [
        ("QueueSize", queue_size),
        ("Overflow", overflow),
        ("RetryInterval", "1"),
        ("FailureTimeout", "-1"),
    ];
    head("Overflow", 1)
        + &tcp_service("In", in_port, "Out", &[])
        + &tcp_operation("Out", out_port, &host, &[("ResponseTimeout", "1")])
}

/// Sends the first message and waits until the operation holds it (it reached the sink).
fn occupy_the_operation(in_port: u16, sink: &TestSink, id: &str) {
    assert_eq!(send_one(in_port, &adt(id, "P1")), "AA");
    assert!(
        wait_until(Duration::from_secs(10), || sink.count() >= 1),
        "the first message never reached the sink"
    );
}

/// The distinct control ids of `ids` in order of first arrival.
fn first_arrivals(ids: &[String]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    ids.iter()
        .filter(|id| seen.insert(id.as_str()))
        .cloned()
        .collect()
}

#[test]
fn block_slows_the_sender_while_the_queue_is_full_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, out_port) = (free_port(), free_port());
    let sink = TestSink::start(out_port, Answer::Silent);
    let (hie, data) = start_hie(dir.path(), &production(in_port, out_port, "5", "block"));
    occupy_the_operation(in_port, &sink, "B-00");

    const MORE: usize = 20;
    let acked = Arc::new(AtomicUsize::new(0));
    let sender = std::thread::spawn({
        let acked = Arc::clone(&acked);
        move || {
            let mut conn = MllpConn::connect(&format!("127.0.0.1:{in_port}")).unwrap();
            for n in 1..=MORE {
                let ack = conn.exchange(&adt(&format!("B-{n:02}"), "P1")).unwrap();
                assert_eq!(field(&ack, "MSA", 1).as_deref(), Some("AA"));
                acked.fetch_add(1, Ordering::AcqRel);
            }
        }
    });
    // Five fit in the queue; the sixth waits for room, unacknowledged.
    let status = wait_status(&hie, &data, Duration::from_secs(10), "queue full", |s| {
        counter(s, "Out", "queued") == 5
    });
    std::thread::sleep(Duration::from_millis(1000));
    let blocked_at = acked.load(Ordering::Acquire);
    assert!(
        blocked_at <= 6,
        "{blocked_at} of {MORE} ACKed with a queue of 5: {status:#}"
    );
    assert_eq!(counter(&status, "Out", "discarded"), 0);

    sink.set_answer(Answer::Code("AA"));
    sender.join().expect("sender");
    assert_eq!(acked.load(Ordering::Acquire), MORE);
    wait_status(&hie, &data, Duration::from_secs(30), "all delivered", |s| {
        counter(s, "Out", "completed") == MORE as u64 + 1
    });
    let expected: Vec<String> = (0..=MORE).map(|n| format!("B-{n:02}")).collect();
    assert_eq!(
        first_arrivals(&sink.control_ids()),
        expected,
        "all, in order"
    );
}

#[test]
fn drop_oldest_discards_the_oldest_queued_messages_counts_them_and_delivers_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, out_port) = (free_port(), free_port());
    let sink = TestSink::start(out_port, Answer::Silent);
    let (hie, data) = start_hie(
        dir.path(),
        &production(in_port, out_port, "3", "drop_oldest"),
    );
    occupy_the_operation(in_port, &sink, "D-01");

    // Nine more into a queue of three: the first six of them are pushed out.
    let mut conn = MllpConn::connect(&format!("127.0.0.1:{in_port}")).unwrap();
    for n in 2..=10 {
        let ack = conn.exchange(&adt(&format!("D-{n:02}"), "P1")).unwrap();
        assert_eq!(field(&ack, "MSA", 1).as_deref(), Some("AA"), "never blocks");
    }
    let status = common::status(&data);
    assert_eq!(counter(&status, "Out", "discarded"), 6, "{status:#}");
    assert_eq!(counter(&status, "Out", "queued"), 3);

    sink.set_answer(Answer::Code("AA"));
    wait_status(
        &hie,
        &data,
        Duration::from_secs(30),
        "rest delivered",
        |s| counter(s, "Out", "completed") == 4,
    );
    assert_eq!(
        first_arrivals(&sink.control_ids()),
        vec!["D-01", "D-08", "D-09", "D-10"]
    );
    // Discarded messages are closed in the WAL, not left for recovery.
    wait_status(&hie, &data, Duration::from_secs(10), "nothing open", |s| {
        s["shards"][0]["wal_open_messages"] == 0
    });
    assert!(hie.log().contains("drop_oldest"), "the discard is logged");
}

#[test]
fn reject_naks_with_ae_and_an_err_segment_when_the_first_hop_queue_is_full() {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, out_port) = (free_port(), free_port());
    let sink = TestSink::start(out_port, Answer::Silent);
    let (hie, data) = start_hie(dir.path(), &production(in_port, out_port, "2", "reject"));
    occupy_the_operation(in_port, &sink, "R-01");

    let mut conn = MllpConn::connect(&format!("127.0.0.1:{in_port}")).unwrap();
    for n in 2..=3 {
        let ack = conn.exchange(&adt(&format!("R-{n:02}"), "P1")).unwrap();
        assert_eq!(field(&ack, "MSA", 1).as_deref(), Some("AA"));
    }
    let nak = conn.exchange(&adt("R-04", "P1")).unwrap();
    assert_eq!(field(&nak, "MSA", 1).as_deref(), Some("AE"));
    assert_eq!(field(&nak, "MSA", 2).as_deref(), Some("R-04"));
    assert!(
        field(&nak, "ERR", 1).is_some() || field(&nak, "ERR", 3).is_some(),
        "an ERR segment: {}",
        String::from_utf8_lossy(&nak)
    );
    let status = common::status(&data);
    assert_eq!(counter(&status, "In", "rejected"), 1, "{status:#}");
    assert_eq!(counter(&status, "In", "received"), 3, "R-04 is not stored");

    sink.set_answer(Answer::Code("AA"));
    wait_status(
        &hie,
        &data,
        Duration::from_secs(30),
        "queued delivered",
        |s| counter(s, "Out", "completed") == 3,
    );
    // With room again, the next message is accepted.
    assert_eq!(send_one(in_port, &adt("R-05", "P1")), "AA");
    wait_status(
        &hie,
        &data,
        Duration::from_secs(30),
        "R-05 delivered",
        |s| counter(s, "Out", "completed") == 4,
    );
    assert_eq!(
        first_arrivals(&sink.control_ids()),
        vec!["R-01", "R-02", "R-03", "R-05"],
        "R-04 was refused, never delivered"
    );
    assert_eq!(common::status(&data)["shards"][0]["wal_open_messages"], 0);
}
