//! The seam where routing rules decide: a router asks [`Decide::decide`], one message at
//! a time, where the message goes, and [`Shard::route_batch`] turns the decisions of a
//! batch into the routing records of one WAL commit and the targets of each message
//! ([`Routed`]).
//!
//! A decision reads the message on its zero-copy scan ([`Envelope::message`]: the index
//! its service made, re-attached without scanning again) and borrows what it answers from
//! the running plan, so deciding allocates nothing. The one decider today is a router
//! without business rules, as in IRIS: every message goes to its `TargetConfigNames`
//! (`impl Decide for PlannedItem`). A message no target takes goes to the router's
//! `BadMessageHandler`, or is discarded as "no route" (`Shard::routing_records`).

use hie_persist::{Record, WalError};

use crate::engine::plan::{PlannedItem, Target};
use crate::engine::runtime::{Shard, hop_limit_reached, log_append_error};
use crate::envelope::{Envelope, ItemId};

/// Where a router sends one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decisions<'p> {
    /// The targets, in the order the message goes to them.
    pub targets: &'p [Target],
}

/// Decides, for one message, where a router sends it.
pub trait Decide {
    fn decide(&self, env: &Envelope) -> Decisions<'_>;
}

/// A router without business rules: every message to its `TargetConfigNames`.
impl Decide for PlannedItem {
    fn decide(&self, _env: &Envelope) -> Decisions<'_> {
        Decisions {
            targets: &self.targets,
        }
    }
}

/// The items each message of a batch goes to, in one buffer a router reuses from batch
/// to batch.
#[derive(Debug, Default)]
pub struct Routed {
    targets: Vec<ItemId>,
    /// Per message of the batch: the end of its targets in `targets`.
    ends: Vec<usize>,
}

impl Routed {
    /// The items message `i` of the batch goes to (none for one at its hop limit).
    pub fn of(&self, i: usize) -> &[ItemId] {
        let start = i.checked_sub(1).map_or(0, |p| self.ends[p]);
        &self.targets[start..self.ends[i]]
    }

    fn clear(&mut self) {
        self.targets.clear();
        self.ends.clear();
    }

    fn end_message(&mut self) {
        self.ends.push(self.targets.len());
    }
}

impl Shard {
    /// Records that router `router` passed the messages of `batch` on to the targets it
    /// decided for each (and completed its part); `routed` gets those targets. The
    /// records are queued for the WAL's next commit, not waited for: each message's
    /// `MessageReceived` and `Enqueued` for the router are durable already, and any later
    /// record of the message (a delivery's completion) gets a later LSN, so it can only
    /// be durable once these are. A crash that loses them makes recovery route the
    /// messages again (at least once, as for any delivery not yet recorded complete), and
    /// the router does not add a second `fdatasync` to every message's way downstream. A
    /// message at its hop limit ([`hop_limit_reached`]) gets no record here: the router
    /// fails it.
    pub fn route_batch(
        &self,
        router: ItemId,
        batch: &[Envelope],
        routed: &mut Routed,
    ) -> Result<(), WalError> {
        let item = self.plan().item(router);
        let mut records = Vec::with_capacity(batch.len() * (item.targets.len() + 1));
        routed.clear();
        for env in batch {
            if !hop_limit_reached(env) {
                debug_assert_eq!(
                    env.id.origin_shard as usize,
                    self.index(),
                    "routers run at the origin"
                );
                let decisions = item.decide(env);
                let (wal_id, to) = (env.id.wal_id, &mut routed.targets);
                self.routing_records(wal_id, decisions.targets, Some(item), &mut records, to);
                records.push(Record::Completed {
                    message_id: wal_id,
                    target: &item.name,
                });
            }
            routed.end_message();
        }
        self.wal()
            .submit(&records)
            .inspect_err(|e| log_append_error(&item.name, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routed_lists_each_message_its_own_targets() {
        let mut routed = Routed::default();
        routed.targets.extend([1, 2]);
        routed.end_message();
        routed.end_message();
        routed.targets.push(3);
        routed.end_message();
        assert_eq!(routed.of(0), [1, 2]);
        assert_eq!(routed.of(1), [] as [ItemId; 0]);
        assert_eq!(routed.of(2), [3]);
        routed.clear();
        routed.end_message();
        assert!(routed.of(0).is_empty());
    }
}
