//! `AckMode=App` replies: a service that answers its sender with the downstream system's
//! reply waits here for it.
//!
//! Owns the replies awaited by the services of this shard ([`AppReplies`]: one map entry
//! per message whose service waits, `None` until its reply arrives) and the rules that
//! match a reply to its wait: a reply for a message nobody waits for is dropped (its
//! service timed out, or the message was not received with `AckMode=App`); without a
//! router's `ResponseFrom` the first reply wins; with one, the router's [`Gathering`]
//! decides which replies answer and when (`crate::engine::responses`). A reply carries
//! its sender ([`ReplyFrom`]) and travels from the shard that has it to the message's
//! origin shard ([`Shard::send_reply`]: locally, or [`ShardMsg::Reply`] through the
//! outbox).
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
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::engine::responses::{Answer, Forward, Gathering, Responses};
use crate::engine::runtime::Shard;
use crate::envelope::{AppReply, Envelope, ItemId, MessageId, OriginRecord, ReplyFrom, ShardMsg};
use crate::notify::Notify;

/// One message a service waits for.
#[derive(Debug, Default)]
struct Wait {
    answer: Option<Answer>,
    /// Its router's `ResponseFrom`, once the router routed it with one.
    gathering: Option<Gathering>,
}

/// The replies awaited on one shard.
#[derive(Debug, Default)]
pub struct AppReplies {
    replies: RefCell<HashMap<MessageId, Wait>>,
    /// Made message -> the waited-for message it was made from.
    made: RefCell<HashMap<MessageId, MessageId>>,
    ready: Notify,
}

impl AppReplies {
    /// Registers that a service will wait for the reply to message `id`.
    pub fn expect(&self, id: MessageId) {
        self.replies.borrow_mut().insert(id, Wait::default());
    }

    /// Waits up to `timeout` for the reply to message `id` (registered with
    /// [`AppReplies::expect`]) and forgets the message; `None` when none came in time.
    /// With a router's `ResponseFrom`, its `ResponseTimeout` (or `timeout`, whichever
    /// ends first) ends the gathering with a generated answer; the answer comes with its
    /// forward to `ResponseTargetConfigNames`, if it has one.
    pub async fn wait(
        &self,
        id: MessageId,
        timeout: Duration,
    ) -> (Option<AppReply>, Option<Forward>) {
        let decided = async {
            loop {
                let deadline = match self.replies.borrow().get(&id) {
                    Some(Wait {
                        answer: None,
                        gathering,
                    }) => gathering.as_ref().and_then(|g| g.deadline),
                    _ => return,
                };
                match deadline {
                    Some(at) => {
                        let now = Instant::now();
                        if at <= now {
                            return;
                        }
                        futures_lite::future::or(
                            self.ready.notified(),
                            glommio::timer::sleep(at - now),
                        )
                        .await;
                    }
                    None => self.ready.notified().await,
                }
            }
        };
        let forget = Forget { replies: self, id };
        futures_lite::future::or(decided, glommio::timer::sleep(timeout)).await;
        forget.made();
        let Some(wait) = self.replies.borrow_mut().remove(&id) else {
            return (None, None);
        };
        let (answer, gathering) = match wait {
            Wait {
                answer: Some(answer),
                gathering,
            } => (answer, gathering),
            Wait {
                answer: None,
                gathering: Some(mut g),
            } => (g.expire(), Some(g)),
            Wait { answer: None, .. } => return (None, None),
        };
        let forward = gathering.and_then(|g| Forward::of(g, &answer));
        (Some(answer.reply), forward)
    }

    /// A reply for message `made` answers the wait for `parent` (which a router made it
    /// from); nothing when no service waits for `parent`.
    pub fn follow(&self, made: MessageId, parent: MessageId) {
        if self.replies.borrow().contains_key(&parent) {
            self.made.borrow_mut().insert(made, parent);
        }
    }

    /// Router `router` routed `routed` (a waited-for message) to `sent_to`: its
    /// `ResponseFrom` decides which replies answer. Nothing when no service waits for it,
    /// it is answered already, or a router before this one decides.
    pub fn gather(
        &self,
        router: ItemId,
        responses: &Responses,
        routed: &Envelope,
        sent_to: &[ItemId],
    ) {
        let mut replies = self.replies.borrow_mut();
        let Some(wait) = replies.get_mut(&routed.id) else {
            return;
        };
        if wait.answer.is_some() || wait.gathering.is_some() {
            return;
        }
        match responses {
            Responses::Blank => {
                wait.answer = Some(Answer {
                    reply: AppReply::Accepted,
                    generated: true,
                });
            }
            Responses::Gather(policy) => {
                debug_assert_eq!(policy.router, router);
                let g = Gathering::new(Rc::clone(policy), routed.clone(), sent_to);
                wait.answer = g.settled();
                wait.gathering = Some(g);
            }
        }
        drop(replies);
        self.ready.notify_all();
    }

    /// Hands `reply`, sent by `from`, to the service waiting for message `id`; false
    /// when it is dropped (nobody waits, an earlier reply won, or the router's
    /// `ResponseFrom` does not take it).
    pub fn take(&self, id: MessageId, from: ReplyFrom, reply: AppReply) -> bool {
        let id = self.made.borrow().get(&id).copied().unwrap_or(id);
        let mut replies = self.replies.borrow_mut();
        let Some(wait) = replies.get_mut(&id) else {
            return false;
        };
        if wait.answer.is_some() {
            return false;
        }
        let answer = match &mut wait.gathering {
            None => Answer {
                reply,
                generated: false,
            },
            Some(g) => match g.take(from, reply) {
                Some(answer) => answer,
                None => return false,
            },
        };
        wait.answer = Some(answer);
        drop(replies);
        self.ready.notify_all();
        true
    }

    /// How many messages services wait for.
    pub fn waiting(&self) -> usize {
        self.replies.borrow().len()
    }
}

/// Forgets a wait whose future is dropped before it ends (its service's connection went
/// away), so that its entries do not outlive it.
struct Forget<'a> {
    replies: &'a AppReplies,
    id: MessageId,
}

impl Forget<'_> {
    /// Forgets the made messages that answer for the wait's message.
    fn made(&self) {
        let mut made = self.replies.made.borrow_mut();
        if !made.is_empty() {
            made.retain(|_, parent| *parent != self.id);
        }
    }
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.made();
        self.replies.replies.borrow_mut().remove(&self.id);
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
    /// [`Shard::expect_reply`]); `None` when none came in time. An answer its router
    /// forwards (`ResponseTargetConfigNames`) is written to the WAL first.
    pub async fn wait_reply(&self, id: MessageId, timeout: Duration) -> Option<AppReply> {
        let (reply, forward) = self.app_replies().wait(id, timeout).await;
        if let Some(forward) = forward {
            self.forward_response(forward).await;
        }
        reply
    }

    /// Sends the reply for `env` to the service waiting at its origin, if one waits.
    pub fn send_reply(&self, env: &Envelope, reply: AppReply) {
        if !env.wants_reply {
            return;
        }
        let origin = env.id.origin_shard as usize;
        let from = ReplyFrom::of(env);
        if origin == self.index() {
            self.take_reply(env.id, from, reply);
        } else {
            self.send_to_origin(
                origin,
                ShardMsg::Reply {
                    id: env.id,
                    from,
                    reply,
                },
            );
        }
    }

    /// Hands a reply that arrived for message `id` from `from` to its waiting service.
    pub fn take_reply(&self, id: MessageId, from: ReplyFrom, reply: AppReply) {
        self.app_replies().take(id, from, reply);
    }
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use super::*;

    /// A reply from item 1, sent there by item 0 (no router's `ResponseFrom` looks).
    const FROM: ReplyFrom = ReplyFrom { item: 1, via: 0 };

    fn id(wal_id: u64) -> MessageId {
        MessageId::of_shard_0(wal_id)
    }

    #[test]
    fn a_reply_nobody_waits_for_is_dropped() {
        let replies = AppReplies::default();
        assert!(!replies.take(id(1), FROM, AppReply::Accepted));
        assert_eq!(replies.waiting(), 0, "it is not kept");
    }

    #[test]
    fn a_reply_for_a_made_message_answers_the_message_it_was_made_from() {
        glommio::LocalExecutor::default().run(async {
            let replies = AppReplies::default();
            replies.follow(id(9), id(1));
            assert!(
                !replies.take(id(9), FROM, AppReply::Accepted),
                "nobody waits for 1"
            );
            replies.expect(id(1));
            replies.follow(id(9), id(1));
            assert!(replies.take(id(9), FROM, AppReply::Error("downstream".into())));
            let got = replies.wait(id(1), Duration::from_secs(10)).await.0;
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
            assert!(replies.take(id(1), FROM, AppReply::Error("first".into())));
            assert!(
                !replies.take(id(1), FROM, AppReply::Accepted),
                "a second reply"
            );
            let got = replies.wait(id(1), Duration::from_secs(10)).await.0;
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
                async move { replies.wait(id(2), Duration::from_secs(10)).await.0 }
            });
            glommio::timer::sleep(Duration::from_millis(2)).await;
            assert!(replies.take(id(1), FROM, AppReply::Error("one".into())));
            assert!(replies.take(id(2), FROM, AppReply::Accepted));
            assert!(matches!(waiter.await, Some(AppReply::Accepted)));
            assert_eq!(
                replies.waiting(),
                1,
                "message 1's reply waits for its service"
            );
        });
    }

    fn routed(wal_id: u64) -> Envelope {
        let bytes: std::sync::Arc<[u8]> =
            std::sync::Arc::from(&b"MSH|^~\\&|A|B|C|D|1||ADT^A01|M1|P|2.5\r"[..]);
        let scan = crate::engine::ingest::scan_of(&bytes);
        crate::engine::ingest::envelope(id(wal_id), (bytes, scan), 0, "t".into(), 2, b"M1")
    }

    fn policy(timeout: Option<Duration>) -> Responses {
        use crate::config::response_from::Gather;
        use crate::engine::plan::Target;
        use crate::engine::responses::ResponsePolicy;
        Responses::Gather(Rc::new(ResponsePolicy {
            router: 5,
            gather: Gather::First,
            from: Some(vec![2]),
            timeout,
            forward_to: vec![Target::Item(3)],
            forward_generated: true,
        }))
    }

    #[test]
    fn a_blank_response_from_answers_accepted_at_routing_and_later_replies_are_dropped() {
        glommio::LocalExecutor::default().run(async {
            let replies = AppReplies::default();
            replies.expect(id(1));
            replies.gather(5, &Responses::Blank, &routed(1), &[1, 2]);
            assert!(!replies.take(id(1), FROM, AppReply::Error("late".into())));
            let (reply, forward) = replies.wait(id(1), Duration::from_secs(10)).await;
            assert_eq!(reply, Some(AppReply::Accepted));
            assert!(forward.is_none());
        });
    }

    #[test]
    fn a_router_response_timeout_ends_the_wait_before_the_services_own() {
        glommio::LocalExecutor::default().run(async {
            let replies = AppReplies::default();
            replies.expect(id(1));
            let router = policy(Some(Duration::from_millis(5)));
            replies.gather(5, &router, &routed(1), &[1, 2]);
            let (reply, forward) = replies.wait(id(1), Duration::from_secs(600)).await;
            assert!(
                matches!(reply, Some(AppReply::Error(ref r)) if r.contains("ResponseTimeout")),
                "{reply:?}"
            );
            assert!(
                forward.is_some(),
                "a generated answer, forwarded by default"
            );
        });
    }

    #[test]
    fn only_a_listed_targets_reply_answers_and_it_is_forwarded() {
        glommio::LocalExecutor::default().run(async {
            let replies = AppReplies::default();
            replies.expect(id(1));
            replies.gather(5, &policy(None), &routed(1), &[1, 2]);
            assert!(!replies.take(id(1), FROM, AppReply::Error("1 is not listed".into())));
            let listed = ReplyFrom { item: 2, via: 5 };
            assert!(replies.take(id(1), listed, AppReply::Accepted));
            let (reply, forward) = replies.wait(id(1), Duration::from_secs(10)).await;
            assert_eq!(reply, Some(AppReply::Accepted));
            assert!(forward.is_some_and(|f| f.reply == AppReply::Accepted));
        });
    }

    #[test]
    fn a_wait_dropped_before_it_ends_forgets_its_message() {
        glommio::LocalExecutor::default().run(async {
            let replies = AppReplies::default();
            replies.expect(id(1));
            replies.follow(id(9), id(1));
            let wait = replies.wait(id(1), Duration::from_secs(10));
            let polled = futures_lite::future::poll_once(Box::pin(wait)).await;
            assert!(polled.is_none(), "it was waiting");
            assert_eq!(replies.waiting(), 0);
            assert!(replies.made.borrow().is_empty());
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
                    .0
                    .is_none()
            );
            assert_eq!(replies.waiting(), 0);
            assert!(!replies.take(id(1), FROM, AppReply::Accepted), "too late");
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
