//! The registry of item kinds: every kind hie runs, one line each, and the IRIS classes
//! hie knows but does not run. Adding a kind is a file under `items/kinds/` and a line in
//! [`KINDS`]; the catalog, validation, the docs table and the run plan read this list.
//!
//! Order matters only for the docs: classes are listed in this order.

use super::kind::{ClassDef, HostKind};
use super::kinds;

/// Every kind of item hie runs.
pub static KINDS: &[&dyn HostKind] = &[
    &kinds::hl7_tcp_service::KIND,
    &kinds::hl7_file_service::KIND,
    &kinds::hl7_routing_engine::KIND,
    &kinds::routing_engine::KIND,
    &kinds::hl7_tcp_operation::KIND,
    &kinds::hl7_file_operation::KIND,
];

/// IRIS library classes hie recognises but does not run (reported as unknown classes).
pub static NOT_RUN: &[ClassDef] = kinds::not_run::CLASSES;

/// The kind that runs `class`; `None` for a class hie does not run.
pub fn kind_of_class(class: &str) -> Option<&'static dyn HostKind> {
    KINDS
        .iter()
        .copied()
        .find(|kind| kind.classes().iter().any(|c| c.class == class))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
