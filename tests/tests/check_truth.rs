//! `hie check` tells the truth, through the real binary: what would loop, strand or drop
//! messages is an error with file, line and item; what stops `hie run` from starting is
//! found by `hie check` the same way (they share the validation); settings hie ignores are
//! warnings; what hie documents as honoured is honoured (file operation `Framing`,
//! `RetryInterval`'s floor); a host name that does not resolve stops nothing.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Answer, TestSink, head, router, start_hie, tcp_operation, tcp_service};
use hie_tests::{ChildGuard, bin, free_port, wait_until};
use serde_json::Value;

/// `hie check --json [flags] production.toml` on `text`: exit code and JSON.
fn check(dir: &Path, text: &str, flags: &[&str]) -> (i32, Value) {
    let path = common::write_production(dir, text);
    let out = Command::new(bin("hie"))
        .arg("check")
        .arg("--json")
        .args(flags)
        .arg(&path)
        .output()
        .expect("run hie check");
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "check --json: {e}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), json)
}

/// The (line, item, message) of each entry of `json[kind]` ("errors" or "warnings").
fn findings(json: &Value, kind: &str) -> Vec<(u64, String, String)> {
    json[kind]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["line"].as_u64().unwrap(),
                d["item"].as_str().unwrap_or("").to_owned(),
                d["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// 1-based line of the first line of `text` that contains `needle` after the line that
/// contains `after`.
fn line_of(text: &str, after: &str, needle: &str) -> u64 {
    let start = text
        .lines()
        .position(|l| l.contains(after))
        .unwrap_or_else(|| panic!("no {after:?}"));
    let at = text
        .lines()
        .skip(start)
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no {needle:?} after {after:?}"));
    (start + at + 1) as u64
}

/// Runs `hie run` on `text` and asserts that it refuses to start (exits 1 within 30 s);
/// returns its stderr.
fn run_refuses(dir: &Path, text: &str) -> String {
    let config = common::write_production(dir, text);
    let stderr_path = dir.join("run.err");
    let child = Command::new(bin("hie"))
        .arg("run")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(["--no-pin", "--log", "warn", "--admin", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .expect("spawn hie run");
    let mut guard = ChildGuard::new(child);
    let status = guard.wait_timeout(Duration::from_secs(30));
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(1),
        "hie run should refuse; stderr:\n{stderr}"
    );
    stderr
}

fn production(items: &[String]) -> String {
    let mut text = head("P", 1);
    for item in items {
        text.push_str(item);
    }
    text
}

fn sink_op(name: &str, port: u16) -> String {
    tcp_operation(name, port, &[], &[])
}

#[test]
fn a_router_sending_to_itself_fails_check_and_run_at_its_target_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = production(&[
        tcp_service("In", free_port(), "Loop", &[]),
        router("Loop", "Loop,Out", &[]),
        sink_op("Out", free_port()),
    ]);
    let (code, json) = check(dir.path(), &text, &[]);
    assert_eq!(code, 1, "{json:#}");
    let errors = findings(&json, "errors");
    let line = line_of(&text, "name = \"Loop\"", "TargetConfigNames");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!((errors[0].0, errors[0].1.as_str()), (line, "Loop"));
    assert!(errors[0].2.contains("routing cycle"), "{errors:?}");
    let stderr = run_refuses(dir.path(), &text);
    assert!(stderr.contains("routing cycle"), "{stderr}");
}

#[test]
fn a_loop_through_several_routers_is_one_error_naming_the_loop() {
    let dir = tempfile::tempdir().unwrap();
    let text = production(&[
        tcp_service("In", free_port(), "A", &[]),
        router("A", "B", &[]),
        router("B", "C,Out", &[]),
        router("C", "A", &[]),
        sink_op("Out", free_port()),
    ]);
    let (code, json) = check(dir.path(), &text, &[]);
    assert_eq!(code, 1, "{json:#}");
    let errors = findings(&json, "errors");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(
        errors[0].0,
        line_of(&text, "name = \"C\"", "TargetConfigNames")
    );
    assert!(errors[0].2.contains("A -> B -> C -> A"), "{errors:?}");
}

#[test]
fn a_router_sending_to_a_service_is_an_error_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = production(&[
        tcp_service("In", free_port(), "R", &[]),
        router("R", "In", &[]),
    ]);
    let (code, json) = check(dir.path(), &text, &[]);
    assert_eq!(code, 1, "{json:#}");
    let errors = findings(&json, "errors");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(
        (errors[0].0, errors[0].1.as_str()),
        (line_of(&text, "name = \"R\"", "TargetConfigNames"), "R")
    );
    assert!(errors[0].2.contains("business service"), "{errors:?}");
}

fn ruled_router(name: &str, enabled: bool) -> String {
    format!(
        "\n[[item]]\nname = \"{name}\"\nclass = \"EnsLib.HL7.MsgRouter.RoutingEngine\"\n\
         enabled = {enabled}\n[item.host]\nBusinessRuleName = \"Trust.Rule\"\n"
    )
}

#[test]
fn a_router_whose_rule_class_is_not_found_is_an_error_even_with_allow_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let text = production(&[
        tcp_service("In", free_port(), "Ruled", &[]),
        ruled_router("Ruled", true),
        ruled_router("Off", false),
        "\n[[item]]\nname = \"Bare\"\nclass = \"EnsLib.MsgRouter.RoutingEngine\"\n".to_owned(),
    ]);
    for flags in [&[][..], &["--allow-unknown"][..]] {
        let (code, json) = check(dir.path(), &text, flags);
        assert_eq!(code, 1, "{json:#}");
        let errors = findings(&json, "errors");
        assert_eq!(errors.len(), 2, "{errors:?}");
        let rule_line = line_of(&text, "name = \"Ruled\"", "BusinessRuleName");
        assert_eq!((errors[0].0, errors[0].1.as_str()), (rule_line, "Ruled"));
        assert!(
            errors[0].2.contains("no rule class Trust.Rule"),
            "{errors:?}"
        );
        assert_eq!(errors[1].1, "Bare");
        assert!(errors[1].2.contains("neither"), "{errors:?}");
        // The disabled one does not run: a warning.
        let warnings = findings(&json, "warnings");
        assert!(
            warnings
                .iter()
                .any(|w| w.1 == "Off" && w.2.contains("no rule class")),
            "{warnings:?}"
        );
    }
    let stderr = run_refuses(dir.path(), &text);
    assert!(
        stderr.contains("Ruled") && stderr.contains("no rule class"),
        "{stderr}"
    );
}

#[test]
fn ack_mode_byte_and_a_bang_ip_address_fail_check_and_run_alike() {
    let dir = tempfile::tempdir().unwrap();
    let text = production(&[
        tcp_service("In", free_port(), "Out", &[("AckMode", "Byte")]),
        tcp_operation("Out", free_port(), &[], &[]).replace("\"127.0.0.1\"", "\"!10.0.0.1\""),
    ]);
    let (code, json) = check(dir.path(), &text, &[]);
    assert_eq!(code, 1, "{json:#}");
    let errors = findings(&json, "errors");
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(
        (errors[0].0, errors[0].1.as_str()),
        (line_of(&text, "name = \"In\"", "AckMode"), "In")
    );
    assert!(errors[0].2.contains("AckMode Byte"), "{errors:?}");
    assert_eq!(
        (errors[1].0, errors[1].1.as_str()),
        (line_of(&text, "name = \"Out\"", "IPAddress"), "Out")
    );
    assert!(errors[1].2.contains("'!'"), "{errors:?}");
    let stderr = run_refuses(dir.path(), &text);
    assert!(
        stderr.contains("AckMode Byte") && stderr.contains("'!'"),
        "{stderr}"
    );
}

#[test]
fn an_unresolvable_host_is_a_check_warning_and_stops_nothing_at_run() {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, sink_port) = (free_port(), free_port());
    let sink = TestSink::start(sink_port, Answer::Code("AA"));
    let text = production(&[
        tcp_service("In", in_port, "Good,Gone", &[]),
        tcp_operation("Good", sink_port, &[], &[]),
        tcp_operation("Gone", free_port(), &[("FailureTimeout", "-1")], &[])
            .replace("\"127.0.0.1\"", "\"no-such-host.invalid\""),
    ]);
    let (code, json) = check(dir.path(), &text, &["--strict"]);
    assert_eq!(code, 0, "{json:#}");
    let warnings = findings(&json, "warnings");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(
        (warnings[0].0, warnings[0].1.as_str()),
        (line_of(&text, "name = \"Gone\"", "IPAddress"), "Gone")
    );
    assert!(warnings[0].2.contains("does not resolve"), "{warnings:?}");
    let (hie, data) = start_hie(dir.path(), &text);
    assert_eq!(common::send_one(in_port, &common::adt("C1", "P1")), "AA");
    assert!(
        wait_until(Duration::from_secs(20), || sink.count() == 1),
        "the other operation delivers; log:\n{}",
        hie.log()
    );
    // The name is looked up when the operation connects: a failed connection for that
    // message, handled per ReplyCodeActions (retried or suspended), not a stop.
    common::wait_status(
        &hie,
        &data,
        Duration::from_secs(20),
        "Gone handles it",
        |s| {
            common::counter(s, "Gone", "retries") >= 1
                || common::suspended(&data)
                    .iter()
                    .any(|(_, item)| item == "Gone")
        },
    );
}

#[test]
fn retry_interval_zero_waits_the_documented_second_between_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, sink_port) = (free_port(), free_port());
    let sink = TestSink::start(sink_port, Answer::Code("AR"));
    let text = production(&[
        tcp_service("In", in_port, "Out", &[]),
        tcp_operation(
            "Out",
            sink_port,
            &[("RetryInterval", "0"), ("FailureTimeout", "-1")],
            &[],
        ),
    ]);
    let (code, json) = check(dir.path(), &text, &[]);
    assert_eq!(code, 0, "{json:#}");
    let warnings = findings(&json, "warnings");
    assert!(
        warnings.iter().any(|w| w.1 == "Out"
            && w.0 == line_of(&text, "name = \"Out\"", "RetryInterval")
            && w.2.contains("RetryInterval 0")),
        "{warnings:?}"
    );
    let (hie, _data) = start_hie(dir.path(), &text);
    assert_eq!(common::send_one(in_port, &common::adt("C1", "P1")), "AA");
    assert!(wait_until(Duration::from_secs(20), || sink.count() >= 2));
    let started = Instant::now();
    let first = sink.count();
    std::thread::sleep(Duration::from_secs(3));
    let attempts = sink.count() - first;
    // One attempt a second, give or take scheduling: not thousands (a busy retry loop).
    assert!(
        (1..=8).contains(&attempts),
        "{attempts} attempts in {:?}; log:\n{}",
        started.elapsed(),
        hie.log()
    );
}

#[test]
fn numbers_that_must_be_integers_are_integers() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let text = production(&[
        tcp_service("In", port, "Out", &[]).replace(&format!("Port = \"{port}\""), "Port = 1.5e3"),
        sink_op("Out", free_port()),
    ]);
    let text = text.replace(
        "\n[item.host]\nTargetConfigNames = \"Out\"\n[item.adapter]",
        "\n[item.host]\nTargetConfigNames = \"Out\"\nRestartDelay = 1.5e1\n[item.adapter]",
    );
    let (code, json) = check(dir.path(), &text, &[]);
    assert_eq!(code, 1, "{json:#}");
    let errors = findings(&json, "errors");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].0, line_of(&text, "name = \"In\"", "Port = 1.5e3"));
    assert!(
        errors[0].2.contains("Port") && errors[0].2.contains("1500.0"),
        "{errors:?}"
    );
}

#[test]
fn misspelt_and_ignored_settings_are_warnings_and_errors_with_strict() {
    let dir = tempfile::tempdir().unwrap();
    let text = production(&[
        tcp_service(
            "In",
            free_port(),
            "Out",
            &[
                ("TargetConfigName", "Out"),
                ("ThrottleDelay", "100"),
                ("ArchiveIO", "0"),
                // A service has no queue of its own.
                ("QueueSize", "5"),
            ],
        )
        .replace(
            "[item.adapter]\n",
            "[item.adapter]\nTargetConfigNames = \"Out\"\n",
        ),
        sink_op("Out", free_port()),
    ]);
    let (code, json) = check(dir.path(), &text, &[]);
    assert_eq!(code, 0, "{json:#}");
    let warnings = findings(&json, "warnings");
    let at = |needle: &str| line_of(&text, "name = \"In\"", needle);
    let expected = [
        (at("TargetConfigName ="), "did you mean TargetConfigNames?"),
        (at("ThrottleDelay"), "hie does not use it"),
        (at("QueueSize"), "not a setting hie knows for this class"),
        (at("[item.adapter]") + 1, "is a Host setting"),
    ];
    assert_eq!(warnings.len(), expected.len(), "{warnings:?}");
    for (line, text) in expected {
        assert!(
            warnings.iter().any(|w| w.0 == line && w.2.contains(text)),
            "no warning {text:?} at line {line}: {warnings:?}"
        );
    }
    // ArchiveIO at its IRIS default changes nothing: listed, not warned about.
    assert!(
        json["unsupported_settings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["setting"] == "ArchiveIO")
    );
    let (code, json) = check(dir.path(), &text, &["--strict"]);
    assert_eq!(code, 1, "{json:#}");
    assert_eq!(findings(&json, "errors").len(), expected.len());
}

#[test]
fn the_email_alert_operation_is_an_unknown_class_not_a_silent_one() {
    let dir = tempfile::tempdir().unwrap();
    let text = production(&[
        "\n[[item]]\nname = \"Mail\"\nclass = \"EnsLib.EMail.AlertOperation\"\n\
         [item.adapter]\nSMTPServer = \"mail\"\n"
            .to_owned(),
    ]);
    let (code, json) = check(dir.path(), &text, &[]);
    assert_eq!(code, 1, "{json:#}");
    let errors = findings(&json, "errors");
    assert!(
        errors[0].2.contains("EnsLib.EMail.AlertOperation"),
        "{errors:?}"
    );
    let (code, json) = check(dir.path(), &text, &["--allow-unknown"]);
    assert_eq!(code, 0, "{json:#}");
    assert_eq!(json["unknown_classes"][0]["item"], "Mail");
}

#[test]
fn check_says_which_address_each_service_listens_on() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (free_port(), free_port());
    let text = production(&[
        tcp_service("Any", a, "Out", &[]),
        tcp_service("Local", b, "Out", &[]).replace(
            "[item.adapter]\n",
            "[item.adapter]\nLocalInterface = \"127.0.0.1 (lo)\"\n",
        ),
        sink_op("Out", free_port()),
    ]);
    let path = common::write_production(dir.path(), &text);
    let out = Command::new(bin("hie"))
        .arg("check")
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "listens on: 0.0.0.0:{a} (Any, every interface), 127.0.0.1:{b} (Local, LocalInterface)"
        )),
        "{stdout}"
    );
    let bad = text.replace("127.0.0.1 (lo)", "eth0");
    let (code, json) = check(dir.path(), &bad, &[]);
    assert_eq!(code, 1, "{json:#}");
    assert!(findings(&json, "errors")[0].2.contains("LocalInterface"));
}

/// A file operation writing every message it gets to `dir/out.hl7`.
fn file_op(name: &str, dir: &Path, framing: Option<&str>) -> String {
    let framing = framing.map_or(String::new(), |f| format!("Framing = \"{f}\"\n"));
    format!(
        "\n[[item]]\nname = \"{name}\"\nclass = \"EnsLib.HL7.Operation.FileOperation\"\n\
         [item.host]\nFilename = \"out.hl7\"\n{framing}[item.adapter]\nFilePath = \"{}\"\n",
        dir.display()
    )
}

#[test]
fn the_file_operation_ends_every_message_with_its_framing() {
    let dir = tempfile::tempdir().unwrap();
    let (lf, mllp) = (dir.path().join("lf"), dir.path().join("mllp"));
    let in_port = free_port();
    let text = production(&[
        tcp_service("In", in_port, "ToLf,ToMllp", &[]),
        file_op("ToLf", &lf, None),
        file_op("ToMllp", &mllp, Some("MLLP")),
    ]);
    let (code, json) = check(dir.path(), &text, &["--strict"]);
    assert_eq!(code, 0, "{json:#}");
    let (hie, _data) = start_hie(dir.path(), &text);
    // The first message leaves off its last segment's CR, as some senders do.
    let first = b"MSH|^~\\&|A|B|C|D|20260101120000||ADT^A01|C1|P|2.5\rPID|1||P1".to_vec();
    let second = common::adt("C2", "P2");
    for msg in [&first, &second] {
        assert_eq!(common::send_one(in_port, msg), "AA");
    }
    let read = |p: &PathBuf| std::fs::read(p.join("out.hl7")).unwrap_or_default();
    let mut want_lf = first.clone();
    want_lf.extend_from_slice(b"\r\n");
    want_lf.extend_from_slice(&second);
    want_lf.push(b'\n');
    let mut want_mllp = vec![0x0b];
    want_mllp.extend_from_slice(&first);
    want_mllp.extend_from_slice(b"\r\x1c\r\x0b");
    want_mllp.extend_from_slice(&second);
    want_mllp.extend_from_slice(b"\x1c\r");
    let done = wait_until(Duration::from_secs(20), || {
        read(&lf) == want_lf && read(&mllp) == want_mllp
    });
    assert!(
        done,
        "lf: {:?}\nmllp: {:?}\nlog:\n{}",
        String::from_utf8_lossy(&read(&lf)),
        String::from_utf8_lossy(&read(&mllp)),
        hie.log()
    );
    let flexible = production(&[
        tcp_service("In", in_port, "ToLf", &[]),
        file_op("ToLf", &lf, Some("Flexible")),
    ]);
    let (code, json) = check(dir.path(), &flexible, &[]);
    assert_eq!(code, 1, "{json:#}");
    assert!(findings(&json, "errors")[0].2.contains("Framing"));
}

#[test]
fn a_production_of_20000_items_is_checked_in_linear_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut items = Vec::with_capacity(20_000);
    for i in 0..5_000u32 {
        items.push(tcp_service(
            &format!("In{i}"),
            10_000 + i as u16,
            &format!("R{i}"),
            &[],
        ));
        items.push(router(&format!("R{i}"), &format!("A{i},B{i}"), &[]));
        items.push(sink_op(&format!("A{i}"), 40_000));
        items.push(sink_op(&format!("B{i}"), 40_001));
    }
    let path = common::write_production(dir.path(), &production(&items));
    let child = Command::new(bin("hie"))
        .args(["check", "--shards", "4"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut guard = ChildGuard::new(child);
    // A guard against a quadratic check (it took minutes), not a timing: seconds in debug.
    let status = guard.wait_timeout(Duration::from_secs(60));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "hie check of 20,000 items did not finish valid within 60 s"
    );
}

#[test]
fn a_response_from_naming_no_item_fails_check_and_run_alike() {
    let dir = tempfile::tempdir().unwrap();
    let text = production(&[
        tcp_service("In", free_port(), "R", &[("AckMode", "App")]),
        router("R", "Out", &[("ResponseFrom", "+Out,Nope")]),
        tcp_operation("Out", free_port(), &[], &[]),
    ]);
    let (code, json) = check(dir.path(), &text, &[]);
    assert_eq!(code, 1, "{json:#}");
    let errors = findings(&json, "errors");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(
        (errors[0].0, errors[0].1.as_str()),
        (line_of(&text, "name = \"R\"", "ResponseFrom"), "R")
    );
    assert!(
        errors[0].2.contains("ResponseFrom names \"Nope\""),
        "{errors:?}"
    );
    let stderr = run_refuses(dir.path(), &text);
    assert!(stderr.contains("ResponseFrom names \"Nope\""), "{stderr}");
}

/// A rule class `name` whose one rule set holds `rules` (rule elements).
fn rule_class(dir: &Path, name: &str, rules: &str) {
    let text = format!(
        "Class {name} Extends Ens.Rule.Definition\n{{\n\
         XData RuleDefinition [ XMLNamespace = \"http://www.intersystems.com/rule\" ]\n{{\n\
         <ruleDefinition context=\"EnsLib.HL7.MsgRouter.RoutingEngine\">\n\
         <ruleSet name=\"\">\n{rules}\n</ruleSet>\n</ruleDefinition>\n}}\n}}\n"
    );
    std::fs::write(dir.join(format!("{name}.cls")), text).unwrap();
}

/// A router whose rule class is `class`, with `TargetConfigNames` `targets`.
fn rule_router(name: &str, class: &str, targets: &str) -> String {
    router(name, targets, &[("BusinessRuleName", class)])
}

#[test]
fn a_cycle_through_rule_sends_every_message_takes_fails_check_and_run_at_the_rule_line() {
    let dir = tempfile::tempdir().unwrap();
    // A sends everything to B (when 1), B everything back to A (no when): a loop that
    // neither router's TargetConfigNames shows (A's names only Out).
    rule_class(
        dir.path(),
        "T.A",
        r#"<rule name="all"><when condition="1"><send target="B"/></when></rule>"#,
    );
    rule_class(
        dir.path(),
        "T.B",
        r#"<rule name="back"><otherwise><send target="A" transform=""/></otherwise></rule>"#,
    );
    let text = production(&[
        tcp_service("In", free_port(), "A", &[]),
        rule_router("A", "T.A", "Out"),
        rule_router("B", "T.B", ""),
        sink_op("Out", free_port()),
    ]);
    let (code, json) = check(dir.path(), &text, &[]);
    assert_eq!(code, 1, "{json:#}");
    let errors = findings(&json, "errors");
    assert_eq!(errors.len(), 1, "{errors:?}");
    let line = line_of(&text, "name = \"B\"", "BusinessRuleName");
    assert_eq!(
        (errors[0].0, errors[0].1.as_str()),
        (line, "B"),
        "{errors:?}"
    );
    assert!(
        errors[0].2.contains("routing cycle: A -> B -> A"),
        "{errors:?}"
    );
    assert!(
        json["errors"][0]["file"]
            .as_str()
            .is_some_and(|f| f.ends_with("production.toml")),
        "{json:#}"
    );
    let stderr = run_refuses(dir.path(), &text);
    assert!(stderr.contains("routing cycle: A -> B -> A"), "{stderr}");
}

#[test]
fn a_cycle_only_some_messages_take_under_rule_conditions_is_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    // A sends ORM messages to B, B sends everything back: only an ORM would loop (IRIS
    // runs this; hie fails such a message at the hop limit).
    rule_class(
        dir.path(),
        "T.A",
        r#"<rule name="orders"><when condition="HL7.{MSH:9.1}=&quot;ORM&quot;"><send target="B"/></when></rule>
<rule name="rest"><when condition="1"><send target="Out"/></when></rule>"#,
    );
    rule_class(
        dir.path(),
        "T.B",
        r#"<rule name="back"><when condition="1"><send target="A"/></when></rule>"#,
    );
    let text = production(&[
        tcp_service("In", free_port(), "A", &[]),
        rule_router("A", "T.A", ""),
        rule_router("B", "T.B", ""),
        sink_op("Out", free_port()),
    ]);
    let (code, json) = check(dir.path(), &text, &[]);
    assert_eq!(code, 0, "{json:#}");
    let warnings = findings(&json, "warnings");
    let cycles: Vec<_> = warnings
        .iter()
        .filter(|w| w.2.contains("routing cycle"))
        .collect();
    assert_eq!(cycles.len(), 1, "{warnings:?}");
    let line = line_of(&text, "name = \"B\"", "BusinessRuleName");
    assert_eq!((cycles[0].0, cycles[0].1.as_str()), (line, "B"));
    assert!(cycles[0].2.contains("A -> B -> A"), "{cycles:?}");
    assert!(cycles[0].2.contains("rule class of A"), "{cycles:?}");
    // With --strict it is an error, as every warning is.
    let (code, _) = check(dir.path(), &text, &["--strict"]);
    assert_eq!(code, 1);
}

#[test]
fn a_rule_router_is_searched_by_its_sends_not_its_target_config_names() {
    let dir = tempfile::tempdir().unwrap();
    // A's TargetConfigNames names itself, but `hie run` routes A by its rules (to Out):
    // no cycle.
    rule_class(
        dir.path(),
        "T.A",
        r#"<rule name="all"><when condition="1"><send target="Out"/></when></rule>"#,
    );
    let text = production(&[
        tcp_service("In", free_port(), "A", &[]),
        rule_router("A", "T.A", "A"),
        sink_op("Out", free_port()),
    ]);
    let (code, json) = check(dir.path(), &text, &[]);
    assert_eq!(code, 0, "{json:#}");
    let warnings = findings(&json, "warnings");
    assert!(
        !warnings.iter().any(|w| w.2.contains("routing cycle")),
        "{warnings:?}"
    );
}

#[test]
fn a_response_forwarded_back_upstream_is_no_routing_cycle() {
    let dir = tempfile::tempdir().unwrap();
    // R's answer goes to R2 as a message, and R2 routes to R: that message is waited for
    // by nobody, so R does not forward a response for it again.
    let text = production(&[
        tcp_service("In", free_port(), "R", &[("AckMode", "App")]),
        router(
            "R",
            "Out",
            &[("ResponseFrom", "Out"), ("ResponseTargetConfigNames", "R2")],
        ),
        router("R2", "R", &[]),
        tcp_operation("Out", free_port(), &[], &[]),
    ]);
    let (code, json) = check(dir.path(), &text, &[]);
    assert_eq!(code, 0, "{json:#}");
    let warnings = findings(&json, "warnings");
    assert!(
        !warnings.iter().any(|w| w.2.contains("cycle")),
        "{warnings:?}"
    );
}
