//! Helpers shared by the engine end-to-end tests (`engine_*.rs`): an in-test MLLP sink
//! whose answer can change while it runs, production TOML pieces, ADT messages with a
//! control id and a patient id, and `hie ctl` wrappers.
//!
//! Limits: the sink keeps every message it receives in memory (tests send at most a few
//! thousand); every thread it starts ends when it is stopped or dropped.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use hie_tests::{bin, field};

/// What the in-test sink answers to each message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// An ACK with this MSA-1 (`AA`, `AE`, `AR`) and MSA-2 the message's control id.
    Code(&'static str),
    /// Nothing: the connection stays open and silent.
    Silent,
}

/// An HL7 ADT^A01 with MSH-10 `control_id` and PID-3.1 `patient`.
pub fn adt(control_id: &str, patient: &str) -> Vec<u8> {
    format!(
        "MSH|^~\\&|SENDER|FAC|HIE|FAC|20260101120000||ADT^A01|{control_id}|P|2.5\r\
         EVN|A01|20260101120000\r\
         PID|1||{patient}^^^HOSP^MR||DOE^JOHN||19700101|M\r\
         PV1|1|I|WARD^1^1\r"
    )
    .into_bytes()
}

/// MSH-10 of a message (empty when absent).
pub fn control_id(msg: &[u8]) -> String {
    field(msg, "MSH", 10).unwrap_or_default()
}

/// PID-3.1 of a message (empty when absent).
pub fn patient(msg: &[u8]) -> String {
    field(msg, "PID", 3)
        .and_then(|f| f.split('^').next().map(str::to_string))
        .unwrap_or_default()
}

#[derive(Debug, Default)]
struct SinkState {
    arrivals: Mutex<Vec<Vec<u8>>>,
    answer: Mutex<Option<Answer>>,
    /// Milliseconds to wait before each answer.
    delay_ms: AtomicU64,
    stop: AtomicBool,
}

/// An MLLP receiver on 127.0.0.1 run by the test itself: it records every message in
/// arrival order and answers as told (the answer can change while it runs).
#[derive(Debug)]
pub struct TestSink {
    pub port: u16,
    state: Arc<SinkState>,
    acceptor: Option<JoinHandle<()>>,
}

impl TestSink {
    /// Listens on `127.0.0.1:port` (retrying for a few seconds while the port is busy).
    pub fn start(port: u16, answer: Answer) -> TestSink {
        let listener = (0..200)
            .find_map(|_| {
                TcpListener::bind(("127.0.0.1", port))
                    .inspect_err(|_| std::thread::sleep(Duration::from_millis(25)))
                    .ok()
            })
            .unwrap_or_else(|| panic!("the test sink cannot listen on port {port}"));
        listener.set_nonblocking(true).expect("nonblocking");
        let state = Arc::new(SinkState::default());
        *state.answer.lock().unwrap() = Some(answer);
        let acceptor = std::thread::spawn({
            let state = Arc::clone(&state);
            move || accept_loop(listener, state)
        });
        TestSink {
            port,
            state,
            acceptor: Some(acceptor),
        }
    }

    /// Changes the answer to the next messages.
    pub fn set_answer(&self, answer: Answer) {
        *self.state.answer.lock().unwrap() = Some(answer);
    }

    /// Waits `delay` before each answer from now on (a slow downstream).
    pub fn set_delay(&self, delay: Duration) {
        self.state
            .delay_ms
            .store(delay.as_millis() as u64, Ordering::Release);
    }

    /// Every message received so far, in arrival order.
    pub fn arrivals(&self) -> Vec<Vec<u8>> {
        self.state.arrivals.lock().unwrap().clone()
    }

    /// The control ids received so far, in arrival order.
    pub fn control_ids(&self) -> Vec<String> {
        self.arrivals().iter().map(|m| control_id(m)).collect()
    }

    pub fn count(&self) -> usize {
        self.state.arrivals.lock().unwrap().len()
    }

    /// Stops listening and closes every connection; returns what arrived.
    pub fn stop(mut self) -> Vec<Vec<u8>> {
        self.shutdown();
        self.arrivals()
    }

    fn shutdown(&mut self) {
        self.state.stop.store(true, Ordering::Release);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

impl Drop for TestSink {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn accept_loop(listener: TcpListener, state: Arc<SinkState>) {
    let mut connections = Vec::new();
    while !state.stop.load(Ordering::Acquire) {
        match listener.accept() {
            Ok((stream, _)) => {
                let state = Arc::clone(&state);
                connections.push(std::thread::spawn(move || serve(stream, state)));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    drop(listener);
    for connection in connections {
        let _ = connection.join();
    }
}

fn serve(mut stream: TcpStream, state: Arc<SinkState>) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 8192];
    while !state.stop.load(Ordering::Acquire) {
        match stream.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(_) => return,
        }
        while let Some(msg) = take_frame(&mut buf) {
            state.arrivals.lock().unwrap().push(msg.clone());
            let delay_ms = state.delay_ms.load(Ordering::Acquire);
            if delay_ms > 0 {
                std::thread::sleep(Duration::from_millis(delay_ms));
            }
            let answer = state.answer.lock().unwrap().unwrap_or(Answer::Silent);
            if let Answer::Code(code) = answer {
                let ack = ack_for(&msg, code);
                if stream.write_all(&ack).is_err() {
                    return;
                }
            }
        }
    }
}

/// The payload of the first whole MLLP frame of `buf`, removed from it.
fn take_frame(buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    let start = buf.iter().position(|&b| b == 0x0b)?;
    let end = buf[start..].windows(2).position(|w| w == [0x1c, 0x0d])? + start;
    let msg = buf[start + 1..end].to_vec();
    buf.drain(..end + 2);
    Some(msg)
}

/// A framed ACK with MSA-1 `code` for `msg`; for a batch (a frame that begins with `FHS`
/// or `BHS`, sent whole), a batch holding one such ACK per message, its BHS-12 the batch's
/// control id (BHS-11, else FHS-11), as IRIS answers a batch.
pub fn ack_for(msg: &[u8], code: &str) -> Vec<u8> {
    let mut text = String::new();
    let env = hie_hl7::Envelope::of(msg);
    let batch = hie_hl7::Batch::has_envelope(msg);
    if batch {
        let id = String::from_utf8_lossy(env.control_id());
        text.push_str(&format!(
            "BHS|^~\\&|SINK|FAC|HIE|FAC|20260101120000||||ACKB|{id}\r"
        ));
    }
    let mut n = 0;
    for one in hie_hl7::Batch::new(msg) {
        if !batch && n > 0 {
            break;
        }
        let id = control_id(one);
        text.push_str(&format!(
            "MSH|^~\\&|SINK|FAC|HIE|FAC|20260101120000||ACK^A01|ACK{id}|P|2.5\rMSA|{code}|{id}\r"
        ));
        if code != "AA" {
            text.push_str("ERR|||207|E||||refused by the test sink\r");
        }
        n += 1;
    }
    if !batch && n == 0 {
        // Not a message the sink can read: answer with an empty control id.
        text.push_str(&format!(
            "MSH|^~\\&|SINK|FAC|HIE|FAC|20260101120000||ACK^A01|ACK|P|2.5\rMSA|{code}|\r"
        ));
    }
    if batch {
        text.push_str(&format!("BTS|{n}\r"));
    }
    let mut frame = vec![0x0b];
    frame.extend_from_slice(text.as_bytes());
    frame.extend_from_slice(&[0x1c, 0x0d]);
    frame
}

// ---- productions --------------------------------------------------------------------

/// The `[production]` and `[engine]` head of a TOML production: fsync, and 1 MiB WAL
/// segments (the smallest allowed) so that a restart scans little and segments roll over.
pub fn head(name: &str, shards: usize) -> String {
    format!(
        "[production]\nname = \"{name}\"\n\n[engine]\nshards = {shards}\nwal_sync = \"fsync\"\n\
         wal_segment_bytes = 1048576\n"
    )
}

/// An HL7 TCP service on `port` sending to `targets`, with more host settings.
pub fn tcp_service(name: &str, port: u16, targets: &str, host: &[(&str, &str)]) -> String {
    let mut s = format!(
        "\n[[item]]\nname = \"{name}\"\nclass = \"EnsLib.HL7.Service.TCPService\"\n[item.host]\nTargetConfigNames = \"{targets}\"\n"
    );
    push_settings(&mut s, host);
    s.push_str(&format!("[item.adapter]\nPort = \"{port}\"\n"));
    s
}

/// An HL7 router forwarding to `targets` (no `BusinessRuleName`: hie does not run rules).
pub fn router(name: &str, targets: &str, host: &[(&str, &str)]) -> String {
    let mut s = format!(
        "\n[[item]]\nname = \"{name}\"\nclass = \"EnsLib.HL7.MsgRouter.RoutingEngine\"\n[item.host]\nTargetConfigNames = \"{targets}\"\n"
    );
    push_settings(&mut s, host);
    s
}

/// An HL7 TCP operation to `127.0.0.1:port`, with host and adapter settings.
pub fn tcp_operation(
    name: &str,
    port: u16,
    host: &[(&str, &str)],
    adapter: &[(&str, &str)],
) -> String {
    let mut s = format!(
        "\n[[item]]\nname = \"{name}\"\nclass = \"EnsLib.HL7.Operation.TCPOperation\"\n[item.host]\n"
    );
    push_settings(&mut s, host);
    s.push_str(&format!(
        "[item.adapter]\nIPAddress = \"127.0.0.1\"\nPort = \"{port}\"\n"
    ));
    push_settings(&mut s, adapter);
    s
}

/// An HL7 file service polling `dir` every second for `*.hl7`, sending to `targets`,
/// moving what it read to `archive`.
pub fn file_service(name: &str, dir: &Path, archive: &Path, targets: &str) -> String {
    format!(
        "\n[[item]]\nname = \"{name}\"\nclass = \"EnsLib.HL7.Service.FileService\"\n[item.host]\nTargetConfigNames = \"{targets}\"\n[item.adapter]\nFilePath = \"{}\"\nFileSpec = \"*.hl7\"\nCallInterval = \"1\"\nArchivePath = \"{}\"\n",
        dir.display(),
        archive.display()
    )
}

/// An HL7 file operation writing to `dir/filename` (appending: `Overwrite` is off).
pub fn file_operation(name: &str, dir: &Path, filename: &str) -> String {
    format!(
        "\n[[item]]\nname = \"{name}\"\nclass = \"EnsLib.HL7.Operation.FileOperation\"\n[item.host]\nFilename = \"{filename}\"\n[item.adapter]\nFilePath = \"{}\"\n",
        dir.display()
    )
}

/// The control ids (MSH-10) of the messages in a file of HL7 messages, in file order.
pub fn control_ids_in(file: &Path) -> Vec<String> {
    let text = std::fs::read(file).unwrap_or_default();
    text.split(|&b| b == b'\r' || b == b'\n')
        .filter(|segment| segment.starts_with(b"MSH|"))
        .map(|msh| {
            String::from_utf8_lossy(msh)
                .split('|')
                .nth(9)
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

/// `item` (one of the item helpers' output) with `PoolSize` `pool_size`.
pub fn pooled(item: &str, pool_size: usize) -> String {
    item.replacen(
        "\n[item.host]\n",
        &format!("\npool_size = {pool_size}\n[item.host]\n"),
        1,
    )
}

/// `item` (one of the item helpers' output) disabled in the production (`enabled = false`,
/// IRIS `Enabled="false"`).
pub fn disabled(item: &str) -> String {
    item.replacen("\n[item.host]\n", "\nenabled = false\n[item.host]\n", 1)
}

fn push_settings(s: &mut String, settings: &[(&str, &str)]) {
    for (key, value) in settings {
        s.push_str(&format!("{key} = \"{value}\"\n"));
    }
}

/// Writes `text` as `dir/production.toml`; returns its path.
pub fn write_production(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("production.toml");
    std::fs::write(&path, text).expect("write production");
    path
}

// ---- hie ctl --------------------------------------------------------------------------

/// Runs `hie ctl --data-dir DATA ARGS…`; its exit code and stdout.
///
/// A command that finds no engine (exit 2) is retried for up to 5 s, for an engine that
/// is still starting or restarting.
pub fn ctl(data_dir: &Path, args: &[&str]) -> (i32, String) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let out = Command::new(bin("hie"))
            .arg("ctl")
            .arg("--data-dir")
            .arg(data_dir)
            .args(args)
            .output()
            .expect("run hie ctl");
        let code = out.status.code().unwrap_or(-1);
        if code != 2 || std::time::Instant::now() >= deadline {
            return (code, String::from_utf8_lossy(&out.stdout).into_owned());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `hie ctl --addr ADDRESS ARGS…` once; its exit code and stdout.
pub fn ctl_at(address: &str, args: &[&str]) -> (i32, String) {
    let out = Command::new(bin("hie"))
        .args(["ctl", "--addr", address])
        .args(args)
        .output()
        .expect("run hie ctl");
    let code = out.status.code().unwrap_or(-1);
    (code, String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `hie ctl status --json`.
pub fn status(data_dir: &Path) -> serde_json::Value {
    let (code, out) = ctl(data_dir, &["status", "--json"]);
    assert_eq!(code, 0, "hie ctl status failed: {out}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("status is not JSON ({e}): {out}"))
}

/// The statuses of every instance of `item`.
pub fn item_entries<'s>(status: &'s serde_json::Value, item: &str) -> Vec<&'s serde_json::Value> {
    status["shards"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|shard| shard["items"].as_array().into_iter().flatten())
        .filter(|entry| entry["item"] == item)
        .collect()
}

/// Counter `name` of `item`, summed over its instances.
pub fn counter(status: &serde_json::Value, item: &str, name: &str) -> u64 {
    item_entries(status, item)
        .iter()
        .map(|entry| entry[name].as_u64().unwrap_or(0))
        .sum()
}

/// The state of each instance of `item`.
pub fn states(status: &serde_json::Value, item: &str) -> Vec<String> {
    item_entries(status, item)
        .iter()
        .map(|entry| entry["state"].as_str().unwrap_or("").to_string())
        .collect()
}

/// The held messages listed (`hie ctl held --json`), each a JSON object with
/// `message_id`, `item`, `kind`, `at`, `reason`, `message_type` and `control_id`.
pub fn held(data_dir: &Path) -> Vec<serde_json::Value> {
    let (code, out) = ctl(data_dir, &["held", "--json"]);
    assert_eq!(code, 0, "hie ctl held failed: {out}");
    let value: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"));
    value["held"].as_array().cloned().unwrap_or_default()
}

/// The suspended messages listed, as (message id, item).
pub fn suspended(data_dir: &Path) -> Vec<(String, String)> {
    held(data_dir)
        .iter()
        .filter(|h| h["kind"] == "suspended")
        .map(|h| {
            (
                h["message_id"].as_str().unwrap_or("").to_string(),
                h["item"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// Sends `msg` on a new connection to `127.0.0.1:port` and returns MSA-1 of the reply.
pub fn send_one(port: u16, msg: &[u8]) -> String {
    let mut conn = hie_tests::MllpConn::connect(&format!("127.0.0.1:{port}")).expect("connect");
    let ack = conn.exchange(msg).expect("ACK");
    field(&ack, "MSA", 1).unwrap_or_default()
}

/// Writes `production` into `dir` and runs it with `dir/data` as its data directory
/// (unpinned, warnings only in the log); returns the engine and the data directory.
pub fn start_hie(dir: &Path, production: &str) -> (hie_tests::Hie, std::path::PathBuf) {
    start_hie_with(dir, production, &[])
}

/// [`start_hie`] with more `hie run` arguments.
pub fn start_hie_with(
    dir: &Path,
    production: &str,
    args: &[&str],
) -> (hie_tests::Hie, std::path::PathBuf) {
    let config = write_production(dir, production);
    let data = dir.join("data");
    let mut all = vec!["--no-pin", "--log", "warn"];
    all.extend_from_slice(args);
    let hie = hie_tests::Hie::start(&config, &data, &all);
    (hie, data)
}

/// Waits up to `timeout` for `done(status)`; panics with the last status and the log if
/// it never holds.
pub fn wait_status(
    hie: &hie_tests::Hie,
    data: &Path,
    timeout: Duration,
    what: &str,
    mut done: impl FnMut(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + timeout;
    let (ok, last) = loop {
        let last = status(data);
        if done(&last) {
            break (true, last);
        }
        if std::time::Instant::now() >= deadline {
            break (false, last);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        ok,
        "{what}: not reached; status {last:#}\nlog:\n{}",
        hie.log()
    );
    last
}

/// SIGTERM, and a clean exit within 30 s (panics with the log otherwise).
pub fn stop(mut hie: hie_tests::Hie) {
    hie.process.signal(libc::SIGTERM);
    let exit = hie.process.wait_timeout(Duration::from_secs(30));
    assert!(
        exit.is_some_and(|e| e.success()),
        "hie run did not stop cleanly ({exit:?}); log:\n{}",
        hie.log()
    );
}
