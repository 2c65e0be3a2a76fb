//! IRIS's alert grace periods end to end through the real `hie` binary:
//! `AlertRetryGracePeriod` (an operation's failed attempts alert once they have lasted it,
//! once per error condition; a condition that clears within it never alerts) and
//! `AlertGracePeriod` (a file service whose `FilePath` cannot be listed alerts once that
//! has lasted it, and the alert clears when the directory is back; a TCP service whose
//! port cannot be bound when it is enabled alerts once that has lasted it, and the alert
//! clears when it binds).

mod common;

use std::time::{Duration, Instant};

use common::{Answer, TestSink, adt, head, send_one, tcp_operation, tcp_service};
use hie_tests::{free_port, wait_until};

/// `AlertOnError` lines raised for `item`.
fn raised(log: &str, item: &str) -> usize {
    log.lines()
        .filter(|l| l.contains("alert=\"AlertOnError\""))
        .filter(|l| l.contains(&format!("ALERT {item}:")))
        .count()
}

fn cleared(log: &str, item: &str) -> bool {
    log.lines().any(|l| {
        l.contains("alert=\"AlertOnError\"")
            && l.contains("cleared=true")
            && l.contains(&format!("item={item} "))
    })
}

fn operation(name: &str, port: u16, grace: &str) -> String {
    tcp_operation(
        name,
        port,
        &[
            ("AlertOnError", "1"),
            ("AlertRetryGracePeriod", grace),
            ("RetryInterval", "1"),
            ("FailureTimeout", "-1"),
        ],
        &[("ReconnectRetry", "0"), ("ConnectTimeout", "1")],
    )
}

#[test]
fn retries_alert_only_once_their_grace_period_has_passed() {
    let dir = tempfile::tempdir().unwrap();
    let [in_port, quick, patient, brief] = [(); 4].map(|()| free_port());
    let text = head("RetryGrace", 1)
        + &tcp_service("In", in_port, "Quick,Patient,Brief", &[])
        + &operation("Quick", quick, "0")
        + &operation("Patient", patient, "4")
        + &operation("Brief", brief, "600");
    let config = common::write_production(dir.path(), &text);
    let data = dir.path().join("data");
    let hie = hie_tests::Hie::start(&config, &data, &["--no-pin", "--log", "info"]);
    let sent = Instant::now();
    assert_eq!(send_one(in_port, &adt("G-1", "P1")), "AA");

    // No grace: the first failed attempt alerts.
    assert!(
        wait_until(Duration::from_secs(15), || raised(&hie.log(), "Quick") == 1),
        "log:\n{}",
        hie.log()
    );
    if sent.elapsed() < Duration::from_secs(3) {
        assert_eq!(raised(&hie.log(), "Patient"), 0, "{}", hie.log());
    }
    // Four seconds of failed attempts: one alert, however long they go on.
    assert!(
        wait_until(Duration::from_secs(20), || raised(&hie.log(), "Patient")
            == 1),
        "log:\n{}",
        hie.log()
    );
    std::thread::sleep(Duration::from_secs(3));
    let log = hie.log();
    assert_eq!(raised(&log, "Quick"), 1, "{log}");
    assert_eq!(raised(&log, "Patient"), 1, "{log}");
    assert!(log.contains("retrying"), "{log}");

    // The downstream systems come back: delivered, Quick's alert clears, and Brief,
    // whose errors never outlasted its grace period, never alerted.
    let sinks = [quick, patient, brief].map(|p| TestSink::start(p, Answer::Code("AA")));
    assert!(
        wait_until(Duration::from_secs(20), || sinks
            .iter()
            .all(|s| s.count() == 1)),
        "log:\n{}",
        hie.log()
    );
    assert!(
        wait_until(Duration::from_secs(5), || cleared(&hie.log(), "Quick")),
        "log:\n{}",
        hie.log()
    );
    assert_eq!(raised(&hie.log(), "Brief"), 0, "{}", hie.log());
    assert!(!cleared(&hie.log(), "Brief"), "{}", hie.log());
    common::stop(hie);
}

fn file_service(name: &str, dir: &std::path::Path, grace: &str) -> String {
    format!(
        "\n[[item]]\nname = \"{name}\"\nclass = \"EnsLib.HL7.Service.FileService\"\n[item.host]\n\
         TargetConfigNames = \"Out\"\nAlertOnError = \"1\"\nAlertGracePeriod = \"{grace}\"\n\
         [item.adapter]\nFilePath = \"{}\"\nFileSpec = \"*.hl7\"\nCallInterval = \"1\"\n",
        dir.display()
    )
}

#[test]
fn an_unreadable_file_path_alerts_once_its_grace_period_has_passed_and_clears() {
    let dir = tempfile::tempdir().unwrap();
    // A directory each: services sharing one would race for its files.
    let inbox = |name: &str| dir.path().join(format!("in-{name}"));
    let outbox = dir.path().join("out");
    for name in ["Now", "Later", "Never"] {
        std::fs::create_dir_all(inbox(name)).unwrap();
    }
    let text = head("ServiceGrace", 1)
        + &file_service("Now", &inbox("Now"), "0")
        + &file_service("Later", &inbox("Later"), "3")
        + &file_service("Never", &inbox("Never"), "600")
        + &common::file_operation("Out", &outbox, "out.hl7");
    let config = common::write_production(dir.path(), &text);
    let data = dir.path().join("data");
    let hie = hie_tests::Hie::start(&config, &data, &["--no-pin", "--log", "info"]);
    for name in ["Now", "Later", "Never"] {
        std::fs::remove_dir(inbox(name)).unwrap();
    }
    let gone = Instant::now();

    assert!(
        wait_until(Duration::from_secs(15), || raised(&hie.log(), "Now") == 1),
        "log:\n{}",
        hie.log()
    );
    if gone.elapsed() < Duration::from_secs(2) {
        assert_eq!(raised(&hie.log(), "Later"), 0, "{}", hie.log());
    }
    assert!(
        wait_until(Duration::from_secs(20), || raised(&hie.log(), "Later") == 1),
        "log:\n{}",
        hie.log()
    );
    std::thread::sleep(Duration::from_secs(3));
    let log = hie.log();
    assert_eq!(raised(&log, "Now"), 1, "once per condition: {log}");
    assert_eq!(raised(&log, "Later"), 1, "once per condition: {log}");
    assert_eq!(raised(&log, "Never"), 0, "{log}");

    // The directory is back: the alerts clear, and its files flow again.
    for name in ["Now", "Later", "Never"] {
        std::fs::create_dir_all(inbox(name)).unwrap();
    }
    std::fs::write(inbox("Now").join("a.hl7"), adt("F-1", "P1")).unwrap();
    assert!(
        wait_until(Duration::from_secs(15), || cleared(&hie.log(), "Now")
            && cleared(&hie.log(), "Later")),
        "log:\n{}",
        hie.log()
    );
    assert!(
        wait_until(Duration::from_secs(15), || {
            common::control_ids_in(&outbox.join("out.hl7")) == ["F-1"]
        }),
        "log:\n{}",
        hie.log()
    );
    assert!(!cleared(&hie.log(), "Never"), "{}", hie.log());
    common::stop(hie);
}

fn tcp_service_with_grace(name: &str, port: u16, grace: &str) -> String {
    tcp_service(
        name,
        port,
        "Out",
        &[
            ("AlertOnError", "1"),
            ("AlertGracePeriod", grace),
            ("RestartPolicy", "always"),
            ("RestartDelay", "0.5"),
        ],
    )
}

#[test]
fn a_port_that_cannot_be_bound_alerts_once_its_grace_period_has_passed_and_clears() {
    let dir = tempfile::tempdir().unwrap();
    let ports = [(); 3].map(|()| free_port());
    let names = ["Now", "Later", "Never"];
    let outbox = dir.path().join("out");
    let text = head("BindGrace", 1)
        + &tcp_service_with_grace(names[0], ports[0], "0")
        + &tcp_service_with_grace(names[1], ports[1], "3")
        + &tcp_service_with_grace(names[2], ports[2], "600")
        + &common::file_operation("Out", &outbox, "out.hl7");
    let config = common::write_production(dir.path(), &text);
    let data = dir.path().join("data");
    let hie = hie_tests::Hie::start(&config, &data, &["--no-pin", "--log", "info"]);
    // Each service lets its port go, something else takes it, and it is enabled again:
    // it retries binding every 0.5 s (RestartPolicy always).
    for name in names {
        assert_eq!(common::ctl(&data, &["disable", name]).0, 0);
    }
    let squatters = ports.map(|port| {
        let taken = (0..200).find_map(|_| {
            std::net::TcpListener::bind(("0.0.0.0", port))
                .inspect_err(|_| std::thread::sleep(Duration::from_millis(25)))
                .ok()
        });
        taken.unwrap_or_else(|| panic!("port {port} stays bound after disable"))
    });
    for name in names {
        assert_eq!(common::ctl(&data, &["enable", name]).0, 0);
    }
    let enabled = Instant::now();
    assert!(
        wait_until(Duration::from_secs(15), || raised(&hie.log(), "Now") == 1),
        "log:\n{}",
        hie.log()
    );
    if enabled.elapsed() < Duration::from_secs(2) {
        assert_eq!(raised(&hie.log(), "Later"), 0, "{}", hie.log());
    }
    assert!(
        wait_until(Duration::from_secs(20), || raised(&hie.log(), "Later") == 1),
        "log:\n{}",
        hie.log()
    );
    std::thread::sleep(Duration::from_secs(2));
    let log = hie.log();
    assert_eq!(raised(&log, "Now"), 1, "once per condition: {log}");
    assert_eq!(raised(&log, "Later"), 1, "once per condition: {log}");
    assert_eq!(raised(&log, "Never"), 0, "{log}");
    assert!(log.contains("cannot listen"), "{log}");

    // The ports are free again: the services bind, the alerts clear, messages flow.
    drop(squatters);
    assert!(
        wait_until(Duration::from_secs(15), || cleared(&hie.log(), "Now")
            && cleared(&hie.log(), "Later")),
        "log:\n{}",
        hie.log()
    );
    assert!(
        wait_until(Duration::from_secs(15), || {
            std::net::TcpStream::connect(("127.0.0.1", ports[0])).is_ok()
        }),
        "log:\n{}",
        hie.log()
    );
    assert_eq!(send_one(ports[0], &adt("B-1", "P1")), "AA");
    assert!(
        wait_until(Duration::from_secs(15), || {
            common::control_ids_in(&outbox.join("out.hl7")) == ["B-1"]
        }),
        "log:\n{}",
        hie.log()
    );
    assert!(!cleared(&hie.log(), "Never"), "{}", hie.log());
    common::stop(hie);
}
