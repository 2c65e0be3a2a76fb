//! `hie run CONFIG`: runs a production (IRIS `.cls`/`.xml` or hie TOML) until SIGTERM or
//! SIGINT, then shuts it down in order.
//!
//! Once every service listens it prints one line per service to stdout
//! (`listening ITEM ADDRESS`; none for a service an operator disabled, see
//! [`hie_core::engine::overrides`]) and then `ready`, so scripts and tests know when to send.
//! Logs go to stderr (`RUST_LOG` or `--log` sets the filter; default `info`), as text or,
//! with `--log-format json`, one JSON object per line.
//!
//! The admin HTTP API (see [`crate::admin`]; `hie ctl` is its client) is bound before
//! the production starts, at `--admin ADDR`, the production's `admin_address` or
//! 127.0.0.1:9090 (`--admin none`: off); its address is printed (`admin ADDR`) before
//! `ready`. Exit status: 0 after a clean shutdown, 1 when the production is invalid,
//! fails to start (the admin port taken included) or stops with errors, 2 when the file
//! cannot be read.
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
use hie_core::engine::options::{self, EngineOverrides, OptionsError};
use hie_core::engine::{EngineOptions, RunningEngine};

use crate::admin::prometheus::RunFacts;
use crate::admin::{self, AdminServer, Phase, api::Api};
use crate::alerts::{self, ALERT_CHECK_INTERVAL, Alerts};
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
    /// Data directory (WAL per shard, admin address). Default: the production's
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
    /// Log format: `human` (default) or `json` (one object per line, for log shippers).
    #[arg(long, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    /// The admin HTTP API's address (ip:port; port 0: any free port), or `none`.
    /// Default: the production's engine.admin_address, else 127.0.0.1:9090.
    #[arg(long)]
    pub admin: Option<String>,
    /// A file holding the bearer token the admin API requires (all but /health/*).
    /// Default: the production's engine.admin_token_file, else no token.
    #[arg(long)]
    pub admin_token_file: Option<PathBuf>,
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

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One line of text per event.
    #[default]
    Human,
    /// One JSON object per line (`timestamp`, `level`, `target`, `message` and the event's
    /// fields, e.g. `alert` and `item` of an alert), for log shippers.
    Json,
}

/// Installs the stderr logger once.
pub fn init_logging(filter: Option<&str>, format: LogFormat) {
    let filter = filter
        .map(str::to_string)
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".to_string());
    // A log line that cannot be written (stderr on a full disk) is lost, not a panic of
    // the thread logging it: tracing-subscriber reports its write errors with
    // `eprintln!`, which panics when stderr fails, and took a shard down with it.
    let builder = tracing_subscriber::fmt()
        .log_internal_errors(false)
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter));
    let _ = match format {
        LogFormat::Human => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
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
    init_logging(args.engine.log.as_deref(), args.engine.log_format);
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
    let started = std::time::Instant::now();
    let bad_alerts = alerts::check(production);
    if !bad_alerts.is_empty() {
        for d in &bad_alerts {
            eprintln!(
                "hie: {}:{}: {}: {}",
                d.file.display(),
                d.line,
                d.item.as_deref().unwrap_or(""),
                d.message
            );
        }
        return ExitCode::from(1);
    }
    let admin = match start_admin(production, args) {
        Ok(admin) => admin,
        Err(e) => {
            eprintln!("hie: {e}");
            return ExitCode::from(1);
        }
    };
    let mut engine = match RunningEngine::start(production, options) {
        Ok(engine) => engine,
        Err(e) => {
            eprintln!("hie: {e}");
            if let Some(admin) = admin {
                admin.stop();
            }
            return ExitCode::from(1);
        }
    };
    let run_facts = RunFacts {
        started,
        start_duration: started.elapsed(),
        data_dir: data_dir.clone(),
    };
    // The admin address is written and the API answers before `ready`, so a `hie ctl`
    // sent on `ready` answers.
    let api = Api::new(
        run_facts,
        Alerts::new(production, std::time::Instant::now()),
        engine.reader(),
    );
    if let Some(admin) = &admin {
        admin.serve_reads(api.reads());
        let path = data_dir.join(admin::ADMIN_ADDRESS_FILE);
        if let Err(e) = std::fs::write(&path, format!("{}\n", admin.address)) {
            tracing::warn!(
                "cannot write {}: {e} (hie ctl needs --addr)",
                path.display()
            );
        }
        admin.set_phase(Phase::Running);
    }
    print_ready(&engine, admin.as_ref());
    let died = serve(&mut engine, admin.as_ref(), signals, api);
    tracing::info!("shutting down");
    if let Some(admin) = &admin {
        admin.set_phase(Phase::Stopping);
        let _ = std::fs::remove_file(data_dir.join(admin::ADMIN_ADDRESS_FILE));
    }
    let exits = engine.shutdown();
    if let Some(admin) = admin {
        admin.stop();
    }
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

/// Starts the admin API unless it is turned off.
fn start_admin(production: &Production, args: &EngineArgs) -> Result<Option<AdminServer>, String> {
    let settings = admin::settings(
        production,
        args.admin.as_deref(),
        args.admin_token_file.as_deref(),
    )?;
    settings.map(|s| AdminServer::start(&s)).transpose()
}

/// Serves signals, a shard's end, the allocator's purge, the alert checks and the admin
/// API's requests until a signal, a stop request or a shard's end; true when a shard died.
fn serve(
    engine: &mut RunningEngine,
    admin: Option<&AdminServer>,
    signals: Receiver<i32>,
    mut api: Api,
) -> bool {
    let purge = crossbeam_channel::tick(FREED_MEMORY_PURGE_INTERVAL);
    let never = crossbeam_channel::never();
    let requests = admin.map_or(&never, AdminServer::requests);
    let alert_checks = if api.alerts_mut().is_empty() {
        crossbeam_channel::never()
    } else {
        crossbeam_channel::tick(ALERT_CHECK_INTERVAL)
    };
    loop {
        crossbeam_channel::select! {
            recv(signals) -> _ => return false,
            recv(engine.ended()) -> shard => {
                if let Ok(shard) = shard {
                    let why = engine.shard_ended(shard);
                    tracing::error!(
                        shard,
                        "shard {shard} ended unexpectedly ({why}); stopping the other shards \
                         and exiting with status 1 (the WAL keeps every acknowledged message)"
                    );
                    return true;
                }
                return false;
            }
            recv(purge) -> _ => purge_freed_memory(),
            recv(alert_checks) -> _ => api.alerts_mut().check(engine),
            recv(requests) -> request => {
                if let Ok((request, reply)) = request {
                    let (answer, stop) = api.answer(engine, request);
                    let _ = reply.send(answer);
                    if stop {
                        tracing::info!("stop requested through the admin API");
                        return false;
                    }
                }
            }
        }
    }
}

fn print_ready(engine: &RunningEngine, admin: Option<&AdminServer>) {
    let mut out = std::io::stdout().lock();
    if let Some(admin) = admin {
        let _ = writeln!(out, "admin {}", admin.address);
    }
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
