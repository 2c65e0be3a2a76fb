//! Lifecycle, end to end: graceful shutdown with messages in flight, a downstream that is
//! down for a while, `hie ctl` commands on a service and an operation, a service whose
//! port is taken, and the restart policy of a service that cannot bind.
//!
//! Production: `In` (TCP service) → `Out` (TCP operation) → the in-test sink; one shard
//! (two for the shutdown tests).

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{
    Answer, TestSink, adt, counter, ctl, head, send_one, start_hie, start_hie_with, states,
    tcp_operation, tcp_service, wait_status,
};
use hie_tests::{Hie, MllpConn, bin, field, free_port, wait_until};

fn production(in_port: u16, out_port: u16, shards: usize, service_host: &[(&str, &str)]) -> String {
    head("Lifecycle", shards)
        + &tcp_service("In", in_port, "Out", service_host)
        + &tcp_operation(
            "Out",
            out_port,
            &[("RetryInterval", "1"), ("FailureTimeout", "-1")],
            &[("ConnectTimeout", "1")],
        )
}

/// Sends `L-0000`, `L-0001`… on one connection until `stop`; the ids ACKed, in order.
fn load(in_port: u16, stop: Arc<AtomicBool>, acked: Arc<Mutex<Vec<String>>>) {
    let Ok(mut conn) = MllpConn::connect(&format!("127.0.0.1:{in_port}")) else {
        return;
    };
    for n in 0..5_000 {
        if stop.load(Ordering::Acquire) {
            return;
        }
        let id = format!("L-{n:04}");
        match conn.exchange(&adt(&id, &format!("P{}", n % 7))) {
            Ok(ack) if field(&ack, "MSA", 1).as_deref() == Some("AA") => {
                acked.lock().unwrap().push(id)
            }
            _ => return,
        }
    }
}

/// Runs the load against a slow sink (10 ms per ACK) for `for_how_long`, then SIGTERMs
/// the engine while a backlog is queued; returns the ids ACKed and how `hie run` exited.
fn sigterm_under_load(
    hie: &mut Hie,
    in_port: u16,
    for_how_long: Duration,
) -> (Vec<String>, Option<std::process::ExitStatus>) {
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let sender = std::thread::spawn({
        let (stop, acked) = (Arc::clone(&stop), Arc::clone(&acked));
        move || load(in_port, stop, acked)
    });
    std::thread::sleep(for_how_long);
    hie.process.signal(libc::SIGTERM);
    let exit = hie.process.wait_timeout(Duration::from_secs(60));
    stop.store(true, Ordering::Release);
    sender.join().expect("sender");
    let acked = acked.lock().unwrap().clone();
    (acked, exit)
}

fn missing_from(sink: &TestSink, acked: &[String]) -> Vec<String> {
    let got: HashSet<String> = sink.control_ids().into_iter().collect();
    acked
        .iter()
        .filter(|id| !got.contains(*id))
        .cloned()
        .collect()
}

#[test]
fn sigterm_with_messages_in_flight_delivers_every_acked_message_before_exit() {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, out_port) = (free_port(), free_port());
    let sink = TestSink::start(out_port, Answer::Code("AA"));
    sink.set_delay(Duration::from_millis(10));
    let text = production(in_port, out_port, 2, &[]);
    let (mut hie, _data) = start_hie_with(dir.path(), &text, &["--shutdown-timeout", "60"]);

    let (acked, exit) = sigterm_under_load(&mut hie, in_port, Duration::from_millis(1500));
    assert!(
        exit.is_some_and(|s| s.success()),
        "exit {exit:?}; log:\n{}",
        hie.log()
    );
    assert!(acked.len() >= 20, "only {} ACKed", acked.len());
    let missing = missing_from(&sink, &acked);
    assert!(
        missing.is_empty(),
        "{} of {} ACKed messages not delivered before exit (e.g. {:?})",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)]
    );
}

#[test]
fn messages_still_queued_at_the_shutdown_timeout_are_delivered_after_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, out_port) = (free_port(), free_port());
    let sink = TestSink::start(out_port, Answer::Code("AA"));
    sink.set_delay(Duration::from_millis(50));
    let text = production(in_port, out_port, 2, &[]);
    let (mut hie, _data) = start_hie_with(dir.path(), &text, &["--shutdown-timeout", "1"]);

    let (acked, exit) = sigterm_under_load(&mut hie, in_port, Duration::from_millis(1500));
    assert!(
        exit.is_some_and(|s| s.success()),
        "exit {exit:?}; log:\n{}",
        hie.log()
    );
    let left = missing_from(&sink, &acked);
    assert!(
        !left.is_empty(),
        "the slow sink took all {} before the timeout; nothing left to recover",
        acked.len()
    );
    println!(
        "{} ACKed, {} left queued at shutdown",
        acked.len(),
        left.len()
    );

    sink.set_delay(Duration::ZERO);
    let (hie, data) = start_hie(dir.path(), &text);
    let delivered = wait_until(Duration::from_secs(30), || {
        missing_from(&sink, &acked).is_empty()
    });
    assert!(
        delivered,
        "{} ACKed messages never arrived; status {:#}\nlog:\n{}",
        missing_from(&sink, &acked).len(),
        common::status(&data),
        hie.log()
    );
    // In order: the first arrival of each id follows the send order.
    let mut seen = HashSet::new();
    let firsts: Vec<String> = sink
        .control_ids()
        .into_iter()
        .filter(|id| seen.insert(id.clone()))
        .collect();
    let mut sorted = firsts.clone();
    sorted.sort();
    assert_eq!(firsts, sorted, "first arrivals in send order");
}

#[test]
fn a_downstream_that_is_down_for_a_while_gets_the_waiting_messages_in_order_when_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, out_port) = (free_port(), free_port());
    let sink = TestSink::start(out_port, Answer::Code("AA"));
    let (hie, data) = start_hie(dir.path(), &production(in_port, out_port, 1, &[]));
    let mut conn = MllpConn::connect(&format!("127.0.0.1:{in_port}")).unwrap();
    let mut send = |n: usize| {
        let ack = conn.exchange(&adt(&format!("W-{n:02}"), "P1")).unwrap();
        assert_eq!(field(&ack, "MSA", 1).as_deref(), Some("AA"));
    };
    for n in 0..5 {
        send(n);
    }
    assert!(wait_until(Duration::from_secs(10), || sink.count() == 5));
    let before = sink.stop();

    // Down: the service still takes messages; they wait for the operation.
    for n in 5..15 {
        send(n);
    }
    let status = wait_status(&hie, &data, Duration::from_secs(10), "retrying", |s| {
        counter(s, "Out", "retries") >= 1
    });
    assert_eq!(counter(&status, "Out", "failed"), 0, "{status:#}");
    std::thread::sleep(Duration::from_millis(1500));

    let sink = TestSink::start(out_port, Answer::Code("AA"));
    wait_status(&hie, &data, Duration::from_secs(30), "all delivered", |s| {
        counter(s, "Out", "completed") == 15
    });
    let mut seen = HashSet::new();
    let after: Vec<String> = sink
        .control_ids()
        .into_iter()
        .filter(|id| seen.insert(id.clone()))
        .collect();
    let expected: Vec<String> = (5..15).map(|n| format!("W-{n:02}")).collect();
    assert_eq!(before.len(), 5);
    assert_eq!(after, expected, "the waiting messages, in order");
}

#[test]
fn ctl_pause_resume_disable_enable_and_restart_act_on_an_operation() {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, out_port) = (free_port(), free_port());
    let sink = TestSink::start(out_port, Answer::Code("AA"));
    let (hie, data) = start_hie(dir.path(), &production(in_port, out_port, 1, &[]));
    let ok = |args: &[&str]| {
        let (code, out) = ctl(&data, args);
        assert_eq!(code, 0, "hie ctl {args:?}: {out}");
    };

    for (stop, start, state) in [
        ("pause", "resume", "paused"),
        ("disable", "enable", "disabled"),
    ] {
        ok(&[stop, "Out"]);
        wait_status(&hie, &data, Duration::from_secs(5), state, |s| {
            states(s, "Out") == [state]
        });
        let id = format!("OP-{stop}");
        assert_eq!(send_one(in_port, &adt(&id, "P1")), "AA");
        std::thread::sleep(Duration::from_millis(700));
        assert!(
            !sink.control_ids().contains(&id),
            "{state}: nothing is sent"
        );
        ok(&[start, "Out"]);
        assert!(
            wait_until(Duration::from_secs(10), || sink.control_ids().contains(&id)),
            "{start}: the waiting message is sent; log:\n{}",
            hie.log()
        );
    }

    ok(&["restart", "Out"]);
    let status = wait_status(&hie, &data, Duration::from_secs(5), "restarted", |s| {
        counter(s, "Out", "restarts") == 1 && states(s, "Out") == ["running"]
    });
    assert_eq!(counter(&status, "Out", "completed"), 2);
    assert_eq!(send_one(in_port, &adt("OP-restart", "P1")), "AA");
    assert!(wait_until(Duration::from_secs(10), || sink
        .control_ids()
        .contains(&"OP-restart".to_string())));

    let (code, out) = ctl(&data, &["pause", "NoSuchItem"]);
    assert_eq!(code, 1, "an unknown item is refused: {out}");
}

#[test]
fn ctl_pause_resume_disable_enable_and_restart_act_on_a_service() {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, out_port) = (free_port(), free_port());
    let _sink = TestSink::start(out_port, Answer::Code("AA"));
    let (hie, data) = start_hie(dir.path(), &production(in_port, out_port, 1, &[]));
    let addr = format!("127.0.0.1:{in_port}");
    let ok = |args: &[&str]| {
        let (code, out) = ctl(&data, args);
        assert_eq!(code, 0, "hie ctl {args:?}: {out}");
    };

    // Pause: an open connection is not answered until resume.
    let mut conn = MllpConn::connect(&addr).unwrap();
    assert_eq!(
        field(&conn.exchange(&adt("S-1", "P1")).unwrap(), "MSA", 1).as_deref(),
        Some("AA")
    );
    ok(&["pause", "In"]);
    wait_status(&hie, &data, Duration::from_secs(5), "paused", |s| {
        states(s, "In") == ["paused"]
    });
    conn.send(&adt("S-2", "P1")).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let ack = conn.receive();
        let _ = tx.send(Instant::now());
        ack
    });
    std::thread::sleep(Duration::from_millis(700));
    assert!(rx.try_recv().is_err(), "a paused service does not answer");
    let resumed = Instant::now();
    ok(&["resume", "In"]);
    let answered = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("answer after resume");
    assert!(answered >= resumed);
    let ack = waiter.join().unwrap().unwrap();
    assert_eq!(field(&ack, "MSA", 2).as_deref(), Some("S-2"));

    // Disable: the port closes; enable opens it again.
    ok(&["disable", "In"]);
    let closed = wait_until(Duration::from_secs(5), || {
        std::net::TcpStream::connect(&addr).is_err()
    });
    assert!(closed, "a disabled service stops listening");
    ok(&["enable", "In"]);
    assert!(
        wait_until(Duration::from_secs(10), || std::net::TcpStream::connect(
            &addr
        )
        .is_ok()),
        "an enabled service listens again; log:\n{}",
        hie.log()
    );
    assert_eq!(send_one(in_port, &adt("S-3", "P1")), "AA");

    // Restart: counted, and it takes messages afterwards.
    ok(&["restart", "In"]);
    wait_status(&hie, &data, Duration::from_secs(5), "restarted", |s| {
        counter(s, "In", "restarts") == 1
    });
    let sent = wait_until(Duration::from_secs(10), || {
        MllpConn::connect(&addr)
            .and_then(|mut c| c.exchange(&adt("S-4", "P1")))
            .is_ok_and(|ack| field(&ack, "MSA", 1).as_deref() == Some("AA"))
    });
    assert!(
        sent,
        "a restarted service takes messages; log:\n{}",
        hie.log()
    );
}

/// Runs `hie run` to its end (at most 30 s): exit code and stderr.
fn run_to_end(config: &Path, data: &Path) -> (Option<i32>, String) {
    let out = std::process::Command::new(bin("hie"))
        .arg("run")
        .arg(config)
        .arg("--data-dir")
        .arg(data)
        .args(["--no-pin", "--log", "warn", "--admin", "127.0.0.1:0"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn hie run");
    let mut guard = hie_tests::ChildGuard::new(out);
    let status = guard.wait_timeout(Duration::from_secs(30));
    let mut stderr = String::new();
    if let Some(child) = guard.child.as_mut()
        && let Some(err) = child.stderr.as_mut()
    {
        use std::io::Read;
        let _ = err.read_to_string(&mut stderr);
    }
    guard.kill();
    (status.and_then(|s| s.code()), stderr)
}

#[test]
fn a_service_whose_port_is_taken_makes_hie_run_exit_non_zero_naming_the_item() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let in_port = taken.local_addr().unwrap().port();
    let text = head("PortTaken", 1)
        + &tcp_service("PAS ADT In", in_port, "Out", &[])
        + &tcp_operation("Out", free_port(), &[], &[]);
    let config = common::write_production(dir.path(), &text);
    let (code, stderr) = run_to_end(&config, &dir.path().join("data"));
    assert!(
        code.is_some_and(|c| c != 0),
        "exit {code:?}; stderr:\n{stderr}"
    );
    assert!(stderr.contains("PAS ADT In"), "names the item:\n{stderr}");
    drop(taken);
}

/// Disables `In`, takes its port, enables it again: the rebind fails.
fn enable_while_the_port_is_taken(data: &Path, hie: &Hie, in_port: u16) -> std::net::TcpListener {
    let (code, out) = ctl(data, &["disable", "In"]);
    assert_eq!(code, 0, "{out}");
    let mut taken = None;
    let bound = wait_until(Duration::from_secs(5), || {
        taken = std::net::TcpListener::bind(("127.0.0.1", in_port)).ok();
        taken.is_some()
    });
    assert!(
        bound,
        "the disabled service released its port; log:\n{}",
        hie.log()
    );
    let (code, out) = ctl(data, &["enable", "In"]);
    assert_eq!(code, 0, "{out}");
    taken.expect("bound")
}

#[test]
fn restart_policy_on_failure_retries_a_failed_bind_max_restarts_times_then_fails_the_item() {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, out_port) = (free_port(), free_port());
    let host = [
        ("RestartPolicy", "on_failure"),
        ("MaxRestarts", "2"),
        ("RestartDelay", "0.2"),
    ];
    let (hie, data) = start_hie(dir.path(), &production(in_port, out_port, 1, &host));
    let taken = enable_while_the_port_is_taken(&data, &hie, in_port);
    let status = wait_status(&hie, &data, Duration::from_secs(10), "failed", |s| {
        states(s, "In") == ["failed"]
    });
    // Two restarts allowed: three attempts, each counted.
    assert_eq!(counter(&status, "In", "restarts"), 3, "{status:#}");
    // Once the port is free, an operator's enable brings it back.
    drop(taken);
    let (code, out) = ctl(&data, &["enable", "In"]);
    assert_eq!(code, 0, "{out}");
    wait_status(&hie, &data, Duration::from_secs(10), "running", |s| {
        states(s, "In") == ["running"]
    });
    assert!(wait_until(Duration::from_secs(10), || {
        MllpConn::connect(&format!("127.0.0.1:{in_port}"))
            .and_then(|mut c| c.exchange(&adt("RP-1", "P1")))
            .is_ok()
    }));
}

#[test]
fn restart_policy_never_fails_the_item_at_the_first_failed_bind() {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, out_port) = (free_port(), free_port());
    let host = [("RestartPolicy", "never"), ("RestartDelay", "0.2")];
    let (hie, data) = start_hie(dir.path(), &production(in_port, out_port, 1, &host));
    let _taken = enable_while_the_port_is_taken(&data, &hie, in_port);
    let status = wait_status(&hie, &data, Duration::from_secs(10), "failed", |s| {
        states(s, "In") == ["failed"]
    });
    assert_eq!(counter(&status, "In", "restarts"), 1, "{status:#}");
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        counter(&common::status(&data), "In", "restarts"),
        1,
        "no retry"
    );
}

#[test]
fn restart_policy_on_failure_binds_again_once_the_port_is_free() {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, out_port) = (free_port(), free_port());
    let host = [
        ("RestartPolicy", "on_failure"),
        ("MaxRestarts", "100"),
        ("RestartDelay", "0.2"),
    ];
    let (hie, data) = start_hie(dir.path(), &production(in_port, out_port, 1, &host));
    let taken = enable_while_the_port_is_taken(&data, &hie, in_port);
    wait_status(&hie, &data, Duration::from_secs(10), "retrying", |s| {
        counter(s, "In", "restarts") >= 2
    });
    drop(taken);
    let back = wait_until(Duration::from_secs(10), || {
        MllpConn::connect(&format!("127.0.0.1:{in_port}"))
            .and_then(|mut c| c.exchange(&adt("RP-2", "P1")))
            .is_ok_and(|ack| field(&ack, "MSA", 1).as_deref() == Some("AA"))
    });
    assert!(
        back,
        "the service binds again by itself; log:\n{}",
        hie.log()
    );
    assert_eq!(states(&common::status(&data), "In"), ["running"]);
}

#[test]
fn sigterm_stops_promptly_while_an_operation_is_disabled_and_its_message_is_delivered_after_restart()
 {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, out_port) = (free_port(), free_port());
    let sink = TestSink::start(out_port, Answer::Code("AA"));
    let text = production(in_port, out_port, 1, &[]);
    let (mut hie, data) = start_hie_with(dir.path(), &text, &["--shutdown-timeout", "1"]);
    let (code, out) = ctl(&data, &["disable", "Out"]);
    assert_eq!(code, 0, "{out}");
    wait_status(&hie, &data, Duration::from_secs(5), "disabled", |s| {
        states(s, "Out") == ["disabled"]
    });
    assert_eq!(send_one(in_port, &adt("DIS-1", "P1")), "AA");

    let stopping = Instant::now();
    let exit = hie.process.stop(Duration::from_secs(15));
    assert!(
        exit.is_some_and(|s| s.success()),
        "exit {exit:?} after {:?}; log:\n{}",
        stopping.elapsed(),
        hie.log()
    );
    assert!(sink.control_ids().is_empty(), "nothing sent while disabled");

    // An operator's disable is kept: the next run starts the operation disabled, and
    // it delivers the kept message once enabled.
    let (hie, data) = start_hie(dir.path(), &text);
    assert_eq!(states(&common::status(&data), "Out"), ["disabled"]);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        sink.control_ids().is_empty(),
        "still disabled after the restart"
    );
    let (code, out) = ctl(&data, &["enable", "Out"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        wait_until(Duration::from_secs(10), || sink.control_ids() == ["DIS-1"]),
        "the kept message is delivered after the restart; log:\n{}",
        hie.log()
    );
}

#[test]
fn sigterm_stops_promptly_while_a_service_is_paused_with_a_message_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, out_port) = (free_port(), free_port());
    let sink = TestSink::start(out_port, Answer::Code("AA"));
    let text = production(in_port, out_port, 1, &[]);
    let (mut hie, data) = start_hie_with(dir.path(), &text, &["--shutdown-timeout", "1"]);
    let mut conn = MllpConn::connect(&format!("127.0.0.1:{in_port}")).unwrap();
    let (code, out) = ctl(&data, &["pause", "In"]);
    assert_eq!(code, 0, "{out}");
    wait_status(&hie, &data, Duration::from_secs(5), "paused", |s| {
        states(s, "In") == ["paused"]
    });
    conn.send(&adt("PAUSED-1", "P1")).unwrap();
    std::thread::sleep(Duration::from_millis(300));

    let stopping = Instant::now();
    let exit = hie.process.stop(Duration::from_secs(15));
    assert!(
        exit.is_some_and(|s| s.success()),
        "exit {exit:?} after {:?}; log:\n{}",
        stopping.elapsed(),
        hie.log()
    );
    // The paused service never took the message: no ACK, nothing stored or sent.
    assert!(conn.receive().is_err(), "no ACK for a message never taken");
    assert!(sink.control_ids().is_empty());
}

#[test]
fn shutdown_does_not_wait_for_the_queue_of_a_disabled_operation_to_drain() {
    let dir = tempfile::tempdir().unwrap();
    let (in_port, out_port) = (free_port(), free_port());
    let _sink = TestSink::start(out_port, Answer::Code("AA"));
    let text = production(in_port, out_port, 1, &[]);
    let (mut hie, data) = start_hie_with(dir.path(), &text, &["--shutdown-timeout", "30"]);
    let (code, out) = ctl(&data, &["disable", "Out"]);
    assert_eq!(code, 0, "{out}");
    wait_status(&hie, &data, Duration::from_secs(5), "disabled", |s| {
        states(s, "Out") == ["disabled"]
    });
    assert_eq!(send_one(in_port, &adt("KEPT-1", "P1")), "AA");

    // A disabled item cannot drain: its messages stay in the WAL for the next start.
    let stopping = Instant::now();
    let exit = hie.process.stop(Duration::from_secs(25));
    let took = stopping.elapsed();
    assert!(
        exit.is_some_and(|s| s.success()),
        "exit {exit:?}; log:\n{}",
        hie.log()
    );
    assert!(took < Duration::from_secs(10), "shutdown took {took:?}");
}
