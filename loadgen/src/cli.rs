//! The command line: `send`, `sink` and `e2e` (the first and last with an optional
//! `--flood`), parsed with clap, then checked and turned into plans
//! ([`crate::send::SendPlan`], [`crate::sink::SinkPlan`]).
//!
//! Durations are written `250ms`, `10s`, `2m`, `1h` or a bare number of seconds. CPU
//! lists are `0,2,4-7`. Addresses are `HOST:PORT`; a non-loopback address is refused
//! unless `--allow-remote` is given.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::error::LoadgenError;
use crate::flood::{FloodKind, FloodOptions};
use crate::template::TemplateKind;

/// Capacity testing for MLLP (HL7 v2) engines.
#[derive(Debug, Parser)]
#[command(name = "hie-loadgen", version, about)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Send messages to an MLLP server and check every ACK.
    Send(SendArgs),
    /// Play the downstream system: receive messages and answer them.
    Sink(SinkArgs),
    /// Send to an engine and receive its output: end-to-end latency, loss, duplicates, order.
    E2e(E2eArgs),
}

/// Executor threads.
#[derive(Debug, Clone, Args)]
pub struct ThreadArgs {
    /// Run one executor pinned to each of these CPUs (`0,2,4-7`).
    #[arg(long, conflicts_with = "threads")]
    pub cpus: Option<String>,
    /// Run this many unpinned executors.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Spin this many microseconds looking for work before an executor parks (0: park at
    /// once). Worth it only when each executor has a core of its own.
    #[arg(long, default_value_t = 0)]
    pub spin_us: u64,
    /// Keep a waiting connection in its executor's readiness set until the executor has
    /// seen no traffic for this many microseconds, then park it on the reactor (0: park
    /// at once).
    #[arg(long, default_value_t = crate::run::BUSY_POLL_DEFAULT.as_micros() as u64)]
    pub busy_poll_us: u64,
}

/// Output options shared by every subcommand.
#[derive(Debug, Clone, Args)]
pub struct OutputArgs {
    /// Print the final report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Allow a non-loopback address.
    #[arg(long)]
    pub allow_remote: bool,
}

/// Options of the sending side (`send` and `e2e`).
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// The MLLP server to send to (HOST:PORT).
    #[arg(long)]
    pub to: String,
    /// Connections, spread over the executor threads.
    #[arg(long, short = 'c', default_value_t = 8)]
    pub connections: usize,
    /// Stop after this long (default 10s unless --messages is given).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Stop after this many messages in total.
    #[arg(long)]
    pub messages: Option<u64>,
    /// Open loop: send this many messages per second in total, pipelined, latency
    /// measured from each message's intended send time. Closed loop when absent.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Open loop: most messages awaiting an ACK on one connection.
    #[arg(long, default_value_t = 1024)]
    pub max_in_flight: usize,
    /// Leave out of the latency figures every message whose intended send time falls in
    /// this first part of the run (connections opening, the engine's first segments and
    /// downstream connections). Those messages are still sent, counted and checked.
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    pub warmup: Duration,
    /// How long to wait for an ACK.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    pub timeout: Duration,
    /// Send every message of this file (batch files are split).
    #[arg(long, conflicts_with_all = ["dir", "template"])]
    pub file: Option<PathBuf>,
    /// Send every message of every file of this directory.
    #[arg(long, conflicts_with = "template")]
    pub dir: Option<PathBuf>,
    /// Send a built-in message (the default: adt-a01).
    #[arg(long, value_enum)]
    pub template: Option<TemplateKind>,
    /// OBX segments of the `oru` template.
    #[arg(long, default_value_t = 5)]
    pub obx: usize,
    /// Pad the template to this many bytes.
    #[arg(long)]
    pub size: Option<usize>,
    /// Patient population: PID-3.1 is drawn from P0000000 .. P<patients-1>.
    #[arg(long, default_value_t = 1000)]
    pub patients: u32,
    /// Write the latency histogram here (HdrHistogram interval log).
    #[arg(long)]
    pub hist: Option<PathBuf>,
    /// Draw the latency percentile curve here (SVG).
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// The flood held while the load runs.
    #[command(flatten)]
    pub flood: FloodArgs,
}

/// A flood of connections that never finish a message, opened on `--to` before the load
/// and held until it ends (see `hie_loadgen::flood`).
#[derive(Debug, Clone, Args)]
pub struct FloodArgs {
    /// Open this many flood connections first and hold them while the load runs (0: none).
    #[arg(long, default_value_t = 0)]
    pub flood: usize,
    /// What each flood connection does: say nothing, send one byte of a frame every
    /// --flood-interval, or send --flood-bytes of a frame at once, never ending it.
    #[arg(long, value_enum, default_value_t = FloodKind::Idle)]
    pub flood_kind: FloodKind,
    /// Spread the flood over this many distinct source addresses (at most 65536),
    /// 127.0.0.2 upward through 127.0.0.0/8 (127.0.0.254 is followed by 127.0.1.1); the
    /// legitimate connections come from 127.0.0.1.
    #[arg(long, default_value_t = 1)]
    pub flood_sources: usize,
    /// Slow-loris: time between two bytes.
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    pub flood_interval: Duration,
    /// Partial: bytes of the unfinished frame.
    #[arg(long, default_value_t = 65_536)]
    pub flood_bytes: usize,
    /// Start this many flood connects a second (0: all at once; a burst overflows the
    /// target's accept queue).
    #[arg(long, default_value_t = crate::flood::OPEN_RATE_DEFAULT)]
    pub flood_open_rate: u32,
    /// Wait this long after the flood's last handshake before the load starts (the target
    /// takes or resets the handshakes it had left in its accept queue).
    #[arg(long, value_parser = parse_duration, default_value = "3s")]
    pub flood_settle: Duration,
}

impl FloodArgs {
    /// The flood asked for, if any.
    pub fn options(&self) -> Option<FloodOptions> {
        (self.flood > 0).then_some(FloodOptions {
            connections: self.flood,
            kind: self.flood_kind,
            sources: self.flood_sources,
            interval: self.flood_interval,
            frame_bytes: self.flood_bytes,
            open_rate: self.flood_open_rate,
            settle: self.flood_settle,
        })
    }
}

/// `send`.
#[derive(Debug, Clone, Args)]
pub struct SendArgs {
    /// Load options.
    #[command(flatten)]
    pub load: LoadArgs,
    /// Threads.
    #[command(flatten)]
    pub threads: ThreadArgs,
    /// Output.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// How the sink answers.
#[derive(Debug, Clone, Args)]
pub struct BehaviourArgs {
    /// Answer this fraction of messages with AE (0.0 to 1.0).
    #[arg(long, default_value_t = 0.0)]
    pub ae_rate: f64,
    /// Answer this fraction of messages with AR.
    #[arg(long, default_value_t = 0.0)]
    pub ar_rate: f64,
    /// Wait this long before each ACK.
    #[arg(long, value_parser = parse_duration)]
    pub delay: Option<Duration>,
    /// With --delay: wait a uniformly random time between --delay and this.
    #[arg(long, value_parser = parse_duration)]
    pub delay_max: Option<Duration>,
    /// Close the connection instead of answering this fraction of messages.
    #[arg(long, default_value_t = 0.0)]
    pub drop_rate: f64,
    /// Never answer.
    #[arg(long)]
    pub no_ack: bool,
    /// Save every message received as a file in this directory.
    #[arg(long)]
    pub save_dir: Option<PathBuf>,
}

/// `sink`.
#[derive(Debug, Clone, Args)]
pub struct SinkArgs {
    /// Address to listen on (HOST:PORT; port 0 picks one, printed on stderr).
    #[arg(long)]
    pub listen: String,
    /// How to answer.
    #[command(flatten)]
    pub behaviour: BehaviourArgs,
    /// Stop after this long.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Stop after receiving this many messages.
    #[arg(long)]
    pub messages: Option<u64>,
    /// Threads.
    #[command(flatten)]
    pub threads: ThreadArgs,
    /// Output.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `e2e`.
#[derive(Debug, Clone, Args)]
pub struct E2eArgs {
    /// Load options (`--to` is the engine's inbound port).
    #[command(flatten)]
    pub load: LoadArgs,
    /// Where the engine delivers (HOST:PORT the sink listens on).
    #[arg(long)]
    pub sink_listen: String,
    /// How the sink answers the engine.
    #[command(flatten)]
    pub behaviour: BehaviourArgs,
    /// After sending, wait at most this long for ACKed messages to arrive.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub drain: Duration,
    /// Threads.
    #[command(flatten)]
    pub threads: ThreadArgs,
    /// Output.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Parses `250ms`, `10s`, `2m`, `1h`, `1.5s` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 10s or 250ms"))?;
    let seconds = match unit {
        "" | "s" => value,
        "ms" => value / 1e3,
        "us" | "µs" => value / 1e6,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {text:?} (use ms, s, m or h)"
            ));
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"))
}

/// Parses a CPU list such as `0,2,4-7`.
pub fn parse_cpus(text: &str) -> Result<Vec<usize>, LoadgenError> {
    let bad = |reason: String| LoadgenError::BadOption {
        option: "--cpus",
        reason,
    };
    let mut cpus = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let parse = |s: &str| {
            s.trim()
                .parse::<usize>()
                .map_err(|_| bad(format!("{s:?} is not a CPU number")))
        };
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (parse(a)?, parse(b)?);
                if a > b {
                    return Err(bad(format!("range {part:?} runs backwards")));
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(parse(part)?),
        }
    }
    if cpus.is_empty() {
        return Err(bad("no CPU given".into()));
    }
    Ok(cpus)
}

/// Resolves `HOST:PORT`, refusing a non-loopback address without `allow_remote`.
pub fn resolve(
    text: &str,
    option: &'static str,
    allow_remote: bool,
) -> Result<SocketAddr, LoadgenError> {
    let addr = text
        .to_socket_addrs()
        .map_err(|e| LoadgenError::Resolve {
            host: text.to_string(),
            reason: e.to_string(),
        })?
        .next()
        .ok_or_else(|| LoadgenError::Resolve {
            host: text.to_string(),
            reason: "no address".into(),
        })?;
    let _ = option;
    if !allow_remote && !addr.ip().is_loopback() {
        return Err(LoadgenError::RemoteNotAllowed { addr });
    }
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_every_unit() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn cpu_lists_parse_ranges_and_reject_nonsense() {
        assert_eq!(parse_cpus("0,2,4-6").unwrap(), vec![0, 2, 4, 5, 6]);
        assert!(parse_cpus("3-1").is_err());
        assert!(parse_cpus("a").is_err());
        assert!(parse_cpus("").is_err());
    }

    #[test]
    fn remote_addresses_need_allow_remote() {
        assert!(resolve("127.0.0.1:2575", "--to", false).is_ok());
        let err = resolve("10.1.2.3:2575", "--to", false).unwrap_err();
        assert!(matches!(err, LoadgenError::RemoteNotAllowed { .. }));
        assert!(resolve("10.1.2.3:2575", "--to", true).is_ok());
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
