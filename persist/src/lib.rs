//! hie-persist: one append-only write-ahead log per shard.
//!
//! Each shard owns one [`Wal`] in its own directory. The engine opens it from a task on
//! the shard's glommio executor, keeps it in an `Rc<Wal>`, and every task of the shard
//! appends through `&Wal`:
//!
//! ```no_run
//! use std::rc::Rc;
//! use hie_persist::{MessageMeta, Record, SYNC_THREADS, Wal, WalConfig};
//!
//! glommio::LocalExecutorBuilder::default()
//!     .blocking_thread_pool_placement(glommio::PoolPlacement::Unbound(SYNC_THREADS))
//!     .spawn(|| async {
//!         let (wal, recovery) = Wal::open("/var/lib/hie/shard-0", WalConfig::default()).await?;
//!         let wal = Rc::new(wal);
//!         // Redeliver what was received and not completed before the restart.
//!         for (target, deliveries) in &recovery.targets {
//!             for d in deliveries {
//!                 let _message = &recovery.messages[&d.message_id];
//!                 let _ = target; // hand to the target's queue
//!             }
//!         }
//!         // A service receiving a message: durable before the ACK.
//!         let message_id = wal.next_message_id();
//!         let meta = MessageMeta { message_type: "ADT^A01", control_id: "1", partition_key: "P1" };
//!         let bytes = b"MSH|^~\\&|...";
//!         wal.append(&Record::MessageReceived { message_id, source: "In", meta, bytes }).await?;
//!         // ACK upstream, then route.
//!         wal.append(&Record::Enqueued { message_id, target: "Out" }).await?;
//!         // The operation, after the downstream ACK:
//!         wal.append(&Record::Completed { message_id, target: "Out" }).await?;
//!         wal.close().await
//!     })
//!     .unwrap()
//!     .join()
//!     .unwrap()
//!     .unwrap();
//! ```
//!
//! Contract:
//! - `append`/`append_many` resolve when the records are durable per [`SyncMode`]
//!   (default `Fsync`: written and `fdatasync`ed). Appends from all tasks of the shard are
//!   group-committed: one write and one `fdatasync` per batch, the next batch written
//!   while the previous one syncs. The LSNs of one task's appends increase in the order it
//!   called them.
//! - The `fdatasync`s run on the executor's blocking thread pool, two at a time: give the
//!   executor a pool of at least [`SYNC_THREADS`] threads
//!   (`LocalExecutorBuilder::blocking_thread_pool_placement`), or the second sync waits
//!   for the first (glommio's default pool has one thread).
//! - Message ids come from [`Wal::next_message_id`]: a shard-local counter, unique and
//!   increasing across restarts and retention.
//! - [`Recovery`] (returned by `open`) lists every message received and not closed, per
//!   target in enqueue order, the messages never routed, and counters (torn bytes, corrupt
//!   spans with segment and offset, unknown kinds). A message is closed once a terminal
//!   record (`Completed`/`Failed`/`Discarded`) arrived for each target it was enqueued for; append
//!   all of a message's `Enqueued` records in one `append_many`, and record "no route" as
//!   `Discarded` with an empty target.
//! - Errors (including disk full) come back as [`WalError`]. After a failed write or sync
//!   the WAL is *unavailable*: appends fail at once with [`WalError::Unavailable`] while
//!   the WAL retries, every [`RESUME_RETRY_INTERVAL_MS`], to resume: it drops what was
//!   not durable (those appends failed), rescans the directory, and checks there is room
//!   for a whole segment. Then appends succeed again; nothing that resolved `Ok` is lost.
//!   [`Wal::unavailable`] says which state it is in; the WAL logs each change once.
//!   Nothing panics on bad disk contents.
//! - Files: the directory is created mode 0700 and every file in it 0600, whatever the
//!   umask ([`private`]).
//! - Recovery reports a segment holding less than was durable in it (cut short, emptied,
//!   removed) as an ERROR with the acknowledged messages lost ([`RecoveryStats::lost`]),
//!   using the synced-length marker (`wal::synced`).
//! - Read API: [`Wal::records_between`] (records of a time range) and
//!   [`Wal::find_message`] / [`Wal::read_at`] (a message by id, a record by location).
//! - One `Wal` per directory: `open` takes an exclusive `flock` on `LOCK` and fails with
//!   [`WalError::Locked`] while another holds it. The lock is released when the committer
//!   task exits: at the end of [`Wal::close`], or after a dropped `Wal` flushed what was
//!   pending (so reopen after `close().await`, not right after a drop).
//! - Retention removes (or archives) whole segments whose messages are all closed, oldest
//!   first, by age and/or total size; see [`WalConfig`].
#![deny(unsafe_op_in_unsafe_fn)]

pub mod error;
pub mod private;
pub mod wal;

pub use error::WalError;
pub use wal::{
    SyncMode, WalConfig,
    reader::{RangeReader, StoredRecord},
    record::{MessageMeta, Record, RecordKind, Targets},
    recovery::{
        CorruptSpan, DeliveryState, PendingDelivery, RecoveredMessage, Recovery, RecoveryStats,
        SegmentLoss,
    },
    segment::Location,
    writer::{MARKER_INTERVAL_S, RESUME_RETRY_INTERVAL_MS, SYNC_THREADS, Wal, WalStats},
};
