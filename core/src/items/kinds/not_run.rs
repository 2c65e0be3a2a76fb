//! IRIS library classes hie recognises but does not run yet (or ever): an item of one is
//! reported as a class hie does not run, with the line below, and needs `--allow-unknown`.
//! Running one of them means a kind of its own (a file beside this one and a line in the
//! registry), and removing it from this list.

use crate::config::model::ItemKind::{self, Operation, Process, Service};
use crate::items::kind::ClassDef;

const fn known(class: &'static str, kind: ItemKind, about: &'static str) -> ClassDef {
    ClassDef { class, kind, about }
}

/// The classes, in the order the docs list them.
pub const CLASSES: &[ClassDef] = &[
    known(
        "EnsLib.EMail.AlertOperation",
        Operation,
        "alerts by e-mail (not yet in hie; AlertOnError writes ALERT lines to the log)",
    ),
    known(
        "EnsLib.HL7.Service.HTTPService",
        Service,
        "HL7 over HTTP, inbound (not yet in hie)",
    ),
    known(
        "EnsLib.HL7.Service.SOAPService",
        Service,
        "HL7 over SOAP, inbound (not in hie)",
    ),
    known(
        "EnsLib.HL7.Service.FTPService",
        Service,
        "HL7 files over FTP, inbound (not in hie)",
    ),
    known(
        "EnsLib.HL7.Service.TCPAckInService",
        Service,
        "HL7 ACKs inbound for a TCP operation (not in hie)",
    ),
    known(
        "EnsLib.HL7.Operation.HTTPOperation",
        Operation,
        "HL7 over HTTP, outbound (not yet in hie)",
    ),
    known(
        "EnsLib.HL7.Operation.SOAPOperation",
        Operation,
        "HL7 over SOAP, outbound (not in hie)",
    ),
    known(
        "EnsLib.HL7.Operation.FTPOperation",
        Operation,
        "HL7 files over FTP, outbound (not in hie)",
    ),
    known(
        "EnsLib.HL7.Operation.TCPAckOutOperation",
        Operation,
        "HL7 ACKs outbound (not in hie)",
    ),
    known(
        "EnsLib.HTTP.GenericService",
        Service,
        "generic HTTP inbound (not yet in hie)",
    ),
    known(
        "EnsLib.HTTP.GenericOperation",
        Operation,
        "generic HTTP outbound (not yet in hie)",
    ),
    known(
        "EnsLib.File.PassthroughService",
        Service,
        "non-HL7 files inbound (not yet in hie)",
    ),
    known(
        "EnsLib.File.PassthroughOperation",
        Operation,
        "non-HL7 files outbound (not yet in hie)",
    ),
    known(
        "EnsLib.JavaGateway.Service",
        Service,
        "IRIS Java gateway (not in hie)",
    ),
    known(
        "EnsLib.JavaGateway.Initiator",
        Service,
        "IRIS Java gateway starter (not in hie)",
    ),
    known(
        "EnsLib.SQL.Operation.GenericOperation",
        Operation,
        "SQL outbound (not in hie)",
    ),
    known(
        "EnsLib.SQL.Service.GenericService",
        Service,
        "SQL inbound (not in hie)",
    ),
    known(
        "Ens.Activity.Operation.Local",
        Operation,
        "IRIS activity monitor (not in hie)",
    ),
    known(
        "HS.FHIRServer.Interop.Service",
        Service,
        "HealthShare FHIR server interop (not in hie)",
    ),
    known(
        "HS.FHIRServer.Interop.Operation",
        Operation,
        "HealthShare FHIR server interop (not in hie)",
    ),
    known(
        "HS.FHIR.DTL.Util.HC.SDA3.FHIR.Process",
        Process,
        "HealthShare SDA3 to FHIR (not in hie)",
    ),
    known(
        "HS.Util.Trace.Operations",
        Operation,
        "HealthShare trace sink (not in hie)",
    ),
];
