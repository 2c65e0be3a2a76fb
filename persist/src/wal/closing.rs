//! The rule for what each record does to its message's deliveries, written once: the
//! open-message tracking of the writer and retention (`retention::OpenSet`) and the
//! recovery scan (`recovery`) both read a record through [`effect`].
//!
//! A message opens with its `MessageReceived` (no delivery yet) or its `Created` (a
//! delivery owed to each of its targets). `Enqueued` owes a delivery to a target;
//! `Completed` and `Discarded` close one (a `Discarded` with an empty target closes a
//! message routed nowhere); `Failed` and `Suspended` leave it owed, held for an
//! operator. A message is closed once it has seen a closing record and owes no delivery.
//! `Ruled` (what a router's rules decided) is a note for the user: no effect.

use crate::wal::record::{Record, Targets};

/// What one record does to the deliveries of its message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect<'a> {
    /// The message opens, owing a delivery to each of `targets` (none for a received one).
    Opens {
        message_id: u64,
        targets: Targets<'a>,
    },
    /// A delivery to `target` is owed (again).
    Owes { message_id: u64, target: &'a str },
    /// The delivery to `target` is closed.
    Closes { message_id: u64, target: &'a str },
    /// The delivery to `target` stays owed, held: failed (`failed`) or suspended.
    Holds {
        message_id: u64,
        target: &'a str,
        reason: &'a str,
        failed: bool,
    },
    /// Not about a message's deliveries.
    None,
}

/// The effect of `record` on its message's deliveries.
pub fn effect<'a>(record: &Record<'a>) -> Effect<'a> {
    match *record {
        Record::MessageReceived { message_id, .. } => Effect::Opens {
            message_id,
            targets: Targets::List(&[]),
        },
        Record::Created {
            message_id,
            targets,
            ..
        } => Effect::Opens {
            message_id,
            targets,
        },
        Record::Enqueued { message_id, target } => Effect::Owes { message_id, target },
        Record::Completed { message_id, target }
        | Record::Discarded {
            message_id, target, ..
        } => Effect::Closes { message_id, target },
        Record::Failed {
            message_id,
            target,
            reason,
        }
        | Record::Suspended {
            message_id,
            target,
            reason,
        } => Effect::Holds {
            message_id,
            target,
            reason,
            failed: matches!(record, Record::Failed { .. }),
        },
        Record::Checkpoint { .. } | Record::SegmentStart { .. } | Record::Ruled { .. } => {
            Effect::None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ruled_record_neither_opens_nor_closes_its_message() {
        let ruled = Record::Ruled {
            message_id: 7,
            router: "R",
            rule_set: "S",
            fired: Targets::List(&["rule 1"]),
            decisions: Targets::List(&["Out"]),
        };
        assert_eq!(effect(&ruled), Effect::None);
    }
}
