//! `hie-loadgen`: capacity testing for MLLP (HL7 v2) engines.
//!
//! ```text
//! hie-loadgen sink --listen 127.0.0.1:2576 --cpus 1
//! hie-loadgen send --to 127.0.0.1:2575 -c 8 --duration 10s --template adt-a01 --size 300
//! hie-loadgen e2e  --to 127.0.0.1:2575 --sink-listen 127.0.0.1:2576 --rate 5000 --duration 30s
//! ```
//!
//! Thread per core on glommio: `--cpus 0,1` pins one executor per CPU, `--threads N` runs
//! N unpinned. The exit status is 0 when the run completed (whatever it measured), 2 on a
//! usage or setup error.

mod cli;
mod e2e;
mod error;
mod histlog;
mod hl7io;
mod ids;
mod plot;
mod runner;
mod send;
mod sink;
mod source;
mod stats;
mod template;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use clap::Parser;

use crate::cli::{BehaviourArgs, Cli, Command, LoadArgs, OutputArgs, ThreadArgs};
use crate::error::LoadgenError;
use crate::runner::{CollectOpts, Collected};
use crate::send::SendPlan;
use crate::sink::{Behaviour, SinkPlan};
use crate::source::Source;
use crate::stats::{SendReport, SinkReport};
use crate::template::TemplateKind;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Run length when neither `--duration` nor `--messages` is given.
const DEFAULT_DURATION: Duration = Duration::from_secs(10);

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Send(args) => run_send(&args.load, &args.threads, &args.output, None),
        Command::E2e(args) => run_send(
            &args.load,
            &args.threads,
            &args.output,
            Some((&args.sink_listen, &args.behaviour, args.drain)),
        ),
        Command::Sink(args) => run_sink(&args),
    };
    if let Err(e) = result {
        eprintln!("hie-loadgen: {e}");
        std::process::exit(2);
    }
}

/// The stop flag, set by SIGINT and SIGTERM as well as by the run itself.
fn stop_flag() -> Result<Arc<AtomicBool>, LoadgenError> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone()).map_err(|e| LoadgenError::BadOption {
            option: "signals",
            reason: format!("cannot install the SIGINT/SIGTERM handler: {e}"),
        })?;
    }
    Ok(stop)
}

fn source_of(load: &LoadArgs) -> Source {
    match (&load.file, &load.dir) {
        (Some(f), _) => Source::File(f.clone()),
        (None, Some(d)) => Source::Dir(d.clone()),
        (None, None) => Source::Template {
            kind: load.template.unwrap_or(TemplateKind::AdtA01),
            obx: load.obx,
            size_bytes: load.size,
        },
    }
}

fn behaviour_of(b: &BehaviourArgs) -> Result<Behaviour, LoadgenError> {
    let ae_rate = cli::check_fraction(b.ae_rate, "--ae-rate")?;
    let ar_rate = cli::check_fraction(b.ar_rate, "--ar-rate")?;
    if ae_rate + ar_rate > 1.0 {
        return Err(LoadgenError::BadOption {
            option: "--ae-rate",
            reason: "--ae-rate + --ar-rate exceeds 1".into(),
        });
    }
    if let Some(dir) = &b.save_dir {
        std::fs::create_dir_all(dir).map_err(|source| LoadgenError::WriteReport {
            path: dir.clone(),
            source,
        })?;
    }
    Ok(Behaviour {
        ae_rate,
        ar_rate,
        delay: b.delay.or(b.delay_max.map(|_| Duration::ZERO)),
        delay_max: b.delay_max,
        drop_rate: cli::check_fraction(b.drop_rate, "--drop-rate")?,
        no_ack: b.no_ack,
        save_dir: b.save_dir.clone(),
    })
}

fn send_plan(
    load: &LoadArgs,
    threads: usize,
    allow_remote: bool,
    e2e: bool,
) -> Result<SendPlan, LoadgenError> {
    let to = cli::resolve(&load.to, "--to", allow_remote)?;
    if load.connections == 0 || load.connections > ids::CONNECTIONS_MAX {
        return Err(LoadgenError::BadOption {
            option: "--connections",
            reason: format!(
                "{} is not between 1 and {}",
                load.connections,
                ids::CONNECTIONS_MAX
            ),
        });
    }
    if load.patients == 0 || load.patients > ids::PATIENTS_MAX {
        return Err(LoadgenError::BadOption {
            option: "--patients",
            reason: format!(
                "{} is not between 1 and {}",
                load.patients,
                ids::PATIENTS_MAX
            ),
        });
    }
    if let Some(rate) = load.rate
        && !(rate.is_finite() && rate > 0.0)
    {
        return Err(LoadgenError::BadOption {
            option: "--rate",
            reason: format!("{rate} is not a positive rate"),
        });
    }
    if load.max_in_flight == 0 {
        return Err(LoadgenError::BadOption {
            option: "--max-in-flight",
            reason: "must be at least 1".into(),
        });
    }
    let corpus = source::load(&source_of(load))?;
    if corpus.skipped > 0 {
        eprintln!(
            "hie-loadgen: skipped {} unusable message(s) of the source",
            corpus.skipped
        );
    }
    let duration = match (load.duration, load.messages) {
        (None, None) => Some(DEFAULT_DURATION),
        (d, _) => d,
    };
    Ok(SendPlan {
        to,
        connections: load.connections,
        threads,
        messages: load.messages,
        duration,
        rate: load.rate,
        max_in_flight: load.max_in_flight,
        timeout: load.timeout,
        corpus: corpus.messages,
        patients: load.patients,
        e2e,
    })
}

fn run_send(
    load: &LoadArgs,
    threads: &ThreadArgs,
    output: &OutputArgs,
    e2e: Option<(&String, &BehaviourArgs, Duration)>,
) -> Result<(), LoadgenError> {
    let placements = runner::placements(threads.cpus.as_deref(), threads.threads)?;
    let thread_count = placements.len();
    let plan = Arc::new(send_plan(
        load,
        thread_count,
        output.allow_remote,
        e2e.is_some(),
    )?);
    let sink_plan = match e2e {
        Some((listen, behaviour, _)) => {
            let addr =
                sink::pick_port(cli::resolve(listen, "--sink-listen", output.allow_remote)?)?;
            eprintln!("hie-loadgen: sink listening on {addr}");
            Some(Arc::new(SinkPlan {
                listen: addr,
                behaviour: behaviour_of(behaviour)?,
                received_total: Arc::new(AtomicU64::new(0)),
                order: Some(Arc::new(e2e::PatientOrder::new(load.patients))),
            }))
        }
        None => None,
    };
    let stop = stop_flag()?;
    let senders_running = Arc::new(AtomicU64::new(thread_count as u64));
    let (tx, rx) = runner::channel_pair();
    let start = Instant::now();
    let start_wall = SystemTime::now();
    let hist_log = load
        .hist
        .as_deref()
        .map(|p| histlog::HistLog::create(p, start_wall))
        .transpose()?;
    let work = {
        let (plan, sink_plan, senders_running) =
            (plan.clone(), sink_plan.clone(), senders_running.clone());
        move |ctx: std::rc::Rc<runner::ThreadCtx>| {
            let (plan, sink_plan, senders_running) =
                (plan.clone(), sink_plan.clone(), senders_running.clone());
            async move {
                let sender = async {
                    send::run_thread(ctx.clone(), plan).await;
                    senders_running.fetch_sub(1, Ordering::Relaxed);
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
        Duration::from_micros(threads.spin_us),
        start,
        stop.clone(),
        tx,
        work,
    )?;
    let mut drain_deadline: Option<Duration> = None;
    let drain = e2e.map(|(_, _, d)| d);
    let received_total = sink_plan.as_ref().map(|s| s.received_total.clone());
    let collected = runner::collect(
        rx,
        CollectOpts {
            threads: thread_count,
            start,
            hist_log,
            sink_progress: false,
        },
        |elapsed, totals| {
            if senders_running.load(Ordering::Relaxed) > 0 {
                return;
            }
            let (Some(drain), Some(received)) = (drain, &received_total) else {
                return;
            };
            let deadline = *drain_deadline.get_or_insert(elapsed + drain);
            // Every ACKed message has arrived (or the drain time is over): the run is done.
            if received.load(Ordering::Relaxed) >= totals.acked || elapsed >= deadline {
                stop.store(true, Ordering::Relaxed);
            }
        },
    )?;
    join(handles)?;
    report_send(&collected, load, output, e2e.is_some())
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

fn report_send(
    c: &Collected,
    load: &LoadArgs,
    output: &OutputArgs,
    e2e: bool,
) -> Result<(), LoadgenError> {
    let mut report = SendReport::new(&c.counters, &c.hist, c.elapsed.as_secs_f64());
    if e2e {
        let merged = e2e::merge(&c.tracks);
        report.lost = merged.lost;
        report.duplicates += merged.cross_thread_duplicates;
    }
    let label = if e2e { "e2e latency" } else { "ack latency" };
    if let Some(path) = &load.plot {
        let title = format!(
            "hie-loadgen {}: {} msg/s, {} connections",
            label,
            report.rate_per_s.round(),
            load.connections
        );
        plot::write_svg(path, &c.hist, &title)?;
    }
    if output.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("report serializes")
        );
    } else {
        print!("{}", report.table(label));
    }
    Ok(())
}

fn run_sink(args: &cli::SinkArgs) -> Result<(), LoadgenError> {
    let placements = runner::placements(args.threads.cpus.as_deref(), args.threads.threads)?;
    let thread_count = placements.len();
    let addr = sink::pick_port(cli::resolve(
        &args.listen,
        "--listen",
        args.output.allow_remote,
    )?)?;
    let plan = Arc::new(SinkPlan {
        listen: addr,
        behaviour: behaviour_of(&args.behaviour)?,
        received_total: Arc::new(AtomicU64::new(0)),
        order: None,
    });
    let stop = stop_flag()?;
    let (tx, rx) = runner::channel_pair();
    let start = Instant::now();
    let work = {
        let plan = plan.clone();
        move |ctx| sink::run_thread(ctx, plan.clone())
    };
    let handles = runner::spawn_threads(
        placements,
        Duration::from_micros(args.threads.spin_us),
        start,
        stop.clone(),
        tx,
        work,
    )?;
    eprintln!("hie-loadgen: sink listening on {addr}");
    let (duration, messages) = (args.duration, args.messages);
    let collected = runner::collect(
        rx,
        CollectOpts {
            threads: thread_count,
            start,
            hist_log: None,
            sink_progress: true,
        },
        |elapsed, _| {
            let received = plan.received_total.load(Ordering::Relaxed);
            if duration.is_some_and(|d| elapsed >= d) || messages.is_some_and(|m| received >= m) {
                stop.store(true, Ordering::Relaxed);
            }
        },
    )?;
    join(handles)?;
    let report = SinkReport::new(&collected.counters, collected.elapsed.as_secs_f64());
    if args.output.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("report serializes")
        );
    } else {
        print!("{}", report.table());
    }
    Ok(())
}
