//! What an operator does with held messages (see [`super::held`]), on the message's
//! origin shard: list them, show one (its bytes and what routers' rules decided for it,
//! read back from the WAL), resend one to
//! the item where it is held, discard one.
//!
//! Invariants:
//! - Resend appends a durable `Enqueued` for the item before the message is delivered
//!   again; discard appends a durable `Discarded`. Only then does the entry leave the
//!   list; if the append fails the entry goes back and the operator gets the error.
//! - An entry being resent or discarded is off the list while its record is written, so
//!   a second command for it finds nothing to do instead of sending it twice.

use std::rc::Rc;

use hie_persist::Record;
use serde::Serialize;
use serde_json::json;

use crate::engine::held::{HeldEntry, HeldKind, utc_text};
use crate::engine::ingest::{envelope, scan_of};
use crate::engine::ruled;
use crate::engine::runtime::{Shard, text_of};
use crate::envelope::{ItemId, MessageId};

/// What an operator asks of a shard's held list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeldRequest {
    /// Every listed entry of the shard.
    List,
    /// The message's bytes and where it is held.
    Show { wal_id: u64 },
    /// Deliver it again to `item` (or to the one item where it is held).
    Resend { wal_id: u64, item: Option<ItemId> },
    /// Take it off the list for good.
    Discard { wal_id: u64, item: Option<ItemId> },
}

/// The answer: JSON for the control socket, or an error in words.
pub type HeldReply = Result<serde_json::Value, String>;

/// One listed message, as `hie ctl held` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct HeldMessage {
    pub message_id: String,
    pub item: String,
    pub kind: HeldKind,
    /// When it failed or was suspended (UTC).
    pub at: String,
    pub reason: String,
    pub message_type: String,
    pub control_id: String,
}

/// The reason a discard writes in the WAL.
pub const DISCARD_REASON: &str = "discarded by an operator (hie ctl discard)";

/// Serves `request` on `shard` (a task of its own there: see [`super::shard_call`]).
pub async fn serve(shard: Rc<Shard>, request: HeldRequest) -> HeldReply {
    match request {
        HeldRequest::List => Ok(json!(list(&shard))),
        HeldRequest::Show { wal_id } => show(&shard, wal_id).await,
        HeldRequest::Resend { wal_id, item } => resend(&shard, wal_id, item).await,
        HeldRequest::Discard { wal_id, item } => discard(&shard, wal_id, item).await,
    }
}

fn message_id(shard: &Shard, wal_id: u64) -> MessageId {
    MessageId {
        origin_shard: shard.index() as u16,
        wal_id,
    }
}

fn listed(shard: &Shard, wal_id: u64, item: ItemId, entry: &HeldEntry) -> HeldMessage {
    HeldMessage {
        message_id: message_id(shard, wal_id).to_string(),
        item: shard.plan().item(item).name.clone(),
        kind: entry.kind,
        at: utc_text(entry.at_us),
        reason: entry.reason.clone(),
        message_type: entry.message_type.clone(),
        control_id: entry.control_id.clone(),
    }
}

fn list(shard: &Shard) -> Vec<HeldMessage> {
    shard
        .held_list()
        .iter()
        .map(|(wal_id, item, entry)| listed(shard, wal_id, item, entry))
        .collect()
}

/// The item where message `wal_id` is held: `item` if it is held there, else the only
/// one.
fn held_item(shard: &Shard, wal_id: u64, item: Option<ItemId>) -> Result<ItemId, String> {
    let id = message_id(shard, wal_id);
    let items = shard.held_list().items_of(wal_id);
    match (item, items.as_slice()) {
        (_, []) => Err(format!("message {id} is not on a held list")),
        (Some(item), items) if items.contains(&item) => Ok(item),
        (Some(item), _) => Err(format!(
            "message {id} is not held at item {:?}",
            shard.plan().item(item).name
        )),
        (None, [item]) => Ok(*item),
        (None, items) => Err(format!(
            "message {id} is held at several items ({}); name one with --item",
            names(shard, items)
        )),
    }
}

fn names(shard: &Shard, items: &[ItemId]) -> String {
    items
        .iter()
        .map(|&i| format!("{:?}", shard.plan().item(i).name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The message as received (or as an item made it): its source item, partition key and
/// bytes.
struct Stored {
    source: String,
    /// The message it was made from (a `Created` one's parent).
    parent: Option<u64>,
    partition_key: String,
    bytes: Vec<u8>,
}

async fn read_message(shard: &Shard, wal_id: u64) -> Result<Stored, String> {
    let id = message_id(shard, wal_id);
    let found = shard
        .wal()
        .find_message(wal_id)
        .await
        .map_err(|e| format!("reading message {id} from the WAL: {e}"))?
        .ok_or_else(|| format!("message {id} is no longer in the WAL"))?;
    let parent = match found.record() {
        Some(Record::Created { parent, .. }) => Some(parent),
        _ => None,
    };
    match found.record() {
        Some(
            Record::MessageReceived {
                source,
                meta,
                bytes,
                ..
            }
            | Record::Created {
                source,
                meta,
                bytes,
                ..
            },
        ) => Ok(Stored {
            source: source.to_string(),
            parent,
            partition_key: meta.partition_key.to_string(),
            bytes: bytes.to_vec(),
        }),
        _ => Err(format!("message {id}: its WAL record cannot be decoded")),
    }
}

async fn show(shard: &Shard, wal_id: u64) -> HeldReply {
    let held: Vec<HeldMessage> = {
        let list = shard.held_list();
        list.items_of(wal_id)
            .into_iter()
            .filter_map(|item| Some(listed(shard, wal_id, item, list.get(wal_id, item)?)))
            .collect()
    };
    let stored = read_message(shard, wal_id).await?;
    // A made message went where its parent's rules sent it.
    let mut rules = match stored.parent {
        Some(parent) => rule_outcomes(shard, parent).await?,
        None => Vec::new(),
    };
    rules.extend(rule_outcomes(shard, wal_id).await?);
    Ok(json!({
        "message_id": message_id(shard, wal_id).to_string(),
        "source": stored.source,
        "held": held,
        "rules": rules,
        "message": text_of(&stored.bytes),
    }))
}

/// What routers' rules decided for message `wal_id` (its `Ruled` records), in order.
async fn rule_outcomes(shard: &Shard, wal_id: u64) -> Result<Vec<serde_json::Value>, String> {
    let id = message_id(shard, wal_id);
    let stored = shard
        .wal()
        .find_ruled(wal_id)
        .await
        .map_err(|e| format!("reading message {id}'s rule outcomes from the WAL: {e}"))?;
    Ok(stored
        .iter()
        .filter_map(|r| {
            let record = r.record()?;
            let Record::Ruled {
                router,
                rule_set,
                fired,
                decisions,
                ..
            } = record
            else {
                return None;
            };
            Some(json!({
                "router": router,
                "rule_set": rule_set,
                "fired": fired.iter().collect::<Vec<_>>(),
                "decisions": decisions.iter().collect::<Vec<_>>(),
                "text": ruled::text_of(&record)?,
            }))
        })
        .collect())
}

async fn resend(shard: &Rc<Shard>, wal_id: u64, item: Option<ItemId>) -> HeldReply {
    let (item, entry) = take_held(shard, wal_id, item)?;
    let name = shard.plan().item(item).name.clone();
    let stored = match read_message(shard, wal_id).await {
        Ok(stored) => stored,
        Err(e) => {
            shard.hold(wal_id, item, entry);
            return Err(e);
        }
    };
    let enqueued = Record::Enqueued {
        message_id: wal_id,
        target: &name,
    };
    if let Err(e) = shard.wal().append(&enqueued).await {
        shard.hold(wal_id, item, entry);
        return Err(format!("recording the resend in the WAL: {e}"));
    }
    let id = message_id(shard, wal_id);
    tracing::info!(%id, item = %name, "resent by an operator");
    let source = shard
        .plan()
        .item_named(&stored.source)
        .map_or(item, |s| s.id);
    let key = if stored.partition_key.is_empty() {
        entry.control_id.as_bytes()
    } else {
        stored.partition_key.as_bytes()
    };
    let origin_name = std::sync::Arc::from(stored.source.as_str());
    let scan = scan_of(&stored.bytes);
    let env = envelope(
        id,
        (stored.bytes.into(), scan),
        source,
        origin_name,
        item,
        key,
    );
    shard.deliver(env).await;
    Ok(json!({"ok": true, "message_id": id.to_string(), "item": name, "command": "resend"}))
}

/// Takes the held entry of `wal_id` (at `item`, or its only one) off the list; the caller
/// puts it back if what it records does not become durable.
fn take_held(
    shard: &Shard,
    wal_id: u64,
    item: Option<ItemId>,
) -> Result<(ItemId, HeldEntry), String> {
    let item = held_item(shard, wal_id, item)?;
    let entry = shard
        .release_held(wal_id, item)
        .ok_or("the message left the list meanwhile")?;
    Ok((item, entry))
}

async fn discard(shard: &Shard, wal_id: u64, item: Option<ItemId>) -> HeldReply {
    let (item, entry) = take_held(shard, wal_id, item)?;
    let name = shard.plan().item(item).name.clone();
    let discarded = Record::Discarded {
        message_id: wal_id,
        target: &name,
        reason: DISCARD_REASON,
    };
    if let Err(e) = shard.wal().append(&discarded).await {
        shard.hold(wal_id, item, entry);
        return Err(format!("recording the discard in the WAL: {e}"));
    }
    let id = message_id(shard, wal_id);
    tracing::info!(%id, item = %name, "discarded by an operator");
    let c = &shard.counters(item).discarded;
    c.set(c.get() + 1);
    Ok(json!({"ok": true, "message_id": id.to_string(), "item": name, "command": "discard"}))
}
