//! `hie ctl` end to end through the real `hie` binary: item names with spaces, disable
//! kept across a restart, the status table and `--json`, the held lists (a failed
//! message listed, shown, resent and discarded, across restarts), the downstream
//! connection log, and the latency histograms merged over the shards. (The admin API's
//! own checks, token and limits, are in `admin.rs`.)

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::{
    Answer, TestSink, adt, counter, ctl, head, held, router, send_one, start_hie, states, status,
    tcp_operation, tcp_service, wait_status,
};
use hie_tests::{free_port, wait_until};

const OUT: &str = "Main ADT Out";

fn production(in_port: u16, out_port: u16, host: &[(&str, &str)]) -> String {
    production_on(1, in_port, out_port, host)
}

fn production_on(shards: usize, in_port: u16, out_port: u16, host: &[(&str, &str)]) -> String {
    head("Ctl", shards)
        + &tcp_service("Main ADT In", in_port, OUT, &[])
        + &tcp_operation(OUT, out_port, host, &[])
}

#[test]
fn an_item_named_with_spaces_is_disabled_and_stays_disabled_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, out_port) = (free_port(), free_port());
    let sink = TestSink::start(out_port, Answer::Code("AA"));
    let text = production(in_port, out_port, &[]);
    let (mut hie, data) = start_hie(dir.path(), &text);

    let (code, out) = ctl(&data, &["disable", OUT]);
    assert_eq!(code, 0, "{out}");
    wait_status(&hie, &data, Duration::from_secs(5), "disabled", |s| {
        states(s, OUT) == ["disabled"]
    });
    let kept = data.join("items-disabled.json");
    let mode = std::fs::metadata(&kept).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{}", kept.display());

    let stopped = hie.process.stop(Duration::from_secs(30));
    assert!(stopped.is_some_and(|s| s.success()), "log:\n{}", hie.log());
    let (hie, data) = start_hie(dir.path(), &text);
    assert_eq!(states(&status(&data), OUT), ["disabled"], "{}", hie.log());
    assert_eq!(send_one(in_port, &adt("SP-1", "P1")), "AA");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(sink.count(), 0, "a disabled operation sends nothing");

    let (code, out) = ctl(&data, &["enable", OUT]);
    assert_eq!(code, 0, "{out}");
    assert!(
        wait_until(Duration::from_secs(10), || sink.count() == 1),
        "enabled: the waiting message is sent; log:\n{}",
        hie.log()
    );
    // An unquoted name is several arguments, which is refused rather than guessed at.
    let (code, _) = ctl(&data, &["disable", "Main", "ADT", "Out"]);
    assert_eq!(code, 2, "a usage error");
    let (code, _) = ctl(&data, &["disable", "Main ADT"]);
    assert_eq!(code, 1, "no such item");
}

#[test]
fn status_prints_a_table_by_default_and_json_with_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, out_port) = (free_port(), free_port());
    let _sink = TestSink::start(out_port, Answer::Code("AA"));
    let (hie, data) = start_hie(dir.path(), &production(in_port, out_port, &[]));
    assert_eq!(send_one(in_port, &adt("T-1", "P1")), "AA");
    wait_status(&hie, &data, Duration::from_secs(10), "completed", |s| {
        counter(s, OUT, "completed") == 1
    });

    let (code, table) = ctl(&data, &["status"]);
    assert_eq!(code, 0, "{table}");
    assert!(serde_json::from_str::<serde_json::Value>(&table).is_err());
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("ITEM") && l.contains("STATE")),
        "{table}"
    );
    let row = lines.iter().find(|l| l.starts_with(OUT)).expect(&table);
    let cells: Vec<&str> = row[OUT.len()..].split_whitespace().collect();
    assert_eq!(
        &cells[..4],
        ["running", "0", "0", "1"],
        "state, queued, received, completed: {table}"
    );
    assert!(table.contains("held: 0 failed, 0 suspended"), "{table}");

    let (code, json) = ctl(&data, &["status", "--json"]);
    assert_eq!(code, 0);
    let value: serde_json::Value = serde_json::from_str(&json).expect(&json);
    assert_eq!(counter(&value, OUT, "completed"), 1);
}

#[test]
fn a_failed_message_is_listed_shown_resent_and_discarded_and_its_list_survives_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, out_port) = (free_port(), free_port());
    // Nothing listens at out_port: the downstream is down. Two shards: a message may be
    // received on one and fail at the operation on the other (its held list is at the
    // receiving shard).
    let host = [("RetryInterval", "1"), ("FailureTimeout", "2")];
    let text = production_on(2, in_port, out_port, &host);
    let (mut hie, data) = start_hie(dir.path(), &text);
    assert_eq!(send_one(in_port, &adt("F-1", "P1")), "AA");
    assert_eq!(send_one(in_port, &adt("F-2", "P2")), "AA");
    assert!(
        wait_until(Duration::from_secs(30), || held(&data).len() == 2),
        "both fail after FailureTimeout; log:\n{}",
        hie.log()
    );
    let listed = held(&data);
    for (entry, control_id) in listed.iter().zip(["F-1", "F-2"]) {
        assert_eq!(entry["item"], OUT);
        assert_eq!(entry["kind"], "failed");
        assert_eq!(entry["message_type"], "ADT^A01");
        assert_eq!(entry["control_id"], control_id);
        assert!(
            entry["at"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{entry}"
        );
        assert!(
            entry["reason"].as_str().is_some_and(|r| !r.is_empty()),
            "{entry}"
        );
    }
    // Issue #18: /status shows the operation's last error.
    let api_status = status(&data);
    let last_error = api_status["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["item"] == OUT))
        .map(|i| i["last_error"].clone())
        .unwrap_or_default();
    assert!(
        last_error["at"].as_str().is_some_and(|t| t.ends_with('Z'))
            && last_error["what"].as_str().is_some_and(|w| !w.is_empty()),
        "{api_status:#}"
    );
    let id = |n: usize| listed[n]["message_id"].as_str().unwrap().to_string();
    let (code, table) = ctl(&data, &["held"]);
    assert_eq!(code, 0);
    assert!(
        table.contains(&id(0)) && table.contains("F-2") && table.contains("failed"),
        "{table}"
    );
    let (code, shown) = ctl(&data, &["show", &id(0)]);
    assert_eq!(code, 0, "{shown}");
    assert!(
        shown.starts_with("MSH|") && shown.contains("|F-1|"),
        "{shown}"
    );
    assert!(
        shown.contains("\nPID|"),
        "segments on their own lines: {shown}"
    );

    // Still listed after a restart.
    let stopped = hie.process.stop(Duration::from_secs(30));
    assert!(stopped.is_some_and(|s| s.success()), "log:\n{}", hie.log());
    let (mut hie, data) = start_hie(dir.path(), &text);
    let without_time = |entries: Vec<serde_json::Value>| {
        entries
            .into_iter()
            .map(|mut e| e.as_object_mut().and_then(|o| o.remove("at")).map(|_| e))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        without_time(held(&data)),
        without_time(listed.clone()),
        "the lists survive a restart"
    );

    // Resend F-1 once the downstream is up; discard F-2.
    let sink = TestSink::start(out_port, Answer::Code("AA"));
    let (code, out) = ctl(&data, &["resend", &id(0)]);
    assert_eq!(code, 0, "{out}");
    assert!(
        wait_until(Duration::from_secs(15), || sink.control_ids() == ["F-1"]),
        "resent F-1 arrives; log:\n{}",
        hie.log()
    );
    let (code, out) = ctl(&data, &["discard", &id(1)]);
    assert_eq!(code, 0, "{out}");
    assert!(held(&data).is_empty());
    let (code, _) = ctl(&data, &["resend", &id(1)]);
    assert_eq!(code, 1, "a discarded message is no longer held");
    wait_status(&hie, &data, Duration::from_secs(10), "WAL closed", |s| {
        s["shards"]
            .as_array()
            .is_some_and(|shards| shards.iter().all(|sh| sh["wal_open_messages"] == 0))
    });

    let stopped = hie.process.stop(Duration::from_secs(30));
    assert!(stopped.is_some_and(|s| s.success()), "log:\n{}", hie.log());
    let (hie, data) = start_hie(dir.path(), &text);
    assert!(held(&data).is_empty(), "resend and discard are durable");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(sink.control_ids(), ["F-1"], "log:\n{}", hie.log());
}

#[test]
fn downstream_connection_failures_connects_and_losses_are_logged() {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, out_port) = (free_port(), free_port());
    let host = [("RetryInterval", "1"), ("FailureTimeout", "-1")];
    let config = common::write_production(dir.path(), &production(in_port, out_port, &host));
    let data = dir.path().join("data");
    let hie = hie_tests::Hie::start(&config, &data, &["--no-pin", "--log", "info"]);
    assert_eq!(send_one(in_port, &adt("L-1", "P1")), "AA");
    let logged = |what: &str| {
        hie.log()
            .lines()
            .any(|l| l.contains(what) && l.contains(OUT))
    };
    assert!(
        wait_until(Duration::from_secs(10), || logged(
            "downstream: cannot connect"
        )),
        "the first failed connect is logged at once; log:\n{}",
        hie.log()
    );
    let sink = TestSink::start(out_port, Answer::Code("AA"));
    assert!(wait_until(Duration::from_secs(15), || sink.count() == 1));
    assert!(
        wait_until(Duration::from_secs(5), || logged(
            "downstream: connected again"
        )),
        "log:\n{}",
        hie.log()
    );
    // The downstream goes away while connected: the loss is logged with the address.
    drop(sink.stop());
    assert_eq!(send_one(in_port, &adt("L-2", "P1")), "AA");
    assert!(
        wait_until(Duration::from_secs(10), || logged(
            "downstream: connection lost"
        )),
        "log:\n{}",
        hie.log()
    );
    let address = format!("127.0.0.1:{out_port}");
    assert!(
        hie.log()
            .lines()
            .filter(|l| l.contains("downstream:"))
            .all(|l| l.contains(&address)),
        "every line names the address; log:\n{}",
        hie.log()
    );
}

#[test]
fn a_service_disabled_before_a_restart_does_not_listen_until_enabled() {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, out_port) = (free_port(), free_port());
    let sink = TestSink::start(out_port, Answer::Code("AA"));
    let text = production(in_port, out_port, &[]);
    let (mut hie, data) = start_hie(dir.path(), &text);
    let (code, out) = ctl(&data, &["disable", "Main ADT In"]);
    assert_eq!(code, 0, "{out}");
    let stopped = hie.process.stop(Duration::from_secs(30));
    assert!(stopped.is_some_and(|s| s.success()), "log:\n{}", hie.log());

    let (hie, data) = start_hie(dir.path(), &text);
    assert!(
        hie.listening.iter().all(|(item, _)| item != "Main ADT In"),
        "{:?}",
        hie.listening
    );
    assert_eq!(states(&status(&data), "Main ADT In"), ["disabled"]);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", in_port)).is_err(),
        "a disabled service does not listen"
    );
    let (code, out) = ctl(&data, &["enable", "Main ADT In"]);
    assert_eq!(code, 0, "{out}");
    assert!(wait_until(Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", in_port)).is_ok()
    }));
    assert_eq!(send_one(in_port, &adt("EN-1", "P1")), "AA");
    assert!(wait_until(Duration::from_secs(10), || sink.count() == 1));
}

/// Issue #20: every stage of every item counts each message once, in one histogram merged
/// over the shards, and `hie ctl histograms` prints it (or one item's, `--item`).
#[test]
fn histograms_count_every_message_at_every_stage_merged_over_the_shards() {
    const N: u64 = 20;
    const ROUTER: &str = "Main ADT Router";
    let dir = tempfile::tempdir().unwrap();
    let (in_port, out_port) = (free_port(), free_port());
    let sink = TestSink::start(out_port, Answer::Code("AA"));
    let text = head("Histograms", 2)
        + &tcp_service("Main ADT In", in_port, ROUTER, &[])
        + &router(ROUTER, OUT, &[])
        + &tcp_operation(OUT, out_port, &[], &[]);
    let (hie, data) = start_hie(dir.path(), &text);
    for n in 0..N {
        let msg = adt(&format!("H-{n}"), &format!("P{n}"));
        assert_eq!(send_one(in_port, &msg), "AA");
    }
    wait_status(&hie, &data, Duration::from_secs(20), "all delivered", |s| {
        counter(s, OUT, "completed") == N
    });
    assert_eq!(sink.count() as u64, N);

    let (code, json) = ctl(&data, &["histograms", "--json"]);
    assert_eq!(code, 0, "{json}");
    let report: serde_json::Value = serde_json::from_str(&json).expect(&json);
    assert_eq!(report["shards"], serde_json::json!([0, 1]), "{report:#}");
    let count = |item: &str, stage: &str| {
        report["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|i| i["item"] == item)
            .flat_map(|i| i["stages"].as_array().into_iter().flatten())
            .filter(|s| s["stage"] == stage)
            .map(|s| s["count"].as_u64().unwrap_or(0))
            .sum::<u64>()
    };
    for (item, stage) in [
        ("Main ADT In", "durable"),
        (ROUTER, "routed"),
        (OUT, "delivered"),
        (OUT, "round_trip"),
    ] {
        assert_eq!(count(item, stage), N, "{item} {stage}: {report:#}");
    }

    let (code, table) = ctl(&data, &["histograms", "--item", OUT]);
    assert_eq!(code, 0, "{table}");
    let rows: Vec<Vec<&str>> = table
        .lines()
        .filter(|l| l.starts_with(OUT))
        .map(|l| l[OUT.len()..].split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 2, "delivered and round_trip: {table}");
    assert_eq!(&rows[0][..2], ["delivered", "20"], "{table}");
    assert_eq!(&rows[1][..2], ["round_trip", "20"], "{table}");
    assert!(!table.contains(ROUTER), "only the item asked for: {table}");
    let (code, _) = ctl(&data, &["histograms", "--item", "No Such Item"]);
    assert_eq!(code, 1, "no such item");
}
