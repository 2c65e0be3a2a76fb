//! `hie rules test` through the real binary on corpus rule classes and messages, in the
//! three forms (.cls, Export .xml, TOML), with its exit statuses.

use std::path::Path;
use std::process::Command;

use hie_tests::{bin, corpus_dir};

fn hie_rules(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin("hie"))
        .arg("rules")
        .arg("test")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn corpus(path: &str) -> String {
    corpus_dir().join(path).display().to_string()
}

#[test]
fn rules_test_prints_what_fired_and_where_each_message_goes() {
    let rule = corpus("iris/rules/oliverwilms_otw.NewProduction.RoutingRule.cls");
    let adt = corpus("hl7/038_er7_adt_a08.hl7");
    let oru = corpus("hl7/037_hl7_2_oru_r01.hl7");
    let (code, out, err) = hie_rules(&[&rule, &adt, &oru, "--source", "HL7FileService"]);
    assert_eq!(code, 0, "{err}");
    // The wizard's rule: source constraint only, when 1, send (IRIS runs it for every
    // message of that source).
    let expected = format!(
        "{adt}#1  ADT^A08^ADT_A01  MSG00001\n  rule set: \"\"\n  fired: \"#1\" (when 1)\n  send: HL7FileOperation\n  \
         trace:\n    rule \"#1\" (line 11): when #1 is true\n    send to HL7FileOperation\n\
         {oru}#1  ORU^R01  MSG00042\n  rule set: \"\"\n  fired: \"#1\" (when 1)\n  send: HL7FileOperation\n  \
         trace:\n    rule \"#1\" (line 11): when #1 is true\n    send to HL7FileOperation\n"
    );
    assert_eq!(out, expected);
    let (code, out, _) = hie_rules(&[&rule, &adt, "--source", "Other"]);
    assert_eq!(code, 0);
    assert!(out.contains("  fired: none\n  send: no route\n"), "{out}");
    assert!(
        out.contains("constraint source not in \"HL7FileService\""),
        "{out}"
    );
}

#[test]
fn rules_test_runs_the_corpus_abc_rule_with_its_group_path() {
    let abc = corpus("iris/rules/ensdemo_Demo.HL7.MsgRouter.ABCRoutingRule.xml");
    let adt = corpus("hl7/038_er7_adt_a08.hl7");
    let (code, out, err) = hie_rules(&[&abc, &adt, "--category", "2.3.1"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("  send: ADT_A08_FileOperation, Priority_FileOperation\n"),
        "{out}"
    );
}

#[test]
fn rules_test_reads_the_class_by_name_from_a_folder_and_the_toml_form() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("trust.toml"),
        "class = \"Trust.Rule\"\n[[rule_set]]\n[[rule_set.rule]]\nname = \"emergency\"\n\
         [[rule_set.rule.when]]\ncondition = 'HL7.{PV1:2}=\"I\" && Lookup(\"Wards\",HL7.{PV1:3.1})=\"Theatres\"'\n\
         actions = [{ send = \"Theatre_Out,Audit\" }]\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("wards.xml"),
        "<?xml version=\"1.0\"?>\n<Export generator=\"IRIS\" version=\"26\">\n<Document name=\"Wards.LUT\">\n<lookupTable>\n<entry table=\"Wards\" key=\"2000\">Theatres</entry>\n</lookupTable>\n</Document>\n</Export>\n",
    )
    .unwrap();
    let adt = corpus("hl7/038_er7_adt_a08.hl7"); // PV1|1|I|2000^2012^01
    let folder = dir.path().display().to_string();
    let (code, out, err) = hie_rules(&["Trust.Rule", &adt, "--rules-path", &folder]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("  fired: \"emergency\" (when 1)\n  send: Theatre_Out, Audit\n"),
        "{out}"
    );
}

#[test]
fn rules_test_exit_statuses_name_the_failure() {
    let xyz = corpus("iris/rules/ensdemo_Demo.HL7.MsgRouter.XYZRoutingRule.xml");
    let adt = corpus("hl7/038_er7_adt_a08.hl7");
    let (code, _, err) = hie_rules(&[&xyz, &adt]);
    assert_eq!(code, 1);
    assert!(
        err.contains("XYZRoutingRule.xml:24: class Demo.HL7.MsgRouter.XYZRoutingRule"),
        "{err}"
    );
    // The send names a DTL class no searched folder holds (the corpus keeps DTLs apart).
    assert!(
        err.contains("send transform=\"Demo.HL7.MsgRouter.ADTLastNameTransform\" does not load"),
        "{err}"
    );
    let rule = corpus("iris/rules/oliverwilms_otw.NewProduction.RoutingRule.cls");
    let (code, _, err) = hie_rules(&[&rule, "/nonexistent/m.hl7"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = hie_rules(&[
        "No.Such.Rule",
        &adt,
        "--rules-path",
        Path::new("/nonexistent").to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("no rule class No.Such.Rule"), "{err}");
}

#[test]
fn rules_test_names_the_transform_of_each_send() {
    let dir = tempfile::tempdir().unwrap();
    let rule = dir.path().join("rule.toml");
    std::fs::write(
        &rule,
        "class = \"T.Rule\"\n[[rule_set]]\n[[rule_set.rule]]\n[[rule_set.rule.when]]\n\
         condition = \"1\"\nactions = [{ send = \"A\", transform = \"T.Dtl\" }, { send = \"B\" }]\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("dtl.toml"),
        "transform = \"T.Dtl\"\ncreate = \"copy\"\nactions = []\n",
    )
    .unwrap();
    let adt = corpus("hl7/038_er7_adt_a08.hl7");
    let folder = dir.path().to_str().unwrap();
    let (code, out, err) = hie_rules(&[rule.to_str().unwrap(), &adt, "--rules-path", folder]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("  send: A via T.Dtl, B\n"), "{out}");
}
