//! One file per kind of item: its IRIS classes, setting groups, typed settings and
//! start-up checks (see [`HostKind`](super::kind::HostKind)), listed in
//! [`registry`](super::registry).

pub mod hl7_file_operation;
pub mod hl7_file_service;
pub mod hl7_routing_engine;
pub mod hl7_tcp_operation;
pub mod hl7_tcp_service;
pub mod not_run;
pub mod routing_engine;
