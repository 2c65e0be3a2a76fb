//! `hie-loadgen send` against `hie-loadgen sink`, ACK-only, each pinned to its own core
//! (sender on CPU 0, sink on CPU 1), 8 and 64 connections, closed loop, a 300-byte
//! ADT^A01: messages/s, and p50/p99 ACK latency printed after each case. Both sides run
//! through the library API (`hie_loadgen::run_send`, `run_sink`), as `hie demo` does.
//!
//! Issue 7's target: faster than every MLLP peer measured on this machine (the `mllp`
//! crate on tokio: about 205,000 msg/s at 8 connections), so that the load generator is
//! never the bottleneck when it measures hie.
//!
//! Before timing, a first run is checked: every message sent is ACKed AA with its own
//! control id (the sender checks MSA-2 of every ACK), and the sink counts every one.

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hie_loadgen::{
    Executors, Report, SendOptions, SinkOptions, Source, TemplateKind, run_send, run_sink,
};

const SENDER_CPU: usize = 0;
const SINK_CPU: usize = 1;
const CONNECTIONS: [usize; 2] = [8, 64];
/// Messages per connection in one criterion iteration; each iteration is one `run_send`
/// (executor start and connects included, a few hundred µs next to the round).
const ROUND_MESSAGES_PER_CONNECTION: u64 = 500;
const MESSAGE_BYTES: usize = 300;

fn send_options(to: std::net::SocketAddr, connections: usize, messages: u64) -> SendOptions {
    SendOptions {
        to,
        connections,
        messages: Some(messages),
        timeout: Duration::from_secs(10),
        source: Source::Template {
            kind: TemplateKind::AdtA01,
            obx: 0,
            size_bytes: Some(MESSAGE_BYTES),
        },
        executors: Executors::pinned(&[SENDER_CPU]),
        ..SendOptions::default()
    }
}

fn check(report: &Report, messages: u64) {
    assert_eq!(report.sent, messages, "every message sent");
    assert_eq!(
        report.acked, messages,
        "every message ACKed with its control id"
    );
    assert_eq!(report.ack_codes.AA, messages, "every ACK is AA");
    assert_eq!(report.errors, hie_loadgen::Errors::default(), "no errors");
}

fn loadgen_send_vs_sink(c: &mut Criterion) {
    let sink = run_sink(SinkOptions {
        executors: Executors::pinned(&[SINK_CPU]),
        ..SinkOptions::default()
    })
    .expect("sink starts");
    let mut group = c.benchmark_group("loadgen_send_vs_sink");
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    group.sample_size(10);
    let mut summaries = Vec::new();
    for connections in CONNECTIONS {
        let first = connections as u64 * ROUND_MESSAGES_PER_CONNECTION;
        let before = sink.received();
        check(
            &run_send(send_options(sink.addr(), connections, first)).expect("send"),
            first,
        );
        assert_eq!(
            sink.received() - before,
            first,
            "the sink received every one"
        );
        let round = connections as u64 * ROUND_MESSAGES_PER_CONNECTION;
        let mut best: Option<Report> = None;
        group.throughput(Throughput::Elements(round));
        group.bench_with_input(
            BenchmarkId::new("send-sink", connections),
            &connections,
            |b, _| {
                b.iter_custom(|iters| {
                    let report = run_send(send_options(sink.addr(), connections, iters * round))
                        .expect("send");
                    check(&report, iters * round);
                    let elapsed = Duration::from_secs_f64(report.duration_s);
                    if best
                        .as_ref()
                        .is_none_or(|b| report.rate_per_s > b.rate_per_s)
                    {
                        best = Some(report);
                    }
                    elapsed
                })
            },
        );
        if let Some(r) = best {
            let line = format!(
                "{connections:>2} connections: best run {:.0} msg/s, p50 {} us, p99 {} us ({} messages)",
                r.rate_per_s, r.latency_us.p50, r.latency_us.p99, r.sent
            );
            println!("{line}");
            summaries.push(line);
        }
    }
    group.finish();
    let sink_report = sink.stop_and_join().expect("sink report");
    println!(
        "\nloadgen_send_vs_sink summary (300-byte ADT, closed loop, sender CPU {SENDER_CPU}, sink CPU {SINK_CPU}; sink received {} in all):",
        sink_report.received
    );
    for line in summaries {
        println!("  {line}");
    }
}

criterion_group!(benches, loadgen_send_vs_sink);
criterion_main!(benches);
