//! Routing-rule evaluation per message: a 10-rule set (constraints, numeric and named
//! paths, a group path, infix functions, fan-out without `return`, an `otherwise`) over
//! every corpus message, on the scan index the service made (re-attached, as the router
//! does), beside the scan alone as the baseline in the same group.
//!
//! Group `rules_eval_corpus` (throughput in messages): `scan` scans each message;
//! `rules` re-attaches its index and evaluates the rule set. Before timing, the bench
//! checks that the rules send the corpus where a plain reading of the rules says.
//! Target (issue #17): evaluation < 1 µs per message.
//!
//! Run: `cargo bench -p hie-bench --bench rules` (add `-- --quick` for a short run).

use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hie_bench::corpus_messages;
use hie_core::rules::{CompiledRules, Input, Lookups, Outcome, Resources, read_rule_file};
use hie_hl7::{Message, ScanIndex};
use std::hint::black_box;

const RULES: &str = r#"
class = "Bench.TenRules"
[[rule_set]]
name = "ten"
[[rule_set.rule]]
name = "ADT admissions"
doc_name = "ADT_A01,ADT_A04"
[[rule_set.rule.when]]
condition = 'HL7.{PV1:2}="E"'
actions = [{ send = "ED" }]
[[rule_set.rule.when]]
condition = 'HL7.{PV1:2} In "I,O"'
actions = [{ send = "Wards" }]
[[rule_set.rule]]
name = "ADT updates"
doc_name = "ADT_A08,ADT_A31"
[[rule_set.rule.when]]
condition = 'HL7.{MSH:SendingFacility.NamespaceID} StartsWith "GHH"'
actions = [{ send = "PAS" }]
[[rule_set.rule]]
name = "Lab results"
doc_name = "ORU_R01"
[[rule_set.rule.when]]
condition = 'HL7.{PIDgrpgrp(1).ORCgrp(1).OBR:4.1}!="" && HL7.{OBX(1):2}="NM"'
actions = [{ send = "Results" }]
[[rule_set.rule]]
name = "Orders"
doc_name = "ORM_O01,OML_O21"
[[rule_set.rule.when]]
condition = '1'
actions = [{ send = "Orders" }]
[[rule_set.rule]]
name = "Scheduling"
doc_name = "SIU_S12,SIU_S14"
[[rule_set.rule.when]]
condition = 'HL7.{MSH:3} Contains "App"'
actions = [{ send = "Scheduling" }]
[[rule_set.rule]]
name = "Test patients"
[[rule_set.rule.when]]
condition = 'HL7.{PID:PatientName(1).FamilyName} StartsWith "ZZZ" || HL7.{PID:5.1}="TEST"'
actions = [{ send = "Quarantine" }, { return = true }]
[[rule_set.rule]]
name = "Version 2.3 feed"
[[rule_set.rule.when]]
condition = 'HL7.{MSH:12} = "2.3" || HL7.{MSH:12} = "2.3.1"'
actions = [{ send = "Legacy" }]
[[rule_set.rule]]
name = "Billing"
doc_name = "DFT_P03,BAR_P01"
[[rule_set.rule.when]]
condition = '1'
actions = [{ send = "Billing" }]
[[rule_set.rule]]
name = "Audit"
[[rule_set.rule.when]]
condition = 'HL7.{MSH:11} = "P" && Length(HL7.{MSH:10}) > 0'
actions = [{ send = "Audit" }]
[[rule_set.rule]]
name = "Everything else"
otherwise = [{ send = "Archive" }]
[[rule_set.rule.when]]
condition = '0'
actions = [{ send = "Never" }]
"#;

fn compile() -> CompiledRules {
    let file = Path::new("bench.toml");
    let classes = read_rule_file(RULES, file).expect("rules read");
    let lookups = Lookups::default();
    CompiledRules::compile(
        &classes[0],
        file,
        Resources {
            lookups: &lookups,
            folders: &[],
        },
    )
    .expect("rules compile")
}

const NOW: &str = "2026-06-01T12:00:00";

fn evaluate_all(
    rules: &CompiledRules,
    corpus: &[(Vec<u8>, ScanIndex)],
    out: &mut Outcome,
) -> usize {
    let mut sent = 0;
    for (bytes, index) in corpus {
        let m = Message::from_index(bytes, index).expect("index fits");
        let version = m.version().unwrap_or_default();
        let category = std::str::from_utf8(version).unwrap_or("");
        let input = Input {
            message: &m,
            source: "In",
            category,
            now: NOW,
        };
        rules.evaluate(&input, out);
        sent += out.decisions.len();
    }
    sent
}

fn bench_rules(c: &mut Criterion) {
    let rules = compile();
    let corpus: Vec<(Vec<u8>, ScanIndex)> = corpus_messages()
        .into_iter()
        .filter_map(|b| {
            let index = Message::scan(&b).ok()?.into_index();
            Some((b, index))
        })
        .collect();
    let mut out = Outcome::new(false);
    // Checked before timing: every message goes somewhere (Archive or Audit at least),
    // and the ADT admissions in the corpus reach the wards or ED.
    let sent = evaluate_all(&rules, &corpus, &mut out);
    assert!(
        sent >= corpus.len(),
        "{sent} decisions for {} messages",
        corpus.len()
    );
    let adt = b"MSH|^~\\&|A|GHH|C|D|20260101||ADT^A01|X|P|2.5\rPID|1||1||DOE\rPV1|1|E\r";
    let m = Message::scan(adt).unwrap();
    rules.evaluate(
        &Input {
            message: &m,
            source: "In",
            category: "2.5",
            now: NOW,
        },
        &mut out,
    );
    let targets: Vec<&str> = out
        .decisions
        .iter()
        .map(|d| rules.targets()[d.target as usize].as_str())
        .collect();
    assert_eq!(targets, ["ED", "Audit", "Archive"]);

    let mut g = c.benchmark_group("rules_eval_corpus");
    g.throughput(Throughput::Elements(corpus.len() as u64));
    g.bench_function("scan", |b| {
        b.iter(|| {
            let mut n = 0;
            for (bytes, _) in &corpus {
                n += Message::scan(black_box(bytes)).map_or(0, |m| m.segment_count());
            }
            n
        })
    });
    g.bench_function("rules", |b| {
        b.iter(|| evaluate_all(&rules, black_box(&corpus), &mut out))
    });
    g.finish();
}

criterion_group!(benches, bench_rules);
criterion_main!(benches);
