//! Soak: the real engine (release build) under a steady open-loop load for a minute, then a
//! graceful shutdown that waits longer than a minute on a downstream that is down, then a
//! restart that delivers what the shutdown left in the WAL.
//!
//! What it catches that short tests cannot: a leak per message or per wait (issue #16: a
//! waker leaked by every raced wait aborted the engine after about 33,000 messages at
//! steady load, and in a drain that waited more than about a minute), memory or
//! descriptor growth, and loss.
//!
//! Production (2 shards): `In` (TCP service) → `Router` → `Out` (TCP operation) →
//! `hie-loadgen e2e`'s sink. At `SOAK_RATE` messages a second the engine is far from
//! saturated, so nearly every message waits (the recorder, the router and the operation
//! park between messages): the path the leak took.
//!
//! Bounds: `SOAK_SECONDS` of load (default 60 s at 2,000 msg/s, 120,000 messages; the
//! environment variables `HIE_SOAK_SECONDS` and `HIE_SOAK_RATE` change them for a longer
//! run, see `tests/soak.sh`), a 100 s drain, 30 s for the restart to deliver. RSS and
//! open descriptors are sampled every second from `/proc`.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Answer, TestSink, adt, head, router, tcp_operation, tcp_service};
use hie_tests::{Hie, MllpConn, field, free_port, release_bin, wait_until};

const SOAK_SECONDS: u64 = 60;
const SOAK_RATE: u64 = 2_000;
/// Measured from here on: connections, WAL segments and queues have reached their
/// working size.
const WARMUP_SECONDS: u64 = 15;
/// The drain waits this long on the dead downstream: longer than the minute after which
/// the leaking drain loop aborted (one leaked waker per 2 ms poll: 32,768 of them, 65 s at
/// the least; the old binary aborted within 106 s of a drain on this machine).
const SHUTDOWN_TIMEOUT_SECONDS: u64 = 100;
/// Messages sent while the downstream is down, left in the WAL by the shutdown.
const HELD_MESSAGES: usize = 50;
/// RSS at the end of the load may exceed RSS after warm-up by this share plus
/// `RSS_SLACK_KB` (allocator arenas, a WAL segment's buffers), and no more.
const RSS_GROWTH_MAX: f64 = 0.25;
const RSS_SLACK_KB: u64 = 16 * 1024;
/// Open descriptors at the end may exceed those after warm-up by this many (a connection
/// being replaced, a segment being rotated).
const FD_GROWTH_MAX: usize = 8;

#[derive(Debug, Clone, Copy)]
struct Sample {
    at_s: f64,
    rss_kb: u64,
    fds: usize,
}

fn sample(pid: u32, start: Instant) -> Option<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count();
    Some(Sample {
        at_s: start.elapsed().as_secs_f64(),
        rss_kb,
        fds,
    })
}

/// Samples `pid` every second until `stop`.
fn sampler(
    pid: u32,
    start: Instant,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<Sample>> {
    std::thread::spawn(move || {
        let mut samples = Vec::new();
        while !stop.load(Ordering::Acquire) {
            if let Some(s) = sample(pid, start) {
                samples.push(s);
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        samples
    })
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn e2e(in_port: u16, sink_port: u16, seconds: u64, rate: u64) -> serde_json::Value {
    let out = Command::new(release_bin("hie-loadgen"))
        .args(["e2e", "--to", &format!("127.0.0.1:{in_port}")])
        .args(["--sink-listen", &format!("127.0.0.1:{sink_port}")])
        .args(["-c", "4", "--rate", &rate.to_string()])
        .args(["--duration", &format!("{seconds}s"), "--warmup", "5s"])
        .args(["--drain", "30s", "--json"])
        .output()
        .expect("run hie-loadgen e2e");
    assert!(
        out.status.success(),
        "hie-loadgen e2e failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("e2e report {:?}: {e}", String::from_utf8_lossy(&out.stdout)))
}

fn n(v: &serde_json::Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("{v} is not a count"))
}

/// Prints about 60 samples, whatever the length of the run.
fn print_samples(samples: &[Sample]) {
    for s in samples.iter().step_by((samples.len() / 60).max(1)) {
        eprintln!(
            "soak: t={:>6.1}s rss={:>7} kB fds={}",
            s.at_s, s.rss_kb, s.fds
        );
    }
}

#[test]
fn steady_load_for_a_minute_then_a_long_drain_keeps_the_engine_up_flat_and_lossless() {
    let seconds = env_u64("HIE_SOAK_SECONDS", SOAK_SECONDS).max(WARMUP_SECONDS + 10);
    let rate = env_u64("HIE_SOAK_RATE", SOAK_RATE);
    let dir = tempfile::tempdir().unwrap();
    let (in_port, sink_port) = (free_port(), free_port());
    let production = format!(
        "{}{}{}{}",
        head("Test.Soak", 2),
        tcp_service("In", in_port, "Router", &[]),
        router("Router", "Out", &[]),
        tcp_operation(
            "Out",
            sink_port,
            &[("RetryInterval", "1"), ("FailureTimeout", "-1")],
            &[]
        ),
    );
    let config = common::write_production(dir.path(), &production);
    // Both release builds first: the samples must start with the load.
    let (hie_bin, _) = (release_bin("hie"), release_bin("hie-loadgen"));
    let data = dir.path().join("data");
    let timeout = SHUTDOWN_TIMEOUT_SECONDS.to_string();
    let args = ["--no-pin", "--log", "warn", "--shutdown-timeout", &timeout];
    let mut hie = Hie::start_binary(&hie_bin, &config, &data, &args);

    // Load: a minute open loop, every message checked end to end.
    let start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let samples = sampler(hie.process.pid(), start, Arc::clone(&stop));
    let report = e2e(in_port, sink_port, seconds, rate);
    stop.store(true, Ordering::Release);
    let samples = samples.join().unwrap();
    eprintln!("soak: e2e report {report}");
    print_samples(&samples);
    let alive = hie.process.child.as_mut().unwrap().try_wait().unwrap();
    assert!(
        alive.is_none(),
        "the engine died under load: {alive:?}\nlog:\n{}",
        hie.log()
    );
    let sent = n(&report["sent"]);
    assert!(
        sent >= rate * seconds * 9 / 10,
        "the load was not sustained: {sent} sent in {seconds} s at {rate}/s: {report:#}"
    );
    assert_eq!(n(&report["acked"]), sent, "{report:#}\nlog:\n{}", hie.log());
    assert_eq!(n(&report["ack_codes"]["AA"]), sent, "{report:#}");
    assert_eq!(n(&report["lost"]), 0, "{report:#}\nlog:\n{}", hie.log());
    assert_eq!(n(&report["duplicates"]), 0, "{report:#}");
    assert_eq!(n(&report["order_violations"]), 0, "{report:#}");

    // Flat: the last sample under load (the sampler stopped with the load) against the
    // first after warm-up.
    let warm = samples
        .iter()
        .find(|s| s.at_s >= WARMUP_SECONDS as f64)
        .expect("a sample after warm-up");
    let end = samples.last().expect("a sample at the end of the load");
    let rss_max = (warm.rss_kb as f64 * (1.0 + RSS_GROWTH_MAX)) as u64 + RSS_SLACK_KB;
    assert!(
        end.rss_kb <= rss_max,
        "RSS grew under steady load: {} kB after warm-up, {} kB at the end (bound {rss_max} kB)",
        warm.rss_kb,
        end.rss_kb
    );
    assert!(
        end.fds <= warm.fds + FD_GROWTH_MAX,
        "descriptors grew under steady load: {} after warm-up, {} at the end",
        warm.fds,
        end.fds
    );

    // The downstream is down now (the e2e sink has gone): messages are ACKed and wait.
    let mut conn = MllpConn::connect(&format!("127.0.0.1:{in_port}")).expect("connect");
    let held: Vec<String> = (0..HELD_MESSAGES).map(|i| format!("HELD-{i:03}")).collect();
    for id in &held {
        let ack = conn.exchange(&adt(id, "P-HELD")).expect("ACK");
        assert_eq!(field(&ack, "MSA", 1).as_deref(), Some("AA"), "{id}");
    }
    drop(conn);

    // A graceful stop waits the whole shutdown timeout on the dead downstream, then exits
    // cleanly (the leaking drain aborted after about a minute) and keeps the rest.
    let stopped_at = Instant::now();
    let bound = Duration::from_secs(SHUTDOWN_TIMEOUT_SECONDS + 30);
    let status = hie.process.stop(bound);
    let status = status.unwrap_or_else(|| panic!("no exit within {bound:?}\nlog:\n{}", hie.log()));
    assert!(
        status.success(),
        "the engine did not stop cleanly after a {} s drain: {status:?}\nlog:\n{}",
        stopped_at.elapsed().as_secs(),
        hie.log()
    );

    // A restart with the downstream up delivers every held message.
    let sink = TestSink::start(sink_port, Answer::Code("AA"));
    let _hie = Hie::start_binary(&hie_bin, &config, &data, &args);
    let delivered = wait_until(Duration::from_secs(30), || {
        let ids = sink.control_ids();
        held.iter().all(|id| ids.contains(id))
    });
    let ids = sink.stop();
    assert!(
        delivered,
        "held messages not delivered after the restart: got {} of {}",
        ids.len(),
        held.len()
    );
}
