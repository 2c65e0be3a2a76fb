//! The engine end to end, durable: a production (MLLP service → router → MLLP operation)
//! running in this process, driven by `hie-loadgen` (sender and downstream sink); every
//! message is fsynced to the WAL before its ACK, routed, delivered and acknowledged
//! downstream; a sample is the time from the first send until every message of the
//! sample has arrived at the sink.
//!
//! - `engine_e2e_fsync`: one shard pinned to the first core, the load generator pinned to
//!   the second (the issue's setup).
//! - `engine_e2e_fsync_2_shards`: two shards on the two cores, the service's port shared
//!   by both (`PoolSize` 2), the operation's instances spread over both; the load
//!   generator is unpinned and shares the cores with them (on a 2-core machine there is
//!   no core left for it), so this shows what a second shard gives when the load
//!   generator has to share, not the engine's scaling.
//!
//! - `engine_e2e_filter`: one shard as in the first group, ADT only, the router's cost:
//!   `forward_adt_300B` forwards every message to `TargetConfigNames` (as the first
//!   group), `rules10_adt_300B` runs a 10-rule class (`BusinessRuleName`: constraints,
//!   numeric and named paths, infix functions, fan-out to the same target, an
//!   `otherwise`) that sends each message to the same operation. Issue #17's target: the
//!   second within 10 % of the first. Run only this group with `-- filter`. Criterion
//!   runs the two cases one after the other in one process, and the first case of a
//!   process measured faster; `bench/scripts/filter_cost.sh` runs each case in a process
//!   of its own, alternating, for the comparison.
//!
//! Messages: a 300-byte ADT^A01 and a ~10 KB ORU^R01; 64 sender connections, closed loop.
//! The loadgen end-to-end report of the last sample of each input (rate, latency from send
//! to arrival downstream, lost, duplicated, reordered) is printed beside criterion's
//! figures. Results are checked before they count: every message acknowledged AA, and
//! every one received downstream.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hie_core::engine::RunningEngine;
use hie_core::engine::options::{EngineOverrides, engine_options, load_production};
use hie_loadgen::{E2eOptions, Executors, SendOptions, Source, TemplateKind, run_e2e};

const CONNECTIONS: usize = 64;
const MESSAGES_PER_SAMPLE: u64 = 20_000;

/// The rule class of `engine_e2e_filter`'s `rules10` case: ten rules, each evaluated for
/// an ADT^A01 of the load generator (version 2.5.1, PV1-2 `I`, MSH-11 `P`), three of which
/// send it to `Out` (once: a target decided twice gets the message once).
const TEN_RULES: &str = r#"
class = "Bench.TenRules"
[[rule_set]]
name = "ten"
[[rule_set.rule]]
name = "ADT admissions"
doc_name = "ADT_A01,ADT_A04"
[[rule_set.rule.when]]
condition = 'HL7.{PV1:2}="E"'
actions = [{ send = "Out" }]
[[rule_set.rule.when]]
condition = 'HL7.{PV1:2} In "I,O"'
actions = [{ send = "Out" }]
[[rule_set.rule]]
name = "ADT updates"
doc_name = "ADT_A08,ADT_A31"
[[rule_set.rule.when]]
condition = 'HL7.{MSH:SendingFacility.NamespaceID} StartsWith "GHH"'
actions = [{ send = "Out" }]
[[rule_set.rule]]
name = "Lab results"
doc_name = "ORU_R01"
[[rule_set.rule.when]]
condition = 'HL7.{PIDgrpgrp(1).ORCgrp(1).OBR:4.1}!="" && HL7.{OBX(1):2}="NM"'
actions = [{ send = "Out" }]
[[rule_set.rule]]
name = "Orders"
doc_name = "ORM_O01,OML_O21"
[[rule_set.rule.when]]
condition = '1'
actions = [{ send = "Out" }]
[[rule_set.rule]]
name = "Scheduling"
doc_name = "SIU_S12,SIU_S14"
[[rule_set.rule.when]]
condition = 'HL7.{MSH:3} Contains "App"'
actions = [{ send = "Out" }]
[[rule_set.rule]]
name = "Test patients"
[[rule_set.rule.when]]
condition = 'HL7.{PID:PatientName(1).FamilyName} StartsWith "ZZZ" || HL7.{PID:5.1}="TEST"'
actions = [{ send = "Out" }, { return = true }]
[[rule_set.rule]]
name = "Version 2.3 feed"
[[rule_set.rule.when]]
condition = 'HL7.{MSH:12} = "2.3" || HL7.{MSH:12} = "2.3.1"'
actions = [{ send = "Out" }]
[[rule_set.rule]]
name = "Billing"
doc_name = "DFT_P03,BAR_P01"
[[rule_set.rule.when]]
condition = '1'
actions = [{ send = "Out" }]
[[rule_set.rule]]
name = "Audit"
[[rule_set.rule.when]]
condition = 'HL7.{MSH:11} = "P" && Length(HL7.{MSH:10}) > 0'
actions = [{ send = "Out" }]
[[rule_set.rule]]
name = "Everything else"
otherwise = [{ send = "Out" }]
[[rule_set.rule.when]]
condition = '0'
actions = [{ send = "Never" }]
"#;

/// How the router decides: forward to `TargetConfigNames`, or run [`TEN_RULES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Router {
    Forward,
    TenRules,
}

fn production(
    dir: &std::path::Path,
    shards: usize,
    in_port: u16,
    sink_port: u16,
    router: Router,
) -> std::path::PathBuf {
    let path = dir.join("bench.toml");
    let (engine, router_host) = match router {
        Router::Forward => ("", r#"TargetConfigNames = "Out""#),
        Router::TenRules => {
            let rules = dir.join("rules");
            std::fs::create_dir_all(&rules).expect("rules folder");
            std::fs::write(rules.join("Bench.TenRules.toml"), TEN_RULES).expect("write rules");
            (
                "rules_path = [\"rules\"]\n",
                r#"BusinessRuleName = "Bench.TenRules""#,
            )
        }
    };
    std::fs::write(
        &path,
        format!(
            r#"
[production]
name = "Bench.EndToEnd"
[engine]
shards = {shards}
wal_sync = "fsync"
{engine}[[item]]
name = "In"
class = "EnsLib.HL7.Service.TCPService"
pool_size = {shards}
[item.host]
TargetConfigNames = "Router"
[item.adapter]
Port = "{in_port}"
[[item]]
name = "Router"
class = "EnsLib.HL7.MsgRouter.RoutingEngine"
[item.host]
{router_host}
[[item]]
name = "Out"
class = "EnsLib.HL7.Operation.TCPOperation"
pool_size = 16
[item.adapter]
IPAddress = "127.0.0.1"
Port = "{sink_port}"
"#
        ),
    )
    .expect("write production");
    path
}

fn engine_end_to_end(c: &mut Criterion) {
    let cpus = hie_core::shard::online_cpus();
    let pinned = cpus.len() >= 2;
    // One shard on the first core, the load generator on the second.
    let one = pinned.then(|| (vec![cpus[0]], Executors::pinned(&[cpus[1]])));
    let (shard_cpus, load_executors) = one.unwrap_or_default();
    run_group(
        c,
        "engine_e2e_fsync",
        shard_cpus.clone(),
        load_executors.clone(),
    );
    filter_group(c, shard_cpus, load_executors);
    if pinned {
        // Two shards on the two cores; the load generator shares them.
        run_group(
            c,
            "engine_e2e_fsync_2_shards",
            cpus[..2].to_vec(),
            Executors::default(),
        );
    }
}

/// A running engine of the bench production, its ports and its folder.
struct Bench {
    engine: RunningEngine,
    in_port: u16,
    sink_port: u16,
    _dir: tempfile::TempDir,
}

/// Starts the bench production with one shard per CPU of `shard_cpus` (one unpinned
/// shard when empty) and `router` deciding.
fn start(shard_cpus: Vec<usize>, router: Router) -> Bench {
    let dir = tempfile::tempdir().expect("tempdir");
    let (in_port, sink_port) = (hie_tests::free_port(), hie_tests::free_port());
    let shards = shard_cpus.len().max(1);
    let path = production(dir.path(), shards, in_port, sink_port, router);
    let production = load_production(&path, false).expect("bench production loads");
    let overrides = EngineOverrides {
        shards: Some(shards),
        no_pin: shard_cpus.is_empty(),
        cpus: (!shard_cpus.is_empty()).then_some(shard_cpus),
        ..EngineOverrides::single_shard(dir.path().join("wal"), None)
    };
    let options = engine_options(&production, &overrides).expect("engine options");
    let engine = RunningEngine::start(&production, options).expect("engine starts");
    Bench {
        engine,
        in_port,
        sink_port,
        _dir: dir,
    }
}

type Group<'c> = criterion::BenchmarkGroup<'c, criterion::measurement::WallTime>;

fn group<'c>(c: &'c mut Criterion, name: &str) -> Group<'c> {
    let mut group = c.benchmark_group(name);
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(100));
    group.measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(MESSAGES_PER_SAMPLE));
    group
}

const ADT: Input = ("adt_300B", TemplateKind::AdtA01, 0, Some(300));

/// A case's name, the template, its OBX count and its size.
type Input = (&'static str, TemplateKind, usize, Option<usize>);

/// Runs the inputs through an engine with one shard per CPU of `shard_cpus` (one unpinned
/// shard when empty), loaded from `load_executors`.
fn run_group(
    c: &mut Criterion,
    group_name: &str,
    shard_cpus: Vec<usize>,
    load_executors: Executors,
) {
    let bench = start(shard_cpus, Router::Forward);
    let mut group = group(c, group_name);
    let inputs = [ADT, ("oru_10KB", TemplateKind::Oru, 40, Some(10_000))];
    for input in inputs {
        bench_input(&mut group, group_name, &bench, &load_executors, input);
    }
    group.finish();
    bench.engine.shutdown();
}

/// Plain forwarding and a 10-rule router side by side, one shard, ADT.
fn filter_group(c: &mut Criterion, shard_cpus: Vec<usize>, load_executors: Executors) {
    let group_name = "engine_e2e_filter";
    let mut group = group(c, group_name);
    for (router, name) in [
        (Router::Forward, "forward_adt_300B"),
        (Router::TenRules, "rules10_adt_300B"),
    ] {
        let bench = start(shard_cpus.clone(), router);
        let (_, kind, obx, size) = ADT;
        bench_input(
            &mut group,
            group_name,
            &bench,
            &load_executors,
            (name, kind, obx, size),
        );
        bench.engine.shutdown();
    }
    group.finish();
}

/// One case: closed-loop samples of [`MESSAGES_PER_SAMPLE`] messages through `bench`.
fn bench_input(
    group: &mut Group<'_>,
    group_name: &str,
    bench: &Bench,
    load_executors: &Executors,
    (name, kind, obx, size_bytes): Input,
) {
    let (in_port, sink_port, engine) = (bench.in_port, bench.sink_port, &bench.engine);
    {
        let mut last = None;
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    // Sender and sink on the same executor (a second, spinning executor on
                    // the load core would take turns with the first, a scheduler slice at
                    // a time). The sink listens before the first message is sent; the
                    // operation's connection to the previous sample's sink is found closed
                    // and reopened at once.
                    let start = Instant::now();
                    let report = run_e2e(E2eOptions {
                        send: SendOptions {
                            to: SocketAddr::from(([127, 0, 0, 1], in_port)),
                            connections: CONNECTIONS,
                            messages: Some(MESSAGES_PER_SAMPLE),
                            source: Source::Template {
                                kind,
                                obx,
                                size_bytes,
                            },
                            executors: load_executors.clone(),
                            ..SendOptions::default()
                        },
                        sink_listen: SocketAddr::from(([127, 0, 0, 1], sink_port)),
                        drain: Duration::from_secs(60),
                        ..E2eOptions::default()
                    })
                    .expect("load generator");
                    assert_eq!(report.acked, MESSAGES_PER_SAMPLE, "every message ACKed");
                    assert_eq!(report.ack_codes.AA, MESSAGES_PER_SAMPLE, "every ACK is AA");
                    assert_eq!(
                        report.lost,
                        0,
                        "every ACKed message arrived downstream:\n{}\nengine: {:#?}",
                        report.to_table(),
                        engine.status()
                    );
                    total += start.elapsed();
                    last = Some(report);
                }
                total
            })
        });
        if let Some(report) = last {
            eprintln!(
                "{group_name} {name}, last sample (latency: sent to arrived downstream):\n{}",
                report.to_table()
            );
        }
    }
}

criterion_group!(benches, engine_end_to_end);
criterion_main!(benches);
