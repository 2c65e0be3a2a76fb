//! The outbound MLLP client against a scripted peer on loopback: each kind of reply and
//! each failure, classified by ReplyCodeActions (HL7 default unless said otherwise).
//!
//! It lives with the engine, which owns ReplyCodeActions, and shares hie-net's socket test
//! helpers.

#[path = "../../net/tests/common/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use common::*;
use glommio::LocalExecutor;
use hie_core::items::mllp_reply::OutcomeFacts as _;
use hie_core::reply_code_actions::{Action, GiveUp, ReplyCodeActions};
use hie_net::{ClientConfig, FrameDecoder, MllpClient, NoReplyReason, ReplyOutcome, StayConnected};

/// What the peer does with each message it reads: the bytes to write back (already
/// framed or not), then whether to close, after an optional delay.
type Script = Arc<dyn Fn(usize, &str) -> Step + Send + Sync>;

struct Step {
    delay: Duration,
    write: Vec<u8>,
    close: bool,
}

fn ack(code: &str, id: &str) -> Vec<u8> {
    framed(
        format!("MSH|^~\\&|R|RF|S|SF|20240101||ACK^A01^ACK|A{id}|P|2.5.1\rMSA|{code}|{id}\r")
            .as_bytes(),
    )
}

fn reply(write: Vec<u8>) -> Step {
    Step {
        delay: Duration::ZERO,
        write,
        close: false,
    }
}

/// A peer accepting connections on its own thread; counts accepts; runs `script` per message.
struct Peer {
    addr: SocketAddr,
    accepts: Arc<AtomicUsize>,
    _join: JoinHandle<()>,
}

fn peer(script: Script) -> Peer {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let accepts = Arc::new(AtomicUsize::new(0));
    let counter = accepts.clone();
    let join = std::thread::spawn(move || {
        let messages = Arc::new(AtomicUsize::new(0));
        for conn in listener.incoming().take(8) {
            let Ok(conn) = conn else { return };
            counter.fetch_add(1, Ordering::SeqCst);
            let (script, messages) = (script.clone(), messages.clone());
            std::thread::spawn(move || serve_script(conn, script, messages));
        }
    });
    Peer {
        addr,
        accepts,
        _join: join,
    }
}

fn serve_script(mut conn: TcpStream, script: Script, messages: Arc<AtomicUsize>) {
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut dec = FrameDecoder::new(1 << 20);
    loop {
        let Ok(n) = conn.read(dec.read_buf()) else {
            return;
        };
        if n == 0 {
            return;
        }
        dec.commit(n);
        while let Some(frame) = dec.next_frame().unwrap() {
            let msg = hie_hl7::Message::scan(frame).unwrap();
            let id = String::from_utf8_lossy(msg.control_id().unwrap()).into_owned();
            let step = script(messages.fetch_add(1, Ordering::SeqCst), &id);
            std::thread::sleep(step.delay);
            let _ = conn.write_all(&step.write);
            if step.close {
                return;
            }
        }
    }
}

fn config(addr: SocketAddr) -> ClientConfig {
    ClientConfig {
        response_timeout: Some(Duration::from_millis(300)),
        connect_timeout: Duration::from_secs(2),
        reconnect_retry: 2,
        reconnect_backoff_initial: Duration::from_millis(10),
        ..ClientConfig::new(addr)
    }
}

/// Sends each control id in turn; returns (outcome summary, action) per message.
fn run(config: ClientConfig, ids: &[&str]) -> (Vec<(ReplyOutcome, Action)>, hie_net::ClientStats) {
    let ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    LocalExecutor::default().run(async move {
        let actions = ReplyCodeActions::default();
        let mut client = MllpClient::new(config);
        let mut results = Vec::new();
        for id in &ids {
            let outcome = client.send(&adt(id)).await.unwrap();
            let action = outcome.decide(&actions, b"ACK").action;
            results.push((outcome, action));
        }
        (results, client.stats())
    })
}

const RETRY_THEN_FAIL: Action = Action::Retry { then: GiveUp::Fail };

#[test]
fn accept_reply_completes_and_the_connection_is_kept() {
    let p = peer(Arc::new(|_, id| reply(ack("AA", id))));
    let (results, stats) = run(config(p.addr), &["M1", "M2", "M3"]);
    assert!(
        results
            .iter()
            .all(|(o, a)| matches!(o, ReplyOutcome::Replied(_)) && *a == Action::Complete)
    );
    assert_eq!(stats.connects, 1);
    assert_eq!(p.accepts.load(Ordering::SeqCst), 1);
}

#[test]
fn error_reply_suspends_and_reject_reply_retries_then_fails() {
    let p = peer(Arc::new(|n, id| {
        reply(ack(if n == 0 { "AE" } else { "AR" }, id))
    }));
    let (results, _) = run(config(p.addr), &["E1", "R1"]);
    assert_eq!(results[0].1, Action::Suspend);
    assert_eq!(results[1].1, RETRY_THEN_FAIL);
}

#[test]
fn error_reply_codes_and_text_reach_generic_e_codes() {
    let p = peer(Arc::new(|_, id| {
        reply(framed(
            format!("MSH|^~\\&|R|RF|S|SF|2024||ACK|A1|P|2.5\rMSA|AE|{id}|db down\rERR||PID^1^3|207^Application internal error^HL70357|E\r")
                .as_bytes(),
        ))
    }));
    let (results, _) = run(config(p.addr), &["E2"]);
    let actions = ReplyCodeActions::parse("E#207=RD,:?E=S").unwrap();
    assert_eq!(
        results[0].0.decide(&actions, b"ACK").action,
        Action::Retry {
            then: GiveUp::Disable
        }
    );
    let actions = ReplyCodeActions::parse("E*db down=F,:?E=S").unwrap();
    assert_eq!(results[0].0.decide(&actions, b"ACK").action, Action::Fail);
}

#[test]
fn a_reply_for_another_control_id_is_never_taken_and_resets_the_connection() {
    let p = peer(Arc::new(|n, id| {
        reply(ack("AA", if n == 0 { "SOMEONE-ELSE" } else { id }))
    }));
    let (results, stats) = run(config(p.addr), &["W1", "W2"]);
    assert!(matches!(results[0].0, ReplyOutcome::Mismatched(_)));
    assert_eq!(results[0].1, RETRY_THEN_FAIL);
    let defaults = ReplyCodeActions::default();
    let decision = results[0].0.decide(&defaults, b"ACK");
    assert_eq!(decision.warnings, vec![":I?=W"]);
    assert_eq!(results[1].1, Action::Complete);
    assert_eq!(stats.resets, 1);
    assert_eq!(p.accepts.load(Ordering::SeqCst), 2);
}

#[test]
fn a_late_ack_times_out_and_is_never_taken_for_the_next_message() {
    let p = peer(Arc::new(|n, id| Step {
        delay: if n == 0 {
            Duration::from_millis(600)
        } else {
            Duration::ZERO
        },
        write: ack("AA", id),
        close: false,
    }));
    let (results, stats) = run(config(p.addr), &["LATE", "NEXT"]);
    assert!(matches!(
        results[0].0,
        ReplyOutcome::NoReply(NoReplyReason::ResponseTimeout, _)
    ));
    assert_eq!(results[0].1, RETRY_THEN_FAIL);
    match &results[1].0 {
        ReplyOutcome::Replied(bytes) => assert_eq!(msa(bytes).1, "NEXT"),
        other => panic!("{other:?}"),
    }
    assert_eq!(stats.response_timeouts, 1);
}

#[test]
fn no_reply_at_all_matches_x() {
    let p = peer(Arc::new(|_, _| reply(Vec::new())));
    let (results, _) = run(config(p.addr), &["SILENT"]);
    assert!(matches!(
        results[0].0,
        ReplyOutcome::NoReply(NoReplyReason::ResponseTimeout, _)
    ));
    assert_eq!(
        results[0]
            .0
            .decide(&ReplyCodeActions::parse("X=S").unwrap(), b"ACK")
            .action,
        Action::Suspend
    );
}

#[test]
fn a_garbage_reply_suspends_under_the_default() {
    let p = peer(Arc::new(|_, _| reply(framed(b"garbage, not HL7"))));
    let (results, stats) = run(config(p.addr), &["G1"]);
    assert!(matches!(results[0].0, ReplyOutcome::Unparseable(_)));
    assert_eq!(results[0].1, Action::Suspend);
    assert_eq!(stats.resets, 1);
}

#[test]
fn a_reply_without_msa_matches_tilde() {
    let p = peer(Arc::new(|_, _| {
        reply(framed(b"MSH|^~\\&|R|RF|S|SF|2024||ACK|A1|P|2.5\r"))
    }));
    let (results, _) = run(config(p.addr), &["N1"]);
    assert_eq!(results[0].1, Action::Suspend);
    let actions = ReplyCodeActions::parse(":~=C").unwrap();
    assert_eq!(
        results[0].0.decide(&actions, b"ACK").action,
        Action::Complete
    );
}

#[test]
fn an_unexpected_reply_type_matches_t() {
    let p = peer(Arc::new(|_, id| {
        reply(framed(
            format!("MSH|^~\\&|R|RF|S|SF|2024||ADR^A19|A1|P|2.5\rMSA|AA|{id}\r").as_bytes(),
        ))
    }));
    let (results, _) = run(config(p.addr), &["T1"]);
    assert_eq!(results[0].1, Action::Complete);
    let actions = ReplyCodeActions::parse(":T?=S,:?A=C").unwrap();
    assert_eq!(
        results[0].0.decide(&actions, b"ACK").action,
        Action::Suspend
    );
}

#[test]
fn a_peer_closing_without_reply_retries_then_fails() {
    let p = peer(Arc::new(|_, _| Step {
        delay: Duration::ZERO,
        write: Vec::new(),
        close: true,
    }));
    let (results, _) = run(config(p.addr), &["C1"]);
    assert!(matches!(
        results[0].0,
        ReplyOutcome::NoReply(NoReplyReason::ConnectionClosed, _)
    ));
    assert_eq!(results[0].1, RETRY_THEN_FAIL);
}

#[test]
fn a_peer_sending_two_acks_for_one_message_cannot_answer_the_next() {
    let p = peer(Arc::new(|n, id| {
        let mut bytes = ack("AA", id);
        if n == 0 {
            bytes.extend_from_slice(&ack("AA", id));
        }
        reply(bytes)
    }));
    let (results, _) = run(config(p.addr), &["D1", "D2"]);
    for ((outcome, action), id) in results.iter().zip(["D1", "D2"]) {
        assert_eq!(*action, Action::Complete, "{outcome:?}");
        let ReplyOutcome::Replied(bytes) = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(msa(bytes).1, id);
    }
}

#[test]
fn nothing_listening_is_a_connect_failure_after_the_retries() {
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (results, stats) = run(config(addr), &["NC"]);
    assert!(matches!(
        results[0].0,
        ReplyOutcome::NoReply(NoReplyReason::ConnectFailed, _)
    ));
    assert_eq!(results[0].1, RETRY_THEN_FAIL);
    assert_eq!(stats.connect_failures, 3);
}

#[test]
fn stay_connected_zero_opens_a_connection_per_message() {
    let p = peer(Arc::new(|_, id| reply(ack("AA", id))));
    let cfg = ClientConfig {
        stay_connected: StayConnected::AfterEachMessage,
        ..config(p.addr)
    };
    let (results, stats) = run(cfg, &["S1", "S2"]);
    assert!(results.iter().all(|(_, a)| *a == Action::Complete));
    assert_eq!(stats.connects, 2);
}

#[test]
fn a_message_that_cannot_be_framed_is_refused_before_sending() {
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    LocalExecutor::default().run(async move {
        let mut client = MllpClient::new(config(addr));
        assert!(client.send(b"MSH|^~\\&|\x0b").await.is_err());
        assert!(client.send(b"").await.is_err());
    });
}
