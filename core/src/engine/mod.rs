//! Running a production: start the shards, recover, open the services, take commands,
//! and shut down in order.
//!
//! Start-up, on every shard at once:
//! 1. open the shard's WAL (`DATA_DIR/shard-N`) and recover it;
//! 2. start the operations, then the routers (their queues exist from here on);
//! 3. re-enqueue every acknowledged, uncompleted message from the WAL, in WAL order;
//! 4. wait until every shard has done so, then open the services.
//!
//! Shutdown ([`RunningEngine::shutdown`], on SIGTERM/SIGINT in `hie run`):
//! 1. services stop taking messages (listeners close, connections finish their frame);
//! 2. queues drain until empty everywhere or the shutdown timeout;
//! 3. routers and operations stop (what is still queued stays open in the WAL);
//! 4. outcome records still travelling to their origin shard are appended, WALs close.

pub mod control;
mod hold;
pub mod plan;
pub mod runtime;
mod shard_main;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam::channel::{Receiver, Sender};
use hie_persist::WalConfig;
use serde::Serialize;

use crate::config::Production;
use crate::engine::control::ItemCommand;
use crate::engine::plan::Plan;
use crate::engine::runtime::{Phase, ShardStatus, Shared};
use crate::envelope::{ItemId, ShardMsg};
use crate::ring::{self, Doorbells, ShardRings};
use crate::shard::{self, ShardError, ShardHandle, ShardLayout};

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
}

/// A command or question for one shard.
#[derive(Debug)]
pub enum ShardControl {
    Item { item: ItemId, command: ItemCommand },
    Status(Sender<ShardStatus>),
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
    control: Vec<Sender<ShardControl>>,
    doorbells: Arc<Doorbells>,
    handles: Vec<ShardHandle<ShardExit>>,
    shutdown_timeout: Duration,
}

/// The per-shard pieces handed to each shard thread once.
type Parts = (ShardRings<ShardMsg>, Receiver<ShardControl>);

impl RunningEngine {
    /// Plans and starts `production`; returns once every service is open.
    pub fn start(production: &Production, options: EngineOptions) -> Result<Self, EngineError> {
        let plan = Arc::new(Plan::new(production, options.layout.shards));
        let data_dir_err = |source| EngineError::DataDir {
            path: options.data_dir.clone(),
            source,
        };
        std::fs::create_dir_all(&options.data_dir).map_err(data_dir_err)?;
        // glommio opens directories by absolute path.
        let data_dir = std::path::absolute(&options.data_dir).map_err(data_dir_err)?;
        let shards = plan.shards;
        let shared = Arc::new(Shared::new(Arc::clone(&plan)));
        let rings = ring::mesh::<ShardMsg>(shards, RING_CAPACITY);
        let doorbells = Arc::clone(rings[0].doorbells());
        let mut control = Vec::with_capacity(shards);
        let mut parts: Vec<Option<Parts>> = Vec::with_capacity(shards);
        for rings in rings {
            let (tx, rx) = crossbeam::channel::unbounded();
            control.push(tx);
            parts.push(Some((rings, rx)));
        }
        let parts = Arc::new(Mutex::new(parts));
        let main = {
            let shared = Arc::clone(&shared);
            let wal = options.wal.clone();
            move |index: usize| {
                let (rings, control_rx) = parts.lock().expect("parts lock")[index]
                    .take()
                    .expect("each shard takes its parts once");
                let shared = Arc::clone(&shared);
                let dir = data_dir.join(format!("shard-{index}"));
                let wal = wal.clone();
                shard_main::run(index, shared, rings, control_rx, dir, wal)
            }
        };
        let handles = shard::start(&options.layout, main)?;
        let engine = RunningEngine {
            shared,
            control,
            doorbells,
            handles,
            shutdown_timeout: options.shutdown_timeout,
        };
        engine.wait_started(options.start_timeout)?;
        Ok(engine)
    }

    fn ring_all(&self) {
        for shard in 0..self.control.len() {
            self.doorbells.inbox(shard).ring();
        }
    }

    fn wait_started(&self, timeout: Duration) -> Result<(), EngineError> {
        let deadline = Instant::now() + timeout;
        let shards = self.control.len();
        loop {
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

    /// The plan being run.
    pub fn plan(&self) -> &Plan {
        &self.shared.plan
    }

    /// Sends `command` to every instance of the item called `item`.
    pub fn command(&self, item: &str, command: ItemCommand) -> Result<(), EngineError> {
        let id = self
            .plan()
            .item_named(item)
            .ok_or_else(|| EngineError::NoSuchItem(item.to_string()))?
            .id;
        for (shard, tx) in self.control.iter().enumerate() {
            // A shard that has stopped has no instance left to command.
            let _ = tx.send(ShardControl::Item { item: id, command });
            self.doorbells.inbox(shard).ring();
        }
        Ok(())
    }

    /// Asks every shard for its status (a shard that does not answer within a second is
    /// left out).
    pub fn status(&self) -> EngineStatus {
        let mut shards = Vec::with_capacity(self.control.len());
        for (shard, tx) in self.control.iter().enumerate() {
            let (reply_tx, reply_rx) = crossbeam::channel::bounded(1);
            if tx.send(ShardControl::Status(reply_tx)).is_err() {
                continue;
            }
            self.doorbells.inbox(shard).ring();
            if let Ok(status) = reply_rx.recv_timeout(Duration::from_secs(1)) {
                shards.push(status);
            }
        }
        EngineStatus {
            production: self.plan().production.clone(),
            shards,
        }
    }

    /// Stops the production in order (see the module doc) and waits for every shard.
    pub fn shutdown(self) -> Vec<ShardExit> {
        let shards = self.control.len();
        let acquire = std::sync::atomic::Ordering::Acquire;
        self.shared.set_phase(Phase::StopServices);
        self.ring_all();
        let deadline = Instant::now() + self.shutdown_timeout;
        while self.shared.services_stopped.load(acquire) < shards
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
        self.handles
            .into_iter()
            .map(|handle| {
                let shard = handle.shard;
                handle.join().unwrap_or_else(|_| ShardExit {
                    shard,
                    left_queued: 0,
                    errors: vec![format!("shard {shard} panicked")],
                })
            })
            .collect()
    }
}
