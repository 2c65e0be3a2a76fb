//! The [`Wal`] handle and its group-commit task.
//!
//! Appending tasks encode their records (LSN and CRC still zero) into one shared pending
//! buffer and wait. One committer task per WAL, spawned on the shard by `Wal::open`,
//! takes the pending records (up to `batch_bytes_max`, never past the end of the
//! segment), assigns LSNs, seals them (CRC), copies them behind the valid prefix of the
//! last partially written 4 KiB block into one aligned `DmaBuffer`, and writes it with
//! one O_DIRECT write at that block's offset. In fsync mode it then starts an
//! `fdatasync` in a task of its own and goes on to the next batch without waiting for
//! it: batch k+1 is written while batch k syncs, with up to two syncs in flight (see
//! `sync` for the bookkeeping). The `fdatasync`s run on the executor's blocking thread
//! pool, through a second descriptor of the segment: an io_uring fsync is always handed
//! to an io-wq worker, which runs on the shard's own core and costs it a context switch
//! per sync (docs/adr/0005-two-wal-commits-in-flight.md has the figures); the pool needs
//! two threads for the two syncs to overlap. While a commit is in flight the next batch
//! accumulates, so the batch size follows the load; in fsync mode, once there are at
//! least 128 KiB pending or waiting for a sync, a batch takes at most half of them, so a
//! heavy steady load splits into two cohorts whose writes and syncs overlap.
//!
//! ```text
//!  segment:  | ...records... | r r r r|0000 |       (last block partially valid)
//!                            ^block    ^end_offset
//!  commit:   write [block, align_up(end + batch)) = tail prefix + new records + zeros
//! ```
//!
//! Invariants: exactly one write is in flight per WAL (a write rewrites the previous
//! one's last block, so two must never race); LSNs are contiguous and assigned in the
//! order appends were called; an append resolves only after its write succeeded and, in
//! fsync mode, after an `fdatasync` that started after that write completed has
//! finished; the bytes after `end_offset` on disk are zeros. Before switching to the
//! next segment the committer waits for every sync of the full one, so a sync always
//! covers the file its batches went to and the log on disk stays a prefix. If a write
//! or sync fails, every waiting append gets the error and the WAL becomes unavailable:
//! later appends fail at once with [`WalError::Unavailable`], since the state of the
//! tail on disk is unknown. The committer then resumes by itself: every
//! [`RESUME_RETRY_INTERVAL_MS`] it removes segments begun after the last durable record,
//! rescans the directory accepting nothing past that record (so records written and not
//! acknowledged become a torn tail, zeroed on reopen, and the open-message set is what
//! is durable), reopens the last segment and makes sure a spare segment exists (room
//! for a whole segment). Only when all of that succeeds do appends resume; the change
//! of state is logged once each way, not per append.
//! After a power loss a batch written while the previous one synced may have reached the
//! medium without it; neither was acknowledged, and recovery reports the hole as a
//! corrupt span (docs/adr/0005-two-wal-commits-in-flight.md).
//! Segment files are zero-filled before use (or preallocated, see
//! `WalConfig::zero_fill_segments`), so disk full shows up when a segment is prepared,
//! not in the middle of a commit. The next segment is zero-filled in the background as
//! `spare.zero` once a sixteenth of the active one is written, and renamed into place on
//! rotation (the rename and the directory sync run while the full segment's last syncs
//! do). Starting early matters: at 650 MB/s of appends a 64 MiB segment fills in about
//! 100 ms, and a fill started at half of it was still running at rotation, which then
//! waited 8–13 ms for it (every append waiting with it).

use std::{
    cell::{Cell, RefCell},
    collections::{BTreeMap, VecDeque},
    future::Future,
    path::{Path, PathBuf},
    pin::Pin,
    rc::Rc,
    task::{Context, Poll, Waker},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use glommio::io::{DmaBuffer, DmaFile, OpenOptions};

use crate::{
    error::WalError,
    private::{self, FILE_MODE},
    wal::{
        SyncMode, WalConfig,
        record::{self, HEADER_BYTES, RECORD_ALIGN, Record, RecordKind},
        recovery::{self, Recovery, SegmentMeta},
        retention::{self, OpenSet, SegmentAge},
        segment::{BLOCK_BYTES, list_segments, segment_path},
        sync::{SYNCS_IN_FLIGHT_MAX, SyncTracker},
        synced,
    },
};

/// Threads the blocking pool of an executor that opens a WAL needs (glommio's
/// `LocalExecutorBuilder::blocking_thread_pool_placement`): the `fdatasync`s run there,
/// one per thread, and with fewer threads than syncs in flight the second sync waits for
/// the first instead of overlapping it. glommio's default pool has one thread.
pub const SYNC_THREADS: usize = SYNCS_IN_FLIGHT_MAX;

/// How often an unavailable WAL tries to resume (see the module header), in ms.
pub const RESUME_RETRY_INTERVAL_MS: u64 = 1000;

/// In fsync mode, the synced-length marker (`synced`) is rewritten, with the active
/// segment, after a commit when it is at least this old (seconds): after a crash,
/// recovery checks the segments against what was synced this long before at most.
pub const MARKER_INTERVAL_S: u64 = 5;

/// Upper bounds (µs) of the `fdatasync` latency buckets of [`WalStats::sync_us_buckets`].
pub const SYNC_US_BOUNDS: [u64; 13] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000,
];

/// Counters of one WAL since open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalStats {
    /// Records made durable (per sync mode).
    pub records: u64,
    /// Record bytes written (excluding the rewritten tail blocks and padding).
    pub record_bytes: u64,
    /// Group commits (writes).
    pub commits: u64,
    /// `fdatasync` calls.
    pub syncs: u64,
    /// Completed `fdatasync`s by latency: `[i]` counts those of at most
    /// `SYNC_US_BOUNDS[i]` µs (and more than the bound before); the last, the longer ones.
    pub sync_us_buckets: [u64; SYNC_US_BOUNDS.len() + 1],
    /// Their latencies summed, in µs.
    pub sync_us_total: u64,
    /// Segments created.
    pub segments_created: u64,
    /// Segments removed or archived by retention.
    pub segments_removed: u64,
    /// Times the WAL became unavailable after a failed write or sync.
    pub failures: u64,
    /// Times it resumed after one.
    pub resumptions: u64,
    /// Appends refused while it was unavailable.
    pub refused: u64,
}

impl WalStats {
    /// Counts one `fdatasync` that took `us` µs.
    fn record_sync(&mut self, us: u64) {
        let bucket = SYNC_US_BOUNDS.partition_point(|&bound| bound < us);
        self.sync_us_buckets[bucket] += 1;
        self.sync_us_total = self.sync_us_total.saturating_add(us);
    }
}

/// One shard's write-ahead log. Use it from tasks of the executor that opened it,
/// through an `Rc<Wal>`; see the crate documentation.
#[derive(Debug)]
pub struct Wal {
    shared: Rc<Shared>,
    committer: RefCell<Option<glommio::task::JoinHandle<()>>>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) dir: PathBuf,
    pub(crate) config: WalConfig,
    pub(crate) state: RefCell<State>,
    committer_waker: RefCell<Option<Waker>>,
    next_message_id: Cell<u64>,
    /// Held (exclusive `flock`) for as long as the committer runs; released when it exits.
    lock: RefCell<Option<std::fs::File>>,
    /// The synced-length marker being written in a task of its own, if one is.
    marker: RefCell<Option<glommio::task::JoinHandle<()>>>,
    /// Called each time an unavailable WAL becomes writable again ([`Wal::on_resume`]).
    on_resume: ResumeHook,
}

/// What [`Wal::on_resume`] set: called on the WAL's own executor, once per resumption.
#[derive(Default)]
struct ResumeHook(RefCell<Option<Box<dyn Fn()>>>);

impl std::fmt::Debug for ResumeHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.borrow().is_some() {
            "ResumeHook(set)"
        } else {
            "ResumeHook(none)"
        })
    }
}

/// Name of the lock file that keeps two `Wal`s off one directory.
const LOCK_FILE_NAME: &str = "LOCK";

/// Takes the directory's exclusive lock, or fails with [`WalError::Locked`].
fn lock_dir(dir: &Path) -> Result<std::fs::File, WalError> {
    use std::os::{fd::AsRawFd, unix::fs::OpenOptionsExt};
    let path = dir.join(LOCK_FILE_NAME);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(FILE_MODE)
        .open(&path)
        .map_err(|e| WalError::io("opening lock file", &path, e))?;
    // SAFETY: `flock` only reads the descriptor, which `file` keeps open for the call.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(file);
    }
    let error = std::io::Error::last_os_error();
    if error.kind() == std::io::ErrorKind::WouldBlock {
        return Err(WalError::Locked {
            dir: dir.to_owned(),
        });
    }
    Err(WalError::io("locking WAL directory", &path, error))
}

#[derive(Debug)]
pub(crate) struct State {
    pending: Vec<u8>,
    waiters: VecDeque<Waiter>,
    /// Why the WAL is unavailable (a write or sync failed), and since when.
    failed: Option<(String, Instant)>,
    closing: bool,
    pub(crate) segments: BTreeMap<u64, SegmentMeta>,
    open: OpenSet,
    /// LSN of the last record sealed into a batch (written or about to be).
    sealed_lsn: u64,
    /// LSN of the last record made durable (per sync mode).
    durable_lsn: u64,
    /// Batches written and waiting for an `fdatasync` (fsync mode), and the syncs running.
    sync: SyncTracker<Written>,
    stats: WalStats,
}

#[derive(Debug)]
struct Waiter {
    slot: Rc<Slot>,
    records_left: usize,
    first_lsn: u64,
}

#[derive(Debug, Default)]
struct Slot {
    result: RefCell<Option<Result<u64, WalError>>>,
    waker: RefCell<Option<Waker>>,
}

impl Slot {
    fn complete(&self, result: Result<u64, WalError>) {
        *self.result.borrow_mut() = Some(result);
        if let Some(waker) = self.waker.borrow_mut().take() {
            waker.wake();
        }
    }
}

/// Resolves when the slot's records are durable.
struct Durable {
    slot: Rc<Slot>,
}

impl Future for Durable {
    type Output = Result<u64, WalError>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(result) = self.slot.result.borrow_mut().take() {
            return Poll::Ready(result);
        }
        *self.slot.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

impl Wal {
    /// Opens (or creates) the WAL in `dir`, recovers it, and starts its committer task on
    /// the current glommio executor. Must be called from a glommio task.
    pub async fn open(
        dir: impl AsRef<Path>,
        config: WalConfig,
    ) -> Result<(Wal, Recovery), WalError> {
        config.validate()?;
        let dir = dir.as_ref().to_owned();
        private::create_private_dir(&dir)
            .map_err(|e| WalError::io("creating WAL directory", &dir, e))?;
        if let Some(archive) = &config.archive_dir {
            private::create_private_dir(archive)
                .map_err(|e| WalError::io("creating archive directory", archive, e))?;
        }
        let lock = lock_dir(&dir)?;
        // A file hie cannot narrow (another owner's) is reported, not a reason to stop.
        if let Err(error) = private::tighten_files(&dir) {
            tracing::warn!(dir = %dir.display(), %error, "WAL files left readable by others");
        }
        let (recovery, resume) = recovery::recover(&dir, u64::MAX, true).await?;
        let shared = Rc::new(Shared {
            dir: dir.clone(),
            config,
            state: RefCell::new(State {
                pending: Vec::new(),
                waiters: VecDeque::new(),
                failed: None,
                closing: false,
                segments: resume.segments,
                open: resume.open,
                sealed_lsn: resume.last_lsn,
                durable_lsn: resume.last_lsn,
                sync: SyncTracker::default(),
                stats: WalStats::default(),
            }),
            committer_waker: RefCell::new(None),
            next_message_id: Cell::new(recovery.next_message_id),
            lock: RefCell::new(Some(lock)),
            marker: RefCell::new(None),
            on_resume: ResumeHook::default(),
        });
        let torn_bytes = recovery.stats.torn_bytes_dropped;
        let mut active = match shared.last_segment() {
            Some(first_lsn) => Active::reopen(&shared, first_lsn, torn_bytes).await?,
            None => Active::create(&shared, None).await?,
        };
        active.spare = adopt_spare(&shared);
        let committer = glommio::spawn_local(run_committer(shared.clone(), active)).detach();
        Ok((
            Wal {
                shared,
                committer: RefCell::new(Some(committer)),
            },
            recovery,
        ))
    }

    /// The directory of this WAL.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// Hands out the next message id of this shard: unique and increasing for the life of
    /// the WAL, across restarts and retention (every segment records the next id).
    pub fn next_message_id(&self) -> u64 {
        let id = self.shared.next_message_id.get();
        self.shared.next_message_id.set(id + 1);
        id
    }

    /// Appends one record; resolves with its LSN once durable per the sync mode.
    pub async fn append(&self, record: &Record<'_>) -> Result<u64, WalError> {
        self.append_many(std::slice::from_ref(record)).await
    }

    /// Appends records that get contiguous LSNs, in order, in the same or consecutive
    /// commits; resolves with the first LSN once all are durable.
    pub async fn append_many(&self, records: &[Record<'_>]) -> Result<u64, WalError> {
        let slot = self.enqueue(records)?;
        Durable { slot }.await
    }

    /// Queues records for the next commits without waiting for them to be durable: they
    /// get contiguous LSNs after every record appended before this call and before every
    /// record appended after it, so a record that is durable proves these are too. For
    /// records whose loss in a crash only makes the engine redo work from earlier durable
    /// ones (a router's routing records: recovery routes the message again). Fails only
    /// when the WAL is unavailable or closed, or a record is too large; a write or sync that
    /// fails later makes the WAL unavailable, and the next `append` reports it.
    pub fn submit(&self, records: &[Record<'_>]) -> Result<(), WalError> {
        self.enqueue(records).map(drop)
    }

    fn enqueue(&self, records: &[Record<'_>]) -> Result<Rc<Slot>, WalError> {
        let shared = &self.shared;
        let mut state = shared.state.borrow_mut();
        if let Some((cause, _)) = &state.failed {
            let error = WalError::Unavailable {
                dir: shared.dir.clone(),
                cause: cause.clone(),
            };
            state.stats.refused += 1;
            return Err(error);
        }
        if state.closing {
            return Err(WalError::Closed {
                dir: shared.dir.clone(),
            });
        }
        let segment_room = shared.config.segment_bytes as usize - record::record_bytes(8);
        let timestamp_us = now_us();
        let start = state.pending.len();
        for record in records {
            let payload_len = record.payload_len();
            let encoded = record::record_bytes(payload_len) > segment_room;
            let result = if encoded {
                Err(WalError::RecordTooLarge {
                    payload_bytes: payload_len,
                    payload_bytes_max: segment_room - HEADER_BYTES,
                })
            } else {
                record.encode_unsealed(timestamp_us, &mut state.pending)
            };
            if let Err(e) = result {
                state.pending.truncate(start);
                return Err(e);
            }
        }
        let slot = Rc::new(Slot::default());
        if records.is_empty() {
            slot.complete(Ok(state.sealed_lsn + 1));
            return Ok(slot);
        }
        state.waiters.push_back(Waiter {
            slot: slot.clone(),
            records_left: records.len(),
            first_lsn: 0,
        });
        drop(state);
        shared.wake_committer();
        Ok(slot)
    }

    /// Flushes what is pending, syncs, stops the committer and closes the files.
    /// Appends after this fail with [`WalError::Closed`].
    pub async fn close(&self) -> Result<(), WalError> {
        self.shared.state.borrow_mut().closing = true;
        self.shared.wake_committer();
        let committer = self.committer.borrow_mut().take();
        if let Some(committer) = committer {
            committer.await;
        }
        match &self.shared.state.borrow().failed {
            Some((cause, _)) => Err(WalError::Unavailable {
                dir: self.shared.dir.clone(),
                cause: cause.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Why the WAL refuses appends now (a write or sync failed and it has not resumed
    /// yet), `None` while it is writable.
    pub fn unavailable(&self) -> Option<String> {
        let state = self.shared.state.borrow();
        state.failed.as_ref().map(|(cause, _)| cause.clone())
    }

    /// Calls `hook` each time the WAL becomes writable again after a failed write or
    /// sync (replacing any earlier hook), so that work waiting on [`Wal::unavailable`]
    /// can go on without polling. It runs in the committer task: it should only wake.
    pub fn on_resume(&self, hook: impl Fn() + 'static) {
        *self.shared.on_resume.0.borrow_mut() = Some(Box::new(hook));
    }

    /// Counters since open.
    pub fn stats(&self) -> WalStats {
        self.shared.state.borrow().stats
    }

    /// LSN of the last record made durable (per sync mode).
    pub fn last_lsn(&self) -> u64 {
        self.shared.state.borrow().durable_lsn
    }

    /// Number of open messages (received, not closed).
    pub fn open_messages(&self) -> usize {
        self.shared.state.borrow().open.len()
    }

    /// Segments (first LSN) currently in the directory, oldest first.
    pub fn segments(&self) -> Vec<u64> {
        self.shared
            .state
            .borrow()
            .segments
            .keys()
            .copied()
            .collect()
    }

    /// Removes (or archives) the segments retention allows now; returns their first
    /// LSNs. Also runs by itself whenever a segment fills up.
    pub async fn run_retention(&self) -> Result<Vec<u64>, WalError> {
        run_retention(&self.shared).await
    }

    pub(crate) fn shared(&self) -> &Rc<Shared> {
        &self.shared
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        // The committer flushes what is pending and exits; it owns what it needs.
        self.shared.state.borrow_mut().closing = true;
        self.shared.wake_committer();
    }
}

impl Shared {
    fn wake_committer(&self) {
        if let Some(waker) = self.committer_waker.borrow_mut().take() {
            waker.wake();
        }
    }

    fn last_segment(&self) -> Option<u64> {
        self.state.borrow().segments.keys().next_back().copied()
    }

    /// Makes the WAL unavailable after a failed write or sync (logged once, when it
    /// changes), failing every append not yet durable.
    fn poison(&self, error: &WalError) {
        let mut state = self.state.borrow_mut();
        if state.failed.is_none() {
            tracing::error!(
                dir = %self.dir.display(),
                %error,
                "WAL cannot write; appends are refused (NAK) until it can, retried every {RESUME_RETRY_INTERVAL_MS} ms"
            );
            state.failed = Some((error.to_string(), Instant::now()));
            state.stats.failures += 1;
        }
        state.pending.clear();
        let poisoned = WalError::Unavailable {
            dir: self.dir.clone(),
            cause: error.to_string(),
        };
        for waiter in state.waiters.drain(..) {
            waiter.slot.complete(Err(poisoned.clone()));
        }
        for written in state.sync.take_all() {
            for (slot, _) in written.completed {
                slot.complete(Err(poisoned.clone()));
            }
        }
    }

    /// Makes a written batch's appends resolve: it is durable per the sync mode.
    fn make_durable(&self, written: Written) {
        let mut state = self.state.borrow_mut();
        if let Some(meta) = state.segments.get_mut(&written.segment) {
            meta.end_offset = meta.end_offset.max(written.new_end);
            meta.ts_min_us = meta.ts_min_us.min(written.meta.ts_min_us);
            meta.ts_max_us = meta.ts_max_us.max(written.meta.ts_max_us);
            meta.id_min = meta.id_min.min(written.meta.id_min);
            meta.id_max = meta.id_max.max(written.meta.id_max);
            meta.ruled_id_min = meta.ruled_id_min.min(written.meta.ruled_id_min);
            meta.ruled_id_max = meta.ruled_id_max.max(written.meta.ruled_id_max);
            meta.last_lsn = meta.last_lsn.max(written.meta.last_lsn);
            meta.received += written.meta.received;
        }
        state.durable_lsn = state.durable_lsn.max(written.last_lsn);
        state.stats.records += written.last_lsn + 1 - written.first_lsn;
        state.stats.record_bytes += written.record_bytes;
        drop(state);
        for (slot, first_lsn) in written.completed {
            slot.complete(Ok(first_lsn));
        }
    }

    /// Starts an `fdatasync` of the active segment if a written batch waits for one and
    /// fewer than [`SYNCS_IN_FLIGHT_MAX`] run.
    fn start_sync(self: &Rc<Self>, active: &Active) {
        let Some(covers) = self.state.borrow_mut().sync.start(SYNCS_IN_FLIGHT_MAX) else {
            return;
        };
        let (syncer, segment) = (active.syncer.clone(), active.first_lsn);
        let sync = run_sync(self.clone(), syncer, segment, active.path.clone(), covers);
        glommio::spawn_local(sync).detach();
    }
}

/// A batch whose write completed (or, inside [`Batch`], is about to), waiting to be made
/// durable.
#[derive(Debug)]
struct Written {
    segment: u64,
    new_end: u64,
    first_lsn: u64,
    last_lsn: u64,
    record_bytes: u64,
    meta: SegmentMeta,
    /// Appends whose last record is in this batch, with their first LSN.
    completed: Vec<(Rc<Slot>, u64)>,
}

/// One `fdatasync` covering the batches written up to `covers` (see `sync`): resolves
/// them, or fails them and poisons the WAL. Starts the next sync if more were written
/// meanwhile, and wakes the committer (which may be draining the syncs).
async fn run_sync(
    shared: Rc<Shared>,
    syncer: Syncer,
    segment: u64,
    path: PathBuf,
    mut covers: u64,
) {
    loop {
        let started = std::time::Instant::now();
        let result = sync_data(&syncer).await;
        let took_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let done = {
            let mut state = shared.state.borrow_mut();
            match result {
                Ok(()) => {
                    state.stats.syncs += 1;
                    state.stats.record_sync(took_us);
                    Ok(state.sync.synced(covers))
                }
                Err(e) => Err((
                    WalError::io("syncing segment", &path, e),
                    state.sync.failed(),
                )),
            }
        };
        match done {
            Ok(durable) => {
                for written in durable {
                    // The writer drains every sync before it switches segments.
                    assert_eq!(written.segment, segment, "a sync of another segment");
                    shared.make_durable(written);
                }
            }
            Err((error, failed)) => {
                for written in failed {
                    for (slot, _) in written.completed {
                        slot.complete(Err(error.clone()));
                    }
                }
                shared.poison(&error);
                shared.wake_committer();
                return;
            }
        }
        let next = shared.state.borrow_mut().sync.start(SYNCS_IN_FLIGHT_MAX);
        match next {
            Some(next) => covers = next,
            None => break,
        }
    }
    shared.wake_committer();
}

/// Waits until no written batch waits for a sync and no sync runs (or the WAL is
/// poisoned and none runs), so the active file can be switched or closed.
async fn drain_syncs(shared: &Rc<Shared>, active: &Active) {
    shared.start_sync(active);
    futures_lite::future::poll_fn(|cx| {
        let state = shared.state.borrow();
        let poisoned_idle = state.failed.is_some() && state.sync.in_flight() == 0;
        if state.sync.is_idle() || poisoned_idle {
            return Poll::Ready(());
        }
        *shared.committer_waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    })
    .await
}

/// The segment being written, owned by the committer.
struct Active {
    first_lsn: u64,
    path: PathBuf,
    file: Rc<DmaFile>,
    /// A second descriptor of the segment, for the `fdatasync`s on the blocking pool.
    syncer: Syncer,
    end_offset: u64,
    /// Valid bytes of the last partial block: `[align_down(end_offset), end_offset)`.
    tail: Vec<u8>,
    /// Written but not yet synced (interval mode).
    dirty: bool,
    /// The zero-filled file the next segment will be renamed from.
    spare: Option<Spare>,
}

/// A descriptor of a segment shared with the blocking pool's `fdatasync` calls.
type Syncer = std::sync::Arc<std::fs::File>;

/// Opens, on the blocking pool, the descriptor the syncs of the segment at `path` go
/// through (read-only: `fdatasync` flushes the file, whatever descriptor it is called on).
async fn open_syncer(path: &Path) -> Result<Syncer, WalError> {
    let owned = path.to_owned();
    glommio::executor()
        .spawn_blocking(move || std::fs::File::open(owned))
        .await
        .map(std::sync::Arc::new)
        .map_err(|e| WalError::io("opening segment", path, e))
}

/// `fdatasync` of a segment on the executor's blocking thread pool: the shard thread
/// never blocks, and no io-wq worker competes with it for its core.
async fn sync_data(syncer: &Syncer) -> std::io::Result<()> {
    let file = syncer.clone();
    glommio::executor()
        .spawn_blocking(move || file.sync_data())
        .await
}

/// A zero-filled file ready (or being prepared) to become the next segment.
enum Spare {
    Ready(PathBuf),
    Preparing(glommio::task::JoinHandle<Result<PathBuf, WalError>>),
}

/// Name of the zero-filled spare segment (ignored by segment listing).
const SPARE_FILE_NAME: &str = "spare.zero";
/// Name of the spare while it is being zero-filled.
const SPARE_TMP_FILE_NAME: &str = "spare.zero.tmp";
/// Size of the zero buffers written when filling a segment. The background fill of the
/// spare shares the disk with the commits: a commit queued behind a zero write waits
/// for it, so the writes are kept short (256 KiB is ~0.15 ms of this disk; with 1 MiB
/// the p99 time to durable with 256 appenders was about 0.4 ms higher).
const ZERO_FILL_CHUNK_BYTES: usize = 256 << 10;

fn align_down(v: u64) -> u64 {
    v / BLOCK_BYTES as u64 * BLOCK_BYTES as u64
}

impl Active {
    /// Creates the next segment and writes its `SegmentStart` record.
    async fn create(shared: &Rc<Shared>, spare: Option<PathBuf>) -> Result<Self, WalError> {
        let mut active = Self::prepare(shared, spare).await?;
        active.start(shared).await?;
        Ok(active)
    }

    /// Creates the next segment (named by the next LSN) from the zero-filled `spare` if
    /// there is one, else zero-filled or preallocated now, and makes its directory entry
    /// durable. Writes nothing into it, so it may run while the previous segment's last
    /// syncs do.
    async fn prepare(shared: &Rc<Shared>, spare: Option<PathBuf>) -> Result<Self, WalError> {
        let first_lsn = shared.state.borrow().sealed_lsn + 1;
        let path = segment_path(&shared.dir, first_lsn);
        let segment_bytes = shared.config.segment_bytes;
        let mut options = OpenOptions::new();
        options.read(true).write(true).mode(FILE_MODE);
        let file = match spare {
            Some(spare) => {
                glommio::io::rename(&spare, &path)
                    .await
                    .map_err(|e| WalError::io("renaming spare segment", &spare, e))?;
                options.dma_open(&path).await
            }
            None => options.create_new(true).dma_open(&path).await,
        }
        .map_err(|e| WalError::io("creating segment", &path, e))?;
        let size = file
            .file_size()
            .await
            .map_err(|e| WalError::io("sizing segment", &path, e))?;
        if size < segment_bytes && shared.config.zero_fill_segments {
            zero_fill(&file, size, segment_bytes, &path).await?;
        } else if size < segment_bytes {
            file.pre_allocate(segment_bytes, false)
                .await
                .map_err(|e| WalError::io("preallocating segment", &path, e))?;
        }
        sync_dir(&shared.dir).await?;
        let syncer = open_syncer(&path).await?;
        {
            let mut state = shared.state.borrow_mut();
            state
                .segments
                .insert(first_lsn, SegmentMeta::empty(shared.config.segment_bytes));
            state.stats.segments_created += 1;
        }
        Ok(Active {
            first_lsn,
            path,
            file: Rc::new(file),
            syncer,
            end_offset: 0,
            tail: Vec::new(),
            dirty: false,
            spare: None,
        })
    }

    /// Writes the `SegmentStart` record, the first of a new segment.
    async fn start(&mut self, shared: &Rc<Shared>) -> Result<(), WalError> {
        let next_message_id = shared.next_message_id.get();
        let mut start = Vec::new();
        Record::SegmentStart { next_message_id }.encode_unsealed(now_us(), &mut start)?;
        shared.state.borrow_mut().pending.splice(0..0, start);
        // The SegmentStart record has no waiter: commit it alone, before anything else.
        let batch = self.take_batch(shared, true);
        self.commit(shared, batch).await
    }

    /// Opens the last segment for appending; zeroes a torn tail first if recovery saw one.
    async fn reopen(shared: &Shared, first_lsn: u64, torn_bytes: u64) -> Result<Self, WalError> {
        let path = segment_path(&shared.dir, first_lsn);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .dma_open(&path)
            .await
            .map_err(|e| WalError::io("opening segment", &path, e))?;
        let end_offset = shared.state.borrow().segments[&first_lsn].end_offset;
        let block = align_down(end_offset);
        let mut tail = Vec::new();
        if end_offset > block {
            let reader = glommio::io::BufferedFile::open(&path)
                .await
                .map_err(|e| WalError::io("opening segment", &path, e))?;
            let read = reader
                .read_at(block, BLOCK_BYTES)
                .await
                .map_err(|e| WalError::io("reading segment tail", &path, e))?;
            let _ = reader.close().await;
            let valid = (end_offset - block) as usize;
            // A file cut inside the last record's padding still holds the whole record
            // (recovery checked its CRC); the padding it lost was zeros.
            if read.len() + RECORD_ALIGN <= valid {
                return Err(WalError::NoRecordAt {
                    segment: first_lsn,
                    offset: block,
                });
            }
            let kept = read.len().min(valid);
            tail.extend_from_slice(&read[..kept]);
            tail.resize(valid, 0);
        }
        let syncer = open_syncer(&path).await?;
        let active = Active {
            first_lsn,
            path,
            file: Rc::new(file),
            syncer,
            end_offset,
            tail,
            dirty: false,
            spare: None,
        };
        if torn_bytes > 0 {
            active.zero_after_end(torn_bytes).await?;
        }
        Ok(active)
    }

    /// Zeroes the `torn_bytes` after `end_offset` (keeping the valid prefix of the tail
    /// block) by writing zeros over them, which keeps the extents initialized, then syncs.
    async fn zero_after_end(&self, torn_bytes: u64) -> Result<(), WalError> {
        let block = align_down(self.end_offset);
        let end = (self.end_offset + torn_bytes).div_ceil(BLOCK_BYTES as u64) * BLOCK_BYTES as u64;
        let mut at = block;
        while at < end {
            let len = ((end - at) as usize).min(ZERO_FILL_CHUNK_BYTES);
            let mut buf = self.file.alloc_dma_buffer(len);
            buf.as_bytes_mut().fill(0);
            if at == block {
                buf.as_bytes_mut()[..self.tail.len()].copy_from_slice(&self.tail);
            }
            write_all(&self.file, buf, at, &self.path).await?;
            at += len as u64;
        }
        self.file
            .fdatasync()
            .await
            .map_err(|e| WalError::io("syncing segment", &self.path, e))
    }

    /// Starts zero-filling the next segment's spare once a sixteenth of this one is
    /// written (not at once: a WAL that stays nearly empty never writes a spare).
    fn maybe_prepare_spare(&mut self, shared: &Shared) {
        if !shared.config.zero_fill_segments
            || self.spare.is_some()
            || self.end_offset < shared.config.segment_bytes / 16
        {
            return;
        }
        let dir = shared.dir.clone();
        let config = shared.config.clone();
        let task = glommio::spawn_local(async move { prepare_spare(dir, &config).await }).detach();
        self.spare = Some(Spare::Preparing(task));
    }

    /// Waits for the spare, if one is being prepared; `None` if there is none or it failed.
    async fn take_spare(&mut self) -> Option<PathBuf> {
        finish_spare(self.spare.take()).await
    }

    fn room(&self, shared: &Shared) -> usize {
        (shared.config.segment_bytes - self.end_offset) as usize
    }

    /// Takes the pending records that fit the batch and the segment (only the first one
    /// when `wal_own` is set: the WAL's own `SegmentStart`, which has no waiter) and seals
    /// them into one aligned buffer. `None` when the first pending record does not fit the
    /// segment (rotate first).
    fn take_batch(&mut self, shared: &Shared, wal_own: bool) -> Option<Batch> {
        let mut guard = shared.state.borrow_mut();
        let State {
            pending,
            waiters,
            open,
            sealed_lsn,
            sync,
            ..
        } = &mut *guard;
        let records_max = if wal_own { 1 } else { usize::MAX };
        let limit = batch_limit(&shared.config, pending.len(), sync.waiting_bytes());
        let (len, count) = measure(pending, self.room(shared), limit, records_max);
        if count == 0 {
            return None;
        }
        let block = align_down(self.end_offset);
        let head = self.tail.len();
        let buf_len = (head + len).div_ceil(BLOCK_BYTES) * BLOCK_BYTES;
        let mut buf = self.file.alloc_dma_buffer(buf_len);
        let bytes = buf.as_bytes_mut();
        bytes[..head].copy_from_slice(&self.tail);
        bytes[head..head + len].copy_from_slice(&pending[..len]);
        bytes[head + len..].fill(0);
        pending.drain(..len);
        let first_lsn = *sealed_lsn + 1;
        let mut meta = SegmentMeta::empty(0);
        let sealing = Sealing {
            first_lsn,
            start_offset: self.end_offset,
            segment: self.first_lsn,
        };
        sealing.seal(&mut bytes[head..head + len], open, &mut meta);
        *sealed_lsn = first_lsn + count as u64 - 1;
        let mut completed = Vec::new();
        if !wal_own {
            assign_waiters(waiters, first_lsn, count, &mut completed);
        }
        Some(Batch {
            buf,
            block,
            written: Written {
                segment: self.first_lsn,
                new_end: self.end_offset + len as u64,
                first_lsn,
                last_lsn: *sealed_lsn,
                record_bytes: len as u64,
                meta,
                completed,
            },
        })
    }

    /// Writes a batch. In fsync mode it then waits for a sync (started here if fewer
    /// than [`SYNCS_IN_FLIGHT_MAX`] run) and the committer goes on to the next batch;
    /// otherwise its appends resolve now.
    async fn commit(&mut self, shared: &Rc<Shared>, batch: Option<Batch>) -> Result<(), WalError> {
        let Some(Batch {
            buf,
            block,
            written,
        }) = batch
        else {
            return Ok(());
        };
        let tail_start = align_down(written.new_end);
        let tail_at = (tail_start - block) as usize;
        let tail_len = (written.new_end - tail_start) as usize;
        self.tail.clear();
        self.tail
            .extend_from_slice(&buf.as_bytes()[tail_at..tail_at + tail_len]);
        if let Err(error) = write_all(&self.file, buf, block, &self.path).await {
            for (slot, _) in written.completed {
                slot.complete(Err(error.clone()));
            }
            shared.poison(&error);
            return Err(error);
        }
        self.end_offset = written.new_end;
        self.maybe_prepare_spare(shared);
        shared.state.borrow_mut().stats.commits += 1;
        match shared.config.sync {
            SyncMode::Fsync => {
                let bytes = written.record_bytes as usize;
                shared.state.borrow_mut().sync.written(written, bytes);
                shared.start_sync(self);
            }
            SyncMode::Interval { .. } => {
                self.dirty = true;
                shared.make_durable(written);
            }
            SyncMode::None => shared.make_durable(written),
        }
        Ok(())
    }

    async fn sync(&mut self, shared: &Shared) -> Result<(), WalError> {
        sync_data(&self.syncer)
            .await
            .map_err(|e| WalError::io("syncing segment", &self.path, e))?;
        self.dirty = false;
        shared.state.borrow_mut().stats.syncs += 1;
        Ok(())
    }
}

/// A batch is split into two cohorts only if each half has at least this many bytes:
/// below it the write is short next to the `fdatasync`, and a second sync costs more
/// than the overlap gains.
const COHORT_SPLIT_BYTES_MIN: usize = 64 << 10;

/// Most record bytes the next batch takes: `batch_bytes_max`, and in fsync mode at most
/// half of what is pending or waiting for a sync when that half is at least
/// [`COHORT_SPLIT_BYTES_MIN`], so that under a heavy steady load the appenders form two
/// cohorts and one cohort's batch is written while the other's `fdatasync` runs.
fn batch_limit(config: &WalConfig, pending_bytes: usize, waiting_bytes: usize) -> usize {
    let half = (pending_bytes + waiting_bytes) / 2;
    match config.sync {
        SyncMode::Fsync if half >= COHORT_SPLIT_BYTES_MIN => config.batch_bytes_max.min(half),
        SyncMode::Fsync | SyncMode::Interval { .. } | SyncMode::None => config.batch_bytes_max,
    }
}

/// One sealed group commit: the aligned buffer to write at `block`, and what the batch
/// becomes once its write completes.
struct Batch {
    buf: DmaBuffer,
    block: u64,
    written: Written,
}

/// Bytes and count of the leading pending records that fit `room` and `limit` (at least
/// one record if it fits `room`), at most `records_max`.
fn measure(pending: &[u8], room: usize, limit: usize, records_max: usize) -> (usize, usize) {
    let (mut len, mut count) = (0, 0);
    while len < pending.len() && count < records_max {
        let header = record::header_of(&pending[len..]);
        let total = record::record_bytes(header.payload_len as usize);
        if len + total > room || (count > 0 && len + total > limit) {
            break;
        }
        len += total;
        count += 1;
    }
    (len, count)
}

/// Where a run of records is being sealed.
struct Sealing {
    first_lsn: u64,
    start_offset: u64,
    segment: u64,
}

impl Sealing {
    /// Assigns LSNs and CRCs to the records in `bytes`, and folds them into the open
    /// set and the batch's segment facts.
    fn seal(&self, bytes: &mut [u8], open: &mut OpenSet, meta: &mut SegmentMeta) {
        let mut at = 0;
        let mut lsn = self.first_lsn;
        while at < bytes.len() {
            let header = record::header_of(&bytes[at..]);
            let total = record::record_bytes(header.payload_len as usize);
            record::seal(&mut bytes[at..at + total], lsn);
            let payload = record::payload_of(&bytes[at..]);
            let kind = RecordKind::from_u16(header.kind);
            let mut received = None;
            if kind == Some(RecordKind::MessageReceived) {
                // The hot case: only the id matters here, and it leads the payload (this
                // record was encoded from a valid `Record` a moment ago).
                let message_id = u64::from_le_bytes(payload[..8].try_into().expect("8 bytes"));
                open.on_received(self.segment, message_id);
                received = Some(message_id);
            } else if let Some(record) = kind.and_then(|k| Record::decode(k, payload)) {
                open.on_record(self.segment, &record);
                match record {
                    Record::Created { message_id, .. } => received = Some(message_id),
                    Record::Ruled { message_id, .. } => meta.note_ruled(message_id),
                    _ => {}
                }
            }
            at += total;
            meta.note(
                self.start_offset + at as u64,
                lsn,
                header.timestamp_us,
                received,
            );
            lsn += 1;
        }
    }
}

/// Gives the waiters at the front their first LSN and moves those whose last record is
/// among these `count` records to `completed`.
fn assign_waiters(
    waiters: &mut VecDeque<Waiter>,
    first_lsn: u64,
    mut count: usize,
    completed: &mut Vec<(Rc<Slot>, u64)>,
) {
    let mut lsn = first_lsn;
    while count > 0 {
        let Some(waiter) = waiters.front_mut() else {
            // Records without a waiter (the WAL's own SegmentStart).
            return;
        };
        if waiter.first_lsn == 0 {
            waiter.first_lsn = lsn;
        }
        let take = waiter.records_left.min(count);
        waiter.records_left -= take;
        count -= take;
        lsn += take as u64;
        if waiter.records_left == 0
            && let Some(done) = waiters.pop_front()
        {
            completed.push((done.slot, done.first_lsn));
        }
    }
}

/// Writes zeros over `[from, to)` of `file` and syncs it, so its extents are initialized
/// and later `fdatasync`s need no file-system journal commit.
async fn zero_fill(file: &DmaFile, from: u64, to: u64, path: &Path) -> Result<(), WalError> {
    let mut at = from / BLOCK_BYTES as u64 * BLOCK_BYTES as u64;
    while at < to {
        let len = ((to - at) as usize).min(ZERO_FILL_CHUNK_BYTES);
        let mut buf = file.alloc_dma_buffer(len);
        buf.as_bytes_mut().fill(0);
        write_all(file, buf, at, path).await?;
        at += len as u64;
    }
    file.fdatasync()
        .await
        .map_err(|e| WalError::io("syncing zero-filled segment", path, e))
}

/// Zero-fills (or, without `zero_fill_segments`, preallocates) a spare segment under a
/// temporary name, then renames it into place.
async fn prepare_spare(dir: PathBuf, config: &WalConfig) -> Result<PathBuf, WalError> {
    let tmp = dir.join(SPARE_TMP_FILE_NAME);
    let path = dir.join(SPARE_FILE_NAME);
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .dma_open(&tmp)
        .await
        .map_err(|e| WalError::io("creating spare segment", &tmp, e))?;
    let segment_bytes = config.segment_bytes;
    let filled = if config.zero_fill_segments {
        zero_fill(&file, 0, segment_bytes, &tmp).await
    } else {
        file.pre_allocate(segment_bytes, false)
            .await
            .map_err(|e| WalError::io("preallocating spare segment", &tmp, e))
    };
    let _ = file.close().await;
    if let Err(error) = filled {
        // Do not keep the space it took on a disk that is full.
        let _ = glommio::io::remove(&tmp).await;
        return Err(error);
    }
    glommio::io::rename(&tmp, &path)
        .await
        .map_err(|e| WalError::io("renaming spare segment", &tmp, e))?;
    Ok(path)
}

/// Waits for a spare being prepared; `None` if there is none or preparing it failed.
async fn finish_spare(spare: Option<Spare>) -> Option<PathBuf> {
    match spare? {
        Spare::Ready(path) => Some(path),
        Spare::Preparing(task) => match task.await? {
            Ok(path) => Some(path),
            Err(error) => {
                tracing::warn!(%error, "preparing a zero-filled spare segment failed");
                None
            }
        },
    }
}

/// A complete spare left by an earlier run (a partial one is removed).
fn adopt_spare(shared: &Shared) -> Option<Spare> {
    let _ = std::fs::remove_file(shared.dir.join(SPARE_TMP_FILE_NAME));
    let path = shared.dir.join(SPARE_FILE_NAME);
    let len = std::fs::metadata(&path).ok()?.len();
    if len == shared.config.segment_bytes {
        return Some(Spare::Ready(path));
    }
    let _ = std::fs::remove_file(&path);
    None
}

async fn write_all(file: &DmaFile, buf: DmaBuffer, at: u64, path: &Path) -> Result<(), WalError> {
    let want = buf.len();
    let written = file
        .write_at(buf, at)
        .await
        .map_err(|e| WalError::io("writing segment", path, e))?;
    if written != want {
        return Err(WalError::io(
            "writing segment",
            path,
            std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                format!("short write: {written} of {want} bytes at offset {at}"),
            ),
        ));
    }
    Ok(())
}

/// Closes a segment file once no sync task holds it any more (a task still running after
/// a failure keeps it; it is closed when that task drops it).
async fn close_file(file: Rc<DmaFile>) {
    if let Ok(file) = Rc::try_unwrap(file) {
        let _ = file.close().await;
    }
}

async fn sync_dir(dir: &Path) -> Result<(), WalError> {
    let handle = glommio::io::Directory::open(dir)
        .await
        .map_err(|e| WalError::io("opening WAL directory", dir, e))?;
    handle
        .sync()
        .await
        .map_err(|e| WalError::io("syncing WAL directory", dir, e))?;
    let _ = handle.close().await;
    Ok(())
}

/// What the committer does next.
enum Work {
    Commit,
    Sync,
    /// The WAL is unavailable: try to resume.
    Resume,
    Close,
}

async fn next_work(shared: &Shared, active: &Active) -> Work {
    let wait = futures_lite::future::poll_fn(|cx| {
        let state = shared.state.borrow();
        if !state.pending.is_empty() {
            return Poll::Ready(Work::Commit);
        }
        if state.closing {
            return Poll::Ready(Work::Close);
        }
        if state.failed.is_some() {
            return Poll::Ready(Work::Resume);
        }
        *shared.committer_waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    });
    match (shared.config.sync, active.dirty) {
        (SyncMode::Interval { interval_ms }, true) => {
            let timer = async {
                glommio::timer::sleep(Duration::from_millis(interval_ms)).await;
                Work::Sync
            };
            futures_lite::future::or(wait, timer).await
        }
        _ => wait.await,
    }
}

async fn run_committer(shared: Rc<Shared>, mut active: Active) {
    let mut last_sync = Instant::now();
    let mut last_marker = Instant::now();
    loop {
        let work = next_work(&shared, &active).await;
        let committed = matches!(work, Work::Commit);
        let result = match work {
            Work::Close => {
                close_committer(&shared, active).await;
                return;
            }
            Work::Resume => match resume_when_possible(&shared, active).await {
                Ok(resumed) => {
                    active = resumed;
                    continue;
                }
                Err(active) => {
                    close_committer(&shared, active).await;
                    return;
                }
            },
            Work::Sync => active.sync(&shared).await,
            Work::Commit => commit_pending(&shared, &mut active).await,
        };
        if let SyncMode::Interval { interval_ms } = shared.config.sync
            && active.dirty
            && last_sync.elapsed() >= Duration::from_millis(interval_ms)
        {
            let _ = active.sync(&shared).await;
        }
        if !active.dirty {
            last_sync = Instant::now();
        }
        if let Err(error) = result {
            shared.poison(&error);
        } else if committed
            && shared.config.sync == SyncMode::Fsync
            && last_marker.elapsed() >= Duration::from_secs(MARKER_INTERVAL_S)
        {
            // In fsync mode the facts are what was synced: the active segment too.
            start_marker(&shared, true).await;
            last_marker = Instant::now();
        }
    }
}

/// Flushes what is written, records how far the log is durable, closes the files and
/// releases the directory lock.
async fn close_committer(shared: &Rc<Shared>, mut active: Active) {
    drain_syncs(shared, &active).await;
    // In fsync mode the segments' facts are only ever what was synced; in interval mode
    // the active segment's are once this last sync succeeded.
    let mut synced = !active.dirty;
    if active.dirty && shared.state.borrow().failed.is_none() {
        synced = active.sync(shared).await.is_ok();
    }
    // Let a spare being zero-filled finish; the next open adopts it.
    let _ = active.take_spare().await;
    close_file(active.file).await;
    // What is durable is known even when the WAL is unavailable.
    write_marker(shared, synced).await;
    shared.lock.borrow_mut().take();
}

/// Replaces the synced-length marker with the durable facts of every segment, the
/// active one only with `with_active` (at close, once it is synced: in interval mode its
/// facts run ahead of its syncs). Nothing is durable with `SyncMode::None`. A failure is
/// logged: the marker only adds checks.
async fn write_marker(shared: &Shared, with_active: bool) {
    if shared.config.sync == SyncMode::None {
        return;
    }
    let previous = shared.marker.borrow_mut().take();
    if let Some(previous) = previous {
        previous.await;
    }
    write_marker_now(shared, with_active).await;
}

/// [`write_marker`] without waiting for one in flight (the caller did).
async fn write_marker_now(shared: &Shared, with_active: bool) {
    let text = marker_text(shared, with_active);
    if let Err(error) = synced::write(&shared.dir, text).await {
        tracing::warn!(%error, "WAL synced-length marker not updated");
    }
}

/// Starts replacing the marker (see [`write_marker`] for `with_active`) in a task of its
/// own, so a rotation or a commit does not wait for its `fsync`s; the next write waits
/// for it.
async fn start_marker(shared: &Rc<Shared>, with_active: bool) {
    let previous = shared.marker.borrow_mut().take();
    if let Some(previous) = previous {
        previous.await;
    }
    let shared_task = shared.clone();
    let task =
        glommio::spawn_local(async move { write_marker_now(&shared_task, with_active).await });
    *shared.marker.borrow_mut() = Some(task.detach());
}

fn marker_text(shared: &Shared, with_active: bool) -> String {
    let state = shared.state.borrow();
    let active = state.segments.keys().next_back().copied();
    let mut segments = state.segments.clone();
    if let (false, Some(active)) = (with_active, active) {
        segments.remove(&active);
    }
    // Below the oldest segment with an open message, and below the active one (the only
    // one not sealed), every message is closed.
    let closed_below = match (state.open.oldest_open_segment(), active) {
        (Some(open), Some(active)) => open.min(active),
        (open, active) => open.or(active).unwrap_or(0),
    };
    synced::encode(&segments, closed_below)
}

/// The unavailable WAL's committer: waits for the syncs in flight, then tries to resume
/// every [`RESUME_RETRY_INTERVAL_MS`] until it does (the new active segment) or the WAL
/// closes (the old one back, to close).
async fn resume_when_possible(shared: &Rc<Shared>, mut active: Active) -> Result<Active, Active> {
    drain_syncs(shared, &active).await;
    let _ = active.take_spare().await;
    loop {
        let retry = Duration::from_millis(RESUME_RETRY_INTERVAL_MS);
        if wait_unless_closing(shared, retry).await {
            return Err(active);
        }
        match resume(shared).await {
            Ok(resumed) => {
                close_file(std::mem::replace(&mut active, resumed).file).await;
                let mut state = shared.state.borrow_mut();
                let (cause, since) = state.failed.take().expect("resuming an unavailable WAL");
                state.stats.resumptions += 1;
                tracing::warn!(
                    dir = %shared.dir.display(),
                    unavailable_s = since.elapsed().as_secs(),
                    refused_appends = state.stats.refused,
                    "WAL writable again; appends resume (it failed with: {cause})"
                );
                drop(state);
                if let Some(hook) = shared.on_resume.0.borrow().as_ref() {
                    hook();
                }
                return Ok(active);
            }
            Err(error) => {
                // The status shows why it still cannot (the log said it once already).
                tracing::debug!(%error, "WAL still cannot resume");
                if let Some((cause, _)) = shared.state.borrow_mut().failed.as_mut() {
                    *cause = error.to_string();
                }
            }
        }
    }
}

/// Sleeps `wait`; true if the WAL started closing meanwhile (or had).
async fn wait_unless_closing(shared: &Shared, wait: Duration) -> bool {
    let closing = futures_lite::future::poll_fn(|cx| {
        if shared.state.borrow().closing {
            return Poll::Ready(true);
        }
        *shared.committer_waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    });
    let timer = async {
        glommio::timer::sleep(wait).await;
        false
    };
    futures_lite::future::or(closing, timer).await
}

/// One attempt to make an unavailable WAL writable again: keeps exactly what was durable
/// (see the module header) and returns the segment to append to, with a spare ready.
async fn resume(shared: &Rc<Shared>) -> Result<Active, WalError> {
    // A sync an earlier attempt started must finish before the tracker is reset.
    futures_lite::future::poll_fn(|cx| {
        if shared.state.borrow().sync.in_flight() == 0 {
            return Poll::Ready(());
        }
        *shared.committer_waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    })
    .await;
    // Room for a whole segment first (cheap to try while the disk is still full), or
    // the next rotation would fail again at once.
    let spare = match adopt_spare(shared) {
        Some(spare) => spare,
        None => Spare::Ready(prepare_spare(shared.dir.clone(), &shared.config).await?),
    };
    let durable_lsn = shared.state.borrow().durable_lsn;
    // A segment begun after the last durable record holds nothing acknowledged.
    for first_lsn in list_segments(&shared.dir)? {
        if first_lsn > durable_lsn {
            let path = segment_path(&shared.dir, first_lsn);
            gone_or_err(glommio::io::remove(&path).await, "removing segment", &path)?;
        }
    }
    let (recovery, resume) = recovery::recover(&shared.dir, durable_lsn, false).await?;
    {
        let mut state = shared.state.borrow_mut();
        state.segments = resume.segments;
        state.open = resume.open;
        state.sealed_lsn = durable_lsn;
        state.sync = SyncTracker::default();
    }
    let torn_bytes = recovery.stats.torn_bytes_dropped;
    let mut active = match shared.last_segment() {
        Some(first_lsn) => Active::reopen(shared, first_lsn, torn_bytes).await?,
        None => Active::create(shared, None).await?,
    };
    active.spare = Some(spare);
    Ok(active)
}

/// Gathers a batch (waiting `batch_wait_us_max` or one yield), rotating if the segment is
/// full, and commits it.
async fn commit_pending(shared: &Rc<Shared>, active: &mut Active) -> Result<(), WalError> {
    let wait_us = shared.config.batch_wait_us_max;
    if wait_us > 0 && shared.state.borrow().pending.len() < shared.config.batch_bytes_max {
        glommio::timer::sleep(Duration::from_micros(wait_us)).await;
    } else {
        futures_lite::future::yield_now().await;
    }
    let batch = active.take_batch(shared, false);
    if batch.is_some() {
        return active.commit(shared, batch).await;
    }
    if shared.state.borrow().pending.is_empty() {
        return Ok(());
    }
    rotate(shared, active).await
}

/// Seals the full segment and starts the next one, then applies retention. The next
/// file is renamed into place and its directory entry synced while the full segment's
/// last syncs run; nothing is written into it before those are done, so the log on disk
/// is always a prefix.
async fn rotate(shared: &Rc<Shared>, active: &mut Active) -> Result<(), WalError> {
    let spare = active.spare.take();
    let prepare = async { Active::prepare(shared, finish_spare(spare).await).await };
    let ((), next) = futures_lite::future::zip(drain_syncs(shared, active), prepare).await;
    let mut next = next?;
    if let Some((cause, _)) = &shared.state.borrow().failed {
        return Err(WalError::Unavailable {
            dir: shared.dir.clone(),
            cause: cause.clone(),
        });
    }
    if active.dirty {
        active.sync(shared).await?;
    }
    next.start(shared).await?;
    let old = std::mem::replace(active, next);
    close_file(old.file).await;
    // The full segment's facts are final: record how far it is durable.
    if shared.config.sync != SyncMode::None {
        start_marker(shared, false).await;
    }
    // A failed removal (e.g. an archive on another file system) must not stop appends.
    if let Err(error) = run_retention(shared).await {
        tracing::error!(%error, "WAL retention failed; segments are kept");
    }
    Ok(())
}

/// `Ok` if the operation succeeded or the file was already gone (a concurrent retention
/// pass moved it).
fn gone_or_err(
    result: glommio::Result<(), ()>,
    op: &'static str,
    path: &Path,
) -> Result<(), WalError> {
    match result.map_err(std::io::Error::from) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(WalError::io(op, path, e)),
    }
}

async fn run_retention(shared: &Shared) -> Result<Vec<u64>, WalError> {
    let (victims, archive) = {
        let state = shared.state.borrow();
        let ages: Vec<SegmentAge> = state
            .segments
            .iter()
            .map(|(&first_lsn, meta)| SegmentAge {
                first_lsn,
                file_bytes: meta.file_bytes,
                ts_max_us: meta.ts_max_us,
            })
            .collect();
        let victims = retention::removable(
            &ages,
            state.open.oldest_open_segment(),
            now_us(),
            shared.config.retention_age_s,
            shared.config.retention_bytes_max,
        );
        (victims, shared.config.archive_dir.clone())
    };
    for &first_lsn in &victims {
        let path = segment_path(&shared.dir, first_lsn);
        match &archive {
            Some(archive) => {
                let to = segment_path(archive, first_lsn);
                let renamed = glommio::io::rename(&path, &to).await;
                gone_or_err(renamed, "archiving segment", &path)?;
            }
            None => gone_or_err(glommio::io::remove(&path).await, "removing segment", &path)?,
        }
        let mut state = shared.state.borrow_mut();
        // A concurrent retention pass may have retired it already.
        if state.segments.remove(&first_lsn).is_none() {
            continue;
        }
        state.stats.segments_removed += 1;
        tracing::info!(
            segment = first_lsn,
            archived = archive.is_some(),
            "WAL segment retired"
        );
    }
    if !victims.is_empty() {
        sync_dir(&shared.dir).await?;
    }
    Ok(victims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sync_counts_in_the_first_bucket_whose_bound_holds_it() {
        let mut stats = WalStats::default();
        for us in [1, 100, 101, 1_000_000, 1_000_001, u64::MAX] {
            stats.record_sync(us);
        }
        let mut want = [0; SYNC_US_BOUNDS.len() + 1];
        want[0] = 2;
        want[1] = 1;
        want[SYNC_US_BOUNDS.len() - 1] = 1;
        want[SYNC_US_BOUNDS.len()] = 2;
        assert_eq!(stats.sync_us_buckets, want);
        assert_eq!(stats.sync_us_total, u64::MAX, "saturates");
    }
}
