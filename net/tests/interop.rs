//! Interop with a third-party MLLP client: python-hl7's `mllp_send` (PyPI package `hl7`,
//! in the workspace's venv `target/pyenv`, which the test creates when it is missing, or
//! named by `HIE_MLLP_SEND`) sends every corpus
//! message over one connection; each must get the ACK our scanner says it deserves: `AA`
//! echoing MSH-10 for a message that scans, NAK `AR` for one that does not.
//!
//! Skipped, loudly, only when `python3` is missing. With python3 present and python-hl7
//! impossible to install (no package index) the test fails and prints the install command.

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use hie_net::{FrameDecoder, ServerConfig};

/// python-hl7's `mllp_send`: `HIE_MLLP_SEND`, or the shared venv `target/pyenv` of the
/// workspace, created (with python-hl7 installed) when it is missing.
fn mllp_send() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("HIE_MLLP_SEND") {
        return Some(PathBuf::from(path));
    }
    let path = hie_tests::python_hl7()?.with_file_name("mllp_send");
    path.exists().then_some(path)
}

/// The message python-hl7 sends for a file wrapped in one MLLP frame: `strip(SB + CR)`.
fn as_python_sends(content: &[u8]) -> &[u8] {
    let start = content
        .iter()
        .position(|b| !matches!(b, 0x0B | b'\r'))
        .unwrap_or(content.len());
    let end = content
        .iter()
        .rposition(|b| !matches!(b, 0x0B | b'\r'))
        .map_or(start, |i| i + 1);
    &content[start..end]
}

#[test]
fn python_hl7_mllp_send_gets_a_correct_ack_for_every_corpus_message() {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("\n\n*** SKIPPED interop test: python3 is not installed ***\n\n");
        return;
    }
    let Some(mllp_send) = mllp_send() else {
        panic!(
            "python-hl7's mllp_send is not installed; install it with:\n  \
             python3 -m venv target/pyenv && target/pyenv/bin/pip install hl7==0.4.5"
        );
    };
    let corpus = hie_tests::corpus_dir().join("hl7");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&corpus)
        .expect("corpus at ../shared/corpus/hl7")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "hl7"))
        .collect();
    files.sort();
    assert!(files.len() >= 50, "corpus has {} messages", files.len());

    let mut wire = tempfile::NamedTempFile::new().unwrap();
    let mut expected = Vec::new();
    for file in &files {
        let content = std::fs::read(file).unwrap();
        let mut framed_bytes = Vec::new();
        hie_net::encode_frame(&mut framed_bytes, &content);
        wire.write_all(&framed_bytes).unwrap();
        let sent = as_python_sends(&content);
        expected.push(match hie_hl7::Message::scan(sent) {
            Ok(msg) => (
                "AA".to_string(),
                String::from_utf8_lossy(msg.control_id().unwrap_or_default()).into_owned(),
            ),
            Err(_) => ("AR".to_string(), String::new()),
        });
    }
    wire.flush().unwrap();

    let server = TestServer::start(ServerConfig::default());
    let mut child = Command::new(&mllp_send)
        .args(["-p", &server.addr.port().to_string(), "-f"])
        .arg(wire.path())
        .arg("127.0.0.1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mllp_send starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("mllp_send did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "mllp_send failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    let mut dec = FrameDecoder::new(1 << 20);
    dec.push(&output.stdout);
    let mut acks = Vec::new();
    while let Some(frame) = dec.next_frame().unwrap() {
        acks.push(msa(frame));
    }
    assert_eq!(acks.len(), files.len(), "one ACK per message");
    for ((file, got), want) in files.iter().zip(&acks).zip(&expected) {
        if want.0 == "AA" {
            assert_eq!(got, want, "{}", file.display());
        } else {
            assert_eq!(got.0, "AR", "{}", file.display());
        }
    }
    let accepted = acks.iter().filter(|(code, _)| code == "AA").count();
    assert!(
        accepted * 10 >= files.len() * 9,
        "only {accepted} of {} messages accepted",
        files.len()
    );
    let stats = server.stop();
    assert_eq!(stats.frames_received, files.len() as u64);
}
