//! What the engine asks of its shards and tells them, through [`super::shard_call`]:
//! status, item commands, held-list requests and metrics. Each request goes to every
//! shard concerned at once and the answers are waited for until one deadline, then
//! merged.
//!
//! Limits: status waits at most [`STATUS_TIMEOUT`] (a shard that has not answered by
//! then is left out, as is a busy one); an item command [`ITEM_COMMAND_TIMEOUT`]; a
//! held-list request [`super::HELD_REQUEST_TIMEOUT`] (a `show` or `resend` reads the
//! WAL); metrics [`METRICS_TIMEOUT`] (a shard that has not answered is left out and
//! the answer lists the shards that are in), the WAL counters too.
//!
//! The scrape ([`scrape`]) asks each shard once for everything `/metrics` shows (status,
//! latency buckets, engine counters, activity): one round, not one per kind, since under
//! load each round waits for the busiest shard to run its task.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::engine::EngineStatus;
use crate::engine::HELD_REQUEST_TIMEOUT;
use crate::engine::control::{self, ItemCommand};
use crate::engine::hold::HoldLists;
use crate::engine::metrics::{EngineMetrics, LatencyBuckets, Stage};
use crate::engine::operator::{self, HeldReply, HeldRequest};
use crate::engine::runtime::{Shard, ShardStatus};
use crate::engine::shard_call::{CallError, ShardCaller, wait_all};
use crate::envelope::{Envelope, ItemId};
use hie_persist::wal::WalStats;

/// How long status waits for the shards.
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(1);
/// How long an item command waits for every shard to apply it.
pub const ITEM_COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a metrics request waits for the shards.
pub const METRICS_TIMEOUT: Duration = Duration::from_secs(5);

/// The dispatcher's hold lists: envelopes from the rings waiting for room in their
/// target instance's queue (see [`super::hold`]).
pub type Holds = Rc<RefCell<HoldLists<(ItemId, usize), Envelope>>>;

/// What a task sent to a shard gets: the shard, and what its dispatcher holds.
#[derive(Debug)]
pub struct ShardContext {
    pub shard: Rc<Shard>,
    pub(crate) holds: Holds,
}

/// Calls into the shards of a running production.
pub type Caller = ShardCaller<ShardContext>;

/// Every shard's status, asked of all at once; a shard that does not answer within
/// [`STATUS_TIMEOUT`] is left out.
pub fn status(caller: &Caller, production: &str) -> EngineStatus {
    let calls = caller.call_all(|_| {
        |on: &ShardContext| {
            let (shard, holds) = (Rc::clone(&on.shard), Rc::clone(&on.holds));
            async move { status_with_held(&shard, &holds.borrow()) }
        }
    });
    let shards = wait_all(calls, Instant::now() + STATUS_TIMEOUT)
        .into_iter()
        .filter_map(Result::ok)
        .collect();
    EngineStatus {
        production: production.to_string(),
        shards,
    }
}

/// The shard's status, with the envelopes held for an item counted in its `queued`: they
/// wait for it as its queue's entries do.
fn status_with_held(shard: &Shard, held: &HoldLists<(ItemId, usize), Envelope>) -> ShardStatus {
    let mut status = shard.status();
    for entry in &mut status.items {
        if let Some(item) = shard.plan().item_named(&entry.item) {
            entry.queued += held.count(|&(id, _)| id == item.id);
        }
    }
    status
}

/// Applies `command` to `item` on every shard and waits until each has (a shard that has
/// stopped has no instance left to command).
pub fn command(caller: &Caller, item: ItemId, command: ItemCommand) -> Result<(), CallError> {
    let calls = caller.call_all(|_| {
        move |on: &ShardContext| {
            let shard = Rc::clone(&on.shard);
            async move { control::apply(&shard, item, command) }
        }
    });
    for answer in wait_all(calls, Instant::now() + ITEM_COMMAND_TIMEOUT) {
        match answer {
            Ok(()) | Err(CallError::Stopped { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Serves `request` on the held list of `shard` and waits for the answer.
pub fn held_request(caller: &Caller, shard: usize, request: HeldRequest) -> HeldReply {
    caller
        .call(shard, move |on: &ShardContext| {
            operator::serve(Rc::clone(&on.shard), request)
        })
        .and_then(|call| call.wait_for(HELD_REQUEST_TIMEOUT))
        .map_err(|e| e.to_string())?
}

/// Every held message listed on any shard, asked of all at once.
pub fn held_list(caller: &Caller) -> HeldReply {
    let calls = caller
        .call_all(|_| |on: &ShardContext| operator::serve(Rc::clone(&on.shard), HeldRequest::List));
    let mut all = Vec::new();
    for answer in wait_all(calls, Instant::now() + HELD_REQUEST_TIMEOUT) {
        match answer.map_err(|e| e.to_string())?? {
            serde_json::Value::Array(entries) => all.extend(entries),
            other => all.push(other),
        }
    }
    Ok(serde_json::Value::Array(all))
}

/// Every item's counters and histograms, merged over the shards that answer within
/// [`METRICS_TIMEOUT`].
pub fn metrics(caller: &Caller, production: &str) -> EngineMetrics {
    let calls = caller.call_all(|_| {
        |on: &ShardContext| {
            let shard = Rc::clone(&on.shard);
            async move { (shard.index(), shard.metrics().snapshot(shard.plan())) }
        }
    });
    let mut merged = EngineMetrics::new(production);
    for (shard, snapshot) in wait_all(calls, Instant::now() + METRICS_TIMEOUT)
        .into_iter()
        .flatten()
    {
        merged.merge(shard, snapshot);
    }
    merged
}

/// One shard's WAL counters since it opened, its segments now, its executor's time
/// running tasks and tasks run since it started, and what waits in its inbound rings.
#[derive(Debug, Clone)]
pub struct ShardEngineStats {
    pub shard: usize,
    pub wal: WalStats,
    pub segments: usize,
    pub busy: Duration,
    pub tasks: u64,
    /// Reactor stalls and their lateness summed (`ShardMetrics::stalls`).
    pub stalls: u64,
    pub stalled: Duration,
    /// Values waiting in the rings from the other shards to this one.
    pub ring_inbound_queued: usize,
    /// Of those, `(sending shard, values)` for each ring towards this shard.
    pub ring_inbound_by_peer: Vec<(usize, usize)>,
}

/// Every shard's engine counters, of the shards that answer within [`METRICS_TIMEOUT`].
pub fn engine_stats(caller: &Caller) -> Vec<ShardEngineStats> {
    let calls = caller.call_all(|_| {
        |on: &ShardContext| {
            let shard = Rc::clone(&on.shard);
            async move { shard_engine_stats(&shard) }
        }
    });
    wait_all(calls, Instant::now() + METRICS_TIMEOUT)
        .into_iter()
        .flatten()
        .collect()
}

fn shard_engine_stats(shard: &Shard) -> ShardEngineStats {
    let (busy, tasks) = shard.metrics().executor_totals();
    let (stalls, stalled) = shard.metrics().stalls();
    ShardEngineStats {
        shard: shard.index(),
        wal: shard.wal().stats(),
        segments: shard.wal().segments().len(),
        busy,
        tasks,
        stalls,
        stalled,
        ring_inbound_queued: shard.rings().inbound_queued(),
        ring_inbound_by_peer: shard.rings().inbound_queued_by_peer(),
    }
}

/// Everything `/metrics` shows of the shards, from one round of calls.
#[derive(Debug, Clone)]
pub struct EngineScrape {
    /// The shards that answered, as [`status`] has them.
    pub status: EngineStatus,
    /// By item id: each stage's latency buckets, added over the shards.
    pub latency: Vec<Vec<(Stage, LatencyBuckets)>>,
    /// As [`engine_stats`] has them.
    pub stats: Vec<ShardEngineStats>,
    /// As [`activity`] has them.
    pub activity: Vec<ItemActivity>,
}

/// One shard's part of an [`EngineScrape`].
struct ShardScrape {
    status: ShardStatus,
    latency: Vec<Vec<(Stage, LatencyBuckets)>>,
    stats: ShardEngineStats,
    activity: Vec<ItemActivity>,
}

/// Asks every shard at once, one task each, for its part of `/metrics`; a shard that
/// does not answer within [`STATUS_TIMEOUT`] is left out (its `hie_shard_up` is absent).
/// No histogram is copied: each shard reads its own into [`LatencyBuckets`].
pub fn scrape(caller: &Caller, production: &str) -> EngineScrape {
    let calls = caller.call_all(|_| {
        |on: &ShardContext| {
            let (shard, holds) = (Rc::clone(&on.shard), Rc::clone(&on.holds));
            async move {
                ShardScrape {
                    status: status_with_held(&shard, &holds.borrow()),
                    latency: shard.metrics().latency_buckets(),
                    stats: shard_engine_stats(&shard),
                    activity: shard_activity(&shard),
                }
            }
        }
    });
    let mut merged = EngineScrape {
        status: EngineStatus {
            production: production.to_string(),
            shards: Vec::new(),
        },
        latency: Vec::new(),
        stats: Vec::new(),
        activity: Vec::new(),
    };
    for part in wait_all(calls, Instant::now() + STATUS_TIMEOUT)
        .into_iter()
        .flatten()
    {
        merged.status.shards.push(part.status);
        merged.stats.push(part.stats);
        merge_activity(&mut merged.activity, part.activity);
        merge_latency(&mut merged.latency, part.latency);
    }
    merged
}

/// Adds one shard's latency buckets (by item id, then stage) into `into`.
fn merge_latency(
    into: &mut Vec<Vec<(Stage, LatencyBuckets)>>,
    from: Vec<Vec<(Stage, LatencyBuckets)>>,
) {
    into.resize(into.len().max(from.len()), Vec::new());
    for (into, from) in into.iter_mut().zip(from) {
        for (stage, buckets) in from {
            match into.iter_mut().find(|(s, _)| *s == stage) {
                Some((_, sum)) => sum.add(&buckets),
                None => into.push((stage, buckets)),
            }
        }
        into.sort_by_key(|(s, _)| *s);
    }
}

/// What each item has done lately, merged over the shards.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ItemActivity {
    /// When it last handled a message (the latest over the shards).
    pub last_message_at: Option<Instant>,
    /// When the oldest entry in its queues entered its queue (the earliest).
    pub oldest_queued: Option<Instant>,
}

/// Each item's (by id) [`ItemActivity`], over the shards that answer within
/// [`METRICS_TIMEOUT`] (no histogram is copied: cheap enough to ask every second).
pub fn activity(caller: &Caller) -> Vec<ItemActivity> {
    let calls = caller.call_all(|_| {
        |on: &ShardContext| {
            let shard = Rc::clone(&on.shard);
            async move { shard_activity(&shard) }
        }
    });
    let mut merged: Vec<ItemActivity> = Vec::new();
    for answer in wait_all(calls, Instant::now() + METRICS_TIMEOUT)
        .into_iter()
        .flatten()
    {
        merge_activity(&mut merged, answer);
    }
    merged
}

/// Adds one shard's activity (by item id) into `merged`.
fn merge_activity(merged: &mut Vec<ItemActivity>, answer: Vec<ItemActivity>) {
    merged.resize(merged.len().max(answer.len()), ItemActivity::default());
    for (into, from) in merged.iter_mut().zip(answer) {
        into.last_message_at = into.last_message_at.max(from.last_message_at);
        into.oldest_queued = match (into.oldest_queued, from.oldest_queued) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}

fn shard_activity(shard: &Shard) -> Vec<ItemActivity> {
    (0..)
        .zip(shard.metrics().last_messages())
        .map(|(item, last_message_at)| ItemActivity {
            last_message_at,
            oldest_queued: shard.slot(item).oldest_queued(),
        })
        .collect()
}
