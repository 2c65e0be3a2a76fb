//! Routing rules end to end through `hie run`: a router with a `BusinessRuleName` loads
//! its rule class from the production's folder (and `[engine] rules_path`), and sends
//! each message where its rules say: MLLP and file targets, fan-out without `return`,
//! and a message no rule sends anywhere counted as discarded ("no route"), not lost.
//! `hie check` refuses a rule class that does not compile, naming its file and line.

mod common;

use std::time::Duration;

use common::{
    Answer, TestSink, control_ids_in, counter, file_operation, head, send_one, tcp_operation,
    tcp_service, wait_status,
};
use hie_tests::{bin, free_port, wait_until};

const RULE: &str = r#"Class Trust.ADT.Rule Extends Ens.Rule.Definition
{
Parameter RuleAssistClass = "EnsLib.HL7.MsgRouter.RuleAssist";

XData RuleDefinition [ XMLNamespace = "http://www.intersystems.com/rule" ]
{
<ruleDefinition alias="" context="EnsLib.HL7.MsgRouter.RoutingEngine" production="Trust">
<ruleSet name="" effectiveBegin="" effectiveEnd="">
<rule name="Emergency to ED">
<constraint name="source" value="PAS_In"></constraint>
<when condition="HL7.{PV1:2}=&quot;E&quot;">
<send transform="" target="ED_Out"></send>
</when>
</rule>
<rule name="ADT to audit">
<constraint name="docName" value="ADT_A01,ADT_A08"></constraint>
<when condition="1">
<send transform="" target="Audit_File"></send>
<return></return>
</when>
</rule>
</ruleSet>
</ruleDefinition>
}

}
"#;

fn message(kind: &str, control_id: &str, patient_class: &str) -> Vec<u8> {
    format!(
        "MSH|^~\\&|PAS|RBH|HIE|RBH|20260101120000||{kind}|{control_id}|P|2.4\r\
         PID|1||P1^^^H^MR||DOE^JOHN\rPV1|1|{patient_class}|W1\r"
    )
    .into_bytes()
}

fn production(in_port: u16, ed_port: u16, out_dir: &std::path::Path, rules_path: &str) -> String {
    let head = head("Trust", 1).replace(
        "[engine]\n",
        &format!("[engine]\nrules_path = [{rules_path}]\n"),
    );
    head + &tcp_service("PAS_In", in_port, "Router", &[])
        + "\n[[item]]\nname = \"Router\"\nclass = \"EnsLib.HL7.MsgRouter.RoutingEngine\"\n\
           [item.host]\nBusinessRuleName = \"Trust.ADT.Rule\"\nRuleLogging = \"a\"\n"
        + &tcp_operation("ED_Out", ed_port, &[("RetryInterval", "1")], &[])
        + &file_operation("Audit_File", out_dir, "audit.hl7")
}

#[test]
fn a_rule_class_routes_messages_to_mllp_and_file_targets() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    let out = dir.path().join("out");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(rules.join("Trust.ADT.Rule.cls"), RULE).unwrap();
    let (in_port, ed_port) = (free_port(), free_port());
    let ed = TestSink::start(ed_port, Answer::Code("AA"));
    let text = production(in_port, ed_port, &out, "\"rules\"");
    // Info level: RuleLogging's trace is logged there.
    let config = common::write_production(dir.path(), &text);
    let data = dir.path().join("data");
    let hie = hie_tests::Hie::start(&config, &data, &["--no-pin", "--log", "info"]);
    // Emergency ADT: both rules send (the first has no return): ED and audit.
    assert_eq!(send_one(in_port, &message("ADT^A01", "E-1", "E")), "AA");
    // Inpatient ADT: only the audit rule.
    assert_eq!(send_one(in_port, &message("ADT^A08", "I-1", "I")), "AA");
    // An emergency ORU: ED only (the audit rule's constraint does not hold).
    assert_eq!(send_one(in_port, &message("ORU^R01", "E-2", "E")), "AA");
    // An inpatient ORU: no rule sends it anywhere.
    assert_eq!(send_one(in_port, &message("ORU^R01", "N-1", "I")), "AA");
    let audit = out.join("audit.hl7");
    assert!(
        wait_until(Duration::from_secs(10), || ed.count() == 2
            && control_ids_in(&audit).len() == 2),
        "ED {:?}, audit {:?}; log:\n{}",
        ed.control_ids(),
        control_ids_in(&audit),
        hie.log()
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(ed.control_ids(), ["E-1", "E-2"]);
    assert_eq!(control_ids_in(&audit), ["E-1", "I-1"]);
    let status = wait_status(&hie, &data, Duration::from_secs(5), "closed", |s| {
        s["shards"][0]["wal_open_messages"] == 0
    });
    assert_eq!(counter(&status, "Router", "discarded"), 1, "{status:#}");
    let log = hie.log();
    assert!(
        log.contains("no route: no routing rule sent it anywhere"),
        "{log}"
    );
    // RuleLogging "a": each evaluation's fired rules are logged.
    assert!(
        log.contains("rules fired [\"Emergency to ED\", \"ADT to audit\"]"),
        "{log}"
    );
    common::stop(hie);
}

#[test]
fn check_refuses_a_rule_class_that_does_not_compile_naming_its_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = RULE.replace("HL7.{PV1:2}=&quot;E&quot;", "HL7.{PV1:2}=");
    std::fs::write(dir.path().join("Trust.ADT.Rule.cls"), bad).unwrap();
    let text = production(free_port(), free_port(), dir.path(), "");
    let config = common::write_production(dir.path(), &text);
    let output = std::process::Command::new(bin("hie"))
        .args(["check"])
        .arg(&config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("Trust.ADT.Rule.cls:11"), "{stdout}");
    assert!(stdout.contains("rule \"Emergency to ED\""), "{stdout}");
    // A class that no file holds is refused too.
    std::fs::remove_file(dir.path().join("Trust.ADT.Rule.cls")).unwrap();
    let output = std::process::Command::new(bin("hie"))
        .args(["check"])
        .arg(&config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("no rule class Trust.ADT.Rule"), "{stdout}");
}
