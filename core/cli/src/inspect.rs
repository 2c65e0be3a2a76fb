//! `hie inspect FILE [PATH…]`: look inside the HL7 messages of a file (or stdin).
//!
//! Without paths it prints each message's header summary and segment list; with paths,
//! each path's raw value (or decoded text with `--decode`), one per line; `--json` prints
//! one object per message. A batch file (FHS/BHS) or back-to-back messages give one entry
//! per message. Exit status: 0 when every message scanned, 1 when a path is malformed,
//! 2 when the input cannot be read or holds no HL7 message.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use hie_hl7::{Batch, Message, Path};
use serde_json::{Map, Value, json};

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The HL7 file to read (`-` for standard input).
    file: PathBuf,
    /// Field paths to print: `PID-3`, `PID-3.1`, `PID-3[2].1.2`, `OBX[3]-5`, `PID:3(2).1`.
    paths: Vec<String>,
    /// Print decoded text (escape sequences turned into characters) instead of raw values.
    #[arg(long)]
    decode: bool,
    /// Print a JSON array with one object per message.
    #[arg(long)]
    json: bool,
}

/// Runs `hie inspect`.
pub fn run(args: InspectArgs) -> ExitCode {
    let paths = match parse_paths(&args.paths) {
        Ok(paths) => paths,
        Err(message) => {
            eprintln!("hie inspect: {message}");
            return ExitCode::from(1);
        }
    };
    let bytes = match read_input(&args.file) {
        Ok(bytes) => bytes,
        Err(message) => {
            eprintln!("hie inspect: {message}");
            return ExitCode::from(2);
        }
    };
    let name = args.file.display().to_string();
    let messages = match scan_all(&bytes) {
        Ok(messages) if !messages.is_empty() => messages,
        Ok(_) => {
            eprintln!("hie inspect: {name}: no HL7 message found (no MSH segment)");
            return ExitCode::from(2);
        }
        Err(message) => {
            eprintln!("hie inspect: {name}: not HL7: {message}");
            return ExitCode::from(2);
        }
    };
    let out = if args.json {
        render_json(&messages, &args.paths, &paths, args.decode)
    } else if paths.is_empty() {
        render_summary(&messages)
    } else {
        render_values(&messages, &paths, args.decode)
    };
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`hie inspect … | head`) is not an error worth a message.
    let _ = stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush());
    ExitCode::SUCCESS
}

fn parse_paths(texts: &[String]) -> Result<Vec<Path>, String> {
    texts
        .iter()
        .map(|text| Path::parse(text).map_err(|err| format!("bad path {text:?}: {err}")))
        .collect()
}

fn read_input(file: &std::path::Path) -> Result<Vec<u8>, String> {
    if file.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|err| format!("cannot read standard input: {err}"))?;
        Ok(bytes)
    } else {
        std::fs::read(file).map_err(|err| format!("cannot read {}: {err}", file.display()))
    }
}

/// Splits the input into messages and scans each; the first failure is the answer.
fn scan_all(bytes: &[u8]) -> Result<Vec<Message<'_>>, String> {
    Batch::new(bytes)
        .enumerate()
        .map(|(n, raw)| Message::scan(raw).map_err(|err| format!("message {}: {err}", n + 1)))
        .collect()
}

/// Text for a raw HL7 value: UTF-8 as it is, anything else read as Latin-1 (HL7's
/// commonest 8-bit character set), so that no byte is lost or replaced.
fn text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_string(),
        Err(_) => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}

fn value_text(message: &Message<'_>, path: &Path, decode: bool) -> Option<String> {
    let raw = message.get(path)?;
    if decode {
        let mut out = Vec::with_capacity(raw.len());
        hie_hl7::decode(raw, message.delimiters(), &mut out);
        Some(text(&out))
    } else {
        Some(text(raw))
    }
}

fn header_json(message: &Message<'_>) -> Value {
    let field = |value: Option<&[u8]>| value.map_or(Value::Null, |v| Value::String(text(v)));
    json!({
        "message_type": field(message.message_type()),
        "trigger_event": field(message.trigger_event()),
        "message_structure": field(message.message_structure()),
        "control_id": field(message.control_id()),
        "processing_id": field(message.processing_id()),
        "version": field(message.version()),
        "character_set": field(message.character_set()),
        "timestamp": field(message.timestamp()),
        "sending_application": field(message.sending_application()),
        "sending_facility": field(message.sending_facility()),
        "receiving_application": field(message.receiving_application()),
        "receiving_facility": field(message.receiving_facility()),
    })
}

fn segment_ids(message: &Message<'_>) -> Vec<String> {
    message
        .segments()
        .map(|segment| text(segment.id()))
        .collect()
}

fn render_json(messages: &[Message<'_>], texts: &[String], paths: &[Path], decode: bool) -> String {
    let entries: Vec<Value> = messages
        .iter()
        .enumerate()
        .map(|(index, message)| {
            let values: Map<String, Value> = texts
                .iter()
                .zip(paths)
                .map(|(text, path)| {
                    let value =
                        value_text(message, path, decode).map_or(Value::Null, Value::String);
                    (text.clone(), value)
                })
                .collect();
            json!({
                "index": index,
                "header": header_json(message),
                "segments": segment_ids(message),
                "values": values,
            })
        })
        .collect();
    let mut out = serde_json::to_string_pretty(&Value::Array(entries)).expect("JSON of strings");
    out.push('\n');
    out
}

fn render_summary(messages: &[Message<'_>]) -> String {
    let mut out = String::new();
    for (index, message) in messages.iter().enumerate() {
        let get = |value: Option<&[u8]>| value.map_or_else(|| "-".to_string(), text);
        let kind = match (message.message_type(), message.trigger_event()) {
            (Some(t), Some(e)) => format!("{}^{}", text(t), text(e)),
            (t, _) => get(t),
        };
        out.push_str(&format!(
            "message {index}: {kind} control id {} version {} processing {}\n",
            get(message.control_id()),
            get(message.version()),
            get(message.processing_id()),
        ));
        out.push_str(&format!(
            "  from {}|{} to {}|{} at {} charset {}\n",
            get(message.sending_application()),
            get(message.sending_facility()),
            get(message.receiving_application()),
            get(message.receiving_facility()),
            get(message.timestamp()),
            get(message.character_set()),
        ));
        out.push_str(&format!(
            "  {} segments, {} bytes: {}\n",
            message.segment_count(),
            message.as_bytes().len(),
            segment_ids(message).join(" ")
        ));
    }
    out
}

fn render_values(messages: &[Message<'_>], paths: &[Path], decode: bool) -> String {
    let mut out = String::new();
    for message in messages {
        for path in paths {
            // An absent value prints as an empty line so that lines match paths.
            out.push_str(&value_text(message, path, decode).unwrap_or_default());
            out.push('\n');
        }
    }
    out
}
