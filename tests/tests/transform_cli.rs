//! `hie transform` through the real binary on corpus DTL classes and messages: the output
//! message, `--diff`, `--raw`, the TOML form by class name, and its exit statuses.

use std::process::Command;

use hie_tests::{bin, corpus_dir};

fn hie_transform(args: &[&str]) -> (i32, Vec<u8>, String) {
    let out = Command::new(bin("hie"))
        .arg("transform")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn corpus(path: &str) -> String {
    corpus_dir().join(path).display().to_string()
}

#[test]
fn transform_prints_the_output_message_and_the_changed_fields() {
    let dtl = corpus("iris/dtl/ensdemo_Demo.HL7.MsgRouter.ADTLastNameTransform.xml");
    let adt = corpus("hl7/001_msfc_ADT-A01-01.hl7");
    let (code, out, err) = hie_transform(&[&dtl, &adt]);
    assert_eq!(code, 0, "{err}");
    let out = String::from_utf8(out).unwrap();
    let ids: Vec<&str> = out.lines().map(|l| &l[..3]).collect();
    // create="new": the assigned segments only, in assign order (DRG, UB1, UB2 absent).
    assert_eq!(
        ids,
        [
            "MSH", "EVN", "PID", "PD1", "NK1", "PV1", "PV2", "DB1", "OBX", "AL1", "DG1", "PR1",
            "ROL", "GT1", "IN1", "IN2", "RF1", "ACC"
        ]
    );
    assert!(
        out.lines().nth(2).unwrap().contains("|NEWNAME^ADAM^"),
        "{out}"
    );
    let (code, raw, _) = hie_transform(&[&dtl, &adt, "--raw"]);
    assert_eq!(code, 0);
    assert_eq!(raw, out.replace('\n', "\r").into_bytes());
    let (code, diff, err) = hie_transform(&[&dtl, &adt, "--diff"]);
    assert_eq!(code, 0, "{err}");
    let diff = String::from_utf8(diff).unwrap();
    assert!(
        diff.starts_with(&format!(
            "{adt}#1\n  MSH(1)-5: \"EHRApp^1.Edu^ISO\" -> \"TEST\"\n  - SFT(1)\n"
        )),
        "{diff}"
    );
    assert!(
        diff.contains("  PID(1)-5: \"EVERYMAN&&&&Aniston^ADAM"),
        "{diff}"
    );
}

#[test]
fn transform_finds_a_toml_class_by_name_and_reports_its_trace() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("fix.toml"),
        "transform = \"Trust.Fix\"\ntarget_doc_type = \"2.5:ORU_R01\"\ncreate = \"copy\"\nactions = [\n  \
         { assign = \"target.{MSH:ReceivingApplication}\", value = '\"PAS\"' },\n  \
         { trace = '\"control id \"_source.{MSH:10}' },\n]\n",
    )
    .unwrap();
    let oru = corpus("hl7/037_hl7_2_oru_r01.hl7");
    let folder = dir.path().display().to_string();
    let (code, out, err) = hie_transform(&["Trust.Fix", &oru, "--rules-path", &folder, "--diff"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        String::from_utf8(out).unwrap(),
        format!("{oru}#1\n  MSH(1)-5: \"EHR\" -> \"PAS\"\n")
    );
    assert!(err.contains("trace: control id MSG00042"), "{err}");
}

#[test]
fn transform_exit_statuses_say_what_failed() {
    let adt = corpus("hl7/001_msfc_ADT-A01-01.hl7");
    let mqtt = corpus("iris/dtl/irisdemo-mqtt_IRISDemo.DTL.MQTTHeartRateToHL7.cls");
    let (code, _, err) = hie_transform(&[&mqtt, &adt]);
    assert_eq!(code, 1);
    assert!(
        err.contains(":20: class IRISDemo.DTL.MQTTHeartRateToHL7: <code>: ObjectScript blocks"),
        "{err}"
    );
    let (code, _, err) = hie_transform(&[&mqtt, &adt, "--skip-code"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("sourceClass=\"EnsLib.EDI.XML.Document\""),
        "{err}"
    );
    let dtl = corpus("iris/dtl/ensdemo_Demo.HL7.MsgRouter.ADTLastNameTransform.xml");
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.hl7");
    std::fs::write(&empty, "").unwrap();
    let (code, _, err) = hie_transform(&[&dtl, &empty.display().to_string()]);
    assert_eq!(code, 2, "{err}");
    std::fs::write(
        dir.path().join("bad.toml"),
        "transform = \"T.Bad\"\ncreate = \"copy\"\nactions = [{ assign = \"target.{PID:3(9999)}\", value = '\"x\"' }]\n",
    )
    .unwrap();
    let folder = dir.path().display().to_string();
    let (code, _, err) = hie_transform(&["T.Bad", &adt, "--rules-path", &folder]);
    assert_eq!(code, 3);
    assert!(err.contains("transform T.Bad, line 3:"), "{err}");
}
