//! Head-of-line blocking on a shard, end to end: while one operation's `block` queue is
//! full, the shard's dispatcher holds back only that operation's deliveries; another
//! operation on the same shard keeps receiving, and the held messages are delivered in
//! order, none lost, once the full one takes messages again.
//!
//! Production, two shards, round-robin placement: `OutA` on shard 0, `In` and `Router` on
//! shard 1, `OutB` on shard 0. The router sends every message to both operations, so
//! every delivery crosses the ring into shard 0's dispatcher.

mod common;

use std::time::Duration;

use common::{
    Answer, TestSink, adt, ctl, head, router, start_hie, states, tcp_operation, tcp_service,
    wait_status,
};
use hie_tests::{MllpConn, field, free_port, wait_until};

/// More than `OutA`'s queue holds, fewer than its queue and its hold list together.
const SENT: usize = 8;

#[test]
fn a_full_blocked_queue_of_one_operation_does_not_delay_another_operations_deliveries() {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, a_port, b_port) = (free_port(), free_port(), free_port());
    let sink_a = TestSink::start(a_port, Answer::Code("AA"));
    let sink_b = TestSink::start(b_port, Answer::Code("AA"));
    let production = head("HeadOfLine", 2)
        + &tcp_operation(
            "OutA",
            a_port,
            &[("QueueSize", "5"), ("Overflow", "block")],
            &[],
        )
        + &tcp_service("In", in_port, "Router", &[])
        + &router("Router", "OutA,OutB", &[])
        + &tcp_operation("OutB", b_port, &[], &[]);
    let (mut hie, data) = start_hie(dir.path(), &production);
    let (code, out) = ctl(&data, &["disable", "OutA"]);
    assert_eq!(code, 0, "{out}");
    wait_status(&hie, &data, Duration::from_secs(5), "disabled", |s| {
        states(s, "OutA") == ["disabled"]
    });

    let mut conn = MllpConn::connect(&format!("127.0.0.1:{in_port}")).unwrap();
    let ids: Vec<String> = (0..SENT).map(|n| format!("HOL{n:02}")).collect();
    for id in &ids {
        let ack = conn.exchange(&adt(id, "P1")).unwrap();
        assert_eq!(field(&ack, "MSA", 1).as_deref(), Some("AA"), "{id}");
    }
    // OutA's queue is full after 5; the other operation on its shard still gets all 8.
    assert!(
        wait_until(Duration::from_secs(10), || sink_b.count() >= SENT),
        "OutB got {:?} while OutA's queue was full; log:\n{}",
        sink_b.control_ids(),
        hie.log()
    );
    assert_eq!(sink_b.control_ids(), ids, "OutB: in order, once each");
    assert_eq!(sink_a.count(), 0, "a disabled operation sends nothing");
    // Its queue holds 5, the dispatcher the other 3: status counts all 8 as queued.
    wait_status(&hie, &data, Duration::from_secs(5), "all 8 waiting", |s| {
        common::counter(s, "OutA", "queued") == SENT as u64
    });

    let (code, out) = ctl(&data, &["enable", "OutA"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        wait_until(Duration::from_secs(10), || sink_a.count() >= SENT),
        "OutA got {:?} after enable; log:\n{}",
        sink_a.control_ids(),
        hie.log()
    );
    assert_eq!(
        sink_a.control_ids(),
        ids,
        "OutA: the queued and the held messages, in order, once each"
    );
    assert!(
        hie.process
            .stop(Duration::from_secs(30))
            .is_some_and(|s| s.success()),
        "log:\n{}",
        hie.log()
    );
}
