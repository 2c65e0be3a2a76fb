//! The registry of item kinds: one file per kind of item (its IRIS classes, setting
//! groups, typed settings, start-up checks, plan and spawn: see
//! [`HostKind`](super::kind::HostKind)), and the list of them. Adding a kind is a file
//! here and its line in the `registry!` list below (which declares its module and lists
//! it in [`KINDS`]); the catalog, validation (`hie check`, `hie run`), `hie convert`, the
//! docs table and the run plan read this list, and everything after validation reaches
//! an item's kind through its settings ([`ItemSettings::host`]).
//!
//! [`ItemSettings::host`]: crate::config::ItemSettings::host
//!
//! Order matters only for the docs: classes are listed in this order.

pub mod not_run;
#[cfg(test)]
mod one_file_kind;

use super::kind::{ClassDef, HostKind};

/// Declares the module of each kind (named as its file) and lists its `KIND` in
/// [`KINDS`], in the order given.
macro_rules! registry {
    ($($kind:ident),* $(,)?) => {
        $(pub mod $kind;)*

        /// Every kind of item hie runs.
        pub static KINDS: &[&dyn HostKind] = &[$(&$kind::KIND),*];
    };
}

// The registry: one line per kind.
registry! {
    hl7_tcp_service,
    hl7_file_service,
    hl7_routing_engine,
    routing_engine,
    hl7_tcp_operation,
    hl7_file_operation,
}

/// IRIS library classes hie recognises but does not run (reported as unknown classes).
pub static NOT_RUN: &[ClassDef] = not_run::CLASSES;

/// The kind that runs `class`; `None` for a class hie does not run.
pub fn kind_of_class(class: &str) -> Option<&'static dyn HostKind> {
    class_in(KINDS, class).map(|(kind, _)| kind)
}

/// The kind of `registry` that runs `class`, with its definition of the class.
pub fn class_in(
    registry: &[&'static dyn HostKind],
    class: &str,
) -> Option<(&'static dyn HostKind, &'static ClassDef)> {
    registry.iter().find_map(|&kind| {
        let def = kind.classes().iter().find(|c| c.class == class)?;
        Some((kind, def))
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::catalog;
    use crate::config::model::{Item, ItemKind, SettingTarget};
    use crate::config::settings::resolve;
    use crate::engine::plan::Role;
    use crate::items::kind::PlanContext;

    #[test]
    fn every_class_belongs_to_one_kind_and_every_kind_has_a_class() {
        let mut seen = std::collections::HashSet::new();
        for kind in KINDS {
            assert!(!kind.classes().is_empty(), "{kind:?}");
            for class in kind.classes() {
                assert!(seen.insert(class.class), "{} twice", class.class);
            }
        }
        for class in NOT_RUN {
            assert!(seen.insert(class.class), "{} twice", class.class);
        }
    }

    #[test]
    fn services_route_by_their_targets_and_routers_by_theirs_the_bad_message_handler_and_response_targets()
     {
        for kind in KINDS {
            for class in kind.classes() {
                let expected: &[&str] = match class.kind {
                    ItemKind::Service => &["TargetConfigNames"],
                    ItemKind::Process => &[
                        "TargetConfigNames",
                        "BadMessageHandler",
                        "ResponseTargetConfigNames",
                    ],
                    _ => &[],
                };
                assert_eq!(catalog::routed_by(*kind), expected, "{}", class.class);
            }
        }
    }

    #[test]
    fn every_kind_plans_the_settings_it_resolves_and_only_services_have_no_queue() {
        let budget = hie_net::InboundBudget::new(1 << 20);
        let ctx = PlanContext {
            inbound_budget: &budget,
        };
        for kind in KINDS {
            for class in kind.classes() {
                let item = Item::new("X", class.class);
                let settings = resolve(&item, *kind, Path::new("p"), &mut Vec::new());
                let data = kind.plan(&settings, &ctx);
                assert!(data.is_ok(), "{}: {data:?}", class.class);
                let role = Role::new(class.kind, data.unwrap());
                assert!(!matches!(role, Role::Inert(_)), "{}: {role:?}", class.class);
                let service = class.kind == ItemKind::Service;
                assert_eq!(role.has_queue(), !service, "{}", class.class);
                let queue_settings = catalog::spec(*kind, SettingTarget::Host, "QueueSize");
                assert_eq!(queue_settings.is_some(), !service, "{}", class.class);
            }
        }
    }
}
