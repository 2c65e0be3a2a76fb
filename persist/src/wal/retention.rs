//! Retention: which messages are still open, and which old segments may go.
//!
//! A message is *open* from its `MessageReceived` (or `Created`) record until it has seen
//! at least one terminal record (`Completed` or `Discarded`) and has no outstanding
//! delivery (every `Enqueued` or created-for target completed or discarded): the rule is
//! `closing`'s, shared with recovery. `Suspended` and `Failed` leave a delivery
//! outstanding: such a message waits in the engine's held lists for an operator, who
//! resends it (a new `Enqueued`) or discards it (`Discarded`), so its segment is kept
//! until then. The engine appends all `Enqueued` records of a message in one
//! `append_many` before any completion, and records "routed nowhere" as a `Discarded`
//! with an empty target.
//!
//! Invariant: segments are removed only as a prefix of the log (oldest first), never the
//! active one, and only when no message received in them or before them is open. That
//! keeps every record recovery needs: a message's `Enqueued` records are never older than
//! its `MessageReceived`. A closed segment goes when its newest record is older than the
//! retention age, or while the WAL's total bytes exceed the retention maximum; open
//! segments stay whatever their size (never a silent loss).

use std::collections::BTreeMap;

use crate::wal::closing::{Effect, effect};
use crate::wal::record::Record;

/// Open messages and how many of them each segment holds.
#[derive(Debug, Default)]
pub struct OpenSet {
    /// By message id. Ids are handed out in increasing order, so a B-tree inserts at
    /// its right edge, in cache, where a hash map would miss the cache on every insert
    /// once many messages are open.
    open: BTreeMap<u64, OpenMessage>,
    /// Segment (first LSN) → open messages received in it; zero counts are removed.
    open_per_segment: BTreeMap<u64, u64>,
}

#[derive(Debug)]
struct OpenMessage {
    segment: u64,
    outstanding: Vec<Box<str>>,
    terminal_seen: bool,
}

impl OpenSet {
    /// Applies a record written (or recovered) in `segment`. Returns the message id if
    /// this record closed its message.
    pub fn on_record(&mut self, segment: u64, record: &Record<'_>) -> Option<u64> {
        match effect(record) {
            Effect::Opens {
                message_id,
                targets,
            } => {
                self.on_received(segment, message_id);
                targets.iter().for_each(|t| self.owe(message_id, t));
                None
            }
            Effect::Owes { message_id, target } => {
                self.owe(message_id, target);
                None
            }
            Effect::Closes { message_id, target } => self.on_terminal(message_id, target),
            Effect::Holds { .. } | Effect::None => None,
        }
    }

    /// Notes a delivery of open message `message_id` owed to `target`.
    fn owe(&mut self, message_id: u64, target: &str) {
        if let Some(message) = self.open.get_mut(&message_id)
            && !message.outstanding.iter().any(|t| &**t == target)
        {
            message.outstanding.push(target.into());
        }
    }

    /// Applies a `MessageReceived` of `message_id` written (or recovered) in `segment`.
    pub fn on_received(&mut self, segment: u64, message_id: u64) {
        let previous = self.open.insert(
            message_id,
            OpenMessage {
                segment,
                outstanding: Vec::new(),
                terminal_seen: false,
            },
        );
        if let Some(previous) = previous {
            self.release(previous.segment);
        }
        *self.open_per_segment.entry(segment).or_insert(0) += 1;
    }

    fn on_terminal(&mut self, message_id: u64, target: &str) -> Option<u64> {
        let message = self.open.get_mut(&message_id)?;
        message.outstanding.retain(|t| &**t != target);
        message.terminal_seen = true;
        if !message.outstanding.is_empty() {
            return None;
        }
        let segment = message.segment;
        self.open.remove(&message_id);
        self.release(segment);
        Some(message_id)
    }

    fn release(&mut self, segment: u64) {
        if let Some(count) = self.open_per_segment.get_mut(&segment) {
            *count -= 1;
            if *count == 0 {
                self.open_per_segment.remove(&segment);
            }
        }
    }

    /// Whether `message_id` is open.
    pub fn is_open(&self, message_id: u64) -> bool {
        self.open.contains_key(&message_id)
    }

    /// Number of open messages.
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// Whether no message is open.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// The oldest segment that holds an open message.
    pub fn oldest_open_segment(&self) -> Option<u64> {
        self.open_per_segment.keys().next().copied()
    }
}

/// What retention knows about one closed-candidate segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentAge {
    pub first_lsn: u64,
    pub file_bytes: u64,
    /// Newest record timestamp (µs since the epoch), 0 if none.
    pub ts_max_us: u64,
}

/// Chooses the segments to remove, oldest first. `segments` is every segment in log
/// order, the last one active; `oldest_open` is from [`OpenSet::oldest_open_segment`].
pub fn removable(
    segments: &[SegmentAge],
    oldest_open: Option<u64>,
    now_us: u64,
    age_s_max: Option<u64>,
    bytes_max: Option<u64>,
) -> Vec<u64> {
    let mut total: u64 = segments.iter().map(|s| s.file_bytes).sum();
    let mut out = Vec::new();
    let Some((_active, older)) = segments.split_last() else {
        return out;
    };
    for segment in older {
        if oldest_open.is_some_and(|open| open <= segment.first_lsn) {
            break;
        }
        let too_old =
            age_s_max.is_some_and(|age| segment.ts_max_us.saturating_add(age * 1_000_000) < now_us);
        let too_big = bytes_max.is_some_and(|max| total > max);
        if !(too_old || too_big) {
            break;
        }
        total -= segment.file_bytes;
        out.push(segment.first_lsn);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(id: u64) -> Record<'static> {
        Record::MessageReceived {
            message_id: id,
            source: "in",
            meta: Default::default(),
            bytes: b"x",
        }
    }

    #[test]
    fn message_closes_after_every_enqueued_target_completes() {
        let mut set = OpenSet::default();
        set.on_record(1, &received(1));
        for target in ["a", "b"] {
            set.on_record(
                1,
                &Record::Enqueued {
                    message_id: 1,
                    target,
                },
            );
        }
        let done = |target| Record::Completed {
            message_id: 1,
            target,
        };
        assert_eq!(set.on_record(2, &done("a")), None);
        assert!(set.is_open(1));
        assert_eq!(set.on_record(2, &done("b")), Some(1));
        assert_eq!(set.oldest_open_segment(), None);
    }

    #[test]
    fn a_suspended_or_failed_delivery_keeps_its_message_open_until_discarded() {
        let mut set = OpenSet::default();
        set.on_record(1, &received(7));
        set.on_record(
            1,
            &Record::Enqueued {
                message_id: 7,
                target: "a",
            },
        );
        set.on_record(
            1,
            &Record::Suspended {
                message_id: 7,
                target: "a",
                reason: "AE",
            },
        );
        assert!(set.is_open(7), "a suspended delivery stays outstanding");
        assert_eq!(set.oldest_open_segment(), Some(1));
        set.on_record(
            2,
            &Record::Failed {
                message_id: 7,
                target: "a",
                reason: "AE after FailureTimeout",
            },
        );
        assert!(set.is_open(7), "a failed delivery waits for an operator");
        assert_eq!(set.oldest_open_segment(), Some(1));
        let discarded = Record::Discarded {
            message_id: 7,
            target: "a",
            reason: "discarded by an operator",
        };
        assert_eq!(set.on_record(3, &discarded), Some(7));
        assert_eq!(set.oldest_open_segment(), None);
    }

    #[test]
    fn removal_stops_at_first_open_segment_and_never_takes_active() {
        let seg = |first_lsn| SegmentAge {
            first_lsn,
            file_bytes: 10,
            ts_max_us: 0,
        };
        let segments = [seg(1), seg(100), seg(200), seg(300)];
        assert_eq!(
            removable(&segments, Some(200), 10_000_000, Some(1), None),
            vec![1, 100]
        );
        assert_eq!(
            removable(&segments, None, 10_000_000, Some(1), None),
            vec![1, 100, 200]
        );
        assert!(removable(&segments, None, 10_000_000, None, None).is_empty());
        assert_eq!(removable(&segments, None, 0, None, Some(25)), vec![1, 100]);
    }
}
