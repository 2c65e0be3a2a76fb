//! The messages a router makes: a rule's `send transform="X"` runs DTL class `X` on the
//! routed message, and the output is a new message with an id of its own, recorded by
//! one `Created` record (its parent, its targets, its bytes) in the same WAL commit as
//! the batch's routing records, before any envelope leaves the router. Recovery
//! redelivers it from that record as it was made, without running the transform again
//! (docs/adr/0019).
//!
//! Owns [`Made`] (the outputs of one batch, in buffers the router reuses) and the step
//! that runs a message's transformed sends ([`Shard::transform_sends`]). A transform
//! that fails leaves the routed message held at the router with the transform's error
//! (`ActOnTransformError` says whether its other sends still go; see
//! [`TransformFailure`]).

use std::sync::Arc;

use hie_hl7::{Message, ScanIndex};
use hie_persist::{MessageMeta, Record, Targets};

use crate::engine::plan::Target;
use crate::engine::rules::RouterRules;
use crate::engine::runtime::{Shard, message_type_of, partition_key, text_of};
use crate::envelope::{Envelope, ItemId, MessageId};
use crate::rules::{NO_TRANSFORM, Outcome};
use crate::transform::Compiled;

/// One message a router made from message `parent` (index `of` in its batch).
#[derive(Debug)]
pub struct MadeMessage {
    /// Index in the batch of the message it was made from.
    pub of: usize,
    /// Its WAL id (on the router's shard, the parent's origin).
    pub wal_id: u64,
    pub bytes: Arc<[u8]>,
    pub scan: Arc<ScanIndex>,
    /// Its targets: a range of [`Made::targets`].
    targets: (usize, usize),
    message_type: String,
    control_id: String,
    partition_key: String,
}

/// Why a message's transformed send failed, and whether its other sends go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransformFailure {
    /// Index in the batch.
    pub of: usize,
    /// The transform's error, as the held list shows it.
    pub reason: String,
}

/// The messages made while routing one batch, and the failures, in buffers a router
/// reuses from batch to batch.
#[derive(Debug, Default)]
pub struct Made {
    pub messages: Vec<MadeMessage>,
    targets: Vec<ItemId>,
    pub failures: Vec<TransformFailure>,
}

impl Made {
    pub(crate) fn clear(&mut self) {
        self.messages.clear();
        self.targets.clear();
        self.failures.clear();
    }

    /// The items message `m` goes to.
    pub fn targets_of(&self, m: &MadeMessage) -> &[ItemId] {
        &self.targets[m.targets.0..m.targets.1]
    }

    /// The failure of message `i` of the batch, if one of its transforms failed.
    pub fn failure_of(&self, i: usize) -> Option<&str> {
        self.failures
            .iter()
            .find(|f| f.of == i)
            .map(|f| f.reason.as_str())
    }

    /// The `Created` records of the batch's messages; `names` is a buffer for the
    /// target names they list (the caller keeps it alive as long as the records).
    pub fn records<'r>(
        &'r self,
        router: &'r str,
        parents: &[Envelope],
        names: &'r [&'r str],
        records: &mut Vec<Record<'r>>,
    ) {
        for m in &self.messages {
            records.push(Record::Created {
                message_id: m.wal_id,
                parent: parents[m.of].id.wal_id,
                source: router,
                meta: MessageMeta {
                    message_type: &m.message_type,
                    control_id: &m.control_id,
                    partition_key: &m.partition_key,
                },
                targets: Targets::List(&names[m.targets.0..m.targets.1]),
                bytes: &m.bytes,
            });
        }
    }

    /// The target names of every made message, in order (the `names` of
    /// [`Made::records`]).
    pub fn names<'p>(&self, shard: &'p Shard) -> Vec<&'p str> {
        let plan = shard.plan();
        self.targets
            .iter()
            .map(|&t| plan.item(t).name.as_str())
            .collect()
    }

    /// The envelope of made message `m`, from router `router`, for its first target
    /// (`copies` sets the others), carrying on from `parent`.
    pub fn envelope(&self, m: &MadeMessage, router: ItemId, parent: &Envelope) -> Envelope {
        let key = if m.partition_key.is_empty() {
            m.control_id.as_bytes()
        } else {
            m.partition_key.as_bytes()
        };
        Envelope {
            id: MessageId {
                origin_shard: parent.id.origin_shard,
                wal_id: m.wal_id,
            },
            bytes: Arc::clone(&m.bytes),
            scan: Some(Arc::clone(&m.scan)),
            source: router,
            origin_name: Arc::clone(&parent.origin_name),
            target: self.targets_of(m).first().copied().unwrap_or(router),
            partition: crate::envelope::partition_hash(key),
            received_at: parent.received_at,
            queued_at: parent.queued_at,
            attempts: 0,
            router_hops: parent.router_hops + 1,
            // An `AckMode=App` reply for it answers the routed message (the router maps
            // the ids: `AppReplies::follow`); ordered acknowledgements count the routed
            // message's own envelopes, which the made one is not.
            wants_reply: parent.wants_reply,
            ordered: false,
        }
    }
}

impl Shard {
    /// Runs the transformed sends of the decisions in `outcome` for message `env`
    /// (index `of` in its batch): one made message per distinct transform, for the items
    /// among its targets (a target that names no item gets the parent's `Discarded`
    /// record, as an untransformed send's does). Returns whether any message was made; a
    /// transform that fails is noted in `made.failures` and, with `stop_on_error`
    /// (`ActOnTransformError`), ends the message's transformed sends.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn transform_sends<'r>(
        &'r self,
        rules: &'r RouterRules,
        env: &Envelope,
        of: usize,
        outcome: &Outcome,
        made: &mut Made,
        records: &mut Vec<Record<'r>>,
    ) -> bool {
        let mut any = false;
        for (k, d) in outcome.decisions.iter().enumerate() {
            let dtl = d.transform;
            if dtl == NO_TRANSFORM || outcome.decisions[..k].iter().any(|e| e.transform == dtl) {
                continue;
            }
            let start = made.targets.len();
            for e in outcome.decisions[k..].iter().filter(|e| e.transform == dtl) {
                match &rules.targets[e.target as usize] {
                    Target::Item(id) => made.targets.push(*id),
                    Target::Missing(name) => {
                        tracing::error!(target = %name, "message {} sent to an item that does not exist", env.id.wal_id);
                        records.push(Record::Discarded {
                            message_id: env.id.wal_id,
                            target: name,
                            reason: "no item of that name in the production",
                        });
                    }
                }
            }
            if made.targets.len() == start {
                continue;
            }
            match run_chain(&rules.transforms[dtl as usize], rules, env) {
                Ok((bytes, scan, meta)) => {
                    made.messages.push(MadeMessage {
                        of,
                        wal_id: self.wal().next_message_id(),
                        bytes,
                        scan,
                        targets: (start, made.targets.len()),
                        message_type: meta.0,
                        control_id: meta.1,
                        partition_key: meta.2,
                    });
                    any = true;
                }
                Err(reason) => {
                    made.targets.truncate(start);
                    tracing::error!(id = %env.id, "message {}: {reason}", env.id.wal_id);
                    if made.failure_of(of).is_none() {
                        made.failures.push(TransformFailure { of, reason });
                    }
                    if rules.act_on_transform_error {
                        return any;
                    }
                }
            }
        }
        any
    }
}

/// A made message's type, control id and partition key, as its record keeps them.
type Facts = (String, String, String);

/// A made message: its bytes, their scan, its facts.
type Output = (Arc<[u8]>, Arc<ScanIndex>, Facts);

/// Runs the DTL classes of one `send transform=` value on `env`'s message, in order (a
/// comma list feeds each output to the next); the last output, scanned, with the facts
/// its `Created` record keeps.
fn run_chain(chain: &[Compiled], rules: &RouterRules, env: &Envelope) -> Result<Output, String> {
    let first = env
        .message()
        .ok_or_else(|| "transform: the message was not scanned as HL7".to_owned())?;
    let lookups = rules.rules.lookups();
    let mut out: Option<Vec<u8>> = None;
    for dtl in chain {
        let output = match &out {
            None => dtl.run(&first, lookups),
            Some(prev) => {
                let msg = Message::scan(prev)
                    .map_err(|e| format!("transform {}: its input does not scan: {e}", dtl.name))?;
                dtl.run(&msg, lookups)
            }
        };
        out = Some(output.map_err(|e| e.to_string())?.message);
    }
    let bytes: Arc<[u8]> = Arc::from(out.unwrap_or_default());
    let msg = Message::scan(&bytes).map_err(|e| {
        let name = chain.last().map_or("", |c| c.name.as_str());
        format!("transform {name}: its output is not an HL7 message: {e}")
    })?;
    let facts = (
        message_type_of(&msg),
        text_of(msg.control_id().unwrap_or_default()).into_owned(),
        text_of(partition_key(&msg)).into_owned(),
    );
    let scan = Arc::new(msg.into_index());
    Ok((bytes, scan, facts))
}
