//! `hie run CONFIG`: runs a production (IRIS `.cls`/`.xml` or hie TOML) until SIGTERM or
//! SIGINT, then shuts it down in order.
//!
//! Once every service listens it prints one line per service to stdout
//! (`listening ITEM ADDRESS`) and then `ready`, so scripts and tests know when to send.
//! Logs go to stderr (`RUST_LOG` or `--log` sets the filter; default `info`).
//!
//! While it runs, `DATA_DIR/hie.sock` takes control requests (see `hie ctl`): one line in,
//! one JSON line out. Exit status: 0 after a clean shutdown, 1 when the production is
//! invalid, fails to start or stops with errors, 2 when the file cannot be read.

use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use crossbeam::channel::{Receiver, Sender};
use hie_persist::{SyncMode, WalConfig};
use serde_json::json;

use crate::config::{self, LoadOptions, Production, WalSync};
use crate::engine::control::ItemCommand;
use crate::engine::plan::Role;
use crate::engine::{EngineOptions, RunningEngine};
use crate::shard::{IO_MEMORY_BYTES_DEFAULT, ShardLayout, online_cpus};

/// The control socket's name inside the data directory.
pub const CONTROL_SOCKET: &str = "hie.sock";

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Production file: .cls class, .xml (IRIS <Export> or bare <Production>) or .toml.
    pub config: PathBuf,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// Settings of the engine that the command line may override.
#[derive(Debug, Clone, Args)]
pub struct EngineArgs {
    /// Data directory (WAL per shard, control socket). Default: the production's
    /// engine.data_dir.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Number of shards. Default: the production's engine.shards, else one per core.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub shards: Option<u16>,
    /// CPUs to pin the shards to, comma-separated (e.g. `0` or `0,1`). Default: CPUs
    /// 0..shards when there are enough, else unpinned.
    #[arg(long, value_delimiter = ',')]
    pub cpus: Option<Vec<usize>>,
    /// Do not pin shards to CPUs.
    #[arg(long)]
    pub no_pin: bool,
    /// WAL durability: `fsync` (default), `interval:MS` or `none`. Overrides the production.
    #[arg(long)]
    pub sync: Option<String>,
    /// Load items of classes hie does not run (disabled) instead of refusing the production.
    #[arg(long)]
    pub allow_unknown: bool,
    /// Seconds shutdown waits for queues to drain (IRIS ShutdownTimeout). Default 120.
    #[arg(long, default_value_t = 120)]
    pub shutdown_timeout: u64,
    /// Log filter (tracing syntax, e.g. `info`, `hie_core=debug`). Default: RUST_LOG, else info.
    #[arg(long)]
    pub log: Option<String>,
}

impl EngineArgs {
    /// One shard, pinned to `cpu` (unpinned when `None`), WAL in `data_dir`, the
    /// production's sync mode: how `hie demo` and the engine benchmark run.
    pub fn single_shard(data_dir: PathBuf, cpu: Option<usize>) -> EngineArgs {
        EngineArgs {
            data_dir: Some(data_dir),
            shards: Some(1),
            cpus: cpu.map(|c| vec![c]),
            no_pin: cpu.is_none(),
            sync: None,
            allow_unknown: false,
            shutdown_timeout: 30,
            log: None,
        }
    }
}

/// Installs the stderr logger once.
pub fn init_logging(filter: Option<&str>) {
    let filter = filter
        .map(str::to_string)
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".to_string());
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .try_init();
}

fn wal_sync(sync: WalSync) -> SyncMode {
    match sync {
        WalSync::Fsync => SyncMode::Fsync,
        WalSync::Interval { interval_ms } => SyncMode::Interval {
            interval_ms: u64::from(interval_ms),
        },
        WalSync::None => SyncMode::None,
    }
}

/// The engine options for `production` with the command line's overrides.
pub fn engine_options(production: &Production, args: &EngineArgs) -> Result<EngineOptions, String> {
    let engine = &production.engine;
    let shards = args
        .shards
        .map(usize::from)
        .or(engine.shards)
        .unwrap_or_else(|| online_cpus().len());
    let cpus = if args.no_pin {
        None
    } else if let Some(cpus) = &args.cpus {
        if cpus.len() < shards {
            return Err(format!(
                "--cpus lists {} CPUs for {shards} shards",
                cpus.len()
            ));
        }
        Some(cpus.clone())
    } else {
        let online = online_cpus();
        (online.len() >= shards).then(|| online[..shards].to_vec())
    };
    let sync = match &args.sync {
        Some(text) => WalSync::parse(text).map_err(|e| format!("--sync: {e}"))?,
        None => engine.wal_sync,
    };
    let wal = WalConfig::default()
        .with_segment_bytes(engine.wal_segment_bytes)
        .with_sync(wal_sync(sync));
    Ok(EngineOptions {
        data_dir: args
            .data_dir
            .clone()
            .unwrap_or_else(|| engine.data_dir.clone()),
        layout: ShardLayout {
            shards,
            cpus,
            io_memory_bytes: IO_MEMORY_BYTES_DEFAULT,
        },
        wal,
        shutdown_timeout: Duration::from_secs(args.shutdown_timeout),
        start_timeout: Duration::from_secs(120),
    })
}

/// Loads a production for running, printing its problems; `Err` is the exit status.
pub fn load_production(path: &Path, allow_unknown: bool) -> Result<Production, ExitCode> {
    let opts = LoadOptions {
        allow_unknown,
        strict: false,
    };
    match config::load(path, &opts) {
        Ok(loaded) => {
            for warning in &loaded.warnings {
                tracing::warn!("{warning}");
            }
            for unknown in &loaded.unknown_classes {
                tracing::warn!(item = %unknown.item, "class {} is not run by hie; item disabled", unknown.class);
            }
            // Those set to other than their IRIS default are among the warnings above.
            for unsupported in loaded.unsupported_settings.iter().filter(|u| u.at_default) {
                tracing::debug!(item = %unsupported.item, "setting {} is not supported; at its IRIS default, ignoring it changes nothing", unsupported.setting);
            }
            Ok(loaded.production)
        }
        Err(e) => {
            eprintln!("hie: {e}");
            Err(ExitCode::from(if e.is_unreadable() { 2 } else { 1 }))
        }
    }
}

/// Runs `hie run`.
pub fn run(args: RunArgs) -> ExitCode {
    init_logging(args.engine.log.as_deref());
    let production = match load_production(&args.config, args.engine.allow_unknown) {
        Ok(production) => production,
        Err(code) => return code,
    };
    run_production(&production, &args.engine)
}

/// Starts `production`, prints its listening addresses and `ready`, then serves control
/// requests until a signal, and shuts down.
pub fn run_production(production: &Production, args: &EngineArgs) -> ExitCode {
    let options = match engine_options(production, args) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("hie: {e}");
            return ExitCode::from(1);
        }
    };
    let data_dir = options.data_dir.clone();
    let signals = match signal_channel() {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("hie: cannot install signal handlers: {e}");
            return ExitCode::from(1);
        }
    };
    let engine = match RunningEngine::start(production, options) {
        Ok(engine) => engine,
        Err(e) => {
            eprintln!("hie: {e}");
            return ExitCode::from(1);
        }
    };
    // The control socket is open before `ready`, so a `hie ctl` sent on `ready` answers.
    let (requests_tx, requests) = crossbeam::channel::unbounded();
    let socket = data_dir.join(CONTROL_SOCKET);
    if let Err(e) = serve_control(&socket, requests_tx) {
        tracing::warn!("no control socket at {}: {e}", socket.display());
    }
    print_ready(&engine);
    loop {
        crossbeam::channel::select! {
            recv(signals) -> _ => break,
            recv(requests) -> request => {
                if let Ok((line, reply)) = request {
                    let _ = reply.send(answer(&engine, &line));
                }
            }
        }
    }
    tracing::info!("shutting down");
    let _ = std::fs::remove_file(&socket);
    let exits = engine.shutdown();
    let left: usize = exits.iter().map(|e| e.left_queued).sum();
    let errors: Vec<&String> = exits.iter().flat_map(|e| &e.errors).collect();
    if left > 0 {
        tracing::warn!(
            "{left} message(s) were still queued; they are kept in the WAL for the next start"
        );
    }
    for error in &errors {
        eprintln!("hie: {error}");
    }
    tracing::info!("stopped");
    if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn print_ready(engine: &RunningEngine) {
    let mut out = std::io::stdout().lock();
    for item in &engine.plan().items {
        if let Role::TcpService(plan) = &item.role {
            let _ = writeln!(out, "listening {} {}", item.name, plan.listen);
        }
    }
    let _ = writeln!(out, "ready");
    let _ = out.flush();
}

/// SIGTERM and SIGINT as a channel.
fn signal_channel() -> std::io::Result<Receiver<i32>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    let (tx, rx) = crossbeam::channel::bounded(4);
    std::thread::Builder::new()
        .name("hie-signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                if tx.send(signal).is_err() {
                    return;
                }
            }
        })?;
    Ok(rx)
}

type Request = (String, Sender<String>);

/// Accepts control connections on `socket`; each request line goes to the main thread.
fn serve_control(socket: &Path, requests: Sender<Request>) -> std::io::Result<()> {
    let _ = std::fs::remove_file(socket);
    let listener = UnixListener::bind(socket)?;
    std::thread::Builder::new()
        .name("hie-control".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                let requests = requests.clone();
                let _ = std::thread::Builder::new()
                    .name("hie-control-conn".into())
                    .spawn(move || serve_control_connection(stream, &requests));
            }
        })?;
    Ok(())
}

fn serve_control_connection(stream: UnixStream, requests: &Sender<Request>) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else { return };
        let (reply_tx, reply_rx) = crossbeam::channel::bounded(1);
        if requests.send((line, reply_tx)).is_err() {
            return;
        }
        let Ok(reply) = reply_rx.recv() else { return };
        if writeln!(writer, "{reply}").is_err() {
            return;
        }
    }
}

/// One control request: `status`, or `COMMAND ITEM` (enable, disable, restart, pause,
/// resume). The answer is one JSON line.
fn answer(engine: &RunningEngine, line: &str) -> String {
    let mut words = line.split_whitespace();
    let reply = match (words.next(), words.next()) {
        (Some("status"), None) => serde_json::to_value(engine.status()).unwrap_or_default(),
        (Some(word), Some(item)) => match ItemCommand::parse(word) {
            Some(command) => match engine.command(item, command) {
                Ok(()) => json!({"ok": true, "item": item, "command": word}),
                Err(e) => json!({"ok": false, "error": e.to_string()}),
            },
            None => json!({"ok": false, "error": format!("unknown command {word:?}")}),
        },
        _ => json!({"ok": false, "error": "expected `status` or `COMMAND ITEM`"}),
    };
    reply.to_string()
}
