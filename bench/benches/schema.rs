//! hie-hl7 schema benchmarks: resolving IRIS names to numbers and placing a message's
//! segments in its structure's groups.
//!
//! Groups (each checks its result before timing):
//! - `schema_lookup`: one field name, one component name, IRIS's 28-character cut and
//!   a trigger-event map, beside parsing the numeric path they stand for (baseline).
//! - `schema_place`: placing a ~1 KB ORU^R01's segments (messages/s), beside scanning
//!   the same message (baseline), and one group-path `find` on the placement.
//!
//! Run: `cargo bench -p hie-bench --bench schema` (add `-- --quick` for a short run).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hie_bench::oru_r01;
use hie_hl7::schema::{Placed, Step, schema};
use hie_hl7::{Message, Path};
use std::hint::black_box;

fn lookup(c: &mut Criterion) {
    let s = schema("2.5.1").unwrap();
    assert_eq!(s.field("PID", "PatientIdentifierList"), Some(3));
    assert_eq!(s.component("PID", 5, "FamilyName"), Some(1));
    assert_eq!(s.field("MSH", "ApplicationAcknowledgmentTyp"), Some(16));
    assert_eq!(s.structure_of("ADT", "A08"), Some("ADT_A01"));
    assert!(Path::parse("PID:3(1).1").is_ok());

    let mut g = c.benchmark_group("schema_lookup");
    g.throughput(Throughput::Elements(1));
    g.bench_function("numeric_path_parse", |b| {
        b.iter(|| Path::parse(black_box("PID:3(1).1")).is_ok())
    });
    g.bench_function("field", |b| {
        b.iter(|| s.field(black_box("PID"), black_box("PatientIdentifierList")))
    });
    g.bench_function("component", |b| {
        b.iter(|| s.component(black_box("PID"), 5, black_box("FamilyName")))
    });
    g.bench_function("field_iris_28_char_cut", |b| {
        b.iter(|| s.field(black_box("MSH"), black_box("ApplicationAcknowledgmentTyp")))
    });
    g.bench_function("structure_of", |b| {
        b.iter(|| s.structure_of(black_box("ADT"), black_box("A08")))
    });
    g.finish();
}

fn place(c: &mut Criterion) {
    let bytes = oru_r01(1024);
    let m = Message::scan(&bytes).unwrap();
    let ids: Vec<[u8; 3]> = m
        .segments()
        .map(|seg| seg.id().try_into().unwrap())
        .collect();
    let s = schema("2.5.1").unwrap();
    let oru = s.structure(s.structure_of("ORU", "R01").unwrap()).unwrap();
    let path = [
        Step {
            name: "PIDgrpgrp",
            index: Some(1),
        },
        Step {
            name: "ORCgrp",
            index: Some(1),
        },
        Step {
            name: "OBXgrp",
            index: Some(3),
        },
        Step {
            name: "OBX",
            index: None,
        },
    ];
    let mut placed = Placed::default();
    placed.place(oru, &ids);
    let mut out = Vec::new();
    placed.find(&path, &mut out);
    assert_eq!(
        out,
        [6],
        "the third OBX is segment 6 (MSH PID ORC OBR OBX...)"
    );
    assert_eq!(placed.unexpected(), 0);
    eprintln!(
        "schema_place: {} bytes, {} segments",
        bytes.len(),
        ids.len()
    );

    let mut g = c.benchmark_group("schema_place");
    g.throughput(Throughput::Elements(1));
    g.bench_function("scan_baseline", |b| {
        b.iter(|| Message::scan(black_box(&bytes)).unwrap().segment_count())
    });
    g.bench_function("place_oru_1k", |b| {
        b.iter(|| {
            placed.place(oru, black_box(&ids));
            placed.unexpected()
        })
    });
    g.bench_function("find_obx_group_path", |b| {
        b.iter(|| {
            out.clear();
            placed.find(black_box(&path), &mut out);
            out.len()
        })
    });
    g.finish();
}

criterion_group!(benches, lookup, place);
criterion_main!(benches);
