//! Alerts (issue #18) end to end through the real `hie` binary: `InactivityTimeout` fires
//! once when a feed stops and clears when it resumes; `QueueCountAlert` and
//! `QueueWaitAlert` fire when a queue reaches its count or its oldest message its wait,
//! and clear once it drains; both are log events with a stable
//! `alert` field and counters in `/metrics`; a bad value stops `hie check` and `hie run`;
//! a queue's oldest-message age is the wait in that item's own queue, not since the
//! message was stored.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Answer, TestSink, adt, head, send_one, tcp_operation, tcp_service};
use hie_tests::{bin, free_port, wait_until};

/// Lines of `log` that carry alert `alert` for `item`, raised (not cleared).
fn raised(log: &str, alert: &str, item: &str) -> usize {
    log.lines()
        .filter(|l| l.contains(&format!("alert=\"{alert}\"")))
        .filter(|l| l.contains(&format!("ALERT {item}:")))
        .count()
}

fn cleared(log: &str, alert: &str, item: &str) -> bool {
    log.lines().any(|l| {
        l.contains(&format!("alert=\"{alert}\""))
            && l.contains("cleared=true")
            && l.contains(&format!("item={item}"))
    })
}

/// The value of `name{item="ITEM"}` in the Prometheus text at `address`.
fn metric(address: &str, name: &str, item: &str) -> Option<f64> {
    let (code, text) = common::ctl_at(address, &["metrics"]);
    assert_eq!(code, 0, "{text}");
    let key = format!("{name}{{item=\"{item}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&key)?.parse().ok())
}

#[test]
fn an_inactivity_alert_fires_once_and_clears_and_a_queue_count_alert_fires_and_clears() {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, out_port) = (free_port(), free_port());
    let sink = TestSink::start(out_port, Answer::Code("AA"));
    let text = head("Alerts", 1)
        + &tcp_service("In", in_port, "Out", &[("InactivityTimeout", "2")])
        + &tcp_operation(
            "Out",
            out_port,
            &[("QueueCountAlert", "3"), ("QueueWaitAlert", "2")],
            &[],
        );
    let config = common::write_production(dir.path(), &text);
    let data = dir.path().join("data");
    let hie = hie_tests::Hie::start(&config, &data, &["--no-pin", "--log", "info"]);
    let address = hie.admin.clone().expect("admin API");
    assert_eq!(send_one(in_port, &adt("A-1", "P1")), "AA");
    assert!(wait_until(Duration::from_secs(10), || sink.count() == 1));

    // The feed stops: one alert, however long the silence lasts.
    assert!(
        wait_until(Duration::from_secs(15), || raised(
            &hie.log(),
            "InactivityTimeout",
            "In"
        ) == 1),
        "log:\n{}",
        hie.log()
    );
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        raised(&hie.log(), "InactivityTimeout", "In"),
        1,
        "{}",
        hie.log()
    );
    assert_eq!(
        raised(&hie.log(), "InactivityTimeout", "Out"),
        0,
        "no setting, no alert"
    );
    assert_eq!(
        metric(&address, "hie_item_inactivity_alerts_total", "In"),
        Some(1.0)
    );
    // It resumes: the alert clears.
    assert_eq!(send_one(in_port, &adt("A-2", "P1")), "AA");
    assert!(
        wait_until(Duration::from_secs(10), || cleared(
            &hie.log(),
            "InactivityTimeout",
            "In"
        )),
        "log:\n{}",
        hie.log()
    );

    // Out's queue reaches 3 while it is disabled: one alert; enabled, it drains and clears.
    let (code, out) = common::ctl(&data, &["disable", "Out"]);
    assert_eq!(code, 0, "{out}");
    for n in 0..4 {
        assert_eq!(send_one(in_port, &adt(&format!("Q-{n}"), "P1")), "AA");
    }
    assert!(
        wait_until(Duration::from_secs(10), || raised(
            &hie.log(),
            "QueueCountAlert",
            "Out"
        ) == 1),
        "log:\n{}",
        hie.log()
    );
    // The oldest of them waits: QueueWaitAlert, and its age in /metrics.
    assert!(
        wait_until(Duration::from_secs(10), || raised(
            &hie.log(),
            "QueueWaitAlert",
            "Out"
        ) == 1),
        "log:\n{}",
        hie.log()
    );
    let age = metric(&address, "hie_item_oldest_queued_age_seconds", "Out");
    assert!(age.is_some_and(|s| s >= 2.0), "{age:?}");
    let (code, out) = common::ctl(&data, &["enable", "Out"]);
    assert_eq!(code, 0, "{out}");
    assert!(wait_until(Duration::from_secs(15), || sink.count() == 6));
    assert!(
        wait_until(Duration::from_secs(10), || cleared(
            &hie.log(),
            "QueueWaitAlert",
            "Out"
        )),
        "log:\n{}",
        hie.log()
    );
    assert!(
        wait_until(Duration::from_secs(10), || cleared(
            &hie.log(),
            "QueueCountAlert",
            "Out"
        )),
        "log:\n{}",
        hie.log()
    );
    assert_eq!(raised(&hie.log(), "QueueCountAlert", "Out"), 1);
    assert_eq!(
        metric(&address, "hie_item_queue_count_alerts_total", "Out"),
        Some(1.0)
    );
    // The WAL (fsync) counts its fdatasyncs' latencies.
    let (_, text) = common::ctl_at(&address, &["metrics"]);
    let syncs = text
        .lines()
        .find_map(|l| l.strip_prefix("hie_wal_sync_seconds_count{shard=\"0\"} "))
        .and_then(|v| v.parse::<u64>().ok());
    assert!(syncs.is_some_and(|n| n > 0), "{text}");
    common::stop(hie);
}

#[test]
fn a_bad_alert_setting_stops_check_and_run() {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, out_port) = (free_port(), free_port());
    let text = head("BadAlerts", 1)
        + &tcp_service("In", in_port, "Out", &[("InactivityTimeout", "soon")])
        + &tcp_operation("Out", out_port, &[], &[]);
    let config = common::write_production(dir.path(), &text);
    let check = Command::new(bin("hie"))
        .arg("check")
        .arg(&config)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&check.stdout).to_string()
        + &String::from_utf8_lossy(&check.stderr);
    assert_eq!(check.status.code(), Some(1), "{said}");
    assert!(said.contains("InactivityTimeout"), "{said}");
    let run = Command::new(bin("hie"))
        .arg("run")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--no-pin", "--admin", "none"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{said}");
    assert!(said.contains("InactivityTimeout"), "{said}");
}

#[test]
fn json_logs_are_one_object_per_line_with_the_alert_field() {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, out_port) = (free_port(), free_port());
    let text = head("JsonLogs", 1)
        + &tcp_service("In", in_port, "Out", &[("InactivityTimeout", "1")])
        + &tcp_operation("Out", out_port, &[], &[]);
    let config = common::write_production(dir.path(), &text);
    let data = dir.path().join("data");
    let args = ["--no-pin", "--log", "info", "--log-format", "json"];
    let hie = hie_tests::Hie::start(&config, &data, &args);
    let alert = || {
        hie.log().lines().find_map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).ok()?;
            (value["alert"] == "InactivityTimeout").then_some(value)
        })
    };
    assert!(
        wait_until(Duration::from_secs(15), || alert().is_some()),
        "log:\n{}",
        hie.log()
    );
    let alert = alert().unwrap();
    assert_eq!(alert["item"], "In", "{alert}");
    assert_eq!(alert["level"], "ERROR", "{alert}");
    assert_eq!(alert["target"], "hie::alert", "{alert}");
    for line in hie.log().lines() {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "not JSON: {line}"
        );
    }
    common::stop(hie);
}

#[test]
fn the_oldest_queued_age_is_the_wait_in_the_items_own_queue_not_since_it_was_stored() {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, out_port) = (free_port(), free_port());
    // Messages wait at the disabled router first, then in the disabled operation's queue.
    let text = head("QueueAge", 1)
        + &tcp_service("In", in_port, "Router", &[])
        + &common::disabled(&common::router("Router", "Out", &[]))
        + &common::disabled(&tcp_operation(
            "Out",
            out_port,
            &[("QueueWaitAlert", "3")],
            &[],
        ));
    let config = common::write_production(dir.path(), &text);
    let data = dir.path().join("data");
    let hie = hie_tests::Hie::start(&config, &data, &["--no-pin", "--log", "info"]);
    let address = hie.admin.clone().expect("admin API");
    for n in 0..3 {
        assert_eq!(send_one(in_port, &adt(&format!("W-{n}"), "P1")), "AA");
    }
    let age = |item| metric(&address, "hie_item_oldest_queued_age_seconds", item);
    assert!(
        wait_until(Duration::from_secs(20), || age("Router")
            .is_some_and(|s| s >= 5.0)),
        "they wait at the router; log:\n{}",
        hie.log()
    );
    let (code, out) = common::ctl(&data, &["enable", "Router"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        wait_until(Duration::from_secs(10), || age("Out").is_some()),
        "log:\n{}",
        hie.log()
    );
    let waited = age("Out").unwrap();
    assert!(
        waited < 4.0,
        "Out's oldest has waited {waited} s in Out's queue, not the 5 s and more since it was \
         stored"
    );
    // QueueWaitAlert counts the same wait: it fires once that reaches 3 s.
    assert!(
        wait_until(Duration::from_secs(15), || raised(
            &hie.log(),
            "QueueWaitAlert",
            "Out"
        ) == 1),
        "log:\n{}",
        hie.log()
    );
    assert!(age("Out").is_some_and(|s| s >= 3.0));
    common::stop(hie);
}
