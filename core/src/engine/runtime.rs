//! One shard of a running production: its WAL, its end of the ring mesh, the queues of the
//! item instances it hosts, and the three things every item does through it: record
//! (append to the origin WAL), deliver (to a local queue or over a ring), and report
//! (counters and states).
//!
//! Invariants:
//! - A message's records all go to its origin shard's WAL (docs/adr/0001). Records about
//!   a message from another shard travel back as [`ShardMsg::Record`].
//! - `Enqueued` for a target is durable before the envelope leaves for that target, so
//!   in the WAL it precedes the target's `Completed`.
//! - A service whose port is shared over shards acknowledges a message only once it is in
//!   the queue of every operation it goes to ([`Shard::expect_entered`]): a later message
//!   of the same patient, sent after that ACK on a connection another shard took, cannot
//!   overtake it.
//! - Nothing is dropped: a full queue blocks (`block`) or the entry it does not keep is
//!   recorded as `Discarded` (`drop_oldest`, `reject`); a queue closed at shutdown refuses
//!   without a record, and the message is redelivered from the WAL at the next start.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};

use hie_hl7::{AckBuilder, Message};
use hie_persist::{Record, Wal, WalError};
use serde::Serialize;

use crate::engine::control::{ItemState, StateWatch};
use crate::engine::held::{HeldCounts, HeldEntry, HeldFacts, HeldKind, HeldList, now_us};
pub use crate::engine::metrics::ItemCounters;
use crate::engine::metrics::{CounterValues, ShardMetrics, Stage};
use crate::engine::plan::{Plan, Role};
use crate::envelope::{
    AppReply, Envelope, ItemId, MessageId, OriginRecord, ROUTER_HOPS_MAX, ShardMsg,
};
use crate::item::{HookContext, ItemHooks, TraceEvents};
use crate::notify::Notify;
use crate::queue::{LocalQueue, Offer, Overflow, Priority};
use crate::ring::ShardRings;

/// How many ring entries the dispatcher moves per wake before it yields.
pub const DRAIN_BATCH_MAX: usize = 256;

/// Phases of a run, in order; shards read the phase from [`Shared::phase`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Phase {
    Starting = 0,
    Running = 1,
    /// Services stop taking messages.
    StopServices = 2,
    /// Queues drain.
    Drain = 3,
    /// Everything stops; the WAL is flushed and closed.
    Stop = 4,
}

impl Phase {
    fn from_u8(v: u8) -> Phase {
        match v {
            0 => Phase::Starting,
            1 => Phase::Running,
            2 => Phase::StopServices,
            3 => Phase::Drain,
            _ => Phase::Stop,
        }
    }
}

/// What all shards and the main thread share (read-mostly).
#[derive(Debug)]
pub struct Shared {
    pub plan: Arc<Plan>,
    phase: AtomicU8,
    /// Shards that finished recovery (services open when all have).
    pub recovered: AtomicUsize,
    /// Shards whose services are open (start-up is over when all are).
    pub started: AtomicUsize,
    /// Shards whose services have stopped.
    pub services_stopped: AtomicUsize,
    /// Shards whose routers and operations have stopped (WALs close when all have, so
    /// that no outcome record is still on its way to them).
    pub workers_stopped: AtomicUsize,
    /// Per shard: nothing queued, in flight or unrecorded (read during `Drain`).
    pub idle: Vec<AtomicBool>,
    /// Set when a shard could not start; the others give up waiting for it.
    pub failed: AtomicBool,
    /// Shards whose thread ended before the run reached `Stop` (a bug: a panic in a debug
    /// build); the barriers of the shutdown do not wait for them.
    pub dead: AtomicUsize,
    pub errors: std::sync::Mutex<Vec<String>>,
    /// By item id: the item starts disabled (an operator's `hie ctl disable`, kept in
    /// the data directory; see [`crate::engine::overrides`]).
    pub start_disabled: Vec<bool>,
}

impl Shared {
    pub fn new(plan: Arc<Plan>) -> Self {
        let shards = plan.shards;
        let plan_items = plan.items.len();
        Shared {
            plan,
            phase: AtomicU8::new(Phase::Starting as u8),
            recovered: AtomicUsize::new(0),
            started: AtomicUsize::new(0),
            services_stopped: AtomicUsize::new(0),
            workers_stopped: AtomicUsize::new(0),
            idle: (0..shards).map(|_| AtomicBool::new(false)).collect(),
            failed: AtomicBool::new(false),
            dead: AtomicUsize::new(0),
            errors: std::sync::Mutex::new(Vec::new()),
            start_disabled: vec![false; plan_items],
        }
    }

    /// The state `item` starts in: `Disabled` when an operator disabled it, else `Running`.
    pub fn start_state(&self, item: ItemId) -> ItemState {
        if self.start_disabled.get(item as usize) == Some(&true) {
            ItemState::Disabled
        } else {
            ItemState::Running
        }
    }

    pub fn phase(&self) -> Phase {
        Phase::from_u8(self.phase.load(Ordering::Acquire))
    }

    /// Moves the run to `phase` (never backwards); the caller rings the doorbells.
    pub fn set_phase(&self, phase: Phase) {
        self.phase.fetch_max(phase as u8, Ordering::AcqRel);
    }

    /// Records a fatal start-up or run error of one shard.
    pub fn fail(&self, message: String) {
        tracing::error!("{message}");
        self.errors.lock().expect("errors lock").push(message);
        self.failed.store(true, Ordering::Release);
    }
}

/// One instance counted in its item's `wal_waits` for as long as this lives.
struct WalWait<'c>(&'c ItemCounters);

impl<'c> WalWait<'c> {
    fn new(counters: &'c ItemCounters) -> Self {
        counters.wal_waits.set(counters.wal_waits.get() + 1);
        WalWait(counters)
    }
}

impl Drop for WalWait<'_> {
    fn drop(&mut self) {
        self.0.wal_waits.set(self.0.wal_waits.get() - 1);
    }
}

pub(crate) fn bump(cell: &Cell<u64>) {
    cell.set(cell.get() + 1);
}

/// A snapshot of one item on one shard, for status.
#[derive(Debug, Clone, Serialize)]
pub struct ItemStatus {
    pub item: String,
    pub shard: usize,
    pub state: ItemState,
    pub queued: usize,
    #[serde(flatten)]
    pub counters: CounterValues,
    /// The item holds messages it cannot record while the WAL is unavailable, and goes
    /// on with them once it is writable again (see `wal_state`).
    pub waiting_for_wal: bool,
}

/// Everything one shard reports.
#[derive(Debug, Clone, Serialize)]
pub struct ShardStatus {
    pub shard: usize,
    pub items: Vec<ItemStatus>,
    /// Failed and suspended messages whose origin is this shard (`hie ctl held` lists them).
    pub held: HeldCounts,
    pub wal_open_messages: usize,
    pub wal_last_lsn: u64,
    /// `writable`, or `unavailable: CAUSE` while the WAL refuses appends after a failed
    /// write or sync (services NAK meanwhile; it resumes by itself).
    pub wal_state: String,
    /// Acknowledged records recovery found missing at start (a segment cut short,
    /// emptied or removed), one line per segment; empty when none.
    pub wal_recovery_errors: Vec<String>,
}

/// A record waiting for the recorder task.
#[derive(Debug)]
struct PendingRecord {
    wal_id: u64,
    target: ItemId,
    record: OriginRecord,
    /// For a failure or suspension: what the held list shows of the message.
    facts: Option<Box<HeldFacts>>,
}

/// A message whose service waits for it to enter its operations' queues.
#[derive(Debug)]
struct Entering {
    /// Targets not yet reached (a router's hop counts until it routes the message).
    hops_left: isize,
    waker: Option<std::task::Waker>,
}

/// A service's wait for its message to enter its operations' queues
/// ([`Shard::expect_entered`]); dropping it (the wait ended, or the connection's task
/// did) forgets the message.
#[derive(Debug)]
pub struct EnteredWait<'s> {
    shard: &'s Shard,
    id: MessageId,
}

impl EnteredWait<'_> {
    /// Waits up to `timeout` until the message has entered every queue it was delivered
    /// to; false when the time ran out first.
    pub async fn wait(self, timeout: std::time::Duration) -> bool {
        let entered = std::future::poll_fn(|cx| {
            let mut entering = self.shard.entering.borrow_mut();
            match entering.get_mut(&self.id) {
                Some(e) if e.hops_left > 0 => {
                    e.waker = Some(cx.waker().clone());
                    std::task::Poll::Pending
                }
                _ => std::task::Poll::Ready(true),
            }
        });
        let timed_out = async {
            glommio::timer::sleep(timeout).await;
            false
        };
        futures_lite::future::or(entered, timed_out).await
    }
}

impl Drop for EnteredWait<'_> {
    fn drop(&mut self) {
        self.shard.entering.borrow_mut().remove(&self.id);
    }
}

/// One shard's engine state, shared by its tasks through `Rc`.
#[derive(Debug)]
pub struct Shard {
    pub index: usize,
    pub plan: Arc<Plan>,
    pub shared: Arc<Shared>,
    pub wal: Rc<Wal>,
    pub rings: ShardRings<ShardMsg>,
    /// By item id, then instance: the queues of this shard's instances of routers and
    /// operations (`None` for instances on other shards).
    pub(crate) queues: Vec<Vec<Option<Rc<LocalQueue<Envelope>>>>>,
    pub states: StateWatch,
    /// By item id: the hooks of this shard's instances (empty for most items).
    hooks: Vec<Vec<Rc<dyn ItemHooks>>>,
    /// Per-item counters and latency histograms of this shard.
    pub metrics: ShardMetrics,
    pub ack: RefCell<AckBuilder>,
    /// Messages being worked on by operations (not in a queue).
    pub busy: Cell<usize>,
    /// Rung by the dispatcher when the run's phase changes.
    pub phase_changed: Notify,
    /// Rung by the WAL when it is writable again after a failed write or sync.
    wal_resumed: Rc<Notify>,
    /// What recovery found missing at start (for the status).
    pub wal_recovery_errors: RefCell<Vec<String>>,
    records: RefCell<Vec<PendingRecord>>,
    /// Records for other shards whose ring was full, in order.
    deferred_records: RefCell<Vec<(usize, ShardMsg)>>,
    records_ready: Notify,
    /// Set by [`Shard::close_recorder`].
    recorder_closing: Cell<bool>,
    /// `AckMode=App` services waiting for a message's reply: `None` until it arrives.
    replies: RefCell<HashMap<MessageId, Option<AppReply>>>,
    replies_ready: Notify,
    /// Services waiting for their messages to enter their operations' queues.
    entering: RefCell<HashMap<MessageId, Entering>>,
    /// Failed and suspended messages whose origin is this shard.
    pub held: RefCell<HeldList>,
}

impl Shard {
    pub fn new(
        index: usize,
        shared: Arc<Shared>,
        wal: Rc<Wal>,
        rings: ShardRings<ShardMsg>,
    ) -> Shard {
        let plan = Arc::clone(&shared.plan);
        let queues = plan
            .items
            .iter()
            .map(|item| {
                let local = if item.role.has_queue() {
                    item.instances_on(index)
                } else {
                    Vec::new()
                };
                let count = local.last().map_or(0, |&last| last + 1);
                (0..count)
                    .map(|i| {
                        local
                            .contains(&i)
                            .then(|| Rc::new(LocalQueue::new(item.queue_size, item.overflow)))
                    })
                    .collect()
            })
            .collect();
        let items = plan.items.len();
        let hooks = plan
            .items
            .iter()
            .map(|item| {
                let here = item.shards.contains(&index);
                let mut hooks: Vec<Rc<dyn ItemHooks>> = Vec::new();
                if here && item.log_trace_events {
                    hooks.push(Rc::new(TraceEvents));
                }
                hooks
            })
            .collect();
        let wal_resumed = Rc::new(Notify::new());
        wal.on_resume({
            let resumed = Rc::clone(&wal_resumed);
            move || resumed.notify_all()
        });
        Shard {
            index,
            shared,
            wal,
            wal_resumed,
            rings,
            queues,
            states: StateWatch::new(items),
            hooks,
            metrics: ShardMetrics::new(&plan, index),
            ack: RefCell::new(AckBuilder::new()),
            busy: Cell::new(0),
            phase_changed: Notify::new(),
            wal_recovery_errors: RefCell::new(Vec::new()),
            records: RefCell::new(Vec::new()),
            deferred_records: RefCell::new(Vec::new()),
            records_ready: Notify::new(),
            recorder_closing: Cell::new(false),
            replies: RefCell::new(HashMap::new()),
            replies_ready: Notify::new(),
            entering: RefCell::new(HashMap::new()),
            held: RefCell::new(HeldList::default()),
            plan,
        }
    }

    /// The queue of instance `instance` of `item`, if that instance runs on this shard.
    pub fn queue(&self, item: ItemId, instance: usize) -> Option<Rc<LocalQueue<Envelope>>> {
        self.queues[item as usize].get(instance)?.clone()
    }

    /// Every queue of this shard.
    pub fn local_queues(&self) -> impl Iterator<Item = &Rc<LocalQueue<Envelope>>> {
        self.queues.iter().flatten().flatten()
    }

    // ---- states and hooks -------------------------------------------------------------

    fn hook_context(&self, item: ItemId) -> HookContext<'_> {
        HookContext {
            item: &self.plan.item(item).name,
            shard: self.index,
        }
    }

    /// Calls `f` on every hook of `item` here.
    fn each_hook(&self, item: ItemId, f: impl Fn(&dyn ItemHooks, &HookContext<'_>)) {
        let hooks = &self.hooks[item as usize];
        if !hooks.is_empty() {
            let ctx = self.hook_context(item);
            for hook in hooks {
                f(hook.as_ref(), &ctx);
            }
        }
    }

    /// Sets `item`'s state on this shard, calling `on_start`/`on_stop` when it starts or
    /// stops taking work.
    pub fn set_state(&self, item: ItemId, state: ItemState) {
        let was_running = self.states.get(item) == ItemState::Running;
        self.states.set(item, state);
        match (was_running, state == ItemState::Running) {
            (false, true) => self.each_hook(item, |h, ctx| h.on_start(ctx)),
            (true, false) => self.each_hook(item, |h, ctx| h.on_stop(ctx)),
            _ => {}
        }
    }

    /// `on_init` of every item instance on this shard.
    pub fn init_items(&self) {
        for item in self.plan.on_shard(self.index) {
            self.each_hook(item.id, |h, ctx| h.on_init(ctx));
        }
    }

    /// `on_stop` (for those still running) and `on_teardown` of every item instance here.
    pub fn teardown_items(&self) {
        for item in self.plan.on_shard(self.index) {
            if self.states.get(item.id) == ItemState::Running {
                self.set_state(item.id, ItemState::Stopped);
            }
            self.each_hook(item.id, |h, ctx| h.on_teardown(ctx));
        }
    }

    /// `before`: `item` takes `env`.
    pub fn hook_before(&self, item: ItemId, env: &Envelope) {
        self.each_hook(item, |h, ctx| h.before(ctx, env));
    }

    /// `after`: `env`'s outcome at `item` (for routers, whose records are not made by
    /// [`Shard::record`]).
    pub fn hook_after(&self, item: ItemId, env: &Envelope, outcome: &OriginRecord) {
        self.each_hook(item, |h, ctx| h.after(ctx, env, outcome));
    }

    /// `on_error`: an attempt of `item` at `env` failed, or `env` failed there.
    pub fn hook_error(&self, item: ItemId, env: &Envelope, error: &str) {
        self.each_hook(item, |h, ctx| h.on_error(ctx, env, error));
    }

    pub fn counters(&self, item: ItemId) -> &ItemCounters {
        self.metrics.counters(item)
    }

    pub fn phase(&self) -> Phase {
        self.shared.phase()
    }

    /// Waits until the run reaches `phase`.
    pub async fn until_phase(&self, phase: Phase) {
        while self.phase() < phase {
            self.phase_changed.notified().await;
        }
    }

    /// Waits until `item` runs again (an operator's enable, resume or restart) or the run
    /// reaches `Stop`; true if it runs.
    pub async fn until_running_or_stop(&self, item: ItemId) -> bool {
        futures_lite::future::or(
            async {
                self.states
                    .wait_until(item, |s| s == ItemState::Running)
                    .await;
            },
            self.until_phase(Phase::Stop),
        )
        .await;
        self.states.get(item) == ItemState::Running
    }

    /// Waits while the WAL is unavailable (a write or sync failed: a full disk), until it
    /// is writable again or the run reaches `Stop`; true if writable. No polling: the WAL
    /// rings [`Shard::wal_resumed`] when it resumes. While it waits, `item` (the router or
    /// operation that cannot record) shows `waiting_for_wal` in the status.
    pub async fn until_wal_writable(&self, item: Option<ItemId>) -> bool {
        let _waiting = item.map(|item| WalWait::new(self.counters(item)));
        while self.wal.unavailable().is_some() {
            if self.phase() >= Phase::Stop {
                return false;
            }
            futures_lite::future::or(self.wal_resumed.notified(), self.phase_changed.notified())
                .await;
        }
        true
    }

    // ---- delivering ------------------------------------------------------------------

    /// Delivers `env` to the instance of `env.target` that owns its partition: this
    /// shard's queue, or another shard's through the ring (waiting while it is full).
    pub async fn deliver(&self, env: Envelope) {
        let target = self.plan.item(env.target);
        match target.shard_for(env.partition, self.index) {
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
            Some(shard) if shard == self.index => self.enqueue_local(env).await,
            Some(shard) => self.rings.push(shard, ShardMsg::Deliver(env)).await,
        }
    }

    /// Puts `env` on this shard's queue of its target, applying the overflow strategy
    /// (waiting for room with `block`).
    pub async fn enqueue_local(&self, env: Envelope) {
        let Some(queue) = self.local_queue_of(&env) else {
            self.note_entered(&env);
            return;
        };
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
    pub fn offer_local(&self, env: Envelope) -> Result<(), Envelope> {
        let Some(queue) = self.local_queue_of(&env) else {
            self.note_entered(&env);
            return Ok(());
        };
        let lane = self.lane_of(&env);
        let entering = self.entering_of(&env);
        let offered = queue.offer(env, lane);
        let settled = self.settle(&queue, offered);
        if settled.is_ok()
            && let Some(id) = entering
        {
            self.entered(id);
        }
        settled
    }

    /// The lane of its target's queue `env` takes (`QueueOrder`; see [`crate::priority`]):
    /// the same on the live path, after a retry is interrupted and after recovery.
    pub fn lane_of(&self, env: &Envelope) -> Priority {
        self.plan.item(env.target).queue_order.lane_of_envelope(env)
    }

    fn local_queue_of(&self, env: &Envelope) -> Option<Rc<LocalQueue<Envelope>>> {
        let instance = self.plan.item(env.target).instance_for(env.partition);
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
        match offered {
            Offer::Accepted => Ok(()),
            Offer::Evicted(old) => {
                let reason = "queue full: oldest message dropped (Overflow drop_oldest)";
                tracing::warn!(id = %old.id, item = %self.plan.item(old.target).name, "{reason}");
                self.record(
                    &old,
                    OriginRecord::Discarded {
                        reason: reason.into(),
                    },
                );
                Ok(())
            }
            Offer::Refused(env) if queue.is_closed() => {
                // Shutting down: the message stays open in its WAL and comes back at start.
                tracing::debug!(id = %env.id, "queue closed; left for recovery");
                Ok(())
            }
            Offer::Refused(env) if queue.overflow() == Overflow::Block => Err(env),
            Offer::Refused(env) => {
                let reason = "queue full: message refused (Overflow reject)";
                tracing::warn!(id = %env.id, item = %self.plan.item(env.target).name, "{reason}");
                self.record(
                    &env,
                    OriginRecord::Discarded {
                        reason: reason.into(),
                    },
                );
                Ok(())
            }
        }
    }

    /// True when the first-hop queue of `target` here is full and refuses new entries, so
    /// a service should NAK instead of storing the message.
    pub fn refuses(&self, target: ItemId, partition: u64) -> bool {
        let instance = self.plan.item(target).instance_for(partition);
        self.queue(target, instance)
            .is_some_and(|q| q.overflow() == Overflow::Reject && q.len() >= q.capacity())
    }

    // ---- application acknowledgments (AckMode=App) -------------------------------------

    /// Registers that a service will wait for the reply to message `id`.
    pub fn expect_reply(&self, id: MessageId) {
        self.replies.borrow_mut().insert(id, None);
    }

    /// Waits up to `timeout` for the reply to message `id` (registered with
    /// [`Shard::expect_reply`]); `None` when none came in time.
    pub async fn wait_reply(
        &self,
        id: MessageId,
        timeout: std::time::Duration,
    ) -> Option<AppReply> {
        let arrived = async {
            loop {
                if let Some(Some(_)) = self.replies.borrow().get(&id) {
                    return;
                }
                self.replies_ready.notified().await;
            }
        };
        futures_lite::future::or(arrived, glommio::timer::sleep(timeout)).await;
        self.replies.borrow_mut().remove(&id).flatten()
    }

    /// Sends the reply for `env` to the service waiting at its origin, if one waits.
    pub fn send_reply(&self, env: &Envelope, reply: AppReply) {
        if !env.wants_reply {
            return;
        }
        let origin = env.id.origin_shard as usize;
        if origin == self.index {
            self.take_reply(env.id, reply);
        } else {
            self.send_to_origin(origin, ShardMsg::Reply { id: env.id, reply });
        }
    }

    /// Hands a reply that arrived for message `id` to its waiting service; the first reply
    /// wins (a router may have sent the message to several operations).
    pub fn take_reply(&self, id: MessageId, reply: AppReply) {
        if let Some(slot @ None) = self.replies.borrow_mut().get_mut(&id) {
            *slot = Some(reply);
            self.replies_ready.notify_all();
        }
    }

    // ---- ordered acknowledgments (a service on several shards) --------------------------

    /// Registers that a service waits for message `id` (received here) to enter the
    /// queues of its operations before it acknowledges: `hops` is the number of targets
    /// it is delivered to. A router among them replaces its hop with one per target it
    /// routes the message to ([`Shard::routed_ordered`]); an operation's queue taking the
    /// message (or its discard: no instance, overflow `reject`, shutdown) ends one. The
    /// registration ends when the returned guard is dropped.
    pub fn expect_entered(&self, id: MessageId, hops: usize) -> EnteredWait<'_> {
        self.entering.borrow_mut().insert(
            id,
            Entering {
                hops_left: hops as isize,
                waker: None,
            },
        );
        EnteredWait { shard: self, id }
    }

    /// A router here routed the ordered message `id` to `targets` targets: its own hop
    /// becomes one per target.
    pub fn routed_ordered(&self, id: MessageId, targets: usize) {
        self.add_hops(id, targets as isize - 1);
    }

    /// One hop of message `id` (received here) ended.
    fn entered(&self, id: MessageId) {
        let origin = id.origin_shard as usize;
        if origin == self.index {
            self.add_hops(id, -1);
        } else {
            self.send_to_origin(origin, ShardMsg::Entered { id });
        }
    }

    /// [`Shard::entered`] for an ordered envelope that ends here without entering a
    /// queue (no instance, no local queue).
    fn note_entered(&self, env: &Envelope) {
        if env.ordered {
            self.entered(env.id);
        }
    }

    /// The id to report once `env` is in its target's queue: an ordered envelope for an
    /// operation (a router's queue is not where order is decided; the router reports).
    fn entering_of(&self, env: &Envelope) -> Option<MessageId> {
        (env.ordered && !self.plan.item(env.target).is_router()).then_some(env.id)
    }

    /// Message `id` (received here) has `delta` more hops to wait for; wakes its service
    /// when none is left.
    pub fn add_hops(&self, id: MessageId, delta: isize) {
        let mut entering = self.entering.borrow_mut();
        let Some(e) = entering.get_mut(&id) else {
            // The service stopped waiting (timed out, or its connection closed).
            return;
        };
        e.hops_left += delta;
        if e.hops_left <= 0
            && let Some(waker) = e.waker.take()
        {
            waker.wake();
        }
    }

    // ---- recording -------------------------------------------------------------------

    /// Records the outcome of `env` at `env.target`, in the message's origin WAL, and
    /// answers an `AckMode=App` service waiting for it (an operation that has the
    /// downstream ACK sends it with [`Shard::send_reply`] first: the first reply wins).
    pub fn record(&self, env: &Envelope, record: OriginRecord) {
        self.hook_after(env.target, env, &record);
        let reply = match &record {
            OriginRecord::Completed => AppReply::Accepted,
            OriginRecord::Failed { reason }
            | OriginRecord::Suspended { reason }
            | OriginRecord::Discarded { reason } => AppReply::Error(reason.clone()),
        };
        self.send_reply(env, reply);
        let counters = self.counters(env.target);
        let mut facts = None;
        match &record {
            OriginRecord::Completed => {
                bump(&counters.completed);
                self.metrics
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
        if origin == self.index {
            self.records.borrow_mut().push(PendingRecord {
                wal_id: id.wal_id,
                target,
                record,
                facts,
            });
            self.records_ready.notify_all();
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
    fn send_to_origin(&self, origin: usize, msg: ShardMsg) {
        if let Err(crate::ring::Full(msg)) = self.rings.try_push(origin, msg) {
            self.deferred_records.borrow_mut().push((origin, msg));
            self.records_ready.notify_all();
        }
    }

    /// The recorder: appends pending local records in batches, and forwards records whose
    /// ring was full. Runs until [`Shard::close_recorder`] and nothing is pending.
    pub async fn run_recorder(self: Rc<Self>) {
        let mut batch: Vec<PendingRecord> = Vec::new();
        loop {
            let deferred: Vec<(usize, ShardMsg)> = self.deferred_records.take();
            for (origin, msg) in deferred {
                self.rings.push(origin, msg).await;
            }
            std::mem::swap(&mut batch, &mut self.records.borrow_mut());
            if batch.is_empty() {
                if self.recorder_closing.get() && self.deferred_records.borrow().is_empty() {
                    return;
                }
                futures_lite::future::or(
                    self.records_ready.notified(),
                    self.phase_changed.notified(),
                )
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
            let records: Vec<Record<'_>> =
                batch.iter().map(|p| to_wal_record(&self.plan, p)).collect();
            let appended = self.wal.append_many(&records).await;
            drop(records);
            match appended {
                Ok(_) => return self.hold_failures(batch),
                // A storage failure is logged once by the WAL, at its change of state.
                Err(e) if e.is_storage() => {
                    if !self.until_wal_writable(None).await {
                        tracing::warn!(
                            shard = self.index,
                            "{} outcome records not written at shutdown (the WAL is \
                             unavailable): their messages are delivered again at the next start",
                            batch.len()
                        );
                        return;
                    }
                }
                Err(e) => {
                    return tracing::error!(
                        shard = self.index,
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

    /// Puts message `wal_id` (received here) on the held list at `item`.
    pub fn hold(&self, wal_id: u64, item: ItemId, entry: HeldEntry) {
        if !self.held.borrow_mut().hold(wal_id, item, entry) {
            tracing::warn!(
                shard = self.index,
                id = %MessageId { origin_shard: self.index as u16, wal_id },
                item = %self.plan.item(item).name,
                "held list full ({} listed): the message is counted and stays in the WAL, \
                 listed again after a restart once there is room",
                crate::engine::held::HELD_LISTED_MAX
            );
        }
    }

    /// Lets the recorder end once what is pending is written: called when no record can
    /// arrive any more (the dispatcher has stopped).
    pub fn close_recorder(&self) {
        self.recorder_closing.set(true);
        self.records_ready.notify_all();
    }

    /// True when nothing is queued (for a running item), in flight or waiting to be
    /// recorded on this shard.
    pub fn is_idle(&self) -> bool {
        self.busy.get() == 0
            && self.records.borrow().is_empty()
            && self.deferred_records.borrow().is_empty()
            && self.queues.iter().enumerate().all(|(item, instances)| {
                // A paused or disabled item cannot drain its queue: what it holds stays
                // open in the WAL for the next start, and shutdown does not wait for it.
                self.states.get(item as ItemId) != ItemState::Running
                    || instances.iter().flatten().all(|q| q.is_empty())
            })
    }

    // ---- reporting -------------------------------------------------------------------

    pub fn status(&self) -> ShardStatus {
        let items = self
            .plan
            .items
            .iter()
            .filter(|item| item.shards.contains(&self.index))
            .map(|item| {
                let c = self.counters(item.id);
                ItemStatus {
                    item: item.name.clone(),
                    shard: self.index,
                    state: self.states.get(item.id),
                    queued: self.queues[item.id as usize]
                        .iter()
                        .flatten()
                        .map(|q| q.len())
                        .sum(),
                    counters: c.values(),
                    waiting_for_wal: c.wal_waits.get() > 0,
                }
            })
            .collect();
        ShardStatus {
            shard: self.index,
            items,
            held: self.held.borrow().counts(),
            wal_open_messages: self.wal.open_messages(),
            wal_last_lsn: self.wal.last_lsn(),
            wal_state: match self.wal.unavailable() {
                None => "writable".to_string(),
                Some(cause) => format!("unavailable: {cause}"),
            },
            wal_recovery_errors: self.wal_recovery_errors.borrow().clone(),
        }
    }
}

/// Logs a failed append of `item`'s records, unless the storage failed: the WAL logs
/// that once when it becomes unavailable and once when it resumes, not per append.
pub(crate) fn log_append_error(item: &str, error: &WalError) {
    if !error.is_storage() {
        tracing::error!(item = %item, "WAL append failed: {error}");
    }
}

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

/// Why a router fails a message at its hop limit.
pub const HOP_LIMIT_REASON: &str =
    "routing cycle: the message has passed through 32 routers (ROUTER_HOPS_MAX) on this run";

/// True when `env` has passed through as many routers as one message may: the router
/// that has it now records it `Failed` ([`HOP_LIMIT_REASON`]) instead of passing it on.
pub fn hop_limit_reached(env: &Envelope) -> bool {
    env.router_hops >= ROUTER_HOPS_MAX
}

/// Text for WAL metadata: UTF-8 as it is, Latin-1 otherwise (no byte lost).
pub fn text_of(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect()),
    }
}

/// `ADT^A01` from MSH-9.1 and MSH-9.2.
pub fn message_type_of(msg: &Message<'_>) -> String {
    let mut s = text_of(msg.message_type().unwrap_or_default()).into_owned();
    if let Some(event) = msg.trigger_event().filter(|e| !e.is_empty()) {
        s.push('^');
        s.push_str(&text_of(event));
    }
    s
}

/// The partition key: PID-3.1 (the first patient identifier), else MSH-10.
pub fn partition_key<'m>(msg: &Message<'m>) -> &'m [u8] {
    static PID_3_1: std::sync::OnceLock<hie_hl7::Path> = std::sync::OnceLock::new();
    let path = PID_3_1.get_or_init(|| hie_hl7::Path::parse("PID-3.1").expect("valid path"));
    msg.get(path)
        .filter(|v| !v.is_empty())
        .or_else(|| msg.control_id())
        .unwrap_or_default()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::Format;
    use crate::engine::held::HeldList;
    use crate::engine::ingest::envelope;

    /// One shard of a service → operation production, with its WAL in `dir`.
    pub(crate) async fn one_shard(dir: &std::path::Path) -> Rc<Shard> {
        let text = "[production]\nname = \"Held\"\n\n\
             [[item]]\nname = \"In\"\nclass = \"EnsLib.HL7.Service.TCPService\"\n\
             [item.host]\nTargetConfigNames = \"Out\"\n[item.adapter]\nPort = \"1\"\n\n\
             [[item]]\nname = \"Out\"\nclass = \"EnsLib.HL7.Operation.TCPOperation\"\n\
             [item.adapter]\nIPAddress = \"127.0.0.1\"\nPort = \"1\"\n";
        let path = dir.join("p.toml");
        let mut production = crate::config::parse_str(text, &path, Format::Toml)
            .expect("the production reads")
            .production;
        // Resolves the settings and the targets; the findings do not concern this test.
        let _ = crate::config::validate::validate(&mut production, &path, &Default::default());
        let plan = Arc::new(Plan::new(&production, 1));
        let shared = Arc::new(Shared::new(plan));
        let config = hie_persist::WalConfig::default().with_segment_bytes(1 << 20);
        let (wal, _) = Wal::open(dir.join("shard-0"), config).await.expect("WAL");
        let rings = crate::ring::mesh::<ShardMsg>(1, 16)
            .pop()
            .expect("one shard");
        Rc::new(Shard::new(0, shared, Rc::new(wal), rings))
    }

    /// Item 3 of issue #16: past the held list's bound a failed message is counted, not
    /// listed, and the shard goes on recording: the outcomes after it are written too.
    #[test]
    fn a_full_held_list_counts_the_rest_and_recording_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        glommio::LocalExecutor::default().run(async {
            let shard = one_shard(dir.path()).await;
            *shard.held.borrow_mut() = HeldList::new(2);
            let recorder = glommio::spawn_local(Rc::clone(&shard).run_recorder());
            let (source, out) = (0, 1);
            let mut envs = Vec::new();
            for n in 0..6 {
                let bytes =
                    format!("MSH|^~\\&|A|B|C|D|20260101||ADT^A01|H-{n}|P|2.5\rPID|1||P{n}\r");
                let msg = hie_hl7::Message::scan(bytes.as_bytes()).unwrap();
                let (id, targets) = shard.receive(source, &msg).await.unwrap();
                assert_eq!(targets, [out]);
                let name: Arc<str> = Arc::from("In");
                let scan = Some(Arc::new(msg.index()));
                let shared = (Arc::from(bytes.as_bytes()), scan);
                envs.push(envelope(id, shared, source, name, out, b"k"));
            }
            assert_eq!(shard.wal.open_messages(), 6);
            for env in &envs[..4] {
                shard.record(
                    env,
                    OriginRecord::Failed {
                        reason: "no".into(),
                    },
                );
            }
            for env in &envs[4..] {
                shard.record(env, OriginRecord::Completed);
            }
            for _ in 0..500 {
                if shard.wal.open_messages() == 4 && shard.held.borrow().counts().failed == 4 {
                    break;
                }
                glommio::timer::sleep(std::time::Duration::from_millis(2)).await;
            }
            assert_eq!(
                shard.wal.open_messages(),
                4,
                "the completions after the full list"
            );
            let counts = shard.held.borrow().counts();
            assert_eq!((counts.failed, counts.unlisted), (4, 2), "{counts:?}");
            shard.close_recorder();
            recorder.await;
            shard.wal.close().await.unwrap();
        });
    }
}
