//! `hie check` on a production whose rule class sends through a transform: a
//! `send transform=` naming no DTL class that loads is an error naming the rule file, its
//! line and why the transform does not load; `[engine] transform_skip_code` is read (a
//! class with a code block then loads, and the production checks).

mod common;

use common::{file_operation, head, tcp_service};
use hie_tests::{bin, free_port};

const RULE: &str = r#"Class Trust.ADT.Rule Extends Ens.Rule.Definition
{
XData RuleDefinition [ XMLNamespace = "http://www.intersystems.com/rule" ]
{
<ruleDefinition alias="" context="EnsLib.HL7.MsgRouter.RoutingEngine" production="Trust">
<ruleSet name="" effectiveBegin="" effectiveEnd="">
<rule name="ADT through the fix">
<when condition="1">
<send transform="Trust.ADT.Fix" target="Audit_File"></send>
</when>
</rule>
</ruleSet>
</ruleDefinition>
}

}
"#;

const DTL: &str = "transform = \"Trust.ADT.Fix\"\ncreate = \"copy\"\nactions = [\n  { assign = \"target.{MSH:5}\", value = '\"PAS\"' },\n  { code = \"do ..Log()\" },\n]\n";

fn check(dir: &std::path::Path, skip_code: bool) -> (Option<i32>, String) {
    let mut head = head("Trust", 1);
    if skip_code {
        head = head.replace("[engine]\n", "[engine]\ntransform_skip_code = true\n");
    }
    let text = head
        + &tcp_service("PAS_In", free_port(), "Router", &[])
        + "\n[[item]]\nname = \"Router\"\nclass = \"EnsLib.HL7.MsgRouter.RoutingEngine\"\n\
           [item.host]\nBusinessRuleName = \"Trust.ADT.Rule\"\n"
        + &file_operation("Audit_File", dir, "audit.hl7");
    let config = common::write_production(dir, &text);
    let output = std::process::Command::new(bin("hie"))
        .arg("check")
        .arg(&config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.code(), text)
}

#[test]
fn check_names_the_send_whose_transform_does_not_load() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Trust.ADT.Rule.cls"), RULE).unwrap();
    let (code, out) = check(dir.path(), false);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("Trust.ADT.Rule.cls:9"), "{out}");
    assert!(
        out.contains("send transform=\\\"Trust.ADT.Fix\\\" does not load")
            || out.contains("send transform=\"Trust.ADT.Fix\" does not load"),
        "{out}"
    );
    assert!(out.contains("no DTL class Trust.ADT.Fix"), "{out}");

    std::fs::write(dir.path().join("fix.toml"), DTL).unwrap();
    let (code, out) = check(dir.path(), false);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("fix.toml:5: class Trust.ADT.Fix: <code>: ObjectScript blocks"),
        "{out}"
    );

    // Skipped code: the class loads, and a router runs it: the production checks.
    let (code, out) = check(dir.path(), true);
    assert_eq!(code, Some(0), "{out}");
}
