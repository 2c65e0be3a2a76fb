//! `hie ctl`: talks to a running `hie run` through its control socket
//! (`DATA_DIR/hie.sock`, JSON lines; see [`crate::control_server`]).
//!
//! - `status`: a table of every item (state and counters summed over its shards) and the
//!   held-message counts; `--json` prints the engine's JSON (per shard).
//! - `enable|disable|restart|pause|resume ITEM`: ITEM is one argument, so a name with
//!   spaces is quoted as the shell quotes it (`hie ctl disable "Main ADT Router"`).
//! - `held`: the failed and suspended messages (id, item, kind, time, MSH-9, MSH-10,
//!   reason); `show ID` prints a held message; `resend ID` and `discard ID` act on it
//!   (`--item ITEM` when it is held at several items).
//! - `histograms [--item ITEM]`: latency percentiles per item and stage, merged over the
//!   shards (see [`hie_core::engine::metrics`]).
//!
//! Exit status: 0 when the engine answered and did what was asked, 1 when it refused the
//! request, 2 when no engine answers at that data directory.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::Value;

use crate::control_server::ControlRequest;
use crate::run::CONTROL_SOCKET;
use hie_core::engine::metrics::LatencyReport;

/// How long `hie ctl` waits for an answer (a resend reads the WAL and writes to it).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(90);

#[derive(Debug, Args)]
pub struct CtlArgs {
    /// The data directory of the running production.
    #[arg(long, default_value = "data", global = true)]
    pub data_dir: PathBuf,
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
    Held,
    /// Print a held message.
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
        #[arg(long)]
        item: Option<String>,
    },
}

impl CtlCommand {
    fn request(&self) -> ControlRequest {
        let item = |item: &String| item.clone();
        match self {
            CtlCommand::Status => ControlRequest::Status,
            CtlCommand::Enable { item: i } => ControlRequest::Enable { item: item(i) },
            CtlCommand::Disable { item: i } => ControlRequest::Disable { item: item(i) },
            CtlCommand::Restart { item: i } => ControlRequest::Restart { item: item(i) },
            CtlCommand::Pause { item: i } => ControlRequest::Pause { item: item(i) },
            CtlCommand::Resume { item: i } => ControlRequest::Resume { item: item(i) },
            CtlCommand::Held => ControlRequest::Held,
            CtlCommand::Show { id } => ControlRequest::Show { id: id.clone() },
            CtlCommand::Resend { id, item } => ControlRequest::Resend {
                id: id.clone(),
                item: item.clone(),
            },
            CtlCommand::Discard { id, item } => ControlRequest::Discard {
                id: id.clone(),
                item: item.clone(),
            },
            CtlCommand::Histograms { item } => ControlRequest::Histograms { item: item.clone() },
        }
    }
}

pub fn run(args: CtlArgs) -> ExitCode {
    let socket = args.data_dir.join(CONTROL_SOCKET);
    let request = serde_json::to_string(&args.command.request()).expect("requests serialize");
    let reply = UnixStream::connect(&socket).and_then(|mut stream| {
        stream.set_read_timeout(Some(ANSWER_TIMEOUT))?;
        // A refused connection may be closed before the request is written: its
        // refusal is still there to read.
        let _ = writeln!(stream, "{request}");
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line)?;
        Ok(line)
    });
    let line = match reply {
        Ok(line) if !line.is_empty() => line,
        Ok(_) => {
            eprintln!(
                "hie ctl: the engine at {} closed the connection",
                socket.display()
            );
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("hie ctl: no engine answers at {}: {e}", socket.display());
            return ExitCode::from(2);
        }
    };
    let value: Value = match serde_json::from_str(&line) {
        Ok(value) => value,
        Err(e) => {
            eprintln!("hie ctl: the engine's answer is not JSON ({e}): {line}");
            return ExitCode::from(1);
        }
    };
    if value.get("ok") == Some(&Value::Bool(false)) {
        if args.json {
            print!("{line}");
        }
        let error = value["error"].as_str().unwrap_or("refused");
        eprintln!("hie ctl: {error}");
        return ExitCode::from(1);
    }
    if args.json {
        print!("{line}");
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
            text
        }
        _ => {
            let what = value["command"].as_str().unwrap_or("done");
            let whom = value["item"].as_str().unwrap_or_default();
            match value["message_id"].as_str() {
                Some(id) => format!("{what}: message {id} at {whom:?}\n"),
                None => format!("{what}: {whom:?}\n"),
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
