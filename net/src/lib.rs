//! hie-net: MLLP framing, the inbound server and the outbound client on glommio io_uring
//! sockets.
//!
//! - [`mllp::frame`]: decoder over a reused buffer, encoder.
//! - [`mllp::limits`]: the inbound byte budget, a service's connection table, the
//!   refused-connection log's rate limit.
//! - [`mllp::busy`]: non-blocking reads, waited for a short budget in the shard's
//!   readiness set ([`mllp::readiness`]) before parking, which spares a busy connection a
//!   cross-core wake-up per message.
//! - [`mllp::wake_gate`]: polls a glommio operation only after it was woken, so a long wait
//!   (an `accept`) in a task woken by other futures does not pile up the task's wakers.
//!
//! This crate knows MLLP and sockets, not items nor IRIS policy: the engine (hie-core)
//! plugs in through the server's frame handler, and decides what a client's outcome means
//! (IRIS `ReplyCodeActions` lives in the engine).

pub mod error;
pub mod mllp;

pub use error::MllpError;
pub use mllp::ack_only::AckOnlyHandler;
pub use mllp::busy::{BUSY_POLL_DEFAULT, BusyReader, TryRead};
pub use mllp::client::{
    ClientConfig, ClientStats, Connector, MllpClient, NoReplyReason, ReplyOutcome, TcpConnector,
};
pub use mllp::frame::{FrameDecoder, encode_frame};
pub use mllp::limits::{
    CONNECTIONS_MAX_DEFAULT, CONNECTIONS_PER_PEER_MAX_DEFAULT, ConnectionTable,
    INBOUND_BUFFER_BYTES_MAX_DEFAULT, InboundBudget, PEER_SHARE_DIVISOR, SERVICE_SHARE_DIVISOR,
};
pub use mllp::server::{
    ConnInfo, FrameHandler, MllpServer, Reply, ServerConfig, ServerHandle, ServerStats,
    StayConnected,
};
pub use mllp::wake_gate::WakeGate;
