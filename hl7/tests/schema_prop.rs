//! Property tests of schema placement: any sequence of segment ids, in any structure
//! of any version, places without panicking; every segment gets a path, and that path
//! finds exactly that segment; counts agree with `find`.

use hie_hl7::schema::{Step, place, schema, versions};
use proptest::prelude::*;

/// Ids drawn mostly from segments the structures know, with Z-segments and junk.
fn segment_id() -> impl Strategy<Value = [u8; 3]> {
    let known: Vec<[u8; 3]> = [
        "MSH", "EVN", "PID", "PD1", "NK1", "PV1", "PV2", "ORC", "OBR", "OBX", "NTE", "TQ1", "SPM",
        "IN1", "IN2", "AL1", "DG1", "RGS", "AIS", "AIL", "SCH", "RXO", "ZDS", "ZPI",
    ]
    .iter()
    .map(|s| s.as_bytes().try_into().unwrap())
    .collect();
    prop_oneof![
        8 => prop::sample::select(known),
        1 => any::<[u8; 3]>(),
    ]
}

fn parse_steps(path: &str) -> Vec<Step<'_>> {
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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_segments_place_and_each_path_finds_its_segment(
        version in prop::sample::select(versions().collect::<Vec<_>>()),
        structure in prop::sample::select(vec!["ADT_A01", "ORU_R01", "ORM_O01", "SIU_S12", "ACK", "MDM_T02"]),
        ids in prop::collection::vec(segment_id(), 0..40),
    ) {
        let Some(st) = schema(version).unwrap().structure(structure) else {
            return Ok(());
        };
        let p = place(st, &ids);
        for (k, id) in ids.iter().enumerate() {
            let path = p.path_of(k).expect("every segment is placed");
            if !id.iter().all(u8::is_ascii_alphanumeric) {
                continue; // a junk id ("(.)", bytes) cannot be written in a path
            }
            let mut out = Vec::new();
            p.find(&parse_steps(&path), &mut out);
            prop_assert_eq!(out, vec![k], "{}", path);
        }
        // Whole-message find returns every segment once, in order.
        let mut all = Vec::new();
        p.find(&[], &mut all);
        prop_assert_eq!(all, (0..ids.len()).collect::<Vec<_>>());
        prop_assert!(p.unexpected() <= ids.len());
    }
}
