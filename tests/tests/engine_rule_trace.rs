//! What a router's rules decided for a message is kept in its WAL record and shown with
//! it, end to end through `hie run`: a message the rules sent to an operation that is
//! down is held there, and `hie ctl show` (and `--json`) prints the rule set, the rules
//! that fired and each send (for a message a transform made, the outcome that sent its
//! parent through the transform), also when the router decided long after the message
//! was stored (several WAL segments later); with `RuleLogging=""` nothing is kept.

mod common;

use std::time::Duration;

use common::{ctl, file_operation, head, held, send_one, start_hie, tcp_operation, tcp_service};
use hie_tests::{free_port, wait_until};

const RULE: &str = r#"Class Trust.Trace.Rule Extends Ens.Rule.Definition
{
XData RuleDefinition [ XMLNamespace = "http://www.intersystems.com/rule" ]
{
<ruleDefinition alias="" context="EnsLib.HL7.MsgRouter.RoutingEngine" production="Trust">
<ruleSet name="Main" effectiveBegin="" effectiveEnd="">
<rule name="Emergency to ED">
<when condition="HL7.{PV1:2}=&quot;E&quot;">
<send transform="Trust.Trace.Fix" target="ED_Out"></send>
</when>
</rule>
<rule name="Inpatients only">
<when condition="HL7.{PV1:2}=&quot;I&quot;">
<send transform="" target="ED_Out"></send>
</when>
</rule>
<rule name="Everything to audit">
<when condition="0">
<send transform="" target="Audit_File"></send>
</when>
<otherwise>
<send transform="" target="Audit_File"></send>
</otherwise>
</rule>
</ruleSet>
</ruleDefinition>
}

}
"#;

/// Sets MSH-5.
const FIX: &str = "transform = \"Trust.Trace.Fix\"\ncreate = \"copy\"\nactions = [\n  \
    { assign = \"target.{MSH:5}\", value = '\"EPR\"' },\n]\n";

/// `PAS_In` -> `Router` (the rule class above, `RuleLogging` = `logging` when given) ->
/// `ED_Out` (nothing listens: it fails after 2 s) and `Audit_File`.
fn production(dir: &std::path::Path, in_port: u16, logging: Option<&str>) -> String {
    std::fs::write(dir.join("Trust.Trace.Rule.cls"), RULE).unwrap();
    std::fs::write(dir.join("fix.toml"), FIX).unwrap();
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let logging = logging.map_or(String::new(), |l| format!("RuleLogging = \"{l}\"\n"));
    head("Trust", 1)
        + &tcp_service("PAS_In", in_port, "Router", &[])
        + "\n[[item]]\nname = \"Router\"\nclass = \"EnsLib.HL7.MsgRouter.RoutingEngine\"\n\
           [item.host]\nBusinessRuleName = \"Trust.Trace.Rule\"\n"
        + &logging
        + &tcp_operation(
            "ED_Out",
            free_port(),
            &[("RetryInterval", "1"), ("FailureTimeout", "2")],
            &[],
        )
        + &file_operation("Audit_File", &out, "audit.hl7")
}

fn adt(control_id: &str, patient_class: &str) -> Vec<u8> {
    format!(
        "MSH|^~\\&|PAS|RBH|HIE|RBH|20260101120000||ADT^A01|{control_id}|P|2.4\r\
         PID|1||P1^^^H^MR||DOE^JOHN\rPV1|1|{patient_class}|W1\r"
    )
    .into_bytes()
}

/// Sends an emergency ADT (`E-1`, to `ED_Out` through the fix) and an inpatient one
/// (`I-1`, to `ED_Out` as it is) and waits until both are held at `ED_Out`; their
/// message ids.
fn held_at_ed(hie: &hie_tests::Hie, data: &std::path::Path, in_port: u16) -> [String; 2] {
    assert_eq!(send_one(in_port, &adt("E-1", "E")), "AA");
    assert_eq!(send_one(in_port, &adt("I-1", "I")), "AA");
    assert!(
        wait_until(Duration::from_secs(30), || held(data).len() == 2),
        "the ED sends fail after FailureTimeout; log:\n{}",
        hie.log()
    );
    let listed = held(data);
    let id_of = |control_id: &str| {
        let entry = listed
            .iter()
            .find(|e| e["control_id"] == control_id)
            .unwrap_or_else(|| panic!("{control_id} not held: {listed:?}"));
        assert_eq!(entry["item"], "ED_Out", "{listed:?}");
        entry["message_id"].as_str().unwrap().to_string()
    };
    [id_of("E-1"), id_of("I-1")]
}

#[test]
fn show_prints_which_rules_fired_and_where_they_sent_a_held_message() {
    let dir = tempfile::tempdir().unwrap();
    let in_port = free_port();
    // No RuleLogging: IRIS's default "r" keeps each outcome.
    let (hie, data) = start_hie(dir.path(), &production(dir.path(), in_port, None));
    let [made, inpatient] = held_at_ed(&hie, &data, in_port);

    // The message the fix made, held at ED_Out: the outcome that sent its parent
    // through the fix.
    let (code, shown) = ctl(&data, &["show", &made]);
    assert_eq!(code, 0, "{shown}");
    assert!(
        shown.starts_with("MSH|^~\\&|PAS|RBH|EPR|") && shown.contains("|E-1|"),
        "{shown}"
    );
    assert!(
        shown.ends_with(
            "routed by Router: rule set Main, fired Emergency to ED (when 1), \
             Everything to audit (otherwise) → ED_Out via Trust.Trace.Fix, Audit_File\n"
        ),
        "{shown}"
    );
    // The inpatient ADT, held as it came.
    let (code, shown) = ctl(&data, &["show", &inpatient]);
    assert_eq!(code, 0, "{shown}");
    let (code, json) = ctl(&data, &["show", &inpatient, "--json"]);
    assert_eq!(code, 0, "{json}");
    let value: serde_json::Value = serde_json::from_str(&json).expect(&json);
    assert_eq!(
        value["rules"].as_array().map(Vec::len),
        Some(1),
        "{value:#}"
    );
    let rules = &value["rules"][0];
    assert_eq!(rules["router"], "Router", "{value:#}");
    assert_eq!(rules["rule_set"], "Main");
    assert_eq!(
        rules["fired"],
        serde_json::json!([
            "Inpatients only (when 1)",
            "Everything to audit (otherwise)"
        ])
    );
    assert_eq!(
        rules["decisions"],
        serde_json::json!(["ED_Out", "Audit_File"])
    );
    let text = rules["text"].as_str().unwrap();
    assert!(shown.ends_with(&format!("routed by {text}\n")), "{shown}");
    common::stop(hie);
}

#[test]
fn with_rule_logging_empty_no_rule_outcome_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let in_port = free_port();
    let (hie, data) = start_hie(dir.path(), &production(dir.path(), in_port, Some("")));
    for id in held_at_ed(&hie, &data, in_port) {
        let (code, shown) = ctl(&data, &["show", &id]);
        assert_eq!(code, 0, "{shown}");
        assert!(shown.contains("ADT^A01"), "{shown}");
        assert!(!shown.contains("routed by"), "{shown}");
        let (code, json) = ctl(&data, &["show", &id, "--json"]);
        assert_eq!(code, 0, "{json}");
        let value: serde_json::Value = serde_json::from_str(&json).expect(&json);
        assert_eq!(value["rules"], serde_json::json!([]), "{value:#}");
    }
    common::stop(hie);
}

/// The WAL segment files under the data directory `data` (every shard's).
fn segment_files(data: &std::path::Path) -> usize {
    let mut count = 0;
    let mut dirs = vec![data.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "wal") {
                count += 1;
            }
        }
    }
    count
}

#[test]
fn show_finds_the_outcome_of_a_router_that_decided_segments_after_the_message_was_stored() {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, bulk_port) = (free_port(), free_port());
    // The router starts disabled: the message waits in its queue while other traffic
    // fills two 1 MiB WAL segments or more; enabled, it decides in a later segment.
    let router = "class = \"EnsLib.HL7.MsgRouter.RoutingEngine\"\n[item.host]";
    let text = production(dir.path(), in_port, None).replacen(
        router,
        &router.replace("\n[item.host]", "\nenabled = false\n[item.host]"),
        1,
    ) + &tcp_service("Bulk_In", bulk_port, "Bulk_File", &[])
        + &file_operation("Bulk_File", &dir.path().join("out"), "bulk.hl7");
    let (hie, data) = start_hie(dir.path(), &text);
    assert_eq!(send_one(in_port, &adt("I-1", "I")), "AA");
    let first = segment_files(&data);
    let filler = "X".repeat(100 << 10);
    for n in 0..30 {
        let bulk = format!(
            "MSH|^~\\&|LAB|RBH|HIE|RBH|20260101120000||ORU^R01|B-{n}|P|2.4\rOBX|1|TX|||{filler}\r"
        );
        assert_eq!(send_one(bulk_port, bulk.as_bytes()), "AA");
    }
    let rolled = segment_files(&data);
    assert!(rolled >= first + 2, "{first} segments, then {rolled}");
    assert_eq!(ctl(&data, &["enable", "Router"]).0, 0);
    assert!(
        wait_until(Duration::from_secs(30), || held(&data).len() == 1),
        "the ED send fails after FailureTimeout; log:\n{}",
        hie.log()
    );
    let id = held(&data)[0]["message_id"].as_str().unwrap().to_string();
    let (code, shown) = ctl(&data, &["show", &id]);
    assert_eq!(code, 0, "{shown}");
    assert!(shown.contains("|I-1|"), "{shown}");
    assert!(
        shown.ends_with(
            "routed by Router: rule set Main, fired Inpatients only (when 1), \
             Everything to audit (otherwise) → ED_Out, Audit_File\n"
        ),
        "{shown}"
    );
    common::stop(hie);
}
