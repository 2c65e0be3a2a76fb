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

fn production(
    dir: &std::path::Path,
    shards: usize,
    in_port: u16,
    sink_port: u16,
) -> std::path::PathBuf {
    let path = dir.join("bench.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[production]
name = "Bench.EndToEnd"
[engine]
shards = {shards}
wal_sync = "fsync"
[[item]]
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
TargetConfigNames = "Out"
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
    run_group(c, "engine_e2e_fsync", shard_cpus, load_executors);
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

/// Runs the inputs through an engine with one shard per CPU of `shard_cpus` (one unpinned
/// shard when empty), loaded from `load_executors`.
fn run_group(
    c: &mut Criterion,
    group_name: &str,
    shard_cpus: Vec<usize>,
    load_executors: Executors,
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (in_port, sink_port) = (hie_tests::free_port(), hie_tests::free_port());
    let shards = shard_cpus.len().max(1);
    let path = production(dir.path(), shards, in_port, sink_port);
    let production = load_production(&path, false).expect("bench production loads");
    let overrides = EngineOverrides {
        shards: Some(shards),
        no_pin: shard_cpus.is_empty(),
        cpus: (!shard_cpus.is_empty()).then_some(shard_cpus),
        ..EngineOverrides::single_shard(dir.path().join("wal"), None)
    };
    let options = engine_options(&production, &overrides).expect("engine options");
    let engine = RunningEngine::start(&production, options).expect("engine starts");

    let mut group = c.benchmark_group(group_name);
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(100));
    group.measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(MESSAGES_PER_SAMPLE));
    let inputs = [
        ("adt_300B", TemplateKind::AdtA01, 0, Some(300)),
        ("oru_10KB", TemplateKind::Oru, 40, Some(10_000)),
    ];
    for (name, kind, obx, size_bytes) in inputs {
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
    group.finish();
    engine.shutdown();
}

criterion_group!(benches, engine_end_to_end);
criterion_main!(benches);
