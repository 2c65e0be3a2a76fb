//! What moves between items and between shards.
//!
//! An [`Envelope`] is one message on its way to one item instance: the message bytes
//! (shared, never copied when a router fans a message out), their scan index (segment
//! offsets, made once where the message came in and shared the same way), the id the
//! origin shard's WAL gave it, and where it goes. [`ShardMsg`] is what travels on the rings: envelopes, and
//! the records a shard sends back to a message's origin shard so that every record of a
//! message lands in the one WAL that received it (see docs/adr/0001).

use std::sync::Arc;
use std::time::Instant;

use hie_hl7::{Message, ScanIndex};

/// Most routers one message may pass through on one run. A router that would pass a
/// message on beyond this records it `Failed` (a routing cycle that `hie check` could not
/// see, such as one rules form) instead of sending it round for ever; the limit is far
/// above any chain of routers a production builds on purpose.
pub const ROUTER_HOPS_MAX: u16 = 32;

/// Index of an item in the running production's item table.
pub type ItemId = u32;

/// A message's identity: the shard whose WAL received it and the id that WAL gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId {
    pub origin_shard: u16,
    pub wal_id: u64,
}

#[cfg(test)]
impl MessageId {
    /// Message `wal_id` of shard 0 (tests of one shard's bookkeeping).
    pub(crate) fn of_shard_0(wal_id: u64) -> Self {
        MessageId {
            origin_shard: 0,
            wal_id,
        }
    }
}

impl std::fmt::Display for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.origin_shard, self.wal_id)
    }
}

/// One message on its way to one item instance.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub id: MessageId,
    /// The HL7 message, exactly as received (or as a transform wrote it).
    pub bytes: Arc<[u8]>,
    /// The scan of `bytes` (delimiters and segment offsets), made once by the service
    /// that received it (or by recovery): items read fields through [`Envelope::message`]
    /// without scanning again. `None` for a document that is not one message (a batch
    /// taken whole, `BatchHandling=Whole`).
    pub scan: Option<Arc<ScanIndex>>,
    /// The item that sent it here (a service or a router).
    pub source: ItemId,
    /// Where it came from, for file names (`%f`): the file a file service read, the peer
    /// address of a TCP connection, or the receiving item's name after recovery.
    pub origin_name: Arc<str>,
    /// The item it is for.
    pub target: ItemId,
    /// Hash of the partition key (PID-3.1, else MSH-10): picks the target's instance so
    /// that one patient's messages stay in order.
    pub partition: u64,
    /// When the service received it, for end-to-end latency.
    pub received_at: Instant,
    /// When it entered the queue it is in (or last was in): stamped by
    /// `Shard::enqueue_local` / `offer_local` from the shard's coarse clock, never before
    /// `received_at`; a retry put back at the queue's front keeps it. For the queue's
    /// oldest-entry age (`QueueWaitAlert`), not for latency.
    pub queued_at: Instant,
    /// Delivery attempts so far (a retry after recovery starts again at 0).
    pub attempts: u32,
    /// Routers it has passed through (see [`ROUTER_HOPS_MAX`]; recovery starts again
    /// at 0, which still bounds a cycle).
    pub router_hops: u16,
    /// The receiving service waits for the downstream reply (`AckMode=App`): the item
    /// that finishes the message sends an [`AppReply`] back to the origin shard.
    pub wants_reply: bool,
    /// The receiving service acknowledges only once the message is in the queue of every
    /// operation it goes to (a service whose port is shared over shards; see
    /// `Shard::expect_entered`): the operation that takes it, or the router that routes
    /// it, tells the origin shard.
    pub ordered: bool,
}

impl Envelope {
    /// The message, its scan index re-attached to its bytes (checked in O(segments),
    /// nothing copied or scanned again); `None` for a document that is not one message.
    pub fn message(&self) -> Option<Message<'_>> {
        Message::from_index(&self.bytes, self.scan.as_deref()?).ok()
    }
}

/// The answer an `AckMode=App` service returns upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppReply {
    /// The downstream system's ACK, returned as it came.
    Ack(Vec<u8>),
    /// Delivered where no reply comes back (a file, `GetReply` off): the service writes AA.
    Accepted,
    /// Not delivered (suspended, failed, discarded): the service writes AE with this text.
    Error(String),
}

/// Who sent an [`AppReply`]: the item that had the message, and the item that passed it
/// there (its [`Envelope::source`]), for a router's `ResponseFrom`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyFrom {
    pub item: ItemId,
    pub via: ItemId,
}

impl ReplyFrom {
    /// The sender of a reply about `env`: its target, passed there by its source.
    pub fn of(env: &Envelope) -> ReplyFrom {
        ReplyFrom {
            item: env.target,
            via: env.source,
        }
    }
}

/// A record that belongs in a message's origin WAL, sent there by the shard that acted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginRecord {
    /// The target delivered the message.
    Completed,
    /// The target gave up on the message (ReplyCodeActions `F`, or no such target).
    Failed { reason: String },
    /// The target suspended the message (ReplyCodeActions `S`); it stays in the WAL.
    Suspended { reason: String },
    /// The target's queue overflowed (`drop_oldest` or `reject`).
    Discarded { reason: String },
}

/// What travels on a ring between two shards.
#[derive(Debug)]
pub enum ShardMsg {
    /// Put this envelope on the queue of `envelope.target`'s instance on the receiving shard.
    Deliver(Envelope),
    /// Append this record for (`id`, `target`) to the receiving shard's WAL: it is `id`'s
    /// origin shard.
    Record {
        id: MessageId,
        target: ItemId,
        record: OriginRecord,
        /// For a failure or suspension: what the origin's held list shows of it.
        facts: Option<Box<crate::engine::held::HeldFacts>>,
    },
    /// The reply for the `AckMode=App` service waiting on message `id` (this shard is its
    /// origin).
    Reply {
        id: MessageId,
        from: ReplyFrom,
        reply: AppReply,
    },
    /// Message `id` (this shard is its origin) is in the queue of one of the operations
    /// its service waits for (see [`Envelope::ordered`]).
    Entered { id: MessageId },
}

/// A stable 64-bit hash of a partition key (FNV-1a): the same key picks the same
/// instance on every run, so order survives restarts.
pub fn partition_hash(key: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    key.iter()
        .fold(OFFSET, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(PRIME))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_hash_is_stable_and_spreads_keys() {
        assert_eq!(partition_hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(
            partition_hash(b"a"),
            0xaf63_dc4c_8601_ec8c,
            "FNV-1a test vector"
        );
        let buckets = (0..1000u32)
            .map(|n| partition_hash(format!("MRN{n}").as_bytes()) % 4)
            .fold([0u32; 4], |mut b, i| {
                b[i as usize] += 1;
                b
            });
        assert!(buckets.iter().all(|&n| n > 150), "{buckets:?}");
    }

    #[test]
    fn an_envelope_reads_its_message_on_the_scan_it_carries() {
        let bytes: &[u8] = b"MSH|^~\\&|A|B|C|D|1||ADT^A01|M7|P|2.5\rPID|1||P1\r";
        let id = MessageId {
            origin_shard: 0,
            wal_id: 1,
        };
        let scan = crate::engine::ingest::scan_of(bytes);
        let body = (Arc::from(bytes), scan);
        let mut env = crate::engine::ingest::envelope(id, body, 0, "In".into(), 1, b"k");
        let msg = env.message().expect("one message");
        assert_eq!(msg.control_id(), Some(&b"M7"[..]));
        assert_eq!(msg.segment_count(), 2);
        // An index re-attaches only to the bytes it was made from.
        let mut other = env.clone();
        other.bytes = Arc::from(&b"MSH|^~\\&|X\r"[..]);
        assert!(other.message().is_none());
        env.scan = None;
        assert!(
            env.message().is_none(),
            "a document that is not one message"
        );
    }

    #[test]
    fn message_id_displays_shard_and_wal_id() {
        let id = MessageId {
            origin_shard: 1,
            wal_id: 42,
        };
        assert_eq!(id.to_string(), "1:42");
    }
}
