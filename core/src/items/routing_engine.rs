//! `EnsLib.HL7.MsgRouter.RoutingEngine` (and `EnsLib.MsgRouter.RoutingEngine`): takes
//! messages from its queue on this shard and sends each on to its targets.
//!
//! A router asks its rules, one message at a time, where each message goes
//! (`crate::engine::rules`): its `BusinessRuleName` class, or, without one, every message
//! to its `TargetConfigNames`; a message nothing takes is discarded as "no route", which
//! the WAL records and the status shows.
//!
//! A router works in batches: it takes what its queue holds (up to [`ROUTE_BATCH_MAX`]),
//! queues the routing records of the whole batch for the WAL's next group commit, and
//! delivers without waiting for that commit (`Shard::route_batch` says why no message
//! can be lost). Routers run on every shard, on the shard that received the message
//! (docs/adr/0001), so their records are local appends.
//!
//! A message a service waits for (`AckMode=App`) is registered, before it leaves, with
//! the router's `ResponseFrom` and the targets it goes to (`crate::engine::responses`
//! says which replies answer the service).
//!
//! A `send transform=` makes a new message (`crate::engine::made`), sent on here after
//! the batch's records; a message whose transform failed is recorded `Failed` at the
//! router with the transform's error, held for an operator.
//!
//! A message the router's `Validation` refuses (`crate::engine::validation`) goes to
//! its `BadMessageHandler`, or is recorded `Failed` at the router with the reason.
//!
//! A message that has passed through [`ROUTER_HOPS_MAX`] routers (a routing cycle) is
//! recorded `Failed` at the router that has it, logged and counted, instead of going
//! round for ever.
//!
//! A router whose WAL is unavailable (a write or sync failed: a full disk) keeps its batch
//! and waits until the WAL is writable again (`Shard::until_wal_writable`; the status
//! shows it `waiting_for_wal`), then routes the same batch, in order: it neither fails
//! nor restarts meanwhile. If the run reaches `Stop` first, the batch goes back to the
//! head of its queue and stays open in the WAL for the next start. Any other append error
//! (the WAL closed, a record too large) puts the batch back and ends with
//! [`WorkerExit::Failed`]: its restart policy decides whether it starts again.

use std::rc::Rc;

use crate::engine::made::Made;
use crate::engine::metrics::Stage;
use crate::engine::responses::Responses;
use crate::engine::rules::Routed;
use crate::engine::runtime::{HOP_LIMIT_REASON, Shard, hop_limit_reached};
#[cfg(doc)]
use crate::envelope::ROUTER_HOPS_MAX;
use crate::envelope::{Envelope, ItemId, OriginRecord};
use crate::items::{WorkerExit, alert, next_entry, requeue};
use crate::queue::LocalQueue;

/// Most messages routed per WAL append.
pub const ROUTE_BATCH_MAX: usize = 256;

/// Runs one router instance until its queue is closed at shutdown, the run stops while
/// it waits for the WAL, or a WAL append fails other than for the storage.
pub async fn run(shard: Rc<Shard>, item: ItemId, queue: Rc<LocalQueue<Envelope>>) -> WorkerExit {
    let mut batch: Vec<Envelope> = Vec::with_capacity(ROUTE_BATCH_MAX);
    let mut routed = Routed::default();
    let mut worked = false;
    let responses = Responses::of(shard.plan(), item);
    let mut sent_to: Vec<ItemId> = Vec::new();
    loop {
        let Some(first) = next_entry(&shard, item, &queue).await else {
            return WorkerExit::Stopped;
        };
        batch.push(first);
        while batch.len() < ROUTE_BATCH_MAX {
            match queue.try_pop() {
                Some(env) => batch.push(env),
                None => break,
            }
        }
        shard.work_started(batch.len());
        let processed = &shard.counters(item).processed;
        processed.set(processed.get() + batch.len() as u64);
        for env in &batch {
            shard.hook_before(item, env);
        }
        match route_when_writable(&shard, item, &batch, &mut routed).await {
            Ok(Some(())) => {
                for (i, env) in batch.drain(..).enumerate() {
                    if hop_limit_reached(&env) {
                        fail_at_router(&shard, item, env, HOP_LIMIT_REASON);
                        continue;
                    }
                    if let Some(reason) = routed.validator.held_of(i) {
                        fail_at_router(&shard, item, env, reason);
                        continue;
                    }
                    let failure = routed.made.failure_of(i);
                    if env.wants_reply && failure.is_none() {
                        gather(&shard, item, &responses, &env, i, &routed, &mut sent_to);
                    }
                    pass_on_made(&shard, item, &env, i, &routed.made).await;
                    match failure {
                        Some(reason) => {
                            fail_transform(&shard, item, env, routed.of(i), reason).await;
                        }
                        None => pass_on(&shard, item, env, routed.of(i)).await,
                    }
                }
                worked = true;
            }
            Ok(None) => {
                // Stopping while the WAL is unavailable: the batch is open in the WAL
                // (Enqueued for this router) and is routed again at the next start.
                shard.work_ended(batch.len());
                for env in batch.drain(..).rev() {
                    requeue(&shard, &queue, env);
                }
                return WorkerExit::Stopped;
            }
            Err(e) => {
                // The messages stay open in the WAL (Enqueued for this router, not
                // completed) and wait at the head of the queue for a restart (or for the
                // next start, which routes them again from the WAL).
                let reason = format!("cannot record routing of {} messages: {e}", batch.len());
                shard.work_ended(batch.len());
                for env in batch.drain(..).rev() {
                    requeue(&shard, &queue, env);
                }
                return WorkerExit::Failed { reason, worked };
            }
        }
    }
}

/// Tells the service waiting for `env` (message `i` of the batch) which replies answer
/// it: router `item`'s `ResponseFrom` over every target the message and the messages
/// made from it go to (`sent_to` is a buffer the router reuses).
fn gather(
    shard: &Shard,
    item: ItemId,
    responses: &Responses,
    env: &Envelope,
    i: usize,
    routed: &Routed,
    sent_to: &mut Vec<ItemId>,
) {
    sent_to.clear();
    sent_to.extend_from_slice(routed.of(i));
    let made = &routed.made;
    for m in made.messages.iter().filter(|m| m.of == i) {
        sent_to.extend_from_slice(made.targets_of(m));
    }
    shard.app_replies().gather(item, responses, env, sent_to);
}

/// Passes `env`, routed by router `item`, on to `targets`.
async fn pass_on(shard: &Shard, item: ItemId, env: Envelope, targets: &[ItemId]) {
    shard.hook_after(item, &env, &OriginRecord::Completed);
    shard
        .metrics()
        .record_since(item, Stage::Routed, env.received_at);
    if env.ordered {
        shard.routed_ordered(env.id, targets.len());
    }
    let next = Envelope {
        source: item,
        attempts: 0,
        router_hops: env.router_hops + 1,
        ..env
    };
    shard.fan_out(next, targets).await;
    shard.work_ended(1);
}

/// Sends the messages router `item` made from `parent` (message `i` of its batch) to
/// their targets.
async fn pass_on_made(shard: &Shard, item: ItemId, parent: &Envelope, i: usize, made: &Made) {
    for m in made.messages.iter().filter(|m| m.of == i) {
        let env = made.envelope(m, item, parent);
        if env.wants_reply {
            shard.app_replies().follow(env.id, parent.id);
        }
        shard.fan_out(env, made.targets_of(m)).await;
    }
}

/// Records `env`, one of whose transforms failed, as failed at router `item` with the
/// transform's error: held for an operator (`hie ctl resend` routes it again, rules and
/// transforms), logged with an alert (`AlertOnError`), answered (an `AckMode=App`
/// service gets the error). Its untransformed sends (`targets`; none with
/// `ActOnTransformError`) go on.
async fn fail_transform(
    shard: &Shard,
    item: ItemId,
    env: Envelope,
    targets: &[ItemId],
    reason: &str,
) {
    alert(shard, item, &env, reason);
    if env.ordered {
        shard.routed_ordered(env.id, targets.len());
    }
    if !targets.is_empty() {
        let next = Envelope {
            source: item,
            attempts: 0,
            router_hops: env.router_hops + 1,
            ordered: env.ordered,
            wants_reply: false,
            ..env.clone()
        };
        shard.fan_out(next, targets).await;
    }
    shard.record(
        &env,
        OriginRecord::Failed {
            reason: reason.to_owned(),
        },
    );
    shard.work_ended(1);
}

/// [`Shard::route_batch`], waiting while the WAL is unavailable and trying the same batch
/// again once it is writable; `Ok(None)` when the run reached `Stop` first.
async fn route_when_writable(
    shard: &Shard,
    item: ItemId,
    batch: &[Envelope],
    routed: &mut Routed,
) -> Result<Option<()>, hie_persist::WalError> {
    loop {
        match shard.route_batch(item, batch, routed) {
            Ok(()) => return Ok(Some(())),
            Err(e) if e.is_storage() => {
                if !shard.until_wal_writable(Some(item)).await {
                    return Ok(None);
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Records `env` as failed at router `item` with `reason` (the hop limit, or a
/// validation refusal): logged (an alert with `AlertOnError`), counted, answered (an
/// `AckMode=App` service gets AE with the reason) and kept in the WAL on the failed list.
pub(crate) fn fail_at_router(shard: &Shard, item: ItemId, env: Envelope, reason: &str) {
    alert(shard, item, &env, reason);
    if env.ordered {
        shard.routed_ordered(env.id, 0);
    }
    shard.record(
        &env,
        OriginRecord::Failed {
            reason: reason.to_owned(),
        },
    );
    shard.work_ended(1);
}
