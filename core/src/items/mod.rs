//! The built-in items, one file per IRIS class (or family of classes), and what they
//! share. Each item runs as local tasks on the shards it is placed on and talks to the
//! rest of the engine only through its [`Shard`](crate::engine::runtime::Shard).

pub mod downstream_log;
pub mod error_spell;
pub mod filename;
pub mod hl7_file_operation;
pub mod hl7_file_service;
pub mod hl7_tcp_operation;
pub mod hl7_tcp_server;
pub mod hl7_tcp_service;
pub mod kind;
pub mod kinds;
pub mod mllp_reply;
pub mod routing_engine;

use crate::engine::control::ItemState;
use crate::engine::runtime::{Shard, bump};
use crate::envelope::{Envelope, ItemId};
use crate::queue::LocalQueue;

/// How a router or operation instance ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerExit {
    /// Its queue closed, or the run reached `Stop`: nothing to restart.
    Stopped,
    /// It cannot go on (a file operation whose `FilePath` cannot be made, a router whose
    /// WAL append failed): its restart policy decides what happens next. The messages it
    /// held are back at the head of its queue.
    Failed {
        reason: String,
        /// It did work (routed or wrote a message) since it started, so the failures
        /// before this one were not in a row.
        worked: bool,
    },
}

/// The next message for a router or operation instance to work on, taken only while its
/// item is running: a paused or disabled item leaves its queue alone (an entry popped
/// just as the state changed goes back to the head, keeping FIFO order) until it runs
/// again. `None` when the worker is to stop: its queue is closed and empty, or the run
/// reached `Stop` while the item was not running (what it holds stays open in the WAL).
pub async fn next_entry(
    shard: &Shard,
    item: ItemId,
    queue: &LocalQueue<Envelope>,
) -> Option<Envelope> {
    loop {
        if shard.states().get(item) != ItemState::Running
            && !shard.until_running_or_stop(item).await
        {
            return None;
        }
        let env = queue.pop().await?;
        if shard.states().get(item) == ItemState::Running {
            return Some(env);
        }
        requeue(shard, queue, env);
    }
}

/// Puts `env`, which an item took from `queue` and did not finish, back at the head of
/// the lane it came from (a high-priority message stays ahead of the normal ones).
pub fn requeue(shard: &Shard, queue: &LocalQueue<Envelope>, env: Envelope) {
    let lane = shard.lane_of(&env);
    queue.push_front(env, lane);
}

/// Logs a problem with one message at one item: an `ALERT` line (target `hie::alert`,
/// field `alert = "AlertOnError"`, counted in the item's `alerts`) when the item has
/// `AlertOnError`, a warning otherwise.
pub fn alert(shard: &Shard, item: ItemId, env: &Envelope, what: &str) {
    shard.hook_error(item, env, what);
    shard.metrics().note_error(item, what);
    let planned = shard.plan().item(item);
    if planned.alert_on_error {
        bump(&shard.counters(item).alerts);
        tracing::error!(
            target: "hie::alert",
            alert = "AlertOnError",
            item = %planned.name,
            "ALERT {}: message {}: {what}",
            planned.name,
            env.id
        );
    } else {
        tracing::warn!(item = %planned.name, id = %env.id, "{what}");
    }
}
