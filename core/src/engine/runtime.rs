//! One shard of a running production: its WAL, its end of the ring mesh, and the parts
//! that own the rest ([`Shard`] lists them): the item slots (queues and hooks), delivery
//! (`delivery.rs`), the outbox to origin shards and the recorder (`outbox.rs`),
//! `AckMode=App` replies (`app_replies.rs`), ordered ACKs (`ordered_acks.rs`), states,
//! metrics and the held list. This module keeps the run's phases, what the shards share,
//! the items' states and hooks, the waits on phase and WAL, idleness and the status.
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
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};

use hie_hl7::{AckBuilder, Message};
use hie_persist::{Wal, WalError};
use serde::Serialize;

use crate::engine::app_replies::AppReplies;
use crate::engine::control::{ItemState, StateWatch};
use crate::engine::held::{HeldCounts, HeldEntry, HeldList};
pub use crate::engine::metrics::ItemCounters;
use crate::engine::metrics::{CounterValues, ShardMetrics};
pub use crate::engine::ordered_acks::EnteredWait;
use crate::engine::ordered_acks::OrderedAcks;
use crate::engine::outbox::Outbox;
use crate::engine::plan::Plan;
use crate::engine::slots::{ItemSlot, ItemSlots};
use crate::envelope::{Envelope, ItemId, OriginRecord, ROUTER_HOPS_MAX, ShardMsg};
use crate::item::{HookContext, ItemHooks};
use crate::notify::Notify;
use crate::queue::LocalQueue;
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

/// One shard's engine state, shared by its tasks through `Rc`: the shard's WAL and rings,
/// and the parts that own the rest (each in its own module, with its limits):
/// - [`ItemSlots`] (`slots.rs`): per item, its queues and hooks here;
/// - [`StateWatch`] (`control.rs`) and [`ShardMetrics`] (`metrics.rs`): per item, its
///   state and its counters and histograms;
/// - delivery (`delivery.rs`): rules only, on the slots' queues and the rings;
/// - [`Outbox`] (`outbox.rs`): records, replies and hops owed to other shards and to
///   this shard's WAL, and the recorder;
/// - [`AppReplies`] (`app_replies.rs`): the `AckMode=App` replies services wait for;
/// - [`OrderedAcks`] (`ordered_acks.rs`): ADR 0006's hop counts;
/// - [`HeldList`] (`held.rs`): failed and suspended messages whose origin is this shard.
///
/// Items reach them through methods, not fields.
#[derive(Debug)]
pub struct Shard {
    index: usize,
    plan: Arc<Plan>,
    shared: Arc<Shared>,
    wal: Rc<Wal>,
    rings: ShardRings<ShardMsg>,
    slots: ItemSlots,
    states: StateWatch,
    /// Per-item counters and latency histograms of this shard.
    metrics: ShardMetrics,
    ack: RefCell<AckBuilder>,
    /// Messages being worked on by routers and operations (not in a queue).
    busy: Cell<usize>,
    /// Rung by the dispatcher when the run's phase changes.
    phase_changed: Notify,
    /// Rung by the WAL when it is writable again after a failed write or sync.
    wal_resumed: Rc<Notify>,
    /// What recovery found missing at start (for the status).
    wal_recovery_errors: RefCell<Vec<String>>,
    outbox: Outbox,
    app_replies: AppReplies,
    ordered_acks: OrderedAcks,
    /// Failed and suspended messages whose origin is this shard.
    held: RefCell<HeldList>,
}

impl Shard {
    pub fn new(
        index: usize,
        shared: Arc<Shared>,
        wal: Rc<Wal>,
        rings: ShardRings<ShardMsg>,
    ) -> Shard {
        let plan = Arc::clone(&shared.plan);
        let items = plan.items.len();
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
            slots: ItemSlots::new(&plan, index),
            states: StateWatch::new(items),
            metrics: ShardMetrics::new(&plan, index),
            ack: RefCell::new(AckBuilder::new()),
            busy: Cell::new(0),
            phase_changed: Notify::new(),
            wal_recovery_errors: RefCell::new(Vec::new()),
            outbox: Outbox::default(),
            app_replies: AppReplies::default(),
            ordered_acks: OrderedAcks::default(),
            held: RefCell::new(HeldList::default()),
            plan,
        }
    }

    // ---- what the shard is and has ----------------------------------------------------

    /// This shard's index.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The production as it runs (the same on every shard, fixed for the run).
    pub fn plan(&self) -> &Arc<Plan> {
        &self.plan
    }

    /// What every shard and the main thread share.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// This shard's WAL.
    pub fn wal(&self) -> &Rc<Wal> {
        &self.wal
    }

    /// This shard's end of the ring mesh.
    pub fn rings(&self) -> &ShardRings<ShardMsg> {
        &self.rings
    }

    /// Item states on this shard (read them; change them with [`Shard::set_state`]).
    pub fn states(&self) -> &StateWatch {
        &self.states
    }

    /// Per-item counters and latency histograms of this shard.
    pub fn metrics(&self) -> &ShardMetrics {
        &self.metrics
    }

    /// The shard's ACK writer, reused for every acknowledgment its services write.
    pub fn ack_builder(&self) -> std::cell::RefMut<'_, AckBuilder> {
        self.ack.borrow_mut()
    }

    /// `n` more messages are being worked on by a router or an operation here (taken off
    /// their queue, not yet passed on or recorded): the shard is not idle meanwhile.
    pub fn work_started(&self, n: usize) {
        self.busy.set(self.busy.get() + n);
    }

    /// `n` messages counted by [`Shard::work_started`] were passed on, recorded or put
    /// back in their queue.
    pub fn work_ended(&self, n: usize) {
        self.busy.set(self.busy.get() - n);
    }

    /// Waits for the next change of the run's phase (rung by the dispatcher).
    pub async fn phase_changed(&self) {
        self.phase_changed.notified().await;
    }

    /// Rings [`Shard::phase_changed`] (the dispatcher, when it sees a new phase).
    pub(crate) fn announce_phase(&self) {
        self.phase_changed.notify_all();
    }

    /// Keeps what recovery found missing at start, for the status.
    pub fn set_wal_recovery_errors(&self, errors: Vec<String>) {
        *self.wal_recovery_errors.borrow_mut() = errors;
    }

    /// Failed and suspended messages whose origin is this shard, to read (list one with
    /// [`Shard::hold`], take one off with [`Shard::release_held`]).
    pub fn held_list(&self) -> std::cell::Ref<'_, HeldList> {
        self.held.borrow()
    }

    /// Takes message `wal_id` off the held list at `item` (an operator resent or
    /// discarded it); `None` when it is not listed there.
    pub fn release_held(&self, wal_id: u64, item: ItemId) -> Option<HeldEntry> {
        self.held.borrow_mut().release(wal_id, item)
    }

    /// Lists `entry` for message `wal_id` at `item`; false when the list is full.
    pub(crate) fn list_held(&self, wal_id: u64, item: ItemId, entry: HeldEntry) -> bool {
        self.held.borrow_mut().hold(wal_id, item, entry)
    }

    pub(crate) fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    pub(crate) fn app_replies(&self) -> &AppReplies {
        &self.app_replies
    }

    pub(crate) fn ordered_acks(&self) -> &OrderedAcks {
        &self.ordered_acks
    }

    /// The queue of instance `instance` of `item`, if that instance runs on this shard.
    pub fn queue(&self, item: ItemId, instance: usize) -> Option<Rc<LocalQueue<Envelope>>> {
        self.slots.get(item).queue(instance).cloned()
    }

    /// Item `item`'s slot on this shard (its queues and hooks here), to read.
    pub fn slot(&self, item: ItemId) -> &ItemSlot {
        self.slots.get(item)
    }

    /// Every queue of this shard.
    pub fn local_queues(&self) -> impl Iterator<Item = &Rc<LocalQueue<Envelope>>> {
        self.slots.iter().flat_map(|(_, slot)| slot.queues())
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
        let hooks = self.slots.get(item).hooks();
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

    /// True when nothing is queued (for a running item), in flight or waiting to be
    /// recorded on this shard.
    pub fn is_idle(&self) -> bool {
        self.busy.get() == 0
            && self.outbox.is_empty()
            && self.slots.iter().all(|(item, slot)| {
                // A paused or disabled item cannot drain its queue: what it holds stays
                // open in the WAL for the next start, and shutdown does not wait for it.
                self.states.get(item) != ItemState::Running || slot.queues().all(|q| q.is_empty())
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
                    queued: self.slots.get(item.id).queued(),
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
        shard_of(dir, text).await
    }

    /// One shard of production `text` (TOML), read as if from `dir` (its rule and DTL
    /// classes are found there), with its WAL in `dir`.
    pub(crate) async fn shard_of(dir: &std::path::Path, text: &str) -> Rc<Shard> {
        let path = dir.join("p.toml");
        let mut production = crate::config::parse_str(text, &path, Format::Toml)
            .expect("the production reads")
            .production;
        production.engine.source_dir = Some(dir.to_path_buf());
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
            assert_eq!(shard.wal().open_messages(), 6);
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
                if shard.wal().open_messages() == 4 && shard.held_list().counts().failed == 4 {
                    break;
                }
                glommio::timer::sleep(std::time::Duration::from_millis(2)).await;
            }
            assert_eq!(
                shard.wal().open_messages(),
                4,
                "the completions after the full list"
            );
            let counts = shard.held_list().counts();
            assert_eq!((counts.failed, counts.unlisted), (4, 2), "{counts:?}");
            shard.close_recorder();
            recorder.await;
            shard.wal().close().await.unwrap();
        });
    }
}
