//! A local (single-shard) notification: tasks wait for "something changed", one task
//! announces it. No counting, no payload: waiters re-check their own condition.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::task::{Poll, Waker};

#[derive(Debug, Default)]
pub struct Notify {
    generation: Cell<u64>,
    waiters: RefCell<Vec<Waker>>,
}

impl Notify {
    pub fn new() -> Self {
        Self::default()
    }

    /// Wakes every task waiting in [`Notify::notified`].
    pub fn notify_all(&self) {
        self.generation.set(self.generation.get() + 1);
        for waker in self.waiters.borrow_mut().drain(..) {
            waker.wake();
        }
    }

    /// Waits for the next [`Notify::notify_all`] after this call.
    pub async fn notified(&self) {
        let start = self.generation.get();
        poll_fn(|cx| {
            if self.generation.get() != start {
                Poll::Ready(())
            } else {
                self.waiters.borrow_mut().push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
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
        });
    }
}
