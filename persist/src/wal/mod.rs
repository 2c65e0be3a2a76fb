//! The per-shard write-ahead log: configuration and the modules that implement it.
//!
//! `record` owns the byte format, `closing` what each record does to its message's
//! deliveries (which records close a message), `segment` the files and the scanner, `writer` the
//! group commit and the [`Wal`] handle, `sync` which written commits an `fdatasync`
//! makes durable, `synced` the marker of how far each segment was durable, `recovery`
//! the scan on open, `retention` the open-message tracking and segment removal,
//! `reader` the read API.
//!
//! Files: the WAL directory is mode 0700 and every file in it 0600, whatever the umask
//! (`crate::private`). It holds the segments (`{first_lsn:020}.wal`), `LOCK`, `SYNCED`
//! (and `SYNCED.tmp` while it is replaced), and `spare.zero` (`spare.zero.tmp` while it
//! is filled).

pub mod closing;
pub mod reader;
pub mod record;
pub mod recovery;
pub mod retention;
pub mod segment;
mod sync;
pub mod synced;
pub mod writer;

use std::path::PathBuf;

use crate::error::WalError;

pub use writer::{SYNC_THREADS, SYNC_US_BOUNDS, Wal, WalStats};

/// When an append resolves, relative to the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncMode {
    /// Each group commit is written and `fdatasync`ed before its appends resolve (default).
    Fsync,
    /// Appends resolve once written; the file is `fdatasync`ed at most every this many
    /// milliseconds while there is unsynced data (range 1..=60_000).
    Interval { interval_ms: u64 },
    /// Appends resolve once written; nothing is synced (tests, disposable data).
    None,
}

/// Configuration of one shard's WAL. Build it from `WalConfig::default()` and the
/// `with_*` methods; `Wal::open` validates every field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalConfig {
    /// Size each segment file is preallocated to. Default 64 MiB; range 1 MiB..=4 GiB,
    /// a multiple of 4 KiB. A record larger than a segment is refused.
    pub segment_bytes: u64,
    /// Durability of an append. Default [`SyncMode::Fsync`].
    pub sync: SyncMode,
    /// Most record bytes one group commit writes (a single larger record still goes out,
    /// alone). Default 1 MiB; range 4 KiB..=64 MiB.
    pub batch_bytes_max: usize,
    /// How long the committer waits for more appends when a batch is below
    /// `batch_bytes_max` and nothing is in flight. Default 0 (it only yields once to let
    /// ready tasks append; with a write in flight batches form by themselves); range
    /// 0..=100_000 µs.
    pub batch_wait_us_max: u64,
    /// A segment whose messages are all closed is removed once its newest record is
    /// older than this. Default `Some(86_400)` (one day); `None` keeps closed segments
    /// (unless `retention_bytes_max` applies). Range 0..=10 years.
    pub retention_age_s: Option<u64>,
    /// Closed segments are removed, oldest first, while the WAL's total bytes exceed
    /// this. Default `None` (no size bound). Open segments are never removed.
    pub retention_bytes_max: Option<u64>,
    /// Whether segment files are filled with zeros before use (default `true`). A
    /// zero-filled file has initialized extents, so each `fdatasync` is a device flush;
    /// with `false` segments are only preallocated (`fallocate`), and every sync of newly
    /// written blocks also commits the file-system journal (several ms on ext4). The
    /// next segment is zero-filled in the background once a sixteenth of the active one
    /// is written, in short writes, so filling costs disk bandwidth (each segment is
    /// written twice) and only a little latency (a commit may wait behind one 256 KiB
    /// zero write).
    pub zero_fill_segments: bool,
    /// Where removed segments are moved (renamed, so it must be on the same file system)
    /// instead of deleted. Default `None` (delete).
    pub archive_dir: Option<PathBuf>,
}

impl Default for WalConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 64 << 20,
            sync: SyncMode::Fsync,
            batch_bytes_max: 1 << 20,
            batch_wait_us_max: 0,
            retention_age_s: Some(86_400),
            retention_bytes_max: None,
            zero_fill_segments: true,
            archive_dir: None,
        }
    }
}

impl WalConfig {
    pub fn with_segment_bytes(mut self, segment_bytes: u64) -> Self {
        self.segment_bytes = segment_bytes;
        self
    }
    pub fn with_sync(mut self, sync: SyncMode) -> Self {
        self.sync = sync;
        self
    }
    pub fn with_batch_bytes_max(mut self, batch_bytes_max: usize) -> Self {
        self.batch_bytes_max = batch_bytes_max;
        self
    }
    pub fn with_batch_wait_us_max(mut self, batch_wait_us_max: u64) -> Self {
        self.batch_wait_us_max = batch_wait_us_max;
        self
    }
    pub fn with_retention_age_s(mut self, retention_age_s: Option<u64>) -> Self {
        self.retention_age_s = retention_age_s;
        self
    }
    pub fn with_retention_bytes_max(mut self, retention_bytes_max: Option<u64>) -> Self {
        self.retention_bytes_max = retention_bytes_max;
        self
    }
    pub fn with_zero_fill_segments(mut self, zero_fill_segments: bool) -> Self {
        self.zero_fill_segments = zero_fill_segments;
        self
    }
    pub fn with_archive_dir(mut self, archive_dir: Option<PathBuf>) -> Self {
        self.archive_dir = archive_dir;
        self
    }

    /// Checks every field against its documented range.
    pub fn validate(&self) -> Result<(), WalError> {
        let bad = |field, value: String, reason| {
            Err(WalError::Config {
                field,
                value,
                reason,
            })
        };
        if !(1 << 20..=4 << 30).contains(&self.segment_bytes) || self.segment_bytes % 4096 != 0 {
            return bad(
                "segment_bytes",
                self.segment_bytes.to_string(),
                "must be 1 MiB..=4 GiB and a multiple of 4096",
            );
        }
        if !(4096..=64 << 20).contains(&self.batch_bytes_max) {
            return bad(
                "batch_bytes_max",
                self.batch_bytes_max.to_string(),
                "must be 4 KiB..=64 MiB",
            );
        }
        if self.batch_wait_us_max > 100_000 {
            return bad(
                "batch_wait_us_max",
                self.batch_wait_us_max.to_string(),
                "must be 0..=100000",
            );
        }
        if let SyncMode::Interval { interval_ms } = self.sync
            && !(1..=60_000).contains(&interval_ms)
        {
            return bad(
                "sync.interval_ms",
                interval_ms.to_string(),
                "must be 1..=60000",
            );
        }
        if let Some(age) = self.retention_age_s
            && age > 10 * 365 * 86_400
        {
            return bad(
                "retention_age_s",
                age.to_string(),
                "must be at most 10 years",
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid_and_out_of_range_fields_are_named() {
        assert!(WalConfig::default().validate().is_ok());
        let err = WalConfig::default()
            .with_segment_bytes(1000)
            .validate()
            .unwrap_err();
        assert!(matches!(
            err,
            WalError::Config {
                field: "segment_bytes",
                ..
            }
        ));
        let err = WalConfig::default()
            .with_sync(SyncMode::Interval { interval_ms: 0 })
            .validate()
            .unwrap_err();
        assert!(matches!(
            err,
            WalError::Config {
                field: "sync.interval_ms",
                ..
            }
        ));
    }
}
