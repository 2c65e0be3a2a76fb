//! The admin HTTP API of `hie run` end to end (issue #18): `/metrics` scraped under load
//! and checked by `promtool`, its counters adding up once the load settles; the bearer
//! token required everywhere but the probes; the request, header and connection limits;
//! items disabled and enabled through the API with nothing lost; `/histograms` counts and
//! its HdrHistogram log and interval reset; readiness during a long recovery; a port in
//! use; a slow admin client that holds up nothing; a scrape answered while a slow resend
//! holds the main thread; `hie ctl stop`.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::{
    Answer, TestSink, adt, ctl, head, send_one, start_hie_with, tcp_operation, tcp_service,
};
use hie_tests::{bin, free_port, wait_until};

const IN: &str = "Main ADT In";
const OUT: &str = "Main ADT Out";

/// A service sending everything to one operation, WAL without fsync (the tests here
/// are about the API, not durability).
fn production(shards: usize, in_port: u16, out_port: u16) -> String {
    (head("Admin", shards)
        + &tcp_service(IN, in_port, OUT, &[])
        + &tcp_operation(OUT, out_port, &[], &[]))
        .replace("wal_sync = \"fsync\"", "wal_sync = \"none\"")
}

/// One HTTP/1.1 request on a new connection (`Connection: close`): the status and body.
fn http(address: &str, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
    try_http(address, method, path, token).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// [`http`], `Err` when the connection fails.
fn try_http(
    address: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\n{auth}Connection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(parse(&answer))
}

/// The status and body of an HTTP/1.1 answer (a `Content-Length` body).
fn parse(answer: &str) -> (u16, String) {
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"));
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, body.to_string())
}

fn get(address: &str, path: &str) -> (u16, String) {
    http(address, "GET", path, None)
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// `promtool check metrics` on `text`: Err is what it said.
fn promtool(text: &str) -> Result<(), String> {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect(
            "promtool is required by this test (Debian package `prometheus`: \
             apt-get install -y prometheus; .ci/run installs it)",
        );
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The value of the sample `name{labels}` (labels as written, e.g. `item="Main ADT Out",shard="0"`),
/// summed over every sample whose labels contain `labels`.
fn sample(text: &str, name: &str, labels: &str) -> u64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            let (metric, rest) = key.split_once('{').unwrap_or((key, ""));
            (metric == name && rest.contains(labels)).then(|| value.parse::<f64>().ok())?
        })
        .map(|v| v as u64)
        .sum()
}

fn admin(hie: &hie_tests::Hie) -> String {
    hie.admin.clone().expect("the admin API is on")
}

#[test]
fn metrics_scraped_under_load_pass_promtool_and_add_up_once_settled() {
    const SENDERS: usize = 4;
    const EACH: usize = 50;
    let dir = tempfile::tempdir().unwrap();
    let (in_port, out_port) = (free_port(), free_port());
    let sink = TestSink::start(out_port, Answer::Code("AA"));
    let (hie, data) = start_hie_with(dir.path(), &production(2, in_port, out_port), &[]);
    let address = admin(&hie);
    // Each sender keeps its connection open once done until the test has scraped with
    // every sender done (so that one scrape sees all of them connected).
    let sent = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..SENDERS)
        .map(|s| {
            let (sent, release) = (Arc::clone(&sent), Arc::clone(&release));
            std::thread::spawn(move || {
                let mut conn =
                    hie_tests::MllpConn::connect(&format!("127.0.0.1:{in_port}")).unwrap();
                for n in 0..EACH {
                    let ack = conn.exchange(&adt(&format!("M-{s}-{n}"), "P1")).unwrap();
                    assert_eq!(hie_tests::field(&ack, "MSA", 1).as_deref(), Some("AA"));
                }
                sent.fetch_add(1, Ordering::AcqRel);
                while !release.load(Ordering::Acquire) {
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
        })
        .collect();
    let connections = format!("item=\"{IN}\"");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the senders did not finish"
        );
        let all_sent = sent.load(Ordering::Acquire) == SENDERS;
        let (status, text) = get(&address, "/metrics");
        assert_eq!(status, 200, "{text}");
        promtool(&text).unwrap_or_else(|e| panic!("promtool: {e}\n{text}"));
        if all_sent {
            let open = sample(&text, "hie_item_connections", &connections);
            assert_eq!(open, SENDERS as u64, "every sender is connected: {text}");
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    release.store(true, Ordering::Release);
    for sender in senders {
        sender.join().unwrap();
    }
    let total = (SENDERS * EACH) as u64;
    assert!(wait_until(Duration::from_secs(30), || sink.count() as u64 == total));
    // Settled: what the service received is what the operation completed, failed,
    // suspended, discarded or still queues.
    let mut text = String::new();
    assert!(
        wait_until(Duration::from_secs(10), || {
            text = get(&address, "/metrics").1;
            sample(
                &text,
                "hie_item_completed_total",
                &format!("item=\"{OUT}\""),
            ) == total
        }),
        "{text}"
    );
    promtool(&text).unwrap_or_else(|e| panic!("promtool: {e}\n{text}"));
    let out = |name: &str| sample(&text, name, &format!("item=\"{OUT}\""));
    let received = sample(&text, "hie_item_received_total", &format!("item=\"{IN}\""));
    assert_eq!(received, total, "{text}");
    assert_eq!(
        received,
        out("hie_item_completed_total")
            + out("hie_item_failed_total")
            + out("hie_item_suspended_total")
            + out("hie_item_discarded_total")
            + out("hie_item_queued"),
        "{text}"
    );
    // Every message in the latency histograms, once per stage.
    let delivered = format!("item=\"{OUT}\",stage=\"delivered\"");
    assert_eq!(
        sample(&text, "hie_item_latency_seconds_count", &delivered),
        total,
        "{text}"
    );
    let durable = format!("item=\"{IN}\",stage=\"durable\"");
    assert_eq!(
        sample(&text, "hie_item_latency_seconds_count", &durable),
        total,
        "{text}"
    );
    let aa = format!("item=\"{OUT}\",shard=\"1\",code=\"AA\"");
    assert_eq!(sample(&text, "hie_item_acks_total", &aa), total, "{text}");
    let ae = format!("item=\"{OUT}\",shard=\"1\",code=\"AE\"");
    assert_eq!(sample(&text, "hie_item_acks_total", &ae), 0, "{text}");
    assert_eq!(
        sample(&text, "hie_shard_up", ""),
        2,
        "both shards answered: {text}"
    );
    // The engine's own: the WAL wrote every message, the disk has room, each item has
    // handled a message lately.
    assert!(
        sample(&text, "hie_wal_records_total", "") >= total,
        "{text}"
    );
    assert!(sample(&text, "hie_wal_segments", "") >= 2, "{text}");
    assert!(sample(&text, "hie_data_dir_free_bytes", "") > 0, "{text}");
    assert!(sample(&text, "hie_shard_tasks_total", "") > 0, "{text}");
    assert!(
        text.contains("\nhie_ring_inbound_queued{shard=\"0\"} "),
        "{text}"
    );
    assert!(
        text.contains("\nhie_shard_busy_seconds_total{shard=\"1\"} "),
        "{text}"
    );
    for family in [
        "hie_shard_reactor_stalls_total",
        "hie_shard_reactor_stall_seconds_total",
    ] {
        let line = format!("\n{family}{{shard=\"1\"}} ");
        assert!(text.contains(&line), "{line}: {text}");
    }
    // Each ordered pair of shards has its ring.
    for (shard, peer) in [("0", "1"), ("1", "0")] {
        let line = format!("\nhie_ring_queued{{shard=\"{shard}\",peer=\"{peer}\"}} ");
        assert!(text.contains(&line), "{line}: {text}");
    }
    assert!(
        !text.contains("shard=\"0\",peer=\"0\""),
        "no ring to itself: {text}"
    );
    for item in [IN, OUT] {
        let line = format!("hie_item_last_message_age_seconds{{item=\"{item}\"}}");
        assert!(text.contains(&line), "{line}: {text}");
    }
    // `hie ctl metrics` prints the same exposition.
    let (code, printed) = ctl(&data, &["metrics"]);
    assert_eq!(code, 0);
    assert!(
        printed.contains("# TYPE hie_item_received_total counter"),
        "{printed}"
    );
}

#[test]
fn the_token_is_required_except_by_the_probes() {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, out_port) = (free_port(), free_port());
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "s3cret-token\n").unwrap();
    let token_arg = token_file.to_str().unwrap();
    let (hie, data) = start_hie_with(
        dir.path(),
        &production(1, in_port, out_port),
        &["--admin-token-file", token_arg],
    );
    let address = admin(&hie);
    assert_eq!(get(&address, "/health/live").0, 200);
    let (status, body) = get(&address, "/health/ready");
    assert_eq!(
        (status, json(&body)["ready"].clone()),
        (200, serde_json::json!(true)),
        "{body}"
    );
    for path in ["/status", "/metrics", "/histograms", "/held"] {
        assert_eq!(get(&address, path).0, 401, "{path} without the token");
        assert_eq!(
            http(&address, "GET", path, Some("wrong")).0,
            401,
            "{path}: wrong token"
        );
        assert_eq!(
            http(&address, "GET", path, Some("s3cret-token")).0,
            200,
            "{path}"
        );
    }
    let stop = http(&address, "POST", "/production/stop", None);
    assert_eq!(stop.0, 401, "no stop without the token");
    // hie ctl: refused without the token, answered with it.
    let (code, _) = ctl(&data, &["status"]);
    assert_eq!(code, 1, "refused");
    let (code, out) = ctl(&data, &["status", "--token-file", token_arg]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(OUT), "{out}");
}

#[test]
fn requests_headers_and_connections_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, out_port) = (free_port(), free_port());
    let (hie, _data) = start_hie_with(dir.path(), &production(1, in_port, out_port), &[]);
    let address = admin(&hie);
    // Headers past 16 KiB: refused (431), not read on.
    let mut stream = TcpStream::connect(&address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let big = "x".repeat(20_000);
    let _ = write!(
        stream,
        "GET /status HTTP/1.1\r\nHost: a\r\nX-Big: {big}\r\n\r\n"
    );
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:?}");
    // A body past 64 KiB: 413.
    let mut stream = TcpStream::connect(&address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let body = "x".repeat(70_000);
    let _ = write!(
        stream,
        "POST /production/stop HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer:?}");
    // Unknown routes and items.
    assert_eq!(get(&address, "/nowhere").0, 404);
    let (status, body) = http(&address, "POST", "/items/No%20Such/disable", None);
    assert_eq!(status, 404, "{body}");
    assert!(
        json(&body)["error"].as_str().unwrap().contains("No Such"),
        "{body}"
    );
    // At most 64 connections: the 65th is closed at once; the others still answer.
    let open: Vec<TcpStream> = (0..64)
        .map(|_| TcpStream::connect(&address).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut extra = TcpStream::connect(&address).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut byte = [0u8; 1];
    assert!(
        matches!(extra.read(&mut byte), Ok(0) | Err(_)),
        "the 65th is closed"
    );
    drop(open);
    // Until the server sees them closed, a new connection may still be refused.
    assert!(wait_until(Duration::from_secs(5), || {
        try_http(&address, "GET", "/health/live", None).is_ok_and(|(status, _)| status == 200)
    }));
}

#[test]
fn disabling_through_the_api_stops_the_flow_and_enabling_resumes_it_with_nothing_lost() {
    const N: usize = 10;
    let dir = tempfile::tempdir().unwrap();
    let (in_port, out_port) = (free_port(), free_port());
    let sink = TestSink::start(out_port, Answer::Code("AA"));
    let (hie, _data) = start_hie_with(dir.path(), &production(2, in_port, out_port), &[]);
    let address = admin(&hie);
    let path = "/items/Main%20ADT%20Out/disable";
    let (status, body) = http(&address, "POST", path, None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["state"], "disabled", "{body}");
    for n in 0..N {
        assert_eq!(send_one(in_port, &adt(&format!("D-{n}"), "P1")), "AA");
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(sink.count(), 0, "a disabled operation sends nothing");
    let status_now = json(&get(&address, "/status").1);
    let out = status_now["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["item"] == OUT)
        .unwrap()
        .clone();
    assert_eq!(
        (out["state"].clone(), out["queued"].clone()),
        ("disabled".into(), N.into()),
        "{status_now:#}"
    );
    let (status, body) = http(&address, "POST", "/items/Main%20ADT%20Out/enable", None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["state"], "running", "{body}");
    assert!(
        wait_until(Duration::from_secs(15), || sink.count() == N),
        "log:\n{}",
        hie.log()
    );
    let mut ids = sink.control_ids();
    ids.sort();
    let mut want: Vec<String> = (0..N).map(|n| format!("D-{n}")).collect();
    want.sort();
    assert_eq!(ids, want, "every message, once");
}

#[test]
fn histograms_count_every_message_as_json_and_as_an_hdr_log_and_reset_starts_an_interval() {
    const N: u64 = 12;
    let dir = tempfile::tempdir().unwrap();
    let (in_port, out_port) = (free_port(), free_port());
    let sink = TestSink::start(out_port, Answer::Code("AA"));
    let (hie, _data) = start_hie_with(dir.path(), &production(2, in_port, out_port), &[]);
    let address = admin(&hie);
    for n in 0..N {
        assert_eq!(send_one(in_port, &adt(&format!("H-{n}"), "P1")), "AA");
    }
    assert!(wait_until(Duration::from_secs(15), || sink.count() as u64 == N));
    let count = |query: &str| -> u64 {
        let body = json(&get(&address, &format!("/histograms?{query}")).1);
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|i| i["stages"].as_array().unwrap().iter())
            .map(|s| s["count"].as_u64().unwrap())
            .sum()
    };
    assert!(wait_until(Duration::from_secs(5), || count(
        "item=Main+ADT+Out&stage=delivered"
    ) == N));
    assert_eq!(count("item=Main%20ADT%20In"), N, "one stage: durable");
    // The HdrHistogram log: one interval per item and stage, read back to the same counts.
    let (status, log) = get(&address, "/histograms?format=hdr&item=Main+ADT+Out");
    assert_eq!(status, 200, "{log}");
    let mut counts = Vec::new();
    for entry in hdrhistogram::serialization::interval_log::IntervalLogIterator::new(log.as_bytes())
    {
        if let Ok(hdrhistogram::serialization::interval_log::LogEntry::Interval(interval)) = entry {
            use base64::Engine as _;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(interval.encoded_histogram())
                .unwrap();
            let h: hdrhistogram::Histogram<u64> = hdrhistogram::serialization::Deserializer::new()
                .deserialize(&mut bytes.as_slice())
                .unwrap();
            counts.push((interval.tag().map(|t| t.as_str().to_string()), h.len()));
        }
    }
    assert_eq!(
        counts,
        [
            (Some("Main_ADT_Out/delivered".to_string()), N),
            (Some("Main_ADT_Out/round_trip".to_string()), N)
        ],
        "{log}"
    );
    // ?reset=1 answers the interval so far and starts a new one.
    assert_eq!(count("stage=durable&reset=1"), N);
    assert_eq!(count("stage=durable"), 0, "nothing since the reset");
    assert_eq!(send_one(in_port, &adt("H-last", "P1")), "AA");
    assert!(wait_until(Duration::from_secs(5), || count(
        "stage=durable"
    ) == 1));
    // Prometheus keeps counting from the start.
    let text = get(&address, "/metrics").1;
    let durable = format!("item=\"{IN}\",stage=\"durable\"");
    assert_eq!(
        sample(&text, "hie_item_latency_seconds_count", &durable),
        N + 1,
        "{text}"
    );
    assert_eq!(get(&address, "/histograms?item=Nobody").0, 404);
    assert_eq!(get(&address, "/histograms?stage=nowhere").0, 400);
}

#[test]
fn a_port_in_use_stops_hie_run_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, out_port) = (free_port(), free_port());
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let config = common::write_production(dir.path(), &production(1, in_port, out_port));
    let out = run_to_end(&config, &dir.path().join("data"), &["--admin", &address]);
    assert_eq!(out.0, Some(1), "{}", out.1);
    assert!(
        out.1
            .contains(&format!("cannot serve the admin API on {address}")),
        "{}",
        out.1
    );
    // `--admin none`: no admin API, and nothing to collide with.
    let hie = hie_tests::Hie::start(
        &config,
        &dir.path().join("data"),
        &["--no-pin", "--admin", "none"],
    );
    assert_eq!(hie.admin, None);
}

/// Runs `hie run` with a 30 s bound: exit code and stderr.
fn run_to_end(config: &Path, data: &Path, args: &[&str]) -> (Option<i32>, String) {
    let child = Command::new(bin("hie"))
        .arg("run")
        .arg(config)
        .arg("--data-dir")
        .arg(data)
        .args(["--no-pin", "--log", "warn"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hie run");
    let mut guard = hie_tests::ChildGuard::new(child);
    let status = guard.wait_timeout(Duration::from_secs(30));
    let mut stderr = String::new();
    if let Some(child) = guard.child.as_mut()
        && let Some(err) = child.stderr.as_mut()
    {
        let _ = err.read_to_string(&mut stderr);
    }
    (status.and_then(|s| s.code()), stderr)
}

#[test]
fn a_slow_admin_client_holds_up_neither_the_data_path_nor_other_admin_requests() {
    const N: usize = 20;
    let dir = tempfile::tempdir().unwrap();
    let (in_port, out_port) = (free_port(), free_port());
    let sink = TestSink::start(out_port, Answer::Code("AA"));
    let (hie, _data) = start_hie_with(dir.path(), &production(1, in_port, out_port), &[]);
    let address = admin(&hie);
    // One client sends half a request head and stops; another asks and never reads.
    let mut half = TcpStream::connect(&address).unwrap();
    half.write_all(b"GET /status HTTP/1.1\r\nHost: a\r\nX-Slow: ")
        .unwrap();
    let mut unread = TcpStream::connect(&address).unwrap();
    for _ in 0..50 {
        let _ = unread.write_all(b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n");
    }
    for n in 0..N {
        assert_eq!(send_one(in_port, &adt(&format!("S-{n}"), "P1")), "AA");
    }
    assert!(
        wait_until(Duration::from_secs(15), || sink.count() == N),
        "log:\n{}",
        hie.log()
    );
    assert_eq!(get(&address, "/health/live").0, 200);
    assert_eq!(get(&address, "/status").0, 200);
    drop((half, unread));
}

#[test]
fn requests_that_only_read_are_answered_while_a_slow_resend_holds_the_main_thread() {
    const DELAY: Duration = Duration::from_secs(10);
    let dir = tempfile::tempdir().unwrap();
    let (in_port, out_port) = (free_port(), free_port());
    // Nothing listens at out_port yet: F-1 fails and is held. Out's queue holds one.
    let host = [
        ("RetryInterval", "1"),
        ("FailureTimeout", "2"),
        ("QueueSize", "1"),
    ];
    let text = (head("Admin", 1)
        + &tcp_service(IN, in_port, OUT, &[])
        + &tcp_operation(OUT, out_port, &host, &[]))
        .replace("wal_sync = \"fsync\"", "wal_sync = \"none\"");
    let (hie, data) = start_hie_with(dir.path(), &text, &[]);
    let address = admin(&hie);
    assert_eq!(send_one(in_port, &adt("F-1", "P1")), "AA");
    assert!(
        wait_until(Duration::from_secs(30), || common::held(&data).len() == 1),
        "F-1 fails; log:\n{}",
        hie.log()
    );
    let id = common::held(&data)[0]["message_id"]
        .as_str()
        .unwrap()
        .to_string();
    // A slow downstream takes F-2 and answers after DELAY; F-3 fills Out's queue, so
    // resending F-1 waits for room (on the main thread, one command at a time) until then.
    let sink = TestSink::start(out_port, Answer::Code("AA"));
    sink.set_delay(DELAY);
    assert_eq!(send_one(in_port, &adt("F-2", "P1")), "AA");
    assert!(wait_until(Duration::from_secs(15), || sink.count() == 1));
    sink.set_delay(Duration::ZERO);
    assert_eq!(send_one(in_port, &adt("F-3", "P1")), "AA");
    let resent = Arc::new(AtomicBool::new(false));
    let resend = std::thread::spawn({
        let (address, resent) = (address.clone(), Arc::clone(&resent));
        move || {
            let answer = http(&address, "POST", &format!("/held/{id}/resend"), None);
            resent.store(true, Ordering::Release);
            answer
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    for path in ["/metrics", "/status", "/held", "/health/ready"] {
        let (code, body) = get(&address, path);
        assert_eq!(code, 200, "{path}: {body}");
    }
    assert!(
        !resent.load(Ordering::Acquire),
        "the reads were answered while the resend still waited (it waits until the \
         downstream answers F-2, {DELAY:?} after it arrived)"
    );
    let (code, body) = resend.join().unwrap();
    assert_eq!(code, 200, "{body}");
    assert!(
        wait_until(Duration::from_secs(15), || sink.count() == 3),
        "F-2, F-3 and the resent F-1 arrive; log:\n{}",
        hie.log()
    );
    assert_eq!(sink.control_ids(), ["F-2", "F-3", "F-1"]);
}

#[test]
fn ctl_stop_stops_the_production_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, out_port) = (free_port(), free_port());
    let (mut hie, data) = start_hie_with(dir.path(), &production(1, in_port, out_port), &[]);
    let (code, out) = ctl(&data, &["stop"]);
    assert_eq!(code, 0, "{out}");
    let exit = hie.process.wait_timeout(Duration::from_secs(30));
    assert!(exit.is_some_and(|e| e.success()), "log:\n{}", hie.log());
    assert!(
        !data.join("admin.address").exists(),
        "the address file goes with it"
    );
}

#[test]
fn readiness_is_503_while_a_long_recovery_runs_and_200_after() {
    const SENDERS: usize = 8;
    const EACH: usize = 1_500;
    let dir = tempfile::tempdir().unwrap();
    let (in_port, out_port) = (free_port(), free_port());
    // The operation is disabled: every message stays open in the WAL, for recovery to
    // read at the next start.
    let text = (head("Recovery", 1)
        + &tcp_service(IN, in_port, OUT, &[])
        + &common::disabled(&tcp_operation(
            OUT,
            out_port,
            &[("QueueSize", "100000")],
            &[],
        )))
        .replace("wal_sync = \"fsync\"", "wal_sync = \"none\"")
        .replace(
            "wal_segment_bytes = 1048576",
            "wal_segment_bytes = 67108864",
        );
    let (mut hie, data) = start_hie_with(dir.path(), &text, &[]);
    let senders: Vec<_> = (0..SENDERS)
        .map(|s| {
            std::thread::spawn(move || {
                let address = format!("127.0.0.1:{in_port}");
                let mut conn = hie_tests::MllpConn::connect(&address).unwrap();
                for n in 0..EACH {
                    conn.exchange(&adt(&format!("R-{s}-{n}"), "P1")).unwrap();
                }
            })
        })
        .collect();
    for sender in senders {
        sender.join().unwrap();
    }
    hie.process.kill();
    // Restart on a known admin port and ask for readiness from the first moment.
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let config = dir.path().join("production.toml");
    let child = Command::new(bin("hie"))
        .arg("run")
        .arg(&config)
        .arg("--data-dir")
        .arg(&data)
        .args(["--no-pin", "--log", "warn", "--admin", &address])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _guard = hie_tests::ChildGuard::new(child);
    let mut seen = Vec::new();
    let ready = wait_until(Duration::from_secs(60), || {
        let Ok((status, body)) = try_http(&address, "GET", "/health/ready", None) else {
            return false;
        };
        if seen.last().is_none_or(|(s, _)| *s != status) {
            seen.push((status, body));
        }
        status == 200
    });
    assert!(ready, "{seen:?}");
    let (status, why) = &seen[0];
    assert_eq!(*status, 503, "{seen:?}");
    assert!(why.contains("recovering"), "{why}");
    let metrics = get(&address, "/metrics").1;
    let open = sample(&metrics, "hie_wal_open_messages", "");
    assert_eq!(open, (SENDERS * EACH) as u64, "every message recovered");
    assert!(
        metrics.contains("\nhie_start_seconds "),
        "the start's length is exported: {metrics}"
    );
}

#[test]
fn check_reports_an_unreadable_token_file_and_an_admin_address_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, out_port) = (free_port(), free_port());
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap();
    let missing = dir.path().join("no-token");
    let text = production(1, in_port, out_port).replacen(
        "\n[[item]]",
        &format!(
            "admin_address = \"{address}\"\nadmin_token_file = \"{}\"\n\n[[item]]",
            missing.display()
        ),
        1,
    );
    let config = common::write_production(dir.path(), &text);
    let check = |config: &Path| {
        let out = Command::new(bin("hie"))
            .args(["check", "--json"])
            .arg(config)
            .output()
            .unwrap();
        let json = json(&String::from_utf8_lossy(&out.stdout));
        (out.status.code(), json)
    };
    let (code, found) = check(&config);
    assert_eq!(code, Some(1), "{found:#}");
    let messages = |kind: &str| found[kind].to_string();
    assert!(messages("errors").contains("admin_token_file"), "{found:#}");
    assert!(messages("errors").contains("no-token"), "{found:#}");
    assert!(
        messages("warnings").contains(&address.to_string()),
        "{found:#}"
    );
    // hie run agrees: it refuses to start without its token.
    let out = run_to_end(
        &config,
        &dir.path().join("data"),
        &["--admin", "127.0.0.1:0"],
    );
    assert_eq!(out.0, Some(1), "{}", out.1);
    assert!(out.1.contains("admin token file"), "{}", out.1);
    // With the token readable and the port free, both are content.
    std::fs::write(&missing, "t0ken\n").unwrap();
    drop(taken);
    let (code, found) = check(&config);
    assert_eq!(code, Some(0), "{found:#}");
    assert!(
        !messages_of(&found, "warnings").contains("admin"),
        "{found:#}"
    );
}

fn messages_of(found: &serde_json::Value, kind: &str) -> String {
    found[kind].to_string()
}

#[test]
fn check_warns_of_a_service_on_the_admin_apis_default_port() {
    let dir = tempfile::tempdir().unwrap();
    let text = production(1, 9090, free_port());
    let config = common::write_production(dir.path(), &text);
    let out = Command::new(bin("hie"))
        .args(["check", "--json"])
        .arg(&config)
        .output()
        .unwrap();
    let found = json(&String::from_utf8_lossy(&out.stdout));
    let warnings = found["warnings"].to_string();
    assert!(
        warnings.contains("the admin API's default port") && warnings.contains(IN),
        "{found:#}"
    );
}
