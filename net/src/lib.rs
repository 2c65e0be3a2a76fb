//! hie-net: MLLP framing, the inbound server and the outbound client on glommio io_uring
//! sockets.
//!
//! - [`tcp`]: what any TCP protocol shares. [`tcp::accept`]: the accept loop, admission
//!   and displacement against a service's connection table, stop and drain;
//!   [`tcp::limits`]: the inbound byte budget, a service's connection table, the
//!   refused-connection log's rate limit; [`tcp::busy`]: non-blocking reads, waited for a
//!   short budget in the shard's readiness set ([`tcp::readiness`]) before parking, which
//!   spares a busy connection a cross-core wake-up per message; [`tcp::wake_gate`]: polls
//!   a glommio operation only after it was woken, so a long wait (an `accept`) in a task
//!   woken by other futures does not pile up the task's wakers.
//! - [`mllp`]: the MLLP protocol. [`mllp::frame`]: decoder over a reused buffer, encoder;
//!   [`mllp::nak`]: NAKs for frames the handler never sees; [`mllp::server`]: the frame
//!   loop of an inbound connection; [`mllp::client`]: the outbound client;
//!   [`mllp::ack_only`]: a handler that acknowledges at once (benchmarks, load generator).
//!
//! This crate knows MLLP and sockets, not items nor IRIS policy: the engine (hie-core)
//! plugs in through the server's frame handler, and decides what a client's outcome means
//! (IRIS `ReplyCodeActions` lives in the engine).

pub mod error;
pub mod mllp;
pub mod tcp;

pub use error::MllpError;
pub use mllp::ack_only::AckOnlyHandler;
pub use mllp::client::{
    ClientConfig, ClientStats, Connector, MllpClient, NoReplyReason, ReplyOutcome, TcpConnector,
};
pub use mllp::frame::{FrameDecoder, encode_frame};
pub use mllp::server::{
    ConnInfo, FrameHandler, MllpServer, Reply, ServerConfig, ServerHandle, ServerStats,
    StayConnected,
};
pub use tcp::busy::{BUSY_POLL_DEFAULT, BusyReader, TryRead};
pub use tcp::limits::{
    CONNECTIONS_MAX_DEFAULT, CONNECTIONS_PER_PEER_MAX_DEFAULT, ConnectionTable,
    INBOUND_BUFFER_BYTES_MAX_DEFAULT, InboundBudget, PEER_SHARE_DIVISOR, SERVICE_SHARE_DIVISOR,
};
pub use tcp::wake_gate::WakeGate;
