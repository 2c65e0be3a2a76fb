//! Each ReplyCodeActions outcome of an HL7 TCP operation, end to end: `hie run` between
//! this test's MLLP sender and its in-test sink, which answers AA, AE, AR or nothing.
//!
//! Production: `In` (TCP service) → `Out` (TCP operation) → the sink; one shard.

mod common;

use std::time::{Duration, Instant};

use common::{
    Answer, TestSink, adt, counter, ctl, head, send_one, start_hie, states, suspended,
    tcp_operation, tcp_service, wait_status,
};
use hie_tests::{free_port, wait_until};

fn production(
    in_port: u16,
    out_port: u16,
    host: &[(&str, &str)],
    adapter: &[(&str, &str)],
) -> String {
    head("ReplyCodeActions", 1)
        + &tcp_service("In", in_port, "Out", &[])
        + &tcp_operation("Out", out_port, host, adapter)
}

#[test]
fn an_aa_reply_completes_the_message() {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, out_port) = (free_port(), free_port());
    let sink = TestSink::start(out_port, Answer::Code("AA"));
    let (hie, data) = start_hie(dir.path(), &production(in_port, out_port, &[], &[]));

    assert_eq!(send_one(in_port, &adt("AA-1", "P1")), "AA");
    let status = wait_status(
        &hie,
        &data,
        Duration::from_secs(20),
        "Out completed 1",
        |s| counter(s, "Out", "completed") == 1,
    );
    assert_eq!(sink.control_ids(), vec!["AA-1"]);
    assert_eq!(counter(&status, "Out", "failed"), 0);
    assert_eq!(counter(&status, "Out", "retries"), 0);
    assert!(suspended(&data).is_empty());
    // The completion record reaches the WAL: nothing stays open.
    wait_status(
        &hie,
        &data,
        Duration::from_secs(10),
        "WAL has no open message",
        |s| s["shards"][0]["wal_open_messages"] == 0,
    );
}

#[test]
fn an_ae_reply_suspends_the_message_which_stays_listed_and_is_not_redelivered_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, out_port) = (free_port(), free_port());
    let sink = TestSink::start(out_port, Answer::Code("AE"));
    let text = production(in_port, out_port, &[], &[]);
    let (mut hie, data) = start_hie(dir.path(), &text);

    assert_eq!(send_one(in_port, &adt("AE-1", "P1")), "AA");
    let status = wait_status(
        &hie,
        &data,
        Duration::from_secs(20),
        "AE-1 suspended",
        |s| counter(s, "Out", "suspended") == 1,
    );
    let listed = suspended(&data);
    assert_eq!(listed.len(), 1, "{status:#}");
    assert_eq!(listed[0].1, "Out");
    assert_eq!(
        status["shards"][0]["wal_open_messages"], 1,
        "kept in the WAL"
    );
    // The operation goes on with the next message.
    sink.set_answer(Answer::Code("AA"));
    assert_eq!(send_one(in_port, &adt("AE-2", "P1")), "AA");
    wait_status(
        &hie,
        &data,
        Duration::from_secs(20),
        "AE-2 completed",
        |s| counter(s, "Out", "completed") == 1,
    );

    let stopped = hie.process.stop(Duration::from_secs(30));
    assert!(stopped.is_some_and(|s| s.success()), "log:\n{}", hie.log());
    let (hie, data) = start_hie(dir.path(), &text);
    common::status(&data);
    let listed_again = suspended(&data);
    assert_eq!(listed_again, listed, "still listed after a restart");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        sink.control_ids(),
        vec!["AE-1", "AE-2"],
        "a suspended message is not redelivered; log:\n{}",
        hie.log()
    );
}

#[test]
fn an_ar_reply_is_retried_every_retry_interval_until_failure_timeout_then_failed() {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, out_port) = (free_port(), free_port());
    let sink = TestSink::start(out_port, Answer::Code("AR"));
    let host = [("RetryInterval", "1"), ("FailureTimeout", "3")];
    let (hie, data) = start_hie(dir.path(), &production(in_port, out_port, &host, &[]));

    let sent = Instant::now();
    assert_eq!(send_one(in_port, &adt("AR-1", "P1")), "AA");
    let status = wait_status(&hie, &data, Duration::from_secs(30), "AR-1 failed", |s| {
        counter(s, "Out", "failed") == 1
    });
    let took = sent.elapsed();
    let attempts = sink.count();
    // Attempts at about 0, 1, 2 and 3 s; the one at or after 3 s gives up.
    assert!(
        (3..=5).contains(&attempts),
        "{attempts} attempts in {took:?}"
    );
    assert!(took >= Duration::from_secs(3), "failed after {took:?}");
    assert!(counter(&status, "Out", "retries") >= 2, "{status:#}");
    assert!(suspended(&data).is_empty(), "failed, not suspended");
    let held = common::held(&data);
    assert_eq!(held.len(), 1, "listed as failed: {held:?}");
    assert_eq!(
        (held[0]["kind"].as_str(), held[0]["control_id"].as_str()),
        (Some("failed"), Some("AR-1"))
    );
    assert!(sink.control_ids().iter().all(|c| c == "AR-1"));
    // A failed message waits for an operator; the next one goes through.
    sink.set_answer(Answer::Code("AA"));
    assert_eq!(send_one(in_port, &adt("AR-2", "P1")), "AA");
    wait_status(
        &hie,
        &data,
        Duration::from_secs(20),
        "AR-2 completed",
        |s| counter(s, "Out", "completed") == 1,
    );
    assert_eq!(sink.control_ids().last().map(String::as_str), Some("AR-2"));
}

#[test]
fn no_reply_within_response_timeout_is_retried_until_the_sink_answers() {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, out_port) = (free_port(), free_port());
    let sink = TestSink::start(out_port, Answer::Silent);
    let host = [("RetryInterval", "1"), ("FailureTimeout", "-1")];
    let adapter = [("ResponseTimeout", "1")];
    let (hie, data) = start_hie(dir.path(), &production(in_port, out_port, &host, &adapter));

    assert_eq!(send_one(in_port, &adt("NR-1", "P1")), "AA");
    let retried = wait_until(Duration::from_secs(20), || sink.count() >= 2);
    assert!(retried, "sent {} times; log:\n{}", sink.count(), hie.log());
    sink.set_answer(Answer::Code("AA"));
    let status = wait_status(
        &hie,
        &data,
        Duration::from_secs(20),
        "NR-1 completed",
        |s| counter(s, "Out", "completed") == 1,
    );
    assert!(counter(&status, "Out", "retries") >= 1);
    assert_eq!(counter(&status, "Out", "failed"), 0);
    assert!(sink.control_ids().iter().all(|c| c == "NR-1"));
}

#[test]
fn a_custom_e_disable_action_disables_the_item_until_enable_delivers_the_waiting_messages() {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, out_port) = (free_port(), free_port());
    let sink = TestSink::start(out_port, Answer::Code("AE"));
    let host = [("ReplyCodeActions", ":?E=D,:?A=C")];
    let (hie, data) = start_hie(dir.path(), &production(in_port, out_port, &host, &[]));

    assert_eq!(send_one(in_port, &adt("D-1", "P1")), "AA");
    wait_status(&hie, &data, Duration::from_secs(20), "Out disabled", |s| {
        states(s, "Out") == ["disabled"]
    });
    assert_eq!(send_one(in_port, &adt("D-2", "P1")), "AA");
    sink.set_answer(Answer::Code("AA"));
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(
        sink.control_ids(),
        vec!["D-1"],
        "a disabled item sends nothing"
    );
    let status = common::status(&data);
    assert_eq!(
        counter(&status, "Out", "queued"),
        2,
        "both wait: {status:#}"
    );

    let (code, out) = ctl(&data, &["enable", "Out"]);
    assert_eq!(code, 0, "{out}");
    wait_status(
        &hie,
        &data,
        Duration::from_secs(20),
        "both completed",
        |s| counter(s, "Out", "completed") == 2,
    );
    assert_eq!(sink.control_ids(), vec!["D-1", "D-1", "D-2"], "in order");
}

#[test]
fn a_custom_r_complete_action_completes_an_ar_reply() {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, out_port) = (free_port(), free_port());
    let sink = TestSink::start(out_port, Answer::Code("AR"));
    let host = [("ReplyCodeActions", ":?R=C")];
    let (hie, data) = start_hie(dir.path(), &production(in_port, out_port, &host, &[]));

    assert_eq!(send_one(in_port, &adt("RC-1", "P1")), "AA");
    let status = wait_status(
        &hie,
        &data,
        Duration::from_secs(20),
        "RC-1 completed",
        |s| counter(s, "Out", "completed") == 1,
    );
    assert_eq!(counter(&status, "Out", "retries"), 0);
    assert_eq!(counter(&status, "Out", "failed"), 0);
    assert_eq!(sink.control_ids(), vec!["RC-1"]);
}
