//! `hie ctl`: a client of the admin HTTP API of a running `hie run` (see
//! [`crate::admin`]); one control plane.
//!
//! Where: `--addr ADDR`, else the address `hie run` wrote in `DATA_DIR/admin.address`
//! (`--data-dir`, default `data`), else 127.0.0.1:9090. `--token-file FILE` sends the
//! bearer token the engine requires.
//!
//! - `status`: a table of every item (state and counters summed over its shards) and the
//!   held-message counts; `--json` prints the API's JSON (`GET /status`).
//! - `metrics`: the Prometheus text (`GET /metrics`).
//! - `enable|disable|restart|pause|resume ITEM`: ITEM is one argument, so a name with
//!   spaces is quoted as the shell quotes it (`hie ctl disable "Main ADT Router"`).
//! - `held` (or `suspended`): the failed and suspended messages (id, item, kind, time,
//!   MSH-9, MSH-10, reason); `show ID` prints a held message (then, one a line, what routers' rules decided for it); `resend ID` and
//!   `discard ID` act on it (`--item ITEM` when it is held at several items).
//! - `histograms [ITEM]`: latency percentiles per item and stage, merged over the
//!   shards (see [`hie_core::engine::metrics`]).
//! - `stop`: stops the production (as SIGTERM does).
//!
//! Exit status: 0 when the engine answered and did what was asked, 1 when it refused the
//! request, 2 when no engine answers at that address.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use hyper::Method;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

use crate::admin::client::{self, ClientError};
use crate::admin::{ADMIN_ADDRESS_DEFAULT, ADMIN_ADDRESS_FILE};
use hie_core::engine::metrics::LatencyReport;

/// How long `hie ctl` waits for an answer (a resend reads the WAL and writes to it).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(90);

#[derive(Debug, Args)]
pub struct CtlArgs {
    /// The data directory of the running production (where `hie run` writes its admin
    /// address).
    #[arg(long, default_value = "data", global = true)]
    pub data_dir: PathBuf,
    /// The admin API's address (ip:port). Default: the one in DATA_DIR/admin.address,
    /// else 127.0.0.1:9090.
    #[arg(long, global = true)]
    pub addr: Option<String>,
    /// A file holding the bearer token the admin API requires.
    #[arg(long, global = true)]
    pub token_file: Option<PathBuf>,
    /// Print the engine's JSON answer instead of a table or text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: CtlCommand,
}

#[derive(Debug, Subcommand)]
pub enum CtlCommand {
    /// Every item's state and counters, and the held-message counts.
    Status,
    /// The Prometheus metrics.
    Metrics,
    /// Start a disabled item (kept across restarts).
    Enable { item: String },
    /// Stop an item; its queue keeps its messages (kept across restarts).
    Disable { item: String },
    /// Stop and start an item again.
    Restart { item: String },
    /// Stop taking work, keeping connections and queues.
    Pause { item: String },
    /// Undo pause.
    Resume { item: String },
    /// The failed and suspended messages.
    #[command(visible_alias = "suspended")]
    Held,
    /// Print a held message and what routers' rules decided for it.
    Show { id: String },
    /// Deliver a held message again to the item where it is held.
    Resend {
        id: String,
        /// The item, when the message is held at several.
        #[arg(long)]
        item: Option<String>,
    },
    /// Take a held message off its list for good (recorded as discarded).
    Discard {
        id: String,
        /// The item, when the message is held at several.
        #[arg(long)]
        item: Option<String>,
    },
    /// Latency percentiles (µs) per item and stage, merged over the shards.
    Histograms {
        /// Only this item.
        #[arg(conflicts_with = "item_flag")]
        item: Option<String>,
        /// Only this item (as the positional argument).
        #[arg(long = "item", id = "item_flag")]
        item_flag: Option<String>,
    },
    /// Stop the production (as SIGTERM does).
    Stop,
}

/// `s` as one path segment or query value.
fn encoded(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

impl CtlCommand {
    /// The API request: method and path (with its query).
    fn request(&self) -> (Method, String) {
        let item = |name: &str, command: &str| {
            (Method::POST, format!("/items/{}/{command}", encoded(name)))
        };
        let at = |item: &Option<String>| {
            item.as_deref()
                .map_or(String::new(), |i| format!("?item={}", encoded(i)))
        };
        match self {
            CtlCommand::Status => (Method::GET, "/status".into()),
            CtlCommand::Metrics => (Method::GET, "/metrics".into()),
            CtlCommand::Enable { item: i } => item(i, "enable"),
            CtlCommand::Disable { item: i } => item(i, "disable"),
            CtlCommand::Restart { item: i } => item(i, "restart"),
            CtlCommand::Pause { item: i } => item(i, "pause"),
            CtlCommand::Resume { item: i } => item(i, "resume"),
            CtlCommand::Held => (Method::GET, "/held".into()),
            CtlCommand::Show { id } => (Method::GET, format!("/held/{}", encoded(id))),
            CtlCommand::Resend { id, item } => (
                Method::POST,
                format!("/held/{}/resend{}", encoded(id), at(item)),
            ),
            CtlCommand::Discard { id, item } => (
                Method::POST,
                format!("/held/{}/discard{}", encoded(id), at(item)),
            ),
            CtlCommand::Histograms { item, item_flag } => (
                Method::GET,
                format!("/histograms{}", at(&item.clone().or(item_flag.clone()))),
            ),
            CtlCommand::Stop => (Method::POST, "/production/stop".into()),
        }
    }
}

/// The address to ask: `--addr`, else the data directory's file, else the default.
fn address(args: &CtlArgs) -> String {
    if let Some(addr) = &args.addr {
        return addr.clone();
    }
    std::fs::read_to_string(args.data_dir.join(ADMIN_ADDRESS_FILE))
        .ok()
        .map(|text| text.trim().to_string())
        .filter(|text| !text.is_empty())
        .unwrap_or_else(|| ADMIN_ADDRESS_DEFAULT.to_string())
}

pub fn run(args: CtlArgs) -> ExitCode {
    let token = match args.token_file.as_deref().map(crate::admin::read_token) {
        None => None,
        Some(Ok(token)) => Some(token),
        Some(Err(e)) => {
            eprintln!("hie ctl: {e}");
            return ExitCode::from(2);
        }
    };
    let address = address(&args);
    let (method, path) = args.command.request();
    let (status, body) =
        match client::request(&address, method, &path, token.as_deref(), ANSWER_TIMEOUT) {
            Ok(answer) => answer,
            Err(ClientError::Connect(e)) => {
                eprintln!("hie ctl: no engine answers at {address}: {e}");
                return ExitCode::from(2);
            }
            Err(ClientError::Exchange(e)) => {
                eprintln!("hie ctl: the engine at {address} did not answer: {e}");
                return ExitCode::from(2);
            }
        };
    if matches!(args.command, CtlCommand::Metrics) && status.is_success() {
        print!("{body}");
        return ExitCode::SUCCESS;
    }
    let value: Value = match serde_json::from_str(&body) {
        Ok(value) => value,
        Err(e) => {
            eprintln!("hie ctl: the engine's answer ({status}) is not JSON ({e}): {body}");
            return ExitCode::from(1);
        }
    };
    if !status.is_success() {
        if args.json {
            println!("{body}");
        }
        let error = value["error"].as_str().unwrap_or("refused");
        eprintln!("hie ctl: {error} ({status})");
        return ExitCode::from(1);
    }
    if args.json {
        println!("{body}");
    } else {
        print!("{}", human(&args.command, &value));
    }
    ExitCode::SUCCESS
}

/// The answer as text for a person.
fn human(command: &CtlCommand, value: &Value) -> String {
    match command {
        CtlCommand::Status => status_table(value),
        CtlCommand::Held => held_table(value["held"].as_array().map_or(&[][..], Vec::as_slice)),
        CtlCommand::Histograms { .. } => serde_json::from_value::<LatencyReport>(value.clone())
            .map_or_else(
                |e| format!("unexpected answer ({e}): {value}\n"),
                |r| r.table(),
            ),
        CtlCommand::Show { .. } => {
            let message = value["message"].as_str().unwrap_or_default();
            let mut text = message.replace('\r', "\n");
            if !text.ends_with('\n') {
                text.push('\n');
            }
            for rule in value["rules"].as_array().into_iter().flatten() {
                text.push_str("routed by ");
                text.push_str(rule["text"].as_str().unwrap_or_default());
                text.push('\n');
            }
            text
        }
        CtlCommand::Stop => format!("stopping {}\n", value["production"]),
        _ => {
            let what = value["command"].as_str().unwrap_or("done");
            let whom = value["item"].as_str().unwrap_or_default();
            match (value["message_id"].as_str(), value["state"].as_str()) {
                (Some(id), _) => format!("{what}: message {id} at {whom:?}\n"),
                (None, Some(state)) => format!("{what}: {whom:?} is {state}\n"),
                (None, None) => format!("{what}: {whom:?}\n"),
            }
        }
    }
}

/// Lays out `rows` (the first is the header) in left-aligned columns.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == columns {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  ", width = widths[c]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

const STATUS_COUNTERS: [&str; 8] = [
    "queued",
    "received",
    "completed",
    "failed",
    "suspended",
    "discarded",
    "retries",
    "restarts",
];

/// One row per item, its counters summed over its shards and its states joined (a state
/// marked `(waiting for the WAL)` while the item waits for an unavailable WAL), then a
/// line per shard whose WAL is unavailable.
fn status_table(value: &Value) -> String {
    let mut items: BTreeMap<String, (Vec<String>, [u64; STATUS_COUNTERS.len()])> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let (mut failed, mut suspended, mut unlisted) = (0, 0, 0);
    let shards = value["shards"].as_array().map_or(&[][..], Vec::as_slice);
    for shard in shards {
        failed += shard["held"]["failed"].as_u64().unwrap_or(0);
        suspended += shard["held"]["suspended"].as_u64().unwrap_or(0);
        unlisted += shard["held"]["unlisted"].as_u64().unwrap_or(0);
        for entry in shard["items"].as_array().map_or(&[][..], Vec::as_slice) {
            let name = entry["item"].as_str().unwrap_or_default().to_string();
            if !items.contains_key(&name) {
                order.push(name.clone());
            }
            let (states, sums) = items.entry(name).or_default();
            let mut state = entry["state"].as_str().unwrap_or("?").to_string();
            if entry["waiting_for_wal"] == true {
                state.push_str("(waiting for the WAL)");
            }
            if !states.contains(&state) {
                states.push(state);
            }
            for (sum, key) in sums.iter_mut().zip(STATUS_COUNTERS) {
                *sum += entry[key].as_u64().unwrap_or(0);
            }
        }
    }
    let mut header = vec!["ITEM".to_string(), "STATE".to_string()];
    header.extend(STATUS_COUNTERS.iter().map(|c| c.to_uppercase()));
    let mut rows = vec![header];
    for name in order {
        let (states, sums) = &items[&name];
        let mut row = vec![name.clone(), states.join(",")];
        row.extend(sums.iter().map(u64::to_string));
        rows.push(row);
    }
    let production = value["production"].as_str().unwrap_or_default();
    let mut out = format!("production {production}\n");
    out.push_str(&table(&rows));
    for shard in shards {
        match shard["wal_state"].as_str() {
            None | Some("writable") => {}
            Some(state) => out.push_str(&format!("shard {} WAL {state}\n", shard["shard"])),
        }
    }
    out.push_str(&format!(
        "held: {failed} failed, {suspended} suspended{} (hie ctl held)\n",
        if unlisted > 0 {
            format!(", {unlisted} not listed until a restart")
        } else {
            String::new()
        }
    ));
    out
}

fn held_table(held: &[Value]) -> String {
    if held.is_empty() {
        return "no failed or suspended messages\n".to_string();
    }
    let mut rows = vec![
        ["ID", "ITEM", "KIND", "AT", "TYPE", "CONTROL ID", "REASON"]
            .map(String::from)
            .to_vec(),
    ];
    for entry in held {
        let cell = |key: &str| entry[key].as_str().unwrap_or_default().to_string();
        rows.push(
            [
                "message_id",
                "item",
                "kind",
                "at",
                "message_type",
                "control_id",
                "reason",
            ]
            .map(cell)
            .to_vec(),
        );
    }
    table(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn status_table_sums_an_item_over_its_shards() {
        let status = json!({
            "production": "P",
            "shards": [
                {"shard": 0, "held": {"failed": 1, "suspended": 0, "unlisted": 0},
                 "items": [{"item": "Main ADT Router", "state": "running", "completed": 2, "queued": 1}]},
                {"shard": 1, "held": {"failed": 0, "suspended": 2, "unlisted": 0},
                 "items": [{"item": "Main ADT Router", "state": "disabled", "completed": 3}]}
            ]
        });
        let mut waiting = status.clone();
        waiting["shards"][1]["wal_state"] = json!("unavailable: disk full");
        waiting["shards"][1]["items"][0]["waiting_for_wal"] = json!(true);
        let text = status_table(&waiting);
        assert!(
            text.contains("running,disabled(waiting for the WAL)"),
            "{text}"
        );
        assert!(
            text.contains("shard 1 WAL unavailable: disk full"),
            "{text}"
        );
        let text = status_table(&status);
        let row = text
            .lines()
            .find(|l| l.starts_with("Main ADT Router"))
            .unwrap();
        let cells: Vec<&str> = row["Main ADT Router".len()..].split_whitespace().collect();
        assert_eq!(
            cells,
            ["running,disabled", "1", "0", "5", "0", "0", "0", "0", "0"]
        );
        assert!(text.contains("held: 1 failed, 2 suspended"), "{text}");
    }
}
