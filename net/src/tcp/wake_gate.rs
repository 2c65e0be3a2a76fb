//! [`WakeGate`]: polls a future only after it asked to be woken, so a glommio operation
//! that keeps one waker per poll cannot pile up the task's wakers while it waits.
//!
//! Why: glommio 0.9 waits for an io_uring operation with `Source::collect_rw`, which
//! pushes a clone of the caller's waker onto the operation's waiter list on EVERY poll
//! and drops them only when the operation completes. An `accept` on a quiet listener
//! never completes, so when the task awaiting it is woken by something else (a timer in
//! `futures_lite::future::or`, the other half of a `zip`), each wake adds one clone and
//! the task's 16-bit reference count passes `i16::MAX` after 32,767 of them: glommio
//! aborts the process ("Waker invariant broken"). hie-loadgen's sink accepted in the
//! task whose monitor wakes every 20 ms, and aborted after about 22 minutes.
//!
//! Invariants: the inner future is polled once at first and afterwards only after its
//! own waker was woken, so it holds at most the clones it made since its last wake
//! (which drained them). Those clones are of the gate's waker, never of the task's: the
//! gate keeps exactly one clone of the task's waker, replaced when the task's changes
//! and freed when the gate is dropped.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

/// A future that polls `F` only when `F` has been woken since its last poll.
#[derive(Debug)]
pub struct WakeGate<F> {
    inner: F,
    shared: Arc<Shared>,
    /// The waker handed to `inner` (one clone of `shared`, made once).
    waker: Waker,
}

/// What the gate's waker and the gate share: whether `inner` was woken, and the waker of
/// the task to pass the wake on to.
#[derive(Debug)]
struct Shared {
    woken: AtomicBool,
    task: Mutex<Option<Waker>>,
}

impl Wake for Shared {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(w) = task.as_ref() {
            w.wake_by_ref();
        }
    }
}

impl<F: Future> WakeGate<F> {
    /// Gates `inner`; it is polled on the gate's first poll.
    pub fn new(inner: F) -> Self {
        let shared = Arc::new(Shared {
            woken: AtomicBool::new(true),
            task: Mutex::new(None),
        });
        let waker = Waker::from(shared.clone());
        Self {
            inner,
            shared,
            waker,
        }
    }
}

impl<F: Future + Unpin> Future for WakeGate<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        {
            let mut task = self.shared.task.lock().unwrap_or_else(|e| e.into_inner());
            match task.as_ref() {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => *task = Some(cx.waker().clone()),
            }
        }
        // Taken before the poll: a wake during the poll sets it again.
        if !self.shared.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        let this = &mut *self;
        let mut inner_cx = Context::from_waker(&this.waker);
        Pin::new(&mut this.inner).poll(&mut inner_cx)
    }
}

impl<F> Drop for WakeGate<F> {
    fn drop(&mut self) {
        // The inner operation may outlive the gate (glommio keeps a cancelled one until
        // the kernel answers) and hold clones of the gate's waker: they must not keep
        // the task's waker alive.
        let mut task = self.shared.task.lock().unwrap_or_else(|e| e.into_inner());
        task.take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    use glommio::net::{TcpListener, TcpStream};

    use crate::tcp::test_support::on_executor;

    /// A waker that counts its live clones (the Arc's strong count).
    struct Counting;

    impl Wake for Counting {
        fn wake(self: Arc<Self>) {}
    }

    #[test]
    fn a_pending_accept_polled_again_and_again_keeps_one_clone_of_the_tasks_waker() {
        on_executor(|| async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let counting = Arc::new(Counting);
            let waker = Waker::from(counting.clone());
            let mut cx = Context::from_waker(&waker);
            let mut accept = Box::pin(WakeGate::new(Box::pin(listener.accept())));
            // Spurious polls, as when another future of the same task is woken. Ungated,
            // glommio's accept keeps one clone per poll (1,000 here).
            for _ in 0..1_000 {
                assert!(accept.as_mut().poll(&mut cx).is_pending());
            }
            let clones = Arc::strong_count(&counting) - 2;
            assert!(clones <= 1, "{clones} clones of the task's waker kept");
            // The gate still passes the real wake on: a connection completes the accept.
            let _client = TcpStream::connect(listener.local_addr().unwrap())
                .await
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Poll::Ready(r) = accept.as_mut().poll(&mut cx) {
                    assert!(r.is_ok());
                    break;
                }
                assert!(Instant::now() < deadline, "accept never completed");
                glommio::timer::sleep(Duration::from_millis(1)).await;
            }
            drop(accept);
            assert_eq!(Arc::strong_count(&counting), 2, "the gate freed its clone");
        });
    }

    #[test]
    fn a_wake_of_the_inner_future_reaches_the_task() {
        on_executor(|| async {
            // Awaited normally: the accept's completion must wake the awaiting task.
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let client = glommio::spawn_local(async move {
                glommio::timer::sleep(Duration::from_millis(20)).await;
                TcpStream::connect(addr).await.unwrap()
            });
            let accepted = WakeGate::new(Box::pin(listener.accept())).await;
            assert!(accepted.is_ok());
            drop(client.await);
        });
    }
}
