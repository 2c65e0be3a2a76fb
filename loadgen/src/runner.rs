//! Executor threads and the main thread's collector.
//!
//! Every executor thread owns a [`ThreadCtx`]: its counters, its interval histogram and
//! its end-to-end tracks, touched only by that thread's tasks. Once a second (and when it
//! ends) the thread sends an [`Update`] with its cumulative counters and the histogram of
//! the interval just ended over a channel to the main thread, which merges them, prints
//! the progress line, appends the interval to the `--hist` log and decides when the run
//! stops (duration, message count, SIGINT/SIGTERM, e2e drain). Stopping is one shared
//! flag every thread polls every [`STOP_POLL`].

use std::cell::RefCell;
use std::future::Future;
use std::io::Write;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::{Duration, Instant};

use glommio::{LocalExecutorBuilder, Placement};
use hdrhistogram::Histogram;

use crate::e2e::Tracks;
use crate::error::LoadgenError;
use crate::histlog::HistLog;
use crate::stats::{Counters, new_histogram};

/// How often threads look at the stop flag.
pub const STOP_POLL: Duration = Duration::from_millis(20);
/// How often threads report and the progress line is printed.
pub const REPORT_INTERVAL: Duration = Duration::from_secs(1);

/// What a thread reports to the main thread.
#[derive(Debug)]
pub struct Update {
    /// Index of the thread.
    pub thread: usize,
    /// Cumulative counters.
    pub counters: Counters,
    /// Latencies recorded since the previous update.
    pub interval: Histogram<u64>,
    /// The thread's e2e tracks, on its last update.
    pub tracks: Option<Tracks>,
}

/// What one thread owns while it runs.
#[derive(Debug)]
pub struct ThreadCtx {
    /// Index of the thread.
    pub thread: usize,
    /// The run's start.
    pub start: Instant,
    /// Set when the run must stop.
    pub stop: Arc<AtomicBool>,
    /// Counters, interval histogram and tracks.
    pub stats: RefCell<ThreadStats>,
}

/// The mutable part of a [`ThreadCtx`].
#[derive(Debug)]
pub struct ThreadStats {
    /// Cumulative counters.
    pub counters: Counters,
    /// Latencies since the last report.
    pub interval: Histogram<u64>,
    /// e2e tracks.
    pub tracks: Tracks,
}

impl ThreadCtx {
    /// Nanoseconds since the run's start.
    #[inline]
    pub fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Whether the run must stop.
    #[inline]
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn update(&self, last: bool) -> Update {
        let mut s = self.stats.borrow_mut();
        let interval = std::mem::replace(&mut s.interval, new_histogram());
        Update {
            thread: self.thread,
            counters: s.counters,
            interval,
            tracks: last.then(|| std::mem::take(&mut s.tracks)),
        }
    }
}

/// Executor placements from `--cpus` / `--threads`.
pub fn placements(cpus: Option<&str>, threads: usize) -> Result<Vec<Placement>, LoadgenError> {
    match cpus {
        Some(list) => Ok(crate::cli::parse_cpus(list)?
            .into_iter()
            .map(Placement::Fixed)
            .collect()),
        None if threads == 0 => Err(LoadgenError::BadOption {
            option: "--threads",
            reason: "at least one thread".into(),
        }),
        None => Ok((0..threads).map(|_| Placement::Unbound).collect()),
    }
}

/// Starts one executor per placement (spinning `spin` before parking), each running `work(ctx)` until it ends or the stop
/// flag is set, and reporting to `tx`. Returns the join handles.
pub fn spawn_threads<W, F>(
    placements: Vec<Placement>,
    spin: Duration,
    start: Instant,
    stop: Arc<AtomicBool>,
    tx: Sender<Update>,
    work: W,
) -> Result<Vec<glommio::ExecutorJoinHandle<()>>, LoadgenError>
where
    W: Fn(Rc<ThreadCtx>) -> F + Send + Clone + 'static,
    F: Future<Output = ()> + 'static,
{
    let mut handles = Vec::new();
    for (thread, placement) in placements.into_iter().enumerate() {
        let (stop, tx, work) = (stop.clone(), tx.clone(), work.clone());
        let mut builder = LocalExecutorBuilder::new(placement).name(&format!("loadgen-{thread}"));
        if !spin.is_zero() {
            // An executor that owns its core may spin before parking, saving the wake-up
            // latency of io_uring_enter on every round trip (at the cost of a busy core).
            builder = builder.spin_before_park(spin);
        }
        let handle = builder
            .spawn(move || async move {
                let ctx = Rc::new(ThreadCtx {
                    thread,
                    start,
                    stop,
                    stats: RefCell::new(ThreadStats {
                        counters: Counters::default(),
                        interval: new_histogram(),
                        tracks: Tracks::default(),
                    }),
                });
                futures_lite::future::or(work(ctx.clone()), monitor(ctx.clone(), tx.clone())).await;
                let _ = tx.send(ctx.update(true));
            })
            .map_err(|e| LoadgenError::Executor {
                thread,
                reason: e.to_string(),
            })?;
        handles.push(handle);
    }
    Ok(handles)
}

/// Reports once a second; returns when the stop flag is set.
async fn monitor(ctx: Rc<ThreadCtx>, tx: Sender<Update>) {
    let mut next = Instant::now() + REPORT_INTERVAL;
    while !ctx.stopping() {
        glommio::timer::sleep(STOP_POLL).await;
        if Instant::now() >= next {
            next += REPORT_INTERVAL;
            let _ = tx.send(ctx.update(false));
        }
    }
}

/// What the collector gathered when every thread ended.
#[derive(Debug)]
pub struct Collected {
    /// Sum of the threads' counters.
    pub counters: Counters,
    /// Every latency recorded.
    pub hist: Histogram<u64>,
    /// Every thread's e2e tracks.
    pub tracks: Vec<Tracks>,
    /// From start to the last thread's end.
    pub elapsed: Duration,
}

/// How the collector behaves.
#[derive(Debug)]
pub struct CollectOpts {
    /// Number of threads that will report.
    pub threads: usize,
    /// The run's start.
    pub start: Instant,
    /// The `--hist` log, if asked for.
    pub hist_log: Option<HistLog>,
    /// `send` / `sink` / `e2e`: which counters the progress line shows.
    pub sink_progress: bool,
    /// Print the progress line every second on stdout.
    pub progress: bool,
}

/// Receives updates until every thread has sent its last one. `tick(elapsed, totals)` is
/// called at least every [`STOP_POLL`]; it decides when to set the stop flag.
pub fn collect(
    rx: Receiver<Update>,
    mut opts: CollectOpts,
    mut tick: impl FnMut(Duration, &Counters),
) -> Result<Collected, LoadgenError> {
    let progress = opts.progress;
    let mut per_thread = vec![Counters::default(); opts.threads];
    let mut tracks = Vec::new();
    let mut hist = new_histogram();
    let mut interval = new_histogram();
    let mut interval_start = Duration::ZERO;
    let mut finished = 0;
    let mut totals = Counters::default();
    let mut last_print = Duration::ZERO;
    let mut printed = Counters::default();
    while finished < opts.threads {
        match rx.recv_timeout(STOP_POLL) {
            Ok(update) => {
                per_thread[update.thread] = update.counters;
                let _ = interval.add(&update.interval);
                if let Some(t) = update.tracks {
                    tracks.push(t);
                    finished += 1;
                }
                totals = per_thread.iter().fold(Counters::default(), |mut acc, c| {
                    acc.add(c);
                    acc
                });
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        let elapsed = opts.start.elapsed();
        tick(elapsed, &totals);
        if elapsed >= interval_start + REPORT_INTERVAL {
            if progress {
                print_progress(
                    elapsed,
                    elapsed - last_print,
                    &totals,
                    &printed,
                    &interval,
                    opts.sink_progress,
                );
                last_print = elapsed;
                printed = totals;
            }
            flush_interval(
                &mut opts,
                &mut hist,
                &mut interval,
                &mut interval_start,
                elapsed,
            )?;
        }
    }
    let elapsed = opts.start.elapsed();
    flush_interval(
        &mut opts,
        &mut hist,
        &mut interval,
        &mut interval_start,
        elapsed,
    )?;
    if progress {
        println!();
    }
    if let Some(log) = opts.hist_log.take() {
        log.finish()?;
    }
    let elapsed = opts.start.elapsed();
    Ok(Collected {
        counters: totals,
        hist,
        tracks,
        elapsed,
    })
}

fn flush_interval(
    opts: &mut CollectOpts,
    hist: &mut Histogram<u64>,
    interval: &mut Histogram<u64>,
    interval_start: &mut Duration,
    now: Duration,
) -> Result<(), LoadgenError> {
    if let Some(log) = opts.hist_log.as_mut()
        && !interval.is_empty()
    {
        log.write_interval(interval, *interval_start, now - *interval_start)?;
    }
    let _ = hist.add(&*interval);
    interval.reset();
    *interval_start = now;
    Ok(())
}

fn print_progress(
    elapsed: Duration,
    since: Duration,
    totals: &Counters,
    before: &Counters,
    interval: &Histogram<u64>,
    sink: bool,
) {
    let secs = since.as_secs_f64().max(1e-9);
    let line = if sink {
        let rate = (totals.received - before.received) as f64 / secs;
        format!(
            "\r[{:>6.1}s] received {:>10} rate {:>9.0}/s connections {:>5}   ",
            elapsed.as_secs_f64(),
            totals.received,
            rate,
            totals.connections
        )
    } else {
        let rate = (totals.acked - before.acked) as f64 / secs;
        let (p50, p99) = if interval.is_empty() {
            (0, 0)
        } else {
            (
                interval.value_at_quantile(0.5),
                interval.value_at_quantile(0.99),
            )
        };
        format!(
            "\r[{:>6.1}s] sent {:>10} acked {:>10} rate {:>9.0}/s p50 {:>7}µs p99 {:>7}µs errors {:>6}   ",
            elapsed.as_secs_f64(),
            totals.sent,
            totals.acked,
            rate,
            p50,
            p99,
            totals.sender_errors()
        )
    };
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(line.as_bytes());
    let _ = out.flush();
}

/// Starts the channel threads report on.
pub fn channel_pair() -> (Sender<Update>, Receiver<Update>) {
    channel()
}
