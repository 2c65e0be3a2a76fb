//! A router's `ResponseFrom`: which of its targets' replies answer an `AckMode=App`
//! service waiting for a message the router routed, and where else the answer goes
//! (`ResponseTargetConfigNames`).
//!
//! The first router that routes a waited-for message decides (a router further down a
//! chain does not): it registers, before any envelope leaves, the targets it sent the
//! message to ([`Gathering`], kept by `AppReplies` on the message's origin shard, where
//! the router runs). Each reply carries who sent it ([`ReplyFrom`]: the item that had the
//! message and the item that passed it there), so a reply counts for a listed target when
//! that target sent it or passed the message on to the item that did (one router of a
//! chain). What answers, in HL7 terms (the caller gets one reply):
//!
//! - blank: AA (written by the service) as soon as the router has routed the message, as
//!   IRIS's router returns no response and its service then acknowledges itself;
//! - `a,b` / `*`: the first reply from a listed target the message was sent to (`*`:
//!   any target); replies from other targets are ignored;
//! - `+a,b`: every listed target's reply; the worst answers (AR/CR over AE/CE over
//!   AA/CA; a reply that is not a readable ACK counts as AE), the earliest among equals;
//! - `-a,b`: the first error reply (AE/AR or an outcome that is not delivered); AA once
//!   every listed target replied without one.
//!
//! A message sent to none of the listed targets is answered AA at once (nothing to wait
//! for). The router's own outcome (a failed transform, the hop limit, no route) answers
//! at once, as before. `ResponseTimeout` (and, always, the service's own wait) ends the
//! gathering: the targets still silent count as one generated AE ("no response within
//! ResponseTimeout"), which answers unless a reply already at hand is worse (`+`).
//!
//! The answer, when `ResponseTargetConfigNames` is set, also goes to those items as a
//! new message ([`Shard::forward_response`]): its bytes are the reply as it came (an ACK
//! the service writes for AA/AE from the routed message, for a reply that had no bytes),
//! recorded by one `Created` record (parent: the routed message) before any envelope
//! leaves, so recovery delivers it as made messages are. An answer the router generated
//! (the blank/`-` AA, a timeout, the router's own error) is forwarded only with
//! `ForwardGeneratedResponseToTarget` (the default). A response that arrives after the
//! answer is not forwarded.
//!
//! Limits: one [`Gathering`] per waited-for message (see `AppReplies`), holding at most
//! one reply per target of the router.

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hie_hl7::{AckCode, ErrDetail, Message};
use hie_persist::{MessageMeta, Record, Targets, WalError};

use crate::config::Timeout;
use crate::config::response_from::Gather;
use crate::engine::ingest::{envelope, scan_of};
use crate::engine::plan::{Plan, Target};
use crate::engine::runtime::{Shard, log_append_error, message_type_of, partition_key, text_of};
use crate::envelope::{AppReply, Envelope, ItemId, MessageId, ReplyFrom};
use crate::items::kinds::routing_engine::RouterPlan;

/// HL7 table 0357 "application internal error", the ERR code of a generated AE.
const APPLICATION_INTERNAL_ERROR: u16 = 207;

/// A router's response settings, resolved in the plan.
#[derive(Debug)]
pub enum Responses {
    /// `ResponseFrom` blank: AA once routed.
    Blank,
    Gather(Rc<ResponsePolicy>),
}

/// A non-blank `ResponseFrom` and what goes with it.
#[derive(Debug)]
pub struct ResponsePolicy {
    pub router: ItemId,
    pub gather: Gather,
    /// The listed items; `None` for `*`.
    pub from: Option<Vec<ItemId>>,
    /// `ResponseTimeout`; `None` waits as long as the service does.
    pub timeout: Option<Duration>,
    /// `ResponseTargetConfigNames`.
    pub forward_to: Vec<Target>,
    /// `ForwardGeneratedResponseToTarget`.
    pub forward_generated: bool,
}

impl Responses {
    /// The response settings of router `router` (blank for an item that has none).
    pub fn of(plan: &Plan, router: ItemId) -> Responses {
        let Some(settings) = plan.item(router).role.data::<RouterPlan>() else {
            return Responses::Blank;
        };
        let settings = &settings.responses;
        let Some(from) = &settings.from else {
            return Responses::Blank;
        };
        let id = |name: &String| plan.item_named(name).map(|i| i.id);
        let target = |name: &String| match id(name) {
            Some(id) => Target::Item(id),
            None => Target::Missing(name.clone()),
        };
        Responses::Gather(Rc::new(ResponsePolicy {
            router,
            gather: from.gather,
            // `hie check` refuses names that are no item; none is left to drop here.
            from: from
                .items
                .as_ref()
                .map(|l| l.iter().filter_map(id).collect()),
            timeout: match settings.timeout {
                Timeout::Forever => None,
                Timeout::Seconds(s) => Some(Duration::from_secs(u64::from(s))),
            },
            forward_to: settings.targets.iter().map(target).collect(),
            forward_generated: settings.forward_generated,
        }))
    }
}

/// The answer to a waiting service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub reply: AppReply,
    /// The router made it up (no target's reply).
    pub generated: bool,
}

impl Answer {
    fn generated(reply: AppReply) -> Answer {
        Answer {
            reply,
            generated: true,
        }
    }

    fn of_target(reply: AppReply) -> Answer {
        Answer {
            reply,
            generated: false,
        }
    }
}

/// The replies a router's `ResponseFrom` still waits for, for one message.
#[derive(Debug)]
pub struct Gathering {
    pub policy: Rc<ResponsePolicy>,
    /// The listed targets the message went to that have not replied yet.
    awaited: Vec<ItemId>,
    /// `+`: the replies so far, in arrival order.
    replies: Vec<AppReply>,
    /// `ResponseTimeout`'s end.
    pub deadline: Option<Instant>,
    /// The routed message, for the ACK a forwarded answer without bytes becomes.
    pub routed: Envelope,
}

impl Gathering {
    /// Starts gathering for `routed`, which the router sent to `sent_to`.
    pub fn new(policy: Rc<ResponsePolicy>, routed: Envelope, sent_to: &[ItemId]) -> Gathering {
        let mut awaited: Vec<ItemId> = Vec::with_capacity(sent_to.len());
        for &t in sent_to {
            let listed = policy.from.as_ref().is_none_or(|l| l.contains(&t));
            if listed && !awaited.contains(&t) {
                awaited.push(t);
            }
        }
        Gathering {
            deadline: policy.timeout.map(|t| Instant::now() + t),
            policy,
            awaited,
            replies: Vec::new(),
            routed,
        }
    }

    /// The answer when there is nothing to wait for (no listed target got the message).
    pub fn settled(&self) -> Option<Answer> {
        self.awaited
            .is_empty()
            .then(|| Answer::generated(AppReply::Accepted))
    }

    /// Takes `reply` from `from`; the answer once the replies so far decide it.
    pub fn take(&mut self, from: ReplyFrom, reply: AppReply) -> Option<Answer> {
        if from.item == self.policy.router {
            return Some(Answer::generated(reply));
        }
        let at = self
            .awaited
            .iter()
            .position(|&t| t == from.item || t == from.via)?;
        self.awaited.swap_remove(at);
        let done = self.awaited.is_empty();
        match self.policy.gather {
            Gather::First => Some(Answer::of_target(reply)),
            Gather::Errors if rank(&reply) > 0 => Some(Answer::of_target(reply)),
            Gather::Errors => done.then(|| Answer::generated(AppReply::Accepted)),
            Gather::All => {
                self.replies.push(reply);
                done.then(|| worst(std::mem::take(&mut self.replies), usize::MAX))
            }
        }
    }

    /// The answer when the wait ends before the replies decide it: the silent targets
    /// count as one generated AE.
    pub fn expire(&mut self) -> Answer {
        let missing = AppReply::Error(format!(
            "no response within the router's ResponseTimeout from {} of its ResponseFrom \
             targets",
            self.awaited.len()
        ));
        match self.policy.gather {
            Gather::All => {
                let mut replies = std::mem::take(&mut self.replies);
                replies.push(missing);
                let generated_at = replies.len() - 1;
                worst(replies, generated_at)
            }
            Gather::First | Gather::Errors => Answer::generated(missing),
        }
    }
}

/// The worst of `replies` (the earliest among equals); `generated_at` is the index of
/// the one the router made up, if any.
fn worst(replies: Vec<AppReply>, generated_at: usize) -> Answer {
    let mut best = 0;
    for (i, r) in replies.iter().enumerate() {
        if rank(r) > rank(&replies[best]) {
            best = i;
        }
    }
    let generated = best == generated_at;
    let reply = replies.into_iter().nth(best).unwrap_or(AppReply::Accepted);
    Answer { reply, generated }
}

/// 0 accepted, 1 error, 2 rejected; a reply that is not a readable ACK is an error.
fn rank(reply: &AppReply) -> u8 {
    match reply {
        AppReply::Accepted => 0,
        AppReply::Error(_) => 1,
        AppReply::Ack(bytes) => match Message::scan(bytes).ok().and_then(|m| m.ack_code()) {
            Some(code) if code.is_accept() => 0,
            Some(code) if code.is_reject() => 2,
            _ => 1,
        },
    }
}

/// An answer that also goes to `ResponseTargetConfigNames`.
#[derive(Debug)]
pub struct Forward {
    pub policy: Rc<ResponsePolicy>,
    pub routed: Envelope,
    pub reply: AppReply,
}

impl Forward {
    /// The forward of `answer` to `gathering`'s policy's targets, if it has any and the
    /// answer may go there.
    pub fn of(gathering: Gathering, answer: &Answer) -> Option<Forward> {
        let policy = gathering.policy;
        let wanted = !answer.generated || policy.forward_generated;
        (wanted && !policy.forward_to.is_empty()).then(|| Forward {
            policy,
            routed: gathering.routed,
            reply: answer.reply.clone(),
        })
    }
}

impl Shard {
    /// Sends `forward`'s reply on as a new message to its `ResponseTargetConfigNames`:
    /// one `Created` record (a target that names no item gets a `Discarded` one), durable
    /// before any envelope leaves. While the WAL is unavailable it waits (and the caller's
    /// answer with it); a WAL that refuses the record otherwise, or a run that stops
    /// first, is logged with the message and the router.
    pub async fn forward_response(&self, forward: Forward) {
        let Some(bytes) = self.response_bytes(&forward) else {
            let router = &self.plan().item(forward.policy.router).name;
            tracing::warn!(item = %router, "message {}: its response is not forwarded: the routed document is not one HL7 message", forward.routed.id);
            return;
        };
        let scan = scan_of(&bytes);
        let msg = scan.as_ref().and_then(|_| Message::scan(&bytes).ok());
        let (message_type, control_id, key) = match &msg {
            Some(m) => (
                message_type_of(m),
                text_of(m.control_id().unwrap_or_default()).into_owned(),
                text_of(partition_key(m)).into_owned(),
            ),
            None => Default::default(),
        };
        let plan = self.plan();
        let router = &plan.item(forward.policy.router).name;
        let (items, names) = targets_of(plan, &forward.policy.forward_to);
        let wal_id = self.wal().next_message_id();
        let mut records = vec![Record::Created {
            message_id: wal_id,
            parent: forward.routed.id.wal_id,
            source: router,
            meta: MessageMeta {
                message_type: &message_type,
                control_id: &control_id,
                partition_key: &key,
            },
            targets: Targets::List(&names),
            bytes: &bytes,
        }];
        for t in &forward.policy.forward_to {
            if let Target::Missing(name) = t {
                records.push(Record::Discarded {
                    message_id: wal_id,
                    target: name,
                    reason: "no item of that name in the production",
                });
            }
        }
        if let Err(e) = self.append_forward(forward.policy.router, &records).await {
            log_append_error(router, &e);
            tracing::error!(item = %router, "message {}: its response is not forwarded to ResponseTargetConfigNames: {e}", forward.routed.id);
            return;
        }
        let Some(&first) = items.first() else {
            return;
        };
        let id = MessageId {
            origin_shard: self.index() as u16,
            wal_id,
        };
        let key = if key.is_empty() { &control_id } else { &key };
        let origin = Arc::clone(&forward.routed.origin_name);
        let env = envelope(
            id,
            (bytes, scan),
            forward.policy.router,
            origin,
            first,
            key.as_bytes(),
        );
        self.fan_out(env, &items).await;
    }

    /// Appends a forward's records, waiting while the WAL is unavailable (a full disk:
    /// the router shows `waiting_for_wal`, and the service's answer waits with it) and
    /// trying again once it is writable; an error when the run stops first or the WAL
    /// refuses the records for another reason.
    async fn append_forward(&self, router: ItemId, records: &[Record<'_>]) -> Result<(), WalError> {
        loop {
            match self.wal().append_many(records).await {
                Err(e) if e.is_storage() && self.until_wal_writable(Some(router)).await => {}
                other => return other.map(|_| ()),
            }
        }
    }

    /// The bytes of `forward`'s reply: the downstream ACK as it came, else the ACK the
    /// service writes for it; `None` when the routed document is not one message.
    fn response_bytes(&self, forward: &Forward) -> Option<Arc<[u8]>> {
        let (code, text) = match &forward.reply {
            AppReply::Ack(bytes) => return Some(Arc::from(bytes.as_slice())),
            AppReply::Accepted => (AckCode::AA, None),
            AppReply::Error(reason) => (AckCode::AE, Some(reason.as_str())),
        };
        let routed = forward.routed.message()?;
        let err = text.map(|text| ErrDetail {
            code: APPLICATION_INTERNAL_ERROR,
            severity: b'E',
            location: None,
            text,
        });
        let mut out = Vec::new();
        self.ack_builder()
            .write_ack(&mut out, &routed, code, err.as_ref());
        Some(Arc::from(out))
    }
}

/// The items among `targets` and the names of those items.
fn targets_of<'p>(plan: &'p Plan, targets: &[Target]) -> (Vec<ItemId>, Vec<&'p str>) {
    targets
        .iter()
        .filter_map(|t| match t {
            Target::Item(id) => Some((*id, plan.item(*id).name.as_str())),
            Target::Missing(_) => None,
        })
        .unzip()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTER: ItemId = 9;

    fn policy(gather: Gather, from: Option<Vec<ItemId>>) -> Rc<ResponsePolicy> {
        Rc::new(ResponsePolicy {
            router: ROUTER,
            gather,
            from,
            timeout: None,
            forward_to: Vec::new(),
            forward_generated: true,
        })
    }

    fn routed() -> Envelope {
        let bytes: Arc<[u8]> = Arc::from(&b"MSH|^~\\&|A|B|C|D|1||ADT^A01|M1|P|2.5\r"[..]);
        let scan = scan_of(&bytes);
        envelope(
            MessageId {
                origin_shard: 0,
                wal_id: 1,
            },
            (bytes, scan),
            0,
            Arc::from("test"),
            1,
            b"M1",
        )
    }

    fn from(item: ItemId) -> ReplyFrom {
        ReplyFrom { item, via: ROUTER }
    }

    fn ack(code: &str) -> AppReply {
        AppReply::Ack(format!("MSH|^~\\&|S|F|R|F|1||ACK|A1|P|2.5\rMSA|{code}|M1\r").into_bytes())
    }

    #[test]
    fn the_first_reply_of_a_listed_target_answers_and_others_are_ignored() {
        let mut g = Gathering::new(policy(Gather::First, Some(vec![2])), routed(), &[1, 2]);
        assert_eq!(g.settled(), None);
        assert_eq!(g.take(from(1), ack("AA")), None, "1 is not listed");
        assert_eq!(
            g.take(from(2), ack("AE")),
            Some(Answer::of_target(ack("AE")))
        );
    }

    #[test]
    fn a_reply_through_a_listed_router_counts_for_it() {
        let mut g = Gathering::new(policy(Gather::First, Some(vec![5])), routed(), &[5]);
        let through = ReplyFrom { item: 7, via: 5 };
        assert_eq!(
            g.take(through, ack("AA")),
            Some(Answer::of_target(ack("AA")))
        );
    }

    #[test]
    fn all_waits_for_every_listed_target_and_answers_the_worst() {
        let mut g = Gathering::new(policy(Gather::All, None), routed(), &[1, 2, 3]);
        assert_eq!(g.take(from(1), ack("AE")), None);
        assert_eq!(
            g.take(from(1), AppReply::Accepted),
            None,
            "1 replied already"
        );
        assert_eq!(g.take(from(2), ack("AR")), None);
        assert_eq!(
            g.take(from(3), ack("AE")),
            Some(Answer::of_target(ack("AR")))
        );
    }

    #[test]
    fn all_answers_the_earliest_of_equally_bad_replies() {
        let mut g = Gathering::new(policy(Gather::All, None), routed(), &[1, 2]);
        assert_eq!(g.take(from(1), ack("AA")), None);
        let got = g.take(from(2), AppReply::Accepted);
        assert_eq!(got, Some(Answer::of_target(ack("AA"))));
    }

    #[test]
    fn errors_answers_the_first_error_or_a_generated_accept() {
        let mut g = Gathering::new(policy(Gather::Errors, None), routed(), &[1, 2]);
        assert_eq!(g.take(from(1), ack("AA")), None);
        let err = AppReply::Error("down".into());
        assert_eq!(g.take(from(2), err.clone()), Some(Answer::of_target(err)));
        let mut g = Gathering::new(policy(Gather::Errors, None), routed(), &[1, 2]);
        assert_eq!(g.take(from(1), ack("AA")), None);
        let got = g.take(from(2), AppReply::Accepted);
        assert_eq!(got, Some(Answer::generated(AppReply::Accepted)));
    }

    #[test]
    fn a_message_sent_to_no_listed_target_is_answered_at_once() {
        let g = Gathering::new(policy(Gather::First, Some(vec![4])), routed(), &[1, 2]);
        assert_eq!(g.settled(), Some(Answer::generated(AppReply::Accepted)));
    }

    #[test]
    fn the_routers_own_outcome_answers_at_once() {
        let mut g = Gathering::new(policy(Gather::All, None), routed(), &[1]);
        let err = AppReply::Error("transform".into());
        let got = g.take(from(ROUTER), err.clone());
        assert_eq!(got, Some(Answer::generated(err)));
    }

    #[test]
    fn expiry_answers_a_generated_error_unless_a_reply_at_hand_is_worse() {
        let mut g = Gathering::new(policy(Gather::First, None), routed(), &[1]);
        let got = g.expire();
        assert!(
            got.generated && matches!(got.reply, AppReply::Error(_)),
            "{got:?}"
        );
        let mut g = Gathering::new(policy(Gather::All, None), routed(), &[1, 2, 3]);
        assert_eq!(g.take(from(1), ack("AR")), None);
        assert_eq!(g.expire(), Answer::of_target(ack("AR")));
        let mut g = Gathering::new(policy(Gather::All, None), routed(), &[1, 2]);
        assert_eq!(g.take(from(1), ack("AA")), None);
        let got = g.expire();
        assert!(
            got.generated && matches!(got.reply, AppReply::Error(_)),
            "{got:?}"
        );
    }

    #[test]
    fn a_generated_answer_is_forwarded_only_when_allowed() {
        let g = |forward_to: Vec<Target>, forward_generated: bool| {
            let p = Rc::new(ResponsePolicy {
                router: ROUTER,
                gather: Gather::First,
                from: None,
                timeout: None,
                forward_to,
                forward_generated,
            });
            Gathering::new(p, routed(), &[1])
        };
        let generated = Answer::generated(AppReply::Accepted);
        let target = || vec![Target::Item(3)];
        assert!(Forward::of(g(target(), false), &generated).is_none());
        assert!(Forward::of(g(target(), false), &Answer::of_target(ack("AA"))).is_some());
        assert!(Forward::of(g(target(), true), &generated).is_some());
        assert!(Forward::of(g(Vec::new(), true), &Answer::of_target(ack("AA"))).is_none());
    }
}
