//! The library API: runs built from options constructed in code (`Default` + fields), the
//! way the `hie-loadgen` binary and `hie demo` start them.
//!
//! - [`run_send`]: send to an MLLP server until the duration or message budget is spent,
//!   then return the [`Report`].
//! - [`run_sink`]: start a sink in the background and return a [`SinkHandle`] that reads
//!   its live count, stops it and hands back its [`SinkReport`].
//! - [`run_e2e`]: sender and sink together around an engine; the [`Report`] adds lost,
//!   duplicated and reordered messages.
//!
//! Each run starts its own glommio executors ([`Executors`]: pinned CPUs or unpinned
//! threads, spin before parking) and a collector on the calling thread (a background
//! thread for the sink). A run never installs signal handlers: a caller that wants Ctrl-C
//! to end a run passes an external stop flag ([`SendOptions::stop`]), checked every
//! [`crate::runner::STOP_POLL`].
//!
//! A send or e2e run may also flood its target ([`SendOptions::flood`]): the flood opens
//! before the load and closes after it, and the report says what became of it.
//!
//! Limits: connections 1..=[`CONNECTIONS_MAX`], patients 1..=[`PATIENTS_MAX`]; a remote
//! (non-loopback) address needs `allow_remote`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use glommio::Placement;

use crate::e2e::{self, PatientOrder};
use crate::error::LoadgenError;
use crate::flood::{self, FloodOptions};
use crate::histlog::HistLog;
use crate::ids::{CONNECTIONS_MAX, PATIENTS_MAX};
use crate::runner::{self, CollectOpts, Collected, ThreadCtx};
use crate::send::{self, SendPlan};
use crate::sink::{self, Behaviour, SinkPlan};
use crate::source::{self, Source};
use crate::stats::{Report, SinkReport};
use crate::template::TemplateKind;

/// Run length when neither a duration nor a message count is given.
pub const DURATION_DEFAULT: Duration = Duration::from_secs(10);
/// The default address to send to (the HL7 MLLP port registered with IANA).
pub const SEND_TO_DEFAULT: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 2575);

/// Where a run's glommio executors run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Executors {
    /// One executor pinned to each of these CPUs; `None` runs `threads` unpinned ones.
    /// Default `None`.
    pub cpus: Option<Vec<usize>>,
    /// Unpinned executors when `cpus` is `None`, at least 1. Default 1.
    pub threads: usize,
    /// How long an executor spins looking for work before it parks. Worth it only when
    /// each executor owns its core: it saves the wake-up of a parked executor on every
    /// round trip. Default 0 (park at once).
    pub spin: Duration,
    /// How long a connection keeps waiting in its executor's readiness set before it
    /// parks on the reactor (`hie_net::tcp::busy`); this, not `spin`, is what spares a
    /// closed-loop connection a cross-core wake-up per message. Default
    /// [`BUSY_POLL_DEFAULT`] (1 ms).
    pub busy_poll: Duration,
}

/// The load generator's busy-poll budget: 1 ms, twenty times the engine's. A load tool owns
/// its cores and must never be what it measures: with 50 µs its connections parked during
/// each group commit of the engine under test (a few hundred µs with nothing on the wire),
/// and the engine then paid a reactor wake-up of the parked socket in every `send` of an
/// ACK or a delivery (13 % of the engine core in `sock_def_readable`, `perf record`).
pub const BUSY_POLL_DEFAULT: Duration = Duration::from_millis(1);

impl Default for Executors {
    fn default() -> Self {
        Self {
            cpus: None,
            threads: 1,
            spin: Duration::ZERO,
            busy_poll: BUSY_POLL_DEFAULT,
        }
    }
}

impl Executors {
    /// One executor pinned to each CPU of `cpus`, not spinning.
    pub fn pinned(cpus: &[usize]) -> Self {
        Self {
            cpus: Some(cpus.to_vec()),
            ..Self::default()
        }
    }

    /// The same, spinning `spin` before parking.
    pub fn with_spin(mut self, spin: Duration) -> Self {
        self.spin = spin;
        self
    }

    fn placements(&self) -> Result<Vec<Placement>, LoadgenError> {
        match &self.cpus {
            Some(cpus) if cpus.is_empty() => Err(LoadgenError::BadOption {
                option: "--cpus",
                reason: "no CPU given".into(),
            }),
            Some(cpus) => Ok(cpus.iter().copied().map(Placement::Fixed).collect()),
            None => runner::placements(None, self.threads),
        }
    }
}

/// What `send` (and the sending half of `e2e`) does.
#[derive(Debug, Clone)]
pub struct SendOptions {
    /// The MLLP server to send to. Default 127.0.0.1:2575.
    pub to: SocketAddr,
    /// Connections, spread over the executors. Default 8.
    pub connections: usize,
    /// Stop sending after this long. Default: 10 s when `messages` is `None` too.
    pub duration: Option<Duration>,
    /// Stop after this many messages in total (split exactly over the connections).
    /// Default `None`.
    pub messages: Option<u64>,
    /// Open loop at this many messages per second in total; closed loop (one message in
    /// flight per connection) when `None`. Default `None`.
    pub rate: Option<f64>,
    /// Open loop: most messages awaiting an ACK on one connection. Default 1024.
    pub max_in_flight: usize,
    /// Latency leaves out the messages whose intended send time falls in this first part
    /// of the run; they are still counted and checked. Default zero.
    pub warmup: Duration,
    /// How long to wait for an ACK. Default 5 s.
    pub timeout: Duration,
    /// The messages. Default: the ADT^A01 template, unpadded.
    pub source: Source,
    /// Patient population (PID-3.1 drawn from `P0000000` up). Default 1000.
    pub patients: u32,
    /// Where the executors run. Default: one unpinned executor.
    pub executors: Executors,
    /// Write the latency histogram here (HdrHistogram interval log). Default `None`.
    pub hist: Option<PathBuf>,
    /// Draw the latency percentile curve here (SVG). Default `None`.
    pub plot: Option<PathBuf>,
    /// Print a progress line every second on stdout. Default false.
    pub progress: bool,
    /// Allow a non-loopback `to`. Default false.
    pub allow_remote: bool,
    /// Ends the run early when set (e.g. by a SIGINT handler). Default `None`.
    pub stop: Option<Arc<AtomicBool>>,
    /// Open this flood on `to` before the load starts and hold it until the load ends
    /// ([`crate::flood`]); the report's `flood` says what became of it. Default `None`.
    pub flood: Option<FloodOptions>,
}

impl Default for SendOptions {
    fn default() -> Self {
        Self {
            to: SEND_TO_DEFAULT,
            connections: 8,
            duration: None,
            messages: None,
            rate: None,
            max_in_flight: 1024,
            warmup: Duration::ZERO,
            timeout: Duration::from_secs(5),
            source: Source::Template {
                kind: TemplateKind::AdtA01,
                obx: 0,
                size_bytes: None,
            },
            patients: 1000,
            executors: Executors::default(),
            hist: None,
            plot: None,
            progress: false,
            allow_remote: false,
            stop: None,
            flood: None,
        }
    }
}

/// What a sink does.
#[derive(Debug, Clone)]
pub struct SinkOptions {
    /// Address to listen on; port 0 picks a free one ([`SinkHandle::addr`] tells which).
    /// Default 127.0.0.1:0.
    pub listen: SocketAddr,
    /// How it answers. Default: AA to everything, at once.
    pub behaviour: Behaviour,
    /// Where the executors run (each listens on the address with SO_REUSEPORT). Default:
    /// one unpinned executor.
    pub executors: Executors,
    /// Stop after this long. Default `None` (until stopped).
    pub duration: Option<Duration>,
    /// Stop after receiving this many messages. Default `None`.
    pub messages: Option<u64>,
    /// Print a progress line every second on stdout. Default false.
    pub progress: bool,
    /// Allow a non-loopback `listen`. Default false.
    pub allow_remote: bool,
    /// Ends the sink when set (e.g. by a SIGTERM handler). Default `None`.
    pub stop: Option<Arc<AtomicBool>>,
}

impl Default for SinkOptions {
    fn default() -> Self {
        Self {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            behaviour: Behaviour::default(),
            executors: Executors::default(),
            duration: None,
            messages: None,
            progress: false,
            allow_remote: false,
            stop: None,
        }
    }
}

/// What `e2e` does: the sender's options (`send.to` is the engine's inbound port) and the
/// sink the engine delivers to, run on the same executors.
#[derive(Debug, Clone)]
pub struct E2eOptions {
    /// The sending side.
    pub send: SendOptions,
    /// Where the engine delivers. Default 127.0.0.1:0 (a free port; useful only when the
    /// engine is configured afterwards).
    pub sink_listen: SocketAddr,
    /// How the sink answers the engine. Default: AA at once.
    pub behaviour: Behaviour,
    /// After sending, wait at most this long for ACKed messages to arrive. Default 10 s.
    pub drain: Duration,
}

impl Default for E2eOptions {
    fn default() -> Self {
        Self {
            send: SendOptions::default(),
            sink_listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            behaviour: Behaviour::default(),
            drain: Duration::from_secs(10),
        }
    }
}

/// Sends until the duration or the message budget is spent; returns the report of ACK
/// latency and outcomes.
pub fn run_send(opts: SendOptions) -> Result<Report, LoadgenError> {
    run_load(opts, None)
}

/// Sends to an engine and receives what it delivers; returns the report of end-to-end
/// latency, outcomes, lost, duplicated and reordered messages.
pub fn run_e2e(opts: E2eOptions) -> Result<Report, LoadgenError> {
    let E2eOptions {
        send,
        sink_listen,
        behaviour,
        drain,
    } = opts;
    check_address(sink_listen, "--sink-listen", send.allow_remote)?;
    behaviour.check()?;
    let listen = sink::pick_port(sink_listen)?;
    let sink = SinkPlan {
        listen,
        behaviour,
        received_total: Arc::new(AtomicU64::new(0)),
        order: Some(Arc::new(PatientOrder::new(send.patients))),
        patient_path: crate::hl7io::patient_path(),
        listening: Arc::default(),
        busy_poll: send.executors.busy_poll,
        warmup_us: send.warmup.as_micros() as u64,
    };
    run_load(send, Some((Arc::new(sink), drain)))
}

fn check_address(
    addr: SocketAddr,
    option: &'static str,
    allow_remote: bool,
) -> Result<(), LoadgenError> {
    let _ = option;
    if !allow_remote && !addr.ip().is_loopback() {
        return Err(LoadgenError::RemoteNotAllowed { addr });
    }
    Ok(())
}

fn send_plan(opts: &SendOptions, threads: usize, e2e: bool) -> Result<SendPlan, LoadgenError> {
    check_address(opts.to, "--to", opts.allow_remote)?;
    let bad = |option, reason: String| Err(LoadgenError::BadOption { option, reason });
    if opts.connections == 0 || opts.connections > CONNECTIONS_MAX {
        return bad(
            "--connections",
            format!(
                "{} is not between 1 and {CONNECTIONS_MAX}",
                opts.connections
            ),
        );
    }
    if opts.patients == 0 || opts.patients > PATIENTS_MAX {
        return bad(
            "--patients",
            format!("{} is not between 1 and {PATIENTS_MAX}", opts.patients),
        );
    }
    if let Some(rate) = opts.rate
        && !(rate.is_finite() && rate > 0.0)
    {
        return bad("--rate", format!("{rate} is not a positive rate"));
    }
    if opts.max_in_flight == 0 {
        return bad("--max-in-flight", "must be at least 1".into());
    }
    let corpus = source::load(&opts.source)?;
    if corpus.skipped > 0 {
        eprintln!(
            "hie-loadgen: skipped {} unusable message(s) of the source",
            corpus.skipped
        );
    }
    let duration = match (opts.duration, opts.messages) {
        (None, None) => Some(DURATION_DEFAULT),
        (d, _) => d,
    };
    Ok(SendPlan {
        to: opts.to,
        connections: opts.connections,
        threads,
        messages: opts.messages,
        duration,
        rate: opts.rate,
        max_in_flight: opts.max_in_flight,
        warmup_us: opts.warmup.as_micros() as u64,
        timeout: opts.timeout,
        corpus: corpus.messages,
        patients: opts.patients,
        e2e,
        busy_poll: opts.executors.busy_poll,
    })
}

/// The sender's run, with the e2e sink on the same executors when given.
fn run_load(
    opts: SendOptions,
    sink_plan: Option<(Arc<SinkPlan>, Duration)>,
) -> Result<Report, LoadgenError> {
    let placements = opts.executors.placements()?;
    let thread_count = placements.len();
    let plan = Arc::new(send_plan(&opts, thread_count, sink_plan.is_some())?);
    if let Some((sp, _)) = &sink_plan {
        eprintln!("hie-loadgen: sink listening on {}", sp.listen);
    }
    // The flood is in place (or has failed to connect) before the first legitimate
    // connect, and is closed only after the last legitimate ACK.
    let flood = opts
        .flood
        .as_ref()
        .map(|f| {
            flood::start(
                f,
                opts.to,
                opts.timeout,
                opts.connections,
                opts.stop.clone(),
            )
        })
        .transpose()?;
    let stop = Arc::new(AtomicBool::new(false));
    let senders_running = Arc::new(AtomicU64::new(thread_count as u64));
    // ACKs counted by the sender threads that have finished, published before each
    // decrements `senders_running`: the collector's totals come in periodic updates and
    // lag behind (a run shorter than one update would see none at all and stop draining
    // before the engine had delivered anything).
    let acked_final = Arc::new(AtomicU64::new(0));
    let (tx, rx) = runner::channel_pair();
    let start = Instant::now();
    let hist_log = opts
        .hist
        .as_deref()
        .map(|p| HistLog::create(p, SystemTime::now()))
        .transpose()?;
    let work = {
        let (plan, sink_plan, senders_running, acked_final) = (
            plan.clone(),
            sink_plan.as_ref().map(|s| s.0.clone()),
            senders_running.clone(),
            acked_final.clone(),
        );
        move |ctx: Rc<ThreadCtx>| {
            let (plan, sink_plan, senders_running, acked_final) = (
                plan.clone(),
                sink_plan.clone(),
                senders_running.clone(),
                acked_final.clone(),
            );
            async move {
                let sender = async {
                    send::run_thread(ctx.clone(), plan).await;
                    let acked = ctx.stats.borrow().counters.acked;
                    acked_final.fetch_add(acked, Ordering::Relaxed);
                    // Release: whoever sees this thread finished sees its ACK count.
                    senders_running.fetch_sub(1, Ordering::Release);
                };
                match sink_plan {
                    Some(sp) => {
                        futures_lite::future::zip(sender, sink::run_thread(ctx.clone(), sp)).await;
                    }
                    None => sender.await,
                }
            }
        }
    };
    let handles = runner::spawn_threads(
        placements,
        opts.executors.spin,
        start,
        stop.clone(),
        tx,
        work,
    )?;
    let mut drain_deadline: Option<Duration> = None;
    let external = opts.stop.clone();
    let collected = runner::collect(
        rx,
        CollectOpts {
            threads: thread_count,
            start,
            hist_log,
            sink_progress: false,
            progress: opts.progress,
        },
        |elapsed, _totals| {
            if external.as_ref().is_some_and(|s| s.load(Ordering::Relaxed)) {
                stop.store(true, Ordering::Relaxed);
            }
            if senders_running.load(Ordering::Acquire) > 0 {
                return;
            }
            let Some((sp, drain)) = &sink_plan else {
                return;
            };
            let deadline = *drain_deadline.get_or_insert(elapsed + *drain);
            // Every ACKed message has arrived (or the drain time is over): the run is done.
            let acked = acked_final.load(Ordering::Relaxed);
            if sp.received_total.load(Ordering::Relaxed) >= acked || elapsed >= deadline {
                stop.store(true, Ordering::Relaxed);
            }
        },
    )?;
    join(handles)?;
    let mut report = finish_report(&collected, &opts, sink_plan.is_some())?;
    report.flood = flood.map(flood::FloodHandle::finish).transpose()?;
    Ok(report)
}

fn join(handles: Vec<glommio::ExecutorJoinHandle<()>>) -> Result<(), LoadgenError> {
    for (thread, h) in handles.into_iter().enumerate() {
        h.join().map_err(|e| LoadgenError::Executor {
            thread,
            reason: e.to_string(),
        })?;
    }
    Ok(())
}

fn finish_report(c: &Collected, opts: &SendOptions, e2e: bool) -> Result<Report, LoadgenError> {
    let mut report = Report::new(&c.counters, &c.hist, c.elapsed.as_secs_f64(), e2e);
    if e2e {
        let merged = e2e::merge(&c.tracks);
        report.lost = merged.lost;
        report.duplicates += merged.cross_thread_duplicates;
    }
    if let Some(path) = &opts.plot {
        let title = format!(
            "hie-loadgen {}: {} msg/s, {} connections",
            report.latency_label(),
            report.rate_per_s.round(),
            opts.connections
        );
        crate::plot::write_svg(path, &c.hist, &title)?;
    }
    Ok(report)
}

/// A sink running in the background. Dropping it stops the sink and waits for it.
#[derive(Debug)]
pub struct SinkHandle {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    received: Arc<AtomicU64>,
    collector: Option<JoinHandle<Result<SinkReport, LoadgenError>>>,
}

impl SinkHandle {
    /// The address the sink listens on (the real port when 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Messages received so far, by all the sink's executors.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Whether the sink has stopped (asked to, or its duration or message count reached).
    pub fn is_finished(&self) -> bool {
        self.collector.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Asks the sink to stop; it closes within [`crate::runner::STOP_POLL`] or so.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Waits for the sink to end (it ends when stopped, or on its own duration or message
    /// count) and returns its report.
    pub fn join(mut self) -> Result<SinkReport, LoadgenError> {
        self.wait()
    }

    /// Stops the sink and returns its report.
    pub fn stop_and_join(self) -> Result<SinkReport, LoadgenError> {
        self.stop();
        self.join()
    }

    fn wait(&mut self) -> Result<SinkReport, LoadgenError> {
        let Some(collector) = self.collector.take() else {
            return Err(LoadgenError::Executor {
                thread: 0,
                reason: "the sink was already joined".into(),
            });
        };
        collector.join().map_err(|_| LoadgenError::Executor {
            thread: 0,
            reason: "the sink's collector thread panicked".into(),
        })?
    }
}

impl Drop for SinkHandle {
    fn drop(&mut self) {
        if self.collector.is_some() {
            self.stop();
            let _ = self.wait();
        }
    }
}

/// How long [`run_sink`] waits for its executors to listen.
pub const SINK_LISTEN_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts a sink on its executors and returns once every executor listens.
pub fn run_sink(opts: SinkOptions) -> Result<SinkHandle, LoadgenError> {
    check_address(opts.listen, "--listen", opts.allow_remote)?;
    opts.behaviour.check()?;
    let placements = opts.executors.placements()?;
    let thread_count = placements.len();
    let addr = sink::pick_port(opts.listen)?;
    let plan = Arc::new(SinkPlan {
        listen: addr,
        behaviour: opts.behaviour.clone(),
        received_total: Arc::new(AtomicU64::new(0)),
        order: None,
        patient_path: crate::hl7io::patient_path(),
        listening: Arc::default(),
        busy_poll: opts.executors.busy_poll,
        warmup_us: 0,
    });
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = runner::channel_pair();
    let start = Instant::now();
    let work = {
        let plan = plan.clone();
        move |ctx| sink::run_thread(ctx, plan.clone())
    };
    let handles = runner::spawn_threads(
        placements,
        opts.executors.spin,
        start,
        stop.clone(),
        tx,
        work,
    )?;
    let (duration, messages, progress) = (opts.duration, opts.messages, opts.progress);
    let (stop_seen, received, external) =
        (stop.clone(), plan.received_total.clone(), opts.stop.clone());
    let collector = std::thread::Builder::new()
        .name("loadgen-sink-collector".into())
        .spawn(move || {
            let collected = runner::collect(
                rx,
                CollectOpts {
                    threads: thread_count,
                    start,
                    hist_log: None,
                    sink_progress: true,
                    progress,
                },
                |elapsed, _| {
                    let received = received.load(Ordering::Relaxed);
                    if duration.is_some_and(|d| elapsed >= d)
                        || messages.is_some_and(|m| received >= m)
                        || external.as_ref().is_some_and(|s| s.load(Ordering::Relaxed))
                    {
                        stop_seen.store(true, Ordering::Relaxed);
                    }
                },
            );
            let joined = join(handles);
            let collected = collected?;
            joined?;
            Ok(SinkReport::new(
                &collected.counters,
                collected.elapsed.as_secs_f64(),
            ))
        })
        .map_err(|e| LoadgenError::Executor {
            thread: 0,
            reason: format!("cannot start the sink's collector thread: {e}"),
        })?;
    let handle = SinkHandle {
        addr,
        stop,
        received: plan.received_total.clone(),
        collector: Some(collector),
    };
    let deadline = Instant::now() + SINK_LISTEN_TIMEOUT;
    while plan.listening.load(Ordering::Acquire) < thread_count {
        if handle.is_finished() || Instant::now() >= deadline {
            let reason = format!(
                "{} of {thread_count} sink executor(s) listening",
                plan.listening.load(Ordering::Acquire)
            );
            drop(handle);
            return Err(LoadgenError::Listen {
                addr,
                source: std::io::Error::new(std::io::ErrorKind::AddrNotAvailable, reason),
            });
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(handle)
}
