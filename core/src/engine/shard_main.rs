//! The life of one shard, from opening its WAL to closing it (see the phases in
//! [`super`]), with the two tasks every shard runs for as long as it lives: the
//! dispatcher (rings and control tasks in) and the recorder (outcome records out to
//! the WAL).

use std::cell::Cell;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crossbeam_channel::Receiver;
use hie_persist::{DeliveryState, Record, Recovery, Wal, WalConfig};

use crate::engine::ShardExit;
use crate::engine::admin::{Holds, ShardContext};
use crate::engine::adopt;
use crate::engine::control::ItemState;
use crate::engine::held::{HeldEntry, HeldKind};
use crate::engine::hold::HoldLists;
use crate::engine::ingest::{Rebuilt, copies};
use crate::engine::metrics::REACTOR_PROBE_INTERVAL;
use crate::engine::runtime::{DRAIN_BATCH_MAX, Phase, Shard, Shared};
use crate::engine::shard_call::{self, ShardTask};
use crate::engine::supervise;
use crate::envelope::{Envelope, ItemId, MessageId, ShardMsg};
use crate::items::requeue;
use crate::ring::ShardRings;

/// How often a waiting shard looks at the other shards' progress (start-up barrier,
/// shutdown barrier, idle reports).
const POLL: Duration = Duration::from_millis(2);

/// How often the dispatcher offers again the envelopes held for full `block` queues.
const BLOCKED_RETRY: Duration = Duration::from_millis(1);

/// Longest a shard waits, once the run reaches `Stop`, for the routers and operations of
/// the other shards to stop (their last outcome records for this shard's WAL are on their
/// way until then). Past it the shard logs an ERROR and closes its WAL anyway: a record a
/// stuck shard sends later is not appended, so its message stays open in this WAL and is
/// delivered again at the next start (at least once), as after a crash.
pub const WORKERS_STOP_WAIT_MAX: Duration = Duration::from_secs(20);

/// A target instance of the dispatcher's hold lists: item and instance.
type HoldKey = (ItemId, usize);

/// Runs shard `index` until the production stops.
pub async fn run(
    index: usize,
    shared: Arc<Shared>,
    rings: ShardRings<ShardMsg>,
    control: Receiver<ShardTask<ShardContext>>,
    dir: PathBuf,
    orphans: Vec<PathBuf>,
    wal_config: WalConfig,
) -> ShardExit {
    let mut exit = ShardExit {
        shard: index,
        ..ShardExit::default()
    };
    let (wal, mut recovery) = match Wal::open(&dir, wal_config.clone()).await {
        Ok(opened) => opened,
        Err(e) => {
            let message = format!(
                "shard {index}: cannot open the WAL in {}: {e}",
                dir.display()
            );
            shared.fail(message.clone());
            exit.errors.push(message);
            return exit;
        }
    };
    log_recovery(index, &recovery);
    for orphan in orphans {
        match adopt::adopt(&wal, &mut recovery, index, &orphan, wal_config.clone()).await {
            Ok(0) => tracing::info!(
                shard = index,
                "nothing open in {}, a shard that does not run now",
                orphan.display()
            ),
            Ok(moved) => tracing::warn!(
                shard = index,
                moved,
                "re-placed the open messages of {}, a shard that does not run now",
                orphan.display()
            ),
            Err(message) => {
                shared.fail(message.clone());
                exit.errors.push(message);
                let _ = wal.close().await;
                return exit;
            }
        }
    }
    let shard = Rc::new(Shard::new(index, Arc::clone(&shared), Rc::new(wal), rings));
    shard.set_wal_recovery_errors(
        recovery
            .stats
            .lost
            .iter()
            .map(ToString::to_string)
            .collect(),
    );
    shard.init_items();
    let done = Rc::new(Cell::new(false));
    let holds: Holds = Rc::default();
    let dispatcher = glommio::spawn_local(dispatch(
        Rc::clone(&shard),
        control,
        Rc::clone(&holds),
        Rc::clone(&done),
    ));
    let recorder = glommio::spawn_local(Rc::clone(&shard).run_recorder());
    glommio::spawn_local(reactor_probe(Rc::clone(&shard))).detach();

    let workers = supervise::start_workers(&shard);
    recover(&shard, recovery).await;
    shared.recovered.fetch_add(1, Ordering::AcqRel);
    while shared.recovered.load(Ordering::Acquire) < shared.plan.shards && !failed(&shared) {
        glommio::timer::sleep(POLL).await;
    }
    let services = if failed(&shared) {
        Vec::new()
    } else {
        start_services(&shard).await
    };
    shared.started.fetch_add(1, Ordering::AcqRel);

    shard.until_phase(Phase::StopServices).await;
    for service in services {
        service.await;
    }
    shared.services_stopped.fetch_add(1, Ordering::AcqRel);

    // Drain: report whether this shard is idle until the main thread says stop.
    while shard.phase() < Phase::Stop {
        let idle = shard.is_idle() && !shard.rings().has_inbound() && holds_idle(&shard, &holds);
        shared.idle[index].store(idle, Ordering::Release);
        futures_lite::future::or(glommio::timer::sleep(POLL), shard.phase_changed()).await;
    }

    // Stop routers and operations; what is still queued stays open in the WAL.
    for queue in shard.local_queues() {
        exit.left_queued += queue.drain_all().len();
        queue.close();
    }
    for worker in workers {
        worker.await;
    }
    shared.workers_stopped.fetch_add(1, Ordering::AcqRel);
    if !until_workers_stopped(&shared, WORKERS_STOP_WAIT_MAX).await {
        let error = format!(
            "shard {index}: the routers and operations of another shard did not stop within \
             {WORKERS_STOP_WAIT_MAX:?}; outcome records it sends later are not appended (their \
             messages stay open in the WAL and are delivered again at the next start)"
        );
        tracing::error!("{error}");
        exit.errors.push(error);
    }
    // Every operation everywhere has stopped: the last outcome records are in the rings.
    glommio::timer::sleep(POLL).await;
    done.set(true);
    shard.rings().doorbells().inbox(index).ring();
    dispatcher.await;
    shard.close_recorder();
    recorder.await;
    shard.teardown_items();
    if let Err(e) = shard.wal().close().await {
        exit.errors
            .push(format!("shard {index}: closing the WAL: {e}"));
    }
    exit
}

/// True when nothing held waits for a running item (a paused or disabled item's held
/// envelopes stay open in the WAL, as its queue does, and shutdown does not wait for them).
/// Sleeps [`REACTOR_PROBE_INTERVAL`] again and again, noting how late each wake-up comes
/// (reactor stalls, `hie_shard_reactor_stalls_total`), until the shard stops. Detached:
/// the executor drops it when the shard's run ends.
async fn reactor_probe(shard: Rc<Shard>) {
    while shard.phase() < Phase::Stop {
        let asleep = std::time::Instant::now();
        glommio::timer::sleep(REACTOR_PROBE_INTERVAL).await;
        let woke = std::time::Instant::now();
        let late = (woke - asleep).saturating_sub(REACTOR_PROBE_INTERVAL);
        shard.metrics().note_probe(woke, late);
    }
}

fn holds_idle(shard: &Shard, holds: &Holds) -> bool {
    holds
        .borrow()
        .keys()
        .all(|&(item, _)| shard.states().get(item) != ItemState::Running)
}

/// Waits up to `timeout` until the routers and operations of every shard have stopped
/// (a shard whose thread died never stops its workers: it is not waited for); false when
/// the time ran out first.
async fn until_workers_stopped(shared: &Shared, timeout: Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    let stopped = || {
        shared.workers_stopped.load(Ordering::Acquire) + shared.dead.load(Ordering::Acquire)
            >= shared.plan.shards
    };
    while !stopped() {
        if std::time::Instant::now() >= deadline {
            return false;
        }
        glommio::timer::sleep(POLL).await;
    }
    true
}

fn failed(shared: &Shared) -> bool {
    shared.failed.load(Ordering::Acquire)
}

fn log_recovery(index: usize, recovery: &Recovery) {
    let stats = &recovery.stats;
    let pending: usize = recovery.targets.values().map(Vec::len).sum();
    tracing::info!(
        shard = index,
        segments = stats.segments,
        closed_segments_not_read = stats.segments_closed_skipped,
        records = stats.records,
        open_messages = recovery.messages.len(),
        pending_deliveries = pending,
        unrouted = recovery.unrouted.len(),
        "WAL recovered"
    );
    if stats.torn_bytes_dropped > 0 {
        tracing::warn!(
            shard = index,
            bytes = stats.torn_bytes_dropped,
            "WAL: torn tail dropped"
        );
    }
    for span in &stats.corrupt {
        tracing::error!(
            shard = index,
            "WAL: corrupt span skipped at {:?} ({} bytes)",
            span.location,
            span.span_bytes
        );
    }
}

/// Re-enqueues what this shard's WAL says was acknowledged and not completed.
///
/// Recovery never waits for room in a queue: what it delivers was acknowledged before
/// and is in memory already, and a target that cannot take it (a disabled operation,
/// one whose downstream is down) would stop the start for ever. Its deliveries to this
/// shard's queues go in all at once at the end, past the `QueueSize` bound
/// ([`Recovered`]); the other shards' dispatchers take theirs without bound while the
/// production starts ([`held_at_bound`]).
async fn recover(shard: &Rc<Shard>, mut recovery: Recovery) {
    let mut here = Recovered::default();
    let mut rebuilt = Rebuilt::default();
    let plan = Arc::clone(shard.plan());
    let id_of = |wal_id| MessageId {
        origin_shard: shard.index() as u16,
        wal_id,
    };
    // Never routed: route again from the receiving item's targets.
    for wal_id in std::mem::take(&mut recovery.unrouted) {
        let Some(message) = recovery.messages.get(&wal_id) else {
            continue;
        };
        let Some(source) = plan.item_named(&message.source) else {
            tracing::error!(
                "recovered message {wal_id} names a source item that no longer exists: {}",
                message.source
            );
            continue;
        };
        let env = rebuilt.envelope(id_of(wal_id), message, source.id, source.id);
        let targets = match shard.enqueue_for(wal_id, &source.targets).await {
            Ok(targets) => targets,
            Err(e) => {
                tracing::error!("recovery: cannot record routing of message {wal_id}: {e}");
                continue;
            }
        };
        for next in copies(env, &targets) {
            here.deliver(shard, next).await;
        }
    }
    // Owed deliveries, per target in enqueue order.
    let mut redelivered = 0usize;
    for (target_name, deliveries) in std::mem::take(&mut recovery.targets) {
        let target = plan.item_named(&target_name);
        for delivery in deliveries {
            let Some(message) = recovery.messages.get(&delivery.message_id) else {
                continue;
            };
            let id = id_of(delivery.message_id);
            let Some(target) = target else {
                tracing::error!(id = %id, "recovery: target {target_name} is no longer in the production");
                let record = Record::Discarded {
                    message_id: delivery.message_id,
                    target: &target_name,
                    reason: "the target is no longer in the production",
                };
                if let Err(e) = shard.wal().append(&record).await {
                    tracing::error!(id = %id, "recovery: cannot record the discard: {e}");
                }
                continue;
            };
            match &delivery.state {
                DeliveryState::Queued => {
                    let source = plan.item_named(&message.source).map_or(target.id, |s| s.id);
                    let env = rebuilt.envelope(id, message, source, target.id);
                    here.deliver(shard, env).await;
                    redelivered += 1;
                }
                DeliveryState::Suspended { reason } | DeliveryState::Failed { reason } => {
                    let kind = match &delivery.state {
                        DeliveryState::Failed { .. } => HeldKind::Failed,
                        _ => HeldKind::Suspended,
                    };
                    let entry = HeldEntry {
                        kind,
                        reason: reason.clone(),
                        at_us: delivery.state_us,
                        message_type: message.message_type.clone(),
                        control_id: message.control_id.clone(),
                    };
                    shard.hold(delivery.message_id, target.id, entry);
                }
            }
        }
    }
    here.enqueue(shard);
    if redelivered > 0 {
        tracing::info!(
            shard = shard.index(),
            redelivered,
            "recovery re-enqueued messages"
        );
    }
}

/// Recovered deliveries for this shard's queues, in recovery order, until
/// [`Recovered::enqueue`].
#[derive(Debug, Default)]
struct Recovered {
    local: Vec<Envelope>,
}

impl Recovered {
    /// Keeps `env` for [`Recovered::enqueue`] when its target's instance is here, and
    /// delivers it otherwise (over a ring, or recorded for an item that does not run).
    async fn deliver(&mut self, shard: &Shard, env: Envelope) {
        let target = shard.plan().item(env.target);
        if target.shard_for(env.partition, shard.index()) == Some(shard.index()) {
            self.local.push(env);
        } else {
            shard.deliver(env).await;
        }
    }

    /// Puts the kept envelopes into their queues, in order after one another and ahead of
    /// anything queued meanwhile, whatever the queues' bounds (see [`recover`]).
    fn enqueue(self, shard: &Shard) {
        for env in self.local.into_iter().rev() {
            let instance = shard.plan().item(env.target).instance_for(env.partition);
            match shard.queue(env.target, instance) {
                Some(queue) => requeue(shard, &queue, env),
                None => {
                    tracing::error!(id = %env.id, "recovery: no local queue for item {}", env.target)
                }
            }
        }
    }
}

/// Opens this shard's services (each kind's [`HostKind::start_service`]); returns their
/// supervisor tasks (they end when services stop). A TCP service that cannot bind its
/// port at start-up fails the start; one disabled in the production binds when it is
/// enabled.
///
/// [`HostKind::start_service`]: crate::items::kind::HostKind::start_service
async fn start_services(shard: &Rc<Shard>) -> Vec<glommio::Task<()>> {
    shard
        .plan()
        .on_shard(shard.index())
        .filter_map(|item| item.host?.start_service(shard, item))
        .collect()
}

/// The dispatcher: moves envelopes from the rings into local queues, hands outcome
/// records to the recorder, spawns control tasks ([`shard_call`]) and announces phase changes.
///
/// It never waits on a full queue: an envelope whose `block` queue is full goes to that
/// target's hold list, with every later envelope for the same target, and the lists are
/// offered again every [`BLOCKED_RETRY`]. Deliveries for other items, outcome records and
/// replies go on meanwhile. Only while a hold list is at its bound (the target's
/// `QueueSize`) are the rings left undrained, so that backpressure reaches the sending
/// shards with bounded memory here; commands (`hie ctl enable` for a disabled operation
/// whose queue filled up) and phase changes are handled throughout.
async fn dispatch(
    shard: Rc<Shard>,
    control: Receiver<ShardTask<ShardContext>>,
    holds: Holds,
    done: Rc<Cell<bool>>,
) {
    let mut inbound: Vec<ShardMsg> = Vec::with_capacity(DRAIN_BATCH_MAX);
    let mut seen = shard.phase();
    let context = ShardContext {
        shard: Rc::clone(&shard),
        holds: Rc::clone(&holds),
    };
    loop {
        shard_call::spawn_waiting(&control, &context);
        let phase = shard.phase();
        if phase != seen {
            seen = phase;
            shard.announce_phase();
        }
        let (moved, empty, at_bound) = {
            let mut held = holds.borrow_mut();
            let moved = move_inbound(&shard, &mut held, &mut inbound);
            (moved, held.is_empty(), held_at_bound(&shard, &held))
        };
        if done.get() && !moved && empty {
            return;
        }
        if at_bound {
            // No notification says a queue has room: look again shortly.
            glommio::timer::sleep(BLOCKED_RETRY).await;
        } else if moved {
            glommio::yield_if_needed().await;
        } else if !empty {
            futures_lite::future::or(
                glommio::timer::sleep(BLOCKED_RETRY),
                shard.rings().wait_inbound(),
            )
            .await;
        } else {
            shard.rings().wait_inbound().await;
        }
    }
}

/// Offers the held envelopes again, then (unless a hold list is at its bound) moves one
/// batch from the rings; true when the batch was not empty.
fn move_inbound(
    shard: &Shard,
    held: &mut HoldLists<HoldKey, Envelope>,
    inbound: &mut Vec<ShardMsg>,
) -> bool {
    held.release(|env| shard.offer_local(env));
    if held_at_bound(shard, held) {
        return false;
    }
    shard
        .rings()
        .drain(DRAIN_BATCH_MAX, |_, msg| inbound.push(msg));
    let moved = !inbound.is_empty();
    for msg in inbound.drain(..) {
        match msg {
            ShardMsg::Deliver(env) => offer_or_hold(shard, held, env),
            ShardMsg::Record {
                id,
                target,
                record,
                facts,
            } => shard.record_at_origin(id, target, record, facts),
            ShardMsg::Reply { id, from, reply } => shard.take_reply(id, from, reply),
            ShardMsg::Entered { id } => shard.ordered_acks().add_hops(id, -1),
        }
    }
    moved
}

/// True when a hold list is at its bound and the rings must wait. Not during start-up:
/// what arrives then is what the other shards recover, already in their memory and
/// acknowledged long ago, and a shard that stopped draining could leave another's
/// recovery waiting for ever on a target that cannot take it (a disabled operation whose
/// queue is full).
fn held_at_bound(shard: &Shard, held: &HoldLists<HoldKey, Envelope>) -> bool {
    shard.phase() >= Phase::Running && held.at_bound()
}

/// Offers `env` to its queue, or holds it: behind the envelopes already held for the same
/// target instance (FIFO), or because its `block` queue is full.
fn offer_or_hold(shard: &Shard, held: &mut HoldLists<HoldKey, Envelope>, env: Envelope) {
    let target = shard.plan().item(env.target);
    let key = (env.target, target.instance_for(env.partition));
    if held.holds(&key) {
        held.push(key, target.queue_size, env);
    } else if let Err(env) = shard.offer_local(env) {
        held.push(key, target.queue_size, env);
    }
}

#[cfg(test)]
mod tests {
    use hie_persist::{MessageMeta, Targets};

    use super::*;
    use crate::engine::runtime::tests::one_shard;

    #[test]
    fn the_wait_for_the_other_shards_workers_ends_at_its_deadline() {
        let dir = tempfile::tempdir().unwrap();
        glommio::LocalExecutor::default().run(async {
            let shard = one_shard(dir.path()).await;
            let mut plan = (**shard.plan()).clone();
            plan.shards = 2;
            let shared = Shared::new(Arc::new(plan));
            shared.workers_stopped.store(1, Ordering::Release);
            let wait = until_workers_stopped(&shared, Duration::from_millis(20));
            let bounded = futures_lite::future::or(wait, async {
                glommio::timer::sleep(Duration::from_secs(10)).await;
                true
            });
            assert!(
                !bounded.await,
                "one shard's workers never stop: the wait gives up"
            );
            shared.dead.store(1, Ordering::Release);
            assert!(
                until_workers_stopped(&shared, Duration::from_secs(10)).await,
                "a dead shard is not waited for"
            );
            shard.wal().close().await.unwrap();
        });
    }

    #[test]
    fn a_created_message_is_recovered_into_its_targets_queues_as_it_was_made() {
        let dir = tempfile::tempdir().unwrap();
        glommio::LocalExecutor::default().run(async {
            let shard = one_shard(dir.path()).await;
            let made = b"MSH|^~\\&|R|F|D|F|1||ADT^A08|C1|P|2.5\rPID|1||P9\r";
            let id = shard.wal().next_message_id();
            let created = Record::Created {
                message_id: id,
                parent: 7,
                source: "In",
                meta: MessageMeta {
                    message_type: "ADT^A08",
                    control_id: "C1",
                    partition_key: "P9",
                },
                targets: Targets::List(&["Out"]),
                bytes: made,
            };
            shard.wal().append(&created).await.unwrap();
            shard.wal().close().await.unwrap();
            let config = WalConfig::default().with_segment_bytes(1 << 20);
            let (wal, recovery) = Wal::open(dir.path().join("shard-0"), config).await.unwrap();
            recover(&shard, recovery).await;
            let out = shard.plan().item_named("Out").unwrap().id;
            let queue = shard.queue(out, 0).expect("Out runs here");
            let env = queue.try_pop().expect("redelivered from its own record");
            assert_eq!(&*env.bytes, made, "as it was made");
            assert_eq!(env.id.wal_id, id);
            let msg = env.message().expect("scanned once at recovery");
            assert_eq!(msg.control_id(), Some(&b"C1"[..]));
            assert!(queue.try_pop().is_none());
            wal.close().await.unwrap();
        });
    }
}
