//! Per-item state of one shard: one [`ItemSlot`] per item of the production, in one
//! table keyed by [`ItemId`].
//!
//! Owns, for each item, the queues of its instances on this shard and the hooks they
//! call. An item's state and restart requests are in [`crate::engine::control::StateWatch`]
//! and its counters and latency histograms in [`crate::engine::metrics::ShardMetrics`],
//! each also one entry per item under the same id, since their waiters and snapshots
//! span every item.
//!
//! The key: an `ItemId` is the item's index in the plan, stable for the whole run (the
//! plan does not change while it runs). Hot reload will key slots by it too: an item
//! that stays keeps its id and its slot (queues and all), a new item takes a new id, and
//! a removed item's slot is emptied once its queues are, never reused for another item
//! while it holds anything.
//!
//! Limits: one slot per item of the plan, fixed at start; the queues in it have their
//! item's `QueueSize` (see [`crate::queue`]).

use std::rc::Rc;

use crate::engine::plan::Plan;
use crate::envelope::{Envelope, ItemId};
use crate::item::{ItemHooks, TraceEvents};
use crate::queue::LocalQueue;

/// One item's state on one shard.
#[derive(Debug, Default)]
pub struct ItemSlot {
    /// By instance: the queues of this shard's instances of a router or operation
    /// (`None` for instances on other shards; empty for a service).
    queues: Vec<Option<Rc<LocalQueue<Envelope>>>>,
    /// The hooks of this shard's instances (empty for most items).
    hooks: Vec<Rc<dyn ItemHooks>>,
}

impl ItemSlot {
    /// The slot of `item` (id `id` in `plan`) on shard `shard`.
    fn new(plan: &Plan, id: ItemId, shard: usize) -> Self {
        let item = plan.item(id);
        let local = if item.role.has_queue() {
            item.instances_on(shard)
        } else {
            Vec::new()
        };
        let count = local.last().map_or(0, |&last| last + 1);
        let queues = (0..count)
            .map(|i| {
                local
                    .contains(&i)
                    .then(|| Rc::new(LocalQueue::new(item.queue_size, item.overflow)))
            })
            .collect();
        let mut hooks: Vec<Rc<dyn ItemHooks>> = Vec::new();
        if item.shards.contains(&shard) && item.log_trace_events {
            hooks.push(Rc::new(TraceEvents));
        }
        ItemSlot { queues, hooks }
    }

    /// The queue of instance `instance`, if it runs on this shard.
    pub fn queue(&self, instance: usize) -> Option<&Rc<LocalQueue<Envelope>>> {
        self.queues.get(instance)?.as_ref()
    }

    /// The queues of this item's instances here.
    pub fn queues(&self) -> impl Iterator<Item = &Rc<LocalQueue<Envelope>>> {
        self.queues.iter().flatten()
    }

    /// Entries queued for this item here, over its instances.
    pub fn queued(&self) -> usize {
        self.queues().map(|q| q.len()).sum()
    }

    /// When the oldest entry queued for this item here entered its queue (the earliest
    /// `queued_at` of the queues' fronts); `None` when none is queued. For the admin API,
    /// not the data path.
    pub fn oldest_queued(&self) -> Option<std::time::Instant> {
        self.queues()
            .filter_map(|q| q.least_front(|env| env.queued_at))
            .min()
    }

    pub fn hooks(&self) -> &[Rc<dyn ItemHooks>] {
        &self.hooks
    }
}

/// Every item's slot on one shard, by [`ItemId`].
#[derive(Debug)]
pub struct ItemSlots {
    slots: Vec<ItemSlot>,
}

impl ItemSlots {
    /// A slot for every item of `plan` on shard `shard`.
    pub fn new(plan: &Plan, shard: usize) -> Self {
        let slots = (0..plan.items.len())
            .map(|id| ItemSlot::new(plan, id as ItemId, shard))
            .collect();
        ItemSlots { slots }
    }

    /// The slot of `item`.
    pub fn get(&self, item: ItemId) -> &ItemSlot {
        &self.slots[item as usize]
    }

    /// Every slot with its item's id.
    pub fn iter(&self) -> impl Iterator<Item = (ItemId, &ItemSlot)> {
        self.slots
            .iter()
            .enumerate()
            .map(|(id, slot)| (id as ItemId, slot))
    }
}
