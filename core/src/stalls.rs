//! Reactor stalls: each shard counts the times one of its executor's task queues ran
//! more than [`STALL_THRESHOLD`] past its preemption budget without yielding (a task
//! that blocked the thread or computed too long), for `/metrics`
//! (`hie_shard_reactor_stalls_total{shard}`).
//!
//! glommio's stall detector (its default handler) arms a one-shot timer each time a task
//! queue starts running and disarms it when the queue yields; when the timer fires, a
//! helper thread of glommio's sends `SIGUSR1` to the shard's thread (hie uses that
//! signal for nothing else). glommio's handler of that signal collects a backtrace,
//! which glommio logs as a warning naming the task queue (through `log`, which hie's log
//! subscriber takes) once the queue yields; glommio 0.9 does not export the type its
//! stall callback takes, so hie counts with a handler of its own on the same signal
//! ([`StallWatch`], chained by `signal-hook`): one signal is one stall. The count
//! is an atomic that the handler bumps and the shard reads: nothing is locked.
//!
//! Cost when nothing stalls: the timer's arming and disarming per task-queue run, and
//! one sleeping thread per shard.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use glommio::{DefaultStallDetectionHandler, LocalExecutorBuilder, StallDetectionHandler as _};
use signal_hook::SigId;

/// How far past its preemption budget a task queue may run before it counts as a stall
/// (glommio's default handler's threshold).
pub const STALL_THRESHOLD: Duration = Duration::from_millis(10);

thread_local! {
    /// The stall count of the shard whose thread this is (see [`StallWatch::start`]).
    static STALLS: RefCell<Option<Arc<AtomicU64>>> = const { RefCell::new(None) };
}

/// `builder` with glommio's stall detector on.
pub fn detect_stalls(builder: LocalExecutorBuilder) -> LocalExecutorBuilder {
    builder.detect_stalls(Some(Box::new(DefaultStallDetectionHandler {})))
}

/// Counts the stall signals sent to the thread that started it, until dropped.
#[derive(Debug)]
pub struct StallWatch {
    id: SigId,
}

impl StallWatch {
    /// Starts counting this thread's stalls; [`stalls`] reads the count on this thread.
    pub fn start() -> std::io::Result<StallWatch> {
        let count = Arc::new(AtomicU64::new(0));
        STALLS.with(|s| *s.borrow_mut() = Some(Arc::clone(&count)));
        // SAFETY: `pthread_self` has no preconditions.
        let me = unsafe { libc::pthread_self() };
        let signal = i32::from(DefaultStallDetectionHandler {}.signal());
        let on_signal = move || {
            // SAFETY: `pthread_self` and `pthread_equal` have no preconditions.
            if unsafe { libc::pthread_equal(libc::pthread_self(), me) } != 0 {
                count.fetch_add(1, Ordering::Relaxed);
            }
        };
        // SAFETY: the handler only calls `pthread_self`/`pthread_equal` and bumps an
        // atomic, all async-signal-safe; it allocates, locks and frees nothing.
        let id = unsafe { signal_hook::low_level::register(signal, on_signal) }?;
        Ok(StallWatch { id })
    }
}

impl Drop for StallWatch {
    fn drop(&mut self) {
        signal_hook::low_level::unregister(self.id);
        STALLS.with(|s| s.borrow_mut().take());
    }
}

/// The stalls counted on this thread's shard (0 on a thread that counts none).
pub fn stalls() -> u64 {
    STALLS.with(|s| s.borrow().as_ref().map_or(0, |c| c.load(Ordering::Relaxed)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_that_holds_the_thread_counts_as_a_stall_and_one_that_yields_does_not() {
        let seen = detect_stalls(LocalExecutorBuilder::default())
            .spawn(|| async move {
                let _watch = StallWatch::start().unwrap();
                for _ in 0..20 {
                    glommio::timer::sleep(Duration::from_millis(5)).await;
                }
                let calm = stalls();
                // Holds the thread far past any budget (a std sleep never yields).
                std::thread::sleep(Duration::from_millis(400));
                glommio::timer::sleep(Duration::from_millis(5)).await;
                (calm, stalls())
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(seen, (0, 1));
    }
}
