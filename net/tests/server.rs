//! The inbound server over real loopback sockets: concurrency, partial and split frames,
//! timeouts, peers that misbehave, limits, stopping.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use common::*;
use hie_net::{ConnectionTable, ServerConfig, StayConnected};

#[test]
fn hundreds_of_concurrent_connections_each_get_their_ack() {
    // All from 127.0.0.1: past the default per-peer limit.
    let config = ServerConfig {
        connections: ConnectionTable::new(4096, 300),
        ..ServerConfig::default()
    };
    let server = TestServer::start(config);
    let mut conns: Vec<_> = (0..300).map(|_| connect(server.addr)).collect();
    for (i, c) in conns.iter_mut().enumerate() {
        send_all(c, &framed(&adt(&format!("C{i}"))));
    }
    for (i, c) in conns.iter_mut().enumerate() {
        let acks = read_frames(c, 1);
        assert_eq!(msa(&acks[0]), ("AA".into(), format!("C{i}")));
    }
    drop(conns);
    let stats = server.stop();
    assert_eq!(stats.connections_accepted, 300);
    assert_eq!(stats.frames_received, 300);
    assert_eq!(stats.responses_sent, 300);
}

#[test]
fn a_client_sending_one_byte_at_a_time_gets_its_ack() {
    let server = TestServer::start(ServerConfig::default());
    let mut c = connect(server.addr);
    for b in framed(&adt("BYTE1")) {
        c.write_all(&[b]).unwrap();
        c.flush().unwrap();
    }
    assert_eq!(
        msa(&read_frames(&mut c, 1)[0]),
        ("AA".into(), "BYTE1".into())
    );
}

#[test]
fn two_frames_in_one_write_get_two_acks_in_order() {
    let server = TestServer::start(ServerConfig::default());
    let mut c = connect(server.addr);
    let mut bytes = framed(&adt("FIRST"));
    bytes.extend_from_slice(&framed(&adt("SECOND")));
    send_all(&mut c, &bytes);
    let acks = read_frames(&mut c, 2);
    assert_eq!(msa(&acks[0]), ("AA".into(), "FIRST".into()));
    assert_eq!(msa(&acks[1]), ("AA".into(), "SECOND".into()));
}

#[test]
fn a_frame_split_across_writes_with_junk_before_it_is_acked_and_junk_counted() {
    let server = TestServer::start(ServerConfig::default());
    let mut c = connect(server.addr);
    let bytes = framed(&adt("SPLIT"));
    send_all(&mut c, b"\r\n");
    for part in bytes.chunks(37) {
        send_all(&mut c, part);
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(
        msa(&read_frames(&mut c, 1)[0]),
        ("AA".into(), "SPLIT".into())
    );
    drop(c);
    assert_eq!(server.stop().junk_bytes, 2);
}

#[test]
fn read_timeout_closes_a_client_that_never_sends_the_end_block() {
    let config = ServerConfig {
        read_timeout: Some(Duration::from_millis(200)),
        ..ServerConfig::default()
    };
    let server = TestServer::start(config);
    let mut c = connect(server.addr);
    let bytes = framed(&adt("STALL"));
    send_all(&mut c, &bytes[..bytes.len() - 2]);
    assert!(
        closed_within(&mut c, Duration::from_secs(5)),
        "server kept the stalled connection open"
    );
    let stats = server.stop();
    assert_eq!(stats.read_timeouts, 1);
    assert_eq!(stats.frames_received, 0);
}

#[test]
fn a_peer_closing_mid_frame_is_counted_and_the_server_keeps_serving() {
    let server = TestServer::start(ServerConfig::default());
    let mut c = connect(server.addr);
    send_all(&mut c, &framed(&adt("HALF"))[..50]);
    drop(c);
    let mut d = connect(server.addr);
    send_all(&mut d, &framed(&adt("AFTER")));
    assert_eq!(
        msa(&read_frames(&mut d, 1)[0]),
        ("AA".into(), "AFTER".into())
    );
    drop(d);
    let stats = server.stop();
    assert_eq!(stats.frames_truncated, 1);
    assert_eq!(stats.frames_received, 1);
}

#[test]
fn an_oversize_frame_gets_a_nak_ar_with_err_and_the_connection_closes() {
    let config = ServerConfig {
        frame_bytes_max: 1024,
        ..ServerConfig::default()
    };
    let server = TestServer::start(config);
    let mut c = connect(server.addr);
    let mut big = adt("HUGE");
    big.extend(std::iter::repeat_n(b'X', 4000));
    // The server may close while we still write: ignore write errors past the limit.
    let _ = c.write_all(&framed(&big));
    let nak = read_frames(&mut c, 1).remove(0);
    assert_eq!(msa(&nak), ("AR".into(), "HUGE".into()));
    let msg = hie_hl7::Message::scan(&nak).unwrap();
    assert!(msg.find_segment(b"ERR", 1).is_some());
    assert!(closed_within(&mut c, Duration::from_secs(5)));
    assert_eq!(server.stop().frames_oversize, 1);
}

#[test]
fn a_frame_that_is_not_hl7_gets_a_nak_ar_and_the_connection_stays_open() {
    let server = TestServer::start(ServerConfig::default());
    let mut c = connect(server.addr);
    send_all(&mut c, &framed(b"this is not HL7"));
    assert_eq!(msa(&read_frames(&mut c, 1)[0]).0, "AR");
    send_all(&mut c, &framed(&adt("NEXT")));
    assert_eq!(
        msa(&read_frames(&mut c, 1)[0]),
        ("AA".into(), "NEXT".into())
    );
}

#[test]
fn stay_connected_zero_closes_after_each_message() {
    let config = ServerConfig {
        stay_connected: StayConnected::AfterEachMessage,
        ..ServerConfig::default()
    };
    let server = TestServer::start(config);
    let mut c = connect(server.addr);
    send_all(&mut c, &framed(&adt("ONCE")));
    assert_eq!(
        msa(&read_frames(&mut c, 1)[0]),
        ("AA".into(), "ONCE".into())
    );
    assert!(closed_within(&mut c, Duration::from_secs(5)));
}

#[test]
fn stay_connected_idle_seconds_close_an_idle_connection() {
    let config = ServerConfig {
        stay_connected: StayConnected::Idle(Duration::from_millis(150)),
        ..ServerConfig::default()
    };
    let server = TestServer::start(config);
    let mut c = connect(server.addr);
    send_all(&mut c, &framed(&adt("IDLE")));
    read_frames(&mut c, 1);
    assert!(closed_within(&mut c, Duration::from_secs(5)));
    assert_eq!(server.stop().idle_closes, 1);
}

#[test]
fn connections_over_the_maximum_are_closed_at_once() {
    let config = ServerConfig {
        connections: ConnectionTable::new(2, 64),
        ..ServerConfig::default()
    };
    let server = TestServer::start(config);
    let mut a = connect(server.addr);
    let mut b = connect(server.addr);
    send_all(&mut a, &framed(&adt("A")));
    send_all(&mut b, &framed(&adt("B")));
    read_frames(&mut a, 1);
    read_frames(&mut b, 1);
    let mut c = connect(server.addr);
    assert!(closed_within(&mut c, Duration::from_secs(5)));
    drop((a, b));
    assert_eq!(server.stop().connections_rejected, 1);
}

#[test]
fn stop_closes_idle_connections_and_run_returns() {
    let server = TestServer::start(ServerConfig::default());
    let mut c = connect(server.addr);
    send_all(&mut c, &framed(&adt("BEFORE")));
    read_frames(&mut c, 1);
    let stats = server.stop();
    assert_eq!(stats.connections_active, 0);
    assert!(closed_within(&mut c, Duration::from_secs(5)));
}

#[test]
fn a_port_whose_closed_connections_wait_in_time_wait_can_be_bound_again() {
    use std::net::TcpListener;
    // A connection the listening side closes first leaves its end in TIME_WAIT, holding
    // the port (on Linux, for 60 s).
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let client = TcpStream::connect(addr).unwrap();
    let (served, _) = listener.accept().unwrap();
    drop(served);
    std::thread::sleep(Duration::from_millis(50));
    drop((client, listener));
    let config = ServerConfig {
        port: addr.port(),
        ..ServerConfig::default()
    };
    let server = TestServer::start(config);
    assert_eq!(server.addr.port(), addr.port());
    let mut c = connect(server.addr);
    send_all(&mut c, &framed(&adt("REBOUND")));
    assert_eq!(msa(&read_frames(&mut c, 1)[0]).0, "AA");
}
