//! hie-net: MLLP framing, the inbound server and the outbound client on glommio io_uring
//! sockets, and IRIS `ReplyCodeActions`.
//!
//! - [`mllp::frame`]: decoder over a reused buffer, encoder.
//! - [`mllp::limits`]: the inbound byte budget, a service's connection table, the
//!   refused-connection log's rate limit.
//! - [`mllp::busy`]: non-blocking reads, waited for a short budget in the shard's
//!   readiness set ([`mllp::readiness`]) before parking, which spares a busy connection a
//!   cross-core wake-up per message.
//! - [`reply_code_actions`]: the IRIS setting parsed and evaluated to an [`Action`].
//! - [`mllp::wake_gate`]: polls a glommio operation only after it was woken, so a long wait
//!   (an `accept`) in a task woken by other futures does not pile up the task's wakers.
//!
//! This crate knows MLLP and sockets, not items: the engine (hie-core) plugs in through
//! the server's frame handler and acts on the client's classified outcomes.

pub mod error;
pub mod mllp;
pub mod reply_code_actions;

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
pub use reply_code_actions::{Action, Decision, GiveUp, ReplyCodeActions, ReplyFacts};
