//! The held lists: messages that failed or were suspended at an item and wait for an
//! operator, one list per origin shard (the shard whose WAL holds the message's records).
//!
//! An entry is made once the `Failed` or `Suspended` record is durable, and at recovery
//! for every delivery whose last record is one of those; it leaves the list when the
//! operator resends the message (a durable `Enqueued` first) or discards it (a durable
//! `Discarded`). A held message stays open in the WAL until then, so its bytes are read
//! back from the WAL for `show` and `resend`; an entry holds only the facts shown in a
//! listing.
//!
//! Limits: at most [`HELD_LISTED_MAX`] entries per shard are kept in memory. A message
//! held beyond that is counted (`unlisted`) but not listed; it stays in the WAL, and the
//! next start lists it if there is room then (recovery lists item by item, each item's
//! oldest first). Status reads the counts, kept as entries come and go; it never copies
//! or walks the list (only `hie ctl held` does, to list it). The counts stay exact: a message that is not listed cannot be resent or
//! discarded, so it stays counted until a restart counts it again from the WAL.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::envelope::ItemId;

/// Most held messages listed in memory per shard; more are counted, not listed.
pub const HELD_LISTED_MAX: usize = 10_000;

/// Why a message is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeldKind {
    /// The item gave up on it (ReplyCodeActions `F`, or `R…F` after FailureTimeout).
    Failed,
    /// The item suspended it (ReplyCodeActions `S`, or `R…S` after FailureTimeout).
    Suspended,
}

/// What a listing shows of one held message (the item is the key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldEntry {
    pub kind: HeldKind,
    pub reason: String,
    /// When it was failed or suspended, µs since the Unix epoch.
    pub at_us: u64,
    /// MSH-9, e.g. `ADT^A01`.
    pub message_type: String,
    /// MSH-10.
    pub control_id: String,
}

/// What a listing shows of a message, taken from its bytes where it failed (MSH-9 and
/// MSH-10; for a batch taken whole, `BatchHandling=Whole`, its outermost header `FHS` or
/// `BHS` and its control id, BHS-11 else FHS-11; empty when the bytes are neither).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeldFacts {
    pub message_type: String,
    pub control_id: String,
}

impl HeldFacts {
    pub fn of(bytes: &[u8]) -> HeldFacts {
        if hie_hl7::Batch::has_envelope(bytes) {
            let env = hie_hl7::Envelope::of(bytes);
            return HeldFacts {
                message_type: env.header_id().to_owned(),
                control_id: crate::engine::runtime::text_of(env.control_id()).into_owned(),
            };
        }
        match hie_hl7::Message::scan(bytes) {
            Ok(msg) => HeldFacts::of_message(&msg),
            Err(_) => HeldFacts::default(),
        }
    }

    /// [`HeldFacts::of`] the envelope's bytes, read on the scan it carries.
    pub fn of_envelope(env: &crate::envelope::Envelope) -> HeldFacts {
        match env.message() {
            Some(msg) => HeldFacts::of_message(&msg),
            None => HeldFacts::of(&env.bytes),
        }
    }

    fn of_message(msg: &hie_hl7::Message<'_>) -> HeldFacts {
        HeldFacts {
            message_type: crate::engine::runtime::message_type_of(msg),
            control_id: crate::engine::runtime::text_of(msg.control_id().unwrap_or_default())
                .into_owned(),
        }
    }
}

/// Held counts of one shard, listed or not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct HeldCounts {
    pub failed: u64,
    pub suspended: u64,
    /// Of those, how many are not listed (beyond [`HELD_LISTED_MAX`]).
    pub unlisted: u64,
}

/// The held messages of one shard, by WAL message id and item.
#[derive(Debug)]
pub struct HeldList {
    listed_max: usize,
    entries: BTreeMap<(u64, ItemId), HeldEntry>,
    /// Of `entries`, how many are `Failed` (kept as they change, so that the counts a
    /// status reports cost nothing however long the list).
    listed_failed: u64,
    /// Held but not listed, by kind.
    unlisted_failed: u64,
    unlisted_suspended: u64,
}

impl Default for HeldList {
    fn default() -> Self {
        HeldList::new(HELD_LISTED_MAX)
    }
}

impl HeldList {
    /// A list keeping at most `listed_max` entries in memory.
    pub fn new(listed_max: usize) -> Self {
        HeldList {
            listed_max,
            entries: BTreeMap::new(),
            listed_failed: 0,
            unlisted_failed: 0,
            unlisted_suspended: 0,
        }
    }

    /// Holds message `wal_id` at `item` (replacing its earlier entry there: a resent
    /// message that fails again). Returns false when the list is full and the message is
    /// only counted.
    pub fn hold(&mut self, wal_id: u64, item: ItemId, entry: HeldEntry) -> bool {
        let key = (wal_id, item);
        if self.entries.len() >= self.listed_max && !self.entries.contains_key(&key) {
            match entry.kind {
                HeldKind::Failed => self.unlisted_failed += 1,
                HeldKind::Suspended => self.unlisted_suspended += 1,
            }
            return false;
        }
        let failed = entry.kind == HeldKind::Failed;
        if let Some(old) = self.entries.insert(key, entry) {
            self.forget(&old);
        }
        self.listed_failed += u64::from(failed);
        true
    }

    /// Takes `entry`, no longer listed, out of the listed counts.
    fn forget(&mut self, entry: &HeldEntry) {
        if entry.kind == HeldKind::Failed {
            self.listed_failed -= 1;
        }
    }

    /// Takes message `wal_id` at `item` off the list (resent or discarded).
    pub fn release(&mut self, wal_id: u64, item: ItemId) -> Option<HeldEntry> {
        let entry = self.entries.remove(&(wal_id, item))?;
        self.forget(&entry);
        Some(entry)
    }

    /// The items where message `wal_id` is listed.
    pub fn items_of(&self, wal_id: u64) -> Vec<ItemId> {
        self.entries
            .range((wal_id, 0)..=(wal_id, ItemId::MAX))
            .map(|(&(_, item), _)| item)
            .collect()
    }

    /// The entry of message `wal_id` at `item`.
    pub fn get(&self, wal_id: u64, item: ItemId) -> Option<&HeldEntry> {
        self.entries.get(&(wal_id, item))
    }

    /// Every listed entry, oldest message first.
    pub fn iter(&self) -> impl Iterator<Item = (u64, ItemId, &HeldEntry)> {
        self.entries
            .iter()
            .map(|(&(wal_id, item), entry)| (wal_id, item, entry))
    }

    /// Counts by kind, listed or not (kept as entries come and go: no walk of the list).
    pub fn counts(&self) -> HeldCounts {
        let failed = self.listed_failed;
        let listed = self.entries.len() as u64;
        HeldCounts {
            failed: failed + self.unlisted_failed,
            suspended: listed - failed + self.unlisted_suspended,
            unlisted: self.unlisted_failed + self.unlisted_suspended,
        }
    }
}

/// `2026-12-06T03:04:05.678Z` for µs since the Unix epoch (UTC, proleptic Gregorian).
pub fn utc_text(at_us: u64) -> String {
    let secs = at_us / 1_000_000;
    let millis = (at_us / 1000) % 1000;
    let (days, day_secs) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = hie_hl7::ack::civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        day_secs / 3600,
        day_secs / 60 % 60,
        day_secs % 60
    )
}

/// Now, in µs since the Unix epoch.
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: HeldKind) -> HeldEntry {
        HeldEntry {
            kind,
            reason: "reply AE".into(),
            at_us: 0,
            message_type: "ADT^A01".into(),
            control_id: "C1".into(),
        }
    }

    #[test]
    fn a_batch_taken_whole_is_listed_by_its_header_and_control_id() {
        let batch = b"FHS|^~\\&|S|F|R|F|1||||F7\rBHS|^~\\&|S|F|R|F|1||||B7\r\
MSH|^~\\&|S|F|R|F|1||ADT^A01|M1|P|2.5\rBTS|1\rFTS|1\r";
        let facts = HeldFacts::of(batch);
        assert_eq!(
            (&facts.message_type[..], &facts.control_id[..]),
            ("FHS", "B7")
        );
        let msg = HeldFacts::of(b"MSH|^~\\&|S|F|R|F|1||ADT^A01|M1|P|2.5\r");
        assert_eq!(
            (&msg.message_type[..], &msg.control_id[..]),
            ("ADT^A01", "M1")
        );
    }

    #[test]
    fn a_full_list_counts_what_it_cannot_list() {
        let mut list = HeldList::new(2);
        assert!(list.hold(1, 0, entry(HeldKind::Failed)));
        assert!(list.hold(2, 0, entry(HeldKind::Suspended)));
        assert!(!list.hold(3, 0, entry(HeldKind::Failed)));
        assert!(!list.hold(4, 1, entry(HeldKind::Suspended)));
        assert_eq!(
            list.counts(),
            HeldCounts {
                failed: 2,
                suspended: 2,
                unlisted: 2
            }
        );
        // A listed message held again replaces its entry even when the list is full.
        assert!(list.hold(2, 0, entry(HeldKind::Failed)));
        assert_eq!(list.counts().failed, 3);
        assert_eq!(list.release(1, 0).map(|e| e.kind), Some(HeldKind::Failed));
        assert_eq!(list.release(1, 0), None);
        assert_eq!(list.iter().count(), 1);
    }

    #[test]
    fn counts_follow_every_hold_replacement_and_release_without_a_walk() {
        let mut list = HeldList::new(4);
        let kinds = [HeldKind::Failed, HeldKind::Suspended];
        for step in 0..200u64 {
            let (wal_id, item) = (step * 7 % 6, (step % 2) as ItemId);
            match step % 3 {
                0 | 1 => {
                    list.hold(wal_id, item, entry(kinds[(step % 5 % 2) as usize]));
                }
                _ => {
                    list.release(wal_id, item);
                }
            }
            let walked = list
                .iter()
                .filter(|(_, _, e)| e.kind == HeldKind::Failed)
                .count() as u64;
            let counts = list.counts();
            let listed = list.iter().count() as u64;
            assert_eq!(
                counts.failed - (counts.unlisted - list.unlisted_suspended),
                walked
            );
            assert_eq!(
                counts.failed + counts.suspended - counts.unlisted,
                listed,
                "step {step}: {counts:?}"
            );
        }
    }

    #[test]
    fn a_message_held_at_two_items_is_found_at_both() {
        let mut list = HeldList::default();
        list.hold(7, 3, entry(HeldKind::Failed));
        list.hold(7, 1, entry(HeldKind::Suspended));
        list.hold(8, 0, entry(HeldKind::Failed));
        assert_eq!(list.items_of(7), vec![1, 3]);
        assert_eq!(list.items_of(9), Vec::<ItemId>::new());
        assert_eq!(list.get(7, 1).map(|e| e.kind), Some(HeldKind::Suspended));
    }

    #[test]
    fn utc_text_formats_known_instants() {
        assert_eq!(utc_text(0), "1970-01-01T00:00:00.000Z");
        // 2000-02-29 (a leap day of a century leap year) 12:34:56.789.
        assert_eq!(utc_text(951_827_696_789_000), "2000-02-29T12:34:56.789Z");
        assert_eq!(utc_text(1_796_526_245_000_000), "2026-12-06T03:04:05.000Z");
    }
}
