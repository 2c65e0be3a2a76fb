//! The run plan: a validated [`Production`] turned into what the shards execute.
//!
//! Items get dense ids ([`ItemId`], their index in [`Plan::items`]); names are resolved
//! once, here, so the data path never looks a name up. Placement follows
//! `config::placement` (round robin of item instances over the shards) for services and
//! operations; routers run on every shard (docs/adr/0001).
//!
//! An item disabled in the production (`Enabled="false"`) is planned as if it ran, after
//! the enabled ones in the round robin, and starts `disabled`: its queue exists and
//! keeps, bounded by its `QueueSize` and open in the WAL, what is sent to it until an
//! operator enables it (`hie ctl enable`), as IRIS keeps it queued.
//!
//! An item that cannot run (a class hie does not run) is [`Role::Inert`]: it keeps its
//! id so that messages sent to it fail visibly instead of vanishing.
//!
//! Planning cannot fail: whatever would stop a production from starting is found by
//! validation (`config::validate`), which `hie check` runs too, so the two agree. Nothing
//! here does blocking work: a TCP operation's host name is resolved when it connects
//! (`items::hl7_tcp_operation`), not here.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{self, ItemKind, OverflowStrategy, Production, RestartPolicy, Timeout};
use crate::envelope::ItemId;
use crate::items::kind::{HostKind, PlanContext};
use crate::priority::QueueOrder;
use crate::queue::Overflow;

/// The queue bound used when an item's QueueSize is 0 (unset).
pub const QUEUE_SIZE_DEFAULT: usize = 10_000;

/// What an item does at run time, as the engine sees it: how it is placed and started,
/// and whether it has a queue. What it does besides is its kind's plan data
/// ([`HostKind::plan`]), which only its kind reads ([`Role::data`]).
#[derive(Debug, Clone)]
pub enum Role {
    /// A business service: feeds queues, has none; started by its kind's
    /// [`HostKind::start_service`], placed round robin.
    Service(KindPlan),
    /// A router: a queue and one instance on every shard (docs/adr/0001).
    Router(KindPlan),
    /// An operation: a queue per instance, placed round robin.
    Operation(KindPlan),
    /// Loaded but not run; why, in words.
    Inert(String),
}

impl Role {
    /// The role of an item of `kind` with plan data `data`; an item whose kind cannot be
    /// told is inert.
    pub fn new(kind: ItemKind, data: KindPlan) -> Role {
        match kind {
            ItemKind::Service => Role::Service(data),
            ItemKind::Process => Role::Router(data),
            ItemKind::Operation => Role::Operation(data),
            ItemKind::Unknown => Role::Inert("its kind cannot be told".to_owned()),
        }
    }

    /// True for the roles whose instances take messages from a queue of their own (routers
    /// and operations); services feed queues, they have none.
    pub fn has_queue(&self) -> bool {
        matches!(self, Role::Router(_) | Role::Operation(_))
    }

    /// Its kind's plan data as `T`; `None` when inert or of another type.
    pub fn data<T: PlanData>(&self) -> Option<&T> {
        match self {
            // `**d`: the data, not the `Arc` (which is `PlanData` too).
            Role::Service(d) | Role::Router(d) | Role::Operation(d) => {
                (**d).as_any().downcast_ref()
            }
            Role::Inert(_) => None,
        }
    }
}

/// A kind's plan data, shared by the shards.
pub type KindPlan = Arc<dyn PlanData>;

/// A kind's plan data (one type per kind, in its file): any type that is `Debug`, `Send`
/// and `Sync` is one.
pub trait PlanData: Any + fmt::Debug + Send + Sync {
    /// Itself, to downcast.
    fn as_any(&self) -> &dyn Any;
}

impl<T: Any + fmt::Debug + Send + Sync> PlanData for T {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// One item of the plan.
#[derive(Debug, Clone)]
pub struct PlannedItem {
    pub id: ItemId,
    pub name: String,
    pub class: String,
    pub kind: ItemKind,
    /// The kind that runs it (`items::kinds`); `None` for a class hie does not run.
    pub host: Option<&'static dyn HostKind>,
    pub role: Role,
    /// Where it listens, for a service that listens on TCP and runs
    /// ([`HostKind::listens`]).
    pub listen: Option<SocketAddr>,
    /// Shard of each instance (routers: every shard).
    pub shards: Vec<usize>,
    /// Enabled in the production; a disabled item starts `disabled` (see the module doc).
    pub enabled: bool,
    /// Resolved TargetConfigNames.
    pub targets: Vec<Target>,
    /// A router's resolved `BadMessageHandler`: where a message goes that no target
    /// takes (it is not one of [`PlannedItem::targets`]).
    pub bad_message_handler: Option<Target>,
    /// A router's `AlertOnBadMessage`: alert when it has no target for a message.
    pub alert_on_bad_message: bool,
    pub queue_size: usize,
    pub overflow: Overflow,
    /// `QueueOrder`/`PriorityMessageTypes`: which lane of its queue a message takes.
    pub queue_order: QueueOrder,
    pub alert_on_error: bool,
    /// IRIS `LogTraceEvents`: trace every message (see [`crate::item::TraceEvents`]).
    pub log_trace_events: bool,
    pub restart: RestartPolicy,
    /// A router's compiled `BusinessRuleName` class ([`crate::engine::rules`]); `None`
    /// for a router that forwards to its `TargetConfigNames` and for other items.
    pub rules: Option<std::sync::Arc<crate::engine::rules::RouterRules>>,
    /// A router's `Validation` ([`crate::engine::validation`]); `None` when it checks
    /// nothing, and for other items.
    pub validation: Option<std::sync::Arc<crate::engine::validation::RouterValidation>>,
}

impl PlannedItem {
    /// True for routers, which run on every shard.
    pub fn is_router(&self) -> bool {
        matches!(self.role, Role::Router(_))
    }

    /// The instance that takes messages of partition `partition` (routers: the one
    /// instance on each shard, 0).
    pub fn instance_for(&self, partition: u64) -> usize {
        if self.is_router() || self.shards.is_empty() {
            return 0;
        }
        (partition % self.shards.len() as u64) as usize
    }

    /// The shard of the instance that takes messages of partition `partition`; `None`
    /// for an item that does not run.
    pub fn shard_for(&self, partition: u64, here: usize) -> Option<usize> {
        if self.shards.is_empty() {
            return None;
        }
        if self.is_router() {
            return Some(here);
        }
        Some(self.shards[self.instance_for(partition)])
    }

    /// The instances of this item that run on `shard`.
    pub fn instances_on(&self, shard: usize) -> Vec<usize> {
        if self.is_router() {
            return if self.shards.contains(&shard) {
                vec![0]
            } else {
                Vec::new()
            };
        }
        (0..self.shards.len())
            .filter(|&i| self.shards[i] == shard)
            .collect()
    }
}

/// A target as configured: an item of the plan, or a name that names nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Item(ItemId),
    Missing(String),
}

/// What the shards run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub production: String,
    pub shards: usize,
    pub items: Vec<PlannedItem>,
    by_name: HashMap<String, ItemId>,
}

impl Plan {
    /// Plans `production` over `shards` shards.
    pub fn new(production: &Production, shards: usize) -> Plan {
        let shards = shards.max(1);
        let placed: HashMap<usize, Vec<usize>> = config::placement(production, shards)
            .into_iter()
            .map(|p| (p.item, p.shards))
            .collect();
        let by_name: HashMap<String, ItemId> = production
            .items
            .iter()
            .enumerate()
            .map(|(i, item)| (item.name.clone(), i as ItemId))
            .collect();
        let mut items = Vec::with_capacity(production.items.len());
        // Disabled items take their places after every enabled instance.
        let mut next_disabled: usize = placed
            .iter()
            .filter(|(i, _)| production.items[**i].kind != ItemKind::Process)
            .map(|(_, s)| s.len())
            .sum();
        let resolve = |name: &str| match by_name.get(name) {
            Some(&id) => Target::Item(id),
            None => Target::Missing(name.to_string()),
        };
        let budget = production.engine.inbound_buffer_bytes_max;
        let budget = hie_net::InboundBudget::new(usize::try_from(budget).unwrap_or(usize::MAX));
        let ctx = PlanContext {
            inbound_budget: &budget,
        };
        for (index, item) in production.items.iter().enumerate() {
            let resolved = item.resolved();
            let role = match resolved {
                Some((kind, settings)) => match kind.plan(settings, &ctx) {
                    Ok(data) => Role::new(item.kind, data),
                    Err(why) => Role::Inert(why),
                },
                None => Role::Inert(format!("class {} is not run by hie", item.class)),
            };
            let host = resolved.map(|(kind, _)| kind);
            let shards_of = match (&role, placed.get(&index)) {
                (Role::Inert(_), _) => Vec::new(),
                (Role::Router(_), _) => (0..shards).collect(),
                (_, Some(s)) => s.clone(),
                (_, None) if !item.enabled => {
                    let n = item.pool_size as usize;
                    next_disabled += n;
                    (next_disabled - n..next_disabled)
                        .map(|k| k % shards)
                        .collect()
                }
                (_, None) => Vec::new(),
            };
            let role = if shards_of.is_empty() && !matches!(role, Role::Inert(_)) {
                Role::Inert("disabled".to_string())
            } else {
                role
            };
            let listen = match (&role, resolved) {
                (Role::Service(_), Some((kind, settings))) => {
                    kind.listens(settings).map(|l| l.address)
                }
                _ => None,
            };
            let settings = item.settings.as_ref();
            let routes = settings.map(|s| &s.routes);
            let common = settings.map(|s| &s.common);
            items.push(PlannedItem {
                id: index as ItemId,
                name: item.name.clone(),
                class: item.class.clone(),
                kind: item.kind,
                host,
                role,
                listen,
                shards: shards_of,
                enabled: item.enabled,
                targets: routes
                    .map_or_else(Vec::new, |r| r.targets.iter().map(|t| resolve(t)).collect()),
                bad_message_handler: routes
                    .and_then(|r| r.bad_message_handler.as_deref())
                    .map(resolve),
                alert_on_bad_message: routes.is_some_and(|r| r.alert_on_bad_message),
                queue_size: common
                    .map(|c| c.queue_size as usize)
                    .filter(|&n| n > 0)
                    .unwrap_or(QUEUE_SIZE_DEFAULT),
                overflow: match common.map(|c| c.overflow) {
                    Some(OverflowStrategy::DropOldest) => Overflow::DropOldest,
                    Some(OverflowStrategy::Reject) => Overflow::Reject,
                    _ => Overflow::Block,
                },
                queue_order: common.map(|c| c.queue_order.clone()).unwrap_or_default(),
                alert_on_error: common.is_some_and(|c| c.alert_on_error),
                log_trace_events: item.log_trace_events,
                restart: common.map(|c| c.restart).unwrap_or_default(),
                rules: None,
                validation: None,
            });
        }
        crate::engine::rules::attach(production, &mut items, &resolve);
        crate::engine::validation::attach(production, &mut items);
        Plan {
            production: production.name.clone(),
            shards,
            items,
            by_name,
        }
    }

    /// The item called `name`.
    pub fn item_named(&self, name: &str) -> Option<&PlannedItem> {
        self.by_name.get(name).map(|&id| &self.items[id as usize])
    }

    /// The item with id `id`.
    pub fn item(&self, id: ItemId) -> &PlannedItem {
        &self.items[id as usize]
    }

    /// Items of a role on shard `shard`, with their instance index there.
    pub fn on_shard(&self, shard: usize) -> impl Iterator<Item = &PlannedItem> {
        self.items
            .iter()
            .filter(move |item| item.shards.contains(&shard))
    }
}

/// A `FailureTimeout` as the operations wait it: `None` is forever.
pub fn failure_timeout(t: Timeout) -> Option<Duration> {
    match t {
        Timeout::Forever => None,
        Timeout::Seconds(s) => Some(Duration::from_secs(u64::from(s))),
    }
}
