//! MLLP (Minimal Lower Layer Protocol, HL7 v2 transport): framing, NAKs, the inbound server's
//! frame loop (IRIS HL7 TCP service adapter) on the generic TCP accept loop
//! ([`crate::tcp`]) and the outbound client (IRIS HL7 TCP operation adapter).
//!
//! Connections are generic over a byte stream (`futures_lite::AsyncRead + AsyncWrite`), so
//! TLS wraps the TCP stream without changing the protocol code.

pub mod ack_only;
pub mod client;
pub mod frame;
pub mod nak;
pub mod server;
