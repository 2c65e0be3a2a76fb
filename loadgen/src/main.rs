//! `hie-loadgen`: capacity testing for MLLP (HL7 v2) engines; the command line over the
//! [`hie_loadgen`] library.
//!
//! ```text
//! hie-loadgen sink --listen 127.0.0.1:2576 --cpus 1
//! hie-loadgen send --to 127.0.0.1:2575 -c 8 --duration 10s --template adt-a01 --size 300
//! hie-loadgen e2e  --to 127.0.0.1:2575 --sink-listen 127.0.0.1:2576 --rate 5000 --duration 30s
//! hie-loadgen send --to 127.0.0.1:2575 -c 4 --rate 500 --duration 20s --flood 4096 --flood-kind slowloris --flood-sources 16
//! ```
//!
//! Thread per core on glommio: `--cpus 0,1` pins one executor per CPU, `--threads N` runs
//! N unpinned. The exit status is 0 when the run completed (whatever it measured), 2 on a
//! usage or setup error. SIGINT and SIGTERM end a run early, with its report.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use clap::Parser;
use hie_loadgen::cli::{self, BehaviourArgs, Cli, Command, LoadArgs, OutputArgs, ThreadArgs};
use hie_loadgen::{
    Behaviour, E2eOptions, Executors, LoadgenError, SendOptions, SinkOptions, Source, TemplateKind,
};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Send(args) => send(&args.load, &args.threads, &args.output),
        Command::E2e(args) => e2e(&args),
        Command::Sink(args) => sink(&args),
    };
    if let Err(e) = result {
        eprintln!("hie-loadgen: {e}");
        std::process::exit(2);
    }
}

/// A flag set by SIGINT and SIGTERM.
fn signal_flag() -> Result<Arc<AtomicBool>, LoadgenError> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone()).map_err(|e| LoadgenError::BadOption {
            option: "signals",
            reason: format!("cannot install the SIGINT/SIGTERM handler: {e}"),
        })?;
    }
    Ok(stop)
}

fn executors(t: &ThreadArgs) -> Result<Executors, LoadgenError> {
    Ok(Executors {
        cpus: t.cpus.as_deref().map(cli::parse_cpus).transpose()?,
        threads: t.threads,
        spin: Duration::from_micros(t.spin_us),
        busy_poll: Duration::from_micros(t.busy_poll_us),
    })
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

fn behaviour_of(b: &BehaviourArgs) -> Behaviour {
    Behaviour {
        ae_rate: b.ae_rate,
        ar_rate: b.ar_rate,
        delay: b.delay.or(b.delay_max.map(|_| Duration::ZERO)),
        delay_max: b.delay_max,
        drop_rate: b.drop_rate,
        no_ack: b.no_ack,
        save_dir: b.save_dir.clone(),
    }
}

fn send_options(
    load: &LoadArgs,
    threads: &ThreadArgs,
    output: &OutputArgs,
) -> Result<SendOptions, LoadgenError> {
    Ok(SendOptions {
        to: cli::resolve(&load.to, "--to", output.allow_remote)?,
        connections: load.connections,
        duration: load.duration,
        messages: load.messages,
        rate: load.rate,
        max_in_flight: load.max_in_flight,
        warmup: load.warmup,
        timeout: load.timeout,
        source: source_of(load),
        patients: load.patients,
        executors: executors(threads)?,
        hist: load.hist.clone(),
        plot: load.plot.clone(),
        progress: std::io::stdout().is_terminal(),
        allow_remote: output.allow_remote,
        stop: Some(signal_flag()?),
        flood: load.flood.options(),
    })
}

fn print_report(report: &hie_loadgen::Report, json: bool) {
    if json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_table());
    }
}

fn send(load: &LoadArgs, threads: &ThreadArgs, output: &OutputArgs) -> Result<(), LoadgenError> {
    let report = hie_loadgen::run_send(send_options(load, threads, output)?)?;
    print_report(&report, output.json);
    Ok(())
}

fn e2e(args: &cli::E2eArgs) -> Result<(), LoadgenError> {
    let send = send_options(&args.load, &args.threads, &args.output)?;
    let sink_listen = cli::resolve(&args.sink_listen, "--sink-listen", args.output.allow_remote)?;
    let report = hie_loadgen::run_e2e(E2eOptions {
        send,
        sink_listen,
        behaviour: behaviour_of(&args.behaviour),
        drain: args.drain,
    })?;
    print_report(&report, args.output.json);
    Ok(())
}

fn sink(args: &cli::SinkArgs) -> Result<(), LoadgenError> {
    let handle = hie_loadgen::run_sink(SinkOptions {
        listen: cli::resolve(&args.listen, "--listen", args.output.allow_remote)?,
        behaviour: behaviour_of(&args.behaviour),
        executors: executors(&args.threads)?,
        duration: args.duration,
        messages: args.messages,
        progress: std::io::stdout().is_terminal(),
        allow_remote: args.output.allow_remote,
        stop: Some(signal_flag()?),
    })?;
    eprintln!("hie-loadgen: sink listening on {}", handle.addr());
    let report = handle.join()?;
    if args.output.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_table());
    }
    Ok(())
}
