//! DTL transform throughput: a 5-assign DTL (`create="copy"`, named and numeric paths,
//! a concatenation and a function) on a ~1 KB ORU^R01, beside scanning the same message
//! alone (the baseline every transform starts from).
//!
//! Group `transform` (checks the output before timing):
//! - `scan_alone`: `Message::scan` of the input.
//! - `scan_and_transform_5_assign`: scan, run the compiled DTL, write the output.
//!
//! Run: `cargo bench -p hie-bench --bench transform` (add `-- --quick` for a short run).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hie_bench::oru_r01;
use hie_core::rules::library::Library;
use hie_hl7::Message;
use std::hint::black_box;

const DTL: &str = r#"transform = "Bench.Five"
source_doc_type = "2.5.1:ORU_R01"
target_doc_type = "2.5.1:ORU_R01"
create = "copy"
actions = [
  { assign = "target.{MSH:ReceivingApplication}", value = '"PAS"' },
  { assign = "target.{MSH:10}", value = 'source.{MSH:10}_"-T"' },
  { assign = "target.{PID:PatientName(1).FamilyName}", value = '..ToLower(source.{PID:5.1})' },
  { assign = "target.{PID:8}", value = '"U"' },
  { assign = "target.{OBR:4.2}", value = '"BMP"' },
]
"#;

fn transform(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("five.toml"), DTL).unwrap();
    let lib = Library::load(&[dir.path().to_path_buf()]);
    let t = lib.compile_transform("Bench.Five", false).unwrap();
    let input = oru_r01(1024);
    let m = Message::scan(&input).unwrap();
    let out = t.run(&m, lib.lookups()).unwrap().message;
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.contains("|PAS|") && text.contains("ORU00001-T") && text.contains("|everyman^ADAM")
    );
    // MSH-5 HIE->PAS, MSH-10 +"-T", OBR-4.2 "BASIC METABOLIC PANEL"->"BMP".
    assert_eq!(out.len(), input.len() + 2 - 18);

    let mut g = c.benchmark_group("transform");
    g.throughput(Throughput::Elements(1));
    g.bench_function("scan_alone", |b| {
        b.iter(|| Message::scan(black_box(&input)).map(|m| m.segment_count()))
    });
    g.bench_function("scan_and_transform_5_assign", |b| {
        b.iter(|| {
            let m = Message::scan(black_box(&input)).unwrap();
            t.run(&m, lib.lookups()).map(|o| o.message.len())
        })
    });
    g.finish();
}

criterion_group!(benches, transform);
criterion_main!(benches);
