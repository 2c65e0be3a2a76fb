//! The engine end to end: the real `hie run` between a real MLLP sender (this test) and
//! a real MLLP receiver (`hie-loadgen sink`), with a file operation beside it.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{head, router, tcp_operation, tcp_service};
use hie_tests::{Hie, MllpConn, Sink, corpus_dir, field, free_port, wait_until};

/// Every message of every corpus file, split as hie splits batches.
fn corpus_messages() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(corpus_dir().join("hl7"))
        .expect("corpus dir")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "hl7"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        for (n, raw) in hie_hl7::Batch::new(&bytes).enumerate() {
            if hie_hl7::Message::scan(raw).is_ok() {
                let name = format!("{}#{n}", file.file_name().unwrap().to_string_lossy());
                out.push((name, raw.to_vec()));
            }
        }
    }
    out
}

fn write_production(dir: &Path, in_port: u16, out_port: u16, file_out: &Path) -> PathBuf {
    let file_operation = format!(
        "\n[[item]]\nname = \"FileOut\"\nclass = \"EnsLib.HL7.Operation.FileOperation\"\n\
         [item.host]\nFilename = \"msg%+(00000).hl7\"\n[item.adapter]\nFilePath = \"{}\"\n",
        file_out.display()
    );
    let text = head("EndToEnd", 2)
        + &tcp_service("In", in_port, "Router", &[])
        + &router("Router", "Out,FileOut", &[])
        + &tcp_operation("Out", out_port, &[], &[])
        + &file_operation;
    common::write_production(dir, &text)
}

fn sorted_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

#[test]
fn every_corpus_message_arrives_byte_identical_at_the_sink_and_in_the_output_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, out_port) = (free_port(), free_port());
    let saved = dir.path().join("sink");
    let file_out = dir.path().join("out");
    std::fs::create_dir_all(&saved).unwrap();
    let sink = Sink::start(out_port, &["--save-dir", saved.to_str().unwrap()]);
    let config = write_production(dir.path(), in_port, out_port, &file_out);
    let mut hie = Hie::start(
        &config,
        &dir.path().join("data"),
        &["--no-pin", "--log", "warn"],
    );

    let messages = corpus_messages();
    assert!(messages.len() >= 60, "{} corpus messages", messages.len());
    let mut conn = MllpConn::connect(&format!("127.0.0.1:{in_port}")).unwrap();
    for (name, msg) in &messages {
        let ack = conn
            .exchange(msg)
            .unwrap_or_else(|e| panic!("{name}: no ACK: {e}; log:\n{}", hie.log()));
        assert_eq!(
            field(&ack, "MSH", 9).as_deref().map(|t| &t[..3]),
            Some("ACK"),
            "{name}"
        );
        let control_id = hie_hl7::Message::scan(msg)
            .unwrap()
            .control_id()
            .map(|c| String::from_utf8_lossy(c).into_owned());
        let msa1 = field(&ack, "MSA", 1).unwrap_or_default();
        assert!(msa1 == "AA" || msa1 == "CA", "{name}: MSA-1 {msa1}");
        assert_eq!(
            field(&ack, "MSA", 2),
            control_id.or(Some(String::new())),
            "{name}: MSA-2"
        );
    }
    let n = messages.len();
    let arrived = wait_until(Duration::from_secs(30), || {
        sorted_files(&saved).len() >= n && sorted_files(&file_out).len() >= n
    });
    assert!(
        arrived,
        "sink has {}, output dir {} of {n}; log:\n{}",
        sorted_files(&saved).len(),
        sorted_files(&file_out).len(),
        hie.log()
    );
    for (files, what) in [
        (sorted_files(&saved), "sink"),
        (sorted_files(&file_out), "file operation"),
    ] {
        assert_eq!(files.len(), n, "{what}: no duplicates");
        for ((name, sent), file) in messages.iter().zip(&files) {
            let got = std::fs::read(file).unwrap();
            // The file operation ends each message per its default Framing, AsciiLF (after
            // the last segment's CR, added when the sender left it off).
            let mut sent = sent.clone();
            if what == "file operation" {
                if !sent.ends_with(b"\r") {
                    sent.push(b'\r');
                }
                sent.push(b'\n');
            }
            assert!(
                got == sent,
                "{what}: {name} differs ({} vs {} bytes)",
                got.len(),
                sent.len()
            );
        }
    }
    let status = hie.process.stop(Duration::from_secs(60));
    assert!(
        status.is_some_and(|s| s.success()),
        "clean shutdown; log:\n{}",
        hie.log()
    );
    sink.finish();
}

/// A production `In` (TCP service with `AckMode`) → `Out` (TCP operation to the sink).
fn write_direct_production(dir: &Path, in_port: u16, out_port: u16, ack_mode: &str) -> PathBuf {
    let text = head("Direct", 1)
        + &tcp_service("In", in_port, "Out", &[("AckMode", ack_mode)])
        + &tcp_operation("Out", out_port, &[], &[]);
    common::write_production(dir, &text)
}

#[test]
fn an_application_ack_mode_service_returns_the_downstream_reply() {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, out_port) = (free_port(), free_port());
    // The downstream system answers AE: with AckMode=App that AE comes back upstream
    // (with Immed it would be hie's own AA).
    let sink = Sink::start(out_port, &["--ae-rate", "1"]);
    let config = write_direct_production(dir.path(), in_port, out_port, "App");
    let mut hie = Hie::start(
        &config,
        &dir.path().join("data"),
        &["--shards", "1", "--no-pin"],
    );
    let mut conn = MllpConn::connect(&format!("127.0.0.1:{in_port}")).unwrap();
    for n in 0..5 {
        let msg = format!(
            "MSH|^~\\&|LAB|HOSP|EHR|HOSP|20260101120000||ADT^A01|APP{n}|P|2.5\rPID|||MRN{n}\r"
        );
        let ack = conn.exchange(msg.as_bytes()).unwrap();
        assert_eq!(
            field(&ack, "MSA", 1).as_deref(),
            Some("AE"),
            "{}",
            String::from_utf8_lossy(&ack)
        );
        assert_eq!(field(&ack, "MSA", 2), Some(format!("APP{n}")));
    }
    assert!(
        hie.process
            .stop(Duration::from_secs(60))
            .is_some_and(|s| s.success()),
        "{}",
        hie.log()
    );
    sink.finish();
}

#[test]
fn log_trace_events_traces_each_message_and_lifecycle_step_of_the_item() {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, out_port) = (free_port(), free_port());
    let sink = Sink::start(out_port, &[]);
    let config = write_direct_production(dir.path(), in_port, out_port, "Immed");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "name = \"Out\"\nclass = \"EnsLib.HL7.Operation.TCPOperation\"\n",
        "name = \"Out\"\nclass = \"EnsLib.HL7.Operation.TCPOperation\"\nlog_trace_events = true\n",
    );
    std::fs::write(&config, text).unwrap();
    let mut hie = Hie::start(
        &config,
        &dir.path().join("data"),
        &["--shards", "1", "--no-pin", "--log", "info"],
    );
    let mut conn = MllpConn::connect(&format!("127.0.0.1:{in_port}")).unwrap();
    let msg = b"MSH|^~\\&|LAB|HOSP|EHR|HOSP|20260101120000||ADT^A01|TRACE1|P|2.5\rPID|||MRN1\r";
    conn.exchange(msg).unwrap();
    let traced = wait_until(Duration::from_secs(10), || hie.log().contains("completed"));
    assert!(traced, "{}", hie.log());
    assert!(
        hie.process
            .stop(Duration::from_secs(60))
            .is_some_and(|s| s.success())
    );
    let log = hie.log();
    let trace: Vec<&str> = log.lines().filter(|l| l.contains("hie::trace")).collect();
    let position = |what: &str| {
        trace
            .iter()
            .position(|l| {
                l.contains("item=Out")
                    && l.split("hie::trace: ")
                        .nth(1)
                        .is_some_and(|rest| rest.starts_with(what))
            })
            .unwrap_or_else(|| panic!("no {what} trace line for Out in:\n{}", trace.join("\n")))
    };
    let steps = ["init", "start", "take", "completed", "stop", "teardown"].map(position);
    assert!(
        steps.windows(2).all(|w| w[0] < w[1]),
        "out of order: {steps:?}\n{}",
        trace.join("\n")
    );
    assert!(
        !trace.iter().any(|l| l.contains("item=In")),
        "only items with LogTraceEvents trace"
    );
    sink.finish();
}

/// A disabled operation on another shard whose queue fills up must not stall that shard:
/// its dispatcher keeps taking commands, so `hie ctl enable` works and everything waiting
/// is delivered, in order.
#[test]
fn a_full_queue_of_a_disabled_operation_on_another_shard_does_not_stop_its_shard() {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, out_port) = (free_port(), free_port());
    let sink = common::TestSink::start(out_port, common::Answer::Code("AA"));
    // Round-robin placement: In on shard 0, Out on shard 1.
    let production = head("FullQueue", 2)
        + &tcp_service("In", in_port, "Out", &[])
        + &tcp_operation("Out", out_port, &[("QueueSize", "5")], &[]);
    let (mut hie, data) = common::start_hie(dir.path(), &production);
    let (code, _) = common::ctl(&data, &["disable", "Out"]);
    assert_eq!(code, 0);
    let mut conn = MllpConn::connect(&format!("127.0.0.1:{in_port}")).unwrap();
    let ids: Vec<String> = (0..20).map(|n| format!("FULL{n:02}")).collect();
    for id in &ids {
        let ack = conn.exchange(&common::adt(id, "P1")).unwrap();
        assert_eq!(field(&ack, "MSA", 1).as_deref(), Some("AA"));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(sink.count(), 0, "a disabled operation sends nothing");
    let (code, out) = common::ctl(&data, &["status"]);
    assert_eq!(
        code, 0,
        "the shard with the full queue still answers: {out}"
    );
    let (code, _) = common::ctl(&data, &["enable", "Out"]);
    assert_eq!(code, 0);
    assert!(
        wait_until(Duration::from_secs(20), || sink.count() >= ids.len()),
        "{} of {} arrived; log:\n{}",
        sink.count(),
        ids.len(),
        hie.log()
    );
    assert_eq!(sink.control_ids(), ids, "in order, once each");
    assert!(
        hie.process
            .stop(Duration::from_secs(60))
            .is_some_and(|s| s.success())
    );
    sink.stop();
}
