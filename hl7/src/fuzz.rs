//! The body of the `cargo fuzz` target (`fuzz/fuzz_targets/scan_lookup_decode.rs`), kept
//! here so stable-toolchain tests run it over the corpus and arbitrary bytes: scan, batch
//! split, path lookup, decode, text validation, index round trip, ACK and writer.
//!
//! Invariants it checks with `assert!` (a failure is a bug in this crate, never in the
//! input): a writer with no edits reproduces its input; a detached index re-attaches to
//! its bytes; every ACK written for a scanned message scans back with the same MSA-2.

use crate::{AckBuilder, AckCode, Batch, Envelope, Message, MessageWriter, Path, decode};

const PATHS: [&str; 10] = [
    "MSH-9",
    "MSH-10",
    "MSH-2",
    "PID-3",
    "PID-3[2].1.2",
    "PID-5.1",
    "OBX[2]-5",
    "OBX-5.1.1",
    "ZZZ-1",
    "EVN-1",
];

/// Runs every public entry point on `data`; panics only if an invariant breaks.
pub fn scan_lookup_decode(data: &[u8]) {
    let paths: Vec<Path> = PATHS.iter().filter_map(|p| Path::parse(p).ok()).collect();
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Path::parse(text);
    }
    for msg in Batch::new(data).chain(std::iter::once(data)) {
        let Ok(m) = Message::scan(msg) else { continue };
        exercise(&m, &paths);
    }
    let env = Envelope::of(data);
    let mut reply = Vec::new();
    let mut acks = AckBuilder::new();
    acks.write_batch_open(&mut reply, &env);
    acks.write_batch_close(&mut reply, &env, 0);
    assert_eq!(
        Batch::new(&reply).count(),
        0,
        "an empty batch reply holds no message"
    );
}

fn exercise(m: &Message<'_>, paths: &[Path]) {
    let mut text = Vec::new();
    for p in paths {
        if let Some(v) = m.get(p) {
            text.clear();
            decode(v, m.delimiters(), &mut text);
        }
    }
    for seg in m.segments() {
        let _ = (seg.id(), seg.field_count(), seg.field(3));
    }
    let _ = (m.validate_text(), m.validate_declared_text());
    let _ = (
        m.message_type(),
        m.trigger_event(),
        m.character_set(),
        m.ack_code(),
    );
    let index = m.index();
    let again = Message::from_index(m.as_bytes(), &index);
    assert_eq!(
        again.as_ref(),
        Ok(m),
        "a detached index must re-attach to its bytes"
    );
    assert_eq!(
        MessageWriter::new(m).to_vec(),
        m.as_bytes(),
        "a writer with no edits must copy its input"
    );
    let mut ack = Vec::new();
    AckBuilder::new().write_ack(&mut ack, m, AckCode::AE, None);
    let scanned = Message::scan(&ack);
    assert!(scanned.is_ok(), "an ACK must scan: {scanned:?}");
}
