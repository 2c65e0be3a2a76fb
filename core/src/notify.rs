//! Local (single-shard) wake-ups: [`WaitList`], the parked wakers of the tasks waiting on
//! one condition, and [`Notify`], a "something changed" built on it. No counting, no
//! payload: waiters re-check their own condition.
//!
//! Invariant: a waiting future holds at most one slot in a [`WaitList`], refreshed on each
//! poll and freed when the future completes or is dropped ([`Parked`]). A wait raced in
//! `futures_lite::future::or` and dropped each time therefore leaves nothing behind:
//! the slots in use never exceed the futures alive. (Pushing a cloned waker per pending
//! poll, as this module once did, leaked one waker per lost race until glommio's 16-bit
//! task reference count overflowed and aborted the process after about 33,000 messages.)

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::task::{Poll, Waker};

/// Parked wakers, each tagged with a key (what its task waits for).
#[derive(Debug)]
pub struct WaitList<K> {
    slots: RefCell<Vec<Option<(K, Waker)>>>,
    free: RefCell<Vec<usize>>,
}

impl<K> Default for WaitList<K> {
    fn default() -> Self {
        WaitList {
            slots: RefCell::new(Vec::new()),
            free: RefCell::new(Vec::new()),
        }
    }
}

impl<K: Copy> WaitList<K> {
    pub fn new() -> Self {
        Self::default()
    }

    /// A registration for one waiting future; it parks nothing until [`Parked::park`].
    pub fn parked(&self) -> Parked<'_, K> {
        Parked {
            list: self,
            slot: None,
        }
    }

    /// Wakes every parked task whose key satisfies `wake`. The slots stay taken: each
    /// belongs to its future until it completes or is dropped.
    pub fn wake_where(&self, wake: impl Fn(K) -> bool) {
        for (key, waker) in self.slots.borrow().iter().flatten() {
            if wake(*key) {
                waker.wake_by_ref();
            }
        }
    }

    /// Wakes every parked task.
    pub fn wake_all(&self) {
        self.wake_where(|_| true);
    }

    /// Slots in use: the futures parked here now.
    pub fn len(&self) -> usize {
        self.slots.borrow().len() - self.free.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One future's slot in a [`WaitList`]; freed on drop.
#[derive(Debug)]
pub struct Parked<'a, K: Copy> {
    list: &'a WaitList<K>,
    slot: Option<usize>,
}

impl<K: Copy> Parked<'_, K> {
    /// Parks `waker` under `key`: takes a slot the first time, refreshes it after (a
    /// waker clone only when the task's waker changed).
    pub fn park(&mut self, key: K, waker: &Waker) {
        let mut slots = self.list.slots.borrow_mut();
        match self.slot {
            Some(i) => {
                let entry = slots[i]
                    .as_mut()
                    .expect("a parked slot is taken until dropped");
                entry.0 = key;
                if !entry.1.will_wake(waker) {
                    entry.1 = waker.clone();
                }
            }
            None => {
                let entry = Some((key, waker.clone()));
                let i = match self.list.free.borrow_mut().pop() {
                    Some(i) => {
                        slots[i] = entry;
                        i
                    }
                    None => {
                        slots.push(entry);
                        slots.len() - 1
                    }
                };
                self.slot = Some(i);
            }
        }
    }
}

impl<K: Copy> Drop for Parked<'_, K> {
    fn drop(&mut self) {
        if let Some(i) = self.slot.take() {
            self.list.slots.borrow_mut()[i] = None;
            self.list.free.borrow_mut().push(i);
        }
    }
}

#[derive(Debug, Default)]
pub struct Notify {
    generation: Cell<u64>,
    waiters: WaitList<()>,
}

impl Notify {
    pub fn new() -> Self {
        Self::default()
    }

    /// Wakes every task waiting in [`Notify::notified`].
    pub fn notify_all(&self) {
        self.generation.set(self.generation.get() + 1);
        self.waiters.wake_all();
    }

    /// Waits for the next [`Notify::notify_all`] after this call.
    pub async fn notified(&self) {
        let start = self.generation.get();
        let mut parked = self.waiters.parked();
        poll_fn(|cx| {
            if self.generation.get() != start {
                Poll::Ready(())
            } else {
                parked.park((), cx.waker());
                Poll::Pending
            }
        })
        .await
    }

    /// Tasks parked in [`Notify::notified`] now.
    pub fn waiting(&self) -> usize {
        self.waiters.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;
    use std::time::Duration;

    #[test]
    fn every_waiter_wakes_on_notify() {
        glommio::LocalExecutor::default().run(async {
            let notify = Rc::new(Notify::new());
            let waiters: Vec<_> = (0..3)
                .map(|_| {
                    let notify = Rc::clone(&notify);
                    glommio::spawn_local(async move { notify.notified().await })
                })
                .collect();
            glommio::timer::sleep(Duration::from_millis(2)).await;
            notify.notify_all();
            for w in waiters {
                w.await;
            }
            assert_eq!(notify.waiting(), 0, "a completed wait frees its slot");
        });
    }

    /// The abort of issue #16: a wait that loses a race to a timer, a million times over,
    /// must leave no waker behind (glommio aborts when a task's 16-bit reference count,
    /// which every cloned waker holds, overflows).
    #[test]
    fn a_wait_that_loses_a_race_leaves_no_waker_behind() {
        glommio::LocalExecutor::default().run(async {
            let notify = Notify::new();
            for _ in 0..70_000 {
                // `or` polls the wait first, so it parks, then the racer wins.
                futures_lite::future::or(notify.notified(), futures_lite::future::yield_now())
                    .await;
                assert_eq!(notify.waiting(), 0);
            }
        });
    }

    #[test]
    fn a_slot_freed_by_a_dropped_wait_is_reused_without_losing_a_live_one() {
        glommio::LocalExecutor::default().run(async {
            let notify = Rc::new(Notify::new());
            let live = glommio::spawn_local({
                let notify = Rc::clone(&notify);
                async move { notify.notified().await }
            });
            glommio::timer::sleep(Duration::from_millis(1)).await;
            for _ in 0..10 {
                futures_lite::future::or(notify.notified(), futures_lite::future::yield_now())
                    .await;
            }
            assert_eq!(notify.waiting(), 1, "only the live waiter is parked");
            notify.notify_all();
            live.await;
        });
    }
}
