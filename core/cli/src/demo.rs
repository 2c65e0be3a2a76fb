//! `hie demo`: the whole engine in one command, for a new user.
//!
//! It writes the embedded production (`demo.toml` beside this file: MLLP in → router →
//! MLLP out to a downstream system and to a file operation) into a data directory, starts
//! it on one shard, runs `hie-loadgen`'s end-to-end load against it (sender and downstream
//! system in this process) for a few seconds, prints throughput, latency and what the
//! engine did, and shuts the production down in order.
//!
//! On a machine with two or more CPUs the engine's shard is pinned to CPU 0 and the load
//! generator to CPU 1, so that one does not slow the other; on one CPU neither is pinned.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use hie_loadgen::{E2eOptions, Executors, SendOptions, Source, TemplateKind, run_e2e};

use hie_core::engine::options::{EngineOverrides, engine_options};
use hie_core::engine::{EngineStatus, RunningEngine};

use crate::run::{init_logging, load_production};

/// The demo production, with `@IN_PORT@`, `@SINK_PORT@` and `@OUT_DIR@` to fill in.
const DEMO_PRODUCTION: &str = include_str!("demo.toml");

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Seconds of load.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Sender connections (one message in flight on each).
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// Size of each message (an ADT^A01 padded to this many bytes).
    #[arg(long, default_value_t = 300)]
    pub size: usize,
    /// Port the demo production listens on.
    #[arg(long, default_value_t = 2575)]
    pub port: u16,
    /// Port of the demo's downstream system.
    #[arg(long, default_value_t = 2576)]
    pub sink_port: u16,
    /// Keep the WAL, the production file and the output files here (default: a temporary
    /// directory, removed at the end).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// Removes the demo's temporary directory when the demo ends, however it ends.
struct TempDir(Option<PathBuf>);

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Runs `hie demo`.
pub fn run(args: DemoArgs) -> ExitCode {
    init_logging(Some("warn"), crate::run::LogFormat::Human);
    let (data_dir, _cleanup) = match &args.data_dir {
        Some(dir) => (dir.clone(), TempDir(None)),
        None => {
            let dir = std::env::temp_dir().join(format!("hie-demo-{}", std::process::id()));
            (dir.clone(), TempDir(Some(dir)))
        }
    };
    match demo(&args, &data_dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("hie demo: {message}");
            ExitCode::from(1)
        }
    }
}

fn write_production(args: &DemoArgs, data_dir: &Path) -> Result<PathBuf, String> {
    let out_dir = data_dir.join("out");
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
    let text = DEMO_PRODUCTION
        .replace("@IN_PORT@", &args.port.to_string())
        .replace("@SINK_PORT@", &args.sink_port.to_string())
        .replace("@OUT_DIR@", &out_dir.display().to_string());
    let path = data_dir.join("demo.toml");
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

fn demo(args: &DemoArgs, data_dir: &Path) -> Result<(), String> {
    let path = write_production(args, data_dir)?;
    let production = load_production(&path, false)
        .map_err(|_| format!("the embedded production does not load ({})", path.display()))?;
    let cpus = hie_core::shard::online_cpus();
    let pinned = cpus.len() >= 2;
    let overrides = EngineOverrides::single_shard(data_dir.join("wal"), pinned.then(|| cpus[0]));
    let options = engine_options(&production, &overrides).map_err(|e| e.to_string())?;
    let engine = RunningEngine::start(&production, options).map_err(|e| e.to_string())?;
    println!(
        "hie demo: production {} running on 1 shard{} (definition: {})",
        production.name,
        if pinned { " pinned to CPU 0" } else { "" },
        path.display()
    );
    println!(
        "hie demo: {} s of load, {} connections, {}-byte ADT^A01, fsync before every ACK{}",
        args.seconds,
        args.connections,
        args.size,
        if pinned {
            "; load generator on CPU 1"
        } else {
            ""
        }
    );
    let report = run_e2e(E2eOptions {
        send: SendOptions {
            to: SocketAddr::from(([127, 0, 0, 1], args.port)),
            connections: args.connections.max(1),
            duration: Some(Duration::from_secs(args.seconds.max(1))),
            source: Source::Template {
                kind: TemplateKind::AdtA01,
                obx: 0,
                size_bytes: Some(args.size),
            },
            executors: if pinned {
                Executors::pinned(&[cpus[1]])
            } else {
                Executors::default()
            },
            progress: std::io::stdout().is_terminal(),
            ..SendOptions::default()
        },
        sink_listen: SocketAddr::from(([127, 0, 0, 1], args.sink_port)),
        drain: Duration::from_secs(15),
        ..E2eOptions::default()
    });
    let status = engine.status();
    let exits = engine.shutdown();
    let report = report.map_err(|e| format!("load generator: {e}"))?;
    println!("\nend to end (sent to Demo.In, received from Demo.Out):");
    print!("{}", report.to_table());
    println!("\nthe engine:");
    print!("{}", summary(&status));
    let files = std::fs::read_dir(data_dir.join("out")).map_or(0, |d| d.count());
    println!("  output files written by Demo.File: {files}");
    for exit in &exits {
        for error in &exit.errors {
            eprintln!("hie demo: {error}");
        }
    }
    if report.lost > 0 {
        return Err(format!(
            "{} acknowledged messages did not arrive",
            report.lost
        ));
    }
    Ok(())
}

/// One line per item: what it took in and what it completed.
fn summary(status: &EngineStatus) -> String {
    let mut out = String::new();
    for shard in &status.shards {
        for item in &shard.items {
            out.push_str(&format!(
                "  {:<12} received {:>9}  processed {:>9}  completed {:>9}  failed {}  suspended {}  queued {}\n",
                item.item,
                item.counters.received,
                item.counters.processed,
                item.counters.completed,
                item.counters.failed,
                item.counters.suspended,
                item.queued
            ));
        }
        out.push_str(&format!(
            "  shard {}: WAL last LSN {}, {} messages still open\n",
            shard.shard, shard.wal_last_lsn, shard.wal_open_messages
        ));
    }
    out
}
