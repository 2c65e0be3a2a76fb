//! The kind of the generic routers, `EnsLib.MsgRouter.RoutingEngine` and
//! `EnsLib.MsgRouter.VDocRoutingEngine`, and the typed settings every router shares (the
//! HL7 router, [`super::hl7_routing_engine`], adds settings, not behaviour). Its runtime
//! is [`items::routing_engine`](crate::items::routing_engine).

use crate::config::catalog::{HOST_ALL, PROCESS_HOST, QUEUE_HOST, ROUTER_HOST, SettingSpec};
use crate::config::model::{ItemKind, SettingTarget};
use crate::config::settings::{ItemSettings, Reader, RouterSettings};
use crate::items::kind::{ClassDef, HostKind};

/// The kind.
#[derive(Debug)]
pub struct RoutingEngine;

/// Its registry entry.
pub static KIND: RoutingEngine = RoutingEngine;

impl HostKind for RoutingEngine {
    fn classes(&self) -> &'static [ClassDef] {
        &[
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
        ]
    }

    fn settings(&self) -> &'static [&'static [SettingSpec]] {
        &[ROUTER_HOST, PROCESS_HOST, QUEUE_HOST, HOST_ALL]
    }

    fn resolve(&self, r: &mut Reader<'_>) -> ItemSettings {
        resolve_router(r)
    }
}

/// The typed settings of any router.
pub(super) fn resolve_router(r: &mut Reader<'_>) -> ItemSettings {
    let h = SettingTarget::Host;
    ItemSettings::Router(RouterSettings {
        common: r.common(),
        business_rule_name: r.string(h, "BusinessRuleName"),
        bad_message_handler: r.optional(h, "BadMessageHandler"),
        targets: r.list(h, "TargetConfigNames", false),
        alert_on_bad_message: r.bool(h, "AlertOnBadMessage"),
    })
}
