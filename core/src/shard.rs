//! Shards: one glommio executor per core, each on its own thread, pinned to its CPU.
//!
//! [`start`] creates every executor before any of them runs engine code, so a machine that
//! cannot run glommio (no io_uring, too little locked memory) fails at start-up with a
//! message saying how to fix it, instead of half a production starting.
//!
//! Each shard thread that ran its main says so on the `ended` channel when it ends, by
//! returning or by a panic (debug builds; release builds abort on panic), so the main
//! thread notices a shard that ended before it was told to stop (see `run` in the `hie` binary).

use std::future::Future;
use std::sync::mpsc;
use std::thread::JoinHandle;

use glommio::{LocalExecutorBuilder, Placement, PoolPlacement};
use thiserror::Error;

/// Threads of each shard's blocking pool: the WAL's syncs in flight and two for the file
/// items, so a sync waits behind file I/O only when more than two file reads or writes
/// run at once.
const BLOCKING_THREADS: usize = hie_persist::SYNC_THREADS + 2;

/// glommio's io memory per shard when the configuration does not say: glommio's own
/// default. Each shard registers this much locked memory with io_uring for DMA buffers.
pub const IO_MEMORY_BYTES_DEFAULT: usize = 10 << 20;

/// How to lay shards out on the machine.
#[derive(Debug, Clone)]
pub struct ShardLayout {
    /// Number of shards (at least 1).
    pub shards: usize,
    /// CPU for each shard; `None` leaves threads unpinned (tests, shared CI machines).
    pub cpus: Option<Vec<usize>>,
    /// Locked io memory per shard, bytes.
    pub io_memory_bytes: usize,
}

impl ShardLayout {
    /// One pinned shard per online CPU, glommio's default io memory.
    pub fn per_core() -> Self {
        let cpus = online_cpus();
        ShardLayout {
            shards: cpus.len(),
            cpus: Some(cpus),
            io_memory_bytes: IO_MEMORY_BYTES_DEFAULT,
        }
    }
}

/// The CPUs this process may run on, in order.
pub fn online_cpus() -> Vec<usize> {
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    (0..n).collect()
}

/// Why shards could not start.
#[derive(Debug, Error)]
pub enum ShardError {
    #[error(
        "cannot start shard {shard}{cpu}: {source}\n\
         glommio needs io_uring (Linux 5.8 or later) and {io_memory_bytes} bytes of locked \
         memory per shard; the locked-memory limit of this process is {memlock}.\n\
         Fix: raise the limit (`ulimit -l unlimited` as root, `LimitMEMLOCK=infinity` in a \
         systemd unit, or `memlock` in /etc/security/limits.conf), or lower \
         `io_memory_bytes` in the production's [engine] settings."
    )]
    Executor {
        shard: usize,
        cpu: String,
        io_memory_bytes: usize,
        memlock: String,
        source: glommio::GlommioError<()>,
    },
    #[error("cannot start the thread of shard {shard}: {source}")]
    Thread {
        shard: usize,
        source: std::io::Error,
    },
    #[error("shard {shard} needs a CPU but the layout lists only {cpus}")]
    MissingCpu { shard: usize, cpus: usize },
}

/// A running shard's thread.
#[derive(Debug)]
pub struct ShardHandle<T> {
    pub shard: usize,
    /// `None` only from a shard told not to run, which [`start`] never hands out.
    thread: JoinHandle<Option<T>>,
}

/// Sends the shard's index on `ended` when dropped: when its thread ends, however.
struct Ended {
    shard: usize,
    tx: crossbeam_channel::Sender<usize>,
}

impl Drop for Ended {
    fn drop(&mut self) {
        // The receiver is gone only when the engine is: nobody to tell.
        let _ = self.tx.send(self.shard);
    }
}

/// The text of a thread's panic payload (what `panic!` was given, when it is text).
pub fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}

impl<T> ShardHandle<T> {
    /// Waits for the shard's main future to finish; `Err` if it panicked.
    pub fn join(self) -> std::thread::Result<T> {
        self.thread
            .join()
            .map(|out| out.expect("a shard told to run returns its output"))
    }
}

/// The locked-memory limit of this process, for error messages.
fn memlock_limit() -> String {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own and pass by valid pointer.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) };
    if rc != 0 {
        return "unknown".to_string();
    }
    if limit.rlim_cur == libc::RLIM_INFINITY {
        "unlimited".to_string()
    } else {
        format!("{} bytes", limit.rlim_cur)
    }
}

/// Starts `layout.shards` executors and runs `main(shard)` on each; each shard's thread
/// sends its index on `ended` when it ends (returned or panicked).
///
/// Every executor is created before this returns; if any cannot be, the ones already made
/// are told to stop (their `main` is never called) and the error is returned.
pub fn start<F, Fut, T>(
    layout: &ShardLayout,
    ended: crossbeam_channel::Sender<usize>,
    main: F,
) -> Result<Vec<ShardHandle<T>>, ShardError>
where
    F: Fn(usize) -> Fut + Send + Clone + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    if let Some(cpus) = &layout.cpus {
        if cpus.len() < layout.shards {
            return Err(ShardError::MissingCpu {
                shard: cpus.len(),
                cpus: cpus.len(),
            });
        }
    }
    let mut handles = Vec::with_capacity(layout.shards);
    let mut go_senders = Vec::with_capacity(layout.shards);
    let mut failure = None;
    for shard in 0..layout.shards {
        let cpu = layout.cpus.as_ref().map(|cpus| cpus[shard]);
        let io_memory = layout.io_memory_bytes;
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), glommio::GlommioError<()>>>();
        let (go_tx, go_rx) = mpsc::channel::<bool>();
        let main = main.clone();
        let ended = ended.clone();
        let thread = std::thread::Builder::new()
            .name(format!("hie-shard-{shard}"))
            .spawn(move || {
                let placement = cpu.map_or(Placement::Unbound, Placement::Fixed);
                // The blocking pool runs the WAL's fdatasyncs (two may be in flight) and
                // the file items' I/O, so it has room for both. It is unbound: glommio
                // would otherwise pin it to the shard's own CPU, where each sync's
                // wake-up would preempt the shard.
                let made = LocalExecutorBuilder::new(placement)
                    .name(&format!("hie-shard-{shard}"))
                    .io_memory(io_memory)
                    .blocking_thread_pool_placement(PoolPlacement::Unbound(BLOCKING_THREADS))
                    .make();
                let executor = match made {
                    Ok(executor) => {
                        let _ = ready_tx.send(Ok(()));
                        executor
                    }
                    Err(err) => {
                        let _ = ready_tx.send(Err(err));
                        return None;
                    }
                };
                // Wait until every shard exists, so none runs engine code alone.
                if go_rx.recv() != Ok(true) {
                    return None;
                }
                let _ended = Ended { shard, tx: ended };
                Some(executor.run(main(shard)))
            })
            .map_err(|source| ShardError::Thread { shard, source });
        let thread = match thread {
            Ok(thread) => thread,
            Err(err) => {
                failure = Some(err);
                break;
            }
        };
        match ready_rx.recv() {
            Ok(Ok(())) => {
                go_senders.push(go_tx);
                handles.push((shard, thread));
            }
            Ok(Err(source)) => {
                let _ = thread.join();
                failure = Some(ShardError::Executor {
                    shard,
                    cpu: cpu.map_or(String::new(), |c| format!(" on CPU {c}")),
                    io_memory_bytes: io_memory,
                    memlock: memlock_limit(),
                    source,
                });
                break;
            }
            Err(_) => {
                let _ = thread.join();
                failure = Some(ShardError::Thread {
                    shard,
                    source: std::io::Error::other("shard thread ended before its executor"),
                });
                break;
            }
        }
    }
    if let Some(err) = failure {
        for go in go_senders {
            let _ = go.send(false);
        }
        for (_, thread) in handles {
            let _ = thread.join();
        }
        return Err(err);
    }
    for go in go_senders {
        let _ = go.send(true);
    }
    Ok(handles
        .into_iter()
        .map(|(shard, thread)| ShardHandle { shard, thread })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shard_runs_its_main_with_its_index() {
        let layout = ShardLayout {
            shards: 2,
            cpus: None,
            io_memory_bytes: 1 << 20,
        };
        let (tx, _rx) = crossbeam_channel::unbounded();
        let handles = start(&layout, tx, |shard| async move { shard * 10 }).expect("start");
        let mut got: Vec<usize> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        got.sort();
        assert_eq!(got, vec![0, 10]);
    }

    /// A shard whose main ends (or panics) while the others run is reported on `ended`
    /// at once, and its panic's text can be read from its handle.
    #[test]
    fn a_shard_that_ends_early_is_reported_at_once() {
        let layout = ShardLayout {
            shards: 3,
            cpus: None,
            io_memory_bytes: 1 << 20,
        };
        let (tx, ended) = crossbeam_channel::unbounded();
        let (stop_tx, stop_rx) = crossbeam_channel::unbounded::<()>();
        let handles = start(&layout, tx, move |shard| {
            let stop_rx = stop_rx.clone();
            async move {
                match shard {
                    1 => panic!("shard 1 broke"),
                    2 => {}
                    _ => {
                        while stop_rx.try_recv().is_err() {
                            glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
                        }
                    }
                }
            }
        })
        .expect("start");
        let timeout = std::time::Duration::from_secs(10);
        let mut early = vec![
            ended.recv_timeout(timeout).unwrap(),
            ended.recv_timeout(timeout).unwrap(),
        ];
        early.sort();
        assert_eq!(early, [1, 2], "shard 0 runs on");
        assert!(ended.try_recv().is_err());
        stop_tx.send(()).unwrap();
        assert_eq!(ended.recv_timeout(timeout).unwrap(), 0);
        let mut handles = handles.into_iter();
        assert!(handles.next().unwrap().join().is_ok());
        let panicked = handles.next().unwrap().join().unwrap_err();
        assert_eq!(panic_text(panicked.as_ref()), "shard 1 broke");
        assert!(handles.next().unwrap().join().is_ok());
    }

    #[test]
    fn a_layout_with_too_few_cpus_is_refused() {
        let layout = ShardLayout {
            shards: 3,
            cpus: Some(vec![0]),
            io_memory_bytes: 1 << 20,
        };
        let (tx, _rx) = crossbeam_channel::unbounded();
        let err = start(&layout, tx, |_| async {}).unwrap_err();
        assert!(matches!(err, ShardError::MissingCpu { .. }), "{err}");
    }

    #[test]
    fn memlock_limit_is_reported_in_words() {
        let limit = memlock_limit();
        assert!(limit == "unlimited" || limit.ends_with(" bytes"), "{limit}");
    }
}
