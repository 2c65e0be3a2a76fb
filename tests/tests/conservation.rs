//! Conservation, end to end: every message the production acknowledged is delivered
//! downstream or listed (`hie ctl status`, `hie ctl held`), exactly, through every item kind and the ways
//! a message can wait: a TCP service and a file service feed a router that sends every
//! message to a TCP operation whose downstream is down, a file operation, a TCP operation
//! whose downstream refuses everything (AE: suspended), and a TCP operation the
//! production disables; the engine restarts on fewer shards in between.
//!
//! Run 1, two shards: `TcpIn`, `TcpOut` and `Refused` on shard 0, `FileIn`, `FileOut`
//! and `Held` on shard 1 (so what the file service reads is in shard 1's WAL). Run 2, one
//! shard: shard 1's WAL is re-placed, more messages come in, the downstream comes up and
//! `Held` is enabled; then every ACKed control id has arrived at each target once, and
//! nothing else has, and what is left open is exactly the suspended list.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{
    Answer, TestSink, adt, control_ids_in, ctl, disabled, file_operation, file_service, head,
    router, send_one, start_hie_with, tcp_operation, tcp_service, wait_status,
};
use hie_tests::{Hie, free_port, wait_until};

/// TCP messages sent in each run.
const TCP_PER_RUN: usize = 40;
/// Files dropped in run 1, and messages in each.
const FILES: usize = 4;
const PER_FILE: usize = 10;

/// What `hie ctl status` and `hie ctl held` list of the messages not delivered (yet).
/// The one place this test reads them, so that it follows `hie ctl`'s lists as they grow.
#[derive(Debug, Default)]
struct Listed {
    /// Per item: messages in its queues (for a disabled item, waiting for its enable).
    queued: HashMap<String, u64>,
    /// Per item: the control ids of the messages it suspended, and of those that failed
    /// there, as `hie ctl held` lists them.
    suspended: HashMap<String, Vec<String>>,
    failed: HashMap<String, Vec<String>>,
    /// Messages open in the WALs of every shard.
    wal_open: u64,
}

fn listed(data: &Path, status: &serde_json::Value) -> Listed {
    let mut listed = Listed::default();
    for shard in status["shards"].as_array().into_iter().flatten() {
        listed.wal_open += shard["wal_open_messages"].as_u64().unwrap_or(0);
        for item in shard["items"].as_array().into_iter().flatten() {
            let name = item["item"].as_str().unwrap_or("").to_string();
            *listed.queued.entry(name).or_default() += item["queued"].as_u64().unwrap_or(0);
        }
    }
    for entry in common::held(data) {
        let item = entry["item"].as_str().unwrap_or("").to_string();
        let id = entry["control_id"].as_str().unwrap_or("").to_string();
        let list = match entry["kind"].as_str() {
            Some("failed") => &mut listed.failed,
            _ => &mut listed.suspended,
        };
        list.entry(item).or_default().push(id);
    }
    listed
}

/// The number of control ids `list` holds for `item`.
fn count(list: &HashMap<String, Vec<String>>, item: &str) -> Option<u64> {
    list.get(item).map(|ids| ids.len() as u64)
}

struct Setup {
    _root: tempfile::TempDir,
    root: PathBuf,
    input: PathBuf,
    archive: PathBuf,
    out: PathBuf,
    in_port: u16,
    tcp_out_port: u16,
    refused_port: u16,
    held_port: u16,
}

fn setup() -> Setup {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().to_path_buf();
    let s = Setup {
        input: path.join("in"),
        archive: path.join("archive"),
        out: path.join("out"),
        root: path,
        _root: root,
        in_port: free_port(),
        tcp_out_port: free_port(),
        refused_port: free_port(),
        held_port: free_port(),
    };
    std::fs::create_dir_all(&s.input).unwrap();
    s
}

/// A TCP operation to `port` that retries every second for ever.
fn patient_operation(name: &str, port: u16) -> String {
    tcp_operation(
        name,
        port,
        &[("RetryInterval", "1"), ("FailureTimeout", "-1")],
        &[("ConnectTimeout", "1")],
    )
}

fn production(s: &Setup) -> String {
    head("Conservation", 2)
        + &tcp_service("TcpIn", s.in_port, "Router", &[])
        + &file_service("FileIn", &s.input, &s.archive, "Router")
        + &router("Router", "TcpOut,FileOut,Refused,Held", &[])
        + &patient_operation("TcpOut", s.tcp_out_port)
        + &file_operation("FileOut", &s.out, "all.hl7")
        + &patient_operation("Refused", s.refused_port)
        + &disabled(&patient_operation("Held", s.held_port))
}

/// Sends `TCP_PER_RUN` messages with ids `{prefix}-NN`; the ids ACKed (AA).
fn send_tcp(port: u16, prefix: &str) -> Vec<String> {
    let mut acked = Vec::new();
    for n in 0..TCP_PER_RUN {
        let id = format!("{prefix}-{n:02}");
        if send_one(port, &adt(&id, &format!("P{}", n % 5))) == "AA" {
            acked.push(id);
        }
    }
    acked
}

/// Drops `FILES` files of `PER_FILE` messages; the ids of every message, once the file
/// service has taken (stored and archived) every file.
fn drop_files(s: &Setup, hie: &Hie) -> Vec<String> {
    let mut ids = Vec::new();
    for f in 0..FILES {
        let mut batch = Vec::new();
        for m in 0..PER_FILE {
            let id = format!("F{f}-{m:02}");
            batch.extend(adt(&id, &format!("Q{m}")));
            ids.push(id);
        }
        let tmp = s.input.join(format!(".batch{f}.part"));
        std::fs::write(&tmp, &batch).unwrap();
        std::fs::rename(&tmp, s.input.join(format!("batch{f}.hl7"))).unwrap();
    }
    let taken = || {
        std::fs::read_dir(&s.archive).map_or(0, |d| d.count()) == FILES
            && std::fs::read_dir(&s.input).map_or(0, |d| d.count()) == 0
    };
    assert!(
        wait_until(Duration::from_secs(30), taken),
        "the file service did not take every file; log:\n{}",
        hie.log()
    );
    ids
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

/// Waits until `arrived()` holds as many ids as `acked`, then checks they are the same
/// ids, each once.
fn assert_delivered(what: &str, hie: &Hie, acked: &[String], arrived: impl Fn() -> Vec<String>) {
    let complete = wait_until(Duration::from_secs(60), || arrived().len() >= acked.len());
    let got = sorted(arrived());
    assert!(
        complete,
        "{what}: {} of {} arrived; log:\n{}",
        got.len(),
        acked.len(),
        hie.log()
    );
    assert_eq!(got, sorted(acked.to_vec()), "{what}: exactly the ACKed ids");
}

#[test]
fn every_acknowledged_message_is_delivered_or_listed_across_a_restart_on_fewer_shards() {
    let s = setup();
    let held_sink = TestSink::start(s.held_port, Answer::Code("AA"));
    let refusing_sink = TestSink::start(s.refused_port, Answer::Code("AE"));
    let fast_stop = ["--shutdown-timeout", "1"];
    let (hie, data) = start_hie_with(&s.root, &production(&s), &fast_stop);

    // Run 1: the TCP downstream is down and Held is disabled.
    let mut acked = send_tcp(s.in_port, "T1");
    acked.extend(drop_files(&s, &hie));
    assert_eq!(acked.len(), TCP_PER_RUN + FILES * PER_FILE, "all ACKed");
    let file_out = s.out.join("all.hl7");
    assert_delivered("FileOut, run 1", &hie, &acked, || control_ids_in(&file_out));
    let all = Some(acked.len() as u64);
    let status = wait_status(&hie, &data, Duration::from_secs(30), "listed", |st| {
        let l = listed(&data, st);
        l.queued.get("Held").copied() == all && count(&l.suspended, "Refused") == all
    });
    let run1 = listed(&data, &status);
    assert_eq!(
        run1.wal_open,
        acked.len() as u64,
        "each message stays open for TcpOut, Refused and Held: {run1:?}"
    );
    assert_eq!(held_sink.count(), 0);
    common::stop(hie);

    // Run 2, on one shard: more messages, then the downstream comes up and Held is
    // enabled.
    let mut args = fast_stop.to_vec();
    args.extend(["--shards", "1"]);
    let (hie, data) = start_hie_with(&s.root, &production(&s), &args);
    acked.extend(send_tcp(s.in_port, "T2"));
    assert_eq!(acked.len(), 2 * TCP_PER_RUN + FILES * PER_FILE, "all ACKed");
    let tcp_sink = TestSink::start(s.tcp_out_port, Answer::Code("AA"));
    let (code, text) = ctl(&data, &["enable", "Held"]);
    assert_eq!(code, 0, "{text}");

    assert_delivered("TcpOut", &hie, &acked, || tcp_sink.control_ids());
    assert_delivered("Held", &hie, &acked, || held_sink.control_ids());
    assert_delivered("FileOut", &hie, &acked, || control_ids_in(&file_out));
    // Refused got each message once and suspended it; suspended messages are not sent
    // again after a restart, and stay listed and open.
    assert_delivered("Refused", &hie, &acked, || refusing_sink.control_ids());
    let all = acked.len() as u64;
    let status = wait_status(&hie, &data, Duration::from_secs(10), "settled", |st| {
        let l = listed(&data, st);
        l.wal_open == all && count(&l.suspended, "Refused") == Some(all)
    });
    let end = listed(&data, &status);
    assert!(
        end.queued.values().all(|&n| n == 0) && end.suspended.len() == 1 && end.failed.is_empty(),
        "only the suspended messages are left: {end:?}"
    );
    let mut suspended = end.suspended["Refused"].clone();
    suspended.sort();
    assert_eq!(
        suspended,
        sorted(acked.clone()),
        "exactly the ACKed ids are listed"
    );
    common::stop(hie);
    assert_files_kept(&s.archive);
}

/// The file service archived every file it read (nothing it took is gone unrecorded).
fn assert_files_kept(archive: &Path) {
    let n = std::fs::read_dir(archive).map_or(0, |d| d.count());
    assert_eq!(n, FILES, "archived files");
}
