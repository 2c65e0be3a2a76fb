//! Recovery: scan every segment in order and rebuild what the engine needs.
//!
//! The result ([`Recovery`]) holds every message received (or created by an item) and
//! not closed (see `closing` for "closed"), the pending deliveries per target in the order they were
//! enqueued, the messages never routed, the last checkpoint, and counters. Only
//! CRC-valid records with increasing LSNs are ever returned as data: a corrupt span is
//! reported (segment, offset, length) with a `tracing::error!` and skipped; the bytes
//! after the last valid record of the last segment are the torn tail, counted and later
//! zeroed by the writer. Unknown kinds (from a newer writer) are skipped with a warning.
//!
//! A torn tail is normal after a crash (written, never acknowledged); a segment that
//! holds less than the synced-length marker (`synced`) says was durable is not: a
//! segment cut short, emptied or removed is logged as an ERROR with the count of
//! acknowledged messages it held beyond what is left, and listed in
//! [`RecoveryStats::lost`]. What is intact is recovered all the same.
//!
//! Limits: the message bytes of every open message are held in memory, which is what
//! the engine needs to redeliver them anyway; closed messages are dropped during the scan.

use std::{
    collections::{BTreeMap, HashMap},
    path::Path,
};

use crate::{
    error::WalError,
    wal::{
        closing::{Effect, effect},
        record::{self, Record, RecordKind},
        retention::OpenSet,
        segment::{Location, Scanned, SegmentScanner, list_segments, segment_path},
        synced,
    },
};

/// A message received and not closed, with its bytes and indexed metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveredMessage {
    pub message_id: u64,
    /// LSN of its `MessageReceived` record.
    pub lsn: u64,
    pub location: Location,
    pub timestamp_us: u64,
    /// The item that received it (or made it).
    pub source: String,
    /// For a message an item made (`Created`): the message it was made from.
    pub parent: Option<u64>,
    pub message_type: String,
    pub control_id: String,
    pub partition_key: String,
    pub bytes: Vec<u8>,
}

/// State of a delivery still owed to a target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliveryState {
    /// Enqueued, no outcome yet.
    Queued,
    /// The last outcome was a suspension (kept for an operator).
    Suspended { reason: String },
    /// The last outcome was a failure (kept for an operator, who resends or discards it).
    Failed { reason: String },
}

/// A delivery owed to a target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingDelivery {
    pub message_id: u64,
    /// LSN of the `Enqueued` record (deliveries are listed in this order).
    pub enqueued_lsn: u64,
    pub state: DeliveryState,
    /// Timestamp (µs since the epoch) of the record that set `state` (the `Enqueued`
    /// one while queued).
    pub state_us: u64,
}

/// A span of bytes that was not a valid record and was skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CorruptSpan {
    pub location: Location,
    pub span_bytes: u64,
}

/// A segment that holds less than was durable in it (see `synced`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentLoss {
    /// The segment (its first LSN).
    pub segment: u64,
    /// End of its last durable record and that record's LSN, per the marker.
    pub synced_end_offset: u64,
    pub synced_last_lsn: u64,
    /// What recovery found (zeros when the file is gone).
    pub found_end_offset: u64,
    pub found_last_lsn: u64,
    /// Acknowledged messages (`MessageReceived` records) durable in it and not found.
    pub messages_lost: u64,
    /// Whether the segment file is gone altogether.
    pub missing: bool,
}

impl std::fmt::Display for SegmentLoss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = crate::wal::segment::segment_file_name(self.segment);
        if self.missing {
            return write!(
                f,
                "segment {name} is missing: {} acknowledged messages lost (records up to LSN {})",
                self.messages_lost, self.synced_last_lsn
            );
        }
        write!(
            f,
            "segment {name} is shorter than was synced: {} acknowledged messages lost \
             (records end at byte {} and LSN {}, were synced to byte {} and LSN {})",
            self.messages_lost,
            self.found_end_offset,
            self.found_last_lsn,
            self.synced_end_offset,
            self.synced_last_lsn
        )
    }
}

/// Counters of one recovery.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryStats {
    pub segments: u64,
    /// Valid records scanned (all kinds, including skipped unknown ones).
    pub records: u64,
    /// Bytes of valid records (headers, payloads and padding).
    pub record_bytes: u64,
    /// Non-zero bytes after the last valid record of the last segment (the torn tail).
    pub torn_bytes_dropped: u64,
    /// Corrupt spans skipped (and records with a valid CRC but a malformed payload).
    pub corrupt: Vec<CorruptSpan>,
    /// Valid records of a kind this version does not know.
    pub unknown_kinds_skipped: u64,
    /// Delivery records naming a message that is not open (already closed, or its
    /// `MessageReceived` was lost to corruption).
    pub orphan_records: u64,
    /// Segments whose first LSN does not follow the previous segment's last one.
    pub lsn_gaps: u64,
    /// LSN of the last valid record (0 for an empty WAL).
    pub last_lsn: u64,
    /// Segments that hold less than the synced-length marker says was durable.
    pub lost: Vec<SegmentLoss>,
    /// Sealed segments whose messages were all closed, known from the marker and not read
    /// (counted in `segments`; their records are not in `records`).
    pub segments_closed_skipped: u64,
}

/// What the engine needs after a restart.
#[derive(Clone, Debug, Default)]
pub struct Recovery {
    /// Every open message by id.
    pub messages: HashMap<u64, RecoveredMessage>,
    /// Open messages with no delivery record yet (route them again), in log order. A
    /// created message is enqueued by its own record, so it is listed here only if it
    /// was made for no target.
    pub unrouted: Vec<u64>,
    /// Per target, the deliveries owed, in the order they were enqueued.
    pub targets: BTreeMap<String, Vec<PendingDelivery>>,
    /// The last checkpoint record: its LSN and data.
    pub last_checkpoint: Option<(u64, Vec<u8>)>,
    /// The next message id `Wal::next_message_id` will hand out.
    pub next_message_id: u64,
    pub stats: RecoveryStats,
}

/// Per-segment facts the writer and reader keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentMeta {
    /// End of the last valid record.
    pub end_offset: u64,
    pub file_bytes: u64,
    pub ts_min_us: u64,
    pub ts_max_us: u64,
    /// Smallest and largest `MessageReceived` ids (`u64::MAX`/0 when none).
    pub id_min: u64,
    pub id_max: u64,
    /// Smallest and largest message ids of the segment's `Ruled` records (`u64::MAX`/0
    /// when none; 0/`u64::MAX`, any id, when not known: a segment recovery took from the
    /// `SYNCED` marker without reading it). [`crate::Wal::find_ruled`] reads only the
    /// segments whose range holds the message.
    pub ruled_id_min: u64,
    pub ruled_id_max: u64,
    /// LSN of the last record (0 when none).
    pub last_lsn: u64,
    /// `MessageReceived` records in the segment.
    pub received: u64,
}

impl SegmentMeta {
    pub fn empty(file_bytes: u64) -> Self {
        Self {
            end_offset: 0,
            file_bytes,
            ts_min_us: u64::MAX,
            ts_max_us: 0,
            id_min: u64::MAX,
            id_max: 0,
            ruled_id_min: u64::MAX,
            ruled_id_max: 0,
            last_lsn: 0,
            received: 0,
        }
    }

    /// Folds in a `Ruled` record of message `id`.
    pub fn note_ruled(&mut self, id: u64) {
        self.ruled_id_min = self.ruled_id_min.min(id);
        self.ruled_id_max = self.ruled_id_max.max(id);
    }

    /// Whether the segment may hold a `Ruled` record of message `id`.
    pub fn may_hold_ruled(&self, id: u64) -> bool {
        (self.ruled_id_min..=self.ruled_id_max).contains(&id)
    }

    /// Folds in record `lsn`, written to end at `end` (its end offset).
    pub fn note(&mut self, end: u64, lsn: u64, timestamp_us: u64, received_id: Option<u64>) {
        self.end_offset = end;
        self.last_lsn = lsn;
        self.ts_min_us = self.ts_min_us.min(timestamp_us);
        self.ts_max_us = self.ts_max_us.max(timestamp_us);
        if let Some(id) = received_id {
            self.received += 1;
            self.id_min = self.id_min.min(id);
            self.id_max = self.id_max.max(id);
        }
    }
}

/// Everything the writer resumes from.
#[derive(Debug, Default)]
pub(crate) struct Resume {
    pub segments: BTreeMap<u64, SegmentMeta>,
    pub open: OpenSet,
    pub last_lsn: u64,
}

/// The message id of a `Ruled` record of on-disk kind `kind` (it leads the payload).
pub(crate) fn ruled_id(kind: u16, payload: &[u8]) -> Option<u64> {
    if kind != RecordKind::Ruled as u16 {
        return None;
    }
    Some(u64::from_le_bytes(payload.get(..8)?.try_into().ok()?))
}

/// Tracks deliveries during the scan.
#[derive(Default)]
struct Builder {
    /// Whether recovered messages keep their bytes.
    keep_bytes: bool,
    /// Records above this LSN are not accepted.
    lsn_max: u64,
    recovery: Recovery,
    open: OpenSet,
    /// Per target, enqueued LSN → delivery.
    queues: HashMap<String, BTreeMap<u64, PendingDelivery>>,
    /// (message, target) → enqueued LSN.
    enqueued: HashMap<(u64, String), u64>,
    /// Message id → received LSN, for messages without any delivery record yet.
    unrouted: BTreeMap<u64, u64>,
}

/// Scans every segment in `dir`, accepting records up to `lsn_max`, and checks them
/// against the synced-length marker. Without `keep_bytes` the messages' bytes are not
/// kept (the writer rebuilding its state after a failed write needs only [`Resume`]).
pub(crate) async fn recover(
    dir: &Path,
    lsn_max: u64,
    keep_bytes: bool,
) -> Result<(Recovery, Resume), WalError> {
    let mut builder = Builder {
        keep_bytes,
        lsn_max,
        ..Builder::default()
    };
    let mut segments = BTreeMap::new();
    let mut last_lsn = 0;
    let marker = read_marker(dir);
    let firsts = list_segments(dir)?;
    for (i, &first_lsn) in firsts.iter().enumerate() {
        let is_last = i + 1 == firsts.len();
        if last_lsn != 0 && first_lsn != last_lsn + 1 {
            builder.recovery.stats.lsn_gaps += 1;
            tracing::error!(
                segment = first_lsn,
                last_lsn,
                "WAL segment does not follow the previous one"
            );
        }
        let closed = (!is_last)
            .then(|| closed_segment(dir, marker.as_ref()?, first_lsn, lsn_max))
            .flatten();
        let meta = match closed {
            Some(meta) => {
                builder.take_closed(&meta);
                meta
            }
            None => {
                let before = last_lsn.max(first_lsn - 1);
                scan_segment(dir, first_lsn, before, is_last, &mut builder).await?
            }
        };
        last_lsn = last_lsn.max(builder.recovery.stats.last_lsn);
        segments.insert(first_lsn, meta);
    }
    builder.recovery.stats.segments = firsts.len() as u64;
    builder.recovery.stats.lost = marker.map_or_else(Vec::new, |m| check_synced(&m, &segments));
    let Builder {
        mut recovery,
        open,
        queues,
        unrouted,
        ..
    } = builder;
    recovery.unrouted = unrouted
        .into_keys()
        .filter(|id| open.is_open(*id))
        .collect();
    recovery
        .unrouted
        .sort_by_key(|id| recovery.messages.get(id).map(|m| m.lsn));
    recovery.targets = queues
        .into_iter()
        .map(|(target, q)| (target, q.into_values().collect::<Vec<_>>()))
        .filter(|(_, q)| !q.is_empty())
        .collect();
    recovery.next_message_id = recovery.next_message_id.max(1);
    let resume = Resume {
        segments,
        open,
        last_lsn,
    };
    Ok((recovery, resume))
}

async fn scan_segment(
    dir: &Path,
    first_lsn: u64,
    before: u64,
    is_last: bool,
    builder: &mut Builder,
) -> Result<SegmentMeta, WalError> {
    let path = segment_path(dir, first_lsn);
    let mut scanner = SegmentScanner::open(&path, before).await?;
    scanner.lsn_max(builder.lsn_max);
    let mut meta = SegmentMeta::empty(scanner.file_len());
    while let Some(found) = scanner.next().await? {
        match found {
            Scanned::Record {
                offset,
                header,
                bytes,
            } => {
                let location = Location {
                    segment: first_lsn,
                    offset,
                };
                let end = offset + record::record_bytes(header.payload_len as usize) as u64;
                let received = builder.apply(location, &header, bytes);
                meta.note(end, header.lsn, header.timestamp_us, received);
                if let Some(id) = ruled_id(header.kind, record::payload_of(bytes)) {
                    meta.note_ruled(id);
                }
            }
            Scanned::Corrupt { offset, span_bytes } => {
                tracing::error!(
                    segment = first_lsn,
                    offset,
                    span_bytes,
                    "corrupt WAL records skipped"
                );
                builder.recovery.stats.corrupt.push(CorruptSpan {
                    location: Location {
                        segment: first_lsn,
                        offset,
                    },
                    span_bytes,
                });
            }
            Scanned::End {
                offset,
                dirty_bytes,
            } => {
                meta.end_offset = offset;
                if dirty_bytes > 0 && is_last {
                    tracing::warn!(
                        segment = first_lsn,
                        offset,
                        dirty_bytes,
                        "WAL torn tail dropped"
                    );
                    builder.recovery.stats.torn_bytes_dropped += dirty_bytes;
                } else if dirty_bytes > 0 {
                    tracing::error!(
                        segment = first_lsn,
                        offset,
                        dirty_bytes,
                        "garbage after the end of a sealed WAL segment"
                    );
                    builder.recovery.stats.corrupt.push(CorruptSpan {
                        location: Location {
                            segment: first_lsn,
                            offset,
                        },
                        span_bytes: dirty_bytes,
                    });
                }
            }
        }
    }
    scanner.close().await;
    Ok(meta)
}

/// The synced-length marker in `dir`, if there is one that parses (one that does not is
/// reported and ignored).
fn read_marker(dir: &Path) -> Option<synced::Marker> {
    match synced::read(dir) {
        Ok(marker) => marker,
        Err(reason) => {
            tracing::error!(dir = %dir.display(), "WAL synced-length marker ignored: {reason}");
            None
        }
    }
}

/// The facts of sealed segment `first_lsn` from the marker, when every message received in
/// it was closed, all of it was durable up to `lsn_max`, and the file still holds all that
/// was durable in it (one cut short is read, so that the loss is reported): recovery need
/// not read it (see `synced`'s module doc).
fn closed_segment(
    dir: &Path,
    marker: &synced::Marker,
    first_lsn: u64,
    lsn_max: u64,
) -> Option<SegmentMeta> {
    let mut meta = marker.closed_segment(first_lsn)?;
    let file_bytes = std::fs::metadata(segment_path(dir, first_lsn)).ok()?.len();
    if meta.last_lsn > lsn_max || file_bytes < meta.end_offset {
        return None;
    }
    meta.file_bytes = file_bytes;
    Some(meta)
}

/// Compares what was recovered with the synced-length marker; logs and returns every
/// segment that holds less than was durable in it.
fn check_synced(
    marker: &synced::Marker,
    segments: &BTreeMap<u64, SegmentMeta>,
) -> Vec<SegmentLoss> {
    let oldest = segments.keys().next().copied().unwrap_or(u64::MAX);
    let mut lost = Vec::new();
    // A segment with nothing durable in it holds nothing to lose (one begun just before
    // a failed write is removed when the WAL resumes).
    for synced in marker.segments.iter().filter(|s| s.last_lsn > 0) {
        let loss = match segments.get(&synced.first_lsn) {
            // Retention removes segments oldest first, never the newest.
            None if synced.first_lsn < oldest && !segments.is_empty() => None,
            None => Some(SegmentLoss {
                segment: synced.first_lsn,
                synced_end_offset: synced.end_offset,
                synced_last_lsn: synced.last_lsn,
                found_end_offset: 0,
                found_last_lsn: 0,
                messages_lost: synced.received,
                missing: true,
            }),
            Some(found)
                if found.end_offset < synced.end_offset || found.last_lsn < synced.last_lsn =>
            {
                Some(SegmentLoss {
                    segment: synced.first_lsn,
                    synced_end_offset: synced.end_offset,
                    synced_last_lsn: synced.last_lsn,
                    found_end_offset: found.end_offset,
                    found_last_lsn: found.last_lsn,
                    messages_lost: synced.received.saturating_sub(found.received),
                    missing: false,
                })
            }
            Some(_) => None,
        };
        if let Some(loss) = loss {
            tracing::error!(
                segment = loss.segment,
                messages_lost = loss.messages_lost,
                "WAL lost acknowledged records: {loss}"
            );
            lost.push(loss);
        }
    }
    lost
}

impl Builder {
    /// Takes a closed segment's facts from the marker instead of its records: nothing in
    /// it is open, so only the LSN and message id it reached carry on.
    fn take_closed(&mut self, meta: &SegmentMeta) {
        let stats = &mut self.recovery.stats;
        stats.segments_closed_skipped += 1;
        stats.last_lsn = stats.last_lsn.max(meta.last_lsn);
        if meta.received > 0 {
            self.recovery.next_message_id = self.recovery.next_message_id.max(meta.id_max + 1);
        }
    }

    /// Applies one valid record; returns the message id if it opened a message
    /// (`MessageReceived` or `Created`).
    fn apply(
        &mut self,
        location: Location,
        header: &record::RecordHeader,
        bytes: &[u8],
    ) -> Option<u64> {
        let stats = &mut self.recovery.stats;
        stats.records += 1;
        stats.record_bytes += record::record_bytes(header.payload_len as usize) as u64;
        stats.last_lsn = header.lsn;
        let Some(kind) = RecordKind::from_u16(header.kind) else {
            tracing::warn!(
                kind = header.kind,
                version = header.version,
                ?location,
                "unknown WAL record kind skipped"
            );
            stats.unknown_kinds_skipped += 1;
            return None;
        };
        let Some(record) = Record::decode(kind, record::payload_of(bytes)) else {
            tracing::error!(
                ?kind,
                ?location,
                "WAL record with a valid CRC but a malformed payload skipped"
            );
            stats.corrupt.push(CorruptSpan {
                location,
                span_bytes: bytes.len() as u64,
            });
            return None;
        };
        if let Some(id) = record.message_id() {
            self.recovery.next_message_id = self.recovery.next_message_id.max(id + 1);
        }
        let closed = self.open.on_record(location.segment, &record);
        self.track(location, header, &record);
        if let Some(id) = closed {
            self.recovery.messages.remove(&id);
        }
        match record {
            Record::MessageReceived { message_id, .. } | Record::Created { message_id, .. } => {
                Some(message_id)
            }
            _ => None,
        }
    }

    fn track(&mut self, location: Location, header: &record::RecordHeader, record: &Record<'_>) {
        let (lsn, at_us) = (header.lsn, header.timestamp_us);
        if let Some(message) = self.message_of(location, header, record) {
            self.recovery.messages.insert(message.message_id, message);
        }
        match effect(record) {
            Effect::Opens {
                message_id,
                targets,
            } => {
                self.unrouted.insert(message_id, lsn);
                for target in targets.iter() {
                    self.on_enqueued(lsn, at_us, message_id, target);
                }
            }
            Effect::Owes { message_id, target } => {
                self.on_enqueued(lsn, at_us, message_id, target);
            }
            Effect::Closes { message_id, target } => self.on_terminal(message_id, target),
            Effect::Holds {
                message_id,
                target,
                reason,
                failed,
            } => {
                let reason = reason.to_owned();
                let state = match failed {
                    true => DeliveryState::Failed { reason },
                    false => DeliveryState::Suspended { reason },
                };
                self.on_outcome(message_id, target, state, at_us);
            }
            Effect::None => match *record {
                Record::Checkpoint { data } => {
                    self.recovery.last_checkpoint = Some((lsn, data.to_vec()));
                }
                Record::SegmentStart { next_message_id } => {
                    let next = &mut self.recovery.next_message_id;
                    *next = (*next).max(next_message_id);
                }
                _ => {}
            },
        }
    }

    /// The message a `MessageReceived` or `Created` record opens.
    fn message_of(
        &self,
        location: Location,
        header: &record::RecordHeader,
        record: &Record<'_>,
    ) -> Option<RecoveredMessage> {
        let (message_id, parent, source, meta, bytes) = match *record {
            Record::MessageReceived {
                message_id,
                source,
                meta,
                bytes,
            } => (message_id, None, source, meta, bytes),
            Record::Created {
                message_id,
                parent,
                source,
                meta,
                bytes,
                ..
            } => (message_id, Some(parent), source, meta, bytes),
            _ => return None,
        };
        Some(RecoveredMessage {
            message_id,
            lsn: header.lsn,
            location,
            timestamp_us: header.timestamp_us,
            source: source.to_owned(),
            parent,
            message_type: meta.message_type.to_owned(),
            control_id: meta.control_id.to_owned(),
            partition_key: meta.partition_key.to_owned(),
            bytes: match self.keep_bytes {
                true => bytes.to_vec(),
                false => Vec::new(),
            },
        })
    }

    /// Queues a delivery for `target` (a repeated enqueue moves it to the back).
    fn on_enqueued(&mut self, lsn: u64, at_us: u64, message_id: u64, target: &str) {
        if !self.recovery.messages.contains_key(&message_id) {
            self.recovery.stats.orphan_records += 1;
            return;
        }
        self.unrouted.remove(&message_id);
        if let Some(previous) = self.enqueued.insert((message_id, target.to_owned()), lsn)
            && let Some(queue) = self.queues.get_mut(target)
        {
            queue.remove(&previous);
        }
        let delivery = PendingDelivery {
            message_id,
            enqueued_lsn: lsn,
            state: DeliveryState::Queued,
            state_us: at_us,
        };
        self.queues
            .entry(target.to_owned())
            .or_default()
            .insert(lsn, delivery);
    }

    /// Closes the delivery to `target` (an empty target closes an unrouted message).
    fn on_terminal(&mut self, message_id: u64, target: &str) {
        self.unrouted.remove(&message_id);
        match self.enqueued.remove(&(message_id, target.to_owned())) {
            Some(lsn) => {
                if let Some(queue) = self.queues.get_mut(target) {
                    queue.remove(&lsn);
                }
            }
            None if !target.is_empty() => self.recovery.stats.orphan_records += 1,
            None => {}
        }
    }

    /// Records a failure or suspension of the delivery to `target` at `at_us`; it stays
    /// owed (for an operator to resend or discard).
    fn on_outcome(&mut self, message_id: u64, target: &str, state: DeliveryState, at_us: u64) {
        let lsn = self.enqueued.get(&(message_id, target.to_owned()));
        match lsn.and_then(|lsn| self.queues.get_mut(target)?.get_mut(lsn)) {
            Some(delivery) => {
                delivery.state = state;
                delivery.state_us = at_us;
            }
            None => self.recovery.stats.orphan_records += 1,
        }
    }
}
