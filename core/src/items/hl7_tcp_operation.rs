//! `EnsLib.HL7.Operation.TCPOperation`: sends each message of its queue to the downstream
//! system over MLLP and acts on the reply per `ReplyCodeActions`.
//!
//! FIFO: one message at a time per instance; a message being retried holds back the
//! ones behind it (as IRIS does), so a patient's messages never overtake each other.
//! Outcomes:
//! - `C`: `Completed` recorded at the message's origin.
//! - `R…`: sent again every `RetryInterval` until `FailureTimeout` (-1: forever), then
//!   failed, suspended or disabled as the code says (`RF`, `RS`, `RD`).
//! - `S`: `Suspended` recorded; the message stays in the WAL and in the status list.
//! - `F`: `Failed` recorded.
//! - `D`: the item is disabled and the message goes back to the head of its queue.
//!
//! Where it connects: `IPAddress` and `Port`. An IP address is used as written; a host
//! name is looked up each time the operation opens a connection (as IRIS does), on
//! glommio's blocking pool, never on the shard. A name that does not resolve is a failed
//! connection for that message (retried per `ReplyCodeActions`, like a refused one), so it
//! never stops the production or the other items from starting.
//!
//! `AlertOnError` writes an `ALERT` line to the log for every failure, suspension and
//! disablement, and one when failed attempts have lasted `AlertRetryGracePeriod`
//! ([`error_spell`]). A message interrupted by a pause, a disable or shutdown goes back to the
//! head of its queue (or, at shutdown, stays open in the WAL for the next start).

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::time::{Duration, Instant};

use hie_net::{ClientConfig, MllpClient, NoReplyReason, ReplyOutcome, StayConnected};

use crate::config::{self, Timeout};
use crate::engine::control::ItemState;
use crate::engine::metrics::Stage;
use crate::engine::runtime::{Phase, Shard};
use crate::envelope::{AppReply, Envelope, ItemId, OriginRecord};
use crate::items::downstream_log::{Change, DownstreamLog};
use crate::items::error_spell::{self, ErrorSpell};
use crate::items::kinds::hl7_tcp_operation::TcpOperationPlan;
use crate::items::mllp_reply::OutcomeFacts as _;
use crate::items::{WorkerExit, alert, next_entry, requeue};
use crate::queue::LocalQueue;
use crate::reply_code_actions::{Action, GiveUp};

/// The client settings of an operation connecting to `address`, from its IRIS settings.
pub fn client_config(plan: &TcpOperationPlan, address: SocketAddr) -> ClientConfig {
    let s = &plan.settings;
    let mut config = ClientConfig::new(address);
    config.connect_timeout = Duration::from_secs(u64::from(s.connect_timeout_s.max(1)));
    config.reconnect_retry = s.reconnect_retry;
    config.stay_connected = match s.stay_connected {
        config::StayConnected::Forever => StayConnected::Forever,
        config::StayConnected::AfterEachMessage => StayConnected::AfterEachMessage,
        config::StayConnected::IdleSeconds(n) => {
            StayConnected::Idle(Duration::from_secs(u64::from(n)))
        }
    };
    config.response_timeout = match s.response_timeout {
        Timeout::Forever => None,
        Timeout::Seconds(n) => Some(Duration::from_secs(u64::from(n))),
    };
    config.get_reply = s.get_reply;
    config
}

/// The address to connect to: `IPAddress` itself when it is one, else its first address
/// from the resolver (looked up on the blocking pool).
async fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let name = host.to_owned();
    glommio::executor()
        .spawn_blocking(move || {
            (name.as_str(), port)
                .to_socket_addrs()
                .map_err(|e| e.to_string())
                .and_then(|mut a| a.next().ok_or_else(|| "no address".to_owned()))
        })
        .await
        .map_err(|why| format!("cannot resolve IPAddress {host}: {why}"))
}

/// Makes `client` connect to where `IPAddress` resolves now, when it is about to open a
/// connection (none open). `Err` says why the name did not resolve.
async fn aim(client: &mut MllpClient, plan: &TcpOperationPlan) -> Result<(), String> {
    client.close_if_idle().await;
    if client.is_connected() {
        return Ok(());
    }
    let address = resolve(plan.settings.ip_address.trim(), plan.settings.port).await?;
    if client.config().address != address {
        *client = MllpClient::new(client_config(plan, address));
    }
    Ok(())
}

/// What happened, in words, for records and logs.
fn describe(outcome: &ReplyOutcome) -> String {
    match outcome {
        ReplyOutcome::Sent => "sent (no reply expected)".into(),
        ReplyOutcome::Replied(_) => {
            let facts = outcome.facts(b"ACK");
            let code = facts.msa_1.map_or_else(
                || "no MSA".to_string(),
                |c| String::from_utf8_lossy(c).into_owned(),
            );
            let texts: Vec<String> = facts
                .error_texts
                .iter()
                .map(|t| String::from_utf8_lossy(t).into_owned())
                .collect();
            if texts.is_empty() {
                format!("reply {code}")
            } else {
                format!("reply {code}: {}", texts.join("; "))
            }
        }
        ReplyOutcome::Mismatched(_) => "reply for another control id (MSA-2 mismatch)".into(),
        ReplyOutcome::Unparseable(_) => "reply is not an HL7 message".into(),
        ReplyOutcome::NoReply(reason, text) => format!("no reply ({}): {text}", reason.code()),
    }
}

/// The operation's connection to its downstream system, that connection's log and its
/// error condition (`AlertRetryGracePeriod`).
struct Link<'a> {
    client: &'a mut MllpClient,
    log: &'a mut DownstreamLog,
    spell: &'a mut ErrorSpell,
}

/// How one message ended at this operation.
enum Done {
    Recorded,
    /// Back at the head of the queue (pause, disable, shutdown).
    Requeued,
}

/// Runs one operation instance until its queue is closed at shutdown. It does not fail
/// as an instance: a downstream system that is down is handled message by message
/// (`ReconnectRetry`, `ReplyCodeActions`).
pub async fn run(
    shard: Rc<Shard>,
    item: ItemId,
    queue: Rc<LocalQueue<Envelope>>,
    plan: TcpOperationPlan,
) -> WorkerExit {
    // Aimed at the real address before each new connection (see `aim`).
    let unspecified = SocketAddr::new(IpAddr::from([0, 0, 0, 0]), plan.settings.port);
    let mut client = MllpClient::new(client_config(&plan, unspecified));
    let per_message = plan.settings.stay_connected == config::StayConnected::AfterEachMessage;
    let downstream = format!("{}:{}", plan.settings.ip_address.trim(), plan.settings.port);
    let mut log = DownstreamLog::new(&shard.plan().item(item).name, downstream, per_message);
    let mut spell = ErrorSpell::new(plan.settings.alert_retry_grace_s);
    loop {
        if shard.states().get(item) != ItemState::Running {
            client.close().await;
        }
        let Some(env) = next_entry(&shard, item, &queue).await else {
            client.close().await;
            return WorkerExit::Stopped;
        };
        shard.work_started(1);
        let processed = &shard.counters(item).processed;
        processed.set(processed.get() + 1);
        let link = Link {
            client: &mut client,
            log: &mut log,
            spell: &mut spell,
        };
        let done = deliver_one(&shard, item, &queue, &plan, link, env).await;
        shard.work_ended(1);
        if let Done::Requeued = done {
            // Wait for the state change that made us stop before looking again.
            if shard.phase() >= Phase::Stop {
                client.close().await;
                return WorkerExit::Stopped;
            }
        }
    }
}

async fn deliver_one(
    shard: &Shard,
    item: ItemId,
    queue: &LocalQueue<Envelope>,
    plan: &TcpOperationPlan,
    link: Link<'_>,
    mut env: Envelope,
) -> Done {
    let Link { client, log, spell } = link;
    let first_attempt = Instant::now();
    shard.hook_before(item, &env);
    loop {
        env.attempts += 1;
        // `aim` may replace the client (a new address): its counters are read after it.
        let (outcome, change) = match aim(client, plan).await {
            Err(why) => {
                let failed = Change {
                    connects: 0,
                    connect_failures: 1,
                    lost: false,
                };
                (
                    ReplyOutcome::NoReply(NoReplyReason::ConnectFailed, why),
                    failed,
                )
            }
            Ok(()) => {
                let before = client.stats();
                // MSH-10, which the reply must answer, read on the envelope's scan.
                let sent_at = Instant::now();
                let sent = match env.message() {
                    Some(msg) => {
                        let control_id = msg.control_id().unwrap_or_default();
                        client.send_answering(&env.bytes, control_id).await
                    }
                    None => client.send(&env.bytes).await,
                };
                let outcome = match sent {
                    Ok(outcome) => outcome,
                    Err(e) => ReplyOutcome::NoReply(NoReplyReason::Io, e.to_string()),
                };
                if matches!(outcome, ReplyOutcome::Replied(_) | ReplyOutcome::Sent) {
                    shard
                        .metrics()
                        .record_since(item, Stage::RoundTrip, sent_at);
                }
                if let ReplyOutcome::Replied(reply) = &outcome {
                    let code = hie_hl7::Message::scan(reply)
                        .ok()
                        .and_then(|m| m.ack_code());
                    shard
                        .counters(item)
                        .count_ack(code.map(hie_hl7::AckCode::as_str));
                }
                let change = Change::between(before, client.stats(), &outcome);
                (outcome, change)
            }
        };
        log.note(change, || describe(&outcome), Instant::now());
        let decision = outcome.decide(&plan.reply_code_actions, b"ACK");
        let action = match decision.action {
            Action::Retry { then } => {
                let expired = plan
                    .failure_timeout
                    .is_some_and(|limit| first_attempt.elapsed() >= limit);
                if !expired {
                    shard.hook_error(item, &env, &describe(&outcome));
                    if shard.plan().item(item).alert_on_error
                        && let Some(lasted) = spell.failed(Instant::now())
                    {
                        let what = format!("message {}: retrying: {}", env.id, describe(&outcome));
                        error_spell::raise(shard, item, lasted, &what);
                    }
                    let retries = &shard.counters(item).retries;
                    retries.set(retries.get() + 1);
                    tracing::debug!(id = %env.id, attempt = env.attempts, "retry: {}", describe(&outcome));
                    if !wait_retry(shard, item, plan.retry_interval).await {
                        requeue(shard, queue, env);
                        return Done::Requeued;
                    }
                    continue;
                }
                match then {
                    GiveUp::Fail => Action::Fail,
                    GiveUp::Suspend => Action::Suspend,
                    GiveUp::Disable => Action::Disable,
                }
            }
            other => other,
        };
        let what = describe(&outcome);
        // AckMode=App: the downstream's own reply goes upstream, whatever it says (a
        // disabled item keeps the message, so its reply is still to come).
        if let (ReplyOutcome::Replied(ack), false) = (&outcome, action == Action::Disable) {
            shard.send_reply(&env, AppReply::Ack(ack.clone()));
        }
        return match action {
            Action::Complete => {
                if spell.cleared() {
                    error_spell::cleared(shard, item);
                }
                shard.record(&env, OriginRecord::Completed);
                Done::Recorded
            }
            Action::Suspend => {
                alert(shard, item, &env, &format!("suspended: {what}"));
                shard.record(&env, OriginRecord::Suspended { reason: what });
                Done::Recorded
            }
            Action::Fail => {
                alert(shard, item, &env, &format!("failed: {what}"));
                shard.record(&env, OriginRecord::Failed { reason: what });
                Done::Recorded
            }
            Action::Disable => {
                alert(shard, item, &env, &format!("item disabled: {what}"));
                requeue(shard, queue, env);
                shard.set_state(item, ItemState::Disabled);
                Done::Requeued
            }
            Action::Retry { .. } => unreachable!("retry was resolved above"),
        };
    }
}

/// Sleeps `interval`; false when interrupted because the item or the run is stopping.
async fn wait_retry(shard: &Shard, item: ItemId, interval: Duration) -> bool {
    let sleep = async {
        glommio::timer::sleep(interval).await;
        true
    };
    let interrupted = async {
        futures_lite::future::or(shard.states().changed(item), async {
            shard.until_phase(Phase::Stop).await;
        })
        .await;
        false
    };
    futures_lite::future::or(sleep, interrupted).await
        && shard.states().get(item) == ItemState::Running
        && shard.phase() < Phase::Stop
}
