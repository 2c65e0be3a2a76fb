//! MLLP (Minimal Lower Layer Protocol, HL7 v2 transport): framing, the inbound server
//! (IRIS HL7 TCP service adapter) and the outbound client (IRIS HL7 TCP operation adapter).
//!
//! Connections are generic over a byte stream (`futures_lite::AsyncRead + AsyncWrite`), so
//! TLS wraps the TCP stream without changing the protocol code.

pub mod ack_only;
pub mod busy;
pub mod client;
mod conns;
pub mod frame;
pub mod limits;
pub mod nak;
pub mod readiness;
pub mod server;
#[cfg(test)]
mod test_support;
pub mod wake_gate;
