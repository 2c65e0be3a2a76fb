//! The one error type of `hie-loadgen`: everything that stops a run before or after the
//! load itself (bad options, unreadable message sources, a port that cannot be bound,
//! report files that cannot be written). Failures *during* the load (timeouts, refused
//! connections, NAKs) are not errors: they are counted and reported.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything that can stop `hie-loadgen` from running or reporting.
#[derive(Debug, thiserror::Error)]
pub enum LoadgenError {
    /// A command-line value is malformed (duration, CPU list, rate, address).
    #[error("option {option}: {reason}")]
    BadOption {
        /// The option as written on the command line (`--duration`).
        option: &'static str,
        /// What is wrong with its value.
        reason: String,
    },
    /// The target or listen address is not a loopback address and `--allow-remote` was
    /// not given.
    #[error("{addr} is not a loopback address; pass --allow-remote to use it")]
    RemoteNotAllowed {
        /// The address refused.
        addr: SocketAddr,
    },
    /// A host name did not resolve to any address.
    #[error("cannot resolve {host}: {reason}")]
    Resolve {
        /// The host:port as written.
        host: String,
        /// Why it failed.
        reason: String,
    },
    /// A message source file or directory cannot be read.
    #[error("cannot read message source {path}: {source}")]
    ReadSource {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A message source holds no usable HL7 message.
    #[error("message source {path} holds no usable HL7 message: {reason}")]
    EmptySource {
        /// The file or directory.
        path: PathBuf,
        /// What was wrong with what it held.
        reason: String,
    },
    /// A listening socket cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// The error from the OS.
        source: std::io::Error,
    },
    /// An executor thread could not be started or panicked.
    #[error("executor thread {thread}: {reason}")]
    Executor {
        /// Index of the thread.
        thread: usize,
        /// What happened.
        reason: String,
    },
    /// A report file (`--hist`, `--plot`, `--save-dir`) cannot be written.
    #[error("cannot write {path}: {source}")]
    WriteReport {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The HdrHistogram log cannot be encoded.
    #[error("cannot encode histogram log {path}: {reason}")]
    HistogramLog {
        /// The file.
        path: PathBuf,
        /// What the encoder said.
        reason: String,
    },
}
