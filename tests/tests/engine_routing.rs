//! Where messages go when their way is not the plain one, end to end: a target the
//! production disables keeps its messages queued (and in the WAL) until it is enabled, a
//! router's `BadMessageHandler` receives only what no target takes, and a restart on
//! fewer shards delivers what the shards that no longer run held.

mod common;

use std::time::Duration;

use common::{
    Answer, TestSink, adt, counter, ctl, disabled, head, router, send_one, start_hie,
    start_hie_with, states, tcp_operation, tcp_service, wait_status,
};
use hie_tests::{free_port, wait_until};

/// A TCP operation to `port` that retries every second for ever.
fn patient_operation(name: &str, port: u16) -> String {
    tcp_operation(
        name,
        port,
        &[("RetryInterval", "1"), ("FailureTimeout", "-1")],
        &[("ConnectTimeout", "1")],
    )
}

fn queued(status: &serde_json::Value, item: &str) -> u64 {
    counter(status, item, "queued")
}

#[test]
fn a_target_disabled_in_the_production_keeps_its_messages_until_enabled() {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, out_port) = (free_port(), free_port());
    let sink = TestSink::start(out_port, Answer::Code("AA"));
    let production = head("Disabled", 1)
        + &tcp_service("In", in_port, "Out", &[])
        + &disabled(&patient_operation("Out", out_port));
    let (hie, data) = start_hie(dir.path(), &production);
    for n in 0..3 {
        assert_eq!(send_one(in_port, &adt(&format!("D-{n}"), "P1")), "AA");
    }
    let status = wait_status(&hie, &data, Duration::from_secs(5), "queued", |s| {
        queued(s, "Out") == 3
    });
    assert_eq!(states(&status, "Out"), ["disabled"], "{status:#}");
    assert_eq!(counter(&status, "Out", "discarded"), 0, "{status:#}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(sink.count(), 0, "a disabled operation sends nothing");
    common::stop(hie);

    // Durable: after a restart the messages wait again, and an enable sends them.
    let (hie, data) = start_hie(dir.path(), &production);
    let status = wait_status(&hie, &data, Duration::from_secs(5), "requeued", |s| {
        queued(s, "Out") == 3
    });
    assert_eq!(states(&status, "Out"), ["disabled"], "{status:#}");
    let (code, text) = ctl(&data, &["enable", "Out"]);
    assert_eq!(code, 0, "{text}");
    assert!(
        wait_until(Duration::from_secs(10), || sink.count() >= 3),
        "enabled, it sends what waited; log:\n{}",
        hie.log()
    );
    assert_eq!(sink.control_ids(), ["D-0", "D-1", "D-2"]);
    wait_status(&hie, &data, Duration::from_secs(5), "completed", |s| {
        counter(s, "Out", "completed") == 3 && s["shards"][0]["wal_open_messages"] == 0
    });
    common::stop(hie);

    // The operator's enable is kept, as enabling it in IRIS changes the production: after
    // a restart it runs, until `hie ctl disable`.
    let (hie, data) = start_hie(dir.path(), &production);
    let status = wait_status(&hie, &data, Duration::from_secs(5), "running", |s| {
        states(s, "Out") == ["running"]
    });
    assert_eq!(counter(&status, "Out", "completed"), 0);
    assert_eq!(send_one(in_port, &adt("D-3", "P1")), "AA");
    assert!(
        wait_until(Duration::from_secs(10), || sink.count() == 4),
        "the kept enable sends at once; log:\n{}",
        hie.log()
    );
    let (code, text) = ctl(&data, &["disable", "Out"]);
    assert_eq!(code, 0, "{text}");
    common::stop(hie);
    let (hie, data) = start_hie(dir.path(), &production);
    wait_status(&hie, &data, Duration::from_secs(5), "disabled again", |s| {
        states(s, "Out") == ["disabled"]
    });
}

#[test]
fn a_restart_recovers_more_messages_for_a_disabled_target_than_its_queue_size() {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, out_port) = (free_port(), free_port());
    let sink = TestSink::start(out_port, Answer::Code("AA"));
    // Out's queue (QueueSize 2) fills; the router records Enqueued for Out for the third
    // message and waits for room with it; the last two wait in the router's queue.
    let production = head("DisabledFull", 1)
        + &tcp_service("In", in_port, "Router", &[])
        + &router("Router", "Out", &[])
        + &disabled(&tcp_operation(
            "Out",
            out_port,
            &[("QueueSize", "2"), ("RetryInterval", "1")],
            &[],
        ));
    let fast_stop = ["--shutdown-timeout", "1"];
    let (hie, data) = start_hie_with(dir.path(), &production, &fast_stop);
    let ids: Vec<String> = (0..5).map(|n| format!("Q-{n}")).collect();
    for id in &ids {
        assert_eq!(send_one(in_port, &adt(id, "P1")), "AA");
    }
    wait_status(&hie, &data, Duration::from_secs(5), "full", |s| {
        queued(s, "Out") == 2 && counter(s, "Router", "processed") == 3
    });
    common::stop(hie);

    // Three messages are owed to Out, one more than its queue holds: the start does not
    // wait for room that only an enable would make.
    let (hie, data) = start_hie_with(dir.path(), &production, &fast_stop);
    let status = wait_status(&hie, &data, Duration::from_secs(5), "requeued", |s| {
        queued(s, "Out") == 3
    });
    assert_eq!(states(&status, "Out"), ["disabled"], "{status:#}");
    let (code, text) = ctl(&data, &["enable", "Out"]);
    assert_eq!(code, 0, "{text}");
    assert!(
        wait_until(Duration::from_secs(10), || sink.count() >= 5),
        "got {:?}; log:\n{}",
        sink.control_ids(),
        hie.log()
    );
    assert_eq!(sink.control_ids(), ids, "in order");
}

#[test]
fn a_service_disabled_in_the_production_listens_only_once_enabled() {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, out_port) = (free_port(), free_port());
    let sink = TestSink::start(out_port, Answer::Code("AA"));
    let production = head("DisabledIn", 1)
        + &disabled(&tcp_service("In", in_port, "Out", &[]))
        + &patient_operation("Out", out_port);
    let (hie, data) = start_hie(dir.path(), &production);
    assert!(
        hie.listening.is_empty(),
        "no listening line for a disabled service: {:?}",
        hie.listening
    );
    assert!(std::net::TcpStream::connect(("127.0.0.1", in_port)).is_err());
    assert_eq!(states(&common::status(&data), "In"), ["disabled"]);
    let (code, text) = ctl(&data, &["enable", "In"]);
    assert_eq!(code, 0, "{text}");
    assert!(wait_until(Duration::from_secs(5), || {
        std::net::TcpStream::connect(("127.0.0.1", in_port)).is_ok()
    }));
    assert_eq!(send_one(in_port, &adt("DI-1", "P1")), "AA");
    assert!(wait_until(Duration::from_secs(5), || sink.count() == 1));
}

#[test]
fn bad_message_handler_receives_only_what_no_target_takes() {
    let dir = tempfile::tempdir().unwrap();
    let (good_port, bad_port) = (free_port(), free_port());
    let (out_port, handler_port) = (free_port(), free_port());
    let out = TestSink::start(out_port, Answer::Code("AA"));
    let handler = TestSink::start(handler_port, Answer::Code("AA"));
    let bad = [("BadMessageHandler", "Bad")];
    let production = head("BadMessages", 1)
        + &tcp_service("GoodIn", good_port, "Routed", &[])
        + &tcp_service("BadIn", bad_port, "Unroutable", &[])
        + &router("Routed", "Out", &bad)
        + &router(
            "Unroutable",
            "",
            &[("BadMessageHandler", "Bad"), ("AlertOnBadMessage", "1")],
        )
        + &patient_operation("Out", out_port)
        + &patient_operation("Bad", handler_port);
    let (hie, data) = start_hie(dir.path(), &production);
    for n in 0..3 {
        assert_eq!(send_one(good_port, &adt(&format!("G-{n}"), "P1")), "AA");
    }
    assert_eq!(send_one(bad_port, &adt("B-0", "P2")), "AA");
    assert!(
        wait_until(Duration::from_secs(10), || out.count() == 3
            && handler.count() == 1),
        "out {:?}, handler {:?}; log:\n{}",
        out.control_ids(),
        handler.control_ids(),
        hie.log()
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(out.control_ids(), ["G-0", "G-1", "G-2"]);
    assert_eq!(
        handler.control_ids(),
        ["B-0"],
        "routed messages do not reach the BadMessageHandler"
    );
    let status = wait_status(&hie, &data, Duration::from_secs(5), "closed", |s| {
        s["shards"][0]["wal_open_messages"] == 0
    });
    assert_eq!(counter(&status, "Unroutable", "discarded"), 0, "{status:#}");
    // Issue #18: counted as no route and as an alert, once.
    assert_eq!(counter(&status, "Unroutable", "no_route"), 1, "{status:#}");
    assert_eq!(counter(&status, "Unroutable", "alerts"), 1, "{status:#}");
    assert_eq!(counter(&status, "Routed", "no_route"), 0, "{status:#}");
    let log = hie.log();
    assert!(
        log.contains("ALERT Unroutable") && !log.contains("ALERT Routed"),
        "AlertOnBadMessage alerts for the bad message only:\n{log}"
    );
    assert!(
        log.contains("alert=\"AlertOnBadMessage\""),
        "a stable alert field:\n{log}"
    );
}

#[test]
fn a_restart_on_fewer_shards_delivers_what_the_missing_shards_held() {
    let dir = tempfile::tempdir().unwrap();
    let (in0, in1, out_port) = (free_port(), free_port(), free_port());
    // Two shards: In0 on shard 0, In1 on shard 1 (round robin), Out on shard 0. Out's
    // downstream is down, so what In1 receives stays open in shard 1's WAL.
    let production = head("FewerShards", 2)
        + &tcp_service("In0", in0, "Out", &[])
        + &tcp_service("In1", in1, "Out", &[])
        + &patient_operation("Out", out_port);
    let fast_stop = ["--shutdown-timeout", "1"];
    let (hie, data) = start_hie_with(dir.path(), &production, &fast_stop);
    let ids: Vec<String> = (0..20).map(|n| format!("F-{n:02}")).collect();
    for (n, id) in ids.iter().enumerate() {
        assert_eq!(send_one(in1, &adt(id, &format!("P{}", n % 3))), "AA");
    }
    // All 20 have reached Out: queued, or (the first) taken and held in Out's failing
    // connect. Out sends one message at a time.
    wait_status(&hie, &data, Duration::from_secs(5), "queued", |s| {
        let queued = counter(s, "Out", "queued");
        queued == 20 || (queued == 19 && counter(s, "Out", "processed") >= 1)
    });
    let open_before = common::status(&data)["shards"][1]["wal_open_messages"].clone();
    assert_eq!(open_before, 20, "shard 1's WAL holds them");
    common::stop(hie);

    // One shard now: shard-1's WAL is re-placed, and everything arrives once the
    // downstream is up.
    let sink = TestSink::start(out_port, Answer::Code("AA"));
    let mut args = fast_stop.to_vec();
    args.extend(["--shards", "1"]);
    let (hie, data) = start_hie_with(dir.path(), &production, &args);
    assert!(
        wait_until(Duration::from_secs(15), || sink.count() >= 20),
        "got {:?}; log:\n{}",
        sink.control_ids(),
        hie.log()
    );
    let mut got = sink.control_ids();
    got.sort();
    got.dedup();
    assert_eq!(got, ids);
    assert!(
        hie.log().contains("re-placed"),
        "the log says so:\n{}",
        hie.log()
    );
    wait_status(&hie, &data, Duration::from_secs(5), "closed", |s| {
        s["shards"][0]["wal_open_messages"] == 0
    });
    common::stop(hie);

    // Back on two shards: nothing is open in shard 1's WAL any more, nothing is resent.
    let (hie, data) = start_hie_with(dir.path(), &production, &fast_stop);
    let status = common::status(&data);
    assert_eq!(status["shards"][1]["wal_open_messages"], 0, "{status:#}");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(sink.count(), 20, "no duplicate; log:\n{}", hie.log());
}
