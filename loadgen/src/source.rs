//! Message sources (`--file`, `--dir`, `--template`), prepared once per run into MLLP
//! frames whose MSH-10 and PID-3.1 the sender overwrites in place for every message.
//!
//! ```text
//! frame = 0x0B  MSH|...|<control id: 20 bytes>|...PID|...|<patient: 8 bytes>^...  0x1C 0x0D
//!                      ^ control_id_at                    ^ patient_at (if PID-3 exists)
//! ```
//!
//! Preparation of file messages: `hie_hl7::Batch` splits a file into its messages (BOM,
//! FHS/BHS/BTS/FTS envelope dropped), CRLF and LF segment ends become CR (the MLLP wire
//! form), and the `hie_hl7` scanner locates MSH-10, replaced by a [`CONTROL_ID_LEN`]
//! placeholder, and PID-3.1, replaced by a [`PATIENT_ID_LEN`] one. A message that does not
//! scan or contains an MLLP block byte is skipped and counted.
//! Limits: a file is read whole into memory; at most [`SOURCE_MESSAGES_MAX`] messages.

use std::path::{Path, PathBuf};

use hie_hl7::Batch;
use hie_net::mllp::frame::{END_BLOCK, START_BLOCK, encode_frame};

use crate::error::LoadgenError;
use crate::hl7io;
use crate::ids::{CONTROL_ID_LEN, PATIENT_ID_LEN};
use crate::template::{self, TemplateKind};

/// Most messages a source may hold.
pub const SOURCE_MESSAGES_MAX: usize = 1 << 20;

/// One message, framed, with the offsets of its id slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// The whole MLLP frame.
    pub frame: Vec<u8>,
    /// Offset in `frame` of the [`CONTROL_ID_LEN`]-byte MSH-10 slot.
    pub control_id_at: usize,
    /// Offset in `frame` of the [`PATIENT_ID_LEN`]-byte PID-3.1 slot, if the message has PID-3.
    pub patient_at: Option<usize>,
}

/// Where messages come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Every message of one file.
    File(PathBuf),
    /// Every message of every regular file of a directory (sorted by name, not recursive).
    Dir(PathBuf),
    /// A built-in template.
    Template {
        /// Which one.
        kind: TemplateKind,
        /// OBX segments of an ORU.
        obx: usize,
        /// Target message size in bytes.
        size_bytes: Option<usize>,
    },
}

/// The prepared messages of a source, and how many of its messages were skipped.
#[derive(Debug, Clone)]
pub struct Corpus {
    /// Messages to send, in order.
    pub messages: Vec<Prepared>,
    /// Messages of the source that could not be used.
    pub skipped: usize,
}

/// Loads and prepares `source`.
pub fn load(source: &Source) -> Result<Corpus, LoadgenError> {
    let (messages, skipped, path) = match source {
        Source::Template {
            kind,
            obx,
            size_bytes,
        } => {
            let text = template::build(*kind, *obx, *size_bytes);
            let prepared = prepare(&text).expect("built-in templates are well-formed");
            return Ok(Corpus {
                messages: vec![prepared],
                skipped: 0,
            });
        }
        Source::File(path) => {
            let (m, s) = load_file(path)?;
            (m, s, path)
        }
        Source::Dir(path) => {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|source| LoadgenError::ReadSource {
                    path: path.clone(),
                    source,
                })?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect();
            files.sort();
            let (mut all, mut skipped) = (Vec::new(), 0);
            for file in &files {
                let (m, s) = load_file(file)?;
                all.extend(m);
                skipped += s;
            }
            (all, skipped, path)
        }
    };
    if messages.is_empty() {
        return Err(LoadgenError::EmptySource {
            path: path.clone(),
            reason: format!("{skipped} message(s) without a readable MSH"),
        });
    }
    if messages.len() > SOURCE_MESSAGES_MAX {
        return Err(LoadgenError::EmptySource {
            path: path.clone(),
            reason: format!(
                "{} messages, more than the {SOURCE_MESSAGES_MAX} limit",
                messages.len()
            ),
        });
    }
    Ok(Corpus { messages, skipped })
}

fn load_file(path: &Path) -> Result<(Vec<Prepared>, usize), LoadgenError> {
    let bytes = std::fs::read(path).map_err(|source| LoadgenError::ReadSource {
        path: path.to_path_buf(),
        source,
    })?;
    let (mut messages, mut skipped) = (Vec::new(), 0);
    for msg in Batch::new(&bytes) {
        match prepare(&normalize(msg)) {
            Some(p) => messages.push(p),
            None => skipped += 1,
        }
    }
    Ok((messages, skipped))
}

/// Turns CRLF and LF segment ends into CR, the MLLP wire form (the BOM and the batch
/// envelope are already gone: [`Batch`] drops them).
fn normalize(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\r' if bytes.get(i + 1) == Some(&b'\n') => {
                out.push(b'\r');
                i += 1;
            }
            b'\n' => out.push(b'\r'),
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// Replaces MSH-10 and PID-3.1 of a CR-terminated message with placeholders and frames it.
fn prepare(msg: &[u8]) -> Option<Prepared> {
    if msg.contains(&START_BLOCK) || msg.windows(2).any(|w| w == [END_BLOCK, b'\r']) {
        return None;
    }
    let (ctrl, patient) = hl7io::id_ranges(msg)?;
    let control_placeholder = [b'0'; CONTROL_ID_LEN];
    let patient_placeholder = [b'0'; PATIENT_ID_LEN];
    // Splice the later range first so the earlier offsets stay valid.
    let mut text = msg.to_vec();
    let mut patient_at = None;
    match patient {
        Some(p) if p.start > ctrl.end => {
            text.splice(p.clone(), patient_placeholder);
            text.splice(ctrl.clone(), control_placeholder);
            patient_at = Some(p.start + CONTROL_ID_LEN - ctrl.len());
        }
        _ => {
            text.splice(ctrl.clone(), control_placeholder);
        }
    }
    let mut frame = Vec::with_capacity(text.len() + 3);
    encode_frame(&mut frame, &text);
    Some(Prepared {
        frame,
        control_id_at: ctrl.start + 1,
        patient_at: patient_at.map(|p| p + 1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/hl7")
    }

    fn check_slots(p: &Prepared) {
        let payload = &p.frame[1..p.frame.len() - 2];
        let (ctrl, patient) = hl7io::id_ranges(payload).unwrap();
        assert_eq!(ctrl.start + 1, p.control_id_at);
        assert_eq!(ctrl.len(), CONTROL_ID_LEN);
        if let Some(at) = p.patient_at {
            let pat = patient.unwrap();
            assert_eq!(pat.start + 1, at);
            assert_eq!(pat.len(), PATIENT_ID_LEN);
        }
    }

    #[test]
    fn template_is_prepared_with_both_slots() {
        let c = load(&Source::Template {
            kind: TemplateKind::AdtA01,
            obx: 0,
            size_bytes: Some(300),
        })
        .unwrap();
        assert_eq!(c.messages.len(), 1);
        assert_eq!(c.messages[0].frame.len(), 303);
        assert!(c.messages[0].patient_at.is_some());
        check_slots(&c.messages[0]);
    }

    #[test]
    fn corpus_directory_yields_messages_with_valid_slots() {
        let c = load(&Source::Dir(corpus_dir())).unwrap();
        assert!(c.messages.len() >= 55, "only {} messages", c.messages.len());
        for p in &c.messages {
            check_slots(p);
            assert!(!p.frame[1..p.frame.len() - 2].contains(&b'\n'));
        }
    }

    #[test]
    fn batch_file_is_split_into_its_messages() {
        let c = load(&Source::File(corpus_dir().join("040_er7_batch.hl7"))).unwrap();
        assert!(
            c.messages.len() > 1,
            "batch gave {} messages",
            c.messages.len()
        );
    }

    #[test]
    fn a_file_without_hl7_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junk.txt");
        std::fs::write(&path, b"not hl7 at all\n").unwrap();
        let err = load(&Source::File(path.clone())).unwrap_err();
        assert!(err.to_string().contains("junk.txt"), "{err}");
    }

    #[test]
    fn batch_envelope_is_dropped_and_line_ends_become_cr() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("batch.hl7");
        let text = b"FHS|^~\\&\r\nBHS|^~\\&\r\nMSH|^~\\&|a|b|c|d|t||ADT^A01|X1|P|2.5\r\nPID|1||7\r\nMSH|^~\\&|a|b|c|d|t||ADT^A08|X2|P|2.5\nBTS|2\nFTS|1\n";
        std::fs::write(&path, text).unwrap();
        let c = load(&Source::File(path)).unwrap();
        assert_eq!(c.messages.len(), 2);
        for p in &c.messages {
            check_slots(p);
            let payload = &p.frame[1..p.frame.len() - 2];
            assert!(!payload.contains(&b'\n'));
            assert!(!payload.windows(3).any(|w| w == b"BTS" || w == b"FHS"));
        }
    }
}
