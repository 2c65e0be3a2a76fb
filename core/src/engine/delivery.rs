//! Delivery: an envelope to the queue of its target's instance that owns its partition,
//! on this shard or over a ring, and what happens when that queue does not take it.
//!
//! Owns no state of its own: the queues are the item slots' ([`crate::engine::slots`]),
//! the rings the shard's. It owns the rules: which instance and lane an envelope takes
//! ([`Shard::lane_of`]; the same on the live path, after an interrupted retry and after
//! recovery), what a queue's answer means ([`settlement`]: kept, discarded and recorded
//! `Discarded` for `drop_oldest` and `reject`, handed back for a full `block` queue, left
//! in the WAL for recovery when the queue is closed at shutdown), when a service refuses a
//! message before storing it ([`Shard::refuses`]), and listing a message on the held list
//! ([`Shard::hold`]). Each envelope that reaches its queue, or ends here without one, ends
//! one hop of its ordered ACK (docs/adr/0006, [`crate::engine::ordered_acks`]).
//!
//! Limits: a local `block` queue makes [`Shard::enqueue_local`] wait for room, and a full
//! ring makes [`Shard::deliver`] wait (backpressure to the sender, bounded by the queue
//! and ring sizes); [`Shard::offer_local`] never waits.

use std::rc::Rc;

use crate::engine::held::HeldEntry;
use crate::engine::plan::Role;
use crate::engine::runtime::Shard;
use crate::envelope::{Envelope, ItemId, MessageId, OriginRecord, ShardMsg};
use crate::queue::{LocalQueue, Offer, Overflow, Priority};

/// Why an entry is discarded when a `drop_oldest` queue is full.
const EVICTED_REASON: &str = "queue full: oldest message dropped (Overflow drop_oldest)";
/// Why an entry is discarded when a `reject` queue is full.
const REJECTED_REASON: &str = "queue full: message refused (Overflow reject)";

/// What a queue's answer to an offer means for the entry it did not keep.
#[derive(Debug)]
pub enum Settlement<T> {
    /// The queue kept the entry and dropped none.
    Kept,
    /// This entry is discarded (recorded `Discarded` with the reason).
    Discarded(T, &'static str),
    /// The queue is closed (shutting down): the message stays open in its WAL and comes
    /// back at the next start.
    LeftForRecovery(T),
    /// A full `block` queue: the caller keeps the entry and offers it again.
    HandedBack(T),
}

/// The meaning of `offered`, from a queue that is `closed` or not, with `overflow`.
pub fn settlement<T>(offered: Offer<T>, closed: bool, overflow: Overflow) -> Settlement<T> {
    match offered {
        Offer::Accepted => Settlement::Kept,
        Offer::Evicted(old) => Settlement::Discarded(old, EVICTED_REASON),
        Offer::Refused(env) if closed => Settlement::LeftForRecovery(env),
        Offer::Refused(env) if overflow == Overflow::Block => Settlement::HandedBack(env),
        Offer::Refused(env) => Settlement::Discarded(env, REJECTED_REASON),
    }
}

impl Shard {
    /// Delivers `env` to the instance of `env.target` that owns its partition: this
    /// shard's queue, or another shard's through the ring (waiting while it is full).
    pub async fn deliver(&self, env: Envelope) {
        let target = self.plan().item(env.target);
        match target.shard_for(env.partition, self.index()) {
            None => {
                let reason = match &target.role {
                    Role::Inert(why) => {
                        format!("target item {} is not running: {why}", target.name)
                    }
                    _ => format!("target item {} has no instance", target.name),
                };
                tracing::error!(id = %env.id, "{reason}");
                self.note_entered(&env);
                self.record(&env, OriginRecord::Discarded { reason });
            }
            Some(shard) if shard == self.index() => self.enqueue_local(env).await,
            Some(shard) => self.rings().push(shard, ShardMsg::Deliver(env)).await,
        }
    }

    /// Puts `env` on this shard's queue of its target, applying the overflow strategy
    /// (waiting for room with `block`).
    pub async fn enqueue_local(&self, mut env: Envelope) {
        let Some(queue) = self.local_queue_of(&env) else {
            self.note_entered(&env);
            return;
        };
        self.stamp_queued(&mut env);
        let lane = self.lane_of(&env);
        let entering = self.entering_of(&env);
        let offered = queue.push(env, lane).await;
        // `push` waits while a `block` queue is full, so nothing comes back to retry.
        let _ = self.settle(&queue, offered);
        if let Some(id) = entering {
            self.entered(id);
        }
    }

    /// [`Shard::enqueue_local`] without waiting: hands `env` back when its queue is full
    /// and its strategy is `block` (the dispatcher keeps it and tries again).
    pub fn offer_local(&self, mut env: Envelope) -> Result<(), Envelope> {
        let Some(queue) = self.local_queue_of(&env) else {
            self.note_entered(&env);
            return Ok(());
        };
        self.stamp_queued(&mut env);
        let lane = self.lane_of(&env);
        let entering: Option<MessageId> = self.entering_of(&env);
        let offered = queue.offer(env, lane);
        let settled = self.settle(&queue, offered);
        if settled.is_ok()
            && let Some(id) = entering
        {
            self.entered(id);
        }
        settled
    }

    /// Stamps `env` as entering its queue now, by the shard's coarse clock (no clock read:
    /// [`crate::engine::metrics::ShardMetrics::coarse_now`]), never before it was received.
    fn stamp_queued(&self, env: &mut Envelope) {
        env.queued_at = self.metrics().coarse_now().max(env.received_at);
    }

    /// The lane of its target's queue `env` takes (`QueueOrder`; see [`crate::priority`]):
    /// the same on the live path, after a retry is interrupted and after recovery.
    pub fn lane_of(&self, env: &Envelope) -> Priority {
        self.plan()
            .item(env.target)
            .queue_order
            .lane_of_envelope(env)
    }

    fn local_queue_of(&self, env: &Envelope) -> Option<Rc<LocalQueue<Envelope>>> {
        let instance = self.plan().item(env.target).instance_for(env.partition);
        let queue = self.queue(env.target, instance);
        if queue.is_none() {
            tracing::error!(id = %env.id, "no local queue for item {}", env.target);
        }
        queue
    }

    /// Records what a queue did not keep; `Err` gives back an entry a full `block` queue
    /// refused.
    fn settle(
        &self,
        queue: &LocalQueue<Envelope>,
        offered: Offer<Envelope>,
    ) -> Result<(), Envelope> {
        match settlement(offered, queue.is_closed(), queue.overflow()) {
            Settlement::Kept => Ok(()),
            Settlement::Discarded(env, reason) => {
                tracing::warn!(id = %env.id, item = %self.plan().item(env.target).name, "{reason}");
                self.record(
                    &env,
                    OriginRecord::Discarded {
                        reason: reason.into(),
                    },
                );
                Ok(())
            }
            Settlement::LeftForRecovery(env) => {
                tracing::debug!(id = %env.id, "queue closed; left for recovery");
                Ok(())
            }
            Settlement::HandedBack(env) => Err(env),
        }
    }

    /// True when the first-hop queue of `target` here is full and refuses new entries, so
    /// a service should NAK instead of storing the message.
    pub fn refuses(&self, target: ItemId, partition: u64) -> bool {
        let instance = self.plan().item(target).instance_for(partition);
        self.queue(target, instance)
            .is_some_and(|q| q.overflow() == Overflow::Reject && q.len() >= q.capacity())
    }

    /// Puts message `wal_id` (received here) on the held list at `item`.
    pub fn hold(&self, wal_id: u64, item: ItemId, entry: HeldEntry) {
        if !self.list_held(wal_id, item, entry) {
            tracing::warn!(
                shard = self.index(),
                id = %MessageId { origin_shard: self.index() as u16, wal_id },
                item = %self.plan().item(item).name,
                "held list full ({} listed): the message is counted and stays in the WAL, \
                 listed again after a restart once there is room",
                crate::engine::held::HELD_LISTED_MAX
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_accepted_offer_keeps_the_entry() {
        for overflow in [Overflow::Block, Overflow::DropOldest, Overflow::Reject] {
            assert!(matches!(
                settlement::<u8>(Offer::Accepted, false, overflow),
                Settlement::Kept
            ));
        }
    }

    #[test]
    fn an_evicted_entry_is_discarded_as_drop_oldest() {
        match settlement(Offer::Evicted(1u8), false, Overflow::DropOldest) {
            Settlement::Discarded(1, reason) => assert!(reason.contains("drop_oldest")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_full_block_queue_hands_the_entry_back() {
        assert!(matches!(
            settlement(Offer::Refused(1u8), false, Overflow::Block),
            Settlement::HandedBack(1)
        ));
    }

    #[test]
    fn a_full_reject_queue_discards_the_entry() {
        match settlement(Offer::Refused(1u8), false, Overflow::Reject) {
            Settlement::Discarded(1, reason) => assert!(reason.contains("reject")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_closed_queue_leaves_the_entry_for_recovery_whatever_its_overflow() {
        for overflow in [Overflow::Block, Overflow::DropOldest, Overflow::Reject] {
            assert!(matches!(
                settlement(Offer::Refused(1u8), true, overflow),
                Settlement::LeftForRecovery(1)
            ));
        }
    }
}
