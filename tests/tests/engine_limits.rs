//! The TCP service's limits through the real `hie` binary (issue "Stay up for months",
//! findings 3, 4 and 5): a flood or slow-loris from one address does not lock out another
//! sender, a frame past `MaxMessageSize` gets a NAK, stalled frames do not take memory
//! past `[engine] inbound_buffer_bytes_max`, and SIGTERM does not wait on a client stuck
//! in the middle of a frame.
//!
//! Production: `In` (TCP service, adapter settings per test) → `Out` (TCP operation) →
//! the in-test sink; one shard. Other senders connect from 127.0.0.2 (any 127.x address is
//! loopback on Linux).

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{Answer, TestSink, adt, head, start_hie, tcp_operation, tcp_service};
use hie_tests::{MllpConn, field, free_port};

fn production(in_port: u16, out_port: u16, engine: &str, adapter: &[(&str, &str)]) -> String {
    let mut text = head("Limits", 1) + engine;
    text += &tcp_service("In", in_port, "Out", &[]);
    // 127.0.0.1 only: a port in use as a client port on another loopback address (these
    // tests' own senders on 127.0.0.2, or anything else running) does not clash with it.
    text += "LocalInterface = \"127.0.0.1\"\n";
    for (key, value) in adapter {
        // tcp_service ends with its [item.adapter] table.
        text += &format!("{key} = \"{value}\"\n");
    }
    text + &tcp_operation("Out", out_port, &[], &[])
}

/// A connection to `127.0.0.1:port` from the loopback address `from`.
fn connect_from(from: [u8; 4], port: u16) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&SocketAddr::from((from, 0)).into())
        .expect("bind a loopback source address");
    socket
        .connect(&SocketAddr::from(([127, 0, 0, 1], port)).into())
        .expect("connect");
    let stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

/// Sends one framed message on `stream` and returns MSA-1 of the reply.
fn exchange(stream: TcpStream, msg: &[u8]) -> String {
    let mut conn = MllpConn::from_stream(stream);
    let ack = conn.exchange(msg).expect("an ACK");
    field(&ack, "MSA", 1).unwrap_or_default()
}

/// True when the server closes `stream` within `limit` (bytes it sends are discarded).
fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 1024];
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            _ => {}
        }
    }
    false
}

/// Resident memory of process `pid` in bytes.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

#[test]
fn a_slow_loris_flood_from_one_address_does_not_lock_out_another_sender() {
    let (in_port, out_port) = (free_port(), free_port());
    let sink = TestSink::start(out_port, Answer::Code("AA"));
    let dir = tempfile::tempdir().unwrap();
    let adapter = [("MaxConnectionsPerPeer", "8"), ("ReadTimeout", "2")];
    let (hie, _data) = start_hie(dir.path(), &production(in_port, out_port, "", &adapter));

    // Eight connections from 127.0.0.1, each trickling a frame that never ends.
    let mut loris: Vec<TcpStream> = (0..8)
        .map(|_| {
            let mut c = connect_from([127, 0, 0, 1], in_port);
            c.write_all(b"\x0bMSH|^~\\&|").unwrap();
            c
        })
        .collect();
    // The ninth from the same address is closed at once, before it sends anything.
    let mut ninth = connect_from([127, 0, 0, 1], in_port);
    assert!(
        closed_within(&mut ninth, Duration::from_secs(1)),
        "a connection past MaxConnectionsPerPeer was kept open; log:\n{}",
        hie.log()
    );
    // Twenty more: each refused, one log line for all of them.
    for _ in 0..20 {
        let mut more = connect_from([127, 0, 0, 1], in_port);
        assert!(closed_within(&mut more, Duration::from_secs(1)));
    }
    // Another address is served meanwhile.
    let other = connect_from([127, 0, 0, 2], in_port);
    assert_eq!(exchange(other, &adt("OTHER-1", "P1")), "AA");

    // A byte every 200 ms keeps every read within ReadTimeout, but not the frame.
    let started = Instant::now();
    let mut open = loris.len();
    while open > 0 && started.elapsed() < Duration::from_secs(8) {
        std::thread::sleep(Duration::from_millis(200));
        open = loris
            .iter_mut()
            .map(|c| c.write_all(b"x").is_ok())
            .filter(|&ok| ok)
            .count();
    }
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "trickling senders kept their frames open past ReadTimeout; log:\n{}",
        hie.log()
    );
    // Their slots are free again: the same address is admitted.
    let again = connect_from([127, 0, 0, 1], in_port);
    assert_eq!(exchange(again, &adt("AGAIN-1", "P1")), "AA");
    let refused_lines = hie.log().matches("MLLP connection refused").count();
    assert_eq!(refused_lines, 1, "log:\n{}", hie.log());
    // Eight connections cut by ReadTimeout: one WARN line for all of them.
    let closed_lines = hie.log().matches("MLLP connection closed").count();
    assert_eq!(closed_lines, 1, "log:\n{}", hie.log());
    drop(hie);
    let ids = sink.stop();
    assert_eq!(ids.len(), 2);
}

#[test]
fn an_idle_flood_from_as_many_addresses_as_max_connections_does_not_lock_out_a_sender() {
    let (in_port, out_port) = (free_port(), free_port());
    let sink = TestSink::start(out_port, Answer::Code("AA"));
    let dir = tempfile::tempdir().unwrap();
    let adapter = [("MaxConnections", "8")];
    let (hie, _data) = start_hie(dir.path(), &production(in_port, out_port, "", &adapter));

    // One idle connection from each of eight addresses: the service is full and no
    // address has more connections than another.
    let mut flood: Vec<TcpStream> = (0..8)
        .map(|i| connect_from([127, 0, 0, 10 + i], in_port))
        .collect();
    // Accepted, and idle for longer than the displacement idle time (1 s).
    std::thread::sleep(Duration::from_millis(1500));
    // Kept open: the next sender finds the service full again.
    let mut sender = MllpConn::from_stream(connect_from([127, 0, 0, 100], in_port));
    let ack = sender.exchange(&adt("NEW-1", "P1")).expect("an ACK");
    assert_eq!(
        field(&ack, "MSA", 1).unwrap_or_default(),
        "AA",
        "an idle flood from many addresses locked a new sender out; log:\n{}",
        hie.log()
    );
    assert!(
        closed_within(&mut flood[0], Duration::from_secs(5)),
        "the connection idle longest was not the one displaced; log:\n{}",
        hie.log()
    );
    let another = connect_from([127, 0, 0, 101], in_port);
    assert_eq!(exchange(another, &adt("NEW-2", "P2")), "AA");
    assert!(
        closed_within(&mut flood[1], Duration::from_secs(5)),
        "the next connection idle longest was not displaced; log:\n{}",
        hie.log()
    );
    // Two displacements, one WARN line for both.
    let lines = hie.log().matches("MLLP service full").count();
    assert_eq!(lines, 1, "log:\n{}", hie.log());
    drop((hie, flood, sender));
    let ids = sink.stop();
    assert_eq!(ids.len(), 2);
}

#[test]
fn stalled_frames_stay_within_the_inbound_budget_and_an_oversize_message_gets_a_nak() {
    let (in_port, out_port) = (free_port(), free_port());
    let sink = TestSink::start(out_port, Answer::Code("AA"));
    let dir = tempfile::tempdir().unwrap();
    // One address may hold 128 MiB / 8 = 16 MiB.
    let engine = "inbound_buffer_bytes_max = 134217728\n";
    let adapter = [
        ("MaxMessageSize", "8388608"),
        ("ReadTimeout", "30"),
        ("MaxConnectionsPerPeer", "64"),
    ];
    let (hie, _data) = start_hie(dir.path(), &production(in_port, out_port, engine, &adapter));
    let pid = hie.process.pid();
    let before = rss_bytes(pid);

    // Twelve senders from one address each start a 7 MiB frame and stall: 84 MiB asked
    // for, 16 MiB allowed.
    let chunk = vec![b'A'; 1 << 20];
    let mut stalled = Vec::new();
    for _ in 0..12 {
        let mut c = connect_from([127, 0, 0, 1], in_port);
        c.set_write_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut ok = c
            .write_all(b"\x0bMSH|^~\\&|A|B|C|D|1||ADT^A01|BIG|P|2.5\rZZZ|")
            .is_ok();
        for _ in 0..7 {
            // Once the budget is spent the server stops reading: writes then block.
            ok = ok && c.write_all(&chunk).is_ok();
        }
        stalled.push(c);
    }
    std::thread::sleep(Duration::from_millis(500));
    let during = rss_bytes(pid);
    assert!(
        during < before + (48 << 20),
        "RSS grew from {before} to {during} bytes with 84 MiB of frames stalled"
    );

    // Another address is not held up by them.
    let other = connect_from([127, 0, 0, 2], in_port);
    assert_eq!(exchange(other, &adt("OTHER-1", "P1")), "AA");

    // A message past MaxMessageSize gets AR with an ERR segment. It is sent 1 KiB past
    // the limit and no further, so that the server has read all of it when it answers
    // and closes (unread bytes would turn its close into a reset that loses the NAK).
    drop(stalled);
    let mut big = vec![0x0b];
    big.extend_from_slice(&adt("TOO-BIG", "P1"));
    big.resize((8 << 20) + 1024, b'Z');
    let mut other = connect_from([127, 0, 0, 2], in_port);
    other
        .set_write_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    other
        .write_all(&big)
        .expect("the server reads up to its limit");
    let mut conn = MllpConn::from_stream(other);
    let nak = conn.receive().expect("a NAK for the oversize message");
    assert_eq!(field(&nak, "MSA", 1).as_deref(), Some("AR"));
    assert!(String::from_utf8_lossy(&nak).contains("ERR|"), "{nak:?}");

    // A normal message is still taken and delivered.
    let normal = connect_from([127, 0, 0, 1], in_port);
    assert_eq!(exchange(normal, &adt("SMALL-1", "P2")), "AA");
    drop(hie);
    let ids: Vec<String> = sink.stop().iter().map(|m| common::control_id(m)).collect();
    assert_eq!(ids, ["OTHER-1", "SMALL-1"]);
}

#[test]
fn memory_of_large_frames_is_given_back_once_their_connections_close() {
    let (in_port, out_port) = (free_port(), free_port());
    let _sink = TestSink::start(out_port, Answer::Code("AA"));
    let dir = tempfile::tempdir().unwrap();
    let adapter = [("ReadTimeout", "60")];
    let (hie, _data) = start_hie(dir.path(), &production(in_port, out_port, "", &adapter));
    let pid = hie.process.pid();
    let before = rss_bytes(pid);
    // Eight senders (eight addresses: each within its share) each hold 20 MiB of a frame
    // that does not end.
    let chunk = vec![b'A'; 1 << 20];
    let mut stalled = Vec::new();
    for n in 1..=8 {
        let mut c = connect_from([127, 0, 0, n], in_port);
        c.write_all(b"\x0bMSH|^~\\&|").unwrap();
        for _ in 0..20 {
            c.write_all(&chunk).unwrap();
        }
        stalled.push(c);
    }
    let held = hie_tests::wait_until(Duration::from_secs(10), || {
        rss_bytes(pid) > before + (100 << 20)
    });
    assert!(
        held,
        "the stalled frames were not buffered (RSS {})",
        rss_bytes(pid)
    );
    drop(stalled);
    let given_back = hie_tests::wait_until(Duration::from_secs(10), || {
        rss_bytes(pid) < before + (40 << 20)
    });
    assert!(
        given_back,
        "RSS {} bytes 10 s after the connections closed, {before} before they opened",
        rss_bytes(pid)
    );
    // Still serving.
    let c = connect_from([127, 0, 0, 1], in_port);
    assert_eq!(exchange(c, &adt("AFTER-1", "P1")), "AA");
}

#[test]
fn sigterm_does_not_wait_on_a_client_stuck_mid_frame() {
    let (in_port, out_port) = (free_port(), free_port());
    let _sink = TestSink::start(out_port, Answer::Code("AA"));
    let dir = tempfile::tempdir().unwrap();
    // ReadTimeout 0: no frame deadline, only the stop grace bounds the wait.
    let adapter = [("ReadTimeout", "0")];
    let (mut hie, _data) = start_hie(dir.path(), &production(in_port, out_port, "", &adapter));
    let mut stuck = connect_from([127, 0, 0, 1], in_port);
    stuck.write_all(b"\x0bMSH|^~\\&|stuck").unwrap();
    let trickle = std::thread::spawn(move || {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) && stuck.write_all(b"y").is_ok() {
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    hie.process.signal(libc::SIGTERM);
    let status = hie.process.wait_timeout(Duration::from_secs(20));
    assert!(
        status.is_some(),
        "hie run did not exit within 20 s of SIGTERM with a client stuck mid-frame; log:\n{}",
        hie.log()
    );
    assert!(status.unwrap().success(), "log:\n{}", hie.log());
    assert!(started.elapsed() < Duration::from_secs(20));
    trickle.join().unwrap();
}
