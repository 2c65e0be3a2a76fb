//! Record format: one fixed header laid out with `bytemuck`, then the payload, padded.
//!
//! Every record starts at an 8-byte aligned offset of its segment. The header is frozen
//! across format versions: a newer writer may add kinds (skipped by an older reader with a
//! warning) but never move a header field. All integers are little-endian.
//!
//! ```text
//! offset size field
//!      0    4 magic          0x5745_4948 ("HIEW" read as bytes)
//!      4    2 version        format version of the writer (currently 1)
//!      6    2 kind           RecordKind (1..=10 in version 1)
//!      8    4 payload_len    bytes of payload after the header (≤ RECORD_PAYLOAD_BYTES_MAX)
//!     12    4 crc32c         CRC32C of the header with this field zeroed, then the payload
//!     16    8 lsn            log sequence number: 1 for the first record of a WAL, +1 each
//!     24    8 timestamp_us   wall clock at append, microseconds since the Unix epoch
//!     32    n payload        kind-specific, see below
//!   32+n    p padding        zeros up to the next multiple of 8
//! ```
//!
//! Payloads (strings are UTF-8 with a u16 length prefix, `bytes` has a u32 prefix; every
//! payload that concerns a message starts with the u64 message id so that retention can
//! read it without decoding the rest):
//!
//! ```text
//! 1 MessageReceived  message_id u64 | source str | message_type str | control_id str
//!                    | partition_key str | bytes
//! 2 Enqueued         message_id u64 | target str
//! 3 Completed        message_id u64 | target str
//! 4 Failed           message_id u64 | target str | reason str
//! 5 Suspended        message_id u64 | target str | reason str
//! 6 Discarded        message_id u64 | target str | reason str
//! 7 Checkpoint       data bytes (engine-defined)
//! 8 SegmentStart     next_message_id u64 (written by the WAL as the first record of
//!                    every segment, so ids are never reused after retention)
//! 9 Created          message_id u64 | parent u64 | source str | message_type str
//!                    | control_id str | partition_key str | targets (u16 count, then
//!                    that many str) | bytes
//! 10 Ruled           message_id u64 | router str | rule_set str | fired (u16 count, then
//!                    that many str) | decisions (u16 count, then that many str)
//! ```
//!
//! `Created` is a message an item made (a transform's output) from message `parent`:
//! it is its own message (an id of its own, open until its deliveries close) and is
//! enqueued for its `targets` by the same record, so recovery redelivers it as it was
//! made, without making it again. A reader of version 1 that predates it skips it as an
//! unknown kind.
//!
//! `Ruled` is what a router's rule class decided for a message: the rule set that ran,
//! the rules that fired and each send as `target` or `target via transform`. It is a
//! note for the user (why the message went where it went): it neither opens nor closes
//! anything, so recovery and retention pass over it.
//!
//! Invariants: a record is valid only if its magic matches, its length fits in what was
//! read, and its CRC matches; decoding never panics on arbitrary bytes.

use bytemuck::{Pod, Zeroable};

use crate::error::WalError;

/// "HIEW" as little-endian bytes.
pub const RECORD_MAGIC: u32 = u32::from_le_bytes(*b"HIEW");
/// The record format version this crate writes.
pub const FORMAT_VERSION: u16 = 1;
/// Size of [`RecordHeader`] in bytes.
pub const HEADER_BYTES: usize = 32;
/// Records start at multiples of this.
pub const RECORD_ALIGN: usize = 8;
/// Largest payload a record may carry (64 MiB); a segment must be able to hold it.
pub const RECORD_PAYLOAD_BYTES_MAX: usize = 64 << 20;

/// The fixed record header (see the module header for the layout).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct RecordHeader {
    pub magic: u32,
    pub version: u16,
    pub kind: u16,
    pub payload_len: u32,
    pub crc32c: u32,
    pub lsn: u64,
    pub timestamp_us: u64,
}

const _: () = assert!(std::mem::size_of::<RecordHeader>() == HEADER_BYTES);

/// Kinds of record. The numeric values are part of the on-disk format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum RecordKind {
    MessageReceived = 1,
    Enqueued = 2,
    Completed = 3,
    Failed = 4,
    Suspended = 5,
    Discarded = 6,
    Checkpoint = 7,
    SegmentStart = 8,
    Created = 9,
    Ruled = 10,
}

impl RecordKind {
    /// The kind for an on-disk value, `None` for kinds this version does not know.
    pub fn from_u16(value: u16) -> Option<Self> {
        Some(match value {
            1 => Self::MessageReceived,
            2 => Self::Enqueued,
            3 => Self::Completed,
            4 => Self::Failed,
            5 => Self::Suspended,
            6 => Self::Discarded,
            7 => Self::Checkpoint,
            8 => Self::SegmentStart,
            9 => Self::Created,
            10 => Self::Ruled,
            _ => return None,
        })
    }

    /// Whether the payload starts with a message id.
    pub fn has_message_id(self) -> bool {
        !matches!(self, Self::Checkpoint | Self::SegmentStart)
    }
}

/// Indexed metadata of a received message, taken from its scan (MSH-9, MSH-10, PID-3…).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MessageMeta<'a> {
    /// MSH-9, e.g. `ADT^A01`.
    pub message_type: &'a str,
    /// MSH-10.
    pub control_id: &'a str,
    /// The key whose order is kept when an item runs on several shards (default PID-3).
    pub partition_key: &'a str,
}

/// One record, borrowing its strings and bytes (from the caller on append, from a read
/// buffer on decode).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record<'a> {
    /// A service accepted a message; it is open until every target completes or discards it.
    MessageReceived {
        message_id: u64,
        source: &'a str,
        meta: MessageMeta<'a>,
        bytes: &'a [u8],
    },
    /// The message was queued for `target`.
    Enqueued { message_id: u64, target: &'a str },
    /// `target` delivered the message (closes that delivery).
    Completed { message_id: u64, target: &'a str },
    /// Delivery to `target` failed (IRIS `F`, or `FailureTimeout` ran out); the delivery
    /// stays open, listed as failed, until it is resent (`Enqueued`) or discarded.
    Failed {
        message_id: u64,
        target: &'a str,
        reason: &'a str,
    },
    /// Delivery to `target` is suspended; the delivery stays open.
    Suspended {
        message_id: u64,
        target: &'a str,
        reason: &'a str,
    },
    /// The message was dropped for `target` (overflow, no route); closes that delivery.
    Discarded {
        message_id: u64,
        target: &'a str,
        reason: &'a str,
    },
    /// Engine-defined state (e.g. written at clean shutdown); the last one is recovered.
    Checkpoint { data: &'a [u8] },
    /// First record of every segment, written by the WAL: the next message id to allocate.
    SegmentStart { next_message_id: u64 },
    /// Item `source` made a new message (`bytes`) from message `parent` and enqueued it
    /// for `targets` (one or more); it is open until every one of them closes it.
    Created {
        message_id: u64,
        parent: u64,
        source: &'a str,
        meta: MessageMeta<'a>,
        targets: Targets<'a>,
        bytes: &'a [u8],
    },
    /// Router `router`'s rule set `rule_set` ran for the message: the rules in `fired`
    /// fired and it was sent as `decisions` says (`target` or `target via transform`).
    Ruled {
        message_id: u64,
        router: &'a str,
        rule_set: &'a str,
        fired: Targets<'a>,
        decisions: Targets<'a>,
    },
}

/// A list of strings (the targets of a [`Record::Created`], the fired rules and decisions
/// of a [`Record::Ruled`]): a list from the caller, or the encoded list (built with
/// [`Targets::push_encoded`], checked on decode). Equal when they hold the same strings in
/// order.
#[derive(Clone, Copy, Debug)]
pub enum Targets<'a> {
    List(&'a [&'a str]),
    Encoded { count: u16, bytes: &'a [u8] },
}

impl<'a> Targets<'a> {
    /// Number of targets.
    pub fn len(&self) -> usize {
        match self {
            Self::List(list) => list.len(),
            Self::Encoded { count, .. } => usize::from(*count),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The targets in order.
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + 'a {
        let (list, mut cur) = match *self {
            Self::List(list) => (list, Cursor { rest: &[] }),
            Self::Encoded { bytes, .. } => (&[][..], Cursor { rest: bytes }),
        };
        list.iter()
            .copied()
            .chain(std::iter::from_fn(move || cur.str()))
    }

    /// Appends `parts`, joined, as one encoded string of the list to `out` (whose count
    /// the caller keeps for [`Targets::Encoded`]), cut at a character boundary to the
    /// 65,535 bytes a string may have.
    pub fn push_encoded(out: &mut Vec<u8>, parts: &[&str]) {
        let at = out.len();
        out.extend_from_slice(&[0, 0]);
        let mut left = u16::MAX as usize;
        for part in parts {
            let mut end = part.len().min(left);
            while !part.is_char_boundary(end) {
                end -= 1;
            }
            out.extend_from_slice(&part.as_bytes()[..end]);
            left -= end;
        }
        let len = (u16::MAX as usize - left) as u16;
        out[at..at + 2].copy_from_slice(&len.to_le_bytes());
    }

    /// Encoded size: the count and each string with its length.
    fn encoded_len(&self) -> usize {
        2 + self.iter().map(|t| 2 + t.len()).sum::<usize>()
    }

    /// Reads the count and as many strings from `cur`, checking each.
    fn decode(cur: &mut Cursor<'a>) -> Option<Self> {
        let count = u16::from_le_bytes(cur.take(2)?.try_into().ok()?);
        let start = cur.rest;
        for _ in 0..count {
            cur.str()?;
        }
        let bytes = &start[..start.len() - cur.rest.len()];
        Some(Self::Encoded { count, bytes })
    }
}

impl PartialEq for Targets<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Targets<'_> {}

impl<'a> Record<'a> {
    /// The on-disk kind of this record.
    pub fn kind(&self) -> RecordKind {
        match self {
            Self::MessageReceived { .. } => RecordKind::MessageReceived,
            Self::Enqueued { .. } => RecordKind::Enqueued,
            Self::Completed { .. } => RecordKind::Completed,
            Self::Failed { .. } => RecordKind::Failed,
            Self::Suspended { .. } => RecordKind::Suspended,
            Self::Discarded { .. } => RecordKind::Discarded,
            Self::Checkpoint { .. } => RecordKind::Checkpoint,
            Self::SegmentStart { .. } => RecordKind::SegmentStart,
            Self::Created { .. } => RecordKind::Created,
            Self::Ruled { .. } => RecordKind::Ruled,
        }
    }

    /// The message this record is about, if any.
    pub fn message_id(&self) -> Option<u64> {
        match *self {
            Self::MessageReceived { message_id, .. }
            | Self::Enqueued { message_id, .. }
            | Self::Completed { message_id, .. }
            | Self::Failed { message_id, .. }
            | Self::Suspended { message_id, .. }
            | Self::Discarded { message_id, .. }
            | Self::Created { message_id, .. }
            | Self::Ruled { message_id, .. } => Some(message_id),
            Self::Checkpoint { .. } | Self::SegmentStart { .. } => None,
        }
    }

    /// Exact payload size in bytes.
    pub fn payload_len(&self) -> usize {
        let s = |v: &str| 2 + v.len();
        match self {
            Self::MessageReceived {
                source,
                meta,
                bytes,
                ..
            } => {
                8 + s(source)
                    + s(meta.message_type)
                    + s(meta.control_id)
                    + s(meta.partition_key)
                    + 4
                    + bytes.len()
            }
            Self::Enqueued { target, .. } | Self::Completed { target, .. } => 8 + s(target),
            Self::Failed { target, reason, .. }
            | Self::Suspended { target, reason, .. }
            | Self::Discarded { target, reason, .. } => 8 + s(target) + s(reason),
            Self::Checkpoint { data } => 4 + data.len(),
            Self::SegmentStart { .. } => 8,
            Self::Created {
                source,
                meta,
                targets,
                bytes,
                ..
            } => {
                16 + s(source)
                    + s(meta.message_type)
                    + s(meta.control_id)
                    + s(meta.partition_key)
                    + targets.encoded_len()
                    + 4
                    + bytes.len()
            }
            Self::Ruled {
                router,
                rule_set,
                fired,
                decisions,
                ..
            } => 8 + s(router) + s(rule_set) + fired.encoded_len() + decisions.encoded_len(),
        }
    }

    /// Appends the header (LSN and CRC left zero, to be sealed later) and payload, padded
    /// to [`RECORD_ALIGN`], to `out`. Returns the record's total size on disk.
    pub fn encode_unsealed(&self, timestamp_us: u64, out: &mut Vec<u8>) -> Result<usize, WalError> {
        self.check_limits()?;
        let payload_len = self.payload_len();
        let total = record_bytes(payload_len);
        let header = RecordHeader {
            magic: RECORD_MAGIC,
            version: FORMAT_VERSION,
            kind: self.kind() as u16,
            payload_len: payload_len as u32,
            crc32c: 0,
            lsn: 0,
            timestamp_us,
        };
        let start = out.len();
        out.reserve(total);
        out.extend_from_slice(bytemuck::bytes_of(&header));
        self.encode_payload(out);
        debug_assert_eq!(out.len() - start, HEADER_BYTES + payload_len);
        out.resize(start + total, 0);
        Ok(total)
    }

    fn check_limits(&self) -> Result<(), WalError> {
        let strings: [&str; 4] = match *self {
            Self::MessageReceived { source, meta, .. } | Self::Created { source, meta, .. } => [
                source,
                meta.message_type,
                meta.control_id,
                meta.partition_key,
            ],
            Self::Enqueued { target, .. } | Self::Completed { target, .. } => [target, "", "", ""],
            Self::Failed { target, reason, .. }
            | Self::Suspended { target, reason, .. }
            | Self::Discarded { target, reason, .. } => [target, reason, "", ""],
            Self::Ruled {
                router, rule_set, ..
            } => [router, rule_set, "", ""],
            Self::Checkpoint { .. } | Self::SegmentStart { .. } => ["", "", "", ""],
        };
        let (targets, more) = match self {
            Self::Created { targets, .. } => (*targets, Targets::List(&[])),
            Self::Ruled {
                fired, decisions, ..
            } => (*fired, *decisions),
            _ => (Targets::List(&[]), Targets::List(&[])),
        };
        if let Some(long) = [targets, more]
            .iter()
            .find(|list| list.len() > u16::MAX as usize)
        {
            return Err(WalError::FieldTooLong {
                kind: self.kind(),
                field_bytes: long.len(),
            });
        }
        let mut strings = strings.into_iter().chain(targets.iter()).chain(more.iter());
        if let Some(long) = strings.find(|v| v.len() > u16::MAX as usize) {
            return Err(WalError::FieldTooLong {
                kind: self.kind(),
                field_bytes: long.len(),
            });
        }
        let payload_len = self.payload_len();
        if payload_len > RECORD_PAYLOAD_BYTES_MAX {
            return Err(WalError::RecordTooLarge {
                payload_bytes: payload_len,
                payload_bytes_max: RECORD_PAYLOAD_BYTES_MAX,
            });
        }
        Ok(())
    }

    fn encode_payload(&self, out: &mut Vec<u8>) {
        let put_str = |out: &mut Vec<u8>, v: &str| {
            out.extend_from_slice(&(v.len() as u16).to_le_bytes());
            out.extend_from_slice(v.as_bytes());
        };
        let put_bytes = |out: &mut Vec<u8>, v: &[u8]| {
            out.extend_from_slice(&(v.len() as u32).to_le_bytes());
            out.extend_from_slice(v);
        };
        if let Some(id) = self.message_id() {
            out.extend_from_slice(&id.to_le_bytes());
        }
        match *self {
            Self::MessageReceived {
                source,
                meta,
                bytes,
                ..
            } => {
                put_str(out, source);
                put_str(out, meta.message_type);
                put_str(out, meta.control_id);
                put_str(out, meta.partition_key);
                put_bytes(out, bytes);
            }
            Self::Enqueued { target, .. } | Self::Completed { target, .. } => put_str(out, target),
            Self::Failed { target, reason, .. }
            | Self::Suspended { target, reason, .. }
            | Self::Discarded { target, reason, .. } => {
                put_str(out, target);
                put_str(out, reason);
            }
            Self::Checkpoint { data } => put_bytes(out, data),
            Self::SegmentStart { next_message_id } => {
                out.extend_from_slice(&next_message_id.to_le_bytes());
            }
            Self::Created {
                parent,
                source,
                meta,
                targets,
                bytes,
                ..
            } => {
                out.extend_from_slice(&parent.to_le_bytes());
                put_str(out, source);
                put_str(out, meta.message_type);
                put_str(out, meta.control_id);
                put_str(out, meta.partition_key);
                out.extend_from_slice(&(targets.len() as u16).to_le_bytes());
                targets.iter().for_each(|t| put_str(out, t));
                put_bytes(out, bytes);
            }
            Self::Ruled {
                router,
                rule_set,
                fired,
                decisions,
                ..
            } => {
                put_str(out, router);
                put_str(out, rule_set);
                for list in [fired, decisions] {
                    out.extend_from_slice(&(list.len() as u16).to_le_bytes());
                    list.iter().for_each(|t| put_str(out, t));
                }
            }
        }
    }

    /// Decodes a payload of a known kind. `None` if the payload is malformed (which a
    /// valid CRC makes a writer bug or a newer layout, never a panic).
    pub fn decode(kind: RecordKind, payload: &'a [u8]) -> Option<Self> {
        let mut cur = Cursor { rest: payload };
        let record = match kind {
            RecordKind::Checkpoint => Self::Checkpoint { data: cur.bytes()? },
            RecordKind::SegmentStart => Self::SegmentStart {
                next_message_id: cur.u64()?,
            },
            _ => {
                let message_id = cur.u64()?;
                match kind {
                    RecordKind::MessageReceived => Self::MessageReceived {
                        message_id,
                        source: cur.str()?,
                        meta: MessageMeta {
                            message_type: cur.str()?,
                            control_id: cur.str()?,
                            partition_key: cur.str()?,
                        },
                        bytes: cur.bytes()?,
                    },
                    RecordKind::Enqueued => Self::Enqueued {
                        message_id,
                        target: cur.str()?,
                    },
                    RecordKind::Completed => Self::Completed {
                        message_id,
                        target: cur.str()?,
                    },
                    RecordKind::Failed => Self::Failed {
                        message_id,
                        target: cur.str()?,
                        reason: cur.str()?,
                    },
                    RecordKind::Suspended => Self::Suspended {
                        message_id,
                        target: cur.str()?,
                        reason: cur.str()?,
                    },
                    RecordKind::Discarded => Self::Discarded {
                        message_id,
                        target: cur.str()?,
                        reason: cur.str()?,
                    },
                    RecordKind::Created => Self::Created {
                        message_id,
                        parent: cur.u64()?,
                        source: cur.str()?,
                        meta: MessageMeta {
                            message_type: cur.str()?,
                            control_id: cur.str()?,
                            partition_key: cur.str()?,
                        },
                        targets: Targets::decode(&mut cur)?,
                        bytes: cur.bytes()?,
                    },
                    RecordKind::Ruled => Self::Ruled {
                        message_id,
                        router: cur.str()?,
                        rule_set: cur.str()?,
                        fired: Targets::decode(&mut cur)?,
                        decisions: Targets::decode(&mut cur)?,
                    },
                    RecordKind::Checkpoint | RecordKind::SegmentStart => return None,
                }
            }
        };
        cur.rest.is_empty().then_some(record)
    }
}

struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.rest.len() < n {
            return None;
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Some(head)
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn str(&mut self) -> Option<&'a str> {
        let len = u16::from_le_bytes(self.take(2)?.try_into().ok()?) as usize;
        std::str::from_utf8(self.take(len)?).ok()
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = u32::from_le_bytes(self.take(4)?.try_into().ok()?) as usize;
        self.take(len)
    }
}

/// Total bytes on disk of a record with `payload_len` bytes of payload.
pub const fn record_bytes(payload_len: usize) -> usize {
    (HEADER_BYTES + payload_len).div_ceil(RECORD_ALIGN) * RECORD_ALIGN
}

/// Sets the LSN of an unsealed record at the start of `record` and computes its CRC.
/// `record` holds header + payload (+ padding, ignored).
pub fn seal(record: &mut [u8], lsn: u64) {
    let payload_len = header_of(record).payload_len as usize;
    let mut header = header_of(record);
    header.lsn = lsn;
    header.crc32c = 0;
    record[..HEADER_BYTES].copy_from_slice(bytemuck::bytes_of(&header));
    let crc = crc_of(&record[..HEADER_BYTES + payload_len]);
    record[12..16].copy_from_slice(&crc.to_le_bytes());
}

/// Reads the header at the start of `bytes` (which must hold at least [`HEADER_BYTES`]).
pub fn header_of(bytes: &[u8]) -> RecordHeader {
    bytemuck::pod_read_unaligned(&bytes[..HEADER_BYTES])
}

/// CRC32C of header-with-zeroed-crc followed by the payload.
fn crc_of(header_and_payload: &[u8]) -> u32 {
    let mut crc = crc32c::crc32c(&header_and_payload[..12]);
    crc = crc32c::crc32c_append(crc, &[0; 4]);
    crc32c::crc32c_append(crc, &header_and_payload[16..])
}

/// What [`check`] found at an offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// A whole, CRC-valid record of `total` bytes (including padding).
    Valid { header: RecordHeader, total: usize },
    /// No magic here: zeros, stale bytes, or the end of the log.
    NoRecord,
    /// The magic matches but the record is cut short by the end of `bytes`.
    Truncated { header: RecordHeader },
    /// The magic matches but the length is impossible or the CRC does not match.
    Corrupt,
}

/// Checks whether a valid record starts at `bytes[0]`. Never panics.
pub fn check(bytes: &[u8]) -> Check {
    if bytes.len() < HEADER_BYTES {
        if bytes.len() >= 4 && bytes[..4] == RECORD_MAGIC.to_le_bytes() {
            return Check::Corrupt;
        }
        return Check::NoRecord;
    }
    let header = header_of(bytes);
    if header.magic != RECORD_MAGIC {
        return Check::NoRecord;
    }
    let payload_len = header.payload_len as usize;
    if payload_len > RECORD_PAYLOAD_BYTES_MAX {
        return Check::Corrupt;
    }
    let total = record_bytes(payload_len);
    if bytes.len() < HEADER_BYTES + payload_len {
        return Check::Truncated { header };
    }
    let stored = header.crc32c;
    if crc_of(&bytes[..HEADER_BYTES + payload_len]) != stored {
        return Check::Corrupt;
    }
    Check::Valid { header, total }
}

/// The payload of a record known to be valid.
pub fn payload_of(record: &[u8]) -> &[u8] {
    let len = header_of(record).payload_len as usize;
    &record[HEADER_BYTES..HEADER_BYTES + len]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Record<'static> {
        Record::MessageReceived {
            message_id: 42,
            source: "HL7.In",
            meta: MessageMeta {
                message_type: "ADT^A01",
                control_id: "MSG0001",
                partition_key: "P123",
            },
            bytes: b"MSH|^~\\&|A|B\r",
        }
    }

    fn sealed(record: &Record<'_>, lsn: u64) -> Vec<u8> {
        let mut out = Vec::new();
        let total = record.encode_unsealed(7, &mut out).unwrap();
        assert_eq!(total, out.len());
        seal(&mut out, lsn);
        out
    }

    #[test]
    fn every_kind_round_trips_through_encode_and_decode() {
        let records = [
            sample(),
            Record::Enqueued {
                message_id: 1,
                target: "Out",
            },
            Record::Completed {
                message_id: 1,
                target: "Out",
            },
            Record::Failed {
                message_id: 1,
                target: "Out",
                reason: "AE",
            },
            Record::Suspended {
                message_id: 1,
                target: "Out",
                reason: "AR",
            },
            Record::Discarded {
                message_id: 1,
                target: "",
                reason: "overflow",
            },
            Record::Checkpoint { data: b"state" },
            Record::SegmentStart {
                next_message_id: 77,
            },
            Record::Created {
                message_id: 43,
                parent: 42,
                source: "Router",
                meta: MessageMeta {
                    message_type: "ADT^A08",
                    control_id: "MSG0001",
                    partition_key: "P123",
                },
                targets: Targets::List(&["Out.A", "", "Out.B"]),
                bytes: b"MSH|^~\\&|X|Y\r",
            },
            Record::Ruled {
                message_id: 42,
                router: "ADT Router",
                rule_set: "",
                fired: Targets::List(&["rule 1", "#3"]),
                decisions: Targets::List(&["Out", "File via Demo.T"]),
            },
        ];
        for (i, record) in records.iter().enumerate() {
            let bytes = sealed(record, i as u64 + 1);
            assert_eq!(bytes.len() % RECORD_ALIGN, 0);
            let Check::Valid { header, total } = check(&bytes) else {
                panic!("record {i} not valid");
            };
            assert_eq!(total, bytes.len());
            assert_eq!(header.lsn, i as u64 + 1);
            assert_eq!(header.timestamp_us, 7);
            let kind = RecordKind::from_u16(header.kind).unwrap();
            assert_eq!(Record::decode(kind, payload_of(&bytes)), Some(*record));
        }
    }

    #[test]
    fn check_rejects_every_single_bit_flip() {
        let bytes = sealed(&sample(), 9);
        let payload_end = HEADER_BYTES + sample().payload_len();
        for bit in 0..payload_end * 8 {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(
                !matches!(check(&flipped), Check::Valid { .. }),
                "bit {bit} flip accepted"
            );
        }
    }

    #[test]
    fn check_reports_truncation_at_every_length() {
        let bytes = sealed(&sample(), 3);
        for len in 0..HEADER_BYTES + sample().payload_len() {
            assert!(!matches!(check(&bytes[..len]), Check::Valid { .. }));
        }
    }

    #[test]
    fn oversized_string_is_an_error_not_a_truncation() {
        let long = "x".repeat(70_000);
        let record = Record::Enqueued {
            message_id: 1,
            target: &long,
        };
        assert!(matches!(
            record.encode_unsealed(0, &mut Vec::new()),
            Err(WalError::FieldTooLong { .. })
        ));
    }

    #[test]
    fn an_encoded_list_decodes_to_its_strings_and_cuts_a_long_one() {
        let mut bytes = Vec::new();
        Targets::push_encoded(&mut bytes, &["Out"]);
        Targets::push_encoded(&mut bytes, &["File", " via ", "Demo.T"]);
        let long = "é".repeat(40_000);
        Targets::push_encoded(&mut bytes, &[&long]);
        let decisions = Targets::Encoded {
            count: 3,
            bytes: &bytes,
        };
        let record = Record::Ruled {
            message_id: 5,
            router: "R",
            rule_set: "S",
            fired: Targets::List(&[]),
            decisions,
        };
        let sealed = sealed(&record, 1);
        let decoded = Record::decode(RecordKind::Ruled, payload_of(&sealed)).unwrap();
        let Record::Ruled { decisions, .. } = decoded else {
            panic!("{decoded:?}");
        };
        let got: Vec<&str> = decisions.iter().collect();
        assert_eq!(got[..2], ["Out", "File via Demo.T"]);
        assert_eq!(got[2].len(), 65_534, "cut at a character boundary");
    }

    #[test]
    fn decode_of_malformed_payload_is_none() {
        assert_eq!(Record::decode(RecordKind::Enqueued, &[1, 2, 3]), None);
        assert_eq!(
            Record::decode(RecordKind::Enqueued, &[0, 0, 0, 0, 0, 0, 0, 0, 9, 0]),
            None
        );
    }

    proptest::proptest! {
        #[test]
        fn check_and_decode_never_panic_on_arbitrary_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = check(&bytes);
            for kind in 1..=10 {
                let _ = Record::decode(RecordKind::from_u16(kind).unwrap(), &bytes);
            }
        }
    }
}
