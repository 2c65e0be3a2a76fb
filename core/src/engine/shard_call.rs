//! Running a task on a given shard from outside it (the main thread, the control
//! socket, later the admin HTTP server) and awaiting its answer: the only way control
//! reaches a shard.
//!
//! [`ShardCaller::call`] sends a closure over the shard's control channel and rings the
//! shard's inbox doorbell (so a sleeping shard wakes); the shard's dispatcher spawns it
//! as a task of its own ([`spawn`]), so a task that waits (a WAL read for `show`, an
//! append for `resend`) never holds the dispatcher up. The answer comes back through a
//! one-answer channel: [`ShardCall::wait`] blocks the calling thread until a deadline,
//! [`ShardCall::try_answer`] only looks. Asking several shards is sending to each first
//! and waiting after, so they work at once.
//!
//! Limits: each shard's control channel holds at most [`SHARD_CALLS_QUEUED_MAX`] tasks
//! that its dispatcher has not taken yet; a call to a shard whose channel is full is
//! answered [`CallError::Busy`] at once instead of waiting (a shard that stopped
//! draining it is stuck or overloaded). A shard that has stopped answers
//! [`CallError::Stopped`]; a task that has not answered by the deadline,
//! [`CallError::TimedOut`] (it may still run later; its answer is then dropped).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError, TrySendError};

use crate::ring::Doorbells;

/// Most tasks waiting in one shard's control channel.
pub const SHARD_CALLS_QUEUED_MAX: usize = 64;

/// A task as a shard receives it: given the shard's context `C`, the future to spawn
/// (which sends its own answer).
pub type ShardTask<C> = Box<dyn FnOnce(&C) -> Pin<Box<dyn Future<Output = ()>>> + Send>;

/// Why a call got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("no shard {0}")]
    NoShard(usize),
    #[error("shard {shard} is busy: {SHARD_CALLS_QUEUED_MAX} control requests wait for it already")]
    Busy { shard: usize },
    #[error("shard {shard} has stopped")]
    Stopped { shard: usize },
    #[error("shard {shard} did not answer within {after:?}")]
    TimedOut { shard: usize, after: Duration },
}

/// The sending ends of every shard's control channel.
#[derive(Debug)]
pub struct ShardCaller<C> {
    channels: Vec<Sender<ShardTask<C>>>,
    doorbells: Arc<Doorbells>,
}

/// One shard's control channel: the caller's end and the shard's.
pub fn channel<C>() -> (Sender<ShardTask<C>>, Receiver<ShardTask<C>>) {
    crossbeam_channel::bounded(SHARD_CALLS_QUEUED_MAX)
}

impl<C: 'static> ShardCaller<C> {
    /// `channels[n]` reaches shard `n`, woken by its inbox doorbell.
    pub fn new(channels: Vec<Sender<ShardTask<C>>>, doorbells: Arc<Doorbells>) -> Self {
        ShardCaller {
            channels,
            doorbells,
        }
    }

    pub fn shards(&self) -> usize {
        self.channels.len()
    }

    /// Runs `task` on shard `shard` as a task of its own; its output is the answer.
    pub fn call<T, F, Fut>(&self, shard: usize, task: F) -> Result<ShardCall<T>, CallError>
    where
        T: Send + 'static,
        F: FnOnce(&C) -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
    {
        let channel = self.channels.get(shard).ok_or(CallError::NoShard(shard))?;
        let (answer_tx, answer) = crossbeam_channel::bounded(1);
        let boxed: ShardTask<C> = Box::new(move |context: &C| {
            let future = task(context);
            Box::pin(async move {
                // The caller may have stopped waiting: its answer is dropped.
                let _ = answer_tx.send(future.await);
            })
        });
        channel.try_send(boxed).map_err(|e| match e {
            TrySendError::Full(_) => CallError::Busy { shard },
            TrySendError::Disconnected(_) => CallError::Stopped { shard },
        })?;
        self.doorbells.inbox(shard).ring();
        Ok(ShardCall { shard, answer })
    }

    /// [`ShardCaller::call`] on every shard; `task` makes each shard's task.
    pub fn call_all<T, F, Fut>(
        &self,
        task: impl Fn(usize) -> F,
    ) -> Vec<Result<ShardCall<T>, CallError>>
    where
        T: Send + 'static,
        F: FnOnce(&C) -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
    {
        (0..self.shards())
            .map(|shard| self.call(shard, task(shard)))
            .collect()
    }
}

/// The answer to come from one shard.
#[derive(Debug)]
pub struct ShardCall<T> {
    shard: usize,
    answer: Receiver<T>,
}

impl<T> ShardCall<T> {
    pub fn shard(&self) -> usize {
        self.shard
    }

    /// Blocks until the answer comes or `deadline` passes.
    pub fn wait(self, deadline: Instant) -> Result<T, CallError> {
        let (shard, started) = (self.shard, Instant::now());
        self.answer.recv_deadline(deadline).map_err(|e| match e {
            RecvTimeoutError::Timeout => CallError::TimedOut {
                shard,
                after: deadline.saturating_duration_since(started),
            },
            // The task was dropped unrun: its shard stopped.
            RecvTimeoutError::Disconnected => CallError::Stopped { shard },
        })
    }

    /// [`ShardCall::wait`] for at most `timeout`.
    pub fn wait_for(self, timeout: Duration) -> Result<T, CallError> {
        let shard = self.shard;
        self.wait(Instant::now() + timeout).map_err(|e| match e {
            CallError::TimedOut { .. } => CallError::TimedOut {
                shard,
                after: timeout,
            },
            other => other,
        })
    }

    /// The answer if it has come, without waiting.
    pub fn try_answer(&self) -> Option<Result<T, CallError>> {
        match self.answer.try_recv() {
            Ok(answer) => Some(Ok(answer)),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => Some(Err(CallError::Stopped { shard: self.shard })),
        }
    }
}

/// Waits for every call until one `deadline`; a call that could not be sent keeps its
/// error.
pub fn wait_all<T>(
    calls: Vec<Result<ShardCall<T>, CallError>>,
    deadline: Instant,
) -> Vec<Result<T, CallError>> {
    calls
        .into_iter()
        .map(|call| call.and_then(|call| call.wait(deadline)))
        .collect()
}

/// Takes every task waiting in `channel` and spawns each on this shard's executor
/// (called by the dispatcher; it does not wait for them).
pub fn spawn_waiting<C>(channel: &Receiver<ShardTask<C>>, context: &C) {
    while let Ok(task) = channel.try_recv() {
        spawn(task, context);
    }
}

/// Spawns `task` on this shard's executor, detached (it sends its own answer).
pub fn spawn<C>(task: ShardTask<C>, context: &C) {
    glommio::spawn_local(task(context)).detach();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    /// A shard thread: a glommio executor serving `channel` with a counter as context,
    /// until `stop` is set.
    fn shard_thread(
        channel: Receiver<ShardTask<Rc<Cell<u32>>>>,
        stop: Arc<std::sync::atomic::AtomicBool>,
    ) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || {
            glommio::LocalExecutor::default().run(async move {
                let context = Rc::new(Cell::new(0));
                while !stop.load(std::sync::atomic::Ordering::Acquire) {
                    spawn_waiting(&channel, &context);
                    glommio::timer::sleep(Duration::from_millis(1)).await;
                }
            });
        })
    }

    fn doorbells() -> Arc<Doorbells> {
        Arc::clone(crate::ring::mesh::<u8>(1, 4)[0].doorbells())
    }

    #[test]
    fn a_task_runs_on_its_shard_and_a_waiting_task_does_not_hold_up_the_next() {
        let doorbells = doorbells();
        let (tx, rx) = channel();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = shard_thread(rx, Arc::clone(&stop));
        let caller = ShardCaller::new(vec![tx], doorbells);
        let slow = caller
            .call(0, |_: &Rc<Cell<u32>>| async {
                glommio::timer::sleep(Duration::from_secs(30)).await;
            })
            .unwrap();
        let count = |n: u32| {
            move |c: &Rc<Cell<u32>>| {
                let c = Rc::clone(c);
                async move {
                    c.set(c.get() + n);
                    (c.get(), std::thread::current().id())
                }
            }
        };
        let first = caller.call(0, count(1)).unwrap();
        let (value, thread_id) = first.wait_for(Duration::from_secs(10)).unwrap();
        assert_eq!(value, 1);
        assert_ne!(thread_id, std::thread::current().id(), "ran on the shard");
        assert_eq!(
            caller
                .call(0, count(2))
                .unwrap()
                .wait_for(Duration::from_secs(10)),
            Ok((3, thread_id))
        );
        assert!(slow.try_answer().is_none(), "still sleeping");
        assert_eq!(
            slow.wait_for(Duration::from_millis(10)),
            Err(CallError::TimedOut {
                shard: 0,
                after: Duration::from_millis(10)
            })
        );
        stop.store(true, std::sync::atomic::Ordering::Release);
        thread.join().unwrap();
        // The shard's end is gone: a call now is answered at once.
        assert!(matches!(
            caller.call(0, count(1)),
            Err(CallError::Stopped { shard: 0 })
        ));
        assert!(matches!(
            caller.call(1, count(1)),
            Err(CallError::NoShard(1))
        ));
    }

    #[test]
    fn a_full_channel_answers_busy_and_a_task_dropped_unrun_answers_stopped() {
        let (tx, rx) = channel::<()>();
        let caller = ShardCaller::new(vec![tx], doorbells());
        let calls: Vec<_> = (0..SHARD_CALLS_QUEUED_MAX)
            .map(|_| caller.call(0, |_: &()| async {}).unwrap())
            .collect();
        assert!(matches!(
            caller.call(0, |_: &()| async {}),
            Err(CallError::Busy { shard: 0 })
        ));
        // The shard ends: the tasks it took but never ran are dropped with its executor.
        while let Ok(task) = rx.try_recv() {
            drop(task);
        }
        let answers = wait_all(
            calls.into_iter().map(Ok).collect(),
            Instant::now() + Duration::from_secs(1),
        );
        assert!(
            answers
                .iter()
                .all(|a| *a == Err(CallError::Stopped { shard: 0 })),
            "{answers:?}"
        );
    }
}
