//! Which written group commits an `fdatasync` makes durable (fsync mode).
//!
//! The committer writes one batch at a time, but does not wait for the batch's sync
//! before writing the next: batch k+1 is written while batch k's `fdatasync` runs, and up
//! to [`SYNCS_IN_FLIGHT_MAX`] syncs run at once. [`SyncTracker`] is the bookkeeping that
//! keeps this exact, as a pure state machine (no I/O) so it can be tested on its own.
//!
//! Invariant: a batch becomes durable only when a sync that *started after the batch's
//! write completed* has finished. Each written batch gets the next sequence number when
//! its write completes ([`SyncTracker::written`]); a sync, when it starts
//! ([`SyncTracker::start`]), covers every sequence number written so far and nothing
//! later; when it finishes ([`SyncTracker::synced`]) it releases the batches it covers,
//! oldest first. Syncs may finish out of order: a later sync covers everything an
//! earlier one does, so whichever finishes first releases what it covers and the other
//! releases what is left. A failed sync leaves the on-disk state unknown, so it releases
//! nothing and hands back every batch not yet durable ([`SyncTracker::failed`]).
//!
//! A sync covers one file: the writer drains the tracker (no batch waiting, no sync in
//! flight) before it switches segments.

use std::collections::VecDeque;

/// Most `fdatasync`s in flight at once: with two, the sync of batch k+1 can start as soon
/// as its write completes, while batch k's sync is still running.
/// The syncs run on the executor's blocking thread pool, one per thread, so the pool of
/// an executor that opens a WAL needs at least this many threads for them to overlap
/// ([`crate::SYNC_THREADS`]).
pub const SYNCS_IN_FLIGHT_MAX: usize = 2;

/// Written batches waiting for a sync, and the syncs in flight. `T` is the batch.
#[derive(Debug)]
pub struct SyncTracker<T> {
    /// Written, not yet durable, in write order: sequence number, record bytes, batch.
    waiting: VecDeque<(u64, usize, T)>,
    /// Sequence number of the last completed write (0 before the first).
    written_seq: u64,
    /// Highest sequence number covered by a sync that has started.
    covered_seq: u64,
    in_flight: usize,
    /// Record bytes of the waiting batches.
    waiting_bytes: usize,
}

impl<T> Default for SyncTracker<T> {
    fn default() -> Self {
        Self {
            waiting: VecDeque::new(),
            written_seq: 0,
            covered_seq: 0,
            in_flight: 0,
            waiting_bytes: 0,
        }
    }
}

impl<T> SyncTracker<T> {
    /// A batch's write (of `bytes` record bytes) completed; it waits for a sync.
    pub fn written(&mut self, batch: T, bytes: usize) {
        self.written_seq += 1;
        self.waiting_bytes += bytes;
        self.waiting.push_back((self.written_seq, bytes, batch));
    }

    /// Starts a sync if a written batch is not covered by one already and fewer than
    /// `in_flight_max` run; returns the sequence number it covers (pass it to `synced`).
    pub fn start(&mut self, in_flight_max: usize) -> Option<u64> {
        if self.in_flight >= in_flight_max || self.written_seq == self.covered_seq {
            return None;
        }
        self.in_flight += 1;
        self.covered_seq = self.written_seq;
        Some(self.covered_seq)
    }

    /// A sync that covered `covers` succeeded: the batches it made durable, oldest first.
    pub fn synced(&mut self, covers: u64) -> Vec<T> {
        assert!(self.in_flight > 0, "a sync finished that was never started");
        assert!(
            covers <= self.covered_seq,
            "a sync covers an unwritten batch"
        );
        self.in_flight -= 1;
        let mut durable = Vec::new();
        while self
            .waiting
            .front()
            .is_some_and(|(seq, _, _)| *seq <= covers)
        {
            let (_, bytes, batch) = self.waiting.pop_front().expect("front checked");
            self.waiting_bytes -= bytes;
            durable.push(batch);
        }
        durable
    }

    /// A sync failed: every batch not yet durable, oldest first (none of them may be
    /// reported durable now).
    pub fn failed(&mut self) -> Vec<T> {
        assert!(self.in_flight > 0, "a sync failed that was never started");
        self.in_flight -= 1;
        self.take_all()
    }

    /// Every waiting batch, for failing them (the WAL became unavailable).
    pub fn take_all(&mut self) -> Vec<T> {
        self.waiting_bytes = 0;
        self.covered_seq = self.written_seq;
        self.waiting.drain(..).map(|(_, _, batch)| batch).collect()
    }

    /// No batch waiting and no sync in flight.
    pub fn is_idle(&self) -> bool {
        self.waiting.is_empty() && self.in_flight == 0
    }

    /// Syncs running.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Record bytes written and waiting for a sync.
    pub fn waiting_bytes(&self) -> usize {
        self.waiting_bytes
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_batch_written_during_a_sync_waits_for_the_next_sync() {
        let mut t = SyncTracker::default();
        t.written("a", 10);
        let first = t.start(2).expect("sync of a");
        t.written("b", 20);
        assert_eq!(t.waiting_bytes(), 30);
        // The first sync started before b's write completed: it releases only a.
        assert_eq!(t.synced(first), vec!["a"]);
        assert!(!t.is_idle());
        let second = t.start(2).expect("sync of b");
        assert_eq!(t.synced(second), vec!["b"]);
        assert!(t.is_idle());
        assert_eq!(t.waiting_bytes(), 0);
    }

    #[test]
    fn a_later_sync_finishing_first_releases_the_earlier_batches_too() {
        let mut t = SyncTracker::default();
        t.written(1, 1);
        let s1 = t.start(2).unwrap();
        t.written(2, 1);
        let s2 = t.start(2).unwrap();
        assert_eq!(t.start(2), None, "two in flight at most");
        assert_eq!(t.synced(s2), vec![1, 2]);
        assert_eq!(t.synced(s1), Vec::<i32>::new());
        assert!(t.is_idle());
    }

    #[test]
    fn no_sync_starts_without_an_uncovered_write() {
        let mut t: SyncTracker<()> = SyncTracker::default();
        assert_eq!(t.start(2), None);
        t.written((), 1);
        let s = t.start(2).unwrap();
        assert_eq!(t.start(2), None, "the running sync covers the only write");
        t.synced(s);
        assert_eq!(t.start(2), None);
    }

    #[test]
    fn a_failed_sync_releases_nothing_and_hands_back_every_waiting_batch() {
        let mut t = SyncTracker::default();
        t.written(1, 1);
        let s1 = t.start(2).unwrap();
        t.written(2, 1);
        let _s2 = t.start(2).unwrap();
        t.written(3, 1);
        assert_eq!(t.failed(), vec![1, 2, 3]);
        assert_eq!(t.synced(s1), Vec::<i32>::new());
        assert_eq!(t.waiting_bytes(), 0);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Write,
        Start,
        /// Finish the in-flight sync at this index (modulo the number in flight).
        Finish(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            Just(Op::Write),
            Just(Op::Start),
            (0usize..4).prop_map(Op::Finish)
        ]
    }

    proptest! {
        /// Against a model that records, per batch, when its write completed and, per
        /// sync, when it started: every released batch was written before some finished
        /// sync started, batches are released once each and in write order, and after
        /// draining every batch is released.
        #[test]
        fn batches_are_released_only_by_a_sync_started_after_their_write(
            ops in proptest::collection::vec(op(), 0..200)
        ) {
            let mut t = SyncTracker::default();
            let mut clock = 0u64;
            let mut written_at = Vec::new();
            // In flight: (covers, started at).
            let mut running: Vec<(u64, u64)> = Vec::new();
            let mut released = Vec::new();
            let check = |batch: usize, started: u64, written_at: &[u64]| {
                prop_assert!(written_at[batch] < started, "batch {} released by an earlier sync", batch);
                Ok(())
            };
            for op in ops.iter().cloned().chain(std::iter::repeat_n(Op::Start, 1)) {
                clock += 1;
                match op {
                    Op::Write => {
                        t.written(written_at.len(), 1);
                        written_at.push(clock);
                    }
                    Op::Start => {
                        if let Some(covers) = t.start(SYNCS_IN_FLIGHT_MAX) {
                            running.push((covers, clock));
                        }
                    }
                    Op::Finish(i) if !running.is_empty() => {
                        let (covers, started) = running.remove(i % running.len());
                        for batch in t.synced(covers) {
                            check(batch, started, &written_at)?;
                            released.push(batch);
                        }
                    }
                    Op::Finish(_) => {}
                }
                prop_assert!(running.len() <= SYNCS_IN_FLIGHT_MAX);
            }
            // Drain: finish what runs, start and finish until idle.
            while !t.is_idle() {
                clock += 1;
                if let Some(covers) = t.start(SYNCS_IN_FLIGHT_MAX) {
                    running.push((covers, clock));
                }
                let (covers, started) = running.remove(0);
                for batch in t.synced(covers) {
                    check(batch, started, &written_at)?;
                    released.push(batch);
                }
            }
            let expect: Vec<usize> = (0..written_at.len()).collect();
            prop_assert_eq!(released, expect);
            prop_assert_eq!(t.waiting_bytes(), 0);
        }
    }
}
