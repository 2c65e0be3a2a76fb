//! Tests of loading and evaluation on the corpus (`../shared/corpus/iris/rules`,
//! `../shared/corpus/hl7`) and on rule classes written here. Expected decisions are
//! written by hand from IRIS's documented semantics of routing rules (InterSystems,
//! "Developing Business Rules": rules run in order, constraints filter, the first true
//! `when` or else `otherwise` runs, `send` without `return` lets later rules send too,
//! `return` stops, disabled rules are skipped, the rule set in force by its effective
//! dates runs).

use std::path::{Path, PathBuf};

use hie_hl7::Message;

use super::*;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus")
}

fn load(file: &Path, lookups: &Lookups) -> Result<Vec<CompiledRules>, RuleError> {
    let text = std::fs::read_to_string(file).unwrap();
    let folders = [file.parent().unwrap().to_path_buf()];
    let res = Resources {
        lookups,
        folders: &folders,
    };
    read_rule_file(&text, file)?
        .iter()
        .map(|c| CompiledRules::compile(c, file, res))
        .collect()
}

fn load_text(name: &str, text: &str) -> Result<CompiledRules, RuleError> {
    let file = Path::new(name);
    let lookups = lookups();
    let res = Resources {
        lookups: &lookups,
        folders: &[],
    };
    let classes = read_rule_file(text, file)?;
    CompiledRules::compile(&classes[0], file, res)
}

fn lookups() -> Lookups {
    let mut l = Lookups::default();
    l.insert("Wards", "W1", "North");
    l
}

/// (targets, fired rule names, deleted) for `message` from `source`.
fn route(
    rules: &CompiledRules,
    message: &[u8],
    source: &str,
    now: &str,
) -> (Vec<String>, Vec<String>, bool) {
    let m = Message::scan(message).unwrap();
    let version = String::from_utf8_lossy(m.version().unwrap_or_default()).into_owned();
    route_in(rules, message, source, &version, now)
}

/// [`route`] with the schema category the sending service assigns.
fn route_in(
    rules: &CompiledRules,
    message: &[u8],
    source: &str,
    category: &str,
    now: &str,
) -> (Vec<String>, Vec<String>, bool) {
    let m = Message::scan(message).unwrap();
    let input = Input {
        message: &m,
        source,
        category,
        now,
    };
    let mut out = Outcome::new(true);
    rules.evaluate(&input, &mut out);
    let targets = out
        .decisions
        .iter()
        .map(|d| rules.targets()[d.target as usize].clone())
        .collect();
    let fired = out.fired.iter().map(|f| f.rule.to_string()).collect();
    (targets, fired, out.deleted)
}

fn corpus_message(name: &str) -> Vec<u8> {
    std::fs::read(corpus().join("hl7").join(name)).unwrap()
}

const NOW: &str = "2026-06-01T12:00:00";

#[test]
fn every_corpus_rule_class_loads_or_is_refused_with_its_reason() {
    let dir = corpus().join("iris/rules");
    // (file, Ok(class) or Err(line, words of the reason))
    type Want = Result<&'static str, (u32, &'static str)>;
    let expected: &[(&str, Want)] = &[
        (
            "ensdemo_Demo.HL7.MsgRouter.ABCRoutingRule.xml",
            Ok("Demo.HL7.MsgRouter.ABCRoutingRule"),
        ),
        (
            "ensdemo_Demo.HL7.MsgRouter.AlertRule.xml",
            Ok("Demo.HL7.MsgRouter.AlertRule"),
        ),
        (
            "ensdemo_Demo.HL7.MsgRouter.XYZRoutingRule.xml",
            Ok("Demo.HL7.MsgRouter.XYZRoutingRule"),
        ),
        (
            "irisdemo-mqtt_IRISDemo.RR.MQTTHeartRateRouting.cls",
            Ok("IRISDemo.RR.MQTTHeartRateRouting"),
        ),
        (
            "irisdemo-mqtt_MQTT.DemoProcessRoutingRule.export.xml",
            Ok("MQTT.DemoProcessRoutingRule"),
        ),
        (
            "oliverwilms_otw.NewProduction.RoutingRule.cls",
            Ok("otw.NewProduction.RoutingRule"),
        ),
        (
            "workshop_Demo.LabWorkflow.Alert.Rule.AlertRouter.cls",
            Ok("Demo.LabWorkflow.Alert.Rule.AlertRouter"),
        ),
        (
            "workshop_Demo.LabWorkflow.LAB.Rule.RouterIn.cls",
            Ok("Demo.LabWorkflow.LAB.Rule.RouterIn"),
        ),
    ];
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap();
        if name.ends_with(".md") {
            continue;
        }
        seen += 1;
        let (_, want) = expected
            .iter()
            .find(|(f, _)| *f == name)
            .unwrap_or_else(|| panic!("no expectation for {name}"));
        match (load(&path, &Lookups::default()), want) {
            (Ok(c), Ok(class)) => assert_eq!(c[0].class, *class),
            (Err(e), Err((line, words))) => {
                assert_eq!(e.line, *line, "{e}");
                assert!(e.to_string().contains(words), "{e}");
                assert!(e.class.is_some(), "{e}");
            }
            (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
        }
    }
    assert_eq!(seen, expected.len());
}

#[test]
fn wizard_rule_sends_messages_of_its_source_only() {
    let rules = load(
        &corpus().join("iris/rules/oliverwilms_otw.NewProduction.RoutingRule.cls"),
        &Lookups::default(),
    )
    .unwrap();
    let msg = corpus_message("038_er7_adt_a08.hl7");
    // constraint source=HL7FileService; when 1 -> send HL7FileOperation (no return).
    assert_eq!(
        route(&rules[0], &msg, "HL7FileService", NOW).0,
        ["HL7FileOperation"]
    );
    assert_eq!(route(&rules[0], &msg, "HL7FileService", NOW).1, ["#1"]);
    assert!(route(&rules[0], &msg, "Other", NOW).0.is_empty());
}

#[test]
fn alert_router_takes_no_hl7_message() {
    // msgClass=Ens.AlertRequest: an HL7 message (EnsLib.HL7.Message) never matches.
    let rules = load(
        &corpus().join("iris/rules/workshop_Demo.LabWorkflow.Alert.Rule.AlertRouter.cls"),
        &Lookups::default(),
    )
    .unwrap();
    let (targets, fired, _) = route(
        &rules[0],
        &corpus_message("038_er7_adt_a08.hl7"),
        "LAB TCP In",
        NOW,
    );
    assert!(targets.is_empty() && fired.is_empty());
}

#[test]
fn abc_routing_rule_routes_corpus_messages_by_category_name_and_group_path() {
    let rules = load(
        &corpus().join("iris/rules/ensdemo_Demo.HL7.MsgRouter.ABCRoutingRule.xml"),
        &Lookups::default(),
    )
    .unwrap();
    let abc = &rules[0];
    let a08 = corpus_message("038_er7_adt_a08.hl7"); // ADT^A08^ADT_A01, 2.5
    // A service with MessageSchemaCategory 2.3.1: rule 1 (docCategory 2.3.1, docName
    // ADT_A08) sends to both and returns.
    let (t, f, _) = route_in(abc, &a08, "ABC_In", "2.3.1", NOW);
    assert_eq!(t, ["ADT_A08_FileOperation", "Priority_FileOperation"]);
    assert_eq!(f, ["Send 2.3.1 ADT_A08 to ADT_A08 and Priority BOs"]);
    // Category 2.5: no constrained rule holds; the last rule takes it.
    assert_eq!(
        route_in(abc, &a08, "ABC_In", "2.5", NOW).0,
        ["Regular_FileOperation"]
    );
    // ORM_O01 in the custom category: rule 2 tests PIDgrp.PV1grp.PV1:PatientClass.
    let orm = corpus_message("012_msfc_ORM-O01-01.hl7"); // PV1-2 "O", version 2.6
    let custom = "Demo.HL7.MsgRouter.Schema";
    assert_eq!(
        route_in(abc, &orm, "ABC_In", custom, NOW).0,
        ["ORM_O01_FileOperation"]
    );
    let emergency = String::from_utf8_lossy(&orm).replace("PV1|1|O|", "PV1|1|E|");
    assert_eq!(
        route_in(abc, emergency.as_bytes(), "ABC_In", custom, NOW).0,
        ["Priority_FileOperation"]
    );
    let oru = corpus_message("037_hl7_2_oru_r01.hl7");
    assert_eq!(
        route_in(abc, &oru, "ABC_In", "2.3.1", NOW).0,
        ["Extra_Observations"]
    );
}

#[test]
fn lab_router_in_reads_the_named_sending_facility() {
    let rules = load(
        &corpus().join("iris/rules/workshop_Demo.LabWorkflow.LAB.Rule.RouterIn.cls"),
        &Lookups::default(),
    )
    .unwrap();
    let oru = corpus_message("037_hl7_2_oru_r01.hl7"); // 2.5 ORU^R01 from LAB|ACME
    // Source, category 2.5 and docName ORU_R01 hold; MSH-4.1 is ACME, not LABORATORY.
    assert!(route(&rules[0], &oru, "LAB TCP In", NOW).0.is_empty());
    let lab = String::from_utf8_lossy(&oru).replace("|LAB|ACME|", "|LAB|LABORATORY|");
    assert_eq!(
        route(&rules[0], lab.as_bytes(), "LAB TCP In", NOW).0,
        ["LAB Result Process"]
    );
    assert!(
        route(&rules[0], lab.as_bytes(), "Other In", NOW)
            .0
            .is_empty()
    );
}

#[test]
fn foreach_runs_over_a_group_path_with_named_fields() {
    let body = r#"<ruleSet><foreach propertypath="HL7.{PIDgrpgrp(1).ORCgrp(1).OBXgrp().OBX}">
<rule name="abnormal"><when condition="Segment.{ObservationValue}&gt;100"><send target="Abnormal"/></when></rule>
</foreach></ruleSet>"#;
    let oru = b"MSH|^~\\&|LAB|H|EHR|H|20260101||ORU^R01^ORU_R01|C1|P|2.5\rPID|1||1\rOBR|1\rOBX|1|NM|HR||72\rOBX|2|NM|BP||120\r";
    let (t, f, _) = route_xml(body, oru);
    assert_eq!(t, ["Abnormal"]);
    // "#1": the unnamed rule that holds actions placed directly in the rule set.
    assert_eq!(f, ["#1", "abnormal"]);
}

/// ABCRoutingRule with its one group path written in numeric form (PV1-2 is
/// PatientClass), and its custom schema category replaced by 2.5.
const ABC_TOML: &str = r#"
class = "Demo.HL7.MsgRouter.ABCNumeric"
[[rule_set]]
name = "Rules for ABC application messages"
[[rule_set.rule]]
name = "Send ADT_A08 to ADT_A08 and Priority BOs"
doc_category = "2.5"
doc_name = "ADT_A08"
[[rule_set.rule.when]]
condition = "1"
actions = [{ send = "ADT_A08_FileOperation" }, { send = "Priority_FileOperation" }, { return = true }]
[[rule_set.rule]]
name = "Send ORU_R01 with patient class of emergency to Priority BO"
msg_class = "EnsLib.HL7.Message"
doc_category = "2.5"
doc_name = "ORU_R01"
[[rule_set.rule.when]]
condition = '((HL7.{PV1:2})=("E"))'
actions = [{ send = "Priority_FileOperation" }, { return = true }]
[[rule_set.rule]]
name = "Send ORU_R01 to Extra Observation BO"
doc_category = "2.5"
doc_name = "ORU_R01"
[[rule_set.rule.when]]
condition = "1"
actions = [{ send = "Extra_Observations" }, { return = true }]
[[rule_set.rule]]
name = "Send all messages that did not match a rule above to Regular BO"
[[rule_set.rule.when]]
condition = "1"
actions = [{ send = "Regular_FileOperation" }, { return = true }]
"#;

#[test]
fn abc_rule_routes_corpus_messages_as_iris_would() {
    let rules = load_text("abc.toml", ABC_TOML).unwrap();
    let adt_a08 = corpus_message("038_er7_adt_a08.hl7"); // 2.5, ADT^A08, PV1-2 I
    let oru = corpus_message("037_hl7_2_oru_r01.hl7"); // 2.5, ORU^R01, PV1-2 O
    let (t, f, _) = route(&rules, &adt_a08, "In", NOW);
    assert_eq!(t, ["ADT_A08_FileOperation", "Priority_FileOperation"]);
    assert_eq!(f, ["Send ADT_A08 to ADT_A08 and Priority BOs"]);
    assert_eq!(route(&rules, &oru, "In", NOW).0, ["Extra_Observations"]);
    let emergency = String::from_utf8(oru.clone())
        .unwrap()
        .replace("PV1|1|O|", "PV1|1|E|");
    assert_eq!(
        route(&rules, emergency.as_bytes(), "In", NOW).0,
        ["Priority_FileOperation"]
    );
    let a31 = corpus_message("006_msfc_ADT-A31-02.hl7");
    assert_eq!(route(&rules, &a31, "In", NOW).0, ["Regular_FileOperation"]);
}

const ADT: &[u8] = b"MSH|^~\\&|PAS|RBH|EPR|RBH|20260601120000||ADT^A01^ADT_A01|C1|P|2.4\r\
PID|1||111^^^H^MR~222^^^S^NHS||SMITH^JOHN||19700101|M\rPV1|1|E|W1^B2\r\
OBX|1|NM|HR||72\rOBX|2|ST|NOTE||urgent\r";

fn xml_rule(body: &str) -> String {
    format!(
        "Class T.Rule Extends Ens.Rule.Definition\n{{\nXData RuleDefinition [ XMLNamespace = \"http://www.intersystems.com/rule\" ]\n{{\n<ruleDefinition alias=\"\" context=\"EnsLib.HL7.MsgRouter.RoutingEngine\">\n{body}\n</ruleDefinition>\n}}\n}}\n"
    )
}

fn route_xml(body: &str, msg: &[u8]) -> (Vec<String>, Vec<String>, bool) {
    let rules = load_text("t.cls", &xml_rule(body)).unwrap_or_else(|e| panic!("{e}"));
    route(&rules, msg, "PAS_In", NOW)
}

#[test]
fn rules_without_return_fan_out_and_return_stops() {
    let body = r#"<ruleSet name="" effectiveBegin="" effectiveEnd="">
<rule name="a"><when condition="1"><send transform="" target="A,B"></send></when></rule>
<rule name="b"><when condition="HL7.{PV1:2}=&quot;E&quot;"><send transform="" target="C"/><send target="A"/></when></rule>
<rule name="c"><when condition="1"><send target="D"/><return/></when></rule>
<rule name="d"><when condition="1"><send target="E"/></when></rule>
</ruleSet>"#;
    let (t, f, _) = route_xml(body, ADT);
    // A is decided once although two rules send to it.
    assert_eq!(t, ["A", "B", "C", "D"]);
    assert_eq!(f, ["a", "b", "c"]);
}

#[test]
fn disabled_rules_constraints_and_otherwise() {
    let body = r#"<ruleSet>
<rule name="off" disabled="true"><when condition="1"><send target="Off"/></when></rule>
<rule name="other source"><constraint name="source" value="LAB_In, RIS_In"/><when condition="1"><send target="Lab"/></when></rule>
<rule name="adt"><constraint name="docName" value="ADT_A01,ADT_A04"/><constraint name="docType" value="ADT_A01"/><constraint name="docCategory" value="2.4"/>
<when condition="HL7.{PV1:2}=&quot;I&quot;"><send target="Inpatient"/></when>
<when condition="HL7.{PV1:2}=&quot;E&quot;"><send target="Emergency"/></when>
<otherwise><send target="Other"/></otherwise></rule>
<rule name="fallback"><when condition="0"><send target="Never"/></when><otherwise><send target="Fallback"/></otherwise></rule>
</ruleSet>"#;
    let (t, f, _) = route_xml(body, ADT);
    assert_eq!(t, ["Emergency", "Fallback"]);
    assert_eq!(f, ["adt", "fallback"]);
    let outpatient = String::from_utf8_lossy(ADT).replace("PV1|1|E|", "PV1|1|O|");
    assert_eq!(
        route_xml(body, outpatient.as_bytes()).0,
        ["Other", "Fallback"]
    );
}

#[test]
fn the_rule_set_in_force_by_its_effective_dates_runs() {
    let body = r#"<ruleSet name="old" effectiveBegin="" effectiveEnd="2026-01-31"><rule name="o"><when condition="1"><send target="Old"/></when></rule></ruleSet>
<ruleSet name="new" effectiveBegin="2026-02-01" effectiveEnd=""><rule name="n"><when condition="1"><send target="New"/></when></rule></ruleSet>"#;
    let rules = load_text("t.cls", &xml_rule(body)).unwrap();
    assert_eq!(route(&rules, ADT, "x", "2026-01-31T23:00:00").0, ["Old"]);
    assert_eq!(route(&rules, ADT, "x", "2026-02-01T00:00:00").0, ["New"]);
    let gap = r#"<ruleSet name="only" effectiveBegin="2030-01-01T08:00" effectiveEnd=""><rule><when condition="1"><send target="X"/></when></rule></ruleSet>"#;
    assert!(route_xml(gap, ADT).0.is_empty());
}

#[test]
fn delete_assign_trace_and_foreach() {
    let body = r#"<ruleSet>
<rule name="vars"><when condition="1"><assign property="ward" value="Lookup(&quot;Wards&quot;,HL7.{PV1:3.1})"/><trace value="&quot;ward &quot;_ward"/></when></rule>
<rule name="north"><when condition="ward=&quot;North&quot;"><send target="North"/></when></rule>
<foreach propertypath="HL7.{OBX()}"><rule name="obx"><when condition="Segment.{5} Contains &quot;urgent&quot;"><send target="Urgent"/><return/></when></rule></foreach>
<rule name="del"><when condition="HL7.{PID:3(*)}&gt;1"><delete/></when></rule>
</ruleSet>"#;
    let rules = load_text("t.cls", &xml_rule(body)).unwrap();
    let m = Message::scan(ADT).unwrap();
    let mut out = Outcome::new(false);
    rules.evaluate(
        &Input {
            message: &m,
            source: "s",
            category: "2.4",
            now: NOW,
        },
        &mut out,
    );
    let targets: Vec<_> = out
        .decisions
        .iter()
        .map(|d| rules.targets()[d.target as usize].as_str())
        .collect();
    assert_eq!(targets, ["North", "Urgent"]);
    assert!(out.deleted);
    assert_eq!(out.trace, ["trace: ward North"]);
}

fn truth(cond: &str) -> bool {
    let body = format!(
        "<ruleSet><rule name=\"r\"><when condition=\"{}\"><send target=\"Yes\"/></when></rule></ruleSet>",
        cond.replace('&', "&amp;")
            .replace('"', "&quot;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    );
    !route_xml(&body, ADT).0.is_empty()
}

#[test]
fn operators_follow_objectscript() {
    assert!(truth("HL7.{PID:5.1}=\"SMITH\""));
    assert!(!truth("HL7.{PID:5.1}=\"smith\""));
    assert!(truth("HL7.{PID:3(2).1}=222"));
    assert!(truth("\"22\" < \"100\"")); // numeric, not string order
    assert!(!truth("\"01\" = 1")); // = compares strings
    assert!(truth("HL7.{MSH:9.1}_\"^\"_HL7.{MSH:9.2} = \"ADT^A01\""));
    assert!(truth("HL7.{PID:5} [ \"JOHN\" && !(HL7.{PV1:2}=\"I\")"));
    assert!(truth("HL7.{PV1:2}=\"I\" || HL7.{PV1:2}=\"E\" AND 1"));
    assert!(truth("NOT (1=2)"));
    assert!(truth("HL7.{PID:3().1} = \"<111><222>\""));
    assert!(truth("2+3*4=14"));
    assert!(truth("\"b\" ] \"a\""));
    assert!(truth(
        "HL7.Name=\"ADT_A01\" && HL7.DocType=\"2.4:ADT_A01\" && Source=\"PAS_In\""
    ));
}

#[test]
fn functions_in_prefix_and_infix_form() {
    assert!(truth("Contains(HL7.{PID:5},\"JOHN\")"));
    assert!(truth("HL7.{PID:5.1} StartsWith \"SM\""));
    assert!(truth("HL7.{PID:5.1} DoesNotStartWith \"X\""));
    assert!(truth("HL7.{PV1:2} In \"E,I\""));
    assert!(truth("NotIn(HL7.{PV1:2},\"O,P\")"));
    assert!(truth("IntersectsList(HL7.{PID:3().5},\"NHS,XX\")"));
    assert!(truth("DoesNotIntersectList(HL7.{PID:3().5},\"XX\")"));
    assert!(truth("HL7.{PID:7} Matches \"8N\""));
    assert!(truth("RegexMatch(HL7.{PID:5.1},\"S[A-Z]+\")"));
    assert!(!truth("RegexMatch(HL7.{PID:5.1},\"MIT\")"));
    assert!(truth("HL7.{PID:5.1} Like \"S%H\""));
    assert!(truth(
        "Exists(\"Wards\",\"W1\") && Lookup(\"Wards\",\"W9\",\"none\")=\"none\""
    ));
    assert!(truth(
        "Length(HL7.{PID:5.1})=5 && Length(\"a,b,c\",\",\")=3"
    ));
    assert!(truth(
        "ToLower(HL7.{PID:5.1})=\"smith\" && ToUpper(\"ab\")=\"AB\""
    ));
    assert!(truth(
        "Piece(\"a^b^c\",\"^\",2)=\"b\" && Piece(\"a,b,c\",,2,3)=\"b,c\""
    ));
    assert!(truth("SubString(\"abcdef\",2,4)=\"bcd\""));
    assert!(truth(
        "Strip(\"  ab  \",\"<>W\")=\"ab\" && Strip(\"a-b-c\",\"*P\")=\"abc\""
    ));
    assert!(truth("ReplaceStr(\"a-b-c\",\"-\",\"+\")=\"a+b+c\""));
    assert!(truth(
        "ConvertDateTime(HL7.{MSH:7},\"%Y%m%d%H%M%S\",\"%d/%m/%Y\")=\"01/06/2026\""
    ));
    assert!(truth(
        "Round(2.5)=3 && Round(1.234,2)=1.23 && Min(3,1,2)=1 && Max(3,1,2)=3"
    ));
    assert!(truth("Length(CurrentDateTime(\"%Y\"))=4"));
    assert!(truth("..Contains(\"abc\",\"b\")"));
}

fn refusal(cond: &str) -> String {
    let body = format!(
        "<ruleSet><rule name=\"r\">\n<when condition=\"{}\"><send target=\"Yes\"/></when></rule></ruleSet>",
        cond.replace('"', "&quot;")
    );
    load_text("t.cls", &xml_rule(&body))
        .unwrap_err()
        .to_string()
}

#[test]
fn conditions_hie_cannot_compile_are_load_errors_naming_class_rule_and_line() {
    let e = refusal("HL7.{PID:5.1}=");
    assert!(
        e.starts_with("t.cls:7: class T.Rule: rule \"r\": condition"),
        "{e}"
    );
    assert!(e.contains("ends where a value is expected"), "{e}");
    assert!(refusal("Frobnicate(1)").contains("function Frobnicate is not one hie knows"));
    assert!(refusal("Contains(1)").contains("Contains takes 2 argument(s), not 1"));
    assert!(refusal("HL7.{PID:5.1} Matches \"3Q\"").contains("pattern code"));
    assert!(refusal("RegexMatch(1,\"(\")").contains("RegexMatch"));
    assert!(refusal("Lookup(\"Nope\",1)").contains("lookup table \"Nope\" was not found"));
    assert!(refusal("HL7.Colour=1").contains("HL7.Colour is no message property"));
    assert!(refusal("\"abc").contains("string is not closed"));
    assert!(refusal("ConvertDateTime(1,\"%j\")").contains("%j is not supported"));
    assert!(refusal("InFile(1,\"/nonexistent/x.txt\")").contains("InFile"));
}

#[test]
fn readers_report_unknown_elements_and_attributes_at_their_line() {
    let e = load_text(
        "t.cls",
        &xml_rule("<ruleSet>\n<rule name=\"r\">\n<delegate/></rule></ruleSet>"),
    )
    .unwrap_err();
    assert_eq!(e.line, 8, "{e}");
    assert!(e.message.contains("<delegate>"), "{e}");
    let e = load_text(
        "t.cls",
        &xml_rule("<ruleSet>\n<rule name=\"r\" colour=\"red\"></rule></ruleSet>"),
    )
    .unwrap_err();
    assert!(e.message.contains("attribute colour"), "{e}");
    let e = load_text(
        "t.toml",
        "class = \"X\"\n[[rule_set]]\n[[rule_set.rule]]\nsauce = 1\n",
    )
    .unwrap_err();
    assert_eq!(e.line, 4, "{e}");
}

#[test]
fn export_cdata_split_around_the_end_marker_is_joined() {
    let text = "<?xml version=\"1.0\"?>\n<Export generator=\"IRIS\" version=\"26\">\n<Class name=\"T.Split\">\n<Super>Ens.Rule.Definition</Super>\n<XData name=\"RuleDefinition\">\n<Data><![CDATA[\n<ruleDefinition>\n<ruleSet>\n<rule name=\"r\"><when condition='HL7.{MSH:2}=\"^~\\&amp;\" || \"]]]]><![CDATA[>\"=\"]]]]><![CDATA[>\"'><send target=\"T\"/></when></rule>\n</ruleSet>\n</ruleDefinition>\n]]></Data>\n</XData>\n</Class>\n</Export>\n";
    let rules = load_text("t.xml", text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rules.class, "T.Split");
    assert_eq!(route(&rules, ADT, "s", NOW).0, ["T"]);
}

#[test]
fn toml_form_reads_the_same_model_as_xml() {
    let toml = r#"
class = "T.Rule"
[[rule_set]]
[[rule_set.rule]]
name = "r"
source = "PAS_In"
[[rule_set.rule.when]]
condition = 'HL7.{PV1:2}="E"'
actions = [{ send = "A" }, { trace = '"hi"' }, { return = true }]
"#;
    let rules = load_text("t.toml", toml).unwrap();
    assert_eq!(route(&rules, ADT, "PAS_In", NOW).0, ["A"]);
    let text = "class = \"T\"\n[[rule_set]]\n[[rule_set.rule]]\n[[rule_set.rule.when]]\ncondition = \"1\"\nactions = [{ send = \"A,B\", transform = \"X.DTL\" }, { send = \"A\" }]\n";
    let rules = load_text("t.toml", text).unwrap();
    assert_eq!(rules.transforms(), ["X.DTL"]);
    let m = Message::scan(ADT).unwrap();
    let input = Input {
        message: &m,
        source: "S",
        category: "2.5",
        now: NOW,
    };
    let mut out = Outcome::new(false);
    rules.evaluate(&input, &mut out);
    let sends: Vec<(u32, u32)> = out
        .decisions
        .iter()
        .map(|d| (d.target, d.transform))
        .collect();
    // A and B through X.DTL; A again untransformed (another send, not a duplicate).
    assert_eq!(sends, [(0, 0), (1, 0), (0, crate::rules::NO_TRANSFORM)]);
}
