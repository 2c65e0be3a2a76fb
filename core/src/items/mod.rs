//! The built-in items, one file per IRIS class (or family of classes), and what they
//! share. Each item runs as local tasks on the shards it is placed on and talks to the
//! rest of the engine only through its [`Shard`](crate::engine::runtime::Shard).

pub mod filename;
pub mod hl7_file_operation;
pub mod hl7_file_service;
pub mod hl7_tcp_operation;
pub mod hl7_tcp_service;
pub mod routing_engine;

use crate::engine::runtime::Shard;
use crate::envelope::{Envelope, ItemId};

/// Logs a problem with one message at one item: an `ALERT` line (target `hie::alert`)
/// when the item has `AlertOnError`, a warning otherwise.
pub fn alert(shard: &Shard, item: ItemId, env: &Envelope, what: &str) {
    let planned = shard.plan.item(item);
    if planned.alert_on_error {
        tracing::error!(target: "hie::alert", "ALERT {}: message {}: {what}", planned.name, env.id);
    } else {
        tracing::warn!(item = %planned.name, message = %env.id, "{what}");
    }
}
