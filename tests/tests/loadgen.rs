//! End-to-end tests of the real `hie-loadgen` binary over loopback: against its own sink
//! and against python-hl7's asyncio MLLP server. Every run is bounded by `--messages` or
//! `--duration` and every child process is killed on drop.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use serde_json::Value;

/// A child process killed when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `hie-loadgen sink` with `extra` options; returns it and its address.
fn start_sink(extra: &[&str]) -> (Guard, String) {
    let mut child = Command::new(hie_tests::bin("hie-loadgen"))
        .args([
            "sink",
            "--listen",
            "127.0.0.1:0",
            "--json",
            "--duration",
            "60s",
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sink");
    let addr = listening_addr(&mut child);
    (Guard(child), addr)
}

/// Reads stderr until the `listening on ADDR` line.
fn listening_addr(child: &mut Child) -> String {
    let stderr = child.stderr.take().expect("piped stderr");
    let mut lines = BufReader::new(stderr).lines();
    for line in lines.by_ref() {
        let line = line.expect("stderr line");
        if let Some(addr) = line.strip_prefix("hie-loadgen: sink listening on ") {
            let addr = addr.trim().to_string();
            std::thread::spawn(move || lines.for_each(drop));
            return addr;
        }
    }
    panic!("the sink never said where it listens");
}

/// Stops a sink with SIGTERM and returns its JSON report.
fn stop_sink(mut sink: Guard) -> Value {
    let pid = sink.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while sink.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "sink did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut out = String::new();
    sink.0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("sink report {out:?}: {e}"))
}

/// Runs `hie-loadgen` with `args` and returns its JSON report.
fn run_json(args: &[&str]) -> Value {
    let out = Command::new(hie_tests::bin("hie-loadgen"))
        .args(args)
        .arg("--json")
        .output()
        .expect("run hie-loadgen");
    assert!(
        out.status.success(),
        "hie-loadgen {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("report {:?}: {e}", String::from_utf8_lossy(&out.stdout)))
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("{v} is not a count"))
}

#[test]
fn send_to_own_sink_counts_every_message_exactly_and_writes_a_matching_histogram() {
    let dir = tempfile::tempdir().unwrap();
    let hist = dir.path().join("lat.hlog");
    let plot = dir.path().join("lat.svg");
    let (sink, addr) = start_sink(&[]);
    let r = run_json(&[
        "send",
        "--to",
        &addr,
        "-c",
        "4",
        "--messages",
        "3000",
        "--hist",
        hist.to_str().unwrap(),
        "--plot",
        plot.to_str().unwrap(),
    ]);
    assert_eq!(u(&r["sent"]), 3000);
    assert_eq!(u(&r["acked"]), 3000);
    assert_eq!(u(&r["ack_codes"]["AA"]), 3000);
    for (name, v) in r["errors"].as_object().unwrap() {
        assert_eq!(u(v), 0, "error {name}");
    }
    let from_file = read_hist_log(&hist);
    assert_eq!(from_file.len(), 3000);
    let lat = &r["latency_us"];
    assert_eq!(u(&lat["p50"]), from_file.value_at_quantile(0.5));
    assert_eq!(u(&lat["p99"]), from_file.value_at_quantile(0.99));
    assert_eq!(u(&lat["p999"]), from_file.value_at_quantile(0.999));
    assert_eq!(u(&lat["max"]), from_file.max());
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("<path d=\"M"));
    let s = stop_sink(sink);
    assert_eq!(u(&s["received"]), 3000);
    assert_eq!(u(&s["ack_codes"]["AA"]), 3000);
    assert_eq!(u(&s["connections"]), 4);
}

#[test]
fn open_loop_holds_its_rate_within_one_percent() {
    let (sink, addr) = start_sink(&[]);
    let r = run_json(&[
        "send",
        "--to",
        &addr,
        "-c",
        "4",
        "--rate",
        "2000",
        "--duration",
        "3s",
    ]);
    let sent = u(&r["sent"]);
    assert!(sent.abs_diff(6000) <= 60, "sent {sent} at 2000/s for 3 s");
    assert_eq!(u(&r["acked"]), sent);
    assert_eq!(u(&stop_sink(sink)["received"]), sent);
}

#[test]
fn ae_and_ar_answers_are_counted_on_both_sides() {
    let (sink, addr) = start_sink(&["--ae-rate", "0.3", "--ar-rate", "0.2"]);
    let r = run_json(&[
        "send",
        "--to",
        &addr,
        "-c",
        "3",
        "--messages",
        "2000",
        "--template",
        "oru",
        "--obx",
        "3",
    ]);
    let codes = &r["ack_codes"];
    let (aa, ae, ar) = (u(&codes["AA"]), u(&codes["AE"]), u(&codes["AR"]));
    assert_eq!(aa + ae + ar, 2000);
    assert!((450..=750).contains(&ae), "AE {ae}");
    assert!((280..=520).contains(&ar), "AR {ar}");
    let s = stop_sink(sink);
    assert_eq!(u(&s["ack_codes"]["AE"]), ae);
    assert_eq!(u(&s["ack_codes"]["AR"]), ar);
    assert_eq!(u(&s["ack_codes"]["AA"]), aa);
}

#[test]
fn a_sink_that_never_answers_is_reported_as_timeouts() {
    let (sink, addr) = start_sink(&["--no-ack"]);
    let r = run_json(&[
        "send",
        "--to",
        &addr,
        "-c",
        "4",
        "--messages",
        "12",
        "--timeout",
        "200ms",
    ]);
    assert_eq!(u(&r["sent"]), 12);
    assert_eq!(u(&r["acked"]), 0);
    assert_eq!(u(&r["errors"]["timeouts"]), 12);
    let s = stop_sink(sink);
    assert_eq!(u(&s["received"]), 12);
    assert_eq!(u(&s["unanswered"]), 12);
}

#[test]
fn a_sink_that_drops_connections_is_reported_as_unanswered() {
    let (sink, addr) = start_sink(&["--drop-rate", "0.1"]);
    let r = run_json(&["send", "--to", &addr, "-c", "2", "--messages", "500"]);
    let (sent, acked) = (u(&r["sent"]), u(&r["acked"]));
    let unanswered = u(&r["errors"]["unanswered"]);
    assert_eq!(sent, 500);
    assert_eq!(acked + unanswered, sent);
    assert!(unanswered > 0);
    let s = stop_sink(sink);
    assert_eq!(u(&s["dropped_connections"]), unanswered);
}

#[test]
fn e2e_through_a_direct_path_finds_nothing_lost_duplicated_or_reordered() {
    // With the engine left out (the sender targets the e2e sink itself), every ACKed
    // message arrives exactly once and in order: the accounting must say so.
    let addr = format!("127.0.0.1:{}", hie_tests::free_port());
    let r = run_json(&[
        "e2e",
        "--to",
        &addr,
        "--sink-listen",
        &addr,
        "-c",
        "4",
        "--messages",
        "2000",
        "--patients",
        "50",
        "--threads",
        "2",
        "--drain",
        "5s",
    ]);
    assert_eq!(u(&r["sent"]), 2000);
    assert_eq!(u(&r["acked"]), 2000);
    assert_eq!(u(&r["lost"]), 0);
    assert_eq!(u(&r["duplicates"]), 0);
    assert_eq!(u(&r["order_violations"]), 0);
    assert!(u(&r["latency_us"]["max"]) > 0);
}

#[test]
fn a_remote_target_needs_allow_remote() {
    let out = Command::new(hie_tests::bin("hie-loadgen"))
        .args(["send", "--to", "192.0.2.1:2575", "--messages", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--allow-remote"));
}

const PYTHON_SERVER: &str = r#"
import asyncio, sys
import hl7
from hl7.mllp import start_hl7_server

async def process(reader, writer):
    try:
        while not writer.is_closing():
            msg = await reader.readmessage()
            writer.writemessage(msg.create_ack())
            await writer.drain()
    except asyncio.IncompleteReadError:
        pass
    finally:
        writer.close()

async def main():
    server = await start_hl7_server(process, host="127.0.0.1", port=0)
    print("hie-loadgen: sink listening on 127.0.0.1:%d" % server.sockets[0].getsockname()[1], file=sys.stderr, flush=True)
    async with server:
        await server.serve_forever()

asyncio.run(main())
"#;

#[test]
fn python_hl7_server_acks_every_message_with_a_matching_msa() {
    let Some(python) = hie_tests::python_hl7() else {
        eprintln!("\n*** SKIPPED: python3 with PyPI hl7 is unavailable ***\n");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("server.py");
    std::fs::write(&script, PYTHON_SERVER).unwrap();
    let mut child = Command::new(python)
        .arg(&script)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let addr = listening_addr(&mut child);
    let _server = Guard(child);
    for template in ["adt-a01", "oru"] {
        let r = run_json(&[
            "send",
            "--to",
            &addr,
            "-c",
            "2",
            "--messages",
            "400",
            "--template",
            template,
        ]);
        assert_eq!(u(&r["sent"]), 400);
        assert_eq!(u(&r["acked"]), 400, "{template}: {r}");
        assert_eq!(u(&r["ack_codes"]["AA"]), 400);
    }
    // python-hl7 closes the connection on the corpus messages it cannot parse; every
    // message it does answer must carry the right MSA-2, and the accounting must add up.
    let corpus = hie_tests::corpus_dir().join("hl7");
    let r = run_json(&[
        "send",
        "--to",
        &addr,
        "-c",
        "2",
        "--messages",
        "300",
        "--dir",
        corpus.to_str().unwrap(),
    ]);
    let e = &r["errors"];
    assert_eq!(u(&r["sent"]), 300);
    assert_eq!(u(&e["mismatched_acks"]), 0);
    assert_eq!(u(&e["bad_acks"]), 0);
    assert_eq!(
        u(&r["acked"]) + u(&e["unanswered"]) + u(&e["timeouts"]),
        300
    );
    assert!(u(&r["acked"]) >= 250, "{r}");
}

/// Sums every interval of an HdrHistogram log.
fn read_hist_log(path: &Path) -> Histogram<u64> {
    let text = std::fs::read(path).unwrap();
    let mut total: Option<Histogram<u64>> = None;
    let mut deserializer = Deserializer::new();
    for entry in IntervalLogIterator::new(&text) {
        if let LogEntry::Interval(ilh) = entry.unwrap() {
            let bytes = base64::Engine::decode(
                &base64::engine::general_purpose::STANDARD,
                ilh.encoded_histogram(),
            )
            .expect("base64 histogram");
            let h: Histogram<u64> = deserializer.deserialize(&mut bytes.as_slice()).unwrap();
            match total.as_mut() {
                Some(t) => t.add(&h).unwrap(),
                None => total = Some(h),
            }
        }
    }
    total.expect("at least one interval")
}

#[test]
fn e2e_drains_until_deliveries_that_come_long_after_the_last_ack() {
    // The engine ACKs every message at once but delivers none until its operation is
    // resumed, 1.5 s after a run of well under a second: the report must wait for them
    // (within --drain), not stop with every message counted lost.
    let dir = tempfile::tempdir().unwrap();
    let (in_port, sink_port) = (hie_tests::free_port(), hie_tests::free_port());
    let production = format!(
        "{}{}{}{}",
        common::head("Test.E2eDrain", 1),
        common::tcp_service("In", in_port, "Router", &[]),
        common::router("Router", "Out", &[]),
        common::tcp_operation("Out", sink_port, &[], &[("ReconnectRetry", "0")]),
    );
    let (hie, data) = common::start_hie(dir.path(), &production);
    let (code, out) = common::ctl(&data, &["pause", "Out"]);
    assert_eq!(code, 0, "pause: {out}");
    common::wait_status(&hie, &data, Duration::from_secs(10), "paused", |s| {
        common::states(s, "Out") == ["paused"]
    });
    let resume = std::thread::spawn({
        let data = data.clone();
        move || {
            std::thread::sleep(Duration::from_millis(1500));
            common::ctl(&data, &["resume", "Out"])
        }
    });
    let r = run_json(&[
        "e2e",
        "--to",
        &format!("127.0.0.1:{in_port}"),
        "--sink-listen",
        &format!("127.0.0.1:{sink_port}"),
        "-c",
        "2",
        "--messages",
        "20",
        "--drain",
        "20s",
    ]);
    let (code, out) = resume.join().unwrap();
    assert_eq!(code, 0, "resume: {out}");
    assert_eq!(u(&r["acked"]), 20, "{r:#}");
    assert_eq!(u(&r["lost"]), 0, "{r:#}\nlog:\n{}", hie.log());
    assert_eq!(u(&r["duplicates"]), 0, "{r:#}");
    assert!(
        u(&r["latency_us"]["p50"]) >= 1_000_000,
        "the deliveries came after the resume: {r:#}"
    );
}

#[test]
fn warmup_leaves_the_first_messages_out_of_the_latency_figures_but_not_the_counts() {
    // 300 messages at 200/s: those meant for the first 0.5 s (about 100) are sent, ACKed
    // and checked, and only the later ones are in the histogram.
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", hie_tests::free_port());
    for mode in ["send", "e2e"] {
        let hist = dir.path().join(format!("{mode}.hlog"));
        let (sink, sink_addr) = if mode == "send" {
            let (guard, sink_addr) = start_sink(&[]);
            (Some(guard), sink_addr)
        } else {
            (None, addr.clone())
        };
        let mut args = vec![
            mode,
            "--to",
            &sink_addr,
            "-c",
            "2",
            "--rate",
            "200",
            "--messages",
            "300",
            "--warmup",
            "500ms",
            "--hist",
            hist.to_str().unwrap(),
        ];
        if mode == "e2e" {
            args.extend(["--sink-listen", &addr, "--drain", "5s"]);
        }
        let r = run_json(&args);
        drop(sink);
        assert_eq!(u(&r["acked"]), 300, "{mode}: every message counted");
        let recorded = read_hist_log(&hist).len();
        assert!(
            (150..=250).contains(&recorded),
            "{mode}: {recorded} of 300 latencies recorded, expected the ~200 after the warm-up"
        );
        if mode == "e2e" {
            assert_eq!(u(&r["lost"]), 0);
        }
    }
}

/// A listener on a free loopback port whose every accepted connection is handed to
/// `serve` on a thread of its own; returns the address and the peers it accepted.
fn flood_target(
    serve: impl Fn(std::net::TcpStream) + Send + Sync + 'static,
) -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<std::net::IpAddr>>>,
) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let peers = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (seen, serve) = (peers.clone(), std::sync::Arc::new(serve));
    // The thread ends with the test process; each connection's thread ends when its
    // peer (a hie-loadgen run, bounded by --duration) closes.
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            seen.lock().unwrap().push(stream.peer_addr().unwrap().ip());
            let serve = serve.clone();
            std::thread::spawn(move || serve(stream));
        }
    });
    (addr, peers)
}

#[test]
fn an_idle_flood_is_held_and_counted_exactly_while_the_load_is_measured() {
    let (sink, addr) = start_sink(&[]);
    let started = Instant::now();
    let r = run_json(&[
        "send",
        "--to",
        &addr,
        "-c",
        "2",
        "--duration",
        "2s",
        "--flood",
        "300",
        "--flood-sources",
        "4",
    ]);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the run is bounded by its duration"
    );
    let f = &r["flood"];
    assert_eq!(f["kind"], "idle");
    assert_eq!(u(&f["requested"]), 300);
    assert_eq!(u(&f["connected"]), 300);
    assert_eq!(u(&f["held"]), 300);
    for key in [
        "connect_failed",
        "refused_at_once",
        "cut",
        "answered",
        "bytes_sent",
    ] {
        assert_eq!(u(&f[key]), 0, "{key}");
    }
    assert!(
        u(&r["acked"]) > 0,
        "the legitimate load ran during the flood"
    );
    assert_eq!(u(&r["acked"]), u(&r["sent"]));
    assert!(u(&r["latency_us"]["p99"]) > 0);
    let s = stop_sink(sink);
    assert_eq!(
        u(&s["connections"]),
        302,
        "the sink accepted the flood and the two legitimate connections"
    );
}

#[test]
fn a_flood_the_target_closes_at_once_is_counted_as_refused_from_every_source() {
    let (addr, peers) = flood_target(drop);
    let r = run_json(&[
        "send",
        "--to",
        &addr,
        "-c",
        "1",
        "--rate",
        "5",
        "--duration",
        "1s",
        "--flood",
        "40",
        "--flood-sources",
        "5",
    ]);
    let f = &r["flood"];
    assert_eq!(u(&f["connected"]), 40);
    assert_eq!(u(&f["refused_at_once"]), 40);
    assert_eq!(u(&f["held"]) + u(&f["cut"]) + u(&f["connect_failed"]), 0);
    assert!(
        u(&r["errors"]["unanswered"]) + u(&r["errors"]["connection_errors"]) > 0,
        "the legitimate sender was turned away too, and said so"
    );
    let peers = peers.lock().unwrap();
    for k in 2..=6u8 {
        let from_k = peers
            .iter()
            .filter(|ip| **ip == std::net::IpAddr::from([127, 0, 0, k]))
            .count();
        assert_eq!(from_k, 8, "flood connections from 127.0.0.{k}");
    }
}

#[test]
fn a_slowloris_flood_drips_one_frame_and_is_counted_as_cut_when_closed_later() {
    // The target reads five bytes of each connection, keeps them, then closes it.
    let bytes = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = bytes.clone();
    let (addr, _) = flood_target(move |mut s| {
        let mut got = [0u8; 5];
        if s.read_exact(&mut got).is_ok() {
            kept.lock()
                .unwrap()
                .push((s.peer_addr().unwrap().ip(), got));
        }
    });
    let r = run_json(&[
        "send",
        "--to",
        &addr,
        "-c",
        "1",
        "--rate",
        "2",
        "--duration",
        "3s",
        "--flood",
        "10",
        "--flood-kind",
        "slowloris",
        "--flood-interval",
        "300ms",
    ]);
    let f = &r["flood"];
    assert_eq!(u(&f["connected"]), 10);
    assert_eq!(u(&f["cut"]), 10, "{f}");
    assert!(u(&f["cut_after_ms"]["min"]) >= 1000, "{f}");
    assert_eq!(u(&f["bytes_sent"]), 50);
    let bytes = bytes.lock().unwrap();
    let flooded = std::net::IpAddr::from([127, 0, 0, 2]);
    let flood: Vec<_> = bytes.iter().filter(|(ip, _)| *ip == flooded).collect();
    assert_eq!(flood.len(), 10, "{bytes:?}");
    assert!(
        flood.iter().all(|(_, b)| b == b"\x0bMSH|"),
        "one byte at a time, an MLLP frame: {bytes:?}"
    );
}

#[test]
fn a_partial_flood_writes_its_whole_unfinished_frame_and_a_bad_flood_is_refused() {
    let (sink, addr) = start_sink(&[]);
    let r = run_json(&[
        "send",
        "--to",
        &addr,
        "-c",
        "1",
        "--rate",
        "20",
        "--duration",
        "1s",
        "--flood",
        "20",
        "--flood-kind",
        "partial",
        "--flood-bytes",
        "50000",
    ]);
    let f = &r["flood"];
    assert_eq!(u(&f["held"]), 20);
    assert_eq!(u(&f["bytes_sent"]), 20 * 50_000);
    let acked = u(&r["acked"]);
    assert!(acked > 0 && acked == u(&r["sent"]), "{r}");
    let s = stop_sink(sink);
    assert_eq!(u(&s["received"]), acked, "no flood frame was ever finished");
    let out = Command::new(hie_tests::bin("hie-loadgen"))
        .args([
            "send",
            "--to",
            &addr,
            "--flood",
            "10",
            "--flood-sources",
            "0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--flood-sources"), "{err}");
}

#[test]
fn flood_connections_the_target_resets_later_are_counted_as_cut_by_a_reset() {
    // The target holds each connection 1.5 s, then aborts it (SO_LINGER 0: a reset).
    let (addr, _) = flood_target(|s| {
        std::thread::sleep(Duration::from_millis(1500));
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: the descriptor is `s`'s, open for the call; `linger` is a valid
        // `struct linger` of the size given, read by the call only.
        let rc = unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&s),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&raw const linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0, "SO_LINGER");
    });
    let r = run_json(&[
        "send",
        "--to",
        &addr,
        "-c",
        "1",
        "--rate",
        "1",
        "--duration",
        "3s",
        "--flood",
        "10",
    ]);
    let f = &r["flood"];
    assert_eq!(u(&f["connected"]), 10);
    assert_eq!(u(&f["cut"]), 10, "{f}");
    assert_eq!(u(&f["resets"]), 10, "{f}");
    assert!(u(&f["cut_after_ms"]["min"]) >= 1400, "{f}");
}
