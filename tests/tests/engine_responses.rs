//! A router's `ResponseFrom`, `ResponseTimeout` and `ResponseTargetConfigNames`, through
//! the real `hie run`: an `AckMode=App` service `In` sends to router `R`, which fans each
//! message out to two TCP operations, `A` and `B`, each with a sink of its own. Which
//! reply the sender gets (MSA-1, and whether it is a sink's own ACK, MSH-3 `SINK`, or one
//! hie wrote) says which rule answered; every message reaches both sinks (nothing lost).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{
    Answer, TestSink, adt, control_ids_in, file_operation, head, router, start_hie, tcp_operation,
    tcp_service,
};
use hie_tests::{MllpConn, field, free_port, wait_until};

/// A's sink answers at once, B's after this: B's reply always comes second.
const B_DELAY: Duration = Duration::from_millis(400);

/// The two sinks of a test, `a` answering at once and `b` after [`B_DELAY`].
struct Sinks {
    a: TestSink,
    b: TestSink,
}

impl Sinks {
    fn start(a: Answer, b: Answer) -> Sinks {
        let b = TestSink::start(free_port(), b);
        b.set_delay(B_DELAY);
        Sinks {
            a: TestSink::start(free_port(), a),
            b,
        }
    }
}

/// `In` (AckMode=App) -> `R` (TargetConfigNames A,B and `router_host`) -> `A`, `B`, and
/// `more` items.
fn production(in_port: u16, sinks: &Sinks, router_host: &[(&str, &str)], more: &str) -> String {
    head("Responses", 2)
        + &tcp_service("In", in_port, "R", &[("AckMode", "App")])
        + &router("R", "A,B", router_host)
        + &tcp_operation("A", sinks.a.port, &[], &[])
        + &tcp_operation("B", sinks.b.port, &[], &[])
        + more
}

/// Sends one ADT with control id `id` and returns the reply: (MSA-1, MSH-3).
fn exchange(in_port: u16, id: &str) -> (String, String) {
    let mut conn = MllpConn::connect(&format!("127.0.0.1:{in_port}")).expect("connect");
    let reply = conn.exchange(&adt(id, "P1")).expect("a reply");
    (
        field(&reply, "MSA", 1).unwrap_or_default(),
        field(&reply, "MSH", 3).unwrap_or_default(),
    )
}

/// Both sinks got `id` (nothing lost, whatever answered).
fn assert_both_got(sinks: &Sinks, id: &str) {
    let both = || sinks.a.control_ids() == [id] && sinks.b.control_ids() == [id];
    assert!(
        wait_until(Duration::from_secs(10), both),
        "A got {:?}, B got {:?}",
        sinks.a.control_ids(),
        sinks.b.control_ids()
    );
}

/// Runs the production of `router_host` and sends one message; the reply.
fn run_one(sinks: &Sinks, router_host: &[(&str, &str)], id: &str) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let in_port = free_port();
    let (hie, _data) = start_hie(dir.path(), &production(in_port, sinks, router_host, ""));
    let reply = exchange(in_port, id);
    assert_both_got(sinks, id);
    common::stop(hie);
    reply
}

#[test]
fn response_from_answers_with_the_named_operations_reply_even_when_the_other_answers_first() {
    let sinks = Sinks::start(Answer::Code("AE"), Answer::Code("AA"));
    let reply = run_one(&sinks, &[("ResponseFrom", "B")], "RF-1");
    assert_eq!(
        reply,
        ("AA".into(), "SINK".into()),
        "B's own ACK, not A's AE"
    );
}

#[test]
fn response_from_star_answers_with_the_first_reply() {
    let sinks = Sinks::start(Answer::Code("AE"), Answer::Code("AA"));
    let reply = run_one(&sinks, &[("ResponseFrom", "*")], "RS-1");
    assert_eq!(reply, ("AE".into(), "SINK".into()), "A's AE came first");
}

#[test]
fn response_from_plus_waits_for_every_target_and_answers_the_worst() {
    let sinks = Sinks::start(Answer::Code("AA"), Answer::Code("AE"));
    let started = Instant::now();
    let reply = run_one(&sinks, &[("ResponseFrom", "+A,B")], "RP-1");
    assert_eq!(
        reply,
        ("AE".into(), "SINK".into()),
        "B's AE, though A's AA came first"
    );
    assert!(started.elapsed() >= B_DELAY, "it waited for B");
}

#[test]
fn response_from_minus_answers_the_first_error() {
    let sinks = Sinks::start(Answer::Code("AA"), Answer::Code("AE"));
    let reply = run_one(&sinks, &[("ResponseFrom", "-A,B")], "RM-1");
    assert_eq!(reply, ("AE".into(), "SINK".into()), "B's AE");
}

#[test]
fn response_from_minus_answers_aa_of_its_own_when_no_target_refused() {
    let sinks = Sinks::start(Answer::Code("AA"), Answer::Code("AA"));
    let reply = run_one(&sinks, &[("ResponseFrom", "-*")], "RM-2");
    assert_eq!(reply.0, "AA");
    assert_ne!(reply.1, "SINK", "not a target's reply: hie's own AA");
}

#[test]
fn a_blank_response_from_answers_aa_once_routed_as_iris_does() {
    // Both sinks refuse, and B answers late: the AA is the router's, at routing.
    let sinks = Sinks::start(Answer::Code("AE"), Answer::Code("AE"));
    let reply = run_one(&sinks, &[], "RB-1");
    assert_eq!(reply.0, "AA");
    assert_ne!(reply.1, "SINK", "hie's own AA, no target's reply");
}

#[test]
fn response_timeout_answers_ae_when_the_named_target_stays_silent() {
    let sinks = Sinks::start(Answer::Code("AA"), Answer::Silent);
    let dir = tempfile::tempdir().unwrap();
    let in_port = free_port();
    let host = [("ResponseFrom", "B"), ("ResponseTimeout", "1")];
    // B gives up on its silent sink soon too, so that the run stops without waiting.
    let b = tcp_operation("B", sinks.b.port, &[], &[]);
    let quick = tcp_operation("B", sinks.b.port, &[], &[("ResponseTimeout", "1")]);
    let text = production(in_port, &sinks, &host, "").replace(&b, &quick);
    let (hie, _data) = start_hie(dir.path(), &text);
    let reply = exchange(in_port, "RT-1");
    assert_eq!(reply.0, "AE", "generated at the router's ResponseTimeout");
    assert_ne!(reply.1, "SINK");
    assert_both_got(&sinks, "RT-1");
    common::stop(hie);
}

#[test]
fn response_target_config_names_get_the_reply_as_a_message_of_their_own() {
    let sinks = Sinks::start(Answer::Code("AE"), Answer::Code("AA"));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let in_port = free_port();
    let host = [
        ("ResponseFrom", "B"),
        ("ResponseTargetConfigNames", "Replies"),
    ];
    let replies = file_operation("Replies", &out, "replies.hl7");
    let text = production(in_port, &sinks, &host, &replies);
    let (hie, data) = start_hie(dir.path(), &text);
    assert_eq!(exchange(in_port, "RF-2"), ("AA".into(), "SINK".into()));
    assert_both_got(&sinks, "RF-2");
    let file = out.join("replies.hl7");
    let forwarded = || file.exists() && control_ids_in(&file) == ["ACKRF-2"];
    assert!(
        wait_until(Duration::from_secs(10), forwarded),
        "B's ACK (control id ACKRF-2) in {}; log:\n{}",
        file.display(),
        hie.log()
    );
    let status = common::wait_status(&hie, &data, Duration::from_secs(10), "done", |s| {
        common::counter(s, "Replies", "completed") == 1
    });
    assert_eq!(
        common::counter(&status, "A", "completed") + common::counter(&status, "B", "completed"),
        1,
        "A suspended its AE; B completed"
    );
    common::stop(hie);
    assert_forwarded_once_after_restart(dir.path(), &text, &file);
}

/// A restart finds the forwarded reply delivered (written once), not sent again.
fn assert_forwarded_once_after_restart(dir: &Path, text: &str, file: &Path) {
    let (hie, _data) = start_hie(dir, text);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(control_ids_in(file), ["ACKRF-2"], "log:\n{}", hie.log());
    common::stop(hie);
}
