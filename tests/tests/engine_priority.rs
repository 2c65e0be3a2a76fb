//! Priority queues, end to end: `QueueOrder=priority` with `PriorityMessageTypes` on an
//! operation lets matching messages overtake the ones waiting before them, live and after
//! a restart (recovered messages take the lane they took before); the default stays FIFO.
//!
//! Production: `In` (TCP service) → `Router` → `Out` (TCP operation) → the in-test sink;
//! one shard. `Out` is disabled while the messages are sent, so they all wait in its queue
//! and the order they leave in is the queue's alone.

mod common;

use std::time::Duration;

use common::{
    Answer, TestSink, adt, ctl, head, router, send_one, start_hie, start_hie_with, states,
    tcp_operation, tcp_service, wait_status,
};
use hie_tests::{free_port, wait_until};

/// The messages sent, in order: (control id, MSH-9). `H-*` are merges (ADT^A40) of the
/// same patient as the updates around them.
const SENT: &[(&str, &str)] = &[
    ("N-1", "ADT^A01"),
    ("N-2", "ADT^A08"),
    ("H-1", "ADT^A40"),
    ("N-3", "ADT^A08"),
    ("H-2", "ADT^A40"),
    ("N-4", "ORU^R01"),
];

fn message(control_id: &str, msh9: &str) -> Vec<u8> {
    let text = String::from_utf8(adt(control_id, "P1")).expect("ASCII");
    text.replacen("|ADT^A01|", &format!("|{msh9}|"), 1)
        .into_bytes()
}

fn production(in_port: u16, out_port: u16, out_host: &[(&str, &str)]) -> String {
    let mut host = vec![("RetryInterval", "1"), ("FailureTimeout", "-1")];
    host.extend_from_slice(out_host);
    head("Priority", 1)
        + &tcp_service("In", in_port, "Router", &[])
        + &router("Router", "Out", &[])
        + &tcp_operation("Out", out_port, &host, &[("ConnectTimeout", "1")])
}

const PRIORITY: &[(&str, &str)] = &[
    ("QueueOrder", "priority"),
    ("PriorityMessageTypes", "ADT^A40"),
];

/// Disables `Out`, sends [`SENT`] (each ACKed AA), and waits until all are in its queue.
fn send_while_out_is_disabled(hie: &hie_tests::Hie, data: &std::path::Path, in_port: u16) {
    let (code, out) = ctl(data, &["disable", "Out"]);
    assert_eq!(code, 0, "{out}");
    wait_status(hie, data, Duration::from_secs(5), "disabled", |s| {
        states(s, "Out") == ["disabled"]
    });
    for (id, msh9) in SENT {
        assert_eq!(send_one(in_port, &message(id, msh9)), "AA", "{id}");
    }
    wait_status(hie, data, Duration::from_secs(10), "all queued", |s| {
        common::item_entries(s, "Out")
            .iter()
            .map(|e| e["queued"].as_u64().unwrap_or(0))
            .sum::<u64>()
            == SENT.len() as u64
    });
}

fn wait_for_all(sink: &TestSink, hie: &hie_tests::Hie) -> Vec<String> {
    let all = wait_until(Duration::from_secs(15), || sink.count() >= SENT.len());
    assert!(
        all,
        "only {:?} arrived; log:\n{}",
        sink.control_ids(),
        hie.log()
    );
    sink.control_ids()
}

#[test]
fn priority_message_types_overtake_the_messages_queued_before_them() {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, out_port) = (free_port(), free_port());
    let sink = TestSink::start(out_port, Answer::Code("AA"));
    let (hie, data) = start_hie(dir.path(), &production(in_port, out_port, PRIORITY));
    send_while_out_is_disabled(&hie, &data, in_port);
    assert!(sink.control_ids().is_empty(), "nothing sent while disabled");

    let (code, out) = ctl(&data, &["enable", "Out"]);
    assert_eq!(code, 0, "{out}");
    // The merges first, in their own order; then the rest in theirs, although the merges
    // were sent after N-1 and N-2 of the same patient.
    assert_eq!(
        wait_for_all(&sink, &hie),
        ["H-1", "H-2", "N-1", "N-2", "N-3", "N-4"]
    );
}

#[test]
fn without_queue_order_the_same_messages_leave_in_the_order_they_came() {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, out_port) = (free_port(), free_port());
    let sink = TestSink::start(out_port, Answer::Code("AA"));
    // The message types alone change nothing (hie check warns about them).
    let host = [("PriorityMessageTypes", "ADT^A40")];
    let (hie, data) = start_hie(dir.path(), &production(in_port, out_port, &host));
    send_while_out_is_disabled(&hie, &data, in_port);
    let (code, out) = ctl(&data, &["enable", "Out"]);
    assert_eq!(code, 0, "{out}");
    let sent: Vec<&str> = SENT.iter().map(|(id, _)| *id).collect();
    assert_eq!(wait_for_all(&sink, &hie), sent);
}

#[test]
fn recovered_messages_take_the_lane_they_took_before_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, out_port) = (free_port(), free_port());
    let sink = TestSink::start(out_port, Answer::Code("AA"));
    let text = production(in_port, out_port, PRIORITY);
    let (mut hie, data) = start_hie_with(dir.path(), &text, &["--shutdown-timeout", "1"]);
    send_while_out_is_disabled(&hie, &data, in_port);
    let exit = hie.process.stop(Duration::from_secs(15));
    assert!(
        exit.is_some_and(|s| s.success()),
        "exit {exit:?}; log:\n{}",
        hie.log()
    );
    assert!(
        sink.control_ids().is_empty(),
        "nothing sent before the stop"
    );

    // The next run starts `Out` still disabled (an operator's disable is kept) with its
    // queue refilled from the WAL; enabling it sends them in their lanes' order.
    let (hie, data) = start_hie(dir.path(), &text);
    assert_eq!(states(&common::status(&data), "Out"), ["disabled"]);
    let (code, out) = ctl(&data, &["enable", "Out"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        wait_for_all(&sink, &hie),
        ["H-1", "H-2", "N-1", "N-2", "N-3", "N-4"]
    );
}

#[test]
fn hie_check_refuses_priority_without_message_types_naming_file_line_and_item() {
    let dir = tempfile::tempdir().unwrap();
    let text = production(free_port(), free_port(), &[("QueueOrder", "priority")]);
    let config = common::write_production(dir.path(), &text);
    let out = std::process::Command::new(hie_tests::bin("hie"))
        .arg("check")
        .arg(&config)
        .output()
        .expect("run hie check");
    let text_out =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text_out}");
    let line = text
        .lines()
        .position(|l| l.starts_with("QueueOrder"))
        .expect("the setting is written")
        + 1;
    let error = text_out
        .lines()
        .find(|l| l.contains("PriorityMessageTypes"))
        .unwrap_or_else(|| panic!("no error about PriorityMessageTypes:\n{text_out}"));
    assert!(
        error.contains(&format!("production.toml:{line}")) && error.contains("Out"),
        "names file, line {line} and item: {error}"
    );
}
