//! The one error type of `hie-net`: every way MLLP framing, a connection, the server, the
//! client or a setting can fail, each variant naming what failed and where (byte offset,
//! peer address, setting).
//!
//! Invariants: untrusted bytes from a peer only ever become one of these values, never a
//! panic. Errors that carry a peer keep it as a [`SocketAddr`] so logs can name it.

use std::net::SocketAddr;

/// Everything that can go wrong in `hie-net`.
#[derive(Debug, thiserror::Error)]
pub enum MllpError {
    /// A frame grew past the configured maximum before its end block arrived (or its
    /// payload, once complete, is longer than the maximum). Nothing past the limit was
    /// buffered.
    #[error(
        "MLLP frame larger than frame_bytes_max = {frame_bytes_max} bytes \
         ({buffered_bytes} payload bytes buffered, frame started at stream byte {stream_offset})"
    )]
    FrameTooLarge {
        /// The configured maximum payload size.
        frame_bytes_max: usize,
        /// Payload bytes held when the limit was hit.
        buffered_bytes: usize,
        /// Offset in the connection's byte stream of the frame's start block.
        stream_offset: u64,
    },

    /// The peer closed the stream after a start block and before the end block.
    #[error(
        "connection closed in the middle of an MLLP frame: {buffered_bytes} payload bytes after \
         the start block at stream byte {stream_offset}, no end block"
    )]
    TruncatedFrame {
        /// Payload bytes received after the start block.
        buffered_bytes: usize,
        /// Offset in the connection's byte stream of the frame's start block.
        stream_offset: u64,
    },

    /// A frame did not arrive whole within ReadTimeout of its start block.
    #[error(
        "ReadTimeout of {timeout_ms} ms for a whole frame expired with {buffered_bytes} bytes of an incomplete frame from {peer}"
    )]
    ReadTimeout {
        /// The peer that stalled.
        peer: SocketAddr,
        /// The configured ReadTimeout.
        timeout_ms: u64,
        /// Bytes of the incomplete frame held when it expired.
        buffered_bytes: usize,
    },

    /// The server was stopped while the peer was in the middle of a frame, and the frame
    /// did not end within the stop grace: the connection was cut, the frame not taken.
    #[error(
        "stopped while {peer} was in the middle of a frame ({buffered_bytes} bytes buffered); \
         cut after the stop grace of {grace_ms} ms"
    )]
    CutAtStop {
        /// The peer that was cut.
        peer: SocketAddr,
        /// The grace given after the stop.
        grace_ms: u64,
        /// Bytes of the incomplete frame held when it was cut.
        buffered_bytes: usize,
    },

    /// Binding the listening socket failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's reason.
        source: std::io::Error,
    },

    /// Connecting to a downstream system failed (after all ReconnectRetry attempts).
    #[error("cannot connect to {addr} after {attempts} attempt(s): {source}")]
    Connect {
        /// The address connected to.
        addr: SocketAddr,
        /// How many attempts were made.
        attempts: u32,
        /// The last attempt's reason.
        source: std::io::Error,
    },

    /// ConnectTimeout expired while connecting.
    #[error("ConnectTimeout of {timeout_ms} ms expired connecting to {addr}")]
    ConnectTimeout {
        /// The address connected to.
        addr: SocketAddr,
        /// The configured ConnectTimeout.
        timeout_ms: u64,
    },

    /// A read or write on an established connection failed.
    #[error("I/O error on the connection with {peer} while {during}: {source}")]
    Io {
        /// The other end of the connection.
        peer: SocketAddr,
        /// What the connection was doing: "reading", "writing", "accepting".
        during: &'static str,
        /// The operating system's reason.
        source: std::io::Error,
    },

    /// A message handed to the client to send is not something that can be framed: empty,
    /// or containing an MLLP block character (0x0B, or 0x1C 0x0D) that would cut the frame.
    #[error("message cannot be sent over MLLP: {reason}")]
    InvalidMessage {
        /// Why.
        reason: &'static str,
    },

    /// A setting out of its documented range.
    #[error("setting {setting} = {value}: {reason}")]
    Setting {
        /// The IRIS name of the setting.
        setting: &'static str,
        /// The value given.
        value: String,
        /// The documented range.
        reason: &'static str,
    },
}
