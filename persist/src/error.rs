//! `WalError`: the one error type of this crate.
//!
//! Errors are `Clone` because one failed group commit fails every append waiting on it:
//! the underlying `io::Error` is shared behind an `Arc`. Every variant names where it
//! happened (path, segment, offset) so the caller can log it and NAK.

use std::{io, path::PathBuf, sync::Arc};

use crate::wal::record::RecordKind;

/// Everything that can go wrong in the WAL.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WalError {
    /// An I/O operation failed (disk full shows up here as `ENOSPC`).
    #[error("WAL I/O error while {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: Arc<io::Error>,
    },
    /// A previous write or sync failed (disk full, I/O error): the WAL refuses appends
    /// until it has resumed by itself (see the crate documentation).
    #[error(
        "WAL in {dir} cannot write since an I/O error ({cause}); appends are refused until it can again"
    )]
    Unavailable { dir: PathBuf, cause: String },
    /// Another `Wal` (in this or another process) has the directory open.
    #[error("WAL directory {dir} is already open (locked by another Wal)")]
    Locked { dir: PathBuf },
    /// The WAL was closed (or dropped) before the append could be written.
    #[error("WAL in {dir} is closed")]
    Closed { dir: PathBuf },
    /// A record's payload is larger than the format (or the segment size) allows.
    #[error("record payload of {payload_bytes} bytes exceeds the maximum {payload_bytes_max}")]
    RecordTooLarge {
        payload_bytes: usize,
        payload_bytes_max: usize,
    },
    /// A string field of a record is longer than its u16 length prefix allows.
    #[error("a string field of a {kind:?} record is {field_bytes} bytes, over 65535")]
    FieldTooLong {
        kind: RecordKind,
        field_bytes: usize,
    },
    /// The configuration is out of range.
    #[error("invalid WAL configuration: {field} = {value} ({reason})")]
    Config {
        field: &'static str,
        value: String,
        reason: &'static str,
    },
    /// A file in the WAL directory looks like a segment but its name does not parse.
    #[error("unexpected file {path} in WAL directory")]
    BadSegmentName { path: PathBuf },
    /// A record was looked up and is not where the index says (or fails its CRC).
    #[error("no valid record at segment {segment} offset {offset}")]
    NoRecordAt { segment: u64, offset: u64 },
}

impl WalError {
    /// Wraps an I/O error with the operation and path it concerns.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: impl Into<io::Error>) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source: Arc::new(source.into()),
        }
    }

    /// Whether this is the storage failing (an I/O error, or the WAL unavailable after
    /// one) rather than something about the record: the WAL logs those once per change
    /// of state, so callers need not log each failed append.
    pub fn is_storage(&self) -> bool {
        matches!(self, Self::Io { .. } | Self::Unavailable { .. })
    }

    /// The `io::ErrorKind` behind this error, if it is an I/O error (e.g. `StorageFull`).
    pub fn io_kind(&self) -> Option<io::ErrorKind> {
        match self {
            Self::Io { source, .. } => Some(source.kind()),
            _ => None,
        }
    }
}
