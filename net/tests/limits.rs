//! The inbound server's limits over real loopback sockets: the whole-frame ReadTimeout,
//! connections per peer address, the inbound byte budget, buffers given back, and the
//! stop grace for a peer stuck in a frame. Every test is bounded in time.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use hie_net::{ConnectionTable, InboundBudget, ServerConfig, StayConnected};
use proptest::prelude::*;

/// A connection to `addr` from the loopback address `from` (127.0.0.x: another peer).
fn connect_from(from: [u8; 4], addr: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&SocketAddr::from((from, 0)).into())
        .expect("bind a loopback source address");
    socket.connect(&addr.into()).unwrap();
    let s: TcpStream = socket.into();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Sends one message and reads its ACK's MSA-1.
fn ack_code(stream: &mut TcpStream, id: &str) -> String {
    send_all(stream, &framed(&adt(id)));
    let frames = read_frames(stream, 1);
    msa(&frames[0]).0
}

/// Waits up to `limit` for `done`.
fn eventually(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    done()
}

#[test]
fn read_timeout_bounds_the_whole_frame_not_each_read() {
    // One byte every 50 ms: each read comes well within 400 ms, the frame never ends.
    let config = ServerConfig {
        read_timeout: Some(Duration::from_millis(400)),
        ..ServerConfig::default()
    };
    let server = TestServer::start(config);
    let mut c = connect(server.addr);
    c.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let started = Instant::now();
    send_all(&mut c, b"\x0bMSH|");
    let mut closed = false;
    while started.elapsed() < Duration::from_secs(5) {
        if c.write_all(b"x").is_err() {
            closed = true;
            break;
        }
        let mut buf = [0u8; 64];
        if let Ok(0) = c.read(&mut buf) {
            closed = true;
            break;
        }
    }
    assert!(
        closed,
        "a sender trickling one byte at a time held its frame open for 5 s"
    );
    let stats = server.stop();
    assert_eq!(stats.read_timeouts, 1);
}

#[test]
fn a_peer_at_its_connection_limit_does_not_lock_out_another_address() {
    let config = ServerConfig {
        connections: ConnectionTable::new(100, 3),
        ..ServerConfig::default()
    };
    let server = TestServer::start(config);
    // Three idle connections from 127.0.0.1 (the per-peer limit), a fourth refused.
    let idle: Vec<TcpStream> = (0..3).map(|_| connect(server.addr)).collect();
    let mut fourth = connect(server.addr);
    assert!(
        closed_within(&mut fourth, Duration::from_secs(5)),
        "a connection past the per-peer limit was kept"
    );
    let mut other = connect_from([127, 0, 0, 2], server.addr);
    assert_eq!(ack_code(&mut other, "OTHER"), "AA");
    drop(idle);
    // Once the flood closes, its address is admitted again.
    let mut again = None;
    assert!(eventually(Duration::from_secs(5), || {
        let mut c = connect(server.addr);
        send_all(&mut c, &framed(&adt("AGAIN")));
        let mut buf = [0u8; 512];
        c.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let ok = matches!(c.read(&mut buf), Ok(n) if n > 0);
        again = Some(c);
        ok
    }));
    let stats = server.stop();
    assert!(stats.connections_rejected >= 1);
}

#[test]
fn a_service_full_of_one_addresss_connections_makes_room_for_a_new_address() {
    let config = ServerConfig {
        connections: ConnectionTable::new(8, 8),
        ..ServerConfig::default()
    };
    let server = TestServer::start(config);
    let mut idle: Vec<TcpStream> = (0..8).map(|_| connect(server.addr)).collect();
    // Every one of them is served (so all eight are open on the server).
    for (i, c) in idle.iter_mut().enumerate() {
        assert_eq!(ack_code(c, &format!("IDLE-{i}")), "AA");
    }
    // Full: another connection from the same address is refused...
    let mut same = connect(server.addr);
    assert!(closed_within(&mut same, Duration::from_secs(5)));
    // ...but a new address takes the place of the newest of them.
    let mut other = connect_from([127, 0, 0, 2], server.addr);
    assert_eq!(ack_code(&mut other, "NEW-ADDRESS"), "AA");
    assert!(
        closed_within(&mut idle[7], Duration::from_secs(5)),
        "the newest connection of the heaviest address was not the one displaced"
    );
    for c in &mut idle[..7] {
        assert_eq!(ack_code(c, "STILL-OPEN"), "AA");
    }
    drop((idle, other));
    let stats = server.stop();
    assert_eq!(stats.connections_displaced, 1);
    assert_eq!(stats.connections_rejected, 1);
}

/// Idle connections from `n` loopback addresses (127.0.0.10 onwards), one each, open
/// on the server once this returns.
fn idle_flood(n: u8, table: &ConnectionTable, addr: SocketAddr) -> Vec<TcpStream> {
    let flood: Vec<TcpStream> = (0..n)
        .map(|i| connect_from([127, 0, 0, 10 + i], addr))
        .collect();
    assert!(
        eventually(Duration::from_secs(5), || table.open() == usize::from(n)),
        "the flood's connections were not all admitted"
    );
    flood
}

#[test]
fn a_service_full_of_idle_connections_from_many_addresses_makes_room_for_a_new_sender() {
    let table = ConnectionTable::new(8, 8);
    let config = ServerConfig {
        connections: table.clone(),
        ..ServerConfig::default()
    };
    let server = TestServer::start(config);
    // One idle connection from each of 8 addresses: no address has more than another.
    let mut flood = idle_flood(8, &table, server.addr);
    // Past the idle-longest rule's minimum idle time (1 s).
    std::thread::sleep(Duration::from_millis(1500));
    let mut sender = connect_from([127, 0, 0, 100], server.addr);
    assert_eq!(
        ack_code(&mut sender, "NEW-SENDER"),
        "AA",
        "a flood of idle connections from many addresses locked a new sender out"
    );
    assert_eq!(ack_code(&mut sender, "NEW-SENDER-2"), "AA");
    assert!(
        closed_within(&mut flood[0], Duration::from_secs(5)),
        "the connection idle longest was not the one displaced"
    );
    for c in &mut flood[1..] {
        assert_eq!(ack_code(c, "STILL-OPEN"), "AA");
    }
    drop((flood, sender));
    let stats = server.stop();
    assert_eq!(stats.connections_displaced_idle, 1, "{stats:?}");
    assert_eq!(stats.connections_displaced, 0, "{stats:?}");
}

#[test]
fn a_connection_in_the_middle_of_a_frame_is_never_displaced_for_a_new_sender() {
    let table = ConnectionTable::new(8, 8);
    let config = ServerConfig {
        connections: table.clone(),
        read_timeout: None,
        ..ServerConfig::default()
    };
    let server = TestServer::start(config);
    let mut flood = idle_flood(8, &table, server.addr);
    // Each holds the start of a message, then waits.
    for c in &mut flood {
        send_all(c, b"\x0bMSH|^~\\&|");
    }
    std::thread::sleep(Duration::from_millis(1500));
    let mut refused = connect_from([127, 0, 0, 100], server.addr);
    assert!(
        closed_within(&mut refused, Duration::from_secs(5)),
        "a connection was displaced in the middle of a frame"
    );
    // Every message in progress is still whole once its sender finishes it.
    for (i, c) in flood.iter_mut().enumerate() {
        let mut rest = adt(&format!("REST-{i}"));
        rest.drain(..b"MSH|^~\\&|".len());
        rest.extend_from_slice(b"\x1c\r");
        send_all(c, &rest);
        assert_eq!(msa(&read_frames(c, 1)[0]).0, "AA");
    }
    drop(flood);
    let stats = server.stop();
    assert_eq!(stats.connections_displaced_idle, 0, "{stats:?}");
    assert_eq!(stats.connections_rejected, 1, "{stats:?}");
}

#[test]
fn stalled_frames_from_one_address_take_at_most_its_share_and_another_sender_gets_its_ack() {
    // One address may hold 2 MiB / 8 = 256 KiB: two of the four 100 KiB buffers asked for.
    let budget = InboundBudget::new(2 << 20);
    let config = ServerConfig {
        read_timeout: Some(Duration::from_millis(500)),
        frame_bytes_max: 100 << 10,
        inbound_budget: budget.clone(),
        ..ServerConfig::default()
    };
    let server = TestServer::start(config);
    let mut stalled = Vec::new();
    for _ in 0..4 {
        let mut c = connect(server.addr);
        let mut partial = vec![0x0b];
        partial.extend(std::iter::repeat_n(b'A', 90 << 10));
        // The server may stop reading (budget spent): a write that blocks is expected.
        c.set_write_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let _ = c.write_all(&partial);
        stalled.push(c);
    }
    let mut peak = 0;
    let watch_until = Instant::now() + Duration::from_millis(300);
    while Instant::now() < watch_until {
        peak = peak.max(budget.held());
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        peak <= budget.bytes_max() / 8,
        "held {peak} bytes, over one address's share"
    );
    let mut sender = connect_from([127, 0, 0, 2], server.addr);
    sender
        .set_read_timeout(Some(Duration::from_millis(400)))
        .unwrap();
    assert_eq!(
        ack_code(&mut sender, "OTHER"),
        "AA",
        "another address waited for the stalled frames"
    );
    drop((stalled, sender));
    assert!(
        eventually(Duration::from_secs(5), || budget.held() == 0),
        "{} bytes still held after every connection closed",
        budget.held()
    );
    let stats = server.stop();
    assert!(
        stats.budget_waits >= 1,
        "no stalled frame waited: {stats:?}"
    );
    assert_eq!(
        stats.frames_received, 1,
        "only the other sender's: {stats:?}"
    );
}

#[test]
fn a_large_frame_gives_its_buffer_back_and_an_idle_connection_frees_it() {
    let budget = InboundBudget::new(128 << 20);
    let config = ServerConfig {
        inbound_budget: budget.clone(),
        buffer_release_idle: Duration::from_millis(300),
        ..ServerConfig::default()
    };
    let server = TestServer::start(config);
    let mut c = connect(server.addr);
    let mut big = adt("BIG");
    big.extend(std::iter::repeat_n(b'Z', 4 << 20));
    big.push(b'\r');
    send_all(&mut c, &framed(&big));
    assert_eq!(msa(&read_frames(&mut c, 1)[0]).0, "AA");
    assert!(
        budget.held() <= 64 << 10,
        "{} bytes held after a 4 MiB frame was answered",
        budget.held()
    );
    assert!(
        eventually(Duration::from_secs(5), || budget.held() == 0),
        "an idle connection kept {} bytes",
        budget.held()
    );
    assert_eq!(ack_code(&mut c, "AFTER-IDLE"), "AA");
    drop(c);
    let stats = server.stop();
    assert!(stats.buffers_released >= 1);
}

#[test]
fn stop_cuts_a_client_stuck_mid_frame_after_the_grace() {
    let config = ServerConfig {
        read_timeout: None,
        stay_connected: StayConnected::Forever,
        stop_frame_grace: Duration::from_millis(300),
        ..ServerConfig::default()
    };
    let server = TestServer::start(config);
    let mut c = connect(server.addr);
    send_all(&mut c, b"\x0bMSH|^~\\&|partial");
    std::thread::sleep(Duration::from_millis(100));
    let trickle = std::thread::spawn(move || {
        // One byte every 50 ms until the server closes, at most 10 s.
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) && c.write_all(b"y").is_ok() {
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(server.stop());
    });
    let stats = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("stop waited more than 5 s on a client stuck in a frame");
    assert_eq!(stats.stop_cuts, 1);
    trickle.join().unwrap();
}

/// Attackers' byte streams: arbitrary bytes with many start blocks.
fn attack() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![3 => any::<u8>(), 1 => Just(0x0b), 1 => Just(b'A')],
        0..3000,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_streams_never_pass_the_budget_nor_stop_another_senders_acks(
        attacks in proptest::collection::vec(attack(), 1..5),
    ) {
        // Frames up to 8 KiB: buffers of 8 KiB + 3; one address may hold two of them.
        let budget = InboundBudget::new(16 * ((8 << 10) + 3));
        let config = ServerConfig {
            read_timeout: Some(Duration::from_millis(300)),
            frame_bytes_max: 8 << 10,
            inbound_budget: budget.clone(),
            ..ServerConfig::default()
        };
        let server = TestServer::start(config);
        let mut attackers = Vec::new();
        for bytes in &attacks {
            let mut c = connect(server.addr);
            c.set_write_timeout(Some(Duration::from_millis(200))).unwrap();
            let _ = c.write_all(bytes);
            // Left open: a slow-loris once its bytes are out.
            attackers.push(c);
        }
        prop_assert!(budget.held() <= budget.bytes_max() / 8);
        let mut sender = connect_from([127, 0, 0, 2], server.addr);
        prop_assert_eq!(ack_code(&mut sender, "LEGIT"), "AA");
        prop_assert!(budget.held() <= budget.bytes_max() / 8 * 2);
        drop((attackers, sender));
        prop_assert!(eventually(Duration::from_secs(5), || budget.held() == 0));
        server.stop();
    }
}
