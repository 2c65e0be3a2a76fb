//! What defines one kind of item (a business host): the IRIS classes it runs, its setting
//! groups (spec, default, range, doc line), how its raw settings become typed settings
//! (its own type behind [`ItemSettings::of`]), the checks it adds before anything starts,
//! its plan data (behind [`Role::data`](crate::engine::plan::Role::data)), where it
//! listens or connects over TCP, and how it runs on a shard. One file under
//! `items/kinds/` per kind implements [`HostKind`]; the registry, [`kinds`](super::kinds),
//! lists them, and the catalog, validation (so `hie check` and `hie run`), `hie convert`,
//! the generated settings table of `docs/configuration.md` and the run plan read them from
//! there; after validation an item's kind travels in its settings
//! ([`ItemSettings::host`]).
//!
//! Not to be confused with [`ItemKind`] (service, process, operation): that is the role
//! each class of a kind has.
//!
//! Invariants:
//! - A class name belongs to at most one kind, and a kind has at least one class (a
//!   registry test checks both).
//! - [`HostKind::settings`] lists groups most specific first (see `config::catalog`).
//! - [`HostKind::check`] reports through [`StartupChecks`], which names file, line and
//!   item, and makes the finding an error on an enabled item and a warning on a disabled
//!   one: whatever it finds would stop `hie run` or leave the item unable to work.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;

use crate::config::catalog::SettingSpec;
use crate::config::model::{Item, ItemKind};
use crate::config::settings::{ItemSettings, Reader};
use crate::config::startup::StartupChecks;
use crate::engine::plan::{KindPlan, PlanData, PlannedItem};
use crate::engine::runtime::Shard;
use crate::envelope::{Envelope, ItemId};
use crate::items::WorkerExit;
use crate::queue::LocalQueue;

/// One run of a router or operation instance, until it stops or fails.
pub type WorkerRun = Pin<Box<dyn Future<Output = WorkerExit>>>;

/// One router or operation instance on a shard: its item and its queue there.
#[derive(Debug)]
pub struct Worker {
    /// The shard it runs on.
    pub shard: Rc<Shard>,
    /// Its item.
    pub item: ItemId,
    /// The instance's queue.
    pub queue: Rc<LocalQueue<Envelope>>,
}

impl Worker {
    /// The kind's plan data of this worker's item, as `T` (a copy the run owns); `None`
    /// when the item's role holds other data.
    pub fn plan_data<T: PlanData + Clone>(&self) -> Option<T> {
        self.shard.plan().item(self.item).role.data::<T>().cloned()
    }
}

/// What the run plan gives a kind besides an item's settings: what every service of the
/// process shares.
#[derive(Debug)]
pub struct PlanContext<'a> {
    /// The process's inbound buffer budget, shared by every service.
    pub inbound_budget: &'a hie_net::InboundBudget,
}

/// One IRIS class of a kind.
#[derive(Debug, Clone, Copy)]
pub struct ClassDef {
    /// Exact IRIS class name.
    pub class: &'static str,
    /// Service, process or operation.
    pub kind: ItemKind,
    /// One line for `hie check` and the docs.
    pub about: &'static str,
}

/// One kind of item hie runs; see the module header.
pub trait HostKind: Sync {
    /// Its IRIS classes, in the order the docs list them.
    fn classes(&self) -> &'static [ClassDef];

    /// Its setting groups, most specific first.
    fn settings(&self) -> &'static [&'static [SettingSpec]];

    /// Its typed settings, read through `r` (which applies the defaults of
    /// [`HostKind::settings`] and reports bad values at their line).
    fn resolve(&self, r: &mut Reader<'_>) -> ItemSettings;

    /// Checks of its resolved settings that would stop `hie run` from starting or leave
    /// the item unable to work (none by default).
    fn check(&self, _item: &Item, _settings: &ItemSettings, _checks: &mut StartupChecks<'_>) {}

    /// Its plan data, from its typed settings (as [`HostKind::resolve`] made them): what
    /// its runtime takes. The plan gives it the role its class's [`ItemKind`] says
    /// ([`Role::new`](crate::engine::plan::Role::new)); `Err` (a bug of ours, see
    /// `mismatched`) plans the item inert.
    fn plan(&self, settings: &ItemSettings, ctx: &PlanContext<'_>) -> Result<KindPlan, String>;

    /// Where the item listens, for the kinds that listen on TCP (`None` by default): the
    /// port checks, `hie check`'s summary and `hie run`'s `listening` lines read it.
    fn listens(&self, _settings: &ItemSettings) -> Option<Listening> {
        None
    }

    /// The host and port the item connects to, for the kinds that connect out over TCP
    /// (`None` by default): `hie check`'s summary and its host-name look-ups read it.
    fn connects_to<'a>(&self, _settings: &'a ItemSettings) -> Option<(&'a str, u16)> {
        None
    }

    /// One run of `worker`, for the kinds whose role has a queue
    /// ([`Role::has_queue`](crate::engine::plan::Role::has_queue)):
    /// the shard's supervisor runs it again after a failure as the restart policy says.
    /// `None` for the others (the default).
    fn run_worker(&self, _worker: Worker) -> Option<WorkerRun> {
        None
    }

    /// Inbound connections open at `item` now, over all shards, for the kinds that take
    /// connections (`None` by default): the admin API's `hie_item_connections`.
    fn connections_open(&self, _item: &PlannedItem) -> Option<usize> {
        None
    }

    /// Starts the services of `item` on `shard` and returns their supervisor task, for
    /// the kinds that are services; `None` for the others (the default) and for a service
    /// that failed to start (the shard then fails the start, as the service says).
    fn start_service(&self, _shard: &Rc<Shard>, _item: &PlannedItem) -> Option<glommio::Task<()>> {
        None
    }
}

/// Where a service listens on TCP ([`HostKind::listens`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listening {
    /// Address and port (port 0: not given, which validation reports).
    pub address: SocketAddr,
    /// Largest message it takes, in bytes (hie `MaxMessageSize`).
    pub message_bytes_max: u32,
}

/// The plan of settings that are not of the kind that planned them: a bug of ours, kept
/// inert (the item's messages fail visibly) rather than a panic.
pub(crate) fn mismatched(kind: &dyn HostKind) -> String {
    format!("hie bug: settings do not match {kind:?}")
}

impl fmt::Debug for dyn HostKind + '_ {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let classes: Vec<&str> = self.classes().iter().map(|c| c.class).collect();
        write!(f, "HostKind({})", classes.join(", "))
    }
}
