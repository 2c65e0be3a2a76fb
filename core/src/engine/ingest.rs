//! Ingest: a message into the WAL, then out to its targets, for every way a message
//! comes in: the TCP and file services, an operator's resend, and recovery of a message
//! stored but never routed. It owns storing a message (`MessageReceived` and the
//! `Enqueued`/`Discarded` records of its targets, in one durable append: [`Shard::receive`],
//! [`Shard::receive_document`], [`Shard::enqueue_for`], and the routing records the router
//! shares), the envelope a stored message starts as (its scan index made once, here or
//! by the service: [`envelope`]), and the fan-out to the targets ([`copies`],
//! [`Shard::fan_out`]).
//!
//! Invariant: a target's `Enqueued` is durable before its envelope leaves ([`fan_out`]
//! takes only targets a store returned).
//!
//! [`fan_out`]: Shard::fan_out

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use hie_hl7::{Message, ScanIndex};
use hie_persist::{MessageMeta, Record, RecoveredMessage, WalError};

use crate::engine::metrics::Stage;
use crate::engine::plan::{PlannedItem, Target};
use crate::engine::runtime::{
    Shard, bump, log_append_error, message_type_of, partition_key, text_of,
};
use crate::envelope::{Envelope, ItemId, MessageId, partition_hash};

impl Shard {
    /// Stores a message a service accepted: `MessageReceived` and one `Enqueued` per
    /// target (or `Discarded` for a target that names no item), durable on return.
    /// Returns the message id and the items to deliver to.
    pub async fn receive(
        &self,
        source: ItemId,
        msg: &Message<'_>,
    ) -> Result<(MessageId, Vec<ItemId>), WalError> {
        let message_type = message_type_of(msg);
        let control_id = text_of(msg.control_id().unwrap_or_default());
        let partition_key = text_of(partition_key(msg));
        let meta = MessageMeta {
            message_type: &message_type,
            control_id: &control_id,
            partition_key: &partition_key,
        };
        self.receive_document(source, msg.as_bytes(), meta).await
    }

    /// [`Shard::receive`] for a document that is not one message (a batch taken whole,
    /// `BatchHandling=Whole`), with the facts the WAL and the held list show of it.
    pub async fn receive_document(
        &self,
        source: ItemId,
        bytes: &[u8],
        meta: MessageMeta<'_>,
    ) -> Result<(MessageId, Vec<ItemId>), WalError> {
        let started = Instant::now();
        let item = self.plan().item(source);
        let wal_id = self.wal().next_message_id();
        let mut records = Vec::with_capacity(1 + item.targets.len());
        records.push(Record::MessageReceived {
            message_id: wal_id,
            source: &item.name,
            meta,
            bytes,
        });
        let mut targets = Vec::with_capacity(item.targets.len());
        self.routing_records(wal_id, &item.targets, None, &mut records, &mut targets);
        self.wal()
            .append_many(&records)
            .await
            .inspect_err(|e| log_append_error(&item.name, e))?;
        bump(&self.counters(source).received);
        self.metrics().record_since(source, Stage::Durable, started);
        Ok((
            MessageId {
                origin_shard: self.index() as u16,
                wal_id,
            },
            targets,
        ))
    }

    /// Adds `Enqueued`/`Discarded` records for `targets` to `records` and the items the
    /// message goes on to to `to`. A message no target takes is a bad message for a router
    /// (`router`): it goes to the router's `BadMessageHandler` when there is one, as in
    /// IRIS, with an alert when `AlertOnBadMessage` is set; otherwise, and for a service,
    /// it is discarded as "no route".
    pub(crate) fn routing_records<'r>(
        &'r self,
        wal_id: u64,
        targets: &'r [Target],
        router: Option<&'r PlannedItem>,
        records: &mut Vec<Record<'r>>,
        to: &mut Vec<ItemId>,
    ) {
        let before = to.len();
        for target in targets {
            self.route_to(wal_id, target, records, to);
        }
        if to.len() > before {
            return;
        }
        let handler = router.and_then(|r| r.bad_message_handler.as_ref());
        if let Some(router) = router {
            let what = match handler {
                Some(_) => "no target takes it: sent to the BadMessageHandler",
                None => "no target takes it, and there is no BadMessageHandler",
            };
            self.note_bad_message(router, wal_id, what);
        }
        if let Some(handler) = handler {
            self.route_to(wal_id, handler, records, to);
        } else if targets.is_empty() {
            records.push(Record::Discarded {
                message_id: wal_id,
                target: "",
                reason: "no route: the item has no targets",
            });
        }
    }

    /// Counts a message router `router` had no target for and logs `what` (an alert
    /// with `AlertOnBadMessage`).
    pub(crate) fn note_bad_message(&self, router: &PlannedItem, wal_id: u64, what: &str) {
        let counters = self.counters(router.id);
        bump(&counters.no_route);
        if router.alert_on_bad_message {
            bump(&counters.alerts);
            tracing::error!(
                target: "hie::alert",
                alert = "AlertOnBadMessage",
                item = %router.name,
                "ALERT {}: message {wal_id}: {what}",
                router.name
            );
        } else {
            tracing::warn!(item = %router.name, "message {wal_id}: {what}");
        }
    }

    /// Adds the record for one target (`Enqueued`, or `Discarded` for a name that names no
    /// item) and, for an item, pushes it onto `to`.
    fn route_to<'r>(
        &'r self,
        wal_id: u64,
        target: &'r Target,
        records: &mut Vec<Record<'r>>,
        to: &mut Vec<ItemId>,
    ) {
        match target {
            Target::Item(id) => {
                records.push(Record::Enqueued {
                    message_id: wal_id,
                    target: &self.plan().item(*id).name,
                });
                to.push(*id);
            }
            Target::Missing(name) => {
                tracing::error!(target = %name, "message {wal_id} sent to an item that does not exist");
                records.push(Record::Discarded {
                    message_id: wal_id,
                    target: name,
                    reason: "no item of that name in the production",
                });
            }
        }
    }

    /// Records, durably, that message `wal_id` is enqueued for `targets` (recovery of a
    /// message that was stored but never routed); returns the items to deliver to.
    pub async fn enqueue_for(
        &self,
        wal_id: u64,
        targets: &[Target],
    ) -> Result<Vec<ItemId>, WalError> {
        let mut records = Vec::with_capacity(targets.len().max(1));
        let mut to = Vec::with_capacity(targets.len());
        self.routing_records(wal_id, targets, None, &mut records, &mut to);
        self.wal().append_many(&records).await?;
        Ok(to)
    }

    /// Delivers `template` to each of `targets` (items a store returned), in order,
    /// waiting where a target's queue or ring is full.
    pub async fn fan_out(&self, template: Envelope, targets: &[ItemId]) {
        for env in copies(template, targets) {
            self.deliver(env).await;
        }
    }
}

/// A message's bytes and their scan index (`None` for a document that is not one
/// message), shared by all its envelopes.
pub type Body = (Arc<[u8]>, Option<Arc<ScanIndex>>);

/// One envelope per target: `template` with its `target` set, in the order of `targets`
/// (the bytes and the scan index are shared, not copied).
pub fn copies(template: Envelope, targets: &[ItemId]) -> impl Iterator<Item = Envelope> + '_ {
    targets.iter().map(move |&target| Envelope {
        target,
        ..template.clone()
    })
}

/// A new envelope for a message just stored (or read back from the WAL): `bytes` with
/// their `scan` (`None` for a document that is not one message), from `source`.
/// `target` is where it goes first ([`copies`] sets the others).
pub fn envelope(
    id: MessageId,
    (bytes, scan): Body,
    source: ItemId,
    origin_name: Arc<str>,
    target: ItemId,
    key: &[u8],
) -> Envelope {
    let now = Instant::now();
    Envelope {
        id,
        bytes,
        scan,
        source,
        origin_name,
        target,
        partition: partition_hash(key),
        received_at: now,
        queued_at: now,
        attempts: 0,
        router_hops: 0,
        wants_reply: false,
        ordered: false,
    }
}

/// The scan index of `bytes`, a message read back from the WAL; `None` for a document
/// that is not one message.
pub fn scan_of(bytes: &[u8]) -> Option<Arc<ScanIndex>> {
    Message::scan(bytes)
        .ok()
        .map(|msg| Arc::new(msg.into_index()))
}

/// The envelopes recovery makes of the messages it read back from the WAL: each
/// message's bytes copied and scanned once, shared by all its deliveries.
#[derive(Debug, Default)]
pub struct Rebuilt {
    made: HashMap<u64, Body>,
}

impl Rebuilt {
    /// An envelope of recovered `message` (`id`) from `source` to `target`; it starts its
    /// attempts and router hops again at 0.
    pub fn envelope(
        &mut self,
        id: MessageId,
        message: &RecoveredMessage,
        source: ItemId,
        target: ItemId,
    ) -> Envelope {
        let (bytes, scan) = self.made.entry(message.message_id).or_insert_with(|| {
            let bytes: Arc<[u8]> = Arc::from(message.bytes.as_slice());
            let scan = scan_of(&bytes);
            (bytes, scan)
        });
        let key = match message.partition_key.is_empty() {
            true => message.control_id.as_bytes(),
            false => message.partition_key.as_bytes(),
        };
        let origin_name = Arc::from(message.source.as_str());
        let shared = (Arc::clone(bytes), scan.clone());
        // The upstream connection that waited for it (`wants_reply`, `ordered`) is gone.
        envelope(id, shared, source, origin_name, target, key)
    }
}
