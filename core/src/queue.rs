//! The queue in front of one item instance: bounded, local to its shard, many producers
//! (tasks of the same shard) and one consumer (the instance's worker).
//!
//! - Bounded by the item's `QueueSize`; what happens when it is full is the item's
//!   [`Overflow`] strategy: `block` (the producer waits: a service stops reading its
//!   socket and TCP flow control pushes back upstream), `drop_oldest` (the oldest entry is
//!   handed back to the caller, which records the discard), or `reject` (the new entry is
//!   handed back; a service NAKs it).
//! - Two lanes, high and normal priority; the consumer takes high first, FIFO within a lane.
//!   An item configured as FIFO only ever uses the normal lane.
//! - Nothing is dropped silently: every value the queue does not keep is returned.
//! - Closing wakes everyone: producers get their value back, the consumer drains what is
//!   left and then sees `None`.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::task::{Poll, Waker};

use crate::notify::WaitList;

/// What a full queue does with one more entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    /// The producer waits for room (backpressure).
    #[default]
    Block,
    /// The oldest entry is evicted and handed back to be recorded as discarded.
    DropOldest,
    /// The new entry is refused and handed back (a service NAKs it).
    Reject,
}

/// The lane an entry travels in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Priority {
    High,
    #[default]
    Normal,
}

/// The result of [`LocalQueue::offer`].
#[derive(Debug, PartialEq, Eq)]
pub enum Offer<T> {
    /// Queued.
    Accepted,
    /// Queued, and this older entry was evicted to make room (`drop_oldest`).
    Evicted(T),
    /// Not queued: full and the strategy is `reject`, or full and `block` (the caller
    /// must wait with [`LocalQueue::push`]), or the queue is closed.
    Refused(T),
}

#[derive(Debug)]
struct Inner<T> {
    high: VecDeque<T>,
    normal: VecDeque<T>,
    capacity: usize,
    overflow: Overflow,
    closed: bool,
    consumer: Option<Waker>,
}

impl<T> Inner<T> {
    fn len(&self) -> usize {
        self.high.len() + self.normal.len()
    }

    fn lane(&mut self, priority: Priority) -> &mut VecDeque<T> {
        match priority {
            Priority::High => &mut self.high,
            Priority::Normal => &mut self.normal,
        }
    }

    fn wake_consumer(&mut self) {
        if let Some(waker) = self.consumer.take() {
            waker.wake();
        }
    }
}

/// A bounded queue for one item instance on one shard.
#[derive(Debug)]
pub struct LocalQueue<T> {
    inner: RefCell<Inner<T>>,
    /// Producers waiting for room (`block`); woken whenever an entry leaves or the queue
    /// closes.
    producers: WaitList<()>,
}

impl<T> LocalQueue<T> {
    /// A queue holding at most `capacity` entries (at least 1).
    pub fn new(capacity: usize, overflow: Overflow) -> Self {
        let capacity = capacity.max(1);
        LocalQueue {
            inner: RefCell::new(Inner {
                high: VecDeque::new(),
                normal: VecDeque::with_capacity(capacity.min(4096)),
                capacity,
                overflow,
                closed: false,
                consumer: None,
            }),
            producers: WaitList::new(),
        }
    }

    /// Entries waiting.
    pub fn len(&self) -> usize {
        self.inner.borrow().len()
    }

    /// True when no entry waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bound set at creation.
    pub fn capacity(&self) -> usize {
        self.inner.borrow().capacity
    }

    /// The strategy set at creation.
    pub fn overflow(&self) -> Overflow {
        self.inner.borrow().overflow
    }

    /// True once [`LocalQueue::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.inner.borrow().closed
    }

    /// Offers `value` without waiting, applying the overflow strategy when full.
    pub fn offer(&self, value: T, priority: Priority) -> Offer<T> {
        let mut inner = self.inner.borrow_mut();
        if inner.closed {
            return Offer::Refused(value);
        }
        if inner.len() < inner.capacity {
            inner.lane(priority).push_back(value);
            inner.wake_consumer();
            return Offer::Accepted;
        }
        match inner.overflow {
            Overflow::Block | Overflow::Reject => Offer::Refused(value),
            Overflow::DropOldest => {
                let oldest = match inner.normal.pop_front() {
                    Some(oldest) => oldest,
                    None => inner.high.pop_front().expect("a full queue has an entry"),
                };
                inner.lane(priority).push_back(value);
                inner.wake_consumer();
                Offer::Evicted(oldest)
            }
        }
    }

    /// Puts `value` back at the head of its lane, ignoring the bound: for an entry the
    /// consumer took and could not finish (it keeps its place in FIFO order).
    pub fn push_front(&self, value: T, priority: Priority) {
        let mut inner = self.inner.borrow_mut();
        inner.lane(priority).push_front(value);
        inner.wake_consumer();
    }

    /// Queues `value`, waiting for room while full. Returns it if the queue is closed.
    ///
    /// With `drop_oldest` or `reject` this never waits: it behaves as [`LocalQueue::offer`]
    /// and returns the evicted or refused entry.
    pub async fn push(&self, value: T, priority: Priority) -> Offer<T> {
        let mut value = Some(value);
        let mut parked = self.producers.parked();
        poll_fn(|cx| {
            let offered = self.offer(value.take().expect("polled after completion"), priority);
            match offered {
                Offer::Refused(back) => {
                    let inner = self.inner.borrow();
                    if inner.overflow == Overflow::Block && !inner.closed {
                        parked.park((), cx.waker());
                        value = Some(back);
                        Poll::Pending
                    } else {
                        Poll::Ready(Offer::Refused(back))
                    }
                }
                done => Poll::Ready(done),
            }
        })
        .await
    }

    /// The least `key` of the lanes' first entries (the oldest entry, for a key that
    /// grows with age in each lane); `None` when empty. For the admin API, not the data
    /// path.
    pub fn least_front<K: Ord>(&self, key: impl Fn(&T) -> K) -> Option<K> {
        let inner = self.inner.borrow();
        let high = inner.high.front().map(&key);
        let normal = inner.normal.front().map(&key);
        match (high, normal) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Takes the next entry without waiting (high lane first).
    pub fn try_pop(&self) -> Option<T> {
        let mut inner = self.inner.borrow_mut();
        let value = inner.high.pop_front().or_else(|| inner.normal.pop_front());
        if value.is_some() {
            self.producers.wake_all();
        }
        value
    }

    /// Waits for the next entry; `None` once the queue is closed and empty.
    pub async fn pop(&self) -> Option<T> {
        poll_fn(|cx| {
            if let Some(value) = self.try_pop() {
                return Poll::Ready(Some(value));
            }
            let mut inner = self.inner.borrow_mut();
            if inner.closed {
                return Poll::Ready(None);
            }
            inner.consumer = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// Stops accepting entries and wakes everyone. Entries already queued stay, for the
    /// consumer to drain (or for the WAL to redeliver at the next start).
    pub fn close(&self) {
        let mut inner = self.inner.borrow_mut();
        inner.closed = true;
        inner.wake_consumer();
        self.producers.wake_all();
    }

    /// Re-opens a closed queue (an item restarted or re-enabled).
    pub fn reopen(&self) {
        self.inner.borrow_mut().closed = false;
    }

    /// Removes and returns every entry waiting, high lane first.
    pub fn drain_all(&self) -> Vec<T> {
        let mut inner = self.inner.borrow_mut();
        let mut all: Vec<T> = inner.high.drain(..).collect();
        all.extend(inner.normal.drain(..));
        self.producers.wake_all();
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use glommio::LocalExecutor;
    use std::rc::Rc;
    use std::time::Duration;

    #[test]
    fn reject_hands_the_new_entry_back_when_full() {
        let q = LocalQueue::new(2, Overflow::Reject);
        assert_eq!(q.offer(1, Priority::Normal), Offer::Accepted);
        assert_eq!(q.offer(2, Priority::Normal), Offer::Accepted);
        assert_eq!(q.offer(3, Priority::Normal), Offer::Refused(3));
        assert_eq!(q.try_pop(), Some(1));
        assert_eq!(q.offer(3, Priority::Normal), Offer::Accepted);
        assert_eq!(
            (q.try_pop(), q.try_pop(), q.try_pop()),
            (Some(2), Some(3), None)
        );
    }

    #[test]
    fn the_least_front_is_the_smaller_of_the_two_lanes_fronts() {
        let q = LocalQueue::new(10, Overflow::Block);
        assert_eq!(q.least_front(|v: &u32| *v), None);
        q.offer(5, Priority::Normal);
        q.offer(1, Priority::Normal);
        assert_eq!(q.least_front(|v| *v), Some(5), "a lane's front only");
        q.offer(3, Priority::High);
        assert_eq!(q.least_front(|v| *v), Some(3));
        assert_eq!(q.len(), 3, "nothing taken");
    }

    #[test]
    fn drop_oldest_evicts_and_returns_the_oldest_entry() {
        let q = LocalQueue::new(2, Overflow::DropOldest);
        q.offer(1, Priority::Normal);
        q.offer(2, Priority::Normal);
        assert_eq!(q.offer(3, Priority::Normal), Offer::Evicted(1));
        assert_eq!(q.len(), 2);
        assert_eq!((q.try_pop(), q.try_pop()), (Some(2), Some(3)));
    }

    #[test]
    fn high_priority_entries_are_taken_first_and_fifo_within_a_lane() {
        let q = LocalQueue::new(10, Overflow::Block);
        q.offer(1, Priority::Normal);
        q.offer(10, Priority::High);
        q.offer(2, Priority::Normal);
        q.offer(11, Priority::High);
        let order: Vec<_> = std::iter::from_fn(|| q.try_pop()).collect();
        assert_eq!(order, vec![10, 11, 1, 2]);
    }

    #[test]
    fn push_front_keeps_an_unfinished_entry_at_the_head() {
        let q = LocalQueue::new(2, Overflow::Block);
        q.offer(1, Priority::Normal);
        q.offer(2, Priority::Normal);
        let first = q.try_pop().unwrap();
        q.push_front(first, Priority::Normal);
        assert_eq!((q.try_pop(), q.try_pop()), (Some(1), Some(2)));
    }

    #[test]
    fn a_blocked_producer_resumes_when_the_consumer_takes_an_entry() {
        LocalExecutor::default().run(async {
            let q = Rc::new(LocalQueue::new(1, Overflow::Block));
            q.offer(1, Priority::Normal);
            let producer = glommio::spawn_local({
                let q = Rc::clone(&q);
                async move { q.push(2, Priority::Normal).await }
            });
            glommio::timer::sleep(Duration::from_millis(5)).await;
            assert_eq!(q.len(), 1, "the producer waits while full");
            assert_eq!(q.pop().await, Some(1));
            assert_eq!(producer.await, Offer::Accepted);
            assert_eq!(q.pop().await, Some(2));
        });
    }

    #[test]
    fn close_returns_the_blocked_value_and_ends_the_consumer_after_draining() {
        LocalExecutor::default().run(async {
            let q = Rc::new(LocalQueue::new(1, Overflow::Block));
            q.offer(1, Priority::Normal);
            let producer = glommio::spawn_local({
                let q = Rc::clone(&q);
                async move { q.push(2, Priority::Normal).await }
            });
            glommio::timer::sleep(Duration::from_millis(5)).await;
            q.close();
            assert_eq!(producer.await, Offer::Refused(2));
            assert_eq!(q.pop().await, Some(1));
            assert_eq!(q.pop().await, None);
        });
    }

    #[test]
    fn a_blocked_push_that_loses_a_race_leaves_no_waker_behind() {
        LocalExecutor::default().run(async {
            let q = LocalQueue::new(1, Overflow::Block);
            q.offer(1, Priority::Normal);
            for i in 0..70_000 {
                futures_lite::future::or(
                    async {
                        q.push(i, Priority::Normal).await;
                    },
                    futures_lite::future::yield_now(),
                )
                .await;
            }
            assert!(q.producers.is_empty());
            assert_eq!(q.try_pop(), Some(1));
        });
    }
}
