//! `AckMode=App` replies: a service that answers its sender with the downstream system's
//! reply waits here for it.
//!
//! Owns the replies awaited by the services of this shard ([`AppReplies`]: one map entry
//! per message whose service waits, `None` until its reply arrives) and the rules that
//! match a reply to its wait: a reply for a message nobody waits for is dropped (its
//! service timed out, or the message was not received with `AckMode=App`); the first
//! reply wins (a router may have sent the message to several operations). A reply
//! travels from the shard that has it to the message's origin shard
//! ([`Shard::send_reply`]: locally, or [`ShardMsg::Reply`] through the outbox).
//!
//! A message a router made from a waited-for message (a `send transform=`'s output, with
//! an id of its own) answers for it: [`AppReplies::follow`] maps its id to the one
//! waited for, so that its downstream reply reaches the service; the map entry goes when
//! the wait ends.
//!
//! Limits: one entry per message a service waits for, so at most one per open
//! connection of an `AckMode=App` service; the wait is bounded by its caller's timeout
//! (`APPLICATION_ACK_TIMEOUT` for the TCP service) and removes the entry whether the
//! reply came or not.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use crate::engine::runtime::Shard;
use crate::envelope::{AppReply, Envelope, MessageId, OriginRecord, ShardMsg};
use crate::notify::Notify;

/// The replies awaited on one shard.
#[derive(Debug, Default)]
pub struct AppReplies {
    replies: RefCell<HashMap<MessageId, Option<AppReply>>>,
    /// Made message -> the waited-for message it was made from.
    made: RefCell<HashMap<MessageId, MessageId>>,
    ready: Notify,
}

impl AppReplies {
    /// Registers that a service will wait for the reply to message `id`.
    pub fn expect(&self, id: MessageId) {
        self.replies.borrow_mut().insert(id, None);
    }

    /// Waits up to `timeout` for the reply to message `id` (registered with
    /// [`AppReplies::expect`]) and forgets the message; `None` when none came in time.
    pub async fn wait(&self, id: MessageId, timeout: Duration) -> Option<AppReply> {
        let arrived = async {
            loop {
                if let Some(Some(_)) = self.replies.borrow().get(&id) {
                    return;
                }
                self.ready.notified().await;
            }
        };
        futures_lite::future::or(arrived, glommio::timer::sleep(timeout)).await;
        let mut made = self.made.borrow_mut();
        if !made.is_empty() {
            made.retain(|_, parent| *parent != id);
        }
        self.replies.borrow_mut().remove(&id).flatten()
    }

    /// A reply for message `made` answers the wait for `parent` (which a router made it
    /// from); nothing when no service waits for `parent`.
    pub fn follow(&self, made: MessageId, parent: MessageId) {
        if self.replies.borrow().contains_key(&parent) {
            self.made.borrow_mut().insert(made, parent);
        }
    }

    /// Hands `reply` to the service waiting for message `id`; false when it is dropped
    /// (nobody waits, or an earlier reply won).
    pub fn take(&self, id: MessageId, reply: AppReply) -> bool {
        let id = self.made.borrow().get(&id).copied().unwrap_or(id);
        match self.replies.borrow_mut().get_mut(&id) {
            Some(slot @ None) => *slot = Some(reply),
            _ => return false,
        }
        self.ready.notify_all();
        true
    }

    /// How many messages services wait for.
    pub fn waiting(&self) -> usize {
        self.replies.borrow().len()
    }
}

/// The reply an outcome gives a waiting service when no downstream reply came first:
/// accepted when delivered, the reason as an error otherwise.
pub fn reply_of(record: &OriginRecord) -> AppReply {
    match record {
        OriginRecord::Completed => AppReply::Accepted,
        OriginRecord::Failed { reason }
        | OriginRecord::Suspended { reason }
        | OriginRecord::Discarded { reason } => AppReply::Error(reason.clone()),
    }
}

impl Shard {
    /// Registers that a service will wait for the reply to message `id`.
    pub fn expect_reply(&self, id: MessageId) {
        self.app_replies().expect(id);
    }

    /// Waits up to `timeout` for the reply to message `id` (registered with
    /// [`Shard::expect_reply`]); `None` when none came in time.
    pub async fn wait_reply(&self, id: MessageId, timeout: Duration) -> Option<AppReply> {
        self.app_replies().wait(id, timeout).await
    }

    /// Sends the reply for `env` to the service waiting at its origin, if one waits.
    pub fn send_reply(&self, env: &Envelope, reply: AppReply) {
        if !env.wants_reply {
            return;
        }
        let origin = env.id.origin_shard as usize;
        if origin == self.index() {
            self.take_reply(env.id, reply);
        } else {
            self.send_to_origin(origin, ShardMsg::Reply { id: env.id, reply });
        }
    }

    /// Hands a reply that arrived for message `id` to its waiting service; the first reply
    /// wins.
    pub fn take_reply(&self, id: MessageId, reply: AppReply) {
        self.app_replies().take(id, reply);
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
    fn a_reply_nobody_waits_for_is_dropped() {
        let replies = AppReplies::default();
        assert!(!replies.take(id(1), AppReply::Accepted));
        assert_eq!(replies.waiting(), 0, "it is not kept");
    }

    #[test]
    fn a_reply_for_a_made_message_answers_the_message_it_was_made_from() {
        glommio::LocalExecutor::default().run(async {
            let replies = AppReplies::default();
            replies.follow(id(9), id(1));
            assert!(
                !replies.take(id(9), AppReply::Accepted),
                "nobody waits for 1"
            );
            replies.expect(id(1));
            replies.follow(id(9), id(1));
            assert!(replies.take(id(9), AppReply::Error("downstream".into())));
            let got = replies.wait(id(1), Duration::from_secs(10)).await;
            assert!(
                matches!(got, Some(AppReply::Error(ref r)) if r == "downstream"),
                "{got:?}"
            );
            assert!(replies.made.borrow().is_empty(), "forgotten with the wait");
        });
    }

    #[test]
    fn the_first_reply_wins() {
        glommio::LocalExecutor::default().run(async {
            let replies = AppReplies::default();
            replies.expect(id(1));
            assert!(replies.take(id(1), AppReply::Error("first".into())));
            assert!(!replies.take(id(1), AppReply::Accepted), "a second reply");
            let got = replies.wait(id(1), Duration::from_secs(10)).await;
            assert!(
                matches!(got, Some(AppReply::Error(ref r)) if r == "first"),
                "{got:?}"
            );
            assert_eq!(replies.waiting(), 0, "the wait forgot the message");
        });
    }

    #[test]
    fn a_reply_goes_to_its_own_message_only() {
        glommio::LocalExecutor::default().run(async {
            let replies = Rc::new(AppReplies::default());
            replies.expect(id(1));
            replies.expect(id(2));
            let waiter = glommio::spawn_local({
                let replies = Rc::clone(&replies);
                async move { replies.wait(id(2), Duration::from_secs(10)).await }
            });
            glommio::timer::sleep(Duration::from_millis(2)).await;
            assert!(replies.take(id(1), AppReply::Error("one".into())));
            assert!(replies.take(id(2), AppReply::Accepted));
            assert!(matches!(waiter.await, Some(AppReply::Accepted)));
            assert_eq!(
                replies.waiting(),
                1,
                "message 1's reply waits for its service"
            );
        });
    }

    #[test]
    fn the_wait_gives_up_at_its_deadline_and_a_late_reply_is_dropped() {
        glommio::LocalExecutor::default().run(async {
            let replies = AppReplies::default();
            replies.expect(id(1));
            assert!(
                replies
                    .wait(id(1), Duration::from_millis(5))
                    .await
                    .is_none()
            );
            assert_eq!(replies.waiting(), 0);
            assert!(!replies.take(id(1), AppReply::Accepted), "too late");
        });
    }

    #[test]
    fn an_outcome_answers_accepted_only_when_delivered() {
        assert!(matches!(
            reply_of(&OriginRecord::Completed),
            AppReply::Accepted
        ));
        for record in [
            OriginRecord::Failed { reason: "r".into() },
            OriginRecord::Suspended { reason: "r".into() },
            OriginRecord::Discarded { reason: "r".into() },
        ] {
            assert!(matches!(reply_of(&record), AppReply::Error(ref r) if r == "r"));
        }
    }
}
