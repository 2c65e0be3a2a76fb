//! Tests of loading and running DTLs on the corpus (`../shared/corpus/iris/dtl`,
//! `../shared/corpus/hl7`) and on classes written here. Expected outputs are written by
//! hand from IRIS's documented DTL semantics (InterSystems "Developing DTL
//! Transformations" and "Syntax Rules" for virtual property paths): `create="new"`
//! starts an empty message whose segments end in CR; whole-segment and group assigns copy
//! the source's segments; `{PID:5.1}` is component 1 of the first repetition;
//! `set` writes the value as ER7 (no escaping), `clear` empties, `append` adds a
//! repetition, `insert` with a key inserts before that instance.

use std::path::{Path, PathBuf};

use hie_hl7::Message;

use crate::rules::library::Library;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus")
}

fn hl7(name: &str) -> Vec<u8> {
    std::fs::read(corpus().join("hl7").join(name)).unwrap()
}

fn corpus_library() -> Library {
    Library::load(&[corpus().join("iris/dtl")])
}

#[test]
fn every_corpus_dtl_loads_or_is_refused_with_a_precise_reason() {
    let lib = corpus_library();
    assert!(
        lib.compile_transform("Demo.HL7.MsgRouter.ADTLastNameTransform", false)
            .is_ok()
    );
    let refused =
        |class: &str, skip: bool| lib.compile_transform(class, skip).unwrap_err().to_string();
    let e = refused("Demo.HL7.MsgRouter.EmailAlertTransform", false);
    assert!(
        e.contains("sourceClass=\"Ens.AlertRequest\": hie transforms EnsLib.HL7.Message"),
        "{e}"
    );
    let e = refused("IRISDemo.DTL.MQTTHeartRateToHL7", false);
    assert!(e.contains("MQTTHeartRateToHL7.cls:20: class IRISDemo.DTL.MQTTHeartRateToHL7: <code>: ObjectScript blocks hie cannot run: <code> at line 20; set [engine] transform_skip_code = true"), "{e}");
    // Skipping the code block, the class is still no HL7 to HL7 transform.
    let e = refused("IRISDemo.DTL.MQTTHeartRateToHL7", true);
    assert!(e.contains("sourceClass=\"EnsLib.EDI.XML.Document\""), "{e}");
    let e = refused("Demo.X12.SorterDTL.ByGroup.SorterTransform", false);
    assert!(e.contains("sourceClass=\"EnsLib.EDI.X12.Document\""), "{e}");
    for class in [
        "Demo.LabWorkflow.HIS.DT.LAB.CheckCatalogRspToORMO01",
        "Demo.LabWorkflow.HIS.DT.LAB.OrderReqToORMO01",
        "Demo.LabWorkflow.HIS.DT.LAB.OrderReqTosegMSH",
    ] {
        let e = refused(class, false);
        assert!(
            e.contains("sourceClass=\"Demo.LabWorkflow."),
            "{class}: {e}"
        );
    }
    let e = refused("No.Such.Class", false);
    assert!(e.contains("no DTL class No.Such.Class"), "{e}");
}

/// ADTLastNameTransform on the corpus ADT^A01: create="new", so only the assigned
/// segments, in assign order, CR-terminated; MSH-5 (2.3.1 "Receiving Application")
/// becomes TEST; PID-5.1 NEWNAME (the second name repetition kept); DRG, UB1, UB2 are
/// absent from the source and GENERATEEMPTYSEGMENTS is not set, so none is created;
/// PR1grp(1) is the PR1 and the ROL after it, IN1grp(1) the IN1 and IN2 and the RF1
/// after them (2.3.1's ADT_A01 has no RF1: a segment the structure does not expect
/// belongs to the group instance being filled, as hie's schema placement places it).
#[test]
fn adt_last_name_transform_builds_the_expected_message() {
    let lib = corpus_library();
    let t = lib
        .compile_transform("Demo.HL7.MsgRouter.ADTLastNameTransform", false)
        .unwrap();
    let input = hl7("001_msfc_ADT-A01-01.hl7");
    let m = Message::scan(&input).unwrap();
    let out = t.run(&m, lib.lookups()).unwrap();
    let text = String::from_utf8(input.clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let line = |n: usize| lines[n - 1].to_owned();
    let expected = [
        line(1).replacen("|EHRApp^1.Edu^ISO|", "|TEST|", 1),
        line(3),
        line(4).replacen("|EVERYMAN&&&&Aniston^ADAM", "|NEWNAME^ADAM", 1),
        line(5),
        line(8),
        line(9),
        line(10),
        line(13),
        line(14),
        line(15),
        line(16),
        line(17),
        line(18),
        line(19),
        line(20),
        line(21),
        line(22),
        line(23),
    ]
    .map(|l| l + "\r")
    .concat();
    assert_eq!(String::from_utf8_lossy(&out.message), expected);
}

const ORU_DTL: &str = r#"Class T.OruFix Extends Ens.DataTransformDTL [ DependsOn = EnsLib.HL7.Message ]
{

XData DTL [ XMLNamespace = "http://www.intersystems.com/dtl" ]
{
<transform sourceClass='EnsLib.HL7.Message' targetClass='EnsLib.HL7.Message' sourceDocType='2.5:ORU_R01' targetDocType='2.5:ORU_R01' create='copy' language='objectscript' >
<annotation>Exercises every action kind on the corpus ORU.</annotation>
<assign value='"HIE"' property='target.{MSH:SendingApplication}' action='set' />
<assign value='source.{PIDgrpgrp(1).PIDgrp.PID:PatientName(1).FamilyName}_"-X"' property='target.{PIDgrpgrp(1).PIDgrp.PID:PatientName(1).FamilyName}' action='set' />
<assign value='"555^^^ACME^MR"' property='target.{PID:PatientIdentifierList}' action='append' />
<foreach property='source.{PIDgrpgrp(1).ORCgrp(1).OBXgrp()}' key='k1' >
<if condition='source.{PIDgrpgrp(1).ORCgrp(1).OBXgrp(k1).OBX:ValueType}="NM"' >
<true>
<assign value='..ToUpper(source.{PIDgrpgrp(1).ORCgrp(1).OBXgrp(k1).OBX:Units})' property='target.{PIDgrpgrp(1).ORCgrp(1).OBXgrp(k1).OBX:Units}' action='set' />
</true>
<false>
<assign value='' property='target.{PIDgrpgrp(1).ORCgrp(1).OBXgrp(k1).OBX:5}' action='clear' />
</false>
</if>
</foreach>
<foreach property='source.{OBX()}' key='k2' >
<trace value='"first OBX "_source.{OBX(k2):3.2}' />
<break/>
</foreach>
<switch>
<case condition='source.{PV1:2}="I"' >
<assign value='"INPATIENT"' property='target.{PV1:3.4}' action='set' />
</case>
<case condition='source.{PV1:2}="O"' >
<assign value='"OUTPATIENT"' property='target.{PV1:3.4}' action='set' />
</case>
<default>
<assign value='"?"' property='target.{PV1:3.4}' action='set' />
</default>
</switch>
<group>
<assign value='"NTE|0||First."' property='target.{NTE}' action='insert' key='1' />
<trace value='"OBX count "_source.{PIDgrpgrp(1).ORCgrp(1).OBXgrp(*)}' />
</group>
<comment><annotation>The subtransform fills MSH-6.</annotation></comment>
<subtransform class='T.Sub' targetObj='target' sourceObj='target' />
</transform>
}

}
"#;

const SUB_TOML: &str = r#"transform = "T.Sub"
source_doc_type = "2.5:ORU_R01"
target_doc_type = "2.5:ORU_R01"
create = "copy"
actions = [
  { assign = "target.{MSH:ReceivingFacility}", value = '"SUB"' },
  { trace = '"sub ran"' },
]
"#;

fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

#[test]
fn every_action_kind_runs_on_the_corpus_oru() {
    let dir = folder(&[("OruFix.cls", ORU_DTL), ("sub.toml", SUB_TOML)]);
    let lib = Library::load(&[dir.path().to_path_buf()]);
    let t = lib.compile_transform("T.OruFix", false).unwrap();
    let input = hl7("037_hl7_2_oru_r01.hl7");
    let out = t
        .run(&Message::scan(&input).unwrap(), lib.lookups())
        .unwrap();
    let expected = [
        "MSH|^~\\&|HIE|ACME|EHR|SUB|20260814080000||ORU^R01|MSG00042|P|2.5",
        "PID|1||444333222^^^ACME&1.2.3.4&ISO^MR~555^^^ACME^MR||EVERYWOMAN-X^EVE^E||19620320|F|||2222 HOME ST^^ANN ARBOR^MI^48104",
        "PV1|1|O|OP^^^OUTPATIENT",
        "ORC|RE|ORD776655",
        "OBR|1|ORD776655|LAB2233|24331-1^Lipid Panel^LN|||20260813071500",
        "OBX|1|NM|2093-3^Cholesterol^LN||187|MG/DL|<200|N|||F",
        "OBX|2|CE|10331-7^Rh Type^LN|||||N|||F",
        "NTE|0||First.",
        "NTE|1||Fasting sample.",
    ]
    .map(|l| l.to_owned() + "\r")
    .concat();
    assert_eq!(String::from_utf8_lossy(&out.message), expected);
    assert_eq!(
        out.trace,
        ["first OBX Cholesterol", "OBX count 2", "sub ran"]
    );
}

#[test]
fn a_copy_with_no_assign_is_the_input_byte_for_byte() {
    let dir = folder(&[("copy.toml", "transform = \"T.Copy\"\ncreate = \"copy\"\n")]);
    let lib = Library::load(&[dir.path().to_path_buf()]);
    let t = lib.compile_transform("T.Copy", false).unwrap();
    for name in [
        "001_msfc_ADT-A01-01.hl7",
        "037_hl7_2_oru_r01.hl7",
        "028_hl7parser_sample_adt_a01_encoded.hl7",
    ] {
        let input = hl7(name);
        let out = t
            .run(&Message::scan(&input).unwrap(), lib.lookups())
            .unwrap();
        assert_eq!(out.message, input, "{name}");
    }
}

#[test]
fn untouched_segments_keep_their_terminators_and_edits_splice_in_place() {
    let dir = folder(&[(
        "t.toml",
        r#"transform = "T.Edit"
create = "copy"
actions = [
  { assign = "target.{PID:5.2}", value = '"JANE"' },
  { assign = "target.{OBX(2)}", action = "remove" },
  { assign = "target.{ZZZ:2}", value = '"new"' },
]
"#,
    )]);
    let lib = Library::load(&[dir.path().to_path_buf()]);
    let t = lib.compile_transform("T.Edit", false).unwrap();
    let input = b"MSH|^~\\&|A|B|||||ADT^A01|1|P|2.5\r\nPID|1||123||DOE^JOHN\r\n\r\nOBX|1|ST|x||v1\r\nOBX|2|ST|y||v2\r\n";
    let out = t
        .run(&Message::scan(input).unwrap(), lib.lookups())
        .unwrap();
    assert_eq!(
        out.message,
        b"MSH|^~\\&|A|B|||||ADT^A01|1|P|2.5\r\nPID|1||123||DOE^JANE\r\n\r\nOBX|1|ST|x||v1\r\nZZZ||new\r\n"
    );
}

fn load_err(files: &[(&str, &str)], class: &str) -> String {
    let dir = folder(files);
    let lib = Library::load(&[dir.path().to_path_buf()]);
    lib.compile_transform(class, false).unwrap_err().to_string()
}

#[test]
fn load_errors_name_the_class_the_action_and_the_line() {
    let e = load_err(
        &[(
            "t.toml",
            "transform = \"T.Bad\"\nactions = [\n  { assign = \"target.{PID:5}\", value = '$E(source.{PID:5},1,3)' },\n]\n",
        )],
        "T.Bad",
    );
    assert!(e.contains("t.toml:3: class T.Bad: <assign>: value \"$E(source.{PID:5},1,3)\" does not compile (at character 1)"), "{e}");
    let e = load_err(
        &[(
            "t.toml",
            "transform = \"T.Named\"\nactions = [\n  { assign = \"target.{PID:PatientName}\", value = '\"X\"' },\n]\n",
        )],
        "T.Named",
    );
    assert!(e.contains("t.toml:3: class T.Named: <assign>: property \"target.{PID:PatientName}\": {PID:PatientName}: the named part \"PatientName\" needs the doc type's HL7 version"), "{e}");
    let e = load_err(
        &[("t.toml", "transform = \"T.Ex\"\ncreate = \"existing\"\n")],
        "T.Ex",
    );
    assert!(e.contains("create=\"existing\""), "{e}");
    let e = load_err(
        &[(
            "t.toml",
            "transform = \"T.Self\"\nactions = [{ subtransform = \"T.Self\" }]\n",
        )],
        "T.Self",
    );
    assert!(e.contains("subtransforms nest deeper than 8"), "{e}");
    let e = load_err(
        &[(
            "t.toml",
            "transform = \"T.Name\"\ntarget_doc_type = \"2.5:ADT_A01\"\nactions = [{ assign = \"target.{PID:NoSuchField}\", value = '1' }]\n",
        )],
        "T.Name",
    );
    assert!(
        e.contains("\"NoSuchField\" is no PID part in HL7 2.5"),
        "{e}"
    );
    let e = load_err(
        &[(
            "t.toml",
            "transform = \"T.Lookup\"\nactions = [{ assign = \"target.{PID:8}\", value = '..Lookup(\"NoTable\",source.{PID:8})' }]\n",
        )],
        "T.Lookup",
    );
    assert!(e.contains("<assign>") && e.contains("NoTable"), "{e}");
}

#[test]
fn a_run_error_names_the_class_and_line() {
    let dir = folder(&[(
        "t.toml",
        "transform = \"T.Run\"\ncreate = \"copy\"\nactions = [\n  { assign = \"target.{PID:3(5000)}\", value = '\"x\"' },\n]\n",
    )]);
    let lib = Library::load(&[dir.path().to_path_buf()]);
    let t = lib.compile_transform("T.Run", false).unwrap();
    let input = hl7("037_hl7_2_oru_r01.hl7");
    let e = t
        .run(&Message::scan(&input).unwrap(), lib.lookups())
        .unwrap_err();
    assert_eq!((e.class.as_str(), e.line), ("T.Run", 4));
}

const RULE_SENDING_THROUGH: &str = r#"class = "T.Rule"
[[rule_set]]
[[rule_set.rule]]
name = "r"
[[rule_set.rule.when]]
condition = "1"
actions = [{ send = "A", transform = "TRANSFORM" }]
"#;

fn rule_with(transform: &str, skip_code: bool, dtl: &str) -> crate::rules::RuleError {
    let dir = folder(&[
        (
            "rule.toml",
            &RULE_SENDING_THROUGH.replace("TRANSFORM", transform),
        ),
        ("dtl.toml", dtl),
    ]);
    let mut lib = Library::load(&[dir.path().to_path_buf()]);
    lib.transform_skip_code = skip_code;
    lib.compile("T.Rule").unwrap_err()
}

#[test]
fn a_send_transform_naming_nothing_loadable_is_a_load_error_at_the_send() {
    let dtl = "transform = \"T.Dtl\"\ncreate = \"copy\"\nactions = [{ code = \"do x\" }]\n";
    let e = rule_with("No.Such", false, dtl);
    assert_eq!((e.line, e.rule.as_deref()), (7, Some("r")));
    assert!(e.message.contains("send transform=\"No.Such\" does not load: :0: class No.Such: no DTL class No.Such in any"), "{e}");
    let e = rule_with("T.Dtl", false, dtl);
    assert!(
        e.message
            .contains("send transform=\"T.Dtl\" does not load:")
            && e.message
                .contains("dtl.toml:3: class T.Dtl: <code>: ObjectScript blocks"),
        "{e}"
    );
    // Skipped code: the class loads, and so does the rule that sends through it.
    let dir = folder(&[
        (
            "rule.toml",
            &RULE_SENDING_THROUGH.replace("TRANSFORM", "T.Dtl"),
        ),
        ("dtl.toml", dtl),
    ]);
    let mut lib = Library::load(&[dir.path().to_path_buf()]);
    lib.transform_skip_code = true;
    let rules = lib.compile("T.Rule").unwrap();
    let chains = crate::transform::library::router_transforms(&lib, &rules).unwrap();
    assert_eq!(chains.len(), 1);
    assert_eq!(chains[0][0].name, "T.Dtl");
}

/// `()` on a target segment is a new instance (IRIS's "next"), as the corpus
/// OrderReqToORMO01 writes `{NTE():SetIDNTE}` and then fills `{NTE(1):Comment(1)}`.
#[test]
fn empty_parentheses_on_a_target_segment_add_a_new_one() {
    let dir = folder(&[(
        "t.toml",
        r#"transform = "T.Nte"
target_doc_type = "2.5:ORU_R01"
create = "copy"
actions = [
  { assign = "target.{NTE():SetIDNTE}", value = '2' },
  { assign = "target.{NTE():SetIDNTE}", value = '3' },
  { assign = "target.{NTE(2):Comment(1)}", value = '"second"' },
]
"#,
    )]);
    let lib = Library::load(&[dir.path().to_path_buf()]);
    let t = lib.compile_transform("T.Nte", false).unwrap();
    let input = hl7("037_hl7_2_oru_r01.hl7");
    let out = t
        .run(&Message::scan(&input).unwrap(), lib.lookups())
        .unwrap();
    let text = String::from_utf8(out.message).unwrap();
    assert!(
        text.ends_with("NTE|1||Fasting sample.\rNTE|2||second\rNTE|3\r"),
        "{text:?}"
    );
}
