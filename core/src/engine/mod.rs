//! Running a production: start the shards, recover, open the services, take commands,
//! and shut down in order.
//!
//! Start-up, on every shard at once:
//! 1. open the shard's WAL (`DATA_DIR/shard-N`) and recover it, adopting the WALs of
//!    shards that ran before and do not now ([`adopt`]: fewer shards than last time);
//! 2. start the operations, then the routers (their queues exist from here on);
//! 3. re-enqueue every acknowledged, uncompleted message from the WAL, in WAL order;
//! 4. wait until every shard has done so, then open the services.
//!
//! Shutdown ([`RunningEngine::shutdown`], on SIGTERM/SIGINT in `hie run`):
//! 1. services stop taking messages (listeners close, connections finish their frame);
//! 2. queues drain until empty everywhere or the shutdown timeout;
//! 3. routers and operations stop (what is still queued stays open in the WAL);
//! 4. outcome records still travelling to their origin shard are appended, WALs close.

pub mod admin;
mod adopt;
pub mod app_replies;
pub mod control;
pub mod delivery;
pub mod held;
mod hold;
pub mod ingest;
pub mod made;
pub mod metrics;
pub mod operator;
pub mod options;
pub mod ordered_acks;
pub mod outbox;
pub mod overrides;
pub mod plan;
pub mod reader;
pub mod responses;
pub mod ruled;
pub mod rules;
pub mod runtime;
pub mod shard_call;
pub(crate) mod shard_main;
pub mod slots;
pub(crate) mod supervise;
pub mod validation;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use hie_persist::WalConfig;
use serde::Serialize;

use crate::config::Production;
use crate::engine::admin::{Caller, ShardContext};
use crate::engine::control::ItemCommand;
use crate::engine::metrics::{EngineMetrics, LatencyReport};
use crate::engine::operator::{HeldReply, HeldRequest};
use crate::engine::overrides::Overrides;
use crate::engine::plan::Plan;
use crate::engine::runtime::{Phase, ShardStatus, Shared};
use crate::engine::shard_call::{CallError, ShardCall, ShardTask};
use crate::envelope::{ItemId, ShardMsg};
use crate::ring::{self, Doorbells, ShardRings};
use crate::shard::{self, ShardError, ShardHandle, ShardLayout};

/// How long shutdown waits, past `--shutdown-timeout`, for the other shards to end once
/// one shard's thread has died: one of theirs may wait for ever on the dead shard's full
/// ring. Those still running then are left to the process exit (their WALs keep every
/// acknowledged message for the next start).
pub const STOP_AFTER_DEATH_WAIT: Duration = Duration::from_secs(5);

/// How long shutdown waits, past `--shutdown-timeout`, for every shard to close its WAL
/// once the run reaches `Stop`, when no shard died. A shard still running then is
/// reported as an error and left to the process exit: its WAL keeps every acknowledged
/// message for the next start. Longer than [`shard_main::WORKERS_STOP_WAIT_MAX`], so that
/// a shard waiting for a stuck one still closes its own WAL in time.
pub const SHARD_STOP_WAIT_MAX: Duration = Duration::from_secs(30);

/// Capacity of each ring between two shards, in envelopes.
pub const RING_CAPACITY: usize = 4096;

/// How a production runs on this machine.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Where each shard keeps its WAL (`shard-N` below it).
    pub data_dir: PathBuf,
    pub layout: ShardLayout,
    pub wal: WalConfig,
    /// How long shutdown waits for queues to drain (IRIS ShutdownTimeout, default 120 s).
    pub shutdown_timeout: Duration,
    /// How long start-up waits for every shard to recover and open its services.
    pub start_timeout: Duration,
}

/// Why a production could not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Shards(#[from] ShardError),
    #[error("cannot create the data directory {}: {source}", path.display())]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the production did not start:\n  {}", .0.join("\n  "))]
    Start(Vec<String>),
    #[error("no item named {0:?}")]
    NoSuchItem(String),
    #[error("item {item:?} is not run ({why}); change the production and restart")]
    NotRun { item: String, why: String },
    #[error("the item overrides: {0}")]
    Overrides(String),
    #[error(transparent)]
    Call(#[from] CallError),
}

/// The operator's overrides in `data_dir`, keeping only items of `plan` (the others are
/// reported and dropped at the next write).
fn load_overrides(plan: &Plan, data_dir: &std::path::Path) -> Result<Overrides, EngineError> {
    let mut overrides = Overrides::load(data_dir).map_err(EngineError::Overrides)?;
    for name in overrides.disabled() {
        match plan.item_named(name) {
            None => {
                tracing::warn!(item = %name, "disabled by hie ctl, but the production has no such item; forgotten")
            }
            Some(item) => match &item.role {
                plan::Role::Inert(why) => {
                    tracing::info!(item = %name, "disabled by hie ctl, and not run anyway: {why}");
                }
                _ => {
                    tracing::info!(item = %name, "starts disabled (hie ctl disable; `hie ctl enable` starts it)")
                }
            },
        }
    }
    overrides.retain(|name| plan.item_named(name).is_some());
    Ok(overrides)
}

/// What one shard hands back when it stops.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ShardExit {
    pub shard: usize,
    /// Messages still queued when the drain timed out (they stay open in the WAL).
    pub left_queued: usize,
    pub errors: Vec<String>,
}

/// The status of the whole production.
#[derive(Debug, Clone, Serialize)]
pub struct EngineStatus {
    pub production: String,
    pub shards: Vec<ShardStatus>,
}

/// A production running on its shards.
#[derive(Debug)]
pub struct RunningEngine {
    shared: Arc<Shared>,
    /// Runs tasks on the shards (control, status, metrics; see [`shard_call`]); shared
    /// with the [`reader::EngineReader`]s.
    calls: Arc<Caller>,
    doorbells: Arc<Doorbells>,
    handles: Vec<ShardHandle<ShardExit>>,
    /// Each shard's index when its thread ends ([`RunningEngine::ended`]).
    ended: Receiver<usize>,
    /// What the shards whose thread died before shutdown left ([`RunningEngine::shard_ended`]).
    dead: Vec<ShardExit>,
    shutdown_timeout: Duration,
    /// Items an operator disabled (kept in the data directory).
    overrides: Mutex<Overrides>,
}

/// How long a held-list request waits for its shard (a `show` or `resend` reads the WAL).
pub const HELD_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The per-shard pieces handed to each shard thread once: its rings, its control
/// channel, and the WAL directories of shards that do not run now, for it to adopt.
type Parts = (
    ShardRings<ShardMsg>,
    Receiver<ShardTask<ShardContext>>,
    Vec<PathBuf>,
);

impl RunningEngine {
    /// Plans and starts `production`; returns once every service is open.
    pub fn start(production: &Production, options: EngineOptions) -> Result<Self, EngineError> {
        Self::start_shards(production, options, |_, shard| shard)
    }

    /// [`RunningEngine::start`], each shard running `around(index, its main)`: the main
    /// itself in a run; tests put a failure around it.
    fn start_shards<A, Fut>(
        production: &Production,
        options: EngineOptions,
        around: A,
    ) -> Result<Self, EngineError>
    where
        A: Fn(usize, std::pin::Pin<Box<dyn std::future::Future<Output = ShardExit>>>) -> Fut
            + Send
            + Clone
            + 'static,
        Fut: std::future::Future<Output = ShardExit> + 'static,
    {
        let plan = Arc::new(Plan::new(production, options.layout.shards));
        let data_dir_err = |source| EngineError::DataDir {
            path: options.data_dir.clone(),
            source,
        };
        // Patient data: 0700 whatever the umask (the WAL keeps its files 0600).
        hie_persist::private::create_private_dir(&options.data_dir).map_err(data_dir_err)?;
        // glommio opens directories by absolute path.
        let data_dir = std::path::absolute(&options.data_dir).map_err(data_dir_err)?;
        let shards = plan.shards;
        let orphans = adopt::orphans(&data_dir, shards).map_err(data_dir_err)?;
        let overrides = load_overrides(&plan, &data_dir)?;
        let mut shared = Shared::new(Arc::clone(&plan));
        // Disabled in the production (its messages wait for `hie ctl enable`) unless an
        // operator enabled it, or kept disabled by an operator.
        shared.start_disabled = plan
            .items
            .iter()
            .map(|item| overrides.starts_disabled(&item.name, item.enabled))
            .collect();
        let shared = Arc::new(shared);
        let rings = ring::mesh::<ShardMsg>(shards, RING_CAPACITY);
        let doorbells = Arc::clone(rings[0].doorbells());
        let mut control = Vec::with_capacity(shards);
        let mut parts: Vec<Option<Parts>> = Vec::with_capacity(shards);
        for (rings, orphans) in rings.into_iter().zip(orphans) {
            let (tx, rx) = shard_call::channel();
            control.push(tx);
            parts.push(Some((rings, rx, orphans)));
        }
        let parts = Arc::new(Mutex::new(parts));
        let main = {
            let shared = Arc::clone(&shared);
            let wal = options.wal.clone();
            move |index: usize| {
                let (rings, control_rx, orphans) = parts.lock().expect("parts lock")[index]
                    .take()
                    .expect("each shard takes its parts once");
                let shared = Arc::clone(&shared);
                let dir = data_dir.join(format!("shard-{index}"));
                let wal = wal.clone();
                around(
                    index,
                    Box::pin(shard_main::run(
                        index, shared, rings, control_rx, dir, orphans, wal,
                    )),
                )
            }
        };
        // Each shard's thread reports its end once.
        let (ended_tx, ended) = crossbeam_channel::bounded(shards);
        let handles = shard::start(&options.layout, ended_tx, main)?;
        let mut engine = RunningEngine {
            shared,
            calls: Arc::new(admin::Caller::new(control, Arc::clone(&doorbells))),
            doorbells,
            handles,
            ended,
            dead: Vec::new(),
            shutdown_timeout: options.shutdown_timeout,
            overrides: Mutex::new(overrides),
        };
        engine.wait_started(options.start_timeout)?;
        Ok(engine)
    }

    fn ring_all(&self) {
        for shard in 0..self.calls.shards() {
            self.doorbells.inbox(shard).ring();
        }
    }

    fn wait_started(&mut self, timeout: Duration) -> Result<(), EngineError> {
        let deadline = Instant::now() + timeout;
        let shards = self.calls.shards();
        loop {
            if let Ok(shard) = self.ended.try_recv() {
                let why = self.shard_ended(shard);
                self.shared
                    .fail(format!("shard {shard} ended during start-up: {why}"));
                break;
            }
            if self
                .shared
                .failed
                .load(std::sync::atomic::Ordering::Acquire)
            {
                break;
            }
            if self
                .shared
                .started
                .load(std::sync::atomic::Ordering::Acquire)
                == shards
            {
                self.shared.set_phase(Phase::Running);
                self.ring_all();
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.shared
                    .fail(format!("start-up took longer than {timeout:?}"));
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let errors = self.shared.errors.lock().expect("errors lock").clone();
        self.shared.set_phase(Phase::Stop);
        self.ring_all();
        Err(EngineError::Start(errors))
    }

    /// Receives a shard's index when its thread ends. Before [`RunningEngine::shutdown`]
    /// that is a shard that died (a bug): hand it to [`RunningEngine::shard_ended`], then
    /// shut down.
    pub fn ended(&self) -> &Receiver<usize> {
        &self.ended
    }

    /// Notes that shard `shard`'s thread ended before shutdown (the others stop without
    /// waiting for it) and returns why: its panic, or what it reported.
    pub fn shard_ended(&mut self, shard: usize) -> String {
        let release = std::sync::atomic::Ordering::Release;
        self.shared
            .dead
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        // Nothing of it can drain any more: its messages are in its WAL.
        self.shared.idle[shard].store(true, release);
        let why = match self.handles.iter().position(|h| h.shard == shard) {
            None => "its thread is not known".to_string(),
            Some(i) => match self.handles.remove(i).join() {
                Err(panic) => format!("it panicked: {}", shard::panic_text(panic.as_ref())),
                Ok(exit) if exit.errors.is_empty() => "its main task returned".to_string(),
                Ok(exit) => exit.errors.join("; "),
            },
        };
        self.dead.push(ShardExit {
            shard,
            left_queued: 0,
            errors: vec![format!("shard {shard} ended unexpectedly: {why}")],
        });
        why
    }

    /// The plan being run.
    pub fn plan(&self) -> &Plan {
        &self.shared.plan
    }

    /// True when `item` started disabled because an operator had disabled it.
    pub fn started_disabled(&self, item: ItemId) -> bool {
        self.shared.start_disabled.get(item as usize) == Some(&true)
    }

    /// Applies `command` to every instance of the item called `item`, returning once every
    /// running shard has. Enable, disable and restart are kept in the data directory first
    /// (see [`overrides`]).
    pub fn command(&self, item: &str, command: ItemCommand) -> Result<(), EngineError> {
        let planned = self
            .plan()
            .item_named(item)
            .ok_or_else(|| EngineError::NoSuchItem(item.to_string()))?;
        if let plan::Role::Inert(why) = &planned.role {
            return Err(EngineError::NotRun {
                item: item.to_string(),
                why: why.clone(),
            });
        }
        let id = planned.id;
        let disabled = match command {
            ItemCommand::Disable => Some(true),
            ItemCommand::Enable | ItemCommand::Restart => Some(false),
            ItemCommand::Pause | ItemCommand::Resume => None,
        };
        if let Some(disabled) = disabled {
            self.overrides
                .lock()
                .expect("overrides lock")
                .set_disabled(item, disabled)
                .map_err(EngineError::Overrides)?;
        }
        admin::command(&self.calls, id, command)?;
        Ok(())
    }

    /// Runs `task` on shard `shard` as a task of its own (the shard's dispatcher does not
    /// wait for it); its output is the answer. See [`shard_call`] for the limits.
    pub fn on_shard<T, F, Fut>(&self, shard: usize, task: F) -> Result<ShardCall<T>, CallError>
    where
        T: Send + 'static,
        F: FnOnce(&ShardContext) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = T> + 'static,
    {
        self.calls.call(shard, task)
    }

    /// Asks every shard at once for its status (a shard that does not answer within
    /// [`admin::STATUS_TIMEOUT`] is left out).
    pub fn status(&self) -> EngineStatus {
        admin::status(&self.calls, &self.plan().production)
    }

    /// Every held message listed on any shard.
    pub fn held_list(&self) -> HeldReply {
        admin::held_list(&self.calls)
    }

    /// Sends `request` to the held list of `shard` and waits for the answer.
    pub fn held_request(&self, shard: usize, request: HeldRequest) -> HeldReply {
        admin::held_request(&self.calls, shard, request)
    }

    /// Every item's counters and latency histograms, merged over the shards.
    pub fn metrics(&self) -> EngineMetrics {
        admin::metrics(&self.calls, &self.plan().production)
    }

    /// What each item has done lately (see [`admin::activity`]).
    pub fn activity(&self) -> Vec<admin::ItemActivity> {
        admin::activity(&self.calls)
    }

    /// Every shard's WAL and executor counters (see [`admin::engine_stats`]).
    pub fn engine_stats(&self) -> Vec<admin::ShardEngineStats> {
        admin::engine_stats(&self.calls)
    }

    /// A handle that reads this production from another thread (see [`reader`]).
    pub fn reader(&self) -> reader::EngineReader {
        reader::EngineReader::new(Arc::clone(&self.calls), Arc::clone(&self.shared.plan))
    }

    /// Everything `/metrics` shows of the shards, in one round (see [`admin::scrape`]).
    pub fn scrape(&self) -> admin::EngineScrape {
        admin::scrape(&self.calls, &self.plan().production)
    }

    /// The latency percentiles of every item's stages (or of the item named `item`).
    pub fn histograms(&self, item: Option<&str>) -> Result<LatencyReport, EngineError> {
        if let Some(name) = item
            && self.plan().item_named(name).is_none()
        {
            return Err(EngineError::NoSuchItem(name.to_string()));
        }
        Ok(self.metrics().report(item))
    }

    /// Stops the production in order (see the module doc) and waits for every shard.
    pub fn shutdown(self) -> Vec<ShardExit> {
        let shards = self.calls.shards();
        let acquire = std::sync::atomic::Ordering::Acquire;
        self.shared.set_phase(Phase::StopServices);
        self.ring_all();
        let deadline = Instant::now() + self.shutdown_timeout;
        let dead = self.dead.len();
        while self.shared.services_stopped.load(acquire) + dead < shards
            && !self.shared.failed.load(acquire)
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(2));
        }
        self.shared.set_phase(Phase::Drain);
        self.ring_all();
        // Idle everywhere twice in a row: nothing was in a ring between the two looks.
        let mut idle_looks = 0;
        while Instant::now() < deadline && idle_looks < 2 {
            std::thread::sleep(Duration::from_millis(5));
            let idle = self.shared.idle.iter().all(|i| i.load(acquire));
            idle_looks = if idle { idle_looks + 1 } else { 0 };
        }
        if idle_looks < 2 {
            tracing::warn!(
                "shutdown timeout ({:?}) reached with messages still queued; they stay in the WAL",
                self.shutdown_timeout
            );
        }
        self.shared.set_phase(Phase::Stop);
        self.ring_all();
        let mut exits = self.dead;
        let join = |handle: ShardHandle<ShardExit>| {
            let shard = handle.shard;
            handle.join().unwrap_or_else(|panic| ShardExit {
                shard,
                left_queued: 0,
                errors: vec![format!(
                    "shard {shard} panicked: {}",
                    shard::panic_text(panic.as_ref())
                )],
            })
        };
        // A shard that does not stop (one may wait for ever on a dead shard's full ring) is
        // waited for a bounded time.
        let died = !exits.is_empty();
        let wait = if died {
            STOP_AFTER_DEATH_WAIT
        } else {
            SHARD_STOP_WAIT_MAX
        };
        let deadline = Instant::now().max(deadline) + wait;
        let mut running = self.handles;
        while !running.is_empty() {
            let Ok(shard) = self.ended.recv_deadline(deadline) else {
                break;
            };
            if let Some(i) = running.iter().position(|h| h.shard == shard) {
                exits.push(join(running.remove(i)));
            }
        }
        for handle in running {
            let shard = handle.shard;
            let after = if died {
                " after another shard died"
            } else {
                ""
            };
            let error = format!(
                "shard {shard} did not stop within {wait:?} of the shutdown timeout{after}; \
                 its WAL keeps its messages"
            );
            tracing::error!("{error}");
            exits.push(ShardExit {
                shard,
                left_queued: 0,
                errors: vec![error],
            });
        }
        exits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Format, LoadOptions};
    use crate::envelope::ROUTER_HOPS_MAX;
    use std::path::Path;

    /// A production whose routers send to each other. `hie check` (and the loading `hie
    /// run` does) refuses such a cycle; routing rules can still form one at run time, so
    /// the engine is started here from the production as written.
    fn cycle_production(input: &Path) -> Production {
        let text = format!(
            "[production]\nname = \"Cycle\"\n\n\
             [[item]]\nname = \"FilesIn\"\nclass = \"EnsLib.HL7.Service.FileService\"\n\
             [item.host]\nTargetConfigNames = \"R1\"\n\
             [item.adapter]\nFilePath = \"{}\"\nCallInterval = \"1\"\n\n\
             [[item]]\nname = \"R1\"\nclass = \"EnsLib.HL7.MsgRouter.RoutingEngine\"\n\
             [item.host]\nTargetConfigNames = \"R2\"\n\n\
             [[item]]\nname = \"R2\"\nclass = \"EnsLib.HL7.MsgRouter.RoutingEngine\"\n\
             [item.host]\nTargetConfigNames = \"R1\"\n",
            input.display()
        );
        let path = input.join("cycle.toml");
        let mut production = crate::config::parse_str(&text, &path, Format::Toml)
            .expect("the production reads")
            .production;
        // Resolves the settings; the cycle it reports is what this test is about.
        let _ = crate::config::validate::validate(&mut production, &path, &LoadOptions::default());
        production
    }

    fn sum(
        status: &EngineStatus,
        item: &str,
        counter: impl Fn(&runtime::ItemStatus) -> u64,
    ) -> u64 {
        status
            .shards
            .iter()
            .flat_map(|s| &s.items)
            .filter(|i| i.item == item)
            .map(&counter)
            .sum()
    }

    /// Options for an engine of `shards` unpinned shards with its data under `dir`.
    fn test_options(dir: &std::path::Path, shards: usize, shutdown: Duration) -> EngineOptions {
        EngineOptions {
            data_dir: dir.join("data"),
            layout: ShardLayout {
                shards,
                cpus: None,
                io_memory_bytes: shard::IO_MEMORY_BYTES_DEFAULT,
            },
            wal: WalConfig::default().with_segment_bytes(1 << 20),
            shutdown_timeout: shutdown,
            start_timeout: Duration::from_secs(30),
        }
    }

    #[test]
    fn a_routing_cycle_fails_the_message_at_the_hop_limit_and_lists_it_as_failed() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in");
        std::fs::create_dir(&input).unwrap();
        let options = test_options(dir.path(), 1, Duration::from_secs(5));
        let engine = RunningEngine::start(&cycle_production(&input), options).expect("starts");
        let msg = "MSH|^~\\&|A|B|C|D|20260101120000||ADT^A01|HOP-1|P|2.5\rPID|1||P1\r";
        std::fs::write(input.join("m.hl7"), msg).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            let status = engine.status();
            let failed = sum(&status, "R1", |i| i.counters.failed)
                + sum(&status, "R2", |i| i.counters.failed);
            if failed > 0 && status.shards[0].held.failed > 0 || Instant::now() > deadline {
                break status;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let processed = sum(&status, "R1", |i| i.counters.processed)
            + sum(&status, "R2", |i| i.counters.processed);
        let failed =
            sum(&status, "R1", |i| i.counters.failed) + sum(&status, "R2", |i| i.counters.failed);
        assert_eq!(failed, 1, "{status:#?}");
        assert_eq!(
            processed,
            u64::from(ROUTER_HOPS_MAX) + 1,
            "passed on {ROUTER_HOPS_MAX} times, failed at the next router: {status:#?}"
        );
        // A failed message stays open in the WAL, on the failed list, for an operator to
        // resend or discard.
        assert_eq!(
            status.shards[0].held.failed, 1,
            "listed as failed: {status:#?}"
        );
        assert_eq!(status.shards[0].wal_open_messages, 1, "kept in the WAL");
        let held = engine.held_list().expect("the held list");
        assert!(
            held.to_string().contains("routing cycle"),
            "the reason is listed: {held}"
        );
        std::thread::sleep(Duration::from_millis(100));
        let later = engine.status();
        assert_eq!(
            sum(&later, "R1", |i| i.counters.processed)
                + sum(&later, "R2", |i| i.counters.processed),
            processed,
            "it goes round no more"
        );
        let exits = engine.shutdown();
        assert!(exits.iter().all(|e| e.errors.is_empty()), "{exits:?}");
    }

    /// A shard thread that dies while the production runs (here a panic put around its
    /// main, as a bug would cause in a debug build) is reported at once with its panic;
    /// the other shards then stop within the shutdown timeout and report no error.
    #[test]
    fn a_dead_shard_is_reported_and_the_others_stop_in_bounded_time() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in");
        std::fs::create_dir(&input).unwrap();
        let options = test_options(dir.path(), 2, Duration::from_secs(1));
        let (die_tx, die_rx) = crossbeam_channel::unbounded::<()>();
        let around = move |index: usize, main| {
            let die_rx = die_rx.clone();
            async move {
                let die = async {
                    while index != 1 || die_rx.try_recv().is_err() {
                        glommio::timer::sleep(Duration::from_millis(2)).await;
                    }
                    panic!("shard 1 hit a bug");
                };
                futures_lite::future::or(main, die).await
            }
        };
        let mut engine =
            RunningEngine::start_shards(&cycle_production(&input), options, around).unwrap();
        assert!(engine.ended().try_recv().is_err(), "every shard runs");
        die_tx.send(()).unwrap();
        let shard = engine
            .ended()
            .recv_timeout(Duration::from_secs(10))
            .unwrap();
        assert_eq!(shard, 1);
        let why = engine.shard_ended(shard);
        assert!(why.contains("shard 1 hit a bug"), "{why}");
        let started = Instant::now();
        let exits = engine.shutdown();
        assert!(
            started.elapsed() < Duration::from_secs(1) + STOP_AFTER_DEATH_WAIT,
            "{:?}",
            started.elapsed()
        );
        let errors = |shard: usize| {
            exits
                .iter()
                .filter(|e| e.shard == shard)
                .flat_map(|e| e.errors.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(errors(0), Vec::<String>::new(), "{exits:?}");
        assert_eq!(errors(1).len(), 1, "{exits:?}");
        assert!(errors(1)[0].contains("ended unexpectedly"), "{exits:?}");
    }

    #[test]
    fn the_hop_limit_reason_names_the_limit() {
        assert!(
            runtime::HOP_LIMIT_REASON.contains(&ROUTER_HOPS_MAX.to_string()),
            "{}",
            runtime::HOP_LIMIT_REASON
        );
    }
}
