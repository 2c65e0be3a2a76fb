//! hie-hl7 benchmarks, with the `mllp` 0.3 and `hl7-parser` 0.3 crates doing the same work
//! in the same groups so ratios are measured side by side.
//!
//! Groups (each declares its throughput; each checks, before timing, that hie and the
//! peers agree on a field value of the input):
//! - `hl7_scan_corpus`: scan every corpus message (bytes/s) — target ≥ 3 GB/s and ≥ 10×
//!   the fastest peer; `hl7_scan_corpus_msgs` the same in messages/s.
//! - `hl7_scan_adt300`, `hl7_scan_oru100k`: one ~300-byte ADT, one ~100 KB ORU.
//! - `hl7_lookup`: one field on a scanned/parsed message (target < 50 ns).
//! - `hl7_ack`: build an ACK into a reused buffer (target < 300 ns).
//! - `hl7_edit`: one-field edit with the writer, against a plain copy of the message.
//! - `hl7_reattach`: re-attaching a detached `ScanIndex` versus scanning again.
//! - `hl7_validate`: UTF-8 validation of the ORU (bytes/s).
//!
//! Run: `cargo bench -p hie-bench --bench hl7` (add `-- --quick` for a short run).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hie_bench::{ADT_A01, corpus_messages, obx_count, oru_r01};
use hie_hl7::{AckBuilder, AckCode, Message, MessageWriter, Path};
use std::hint::black_box;

/// Corpus messages every parser accepts and reads the same MSH-10 from, as text for the
/// peers (which take `&str`). Messages a peer rejects or misreads (hl7-parser takes the
/// 2.7 truncation character for a field separator) are left out of the comparison.
fn common_corpus() -> Vec<String> {
    let all = corpus_messages();
    let total = all.len();
    let common: Vec<String> = all
        .into_iter()
        .filter_map(|m| String::from_utf8(m).ok())
        .filter(|s| agree(s))
        .collect();
    eprintln!(
        "corpus: {} of {total} messages parsed alike by all three crates",
        common.len()
    );
    assert!(
        common.len() * 10 >= total * 9,
        "peers reject too much of the corpus to compare"
    );
    common
}

fn agree(s: &str) -> bool {
    let Ok(ours) = Message::scan(s.as_bytes()) else {
        return false;
    };
    let ours = ours.control_id().unwrap_or_default();
    let Ok(m) = mllp::Message::parse(s) else {
        return false;
    };
    let Ok(h) = hl7_parser::Message::parse_with_lenient_newlines(s, true) else {
        return false;
    };
    let theirs_mllp = m.field("MSH-10").map(|f| f.value()).unwrap_or_default();
    let theirs_h = h
        .segment("MSH")
        .and_then(|x| x.field(10))
        .map(|f| f.raw_value())
        .unwrap_or_default();
    theirs_mllp.as_bytes() == ours && theirs_h.as_bytes() == ours
}

fn scan_group(c: &mut Criterion, name: &str, inputs: &[String]) {
    let bytes: u64 = inputs.iter().map(|s| s.len() as u64).sum();
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function("hie", |b| {
        b.iter(|| {
            let mut n = 0;
            for s in inputs {
                n += Message::scan(black_box(s.as_bytes()))
                    .unwrap()
                    .segment_count();
            }
            n
        })
    });
    g.bench_function("mllp", |b| {
        b.iter(|| {
            let mut n = 0;
            for s in inputs {
                n += mllp::Message::parse(black_box(s)).unwrap().segments().len();
            }
            n
        })
    });
    g.bench_function("hl7-parser", |b| {
        b.iter(|| {
            let mut n = 0;
            for s in inputs {
                n += hl7_parser::Message::parse_with_lenient_newlines(black_box(s), true)
                    .unwrap()
                    .segments()
                    .count();
            }
            n
        })
    });
    g.finish();
}

fn scan(c: &mut Criterion) {
    let corpus = common_corpus();
    let ours: usize = corpus
        .iter()
        .map(|s| Message::scan(s.as_bytes()).unwrap().segment_count())
        .sum();
    let theirs: usize = corpus
        .iter()
        .map(|s| mllp::Message::parse(s).unwrap().segments().len())
        .sum();
    assert_eq!(ours, theirs, "segment counts differ from mllp");
    scan_group(c, "hl7_scan_corpus", &corpus);
    let mut g = c.benchmark_group("hl7_scan_corpus_msgs");
    g.throughput(Throughput::Elements(corpus.len() as u64));
    g.bench_function("hie", |b| {
        b.iter(|| {
            corpus
                .iter()
                .map(|s| {
                    Message::scan(black_box(s.as_bytes()))
                        .unwrap()
                        .segment_count()
                })
                .sum::<usize>()
        })
    });
    g.finish();
    let adt = String::from_utf8(ADT_A01.to_vec()).unwrap();
    scan_group(c, "hl7_scan_adt300", std::slice::from_ref(&adt));
    let oru = String::from_utf8(oru_r01(100_000)).unwrap();
    scan_group(c, "hl7_scan_oru100k", std::slice::from_ref(&oru));
}

fn lookup(c: &mut Criterion) {
    let adt = std::str::from_utf8(ADT_A01).unwrap();
    let oru_bytes = oru_r01(100_000);
    let oru = std::str::from_utf8(&oru_bytes).unwrap();
    let last = obx_count(&oru_bytes);
    let (m_adt, m_oru) = (
        Message::scan(ADT_A01).unwrap(),
        Message::scan(&oru_bytes).unwrap(),
    );
    let (l_adt, l_oru) = (
        mllp::Message::parse(adt).unwrap(),
        mllp::Message::parse(oru).unwrap(),
    );
    let (h_adt, h_oru) = (
        hl7_parser::Message::parse_with_lenient_newlines(adt, true).unwrap(),
        hl7_parser::Message::parse_with_lenient_newlines(oru, true).unwrap(),
    );
    let pid51 = Path::parse("PID-5.1").unwrap();
    let obx5 = Path::field_of(*b"OBX", 5).with_occurrence(last as u32);
    let pid3 = Path::parse("PID-3[2].1").unwrap();

    assert_eq!(m_adt.get(&pid51), Some(&b"EVERYMAN"[..]));
    assert_eq!(
        l_adt.field("PID-5").and_then(|f| f.component(1)),
        Some("EVERYMAN")
    );
    assert_eq!(
        h_adt
            .segment("PID")
            .and_then(|s| s.field(5))
            .and_then(|f| f.component(1))
            .map(|c| c.raw_value()),
        Some("EVERYMAN")
    );
    assert_eq!(m_adt.get(&pid3), Some(&b"123456789"[..]));
    assert_eq!(m_oru.get(&obx5), Some(&b"LAST"[..]));
    assert_eq!(
        l_oru
            .segments_named("OBX")
            .nth(last - 1)
            .and_then(|s| s.field(5))
            .map(|f| f.value()),
        Some("LAST")
    );
    assert_eq!(
        h_oru
            .segment_n("OBX", last)
            .and_then(|s| s.field(5))
            .map(|f| f.raw_value()),
        Some("LAST")
    );

    let mut g = c.benchmark_group("hl7_lookup");
    g.throughput(Throughput::Elements(1));
    g.bench_function("hie/adt PID-5.1", |b| {
        b.iter(|| black_box(&m_adt).get(black_box(&pid51)))
    });
    g.bench_function("hie/adt PID-3[2].1", |b| {
        b.iter(|| black_box(&m_adt).get(black_box(&pid3)))
    });
    g.bench_function("hie/adt MSH-10 accessor", |b| {
        b.iter(|| black_box(&m_adt).control_id())
    });
    g.bench_function("mllp/adt PID-5.1", |b| {
        b.iter(|| {
            black_box(&l_adt)
                .field("PID-5")
                .and_then(|f| f.component(1))
        })
    });
    g.bench_function("hl7-parser/adt PID-5.1", |b| {
        b.iter(|| {
            black_box(&h_adt)
                .segment("PID")
                .and_then(|s| s.field(5))
                .and_then(|f| f.component(1))
                .map(|c| c.raw_value())
        })
    });
    g.bench_function("hie/oru100k last OBX-5", |b| {
        b.iter(|| black_box(&m_oru).get(black_box(&obx5)))
    });
    g.bench_function("mllp/oru100k last OBX-5", |b| {
        b.iter(|| {
            black_box(&l_oru)
                .segments_named("OBX")
                .nth(last - 1)
                .and_then(|s| s.field(5))
                .map(|f| f.value())
        })
    });
    g.bench_function("hl7-parser/oru100k last OBX-5", |b| {
        b.iter(|| {
            black_box(&h_oru)
                .segment_n("OBX", last)
                .and_then(|s| s.field(5))
                .map(|f| f.raw_value())
        })
    });
    g.finish();
}

fn ack(c: &mut Criterion) {
    let m = Message::scan(ADT_A01).unwrap();
    let l = mllp::Message::parse(std::str::from_utf8(ADT_A01).unwrap()).unwrap();
    let mut builder = AckBuilder::new();
    let mut out = Vec::with_capacity(512);
    builder.write_ack(&mut out, &m, AckCode::AA, None);
    assert_eq!(
        Message::scan(&out).unwrap().acked_control_id(),
        Some(&b"MSG00001"[..])
    );
    let ctx = mllp::AckContext::from_message(&l);
    let theirs = mllp::build_ack(&ctx, mllp::AckCode::Accept, "1", "", l.separators());
    assert_eq!(
        mllp::Message::parse(&theirs)
            .unwrap()
            .value("MSA-2")
            .as_deref(),
        Some("MSG00001")
    );

    let mut g = c.benchmark_group("hl7_ack");
    g.throughput(Throughput::Elements(1));
    g.bench_function("hie/write_ack AA", |b| {
        b.iter(|| {
            out.clear();
            builder.write_ack(&mut out, black_box(&m), AckCode::AA, None);
            out.len()
        })
    });
    let err = hie_hl7::ErrDetail {
        code: 101,
        severity: b'E',
        location: Some("PID^1^3"),
        text: "Required field missing",
    };
    g.bench_function("hie/write_ack AE with ERR", |b| {
        b.iter(|| {
            out.clear();
            builder.write_ack(&mut out, black_box(&m), AckCode::AE, Some(&err));
            out.len()
        })
    });
    g.bench_function("mllp/build AA (context from parsed message)", |b| {
        b.iter(|| {
            let ctx = mllp::AckContext::from_message(black_box(&l));
            mllp::build_ack(&ctx, mllp::AckCode::Accept, "1", "", l.separators()).len()
        })
    });
    g.finish();
}

fn edit(c: &mut Criterion) {
    let oru = oru_r01(100_000);
    let path = Path::parse("PID-5.2").unwrap();
    let mut out = Vec::with_capacity(oru.len() + 64);
    for bytes in [ADT_A01, &oru[..]] {
        let m = Message::scan(bytes).unwrap();
        let mut w = MessageWriter::new(&m);
        w.set(&path, b"EVE").unwrap();
        let edited = w.to_vec();
        assert_eq!(
            Message::scan(&edited).unwrap().get(&path),
            Some(&b"EVE"[..])
        );
    }
    let mut g = c.benchmark_group("hl7_edit");
    for (name, bytes) in [("adt300", ADT_A01), ("oru100k", &oru[..])] {
        let m = Message::scan(bytes).unwrap();
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_function(format!("hie/{name} set PID-5.2 + write"), |b| {
            b.iter(|| {
                let mut w = MessageWriter::new(black_box(&m));
                w.set(&path, b"EVE").unwrap();
                out.clear();
                w.write(&mut out);
                out.len()
            })
        });
        g.bench_function(format!("baseline/{name} copy"), |b| {
            b.iter(|| {
                out.clear();
                out.extend_from_slice(black_box(bytes));
                out.len()
            })
        });
    }
    g.finish();
}

fn reattach(c: &mut Criterion) {
    let oru = oru_r01(100_000);
    let mut g = c.benchmark_group("hl7_reattach");
    g.throughput(Throughput::Elements(1));
    for (name, bytes) in [("adt300", ADT_A01), ("oru100k", &oru[..])] {
        let idx = Message::scan(bytes).unwrap().index();
        assert_eq!(
            Message::from_index(bytes, &idx).unwrap(),
            Message::scan(bytes).unwrap()
        );
        g.bench_function(format!("hie/{name} from_index"), |b| {
            b.iter(|| {
                Message::from_index(black_box(bytes), black_box(&idx))
                    .unwrap()
                    .segment_count()
            })
        });
        g.bench_function(format!("hie/{name} scan again"), |b| {
            b.iter(|| Message::scan(black_box(bytes)).unwrap().segment_count())
        });
    }
    g.finish();
}

fn validate(c: &mut Criterion) {
    let oru = oru_r01(100_000);
    let m = Message::scan(&oru).unwrap();
    assert_eq!(m.validate_text(), Ok(()));
    let mut g = c.benchmark_group("hl7_validate");
    g.throughput(Throughput::Bytes(oru.len() as u64));
    g.bench_function("hie/oru100k validate_text", |b| {
        b.iter(|| black_box(&m).validate_text())
    });
    g.bench_function("std/oru100k str::from_utf8", |b| {
        b.iter(|| std::str::from_utf8(black_box(&oru)).is_ok())
    });
    g.finish();
}

criterion_group!(benches, scan, lookup, ack, edit, reattach, validate);
criterion_main!(benches);
