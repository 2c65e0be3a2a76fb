//! The outbox: what a shard owes the WAL of a message's origin shard (docs/adr/0001).
//!
//! Owns the outcome records waiting for this shard's recorder task ([`Outbox`]: records
//! for messages received here, appended in batches, in the order they were made) and
//! the messages for other shards whose ring was full (records, `AckMode=App` replies and
//! ADR 0006's hops, sent by the recorder in order once there is room), with the
//! recorder's wake-up and its closing flag. [`Shard::record`] is where every outcome of
//! an operation or a queue starts: counted, answered to a waiting `AckMode=App` service,
//! and queued here for the origin's WAL; a failure or suspension goes on the origin's
//! held list once its record is durable.
//!
//! Limits: the pending records are bounded by the messages in flight on this shard (each
//! envelope makes at most one outcome record per target); the deferred messages by the
//! rings' backpressure (the recorder pushes them, waiting for room). Neither is ever
//! dropped: while the WAL is unavailable a batch waits and is appended again, whole and
//! in order; only at `Stop` with the WAL still unavailable are its messages left open in
//! the WAL, to be delivered again at the next start (and the log says how many).
//!
//! A message deferred for a full ring is sent after the messages deferred before it; a
//! later one that finds room goes ahead of them, as records of different messages do not
//! depend on one another.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use hie_persist::Record;

use crate::engine::app_replies::reply_of;
use crate::engine::held::{HeldEntry, HeldFacts, HeldKind, now_us};
use crate::engine::metrics::Stage;
use crate::engine::plan::Plan;
use crate::engine::runtime::{Shard, bump};
use crate::envelope::{Envelope, ItemId, MessageId, OriginRecord, ShardMsg};
use crate::notify::Notify;
use crate::ring::{Full, ShardRings};

/// A record waiting for the recorder task.
#[derive(Debug)]
pub(crate) struct PendingRecord {
    pub(crate) wal_id: u64,
    pub(crate) target: ItemId,
    pub(crate) record: OriginRecord,
    /// For a failure or suspension: what the held list shows of the message.
    pub(crate) facts: Option<Box<HeldFacts>>,
}

/// One shard's outbox.
#[derive(Debug, Default)]
pub struct Outbox {
    records: RefCell<Vec<PendingRecord>>,
    /// Messages for other shards whose ring was full, in order.
    deferred: RefCell<Vec<(usize, ShardMsg)>>,
    ready: Notify,
    /// Set by [`Outbox::close`].
    closing: Cell<bool>,
}

impl Outbox {
    /// Queues `record` for this shard's WAL and wakes the recorder.
    pub(crate) fn push(&self, record: PendingRecord) {
        self.records.borrow_mut().push(record);
        self.ready.notify_all();
    }

    /// Sends `msg` to shard `origin` over `rings` without waiting; when that ring is full
    /// keeps it for the recorder, behind what it keeps already.
    pub fn send(&self, rings: &ShardRings<ShardMsg>, origin: usize, msg: ShardMsg) {
        if let Err(Full(msg)) = rings.try_push(origin, msg) {
            self.deferred.borrow_mut().push((origin, msg));
            self.ready.notify_all();
        }
    }

    /// The messages kept for full rings, in order; the outbox keeps none after this.
    pub fn take_deferred(&self) -> Vec<(usize, ShardMsg)> {
        self.deferred.take()
    }

    /// Swaps the pending records into `batch` (empty), in the order they were queued.
    pub(crate) fn take_batch(&self, batch: &mut Vec<PendingRecord>) {
        debug_assert!(batch.is_empty(), "the last batch was written");
        std::mem::swap(batch, &mut self.records.borrow_mut());
    }

    /// Nothing is pending or deferred.
    pub fn is_empty(&self) -> bool {
        self.records.borrow().is_empty() && self.deferred.borrow().is_empty()
    }

    /// Lets the recorder end once what is pending is written.
    pub fn close(&self) {
        self.closing.set(true);
        self.ready.notify_all();
    }

    /// The recorder may end: the outbox is closed and nothing is deferred (the caller
    /// has found no pending record).
    fn finished(&self) -> bool {
        self.closing.get() && self.deferred.borrow().is_empty()
    }
}

/// The WAL record of `p`, naming its target as `plan` does.
fn to_wal_record<'p>(plan: &'p Plan, p: &'p PendingRecord) -> Record<'p> {
    let target = plan.item(p.target).name.as_str();
    let message_id = p.wal_id;
    match &p.record {
        OriginRecord::Completed => Record::Completed { message_id, target },
        OriginRecord::Failed { reason } => Record::Failed {
            message_id,
            target,
            reason,
        },
        OriginRecord::Suspended { reason } => Record::Suspended {
            message_id,
            target,
            reason,
        },
        OriginRecord::Discarded { reason } => Record::Discarded {
            message_id,
            target,
            reason,
        },
    }
}

impl Shard {
    /// Records the outcome of `env` at `env.target`, in the message's origin WAL, and
    /// answers an `AckMode=App` service waiting for it (an operation that has the
    /// downstream ACK sends it with [`Shard::send_reply`] first: the first reply wins).
    pub fn record(&self, env: &Envelope, record: OriginRecord) {
        self.hook_after(env.target, env, &record);
        self.send_reply(env, reply_of(&record));
        let counters = self.counters(env.target);
        let mut facts = None;
        match &record {
            OriginRecord::Completed => {
                bump(&counters.completed);
                self.metrics()
                    .record_since(env.target, Stage::Delivered, env.received_at);
            }
            OriginRecord::Failed { .. } => {
                bump(&counters.failed);
                facts = Some(Box::new(HeldFacts::of_envelope(env)));
            }
            OriginRecord::Suspended { .. } => {
                bump(&counters.suspended);
                facts = Some(Box::new(HeldFacts::of_envelope(env)));
            }
            OriginRecord::Discarded { .. } => bump(&counters.discarded),
        }
        self.record_at_origin(env.id, env.target, record, facts);
    }

    /// Queues `record` for the WAL of `id`'s origin (this shard's, or over the ring);
    /// `facts` (for a failure or suspension) go on the origin's held list once the record
    /// is durable.
    pub fn record_at_origin(
        &self,
        id: MessageId,
        target: ItemId,
        record: OriginRecord,
        facts: Option<Box<HeldFacts>>,
    ) {
        let origin = id.origin_shard as usize;
        if origin == self.index() {
            self.outbox().push(PendingRecord {
                wal_id: id.wal_id,
                target,
                record,
                facts,
            });
        } else {
            let msg = ShardMsg::Record {
                id,
                target,
                record,
                facts,
            };
            self.send_to_origin(origin, msg);
        }
    }

    /// Sends `msg` to shard `origin` over the ring without waiting. Rare: when the ring
    /// is full the recorder task sends it, in order with the others deferred, once there
    /// is room; the caller (an operation, a router, a dispatcher) goes on meanwhile.
    pub(crate) fn send_to_origin(&self, origin: usize, msg: ShardMsg) {
        self.outbox().send(self.rings(), origin, msg);
    }

    /// The recorder: appends pending local records in batches, and forwards messages
    /// whose ring was full. Runs until [`Shard::close_recorder`] and nothing is pending.
    pub async fn run_recorder(self: Rc<Self>) {
        let mut batch: Vec<PendingRecord> = Vec::new();
        loop {
            for (origin, msg) in self.outbox().take_deferred() {
                self.rings().push(origin, msg).await;
            }
            self.outbox().take_batch(&mut batch);
            if batch.is_empty() {
                if self.outbox().finished() {
                    return;
                }
                futures_lite::future::or(self.outbox().ready.notified(), self.phase_changed())
                    .await;
                continue;
            }
            self.append_outcomes(&mut batch).await;
            batch.clear();
        }
    }

    /// Appends `batch`, waiting while the WAL is unavailable (a full disk) and appending
    /// it again, whole and in order, once it is writable: the records that were refused
    /// are not durable, and records arriving meanwhile queue behind them. Gives up only
    /// when the run reaches `Stop` with the WAL still unavailable: the messages stay open
    /// in the WAL and are delivered again at the next start.
    async fn append_outcomes(&self, batch: &mut [PendingRecord]) {
        loop {
            let records: Vec<Record<'_>> = batch
                .iter()
                .map(|p| to_wal_record(self.plan(), p))
                .collect();
            let appended = self.wal().append_many(&records).await;
            drop(records);
            match appended {
                Ok(_) => return self.hold_failures(batch),
                // A storage failure is logged once by the WAL, at its change of state.
                Err(e) if e.is_storage() => {
                    if !self.until_wal_writable(None).await {
                        tracing::warn!(
                            shard = self.index(),
                            "{} outcome records not written at shutdown (the WAL is \
                             unavailable): their messages are delivered again at the next start",
                            batch.len()
                        );
                        return;
                    }
                }
                Err(e) => {
                    return tracing::error!(
                        shard = self.index(),
                        "WAL append of {} outcome records failed: {e}",
                        batch.len()
                    );
                }
            }
        }
    }

    /// Lists the failures and suspensions of `batch` (durable now) on the held list.
    fn hold_failures(&self, batch: &mut [PendingRecord]) {
        let at_us = now_us();
        for p in batch {
            let (kind, reason) = match &mut p.record {
                OriginRecord::Failed { reason } => (HeldKind::Failed, reason),
                OriginRecord::Suspended { reason } => (HeldKind::Suspended, reason),
                _ => continue,
            };
            let facts = p.facts.take().map(|f| *f).unwrap_or_default();
            let entry = HeldEntry {
                kind,
                reason: std::mem::take(reason),
                at_us,
                message_type: facts.message_type,
                control_id: facts.control_id,
            };
            self.hold(p.wal_id, p.target, entry);
        }
    }

    /// Lets the recorder end once what is pending is written: called when no record can
    /// arrive any more (the dispatcher has stopped).
    pub fn close_recorder(&self) {
        self.outbox().close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(wal_id: u64, record: OriginRecord) -> PendingRecord {
        PendingRecord {
            wal_id,
            target: 0,
            record,
            facts: None,
        }
    }

    #[test]
    fn records_are_batched_in_the_order_they_were_made() {
        let outbox = Outbox::default();
        for n in 1..=3 {
            outbox.push(pending(n, OriginRecord::Completed));
        }
        let mut batch = Vec::new();
        outbox.take_batch(&mut batch);
        let ids: Vec<u64> = batch.iter().map(|p| p.wal_id).collect();
        assert_eq!(ids, [1, 2, 3]);
        assert!(outbox.is_empty(), "a batch is taken whole");
        batch.clear();
        outbox.push(pending(4, OriginRecord::Completed));
        outbox.take_batch(&mut batch);
        assert_eq!(batch.len(), 1, "the next batch holds only what came since");
    }

    #[test]
    fn a_full_ring_defers_in_order_and_the_recorder_ends_only_when_closed_and_sent() {
        let rings = crate::ring::mesh::<ShardMsg>(2, 1).remove(0);
        let outbox = Outbox::default();
        let mut sent = 0u64;
        // Fill the ring to shard 1, then defer three more.
        while outbox.deferred.borrow().len() < 3 {
            let id = MessageId {
                origin_shard: 1,
                wal_id: sent,
            };
            outbox.send(&rings, 1, ShardMsg::Entered { id });
            sent += 1;
        }
        assert!(!outbox.is_empty());
        outbox.close();
        assert!(!outbox.finished(), "deferred messages are still owed");
        let deferred = outbox.take_deferred();
        let ids: Vec<u64> = deferred
            .iter()
            .map(|(origin, msg)| match msg {
                ShardMsg::Entered { id } if *origin == 1 => id.wal_id,
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(ids, [sent - 3, sent - 2, sent - 1], "in the order sent");
        assert!(outbox.finished());
        assert!(outbox.is_empty());
    }

    #[test]
    fn the_recorder_is_not_finished_before_it_is_closed() {
        let outbox = Outbox::default();
        assert!(outbox.is_empty());
        assert!(!outbox.finished());
        outbox.close();
        assert!(outbox.finished());
    }

    #[test]
    fn each_outcome_becomes_its_wal_record_for_its_target() {
        let dir = tempfile::tempdir().unwrap();
        glommio::LocalExecutor::default().run(async {
            let shard = crate::engine::runtime::tests::one_shard(dir.path()).await;
            let out = shard.plan().item_named("Out").unwrap().id;
            let reason = || "why".to_string();
            let cases = [
                OriginRecord::Completed,
                OriginRecord::Failed { reason: reason() },
                OriginRecord::Suspended { reason: reason() },
                OriginRecord::Discarded { reason: reason() },
            ];
            for record in cases {
                let p = PendingRecord {
                    wal_id: 9,
                    target: out,
                    record: record.clone(),
                    facts: None,
                };
                let wal = to_wal_record(shard.plan(), &p);
                let expected = match &record {
                    OriginRecord::Completed => Record::Completed {
                        message_id: 9,
                        target: "Out",
                    },
                    OriginRecord::Failed { .. } => Record::Failed {
                        message_id: 9,
                        target: "Out",
                        reason: "why",
                    },
                    OriginRecord::Suspended { .. } => Record::Suspended {
                        message_id: 9,
                        target: "Out",
                        reason: "why",
                    },
                    OriginRecord::Discarded { .. } => Record::Discarded {
                        message_id: 9,
                        target: "Out",
                        reason: "why",
                    },
                };
                assert_eq!(wal, expected);
            }
            shard.wal().close().await.unwrap();
        });
    }
}
