//! A router's `Validation` end to end through `hie run`: with `Validation=1` (`dm-z`) a
//! valid message (and one that only adds unknown Z segments at its end) goes to its rule
//! targets, a message whose segments do not fit its DocType goes to the
//! `BadMessageHandler` (a file operation) with an `AlertOnBadMessage` alert; without a
//! handler, or with `ActOnValidationError=1`, it is held as failed at the router with the
//! reason (`hie ctl held`), and an `AckMode=App` sender gets AE with an ERR segment naming
//! it; `hie ctl resend` validates it again. Every ACKed control id is delivered or
//! listed.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{
    adt, control_ids_in, counter, file_operation, head, held, router, send_one, start_hie,
    tcp_service, wait_status,
};
use hie_tests::{MllpConn, free_port, wait_until};

/// ADT^A01 messages to `Out`, nothing else anywhere.
const RULE: &str = r#"Class Trust.Validated.Rule Extends Ens.Rule.Definition
{
XData RuleDefinition [ XMLNamespace = "http://www.intersystems.com/rule" ]
{
<ruleDefinition alias="" context="EnsLib.HL7.MsgRouter.RoutingEngine" production="Trust">
<ruleSet name="" effectiveBegin="" effectiveEnd="">
<rule name="Admissions out">
<when condition="HL7.{MSH:9.1}=&quot;ADT&quot;">
<send transform="" target="Out"></send>
</when>
</rule>
</ruleSet>
</ruleDefinition>
}

}
"#;

/// [`adt`] (ADT^A01, 2.5: MSH EVN PID PV1) with its segments changed by `edit`.
fn edited(control_id: &str, edit: impl Fn(Vec<&str>) -> Vec<&str>) -> Vec<u8> {
    let msg = String::from_utf8(adt(control_id, "P1")).unwrap();
    let segments: Vec<&str> = msg.split('\r').filter(|s| !s.is_empty()).collect();
    let mut out = edit(segments).join("\r");
    out.push('\r');
    out.into_bytes()
}

/// An unknown segment between PID and PV1.
fn with_unknown_segment(control_id: &str) -> Vec<u8> {
    edited(control_id, |mut s| {
        s.insert(3, "ZZ1|1");
        s
    })
}

/// No EVN, which ADT_A01 requires.
fn without_evn(control_id: &str) -> Vec<u8> {
    edited(control_id, |mut s| {
        s.remove(1);
        s
    })
}

/// Unknown Z segments at the end only: `-z` accepts them.
fn with_trailing_z(control_id: &str) -> Vec<u8> {
    edited(control_id, |mut s| {
        s.extend(["ZPD|1", "ZPV|1"]);
        s
    })
}

const UNKNOWN_REASON: &str = "m: segment ZZ1 at 4 is not in ADT_A01 (2.5)";
const NO_EVN_REASON: &str =
    "m: required segment EVN is missing before segment PID at 2 in ADT_A01 (2.5)";

#[test]
fn a_validating_router_sends_what_fails_to_its_bad_message_handler() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Trust.Validated.Rule.cls"), RULE).unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let port = free_port();
    let validating = [
        ("BusinessRuleName", "Trust.Validated.Rule"),
        ("Validation", "1"),
        ("BadMessageHandler", "Bad"),
        ("AlertOnBadMessage", "1"),
    ];
    let production = head("Validated", 1)
        + &tcp_service("In", port, "Router", &[])
        + &router("Router", "", &validating)
        + &file_operation("Out", &out, "out.hl7")
        + &file_operation("Bad", &out, "bad.hl7");
    let (hie, data) = start_hie(dir.path(), &production);
    let sent = [
        ("V-1", adt("V-1", "P1")),
        ("B-1", with_unknown_segment("B-1")),
        ("Z-1", with_trailing_z("Z-1")),
        ("B-2", without_evn("B-2")),
    ];
    for (id, msg) in &sent {
        assert_eq!(send_one(port, msg), "AA", "{id}");
    }
    let (out_file, bad_file) = (out.join("out.hl7"), out.join("bad.hl7"));
    assert!(
        wait_until(Duration::from_secs(10), || control_ids_in(&out_file).len()
            == 2
            && control_ids_in(&bad_file).len() == 2),
        "out {:?}, bad {:?}; log:\n{}",
        control_ids_in(&out_file),
        control_ids_in(&bad_file),
        hie.log()
    );
    assert_eq!(control_ids_in(&out_file), ["V-1", "Z-1"]);
    assert_eq!(control_ids_in(&bad_file), ["B-1", "B-2"]);
    let status = wait_status(&hie, &data, Duration::from_secs(5), "closed", |s| {
        s["shards"][0]["wal_open_messages"] == 0
    });
    assert_eq!(counter(&status, "Router", "no_route"), 2, "{status:#}");
    assert_eq!(counter(&status, "Router", "alerts"), 2, "{status:#}");
    assert_eq!(counter(&status, "Router", "failed"), 0, "{status:#}");
    assert!(held(&data).is_empty());
    let log = hie.log();
    for reason in [UNKNOWN_REASON, NO_EVN_REASON] {
        assert!(
            log.contains(&format!(
                "failed validation ({reason}): sent to the BadMessageHandler"
            )),
            "{reason}:\n{log}"
        );
    }
    assert!(log.contains("alert=\"AlertOnBadMessage\""), "{log}");
    common::stop(hie);
}

/// The held entry of the message with control id `control_id`, once listed.
fn held_entry(data: &Path, control_id: &str, log: impl Fn() -> String) -> serde_json::Value {
    let mut found = None;
    let listed = wait_until(Duration::from_secs(10), || {
        found = held(data)
            .into_iter()
            .find(|h| h["control_id"] == control_id);
        found.is_some()
    });
    assert!(listed, "{control_id} not held; log:\n{}", log());
    found.unwrap()
}

#[test]
fn without_a_handler_or_with_act_on_validation_error_a_refused_message_is_held_failed() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let (port, app_port) = (free_port(), free_port());
    let acting = [
        ("Validation", "dm-z"),
        ("ActOnValidationError", "1"),
        ("BadMessageHandler", "Bad"),
    ];
    let production = head("Held", 1)
        + &tcp_service("In", port, "Plain", &[])
        + &tcp_service("AppIn", app_port, "Acting", &[("AckMode", "App")])
        + &router("Plain", "Out", &[("Validation", "1")])
        + &router("Acting", "Out", &acting)
        + &file_operation("Out", &out, "out.hl7")
        + &file_operation("Bad", &out, "bad.hl7");
    let (hie, data) = start_hie(dir.path(), &production);
    // No BadMessageHandler: held at the router, listed with the reason.
    assert_eq!(send_one(port, &with_unknown_segment("B-1")), "AA");
    let entry = held_entry(&data, "B-1", || hie.log());
    assert_eq!(
        (&entry["item"], &entry["kind"]),
        (&"Plain".into(), &"failed".into()),
        "{entry:#}"
    );
    assert_eq!(entry["reason"], UNKNOWN_REASON, "{entry:#}");
    // Resent, it is validated again and held again.
    let id = entry["message_id"].as_str().unwrap().to_owned();
    let (code, text) = common::ctl(&data, &["resend", &id]);
    assert_eq!(code, 0, "{text}");
    assert!(
        wait_until(Duration::from_secs(10), || hie
            .log()
            .matches(UNKNOWN_REASON)
            .count()
            >= 2),
        "log:\n{}",
        hie.log()
    );
    let again = held_entry(&data, "B-1", || hie.log());
    assert_eq!(again["message_id"], entry["message_id"], "{again:#}");
    // ActOnValidationError: held (not sent to the handler), the App sender gets AE with
    // the reason in its ERR segment.
    let mut conn = MllpConn::connect(&format!("127.0.0.1:{app_port}")).unwrap();
    let reply = conn.exchange(&without_evn("B-2")).unwrap();
    let reply_text = String::from_utf8_lossy(&reply).into_owned();
    assert_eq!(
        hie_tests::field(&reply, "MSA", 1).as_deref(),
        Some("AE"),
        "{reply_text}"
    );
    let err = reply_text
        .split('\r')
        .find(|s| s.starts_with("ERR|"))
        .unwrap_or_else(|| panic!("no ERR segment: {reply_text}"));
    assert!(err.contains(NO_EVN_REASON), "{err}");
    let entry = held_entry(&data, "B-2", || hie.log());
    assert_eq!(entry["item"], "Acting", "{entry:#}");
    assert_eq!(entry["reason"], NO_EVN_REASON, "{entry:#}");
    // A valid message still goes through, and is answered by its delivery.
    assert_eq!(
        hie_tests::field(&conn.exchange(&adt("V-1", "P1")).unwrap(), "MSA", 1).as_deref(),
        Some("AA")
    );
    let out_file = out.join("out.hl7");
    assert!(wait_until(Duration::from_secs(10), || !control_ids_in(
        &out_file
    )
    .is_empty()));
    assert_eq!(control_ids_in(&out_file), ["V-1"]);
    assert!(control_ids_in(&out.join("bad.hl7")).is_empty());
    let status = wait_status(&hie, &data, Duration::from_secs(5), "settled", |s| {
        s["shards"][0]["wal_open_messages"] == 2
    });
    // B-1 failed twice (sent, then resent).
    assert_eq!(counter(&status, "Plain", "failed"), 2, "{status:#}");
    assert_eq!(counter(&status, "Acting", "failed"), 1, "{status:#}");
    assert_eq!(counter(&status, "Acting", "no_route"), 0, "{status:#}");
    // Conservation: each ACKed control id is delivered or listed.
    let listed: Vec<String> = held(&data)
        .iter()
        .map(|h| h["control_id"].as_str().unwrap_or("").to_owned())
        .collect();
    for id in ["B-1", "V-1"] {
        assert!(
            control_ids_in(&out_file).iter().any(|c| c == id) || listed.iter().any(|c| c == id),
            "{id} neither delivered nor listed: {listed:?}"
        );
    }
    common::stop(hie);
}
