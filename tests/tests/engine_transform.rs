//! DTL transforms in a router, end to end through `hie run`: a rule's
//! `send transform="X"` sends X's output (a new message) to MLLP and file targets, byte
//! for byte, while the rule's untransformed sends carry the original; a transform that
//! fails holds the message at the router with the transform's error (`hie ctl held`),
//! and `hie ctl resend` routes the original through the rules and transforms again;
//! `ActOnTransformError=1` stops all of a failing message's sends; a SIGKILL after the
//! transform and before delivery redelivers the made message once, as it was made; an
//! `AckMode=App` service answers with the downstream reply to the made message.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{
    Answer, TestSink, control_ids_in, ctl, file_operation, head, held, send_one, tcp_operation,
    tcp_service, wait_status,
};
use hie_tests::{Hie, field, free_port, wait_until};

const RULE: &str = r#"Class Trust.ADT.Rule Extends Ens.Rule.Definition
{
XData RuleDefinition [ XMLNamespace = "http://www.intersystems.com/rule" ]
{
<ruleDefinition alias="" context="EnsLib.HL7.MsgRouter.RoutingEngine" production="Trust">
<ruleSet name="" effectiveBegin="" effectiveEnd="">
<rule name="Emergency through the fix">
<when condition="HL7.{PV1:2}=&quot;E&quot;">
<send transform="Trust.ADT.Fix" target="ED_Out,Audit_File"></send>
</when>
</rule>
<rule name="Results through the broken one">
<when condition="HL7.{MSH:9.1}=&quot;ORU&quot;">
<send transform="Trust.Bad" target="Audit_File"></send>
</when>
</rule>
<rule name="Everything raw">
<when condition="1">
<send transform="" target="Raw_File"></send>
</when>
</rule>
</ruleSet>
</ruleDefinition>
}

}
"#;

/// Sets MSH-5 and the family name: the output differs from the input in two fields.
const FIX: &str = "transform = \"Trust.ADT.Fix\"\ncreate = \"copy\"\nactions = [\n  \
    { assign = \"target.{MSH:5}\", value = '\"EPR\"' },\n  \
    { assign = \"target.{PID:5.1}\", value = '\"SMITH\"' },\n]\n";

/// Fails on every message: a repetition beyond what a field may hold (line 4).
const BAD: &str = "transform = \"Trust.Bad\"\ncreate = \"copy\"\nactions = [\n  \
    { assign = \"target.{PID:3(5000)}\", value = '\"x\"' },\n]\n";

fn message(kind: &str, control_id: &str, patient_class: &str) -> Vec<u8> {
    format!(
        "MSH|^~\\&|PAS|RBH|HIE|RBH|20260101120000||{kind}|{control_id}|P|2.4\r\
         PID|1||P1^^^H^MR||DOE^JOHN\rPV1|1|{patient_class}|W1\r"
    )
    .into_bytes()
}

/// [`message`] as `Trust.ADT.Fix` writes it.
fn fixed(kind: &str, control_id: &str, patient_class: &str) -> Vec<u8> {
    format!(
        "MSH|^~\\&|PAS|RBH|EPR|RBH|20260101120000||{kind}|{control_id}|P|2.4\r\
         PID|1||P1^^^H^MR||SMITH^JOHN\rPV1|1|{patient_class}|W1\r"
    )
    .into_bytes()
}

/// The production: `PAS_In` -> `Router` (the rule above) -> `ED_Out` (MLLP to
/// `ed_port`), `Audit_File`, `Raw_File`; the classes written beside it.
fn production(dir: &Path, in_port: u16, ed_port: u16, router_host: &str) -> std::path::PathBuf {
    production_with(dir, (in_port, &[]), ed_port, router_host, RULE)
}

/// [`production`] with the service's host settings and another rule class text.
fn production_with(
    dir: &Path,
    (in_port, service_host): (u16, &[(&str, &str)]),
    ed_port: u16,
    router_host: &str,
    rule: &str,
) -> std::path::PathBuf {
    std::fs::write(dir.join("Trust.ADT.Rule.cls"), rule).unwrap();
    std::fs::write(dir.join("fix.toml"), FIX).unwrap();
    std::fs::write(dir.join("bad.toml"), BAD).unwrap();
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let text = head("Trust", 1)
        + &tcp_service("PAS_In", in_port, "Router", service_host)
        + "\n[[item]]\nname = \"Router\"\nclass = \"EnsLib.HL7.MsgRouter.RoutingEngine\"\n\
           [item.host]\nBusinessRuleName = \"Trust.ADT.Rule\"\n"
        + router_host
        + &tcp_operation("ED_Out", ed_port, &[("RetryInterval", "1")], &[])
        + &file_operation("Audit_File", &out, "audit.hl7")
        + &file_operation("Raw_File", &out, "raw.hl7");
    common::write_production(dir, &text)
}

/// The messages of an HL7 file the file operation wrote, each as its bytes.
fn messages_in(file: &Path) -> Vec<Vec<u8>> {
    let text = std::fs::read(file).unwrap_or_default();
    let mut out: Vec<Vec<u8>> = Vec::new();
    for line in text.split(|&b| b == b'\r' || b == b'\n') {
        if line.is_empty() {
            continue;
        }
        if line.starts_with(b"MSH") {
            out.push(Vec::new());
        }
        if let Some(m) = out.last_mut() {
            m.extend_from_slice(line);
            m.push(b'\r');
        }
    }
    out
}

#[test]
fn a_send_through_a_dtl_moves_the_transformed_message_to_mllp_and_file_targets() {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, ed_port) = (free_port(), free_port());
    let ed = TestSink::start(ed_port, Answer::Code("AA"));
    let config = production(dir.path(), in_port, ed_port, "");
    let data = dir.path().join("data");
    let hie = Hie::start(&config, &data, &["--no-pin", "--log", "info"]);
    assert_eq!(send_one(in_port, &message("ADT^A01", "E-1", "E")), "AA");
    assert_eq!(send_one(in_port, &message("ADT^A08", "I-1", "I")), "AA");
    let (audit, raw) = (
        dir.path().join("out/audit.hl7"),
        dir.path().join("out/raw.hl7"),
    );
    assert!(
        wait_until(Duration::from_secs(10), || ed.count() == 1
            && control_ids_in(&audit).len() == 1
            && control_ids_in(&raw).len() == 2),
        "ED {:?}, audit {:?}, raw {:?}; log:\n{}",
        ed.control_ids(),
        control_ids_in(&audit),
        control_ids_in(&raw),
        hie.log()
    );
    // The made message, byte for byte, at both targets of the send; the original at
    // the untransformed send's.
    assert_eq!(
        String::from_utf8_lossy(&ed.arrivals()[0]),
        String::from_utf8_lossy(&fixed("ADT^A01", "E-1", "E"))
    );
    assert_eq!(messages_in(&audit), [fixed("ADT^A01", "E-1", "E")]);
    assert_eq!(
        messages_in(&raw),
        [
            message("ADT^A01", "E-1", "E"),
            message("ADT^A08", "I-1", "I")
        ]
    );
    // Every message, received and made, closes in the WAL.
    wait_status(&hie, &data, Duration::from_secs(5), "closed", |s| {
        s["shards"][0]["wal_open_messages"] == 0
    });
    common::stop(hie);
}

/// Sends an ORU (its rule sends it through `Trust.Bad`) and returns the held entry.
fn held_at_router(data: &Path, hie: &Hie) -> serde_json::Value {
    let mut entries = Vec::new();
    assert!(
        wait_until(Duration::from_secs(10), || {
            entries = held(data);
            !entries.is_empty()
        }),
        "nothing held; log:\n{}",
        hie.log()
    );
    assert_eq!(entries.len(), 1, "{entries:#?}");
    entries.remove(0)
}

#[test]
fn a_failing_transform_holds_the_message_at_the_router_and_resend_routes_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, ed_port) = (free_port(), free_port());
    let config = production(dir.path(), in_port, ed_port, "");
    let data = dir.path().join("data");
    let hie = Hie::start(&config, &data, &["--no-pin", "--log", "info"]);
    assert_eq!(send_one(in_port, &message("ORU^R01", "R-1", "I")), "AA");
    let entry = held_at_router(&data, &hie);
    assert_eq!(entry["item"], "Router", "{entry:#}");
    assert_eq!(entry["kind"], "failed", "{entry:#}");
    assert_eq!(entry["control_id"], "R-1", "{entry:#}");
    let reason = entry["reason"].as_str().unwrap_or("");
    assert!(reason.contains("transform Trust.Bad, line 4"), "{entry:#}");
    // ActOnTransformError is off (IRIS's default): the untransformed send went on.
    let raw = dir.path().join("out/raw.hl7");
    assert!(wait_until(Duration::from_secs(10), || control_ids_in(&raw)
        .len()
        == 1));
    assert!(!dir.path().join("out/audit.hl7").exists());
    // Resend: the original goes through the rules and the transform again, fails again,
    // and is held again (the raw send goes again too, as IRIS's resend does).
    let id = entry["message_id"].as_str().unwrap().to_owned();
    let (code, out) = ctl(&data, &["resend", &id]);
    assert_eq!(code, 0, "{out}");
    assert!(
        wait_until(Duration::from_secs(10), || control_ids_in(&raw).len() == 2),
        "log:\n{}",
        hie.log()
    );
    let again = held_at_router(&data, &hie);
    assert_eq!(again["message_id"], entry["message_id"], "{again:#}");
    let log = hie.log();
    assert!(
        log.matches("transform Trust.Bad, line 4").count() >= 2,
        "{log}"
    );
    // Nothing is lost: the message stays open in the WAL while held.
    let status = common::status(&data);
    assert_eq!(status["shards"][0]["wal_open_messages"], 1, "{status:#}");
    common::stop(hie);
}

#[test]
fn with_act_on_transform_error_a_failing_transform_stops_every_send_of_the_message() {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, ed_port) = (free_port(), free_port());
    let config = production(
        dir.path(),
        in_port,
        ed_port,
        "ActOnTransformError = \"1\"\n",
    );
    let data = dir.path().join("data");
    let hie = Hie::start(&config, &data, &["--no-pin", "--log", "info"]);
    assert_eq!(send_one(in_port, &message("ORU^R01", "R-1", "I")), "AA");
    let entry = held_at_router(&data, &hie);
    assert_eq!(entry["item"], "Router", "{entry:#}");
    // An ADT after it is routed (raw): the ORU's raw send did not go.
    assert_eq!(send_one(in_port, &message("ADT^A08", "I-1", "I")), "AA");
    let raw = dir.path().join("out/raw.hl7");
    assert!(wait_until(Duration::from_secs(10), || !control_ids_in(
        &raw
    )
    .is_empty()));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(control_ids_in(&raw), ["I-1"]);
    common::stop(hie);
}

#[test]
fn a_sigkill_after_the_transform_redelivers_the_made_message_once_as_made() {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, ed_port) = (free_port(), free_port());
    let config = production(dir.path(), in_port, ed_port, "");
    let data = dir.path().join("data");
    let args = ["--no-pin", "--log", "info"];
    // ED is down: the made message waits at ED_Out.
    let mut hie = Hie::start(&config, &data, &args);
    assert_eq!(send_one(in_port, &message("ADT^A01", "E-1", "E")), "AA");
    let audit = dir.path().join("out/audit.hl7");
    assert!(
        wait_until(Duration::from_secs(10), || control_ids_in(&audit).len()
            == 1),
        "log:\n{}",
        hie.log()
    );
    // Recorded: the routed message closed (routed, raw and audit delivered), the made
    // one open, owing ED (down) only.
    wait_status(&hie, &data, Duration::from_secs(10), "one open", |s| {
        s["shards"][0]["wal_open_messages"] == 1
            && control_ids_in(&dir.path().join("out/raw.hl7")).len() == 1
    });
    std::thread::sleep(Duration::from_millis(300));
    hie.process.kill();
    let ed = TestSink::start(ed_port, Answer::Code("AA"));
    let hie = Hie::start(&config, &data, &args);
    assert!(
        wait_until(Duration::from_secs(15), || ed.count() >= 1),
        "log:\n{}",
        hie.log()
    );
    wait_status(&hie, &data, Duration::from_secs(10), "closed", |s| {
        s["shards"][0]["wal_open_messages"] == 0
    });
    std::thread::sleep(Duration::from_millis(300));
    let arrivals = ed.arrivals();
    assert_eq!(arrivals.len(), 1, "exactly once");
    assert_eq!(
        String::from_utf8_lossy(&arrivals[0]),
        String::from_utf8_lossy(&fixed("ADT^A01", "E-1", "E"))
    );
    // Not made again: the audit file still has its one copy, the raw file its one.
    assert_eq!(messages_in(&audit), [fixed("ADT^A01", "E-1", "E")]);
    assert_eq!(control_ids_in(&dir.path().join("out/raw.hl7")), ["E-1"]);
    common::stop(hie);
}

#[test]
fn an_app_mode_service_answers_with_the_reply_to_the_message_its_router_made() {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, ed_port) = (free_port(), free_port());
    let ed = TestSink::start(ed_port, Answer::Code("AA"));
    // The ADT goes only through the fix, only to ED: ED's reply is the one to answer.
    let rule = RULE
        .replace("ED_Out,Audit_File", "ED_Out")
        .replace("<send transform=\"\" target=\"Raw_File\"></send>", "");
    let service = [("AckMode", "App")];
    // ResponseFrom: ED's reply answers (a blank one would answer AA once routed).
    let router_host = "ResponseFrom = \"ED_Out\"\n";
    let config = production_with(dir.path(), (in_port, &service), ed_port, router_host, &rule);
    let data = dir.path().join("data");
    let hie = Hie::start(&config, &data, &["--no-pin", "--log", "info"]);
    // Without the made message's reply, the service would answer AE after its timeout.
    let mut conn = hie_tests::MllpConn::connect(&format!("127.0.0.1:{in_port}")).unwrap();
    let reply = conn.exchange(&message("ADT^A01", "E-1", "E")).unwrap();
    assert_eq!(
        (field(&reply, "MSA", 1), field(&reply, "MSH", 3)),
        (Some("AA".into()), Some("SINK".into())),
        "ED's own ACK; log:\n{}",
        hie.log()
    );
    assert_eq!(ed.control_ids(), ["E-1"]);
    common::stop(hie);
}
