//! The WAL through the real `hie` binary: a full disk, file modes, and a segment that
//! lost acknowledged records.
//!
//! - Disk full (needs root for a 6 MiB tmpfs; skipped with a message otherwise): once the
//!   file system is full, the WAL cannot start its next segment; every message gets AE,
//!   `hie ctl status` shows the WAL unavailable, the log says so once (not per NAK); once
//!   space is freed the WAL resumes by itself and every message ACKed arrives. Again with
//!   the log on the full disk as well.
//! - Disk full while messages are on their way (a router → operation production): the
//!   router and the operation neither fail nor restart; they wait for the WAL (the status
//!   shows the router `waiting_for_wal`) and, once space returns, go on: every ACKed
//!   message arrives exactly once and in order, every outcome is recorded (nothing is
//!   left open in the WAL) and a restart delivers nothing twice.
//! - Modes: under umask 000 the data directory, the shard directories and every file in
//!   them are private (0700 / 0600).
//! - A segment cut short after a clean stop: the restart logs an ERROR with the number of
//!   acknowledged messages lost, `hie ctl status` lists it, and the intact messages are
//!   delivered.

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{
    Answer, TestSink, adt, control_id, ctl, head, item_entries, router, status, tcp_operation,
    tcp_service, wait_status,
};
use hie_tests::{MllpConn, field, free_port, wait_until};

fn production(in_port: u16, out_port: u16) -> String {
    head("Wal", 1)
        + &tcp_service("In", in_port, "Out", &[])
        + &tcp_operation("Out", out_port, &[], &[])
}

/// An ADT of about `len` bytes (an NTE segment pads it).
fn big_adt(control_id: &str, len: usize) -> Vec<u8> {
    let mut msg = adt(control_id, "P1");
    msg.extend_from_slice(b"NTE|1||");
    msg.extend(std::iter::repeat_n(b'X', len));
    msg.push(b'\r');
    msg
}

/// MSA-1 of the answer to `msg` on `conn` (the engine's log if none comes).
fn send(hie: &hie_tests::Hie, conn: &mut MllpConn, msg: &[u8]) -> String {
    match conn.exchange(msg) {
        Ok(ack) => field(&ack, "MSA", 1).unwrap_or_default(),
        Err(e) => panic!("no answer to {}: {e}; log:\n{}", control_id(msg), hie.log()),
    }
}

/// Frees the disk (removes `filler`), waits for the WAL to resume, then sends `n` more
/// messages (`A-0000`…), each of which must be ACKed, onto `acked`.
fn free_disk_then_send(
    hie: &hie_tests::Hie,
    data: &Path,
    filler: &Path,
    conn: &mut MllpConn,
    acked: &mut Vec<String>,
    n: usize,
) {
    std::fs::remove_file(filler).unwrap();
    assert!(
        wait_until(Duration::from_secs(15), || wal_state(data) == "writable"),
        "the WAL did not resume; log:\n{}",
        hie.log()
    );
    for n in 0..n {
        let id = format!("A-{n:04}");
        assert_eq!(send(hie, conn, &big_adt(&id, 8 << 10)), "AA", "{id}");
        acked.push(id);
    }
}

/// Waits until the sink has received as many messages as were ACKed.
fn wait_arrived(hie: &hie_tests::Hie, sink: &TestSink, acked: &[String]) {
    assert!(
        wait_until(Duration::from_secs(20), || sink.count() >= acked.len()),
        "{} of {} ACKed messages arrived; log:\n{}",
        sink.count(),
        acked.len(),
        hie.log()
    );
}

fn wal_state(data: &Path) -> String {
    status(data)["shards"][0]["wal_state"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` at `dir`; `None` (with the reason printed) when this
    /// process may not mount (not root, or no CAP_SYS_ADMIN).
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output();
        match out {
            Ok(out) if out.status.success() => Some(Tmpfs(dir.to_owned())),
            Ok(out) => {
                eprintln!(
                    "SKIPPED: cannot mount a tmpfs (root needed): {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run mount: {e}");
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes `path` until the file system is full.
fn fill(path: &Path) {
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0xA5u8; 64 << 10];
    while file.write_all(&chunk).is_ok() {}
    let _ = file.sync_all();
}

#[test]
fn a_full_disk_naks_until_space_returns_then_the_wal_resumes_by_itself() {
    full_disk(false);
}

/// The log on the full disk too: lines are lost, the engine is not (a failed write of a
/// log line used to panic the shard that logged it, and hie hung).
#[test]
fn a_full_disk_that_also_holds_the_log_naks_and_resumes() {
    full_disk(true);
}

/// Fills a tmpfs holding the data directory (and the log, with `log_on_it`), sends until
/// the WAL cannot start its next segment, checks the NAKs, status and log, frees space
/// and checks the WAL resumes and every ACKed message arrives.
fn full_disk(log_on_it: bool) {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    let Some(_tmpfs) = Tmpfs::mount(&mnt, "6m") else {
        return;
    };
    let (in_port, out_port) = (free_port(), free_port());
    let sink = TestSink::start(out_port, Answer::Code("AA"));
    let config = common::write_production(dir.path(), &production(in_port, out_port));
    // The log goes next to the data directory.
    let data = if log_on_it {
        mnt.join("data")
    } else {
        mnt.clone()
    };
    let args = ["--no-pin", "--log", "warn"];
    let mut hie = hie_tests::Hie::start(&config, &data, &args);
    let filler = mnt.join("filler");
    fill(&filler);

    // A 1 MiB segment holds about 120 messages of 8 KiB; the next one cannot be made.
    let mut conn = MllpConn::connect(&format!("127.0.0.1:{in_port}")).unwrap();
    let mut acked = Vec::new();
    let mut first_nak = None;
    for n in 0..400 {
        let id = format!("F-{n:04}");
        match send(&hie, &mut conn, &big_adt(&id, 8 << 10)).as_str() {
            "AA" => acked.push(id),
            "AE" => {
                first_nak = Some(n);
                break;
            }
            other => panic!("{id}: {other}; log:\n{}", hie.log()),
        }
    }
    assert!(
        first_nak.is_some(),
        "no NAK on a full disk; log:\n{}",
        hie.log()
    );
    assert!(
        acked.len() > 50,
        "{} ACKed before the disk filled",
        acked.len()
    );
    for n in 0..50 {
        let id = format!("R-{n:04}");
        assert_eq!(send(&hie, &mut conn, &big_adt(&id, 8 << 10)), "AE", "{id}");
    }
    let state = wal_state(&data);
    assert!(state.starts_with("unavailable"), "{state}");
    if !log_on_it {
        let log = hie.log();
        assert_eq!(log.matches("WAL cannot write").count(), 1, "log:\n{log}");
        assert_eq!(
            log.matches("NAK AE").count(),
            0,
            "a line per NAK; log:\n{log}"
        );
    }

    free_disk_then_send(&hie, &data, &filler, &mut conn, &mut acked, 150);
    wait_arrived(&hie, &sink, &acked);
    let arrived = sink.control_ids();
    for id in &acked {
        assert!(arrived.contains(id), "ACKed {id} never arrived");
    }
    assert!(hie.log().contains("WAL writable again"), "{}", hie.log());
    drop(conn);
    let stopped = hie.process.stop(Duration::from_secs(30));
    assert!(stopped.is_some_and(|s| s.success()), "log:\n{}", hie.log());

    // What the WAL dropped when it resumed was never acknowledged: no loss to report.
    let hie = hie_tests::Hie::start(&config, &data, &args);
    let errors = status(&data)["shards"][0]["wal_recovery_errors"].clone();
    assert_eq!(errors, serde_json::json!([]), "log:\n{}", hie.log());
}

fn routed_production(in_port: u16, out_port: u16) -> String {
    head("WalRoute", 1)
        + &tcp_service("In", in_port, "Route", &[])
        + &router("Route", "Out", &[])
        + &tcp_operation("Out", out_port, &[], &[])
}

/// Every item's `restarts` and `failed` counters are 0 and no item is `failed`.
fn assert_nothing_failed(hie: &hie_tests::Hie, data: &Path) {
    let status = status(data);
    for item in ["In", "Route", "Out"] {
        for entry in item_entries(&status, item) {
            assert_eq!(
                entry["restarts"],
                0,
                "{item}: {status:#}\nlog:\n{}",
                hie.log()
            );
            assert_eq!(
                entry["failed"],
                0,
                "{item}: {status:#}\nlog:\n{}",
                hie.log()
            );
            assert_ne!(entry["state"], "failed", "{item}: {status:#}");
        }
    }
}

/// The disk fills while messages wait at the router (paused) and at the operation
/// (paused): once resumed, the operation delivers and its outcome records wait for the
/// WAL, the router waits for the WAL with its batch; space returns and everything goes on.
#[test]
fn a_full_disk_makes_routers_and_operations_wait_then_everything_arrives_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    let Some(_tmpfs) = Tmpfs::mount(&mnt, "6m") else {
        return;
    };
    let (in_port, out_port) = (free_port(), free_port());
    let sink = TestSink::start(out_port, Answer::Code("AA"));
    let config = common::write_production(dir.path(), &routed_production(in_port, out_port));
    let data = mnt.clone();
    let args = ["--no-pin", "--log", "warn", "--shutdown-timeout", "5"];
    let mut hie = hie_tests::Hie::start(&config, &data, &args);
    let ok = |args: &[&str]| {
        let (code, out) = ctl(&data, args);
        assert_eq!(code, 0, "hie ctl {args:?}: {out}");
    };
    let mut conn = MllpConn::connect(&format!("127.0.0.1:{in_port}")).unwrap();
    let mut acked = Vec::new();

    // Routed, waiting at the paused operation.
    ok(&["pause", "Out"]);
    for n in 0..20 {
        let id = format!("O-{n:04}");
        assert_eq!(send(&hie, &mut conn, &big_adt(&id, 8 << 10)), "AA", "{id}");
        acked.push(id);
    }
    // Waiting at the paused router, until the disk is full.
    ok(&["pause", "Route"]);
    let filler = mnt.join("filler");
    fill(&filler);
    let mut naked = false;
    for n in 0..400 {
        let id = format!("R-{n:04}");
        match send(&hie, &mut conn, &big_adt(&id, 8 << 10)).as_str() {
            "AA" => acked.push(id),
            "AE" => {
                naked = true;
                break;
            }
            other => panic!("{id}: {other}; log:\n{}", hie.log()),
        }
    }
    assert!(naked, "no NAK on a full disk; log:\n{}", hie.log());
    assert!(wal_state(&data).starts_with("unavailable"));

    // The operation delivers what it holds; its outcome records cannot be written yet.
    ok(&["resume", "Out"]);
    assert!(
        wait_until(Duration::from_secs(20), || sink.count() >= 20),
        "{} of 20 arrived; log:\n{}",
        sink.count(),
        hie.log()
    );
    // The router cannot record its routing: it waits, and does not fail or restart.
    ok(&["resume", "Route"]);
    wait_status(
        &hie,
        &data,
        Duration::from_secs(10),
        "Route waits for the WAL",
        |s| {
            item_entries(s, "Route")
                .iter()
                .all(|e| e["waiting_for_wal"] == true && e["state"] == "running")
        },
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert_nothing_failed(&hie, &data);
    assert_eq!(
        sink.count(),
        20,
        "nothing is routed while the WAL cannot record it"
    );

    free_disk_then_send(&hie, &data, &filler, &mut conn, &mut acked, 30);
    wait_arrived(&hie, &sink, &acked);
    // Every outcome recorded, the router's wait over: nothing left open in the WAL.
    wait_status(&hie, &data, Duration::from_secs(10), "all recorded", |s| {
        s["shards"][0]["wal_open_messages"] == 0
            && item_entries(s, "Route")
                .iter()
                .all(|e| e["waiting_for_wal"] == false)
    });
    assert_nothing_failed(&hie, &data);
    assert_eq!(
        sink.control_ids(),
        acked,
        "each ACKed message once, in order"
    );
    drop(conn);
    let stopped = hie.process.stop(Duration::from_secs(30));
    assert!(stopped.is_some_and(|s| s.success()), "log:\n{}", hie.log());

    // A restart owes nothing: no message comes twice.
    let hie = hie_tests::Hie::start(&config, &data, &args);
    let status = status(&data);
    assert_eq!(status["shards"][0]["wal_open_messages"], 0, "{status:#}");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        sink.count(),
        acked.len(),
        "redelivered; log:\n{}",
        hie.log()
    );
}

#[test]
fn data_files_are_private_under_umask_000() {
    // SAFETY: umask only changes this process's file-creation mask (inherited by hie).
    unsafe { libc::umask(0) };
    let dir = tempfile::tempdir().unwrap();
    let (in_port, out_port) = (free_port(), free_port());
    let sink = TestSink::start(out_port, Answer::Code("AA"));
    let (mut hie, data) = common::start_hie(dir.path(), &production(in_port, out_port));
    let mut conn = MllpConn::connect(&format!("127.0.0.1:{in_port}")).unwrap();
    // Past a sixteenth of a segment: a spare segment is made too.
    for n in 0..100 {
        assert_eq!(
            send(&hie, &mut conn, &big_adt(&format!("M-{n}"), 1000)),
            "AA"
        );
    }
    assert!(wait_until(Duration::from_secs(10), || sink.count() == 100));
    drop(conn);
    assert!(hie.process.stop(Duration::from_secs(30)).is_some());
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700, "{}", data.display());
    let shard = data.join("shard-0");
    assert_eq!(mode(&shard), 0o700);
    let mut files = 0;
    for entry in std::fs::read_dir(&shard).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
        files += 1;
    }
    assert!(files >= 4, "segment, spare, LOCK, SYNCED");
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        let meta = std::fs::metadata(&path).unwrap();
        if meta.is_file() {
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
    }
}

/// Offset just past the last non-zero byte of `bytes`.
fn written_end(bytes: &[u8]) -> usize {
    bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1)
}

#[test]
fn a_segment_cut_short_is_an_error_with_the_messages_lost_and_the_rest_is_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, out_port) = (free_port(), free_port());
    let text = production(in_port, out_port);
    // Nothing listens downstream: the 50 messages stay queued, open in the WAL.
    let args = ["--shutdown-timeout", "0"];
    let (mut hie, data) = common::start_hie_with(dir.path(), &text, &args);
    let mut conn = MllpConn::connect(&format!("127.0.0.1:{in_port}")).unwrap();
    for n in 0..50 {
        assert_eq!(
            send(&hie, &mut conn, &adt(&format!("T-{n:02}"), "P1")),
            "AA"
        );
    }
    drop(conn);
    assert!(hie.process.stop(Duration::from_secs(30)).is_some());

    let segment = data.join("shard-0/00000000000000000001.wal");
    let bytes = std::fs::read(&segment).unwrap();
    let cut = written_end(&bytes) / 2;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap()
        .set_len(cut as u64)
        .unwrap();

    let sink = TestSink::start(out_port, Answer::Code("AA"));
    let (hie, data) = common::start_hie_with(dir.path(), &text, &args);
    let errors = status(&data)["shards"][0]["wal_recovery_errors"].clone();
    let errors = errors.as_array().expect("wal_recovery_errors").clone();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let line = errors[0].as_str().unwrap();
    let lost: usize = line
        .split(": ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {line}"));
    assert!(line.contains("acknowledged messages lost"), "{line}");
    assert!((1..50).contains(&lost), "{line}");
    let log = hie.log();
    assert!(
        log.lines()
            .any(|l| l.contains("ERROR")
                && l.contains(&format!("{lost} acknowledged messages lost"))),
        "log:\n{log}"
    );
    let intact = 50 - lost;
    assert!(
        wait_until(Duration::from_secs(20), || sink.count() >= intact),
        "{} of {intact} intact messages arrived; log:\n{}",
        sink.count(),
        hie.log()
    );
    // The first messages, each once (the order is not this test's concern).
    let expect: Vec<String> = (0..intact).map(|n| format!("T-{n:02}")).collect();
    let mut arrived = sink.control_ids();
    arrived.sort();
    assert_eq!(arrived, expect);
    let arrivals = sink.arrivals();
    assert!(arrivals.iter().all(|m| control_id(m).starts_with("T-")));
}
