//! Schema placement on corpus messages (`../shared/corpus/hl7/`): the expected group
//! paths are written by hand from the standard's structure definitions (HL7 v2.5 /
//! 2.5.1 chapters 2, 4, 7 and 10 as hl7apy 1.3.5 transcribes them); segments a
//! version does not define there (PRT, a v2.7 segment, in a 2.5.1 ORU) stay in the
//! group being filled, as `hie_hl7::schema::place` documents. Messages of v2.8 are
//! placed with the 2.5.1 tables, as a production would name its nearest category.

use hie_hl7::Message;
use hie_hl7::schema::{Placed, Step, place, schema};
use std::path::PathBuf;

fn corpus(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/corpus/hl7")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn segment_ids(m: &Message<'_>) -> Vec<[u8; 3]> {
    m.segments()
        .map(|s| s.id().try_into().expect("3-byte segment id"))
        .collect()
}

/// Places corpus file `name` with the tables of `version` (its MSH-9 names the
/// structure) and returns each segment's path.
fn placed(name: &str, version: &str) -> (Placed, Vec<String>) {
    let bytes = corpus(name);
    let m = Message::scan(&bytes).unwrap();
    let s = schema(version).unwrap();
    let doc = |b: Option<&[u8]>| std::str::from_utf8(b.unwrap()).unwrap().to_string();
    let structure = s
        .structure_of(&doc(m.message_type()), &doc(m.trigger_event()))
        .and_then(|n| s.structure(n))
        .unwrap_or_else(|| panic!("{name}: no structure"));
    let ids = segment_ids(&m);
    let p = place(structure, &ids);
    let paths = (0..ids.len()).map(|k| p.path_of(k).unwrap()).collect();
    (p, paths)
}

fn steps(path: &str) -> Vec<Step<'_>> {
    path.split('.')
        .map(|s| match s.split_once('(') {
            Some((name, rest)) => Step {
                name,
                index: rest.trim_end_matches(')').parse().ok(),
            },
            None => Step {
                name: s,
                index: None,
            },
        })
        .collect()
}

fn find(p: &Placed, path: &str) -> Vec<usize> {
    let mut out = Vec::new();
    p.find(&steps(path), &mut out);
    out
}

#[test]
fn oru_r01_v2_5_places_patient_order_and_observations() {
    let (p, paths) = placed("037_hl7_2_oru_r01.hl7", "2.5");
    assert_eq!(
        paths,
        [
            "MSH",
            "PIDgrpgrp(1).PIDgrp.PID",
            "PIDgrpgrp(1).PIDgrp.PV1grp.PV1",
            "PIDgrpgrp(1).ORCgrp(1).ORC",
            "PIDgrpgrp(1).ORCgrp(1).OBR",
            "PIDgrpgrp(1).ORCgrp(1).OBXgrp(1).OBX",
            "PIDgrpgrp(1).ORCgrp(1).OBXgrp(2).OBX",
            "PIDgrpgrp(1).ORCgrp(1).OBXgrp(2).NTE(1)",
        ]
    );
    assert_eq!(p.unexpected(), 0);
    // The corpus rules' and DTLs' forms.
    assert_eq!(find(&p, "PIDgrpgrp(1).PIDgrp.PID"), [1]);
    assert_eq!(find(&p, "PIDgrpgrp(1).ORCgrp(1).OBR"), [4]);
    assert_eq!(find(&p, "PIDgrpgrp(1).ORCgrp(1).OBXgrp(1).OBX"), [5]);
    assert_eq!(find(&p, "PIDgrpgrp().ORCgrp().OBXgrp().OBX"), [5, 6]);
    assert_eq!(p.count(&steps("PIDgrpgrp(1).ORCgrp(1).OBXgrp")), 2);
}

#[test]
fn oru_r01_v2_4_without_visit_or_order_control() {
    let (p, paths) = placed("014_msfc_ORU-R01-RMGEAD.hl7", "2.4");
    assert_eq!(
        paths,
        [
            "MSH",
            "PIDgrpgrp(1).PIDgrp.PID",
            "PIDgrpgrp(1).ORCgrp(1).OBR",
            "PIDgrpgrp(1).ORCgrp(1).OBXgrp(1).OBX",
        ]
    );
    assert_eq!(p.unexpected(), 0);
}

#[test]
fn oru_r01_v2_5_1_keeps_later_version_segments_where_they_stand() {
    let (p, paths) = placed("013_msfc_ORU-R01-01.hl7", "2.5.1");
    let expected = [
        "MSH",
        "SFT(1)",
        "PIDgrpgrp(1).PIDgrp.PID",
        "PIDgrpgrp(1).PIDgrp.PRT(1)",
        // OBX has no place in a 2.5.1 patient group.
        "PIDgrpgrp(1).PIDgrp.OBX(1)",
        "PIDgrpgrp(1).PIDgrp.PRT(2)",
        "PIDgrpgrp(1).PIDgrp.PV1grp.PV1",
        "PIDgrpgrp(1).PIDgrp.PV1grp.PRT(1)",
        "PIDgrpgrp(1).ORCgrp(1).ORC",
        "PIDgrpgrp(1).ORCgrp(1).PRT(1)",
        // The order's OBR is missing before this OBX: the observation opens anyway.
        "PIDgrpgrp(1).ORCgrp(1).OBXgrp(1).OBX",
        "PIDgrpgrp(1).ORCgrp(1).OBXgrp(1).PRT(1)",
        "PIDgrpgrp(1).ORCgrp(1).OBXgrp(1).TXA(1)",
        // OBR cannot follow an observation in one order: it starts the next.
        "PIDgrpgrp(1).ORCgrp(2).OBR",
        "PIDgrpgrp(1).ORCgrp(2).NTE(1)",
        "PIDgrpgrp(1).ORCgrp(2).NTE(2)",
        "PIDgrpgrp(1).ORCgrp(2).PRT(1)",
        "PIDgrpgrp(1).ORCgrp(2).TQ1grp(1).TQ1",
        "PIDgrpgrp(1).ORCgrp(2).CTD",
        "PIDgrpgrp(1).ORCgrp(2).OBXgrp(1).OBX",
        "PIDgrpgrp(1).ORCgrp(2).OBXgrp(1).PRT(1)",
        "PIDgrpgrp(1).ORCgrp(2).OBXgrp(1).NTE(1)",
        "PIDgrpgrp(1).ORCgrp(2).OBXgrp(1).NTE(2)",
        "PIDgrpgrp(1).ORCgrp(2).FT1(1)",
        "PIDgrpgrp(1).ORCgrp(2).CTI(1)",
        "PIDgrpgrp(1).ORCgrp(2).SPMgrp(1).SPM",
        "PIDgrpgrp(1).ORCgrp(2).SPMgrp(1).OBX(1)",
        "PIDgrpgrp(1).ORCgrp(2).SPMgrp(1).OBX(2)",
        "PIDgrpgrp(1).ORCgrp(2).SPMgrp(1).PRT(1)",
    ];
    assert_eq!(paths, expected);
    assert_eq!(p.unexpected(), 10);
    assert_eq!(find(&p, "PIDgrpgrp(1).ORCgrp(2).SPMgrp(1).OBX(2)"), [27]);
}

#[test]
fn oru_r01_v2_3_trailing_z_segments_stay_with_the_last_observation() {
    let (p, paths) = placed("032_hl7parser_sample_oru_r01_lab.hl7", "2.3");
    assert_eq!(paths.len(), 21);
    assert_eq!(
        paths[..5],
        [
            "MSH",
            "PIDgrpgrp(1).PIDgrp.PID",
            "PIDgrpgrp(1).PIDgrp.PV1grp.PV1",
            "PIDgrpgrp(1).ORCgrp(1).ORC",
            "PIDgrpgrp(1).ORCgrp(1).OBR"
        ]
    );
    for (k, path) in paths[5..19].iter().enumerate() {
        assert_eq!(
            path,
            &format!("PIDgrpgrp(1).ORCgrp(1).OBXgrp({}).OBX", k + 1)
        );
    }
    assert_eq!(
        paths[19..],
        [
            "PIDgrpgrp(1).ORCgrp(1).OBXgrp(14).ZDR(1)",
            "PIDgrpgrp(1).ORCgrp(1).OBXgrp(14).ZPR(1)",
        ]
    );
    assert_eq!(p.unexpected(), 2);
    assert_eq!(p.count(&steps("PIDgrpgrp(1).ORCgrp(1).OBXgrp")), 14);
}

#[test]
fn oml_o21_v2_5_orders_repeat_at_the_top() {
    let (p, paths) = placed("066_hapi_example_oml_o21_msg10.hl7", "2.5");
    let mut expected = vec!["MSH".to_string(), "PIDgrp.PID".to_string()];
    for n in 1..=3 {
        expected.push(format!("ORCgrp({n}).ORC"));
        expected.push(format!("ORCgrp({n}).TQ1grp(1).TQ1"));
        expected.push(format!("ORCgrp({n}).OBRgrp.OBR"));
        expected.push(format!("ORCgrp({n}).OBRgrp.SPMgrp(1).SPM"));
    }
    assert_eq!(paths, expected);
    assert_eq!(p.unexpected(), 0);
    assert_eq!(p.count(&steps("ORCgrp")), 3);
    assert_eq!(find(&p, "ORCgrp(2)"), [6, 7, 8, 9]);
}

#[test]
fn siu_s12_v2_8_places_with_2_5_1_resources() {
    let (p, paths) = placed("016_msfc_SIU-S12-01.hl7", "2.5.1");
    assert_eq!(
        paths,
        [
            "MSH",
            "SCH",
            "TQ1(1)",
            "NTE(1)",
            "PIDgrp(1).PID",
            "PIDgrp(1).PV1",
            "PIDgrp(1).PV2",
            "PIDgrp(1).OBX(1)",
            "PIDgrp(1).DG1(1)",
            "RGSgrp(1).RGS",
            "RGSgrp(1).AISgrp(1).AIS",
            "RGSgrp(1).AISgrp(1).NTE(1)",
            "RGSgrp(1).AISgrp(1).NTE(2)",
            "RGSgrp(1).AIGgrp(1).AIG",
            "RGSgrp(1).AIGgrp(1).NTE(1)",
            "RGSgrp(1).AILgrp(1).AIL",
            "RGSgrp(1).AILgrp(1).NTE(1)",
            "RGSgrp(1).AIPgrp(1).AIP",
        ]
    );
    assert_eq!(p.unexpected(), 0);
}

#[test]
fn siu_s14_uses_the_siu_s12_structure_and_repeats_resource_groups() {
    let (p, paths) = placed("017_msfc_SIU-S14-02.hl7", "2.5.1");
    assert_eq!(p.structure().unwrap().name(), "SIU_S12");
    let mut expected: Vec<String> = ["MSH", "SCH", "TQ1(1)", "NTE(1)", "PIDgrp(1).PID"]
        .map(String::from)
        .to_vec();
    for n in 1..=2 {
        expected.push(format!("RGSgrp({n}).RGS"));
        for r in ["AIS", "AIG", "AIL", "AIP"] {
            expected.push(format!("RGSgrp({n}).{r}grp(1).{r}"));
            expected.push(format!("RGSgrp({n}).{r}grp(1).NTE(1)"));
        }
    }
    expected.push("RGSgrp(3).RGS".into());
    for r in ["AIL", "AIP"] {
        expected.push(format!("RGSgrp(3).{r}grp(1).{r}"));
        expected.push(format!("RGSgrp(3).{r}grp(1).NTE(1)"));
    }
    assert_eq!(paths, expected);
    assert_eq!(p.count(&steps("RGSgrp")), 3);
    assert_eq!(p.count(&steps("RGSgrp(3).AISgrp")), 0);
}

#[test]
fn adt_a01_v2_8_places_with_2_5_1_groups() {
    let (p, paths) = placed("001_msfc_ADT-A01-01.hl7", "2.5.1");
    assert_eq!(
        paths,
        [
            "MSH",
            "SFT(1)",
            "EVN",
            "PID",
            "PD1",
            // ARV is a v2.6 segment.
            "ARV(1)",
            "ROL(1)",
            "NK1(1)",
            "PV1",
            "PV2",
            "ARV(2)",
            "ROL(2)",
            "DB1(1)",
            "OBX(1)",
            "AL1(1)",
            "DG1(1)",
            "PR1grp(1).PR1",
            "PR1grp(1).ROL(1)",
            "GT1(1)",
            "IN1grp(1).IN1",
            "IN1grp(1).IN2",
            // RF1 (v2.6) is not expected in the insurance group; ACC is the next.
            "IN1grp(1).RF1(1)",
            "ACC",
            "PDA",
        ]
    );
    assert_eq!(p.unexpected(), 3);
    // The corpus DTL's whole-group and whole-segment copies.
    assert_eq!(find(&p, "PR1grp(1)"), [16, 17]);
    assert_eq!(find(&p, "IN1grp(1)"), [19, 20, 21]);
    assert_eq!(find(&p, "NK1(1)"), [7]);
    assert_eq!(find(&p, "PID"), [3]);
}

#[test]
fn every_corpus_message_places_and_each_path_finds_its_segment() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/hl7");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|x| x != "hl7") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        for msg in hie_hl7::Batch::new(&bytes) {
            let Ok(m) = Message::scan(msg) else { continue };
            let version = m.version().and_then(|v| std::str::from_utf8(v).ok());
            let s = version.and_then(schema).unwrap_or(schema("2.5.1").unwrap());
            let text = |b: Option<&'_ [u8]>| -> String {
                String::from_utf8_lossy(b.unwrap_or_default()).into_owned()
            };
            let name = s.structure_of(&text(m.message_type()), &text(m.trigger_event()));
            let Some(structure) = name.and_then(|n| s.structure(n)) else {
                continue;
            };
            let ids: Vec<[u8; 3]> = m
                .segments()
                .filter_map(|g| g.id().try_into().ok())
                .collect();
            let p = place(structure, &ids);
            for k in 0..ids.len() {
                let at = p
                    .path_of(k)
                    .unwrap_or_else(|| panic!("{path:?}: segment {k} not placed"));
                let found = find(&p, &at);
                assert!(
                    found.contains(&k),
                    "{path:?}: {at} finds {found:?}, not {k}"
                );
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 40,
        "only {checked} corpus messages had a structure"
    );
}
