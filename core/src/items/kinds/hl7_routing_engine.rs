//! The kind `EnsLib.HL7.MsgRouter.RoutingEngine`: HL7 routing by rules. It runs as every
//! router does ([`super::routing_engine`]) and adds the HL7 router's settings.

use super::routing_engine::RoutingEngine;
use crate::config::catalog::{
    BOOL, H, HOST_ALL, PROCESS_HOST, QUEUE_HOST, ROUTER_HOST, SCHEMA, SettingSpec, TEXT, ValueType,
    no,
};
use crate::config::model::ItemKind;
use crate::items::kind::ClassDef;

/// Its registry entry.
pub static KIND: RoutingEngine = RoutingEngine {
    classes: &[ClassDef {
        class: "EnsLib.HL7.MsgRouter.RoutingEngine",
        kind: ItemKind::Process,
        about: "HL7 routing by rules",
    }],
    settings: &[
        HL7_ROUTER_HOST,
        ROUTER_HOST,
        PROCESS_HOST,
        QUEUE_HOST,
        HOST_ALL,
    ],
};

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
