//! The kind `EnsLib.HL7.MsgRouter.RoutingEngine`: HL7 routing by rules. It runs as every
//! router does ([`super::routing_engine`]) and adds the HL7 router's settings.

use crate::config::catalog::{
    BOOL, H, HOST_ALL, PROCESS_HOST, QUEUE_HOST, ROUTER_HOST, SCHEMA, SettingSpec, TEXT, ValueType,
    no,
};
use crate::config::model::ItemKind;
use crate::config::settings::{ItemSettings, Reader};
use crate::items::kind::{ClassDef, HostKind};

/// The kind.
#[derive(Debug)]
pub struct Hl7RoutingEngine;

/// Its registry entry.
pub static KIND: Hl7RoutingEngine = Hl7RoutingEngine;

/// `EnsLib.HL7.MsgRouter.RoutingEngine` additions.
const HL7_ROUTER_HOST: &[SettingSpec] = &[
    SCHEMA,
    no(
        "LocalFacilityApplication",
        H,
        TEXT,
        "ISC:EnsembleHL7",
        "MSH-3/MSH-4 of generated NAKs",
    ),
    no(
        "AckType",
        H,
        ValueType::OneOf(&["Application", "Commit"]),
        "Application",
        "type of generated NAKs",
    ),
    no("NackCode", H, TEXT, "Error", "code of generated NAKs"),
    no("AddNackERR", H, BOOL, "0", "add an ERR segment to NAKs"),
    no(
        "SearchTableClass",
        H,
        TEXT,
        "",
        "IRIS search table indexing",
    ),
];

impl HostKind for Hl7RoutingEngine {
    fn classes(&self) -> &'static [ClassDef] {
        &[ClassDef {
            class: "EnsLib.HL7.MsgRouter.RoutingEngine",
            kind: ItemKind::Process,
            about: "HL7 routing by rules",
        }]
    }

    fn settings(&self) -> &'static [&'static [SettingSpec]] {
        &[
            HL7_ROUTER_HOST,
            ROUTER_HOST,
            PROCESS_HOST,
            QUEUE_HOST,
            HOST_ALL,
        ]
    }

    fn resolve(&self, r: &mut Reader<'_>) -> ItemSettings {
        super::routing_engine::resolve_router(r)
    }
}
