//! What real senders send, end to end through the real `hie` binary: FHS/BHS batches over
//! MLLP (each message stored, routed and delivered on its own; the reply a batch of one
//! ACK per message) under every `BatchHandling` hie runs; MSH-2 with 3 encoding characters
//! or a doubled one (AA, delivered as sent); bytes that break the character set MSH-18
//! declares (AR with an ERR naming the offset, not delivered); and `BatchHandling=Whole`:
//! the batch one document, stored as one record, routed (through a router's targets or its
//! `BadMessageHandler`), held, resent and delivered as one frame, byte-identical, the
//! reply still a batch of one ACK per message; refused whole when one message is bad.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{
    Answer, TestSink, adt, head, router, start_hie, tcp_operation, tcp_service, wait_status,
};
use hie_hl7::{AckCode, Batch, Envelope, Message};
use hie_tests::{MllpConn, bin, corpus_dir, free_port, wait_until};

/// Service → operation → in-test sink, with `host` settings on the service.
fn production(name: &str, port: u16, sink_port: u16, host: &[(&str, &str)]) -> String {
    head(name, 1)
        + &tcp_service("In", port, "Out", host)
        + &tcp_operation("Out", sink_port, &[], &[])
}

fn corpus(name: &str) -> Vec<u8> {
    std::fs::read(corpus_dir().join("hl7").join(name)).expect("corpus file")
}

/// The messages of a batch, as the sink should receive them (terminators as sent).
fn children(batch: &[u8]) -> Vec<Vec<u8>> {
    Batch::new(batch).map(<[u8]>::to_vec).collect()
}

/// (MSA-1, MSA-2) of every ACK in a batch reply.
fn acks_in(reply: &[u8]) -> Vec<(AckCode, String)> {
    Batch::new(reply)
        .map(|ack| {
            let m = Message::scan(ack).expect("each ACK in the reply scans");
            let code = m.ack_code().expect("MSA-1");
            let id = m.acked_control_id().unwrap_or_default();
            (code, String::from_utf8_lossy(id).into_owned())
        })
        .collect()
}

fn control_ids(messages: &[Vec<u8>]) -> Vec<String> {
    messages
        .iter()
        .map(|m| {
            let m = Message::scan(m).expect("a corpus message scans");
            String::from_utf8_lossy(m.control_id().unwrap_or_default()).into_owned()
        })
        .collect()
}

fn lines(reply: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(reply)
        .split(['\r', '\n'])
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn batches_over_mllp_deliver_every_message_and_are_answered_with_a_batch_of_acks() {
    let batches = [
        corpus("040_er7_batch.hl7"),
        corpus("048_hl7standard_batch.hl7"),
    ];
    for mode in ["1Session", "Batch", "Indiv"] {
        let dir = tempfile::tempdir().unwrap();
        let (port, sink_port) = (free_port(), free_port());
        let sink = TestSink::start(sink_port, Answer::Code("AA"));
        let text = production("Batches", port, sink_port, &[("BatchHandling", mode)]);
        let (hie, data) = start_hie(dir.path(), &text);
        let mut conn = MllpConn::connect(&format!("127.0.0.1:{port}")).unwrap();
        let mut expected = Vec::new();
        for batch in &batches {
            let reply = conn.exchange(batch).unwrap();
            let sent = children(batch);
            assert!(sent.len() >= 2, "the corpus batch holds messages");
            let lines = lines(&reply);
            let env = Envelope::of(batch);
            assert!(env.fhs.is_some() && env.bhs.is_some());
            assert!(lines[0].starts_with("FHS|"), "{mode}: {lines:?}");
            assert!(lines[1].starts_with("BHS|"), "{mode}: {lines:?}");
            let n = lines.len();
            assert_eq!(lines[n - 2], format!("BTS|{}", sent.len()), "{mode}");
            assert_eq!(lines[n - 1], "FTS|1", "{mode}");
            let acks = acks_in(&reply);
            let ids: Vec<String> = acks.iter().map(|(_, id)| id.clone()).collect();
            assert_eq!(
                ids,
                control_ids(&sent),
                "{mode}: one ACK per message, in order"
            );
            assert!(
                acks.iter().all(|(code, _)| code.is_accept()),
                "{mode}: {acks:?}"
            );
            expected.extend(sent);
        }
        assert!(
            wait_until(Duration::from_secs(20), || sink.count() >= expected.len()),
            "{mode}: {} of {} delivered\n{}",
            sink.count(),
            expected.len(),
            hie.log()
        );
        assert_eq!(sink.arrivals(), expected, "{mode}: each message, as sent");
        let status = wait_status(&hie, &data, Duration::from_secs(5), "counted", |s| {
            common::counter(s, "In", "received") == expected.len() as u64
        });
        assert_eq!(common::counter(&status, "In", "rejected"), 0);
        drop(hie);
        sink.stop();
    }
}

#[test]
fn a_batch_with_a_bad_message_answers_it_ar_and_delivers_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let (port, sink_port) = (free_port(), free_port());
    let sink = TestSink::start(sink_port, Answer::Code("AA"));
    let (hie, _data) = start_hie(dir.path(), &production("Mixed", port, sink_port, &[]));
    let good = adt("GOOD1", "P1");
    let bad = b"MSH|^~\\&|S|F|R|F|20260101||ADT^A01|BAD1|P|2.5||||||UNICODE UTF-8\r\
PID|1||P2||J\xC3\xA9r\xFFme\r";
    let mut batch = b"BHS|^~\\&|S|F|R|F|20260101||||BATCH7\r".to_vec();
    batch.extend_from_slice(&good);
    batch.extend_from_slice(bad);
    batch.extend_from_slice(&adt("GOOD2", "P3"));
    batch.extend_from_slice(b"BTS|3\r");
    let mut conn = MllpConn::connect(&format!("127.0.0.1:{port}")).unwrap();
    let reply = conn.exchange(&batch).unwrap();
    let lines = lines(&reply);
    assert!(
        lines[0].starts_with("BHS|") && lines[0].ends_with("|BATCH7"),
        "{lines:?}"
    );
    assert_eq!(
        lines.last().unwrap(),
        "BTS|3",
        "no FHS in, none out: {lines:?}"
    );
    let codes: Vec<(AckCode, String)> = acks_in(&reply);
    assert_eq!(
        codes,
        [
            (AckCode::AA, "GOOD1".to_owned()),
            (AckCode::AR, "BAD1".to_owned()),
            (AckCode::AA, "GOOD2".to_owned())
        ]
    );
    assert!(wait_until(Duration::from_secs(20), || sink.count() >= 2));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(sink.control_ids(), ["GOOD1", "GOOD2"], "{}", hie.log());
}

#[test]
fn a_utf8_declared_message_with_invalid_bytes_gets_ar_naming_the_offset_and_is_not_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let (port, sink_port) = (free_port(), free_port());
    let sink = TestSink::start(sink_port, Answer::Code("AA"));
    let (hie, data) = start_hie(dir.path(), &production("Text", port, sink_port, &[]));
    let bad = b"MSH|^~\\&|S|F|R|F|20260101||ADT^A01|BAD1|P|2.5||||||UNICODE UTF-8\r\
EVN|A01\rPID|1||P2||J\xC3\xA9r\xFFme\r";
    let offset = bad.iter().position(|&b| b == 0xFF).unwrap();
    let mut conn = MllpConn::connect(&format!("127.0.0.1:{port}")).unwrap();
    let nak = conn.exchange(bad).unwrap();
    let nak_text = String::from_utf8_lossy(&nak).into_owned();
    let m = Message::scan(&nak).expect("the NAK scans");
    assert_eq!(m.ack_code(), Some(AckCode::AR), "{nak_text}");
    assert_eq!(m.acked_control_id(), Some(&b"BAD1"[..]));
    let err = m.find_segment(b"ERR", 1).expect("an ERR segment");
    assert_eq!(err.field(2), Some(&b"PID^1"[..]), "{nak_text}");
    let err3 = String::from_utf8_lossy(err.field(3).unwrap_or_default()).into_owned();
    assert!(err3.starts_with("102^"), "{nak_text}");
    assert!(
        err3.contains(&format!("byte offset {offset}")),
        "ERR names the offset {offset}: {nak_text}"
    );
    // Latin-1 with an empty MSH-18 declares nothing, so it passes (CharsetValidation
    // Declared, the default), as do the good messages sent after the bad one.
    let latin1 = b"MSH|^~\\&|S|F|R|F|20260101||ADT^A01|LATIN1|P|2.5\rPID|1||P3||J\xE9r\xF4me\r";
    let ack = conn.exchange(latin1).unwrap();
    assert_eq!(Message::scan(&ack).unwrap().ack_code(), Some(AckCode::AA));
    let ack = conn.exchange(&adt("GOOD1", "P1")).unwrap();
    assert_eq!(Message::scan(&ack).unwrap().ack_code(), Some(AckCode::AA));
    assert!(wait_until(Duration::from_secs(20), || sink.count() >= 2));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(sink.control_ids(), ["LATIN1", "GOOD1"], "{}", hie.log());
    let status = common::status(&data);
    assert_eq!(common::counter(&status, "In", "rejected"), 1);
}

#[test]
fn charset_validation_strict_reads_an_empty_msh_18_as_utf8_and_off_checks_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (strict, off, sink_port) = (free_port(), free_port(), free_port());
    let sink = TestSink::start(sink_port, Answer::Code("AA"));
    let text = head("Strict", 1)
        + &tcp_service("Strict", strict, "Out", &[("CharsetValidation", "Strict")])
        + &tcp_service("Off", off, "Out", &[("CharsetValidation", "Off")])
        + &tcp_operation("Out", sink_port, &[], &[]);
    let (hie, _data) = start_hie(dir.path(), &text);
    let latin1 = b"MSH|^~\\&|S|F|R|F|20260101||ADT^A01|LATIN1|P|2.5\rPID|1||P3||J\xE9r\xF4me\r";
    let declared =
        b"MSH|^~\\&|S|F|R|F|20260101||ADT^A01|ASCII1|P|2.5||||||ASCII\rPID|1||P3||J\xE9\r";
    let code = |port: u16, msg: &[u8]| {
        let mut conn = MllpConn::connect(&format!("127.0.0.1:{port}")).unwrap();
        Message::scan(&conn.exchange(msg).unwrap())
            .unwrap()
            .ack_code()
    };
    assert_eq!(code(strict, latin1), Some(AckCode::AR));
    assert_eq!(code(strict, declared), Some(AckCode::AR));
    assert_eq!(code(off, declared), Some(AckCode::AA));
    assert!(wait_until(Duration::from_secs(20), || sink.count() >= 1));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(sink.control_ids(), ["ASCII1"], "{}", hie.log());
}

#[test]
fn msh_2_with_three_or_a_doubled_encoding_character_gets_aa_and_arrives_as_sent() {
    let dir = tempfile::tempdir().unwrap();
    let (port, sink_port) = (free_port(), free_port());
    let sink = TestSink::start(sink_port, Answer::Code("AA"));
    let (hie, _data) = start_hie(dir.path(), &production("Lenient", port, sink_port, &[]));
    let three = b"MSH|^~\\|S|F|R|F|20260101||ADT^A01|THREE|P|2.3\rPID|1||P1^^^H^MR||DOE^JO\r";
    let doubled = b"MSH|^~\\\\&|S|F|R|F|20260101||ADT^A01|DOUBLED|P|2.3\rPID|1||P2^^^H^MR\r";
    let repeated = b"MSH|^~^&|S|F|R|F|20260101||ADT^A01|REPEATED|P|2.3\rPID|1||P3\r";
    let mut conn = MllpConn::connect(&format!("127.0.0.1:{port}")).unwrap();
    for msg in [&three[..], doubled, repeated] {
        let ack = conn.exchange(msg).unwrap();
        let m = Message::scan(&ack).expect("the ACK scans");
        assert_eq!(
            m.ack_code(),
            Some(AckCode::AA),
            "{}",
            String::from_utf8_lossy(&ack)
        );
        let sent = Message::scan(msg).unwrap();
        assert_eq!(m.acked_control_id(), sent.control_id());
    }
    assert!(wait_until(Duration::from_secs(20), || sink.count() >= 3));
    assert_eq!(
        sink.arrivals(),
        [three.to_vec(), doubled.to_vec(), repeated.to_vec()],
        "{}",
        hie.log()
    );
}

/// A batch with file and batch headers, control ids `F-<tag>` and `B-<tag>`, holding two
/// ADTs `<tag>-1` and `<tag>-2`.
fn whole_batch(tag: &str) -> Vec<u8> {
    let mut batch =
        format!("FHS|^~\\&|S|F|R|F|20260101||||F-{tag}\rBHS|^~\\&|S|F|R|F|20260101||||B-{tag}\r")
            .into_bytes();
    batch.extend_from_slice(&adt(&format!("{tag}-1"), "P1"));
    batch.extend_from_slice(&adt(&format!("{tag}-2"), "P2"));
    batch.extend_from_slice(b"BTS|2\rFTS|1\r");
    batch
}

/// The reply IRIS gives a batch: FHS and BHS answering the batch's (BHS-12 its control
/// id), one ACK per message with `code`, BTS with their count, FTS.
fn assert_batch_reply(reply: &[u8], tag: &str, code: AckCode) {
    let lines = lines(reply);
    assert!(lines[0].starts_with("FHS|"), "{lines:?}");
    assert!(lines[1].starts_with("BHS|"), "{lines:?}");
    assert_eq!(
        Envelope::of(reply).reference_id(),
        format!("B-{tag}").as_bytes()
    );
    let n = lines.len();
    assert_eq!(lines[n - 2..], ["BTS|2", "FTS|1"], "{lines:?}");
    assert_eq!(
        acks_in(reply),
        [(code, format!("{tag}-1")), (code, format!("{tag}-2"))]
    );
}

/// Waits until `sink` has its `n`th frame and checks it is `batch`, byte for byte.
fn assert_arrived_whole(hie: &hie_tests::Hie, sink: &TestSink, n: usize, batch: &[u8]) {
    assert!(
        wait_until(Duration::from_secs(15), || sink.count() == n),
        "log:\n{}",
        hie.log()
    );
    assert!(
        sink.arrivals()[n - 1] == batch,
        "delivered byte-identical, as one frame"
    );
}

#[test]
fn a_whole_batch_is_one_document_stored_routed_held_resent_and_delivered_as_one_frame() {
    let dir = tempfile::tempdir().unwrap();
    let (port, bad_port, sink_port) = (free_port(), free_port(), free_port());
    let whole = [("BatchHandling", "Whole")];
    let text = head("Whole", 1)
        + &tcp_service("In", port, "Route", &whole)
        + &router("Route", "Out", &[])
        + &tcp_service("InBad", bad_port, "NoRoute", &whole)
        + &router("NoRoute", "", &[("BadMessageHandler", "Out")])
        + &tcp_operation(
            "Out",
            sink_port,
            &[("RetryInterval", "1"), ("FailureTimeout", "2")],
            &[],
        );
    let config = common::write_production(dir.path(), &text);
    let check = Command::new(bin("hie"))
        .arg("check")
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );

    // The downstream is down: the batch is stored (one record), answered as IRIS answers
    // a batch, and survives a restart.
    let (mut hie, data) = start_hie(dir.path(), &text);
    let w1 = whole_batch("W1");
    let mut conn = MllpConn::connect(&format!("127.0.0.1:{port}")).unwrap();
    assert_batch_reply(&conn.exchange(&w1).unwrap(), "W1", AckCode::AA);
    drop(conn);
    let status = common::status(&data);
    assert_eq!(
        common::counter(&status, "In", "received"),
        1,
        "one document"
    );
    let stopped = hie.process.stop(Duration::from_secs(30));
    assert!(stopped.is_some_and(|s| s.success()), "log:\n{}", hie.log());
    let (hie, data) = start_hie(dir.path(), &text);
    assert!(
        wait_until(Duration::from_secs(30), || common::held(&data).len() == 1),
        "the batch fails at Out after FailureTimeout; log:\n{}",
        hie.log()
    );
    let held = common::held(&data);
    assert_eq!(held[0]["item"], "Out");
    assert_eq!(
        held[0]["message_type"], "FHS",
        "a batch is listed by its header"
    );
    assert_eq!(held[0]["control_id"], "B-W1", "and by BHS-11");

    // Resent once the downstream is up: one frame, byte for byte what was sent; the
    // downstream's batch of ACKs completes it.
    let sink = TestSink::start(sink_port, Answer::Code("AA"));
    let id = held[0]["message_id"].as_str().unwrap().to_string();
    let (code, out) = common::ctl(&data, &["resend", &id]);
    assert_eq!(code, 0, "{out}");
    assert_arrived_whole(&hie, &sink, 1, &w1);

    // Through a router's BadMessageHandler too.
    let w2 = whole_batch("W2");
    let mut conn = MllpConn::connect(&format!("127.0.0.1:{bad_port}")).unwrap();
    assert_batch_reply(&conn.exchange(&w2).unwrap(), "W2", AckCode::AA);
    assert_arrived_whole(&hie, &sink, 2, &w2);
    let status = wait_status(&hie, &data, Duration::from_secs(10), "completed", |s| {
        common::counter(s, "Out", "completed") == 2
    });
    assert_eq!(common::counter(&status, "InBad", "received"), 1);
    assert!(common::held(&data).is_empty());
}

#[test]
fn a_whole_batch_under_ackmode_app_gets_the_downstream_batch_reply() {
    let dir = tempfile::tempdir().unwrap();
    let (port, sink_port) = (free_port(), free_port());
    let sink = TestSink::start(sink_port, Answer::Code("AA"));
    let host = [("BatchHandling", "Whole"), ("AckMode", "App")];
    let (hie, _data) = start_hie(dir.path(), &production("WholeApp", port, sink_port, &host));
    let batch = whole_batch("WA");
    let mut conn = MllpConn::connect(&format!("127.0.0.1:{port}")).unwrap();
    let reply = conn.exchange(&batch).unwrap();
    assert!(
        reply.starts_with(b"BHS|^~\\&|SINK|"),
        "the downstream's own reply: {}\n{}",
        String::from_utf8_lossy(&reply),
        hie.log()
    );
    assert_eq!(
        acks_in(&reply),
        [
            (AckCode::AA, "WA-1".to_string()),
            (AckCode::AA, "WA-2".to_string())
        ]
    );
    assert!(sink.arrivals() == [batch], "one frame, byte-identical");
}

#[test]
fn a_whole_batch_with_a_bad_message_is_refused_whole_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let (port, sink_port) = (free_port(), free_port());
    let sink = TestSink::start(sink_port, Answer::Code("AA"));
    let text = production("WholeBad", port, sink_port, &[("BatchHandling", "Whole")]);
    let (hie, data) = start_hie(dir.path(), &text);
    let bad = b"MSH|^~\\&|S|F|R|F|20260101||ADT^A01|WB-2|P|2.5||||||UNICODE UTF-8\r\
PID|1||P2||J\xC3\xA9r\xFFme\r";
    let mut batch = b"BHS|^~\\&|S|F|R|F|20260101||||B-WB\r".to_vec();
    batch.extend_from_slice(&adt("WB-1", "P1"));
    batch.extend_from_slice(bad);
    batch.extend_from_slice(b"BTS|2\r");
    let mut conn = MllpConn::connect(&format!("127.0.0.1:{port}")).unwrap();
    let reply = conn.exchange(&batch).unwrap();
    assert_eq!(
        acks_in(&reply),
        [
            (AckCode::AR, "WB-1".to_string()),
            (AckCode::AR, "WB-2".to_string())
        ],
        "{}",
        String::from_utf8_lossy(&reply)
    );
    let text = String::from_utf8_lossy(&reply);
    assert!(
        text.contains("PID^1") && text.contains("byte offset"),
        "{text}"
    );
    assert!(text.contains("its message 2 was refused"), "{text}");
    // Nothing of it was stored; the connection still works.
    let ack = conn.exchange(&adt("AFTER", "P1")).unwrap();
    assert_eq!(Message::scan(&ack).unwrap().ack_code(), Some(AckCode::AA));
    assert!(wait_until(Duration::from_secs(20), || sink.count() >= 1));
    assert_eq!(sink.control_ids(), ["AFTER"], "{}", hie.log());
    let status = common::status(&data);
    assert_eq!(common::counter(&status, "In", "received"), 1);
    assert_eq!(common::counter(&status, "In", "rejected"), 1);
}

#[test]
fn a_batch_over_the_message_limit_is_refused_whole_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let (port, sink_port) = (free_port(), free_port());
    let sink = TestSink::start(sink_port, Answer::Code("AA"));
    let (hie, data) = start_hie(dir.path(), &production("Huge", port, sink_port, &[]));
    // BATCH_MESSAGES_MAX (10 000) + 1 messages.
    let mut batch = b"BHS|^~\\&|S|F|R|F|20260101||||HUGE1\r".to_vec();
    for i in 0..10_001 {
        batch.extend_from_slice(format!("MSH|^~\\&|S|F|R|F|1||ADT^A01|M{i}|P|2.5\r").as_bytes());
    }
    batch.extend_from_slice(b"BTS|10001\r");
    let mut conn = MllpConn::connect(&format!("127.0.0.1:{port}")).unwrap();
    let nak = conn.exchange(&batch).unwrap();
    let m = Message::scan(&nak).expect("one NAK for the batch");
    assert_eq!(m.ack_code(), Some(AckCode::AR));
    assert_eq!(m.acked_control_id(), Some(&b"HUGE1"[..]));
    assert!(String::from_utf8_lossy(&nak).contains("more than 10000 messages"));
    // The connection still works, and nothing of the batch was stored.
    let ack = conn.exchange(&adt("AFTER", "P1")).unwrap();
    assert_eq!(Message::scan(&ack).unwrap().ack_code(), Some(AckCode::AA));
    assert!(wait_until(Duration::from_secs(20), || sink.count() >= 1));
    assert_eq!(sink.control_ids(), ["AFTER"], "{}", hie.log());
    let status = common::status(&data);
    assert_eq!(common::counter(&status, "In", "received"), 1);
    assert_eq!(common::counter(&status, "In", "rejected"), 1);
}
