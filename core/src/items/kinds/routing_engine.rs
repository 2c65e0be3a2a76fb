//! The kind of the generic routers, `EnsLib.MsgRouter.RoutingEngine` and
//! `EnsLib.MsgRouter.VDocRoutingEngine`, and what every router kind shares: the HL7
//! router ([`super::hl7_routing_engine`]) is a [`RoutingEngine`] with other classes and
//! more settings, not other behaviour. Its runtime is
//! [`items::routing_engine`](crate::items::routing_engine).

use std::sync::Arc;

use crate::config::catalog::{HOST_ALL, PROCESS_HOST, QUEUE_HOST, ROUTER_HOST, SettingSpec};
use crate::config::model::{Item, ItemKind, SettingTarget};
use crate::config::response_from::{ResponseFrom, ResponseSettings};
use crate::config::settings::{ItemSettings, Reader};
use crate::config::startup::StartupChecks;
use crate::engine::validation::{Flags, unsupported_flags};
use crate::engine::plan::KindPlan;
use crate::items::kind::{ClassDef, HostKind, PlanContext, Worker, WorkerRun, mismatched};
use crate::items::routing_engine;

/// A router's own settings (where it routes is in [`Routes`](crate::config::settings::Routes)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterSettings {
    /// `BusinessRuleName`: the rule class.
    pub business_rule_name: String,
    /// `ResponseFrom` and the settings that go with it.
    pub responses: ResponseSettings,
    /// `Validation`: what the router checks before its rules
    /// ([`crate::engine::validation`]).
    pub validation: Flags,
    /// `ActOnValidationError`: a refused message is held failed at the router.
    pub act_on_validation_error: bool,
}

/// A router's plan data: what its worker reads besides the plan's routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterPlan {
    pub responses: ResponseSettings,
}

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
        r.settings(|r| RouterSettings {
            business_rule_name: r.string(h, "BusinessRuleName"),
            responses: ResponseSettings {
                from: ResponseFrom::parse(&r.string(h, "ResponseFrom")),
                timeout: r.timeout(h, "ResponseTimeout"),
                targets: r.list(h, "ResponseTargetConfigNames", false),
                forward_generated: r.bool(h, "ForwardGeneratedResponseToTarget"),
            },
            validation: Flags::parse(&r.string(h, "Validation")),
            act_on_validation_error: r.bool(h, "ActOnValidationError"),
        })
    }

    /// A router with no route at all: neither a rule class (`BusinessRuleName`, checked
    /// with the production's routes in `config::routes`) nor `TargetConfigNames` (nor a
    /// `BadMessageHandler`) would complete every message with no target.
    fn check(&self, item: &Item, settings: &ItemSettings, checks: &mut StartupChecks<'_>) {
        let Some(router) = settings.of::<RouterSettings>() else {
            return;
        };
        let routes = &settings.routes;
        if router.business_rule_name.trim().is_empty()
            && routes.targets.is_empty()
            && routes.bad_message_handler.is_none()
        {
            // With a BadMessageHandler every message goes there (no target takes it):
            // routed somewhere an operator sees, so not an error.
            let message = "router has neither BusinessRuleName nor TargetConfigNames (nor a \
                           BadMessageHandler): it would complete every message with no target"
                .to_owned();
            checks.report_item(item, message);
        }
        check_validation(item, checks);
    }

    /// A router's plan data is its response settings; its routes are the plan's.
    fn plan(&self, settings: &ItemSettings, _ctx: &PlanContext<'_>) -> Result<KindPlan, String> {
        let router = settings
            .of::<RouterSettings>()
            .ok_or_else(|| mismatched(self))?;
        Ok(Arc::new(RouterPlan {
            responses: router.responses.clone(),
        }))
    }

    fn run_worker(&self, w: Worker) -> Option<WorkerRun> {
        Some(Box::pin(routing_engine::run(w.shard, w.item, w.queue)))
    }
}

/// A warning naming each `Validation` flag hie does not check (IRIS's segment content,
/// field and table checks): the router runs, checking only `d`, `m` and `z`.
fn check_validation(item: &Item, checks: &mut StartupChecks<'_>) {
    let Some(raw) = item.host_settings.get("Validation") else {
        return;
    };
    let unsupported = unsupported_flags(&raw.value);
    if unsupported.is_empty() {
        return;
    }
    let flags: Vec<String> = unsupported.iter().map(|c| format!("{c:?}")).collect();
    checks.warn(
        item,
        SettingTarget::Host,
        "Validation",
        format!(
            "Validation {:?}: hie does not check flag {}; it checks only d, m and z",
            raw.value.trim(),
            flags.join(", ")
        ),
    );
}
