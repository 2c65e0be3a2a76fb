//! The kind of the generic routers, `EnsLib.MsgRouter.RoutingEngine` and
//! `EnsLib.MsgRouter.VDocRoutingEngine`, and what every router kind shares: the HL7
//! router ([`super::hl7_routing_engine`]) is a [`RoutingEngine`] with other classes and
//! more settings, not other behaviour. Its runtime is
//! [`items::routing_engine`](crate::items::routing_engine).

use crate::config::catalog::{HOST_ALL, PROCESS_HOST, QUEUE_HOST, ROUTER_HOST, SettingSpec};
use crate::config::model::{ItemKind, SettingTarget};
use crate::config::settings::{ItemSettings, Reader, RouterSettings};
use crate::engine::plan::Role;
use crate::items::kind::{ClassDef, HostKind, PlanContext, Worker, WorkerRun};
use crate::items::routing_engine;

/// A kind of router: its classes and setting groups.
#[derive(Debug)]
pub struct RoutingEngine {
    /// Its IRIS classes.
    pub(super) classes: &'static [ClassDef],
    /// Its setting groups, most specific first.
    pub(super) settings: &'static [&'static [SettingSpec]],
}

/// Its registry entry.
pub static KIND: RoutingEngine = RoutingEngine {
    classes: &[
        ClassDef {
            class: "EnsLib.MsgRouter.RoutingEngine",
            kind: ItemKind::Process,
            about: "generic routing by rules (Ens.Alert)",
        },
        ClassDef {
            class: "EnsLib.MsgRouter.VDocRoutingEngine",
            kind: ItemKind::Process,
            about: "virtual-document routing by rules",
        },
    ],
    settings: &[ROUTER_HOST, PROCESS_HOST, QUEUE_HOST, HOST_ALL],
};

impl HostKind for RoutingEngine {
    fn classes(&self) -> &'static [ClassDef] {
        self.classes
    }

    fn settings(&self) -> &'static [&'static [SettingSpec]] {
        self.settings
    }

    fn resolve(&self, r: &mut Reader<'_>) -> ItemSettings {
        let h = SettingTarget::Host;
        ItemSettings::Router(RouterSettings {
            common: r.common(),
            business_rule_name: r.string(h, "BusinessRuleName"),
            bad_message_handler: r.optional(h, "BadMessageHandler"),
            targets: r.list(h, "TargetConfigNames", false),
            alert_on_bad_message: r.bool(h, "AlertOnBadMessage"),
        })
    }

    fn plan(&self, _settings: &ItemSettings, _ctx: &PlanContext<'_>) -> Role {
        Role::Router
    }

    fn run_worker(&self, w: Worker) -> Option<WorkerRun> {
        Some(Box::pin(routing_engine::run(w.shard, w.item, w.queue)))
    }
}
