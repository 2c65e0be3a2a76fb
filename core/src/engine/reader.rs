//! [`EngineReader`]: what another thread may ask of a running production without the
//! [`super::RunningEngine`] itself: status, metrics, the scrape, the held list and one
//! held message. It only reads (no item command, resend or discard), so several readers
//! may ask at once, beside the thread that owns the engine and sends commands.
//!
//! Each call goes to the shards through the engine's own [`super::admin::Caller`], with
//! the limits and deadlines of [`super::admin`]; after the engine has stopped, calls
//! answer that the shards have stopped.

use std::sync::Arc;

use crate::engine::EngineStatus;
use crate::engine::admin::{self, Caller, EngineScrape};
use crate::engine::metrics::EngineMetrics;
use crate::engine::operator::{HeldReply, HeldRequest};
use crate::engine::plan::Plan;

/// A handle that reads a running production from any thread (cheap to clone).
#[derive(Debug, Clone)]
pub struct EngineReader {
    calls: Arc<Caller>,
    plan: Arc<Plan>,
}

impl EngineReader {
    pub(crate) fn new(calls: Arc<Caller>, plan: Arc<Plan>) -> Self {
        EngineReader { calls, plan }
    }

    /// The plan being run.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// See [`admin::status`].
    pub fn status(&self) -> EngineStatus {
        admin::status(&self.calls, &self.plan.production)
    }

    /// See [`admin::metrics`].
    pub fn metrics(&self) -> EngineMetrics {
        admin::metrics(&self.calls, &self.plan.production)
    }

    /// See [`admin::scrape`].
    pub fn scrape(&self) -> EngineScrape {
        admin::scrape(&self.calls, &self.plan.production)
    }

    /// Every held message listed on any shard.
    pub fn held_list(&self) -> HeldReply {
        admin::held_list(&self.calls)
    }

    /// One held message of shard `shard` (its record and text, read from the WAL).
    pub fn held_message(&self, shard: usize, wal_id: u64) -> HeldReply {
        admin::held_request(&self.calls, shard, HeldRequest::Show { wal_id })
    }
}
