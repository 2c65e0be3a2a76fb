//! Ordered acknowledgments (docs/adr/0006): a service whose port is shared over shards
//! acknowledges a message only once it is in the queue of every operation it goes to.
//!
//! Owns the hop counts of the messages received on this shard whose service waits
//! ([`OrderedAcks`]: one map entry per waiting message, with its waker), and every rule of
//! ADR 0006: which services order their ACKs ([`service_orders_acks`]), which messages
//! they order ([`Shard::orders_message`]), what counts as a hop and when one ends (a
//! router replaces its hop with one per target it routes to, [`Shard::routed_ordered`];
//! an operation's queue taking the message, or its discard, ends one), and how long a
//! service waits ([`ORDERED_ACK_WAIT_MAX`], [`EnteredWait::wait_or_log`]).
//!
//! Limits: one entry per message a service waits for, so at most one per open
//! connection of a service that orders its ACKs; the entry goes when the wait ends or
//! its task is dropped ([`EnteredWait`]'s `Drop`). A hop that ends for a message nobody
//! waits for any more is ignored.

use std::cell::RefCell;
use std::collections::HashMap;
use std::task::{Poll, Waker};
use std::time::Duration;

use crate::config::AckMode;
use crate::engine::control::ItemState;
use crate::engine::runtime::Shard;
use crate::envelope::{Envelope, ItemId, MessageId, ShardMsg};

/// Longest a service on several shards waits for a message to reach its operations'
/// queues before it acknowledges anyway (a router that failed meanwhile, a `block` queue
/// full for that long): the message is durable and delivered later, only its order
/// against the sender's next message is no longer certain, and the log says so.
pub const ORDERED_ACK_WAIT_MAX: Duration = Duration::from_secs(5);

/// True when a service placed on `shards` with `ack_mode` orders its ACKs: its
/// instances are on more than one shard and its sender waits for ACKs (`App` waits for
/// the downstream reply already; `Never` has no ACK to hold back).
pub fn service_orders_acks(shards: &[usize], ack_mode: AckMode) -> bool {
    let spread = shards.iter().any(|&s| s != shards[0]);
    spread && matches!(ack_mode, AckMode::Immediate | AckMode::Msh | AckMode::Byte)
}

/// A message whose service waits for it to enter its operations' queues.
#[derive(Debug)]
struct Entering {
    /// Targets not yet reached (a router's hop counts until it routes the message).
    hops_left: isize,
    waker: Option<Waker>,
}

/// The hop counts of the messages whose service waits for them (one shard's).
#[derive(Debug, Default)]
pub struct OrderedAcks {
    entering: RefCell<HashMap<MessageId, Entering>>,
}

impl OrderedAcks {
    /// Registers that a service waits for message `id` to end `hops` hops; the
    /// registration ends when the returned guard is dropped.
    pub fn expect(&self, id: MessageId, hops: usize) -> EnteredWait<'_> {
        let entering = Entering {
            hops_left: hops as isize,
            waker: None,
        };
        self.entering.borrow_mut().insert(id, entering);
        EnteredWait { acks: self, id }
    }

    /// Message `id` has `delta` more hops to wait for; wakes its service when none is
    /// left. Nothing happens when no service waits for it (it timed out, or its
    /// connection closed).
    pub fn add_hops(&self, id: MessageId, delta: isize) {
        let mut entering = self.entering.borrow_mut();
        let Some(e) = entering.get_mut(&id) else {
            return;
        };
        e.hops_left += delta;
        if e.hops_left <= 0
            && let Some(waker) = e.waker.take()
        {
            waker.wake();
        }
    }

    /// Hops still to end for message `id`; `None` when no service waits for it.
    pub fn hops_left(&self, id: MessageId) -> Option<isize> {
        self.entering.borrow().get(&id).map(|e| e.hops_left)
    }

    /// How many messages services wait for.
    pub fn waiting(&self) -> usize {
        self.entering.borrow().len()
    }
}

/// A service's wait for its message to enter its operations' queues
/// ([`Shard::expect_entered`]); dropping it (the wait ended, or the connection's task
/// did) forgets the message, waker included.
#[derive(Debug)]
pub struct EnteredWait<'a> {
    acks: &'a OrderedAcks,
    id: MessageId,
}

impl EnteredWait<'_> {
    /// Waits up to `timeout` until the message has entered every queue it was delivered
    /// to; false when the time ran out first.
    pub async fn wait(self, timeout: Duration) -> bool {
        let entered = std::future::poll_fn(|cx| {
            let mut entering = self.acks.entering.borrow_mut();
            match entering.get_mut(&self.id) {
                Some(e) if e.hops_left > 0 => {
                    e.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
                _ => Poll::Ready(true),
            }
        });
        let timed_out = async {
            glommio::timer::sleep(timeout).await;
            false
        };
        futures_lite::future::or(entered, timed_out).await
    }

    /// [`EnteredWait::wait`] up to [`ORDERED_ACK_WAIT_MAX`]; past it logs that service
    /// `item` acknowledges anyway. The message is stored either way: only its order
    /// against the sender's next one is no longer certain.
    pub async fn wait_or_log(self, item: &str) {
        let id = self.id;
        if !self.wait(ORDERED_ACK_WAIT_MAX).await {
            tracing::warn!(
                item = %item,
                id = %id,
                "message not in its operations' queues after {ORDERED_ACK_WAIT_MAX:?}; \
                 acknowledged anyway (it is stored and will be delivered; the sender's \
                 next message may overtake it)"
            );
        }
    }
}

impl Drop for EnteredWait<'_> {
    fn drop(&mut self) {
        self.acks.entering.borrow_mut().remove(&self.id);
    }
}

/// The id whose hop ends once `env` is in its target's queue: an ordered envelope for an
/// operation (a router's queue is not where order is decided; the router reports).
pub fn entering_of(env: &Envelope, target_is_router: bool) -> Option<MessageId> {
    (env.ordered && !target_is_router).then_some(env.id)
}

impl Shard {
    /// True when a service orders its ACK of a message going to `targets`: not when it
    /// goes nowhere, nor while a router among them is not running (its queue keeps
    /// messages for as long as that lasts, and the sender would only wait).
    pub fn orders_message(&self, targets: &[ItemId]) -> bool {
        !targets.is_empty()
            && targets.iter().all(|&t| {
                !self.plan().item(t).is_router() || self.states().get(t) == ItemState::Running
            })
    }

    /// Registers that a service waits for message `id` (received here) to enter the
    /// queues of its operations before it acknowledges: `hops` is the number of targets
    /// it is delivered to. A router among them replaces its hop with one per target it
    /// routes the message to ([`Shard::routed_ordered`]); an operation's queue taking the
    /// message (or its discard: no instance, overflow `reject`, shutdown) ends one. The
    /// registration ends when the returned guard is dropped.
    pub fn expect_entered(&self, id: MessageId, hops: usize) -> EnteredWait<'_> {
        self.ordered_acks().expect(id, hops)
    }

    /// A router here routed the ordered message `id` to `targets` targets: its own hop
    /// becomes one per target.
    pub fn routed_ordered(&self, id: MessageId, targets: usize) {
        self.ordered_acks().add_hops(id, targets as isize - 1);
    }

    /// One hop of message `id` ended: counted here when it was received here, else
    /// reported to its origin shard.
    pub(crate) fn entered(&self, id: MessageId) {
        let origin = id.origin_shard as usize;
        if origin == self.index() {
            self.ordered_acks().add_hops(id, -1);
        } else {
            self.send_to_origin(origin, ShardMsg::Entered { id });
        }
    }

    /// [`Shard::entered`] for an ordered envelope that ends here without entering a
    /// queue (no instance, no local queue).
    pub(crate) fn note_entered(&self, env: &Envelope) {
        if env.ordered {
            self.entered(env.id);
        }
    }

    /// The id to report once `env` is in its target's queue ([`entering_of`]).
    pub(crate) fn entering_of(&self, env: &Envelope) -> Option<MessageId> {
        entering_of(env, self.plan().item(env.target).is_router())
    }
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use super::*;

    fn id(wal_id: u64) -> MessageId {
        MessageId::of_shard_0(wal_id)
    }

    #[test]
    fn only_a_service_on_several_shards_whose_sender_waits_orders_its_acks() {
        assert!(service_orders_acks(&[0, 1], AckMode::Immediate));
        assert!(service_orders_acks(&[1, 0], AckMode::Msh));
        assert!(service_orders_acks(&[0, 1], AckMode::Byte));
        assert!(!service_orders_acks(&[0], AckMode::Immediate), "one shard");
        assert!(
            !service_orders_acks(&[1, 1], AckMode::Immediate),
            "one shard twice"
        );
        assert!(!service_orders_acks(&[0, 1], AckMode::Application));
        assert!(!service_orders_acks(&[0, 1], AckMode::Never));
    }

    #[test]
    fn a_router_replaces_its_hop_with_one_per_target_it_routes_to() {
        let acks = OrderedAcks::default();
        let _wait = acks.expect(id(1), 2);
        // One target was a router: it routes the message to three operations.
        acks.add_hops(id(1), 3 - 1);
        assert_eq!(acks.hops_left(id(1)), Some(4));
        for left in (0..4).rev() {
            acks.add_hops(id(1), -1);
            assert_eq!(acks.hops_left(id(1)), Some(left));
        }
    }

    #[test]
    fn a_hop_of_a_message_nobody_waits_for_is_ignored() {
        let acks = OrderedAcks::default();
        acks.add_hops(id(7), -1);
        assert_eq!(acks.hops_left(id(7)), None);
        assert_eq!(acks.waiting(), 0);
    }

    #[test]
    fn dropping_the_wait_forgets_the_message() {
        let acks = OrderedAcks::default();
        let wait = acks.expect(id(1), 1);
        let _other = acks.expect(id(2), 1);
        assert_eq!(acks.waiting(), 2);
        drop(wait);
        assert_eq!(acks.waiting(), 1);
        assert_eq!(acks.hops_left(id(1)), None);
    }

    #[test]
    fn the_wait_ends_when_the_last_hop_ends_and_not_before() {
        glommio::LocalExecutor::default().run(async {
            let acks = Rc::new(OrderedAcks::default());
            let done = Rc::new(std::cell::Cell::new(false));
            let waiter = glommio::spawn_local({
                let (acks, done) = (Rc::clone(&acks), Rc::clone(&done));
                async move {
                    let entered = acks.expect(id(1), 2).wait(Duration::from_secs(10)).await;
                    done.set(true);
                    entered
                }
            });
            glommio::timer::sleep(Duration::from_millis(2)).await;
            acks.add_hops(id(1), -1);
            glommio::timer::sleep(Duration::from_millis(2)).await;
            assert_eq!(acks.hops_left(id(1)), Some(1), "one hop is still owed");
            assert!(!done.get(), "one hop is still owed");
            acks.add_hops(id(1), -1);
            assert!(waiter.await, "entered");
            assert_eq!(acks.waiting(), 0, "the wait forgot the message");
        });
    }

    #[test]
    fn the_wait_gives_up_at_its_deadline_and_forgets_the_message() {
        glommio::LocalExecutor::default().run(async {
            let acks = OrderedAcks::default();
            let entered = acks.expect(id(1), 1).wait(Duration::from_millis(5)).await;
            assert!(!entered, "no hop ended");
            assert_eq!(acks.waiting(), 0);
        });
    }

    #[test]
    fn a_message_with_no_hop_left_does_not_wait() {
        glommio::LocalExecutor::default().run(async {
            let acks = OrderedAcks::default();
            assert!(acks.expect(id(1), 0).wait(Duration::from_secs(10)).await);
        });
    }
}
