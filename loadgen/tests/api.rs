//! The library API over loopback: a background sink, a closed-loop send against it, and an
//! e2e run whose "engine" is a direct path (the sender sends straight to its own sink).
//! Every run is bounded by a message count.

use std::time::Duration;

use hie_loadgen::{
    Behaviour, E2eOptions, Executors, SendOptions, SinkOptions, run_e2e, run_send, run_sink,
};

#[test]
fn send_against_a_background_sink_counts_every_message_on_both_sides() {
    let sink = run_sink(SinkOptions::default()).expect("sink starts");
    let report = run_send(SendOptions {
        to: sink.addr(),
        connections: 4,
        messages: Some(2_000),
        timeout: Duration::from_secs(10),
        ..SendOptions::default()
    })
    .expect("send runs");
    assert_eq!(report.sent, 2_000);
    assert_eq!(report.acked, 2_000);
    assert_eq!(report.ack_codes.AA, 2_000);
    assert_eq!(report.errors, hie_loadgen::Errors::default());
    assert!(report.latency_us.p50 > 0 && report.latency_us.p50 <= report.latency_us.max);
    assert!(report.to_table().contains("ack latency"));
    assert_eq!(sink.received(), 2_000);
    let sink_report = sink.stop_and_join().expect("sink report");
    assert_eq!(sink_report.received, 2_000);
    assert_eq!(sink_report.ack_codes.AA, 2_000);
    assert_eq!(sink_report.connections, 4);
}

#[test]
fn sink_stops_by_itself_after_its_message_count() {
    let sink = run_sink(SinkOptions {
        messages: Some(100),
        behaviour: Behaviour {
            ae_rate: 1.0,
            ..Behaviour::default()
        },
        ..SinkOptions::default()
    })
    .expect("sink starts");
    let report = run_send(SendOptions {
        to: sink.addr(),
        connections: 1,
        messages: Some(100),
        ..SendOptions::default()
    })
    .expect("send runs");
    assert_eq!(report.ack_codes.AE, 100);
    let sink_report = sink.join().expect("the sink ends on its own");
    assert_eq!(sink_report.received, 100);
    assert_eq!(sink_report.ack_codes.AE, 100);
}

#[test]
fn e2e_over_a_direct_path_loses_nothing() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let report = run_e2e(E2eOptions {
        send: SendOptions {
            to: port,
            connections: 2,
            messages: Some(500),
            patients: 10,
            executors: Executors::default(),
            ..SendOptions::default()
        },
        sink_listen: port,
        drain: Duration::from_secs(5),
        ..E2eOptions::default()
    })
    .expect("e2e runs");
    assert_eq!(report.acked, 500);
    assert_eq!(
        (report.lost, report.duplicates, report.order_violations),
        (0, 0, 0)
    );
    assert!(report.to_table().contains("e2e latency"));
}

#[test]
fn bad_options_are_errors_not_panics() {
    let err = run_send(SendOptions {
        connections: 0,
        ..SendOptions::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("--connections"), "{err}");
    let err = run_sink(SinkOptions {
        behaviour: Behaviour {
            ae_rate: 0.7,
            ar_rate: 0.7,
            ..Behaviour::default()
        },
        ..SinkOptions::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("exceeds 1"), "{err}");
    let err = run_send(SendOptions {
        to: "10.1.2.3:2575".parse().unwrap(),
        ..SendOptions::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("allow-remote"), "{err}");
}

#[test]
fn parking_at_once_without_busy_polling_counts_the_same() {
    let parked = Executors {
        busy_poll: Duration::ZERO,
        ..Executors::default()
    };
    let sink = run_sink(SinkOptions {
        executors: parked.clone(),
        ..SinkOptions::default()
    })
    .expect("sink starts");
    let report = run_send(SendOptions {
        to: sink.addr(),
        connections: 3,
        messages: Some(600),
        executors: parked,
        ..SendOptions::default()
    })
    .expect("send runs");
    assert_eq!((report.sent, report.ack_codes.AA), (600, 600));
    assert_eq!(sink.stop_and_join().expect("sink report").received, 600);
}

#[test]
fn open_loop_sends_at_most_max_in_flight_unanswered_messages_per_connection() {
    use std::io::Read;
    // A server that reads its first connection and never answers: every message on it
    // stays in flight until the sender's timeout gives the connection up.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let silent = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut frames = 0u64;
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = s.read(&mut buf) {
            frames += buf[..n].iter().filter(|&&b| b == 0x1c).count() as u64;
        }
        frames
    });
    let report = run_send(SendOptions {
        to: addr,
        connections: 1,
        rate: Some(1_000.0),
        max_in_flight: 4,
        duration: Some(Duration::from_millis(300)),
        timeout: Duration::from_secs(1),
        ..SendOptions::default()
    })
    .expect("send runs");
    // 300 messages were due within the run; the connection took 4 and waited. (After
    // the timeout the sender connects again: that connection is not read.)
    assert_eq!(
        silent.join().unwrap(),
        4,
        "frames on the silent connection: {report:?}"
    );
    assert_eq!(report.acked, 0);
    assert!(report.errors.timeouts >= 4, "{report:?}");
}
