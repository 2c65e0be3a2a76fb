//! `hie run CONFIG`: runs a production (IRIS `.cls`/`.xml` or hie TOML) until SIGTERM or
//! SIGINT, then shuts it down in order.
//!
//! Once every service listens it prints one line per service to stdout
//! (`listening ITEM ADDRESS`; none for a service an operator disabled, see
//! [`hie_core::engine::overrides`]) and then `ready`, so scripts and tests know when to send.
//! Logs go to stderr (`RUST_LOG` or `--log` sets the filter; default `info`).
//!
//! While it runs, `DATA_DIR/hie.sock` takes control requests (see `hie ctl` and
//! [`control_server`]): one JSON line in, one JSON line out. Exit status: 0 after a clean shutdown, 1 when the production is
//! invalid, fails to start or stops with errors, 2 when the file cannot be read.
//!
//! A shard thread that ends by itself while the production runs (a bug: a panic in a
//! debug build; release builds abort) is noticed at once: an ERROR names the shard and
//! why, the other shards stop as on SIGTERM (bounded by `--shutdown-timeout`) and hie
//! exits with status 1, for a supervisor to start it again; the WALs keep every
//! acknowledged message and recovery delivers them.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use crossbeam_channel::Receiver;
use hie_core::config::{Production, WalSync};
use hie_core::engine::control::ItemCommand;
use hie_core::engine::operator::HeldRequest;
use hie_core::engine::options::{self, EngineOverrides, OptionsError};
use hie_core::engine::{EngineOptions, RunningEngine};
use hie_core::envelope::ItemId;
use serde_json::json;

use crate::control_server::{self, ControlRequest};

/// The control socket's name inside the data directory.
pub const CONTROL_SOCKET: &str = "hie.sock";
/// How often the main thread lets the allocator return freed memory to the OS.
const FREED_MEMORY_PURGE_INTERVAL: Duration = Duration::from_secs(1);

unsafe extern "C" {
    /// mimalloc's `void mi_collect(bool force)` (linked through the `mimalloc` crate,
    /// whose bindings declare it only with a feature that needs one more crate).
    fn mi_collect(force: bool);
}

/// Lets mimalloc (the binary's allocator) give back memory freed more than its purge
/// delay (1 s) ago. It purges only when some page is freed after that delay; on a quiet
/// process none is, and the read buffers of a burst of large frames would stay resident
/// after their connections closed (issue "Stay up for months", finding 3). Cheap when
/// nothing is due: a clock read and an atomic load.
fn purge_freed_memory() {
    // SAFETY: mi_collect takes no pointer and may be called from any thread at any time;
    // with force = false it only purges what is due and collects this thread's heap.
    unsafe { mi_collect(false) }
}

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
    #[arg(long, default_value_t = options::SHUTDOWN_TIMEOUT_DEFAULT.as_secs())]
    pub shutdown_timeout: u64,
    /// Log filter (tracing syntax, e.g. `info`, `hie_core=debug`). Default: RUST_LOG, else info.
    #[arg(long)]
    pub log: Option<String>,
}

impl EngineArgs {
    /// The engine library's overrides; `Err` says which argument is wrong.
    fn overrides(&self) -> Result<EngineOverrides, String> {
        let sync = match &self.sync {
            Some(text) => Some(WalSync::parse(text).map_err(|e| format!("--sync: {e}"))?),
            None => None,
        };
        Ok(EngineOverrides {
            data_dir: self.data_dir.clone(),
            shards: self.shards.map(usize::from),
            cpus: self.cpus.clone(),
            no_pin: self.no_pin,
            sync,
            shutdown_timeout: Duration::from_secs(self.shutdown_timeout),
        })
    }
}

/// Installs the stderr logger once.
pub fn init_logging(filter: Option<&str>) {
    let filter = filter
        .map(str::to_string)
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".to_string());
    // A log line that cannot be written (stderr on a full disk) is lost, not a panic of
    // the thread logging it: tracing-subscriber reports its write errors with
    // `eprintln!`, which panics when stderr fails, and took a shard down with it.
    let _ = tracing_subscriber::fmt()
        .log_internal_errors(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .try_init();
}

/// The engine options for `production` with the command line's overrides.
fn engine_options(production: &Production, args: &EngineArgs) -> Result<EngineOptions, String> {
    options::engine_options(production, &args.overrides()?).map_err(|e| match e {
        OptionsError::TooFewCpus { cpus, shards } => {
            format!("--cpus lists {cpus} CPUs for {shards} shards")
        }
    })
}

/// Loads a production for running (its problems logged); `Err` is the exit status,
/// after the reason is printed.
pub fn load_production(path: &Path, allow_unknown: bool) -> Result<Production, ExitCode> {
    options::load_production(path, allow_unknown).map_err(|e| {
        eprintln!("hie: {e}");
        ExitCode::from(if e.is_unreadable() { 2 } else { 1 })
    })
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
    let mut engine = match RunningEngine::start(production, options) {
        Ok(engine) => engine,
        Err(e) => {
            eprintln!("hie: {e}");
            return ExitCode::from(1);
        }
    };
    // The control socket is open before `ready`, so a `hie ctl` sent on `ready` answers.
    // Each connection waits for its answer before it sends again: one request each.
    let (requests_tx, requests) =
        crossbeam_channel::bounded(control_server::CONTROL_CONNECTIONS_MAX);
    let socket = data_dir.join(CONTROL_SOCKET);
    if let Err(e) = control_server::serve(&socket, requests_tx) {
        tracing::warn!("no control socket at {}: {e}", socket.display());
    }
    print_ready(&engine);
    let purge = crossbeam_channel::tick(FREED_MEMORY_PURGE_INTERVAL);
    let mut died = false;
    loop {
        crossbeam_channel::select! {
            recv(signals) -> _ => break,
            recv(engine.ended()) -> shard => {
                if let Ok(shard) = shard {
                    let why = engine.shard_ended(shard);
                    tracing::error!(
                        shard,
                        "shard {shard} ended unexpectedly ({why}); stopping the other shards \
                         and exiting with status 1 (the WAL keeps every acknowledged message)"
                    );
                    died = true;
                }
                break;
            }
            recv(purge) -> _ => purge_freed_memory(),
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
    if errors.is_empty() && !died {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn print_ready(engine: &RunningEngine) {
    let mut out = std::io::stdout().lock();
    for item in &engine.plan().items {
        // A service disabled (in the production or by an operator) does not listen until
        // it is enabled.
        if let Some(listen) = item.listen
            && !engine.started_disabled(item.id)
        {
            let _ = writeln!(out, "listening {} {listen}", item.name);
        }
    }
    let _ = writeln!(out, "ready");
    let _ = out.flush();
}

/// SIGTERM and SIGINT as a channel.
fn signal_channel() -> std::io::Result<Receiver<i32>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    let (tx, rx) = crossbeam_channel::bounded(4);
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

/// One control request line (see [`control_server`]); the answer is one JSON line.
fn answer(engine: &RunningEngine, line: &str) -> String {
    let request = match serde_json::from_str::<ControlRequest>(line) {
        Ok(request) => request,
        Err(e) => {
            return control_server::error_line(&format!(
                "expected one JSON request per line, e.g. {{\"command\":\"status\"}}: {e}"
            ));
        }
    };
    let reply = match request {
        ControlRequest::Status => serde_json::to_value(engine.status()).unwrap_or_default(),
        ControlRequest::Held => match engine.held_list() {
            Ok(held) => json!({"ok": true, "held": held}),
            Err(e) => json!({"ok": false, "error": e}),
        },
        ControlRequest::Enable { item } => item_command(engine, &item, ItemCommand::Enable),
        ControlRequest::Disable { item } => item_command(engine, &item, ItemCommand::Disable),
        ControlRequest::Restart { item } => item_command(engine, &item, ItemCommand::Restart),
        ControlRequest::Pause { item } => item_command(engine, &item, ItemCommand::Pause),
        ControlRequest::Resume { item } => item_command(engine, &item, ItemCommand::Resume),
        ControlRequest::Show { id } => {
            held_command(engine, &id, None, |wal_id, _| HeldRequest::Show { wal_id })
        }
        ControlRequest::Resend { id, item } => {
            held_command(engine, &id, item.as_deref(), |wal_id, item| {
                HeldRequest::Resend { wal_id, item }
            })
        }
        ControlRequest::Discard { id, item } => {
            held_command(engine, &id, item.as_deref(), |wal_id, item| {
                HeldRequest::Discard { wal_id, item }
            })
        }
        ControlRequest::Histograms { item } => match engine.histograms(item.as_deref()) {
            Ok(report) => serde_json::to_value(report).unwrap_or_default(),
            Err(e) => json!({"ok": false, "error": e.to_string()}),
        },
    };
    reply.to_string()
}

fn item_command(engine: &RunningEngine, item: &str, command: ItemCommand) -> serde_json::Value {
    match engine.command(item, command) {
        Ok(()) => json!({"ok": true, "item": item, "command": command}),
        Err(e) => json!({"ok": false, "error": e.to_string()}),
    }
}

/// A request about held message `id` (`SHARD:WAL_ID`), optionally at `item`.
fn held_command(
    engine: &RunningEngine,
    id: &str,
    item: Option<&str>,
    request: impl FnOnce(u64, Option<ItemId>) -> HeldRequest,
) -> serde_json::Value {
    let parsed = id
        .split_once(':')
        .and_then(|(shard, wal_id)| Some((shard.parse::<usize>().ok()?, wal_id.parse().ok()?)));
    let Some((shard, wal_id)) = parsed else {
        return json!({"ok": false, "error": format!("{id:?} is not a message id (SHARD:ID, as `hie ctl held` lists them)")});
    };
    let item = match item.map(|name| engine.plan().item_named(name).ok_or(name)) {
        None => None,
        Some(Ok(planned)) => Some(planned.id),
        Some(Err(name)) => return json!({"ok": false, "error": format!("no item named {name:?}")}),
    };
    match engine.held_request(shard, request(wal_id, item)) {
        Ok(mut value) => {
            if let Some(map) = value.as_object_mut() {
                map.entry("ok").or_insert(json!(true));
            }
            value
        }
        Err(e) => json!({"ok": false, "error": e}),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Command {
        #[command(flatten)]
        engine: EngineArgs,
    }

    fn overrides(args: &[&str]) -> Result<EngineOverrides, String> {
        let command = Command::try_parse_from(std::iter::once("hie").chain(args.iter().copied()))
            .expect("arguments parse");
        command.engine.overrides()
    }

    #[test]
    fn arguments_become_the_engine_librarys_overrides() {
        let args = [
            "--data-dir=/d",
            "--shards=2",
            "--cpus=3,5",
            "--sync=interval:10ms",
            "--shutdown-timeout=9",
        ];
        assert_eq!(
            overrides(&args),
            Ok(EngineOverrides {
                data_dir: Some(PathBuf::from("/d")),
                shards: Some(2),
                cpus: Some(vec![3, 5]),
                no_pin: false,
                sync: Some(WalSync::Interval { interval_ms: 10 }),
                shutdown_timeout: Duration::from_secs(9),
            })
        );
        let defaults = overrides(&[]).unwrap();
        assert_eq!(defaults.shutdown_timeout, Duration::from_secs(120));
        assert_eq!((defaults.shards, defaults.sync), (None, None));
        let error = overrides(&["--sync=sometimes"]).unwrap_err();
        assert!(error.starts_with("--sync: "), "{error}");
    }
}
