//! The message writer for transforms: edits are recorded against a scanned message and
//! applied when the new message is written. Untouched spans are copied as they are, so a
//! writer with no edits writes the input byte for byte (BOM, terminators, blank lines and
//! all).
//!
//! ```text
//! input    [prefix] seg0 term0 seg1 term1 … segN [termN]
//! output   [prefix] (inserted-before-i term)* (seg_i | edited seg_i | nothing) term_i … appended
//! ```
//!
//! - A field edit copies its segment once into an owned buffer and splices the value in,
//!   adding separators when the message does not reach that far; later edits of the same
//!   segment see earlier ones. [`MessageWriter::set`] escapes the value with the message's
//!   delimiters; [`MessageWriter::set_raw`] writes ER7 as given (no CR or LF allowed).
//! - Paths address the *original* segments (e.g. `OBX[3]` counts the input's OBX
//!   segments); inserted segments are not addressable.
//! - Inserted and appended segments end with the input's terminator style (that of the
//!   MSH: CR, LF or CRLF).
//! - MSH-1/MSH-2 (the delimiters) cannot be edited, and the MSH cannot be removed.

use crate::error::ScanError;
use crate::escape::encode;
use crate::path::Path;
use crate::scan::{Message, nth_range};
use smallvec::SmallVec;

/// Most separators one edit may add to reach a position the message does not have yet
/// (e.g. `PID-3[70000]`), so a mistaken path cannot blow a message up.
pub const PADDING_SEPARATORS_MAX: usize = 4096;

#[derive(Debug, Clone)]
enum Op {
    Replace(Vec<u8>),
    Remove,
}

/// Edits to one scanned message, written out as a new message.
#[derive(Debug, Clone)]
pub struct MessageWriter<'a> {
    msg: &'a Message<'a>,
    ops: SmallVec<[(usize, Op); 4]>,
    inserts: SmallVec<[(usize, Vec<u8>); 2]>,
}

impl<'a> MessageWriter<'a> {
    /// A writer with no edits over `msg`.
    pub fn new(msg: &'a Message<'a>) -> MessageWriter<'a> {
        MessageWriter {
            msg,
            ops: SmallVec::new(),
            inserts: SmallVec::new(),
        }
    }

    /// The message being edited.
    pub fn message(&self) -> &'a Message<'a> {
        self.msg
    }

    /// Sets the value at `path` to `text`, escaping delimiters, CR and LF.
    pub fn set(&mut self, path: &Path, text: &[u8]) -> Result<(), ScanError> {
        let mut raw = Vec::with_capacity(text.len() + 8);
        encode(text, self.msg.delimiters(), &mut raw);
        self.splice(path, &raw)
    }

    /// Sets the value at `path` to raw ER7 `raw` (delimiters inside it keep their meaning).
    pub fn set_raw(&mut self, path: &Path, raw: &[u8]) -> Result<(), ScanError> {
        if let Some(offset) = memchr::memchr2(b'\r', b'\n', raw) {
            return Err(ScanError::TerminatorInValue { offset });
        }
        self.splice(path, raw)
    }

    /// Empties the value at `path` (its separators stay, so later positions keep their
    /// numbers).
    pub fn clear(&mut self, path: &Path) -> Result<(), ScanError> {
        self.splice(path, b"")
    }

    /// Removes segment `index` (0-based, of the input).
    pub fn remove_segment(&mut self, index: usize) -> Result<(), ScanError> {
        self.check_index(index, self.msg.segment_count())?;
        if index == 0 {
            return Err(ScanError::MshNotRemovable);
        }
        self.set_op(index, Op::Remove);
        Ok(())
    }

    /// Inserts the raw segment `raw` (e.g. `b"NTE|1||text"`, no terminator) before input
    /// segment `before`; `before == segment_count()` appends. Not before the MSH.
    pub fn insert_segment(&mut self, before: usize, raw: &[u8]) -> Result<(), ScanError> {
        self.check_index(before, self.msg.segment_count() + 1)?;
        if before == 0 {
            return Err(ScanError::SegmentIndexOutOfRange {
                index: 0,
                count: self.msg.segment_count(),
            });
        }
        self.check_segment(raw)?;
        self.inserts.push((before, raw.to_vec()));
        Ok(())
    }

    /// Appends the raw segment `raw` after the last one.
    pub fn append_segment(&mut self, raw: &[u8]) -> Result<(), ScanError> {
        self.insert_segment(self.msg.segment_count(), raw)
    }

    /// Appends the edited message to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        let bytes = self.msg.as_bytes();
        let count = self.msg.segment_count();
        let term = self.terminator();
        let Some(first) = self.msg.segment(0) else {
            out.extend_from_slice(bytes);
            return;
        };
        out.extend_from_slice(&bytes[..first.offset()]);
        for i in 0..count {
            self.write_inserts(i, term, out);
            let Some(seg) = self.msg.segment(i) else {
                break;
            };
            let unit_end = self.msg.segment(i + 1).map_or(bytes.len(), |s| s.offset());
            let seg_end = seg.offset() + seg.as_bytes().len();
            match self.op(i) {
                Some(Op::Remove) => {}
                Some(Op::Replace(v)) => {
                    out.extend_from_slice(v);
                    out.extend_from_slice(&bytes[seg_end..unit_end]);
                }
                None => out.extend_from_slice(&bytes[seg.offset()..unit_end]),
            }
        }
        if self.inserts.iter().any(|(b, _)| *b == count) {
            if !matches!(out.last(), Some(b'\r' | b'\n')) {
                out.extend_from_slice(term);
            }
            self.write_inserts(count, term, out);
        }
    }

    /// The edited message as a new vector.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.msg.as_bytes().len() + 64);
        self.write(&mut out);
        out
    }

    fn write_inserts(&self, before: usize, term: &[u8], out: &mut Vec<u8>) {
        for (_, raw) in self.inserts.iter().filter(|(b, _)| *b == before) {
            out.extend_from_slice(raw);
            out.extend_from_slice(term);
        }
    }

    fn terminator(&self) -> &'static [u8] {
        let bytes = self.msg.as_bytes();
        let end = self
            .msg
            .segment(0)
            .map_or(bytes.len(), |s| s.offset() + s.as_bytes().len());
        match (bytes.get(end), bytes.get(end + 1)) {
            (Some(b'\r'), Some(b'\n')) => b"\r\n",
            (Some(b'\n'), _) => b"\n",
            _ => b"\r",
        }
    }

    fn op(&self, index: usize) -> Option<&Op> {
        self.ops.iter().find(|(i, _)| *i == index).map(|(_, op)| op)
    }

    fn set_op(&mut self, index: usize, op: Op) {
        match self.ops.iter_mut().find(|(i, _)| *i == index) {
            Some(slot) => slot.1 = op,
            None => self.ops.push((index, op)),
        }
    }

    fn check_index(&self, index: usize, limit: usize) -> Result<(), ScanError> {
        if index < limit {
            Ok(())
        } else {
            Err(ScanError::SegmentIndexOutOfRange {
                index,
                count: self.msg.segment_count(),
            })
        }
    }

    fn check_segment(&self, raw: &[u8]) -> Result<(), ScanError> {
        if let Some(offset) = memchr::memchr2(b'\r', b'\n', raw) {
            return Err(ScanError::TerminatorInValue { offset });
        }
        let id_ok = raw.len() >= 3
            && raw[..3]
                .iter()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if !id_ok
            || raw
                .get(3)
                .is_some_and(|&b| b != self.msg.delimiters().field)
        {
            return Err(ScanError::BadSegmentId);
        }
        Ok(())
    }

    /// Replaces the value at `path` in (a copy of) its segment with `raw`.
    fn splice(&mut self, path: &Path, raw: &[u8]) -> Result<(), ScanError> {
        let seg = self
            .msg
            .find_segment(path.segment_id(), path.segment_occurrence());
        let no_such = || ScanError::NoSuchSegment {
            segment: [
                path.segment_id()[0],
                path.segment_id()[1],
                path.segment_id()[2],
            ],
            occurrence: path.segment_occurrence(),
        };
        let seg = seg.ok_or_else(no_such)?;
        let index = seg.index();
        let mut buf = match self.op(index) {
            Some(Op::Remove) => return Err(no_such()),
            Some(Op::Replace(v)) => v.clone(),
            None => seg.as_bytes().to_vec(),
        };
        splice_segment(&mut buf, self.msg.delimiters(), path, raw)?;
        self.set_op(index, Op::Replace(buf));
        Ok(())
    }
}

/// Replaces the value at `path` (its field, repetition, component and subcomponent;
/// the segment part is not read) in the segment `buf` (terminator excluded) with `raw`,
/// adding separators when the segment does not reach that far. The transforms
/// (`hie_core::transform`) edit segments they own with it.
pub fn splice_segment(
    buf: &mut Vec<u8>,
    d: &crate::scan::Delimiters,
    path: &Path,
    raw: &[u8],
) -> Result<(), ScanError> {
    let header = crate::scan::is_header_segment(buf, d.field);
    if header && path.field() <= 2 {
        return Err(ScanError::DelimiterFieldNotWritable {
            field: path.field(),
        });
    }
    let element = if header {
        path.field()
    } else {
        path.field() + 1
    };
    let len = buf.len();
    let mut range = locate(buf, (0, len), d.field, element)?;
    let rep = path.repetition().or(path.component().map(|_| 1));
    for (sep, n) in [
        (d.repetition, rep),
        (d.component, path.component()),
        (d.subcomponent, path.subcomponent()),
    ] {
        if let Some(n) = n {
            range = locate(buf, range, sep, n)?;
        }
    }
    buf.splice(range.0..range.1, raw.iter().copied());
    Ok(())
}

/// Range of the `n`-th element of `buf[range]` split on `sep`, after appending the
/// separators needed for it to exist.
fn locate(
    buf: &mut Vec<u8>,
    range: (usize, usize),
    sep: u8,
    n: u32,
) -> Result<(usize, usize), ScanError> {
    let (s, mut e) = range;
    if let Some((a, b)) = nth_range(&buf[s..e], sep, n) {
        return Ok((s + a, s + b));
    }
    let have = memchr::memchr_iter(sep, &buf[s..e]).count() + 1;
    let missing = n as usize - have;
    if missing > PADDING_SEPARATORS_MAX {
        return Err(ScanError::PaddingTooLarge {
            needed: missing,
            max: PADDING_SEPARATORS_MAX,
        });
    }
    buf.splice(e..e, std::iter::repeat_n(sep, missing));
    e += missing;
    Ok((e, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"\xEF\xBB\xBFMSH|^~\\&|A|B|||||ADT^A01|1|P|2.5\r\nPID|1||123^^^H~456||DOE^JOHN\r\n\r\nOBX|1|ST|x||v1\r\nOBX|2|ST|y||v2";

    fn p(s: &str) -> Path {
        Path::parse(s).unwrap()
    }

    #[test]
    fn no_edits_is_byte_identical() {
        let m = Message::scan(MSG).unwrap();
        assert_eq!(MessageWriter::new(&m).to_vec(), MSG);
    }

    #[test]
    fn set_field_component_repetition_and_subcomponent() {
        let m = Message::scan(MSG).unwrap();
        let mut w = MessageWriter::new(&m);
        w.set(&p("PID-5.2"), b"JANE").unwrap();
        w.set(&p("PID-3[2].4.2"), b"X&Y").unwrap();
        w.set(&p("OBX[2]-5"), b"a|b").unwrap();
        w.set(&p("PID-8"), b"F").unwrap();
        w.set(&p("MSH-10"), b"NEW").unwrap();
        let out = w.to_vec();
        let n = Message::scan(&out).unwrap();
        assert_eq!(n.get(&p("PID-5")), Some(&b"DOE^JANE"[..]));
        assert_eq!(n.get(&p("PID-3")), Some(&br"123^^^H~456^^^&X\T\Y"[..]));
        assert_eq!(n.get(&p("OBX[2]-5")), Some(&br"a\F\b"[..]));
        assert_eq!(n.get(&p("PID-8")), Some(&b"F"[..]));
        assert_eq!(n.control_id(), Some(&b"NEW"[..]));
        assert!(out.ends_with(b"OBX|2|ST|y||a\\F\\b"));
        assert!(out.starts_with(b"\xEF\xBB\xBFMSH|^~\\&|A|B|||||ADT^A01|NEW|P|2.5\r\n"));
    }

    #[test]
    fn remove_insert_and_append_segments() {
        let m = Message::scan(MSG).unwrap();
        let mut w = MessageWriter::new(&m);
        w.remove_segment(2).unwrap();
        w.insert_segment(1, b"EVN|A01").unwrap();
        w.append_segment(b"NTE|1||end").unwrap();
        w.clear(&p("PID-3")).unwrap();
        let out = w.to_vec();
        let n = Message::scan(&out).unwrap();
        let ids: Vec<&[u8]> = n.segments().map(|s| s.id()).collect();
        assert_eq!(ids, [&b"MSH"[..], b"EVN", b"PID", b"OBX", b"NTE"]);
        assert_eq!(n.get(&p("PID-3")), Some(&b""[..]));
        assert!(out.ends_with(b"OBX|2|ST|y||v2\r\nNTE|1||end\r\n"));
    }

    #[test]
    fn invalid_edits_are_errors() {
        let m = Message::scan(MSG).unwrap();
        let mut w = MessageWriter::new(&m);
        assert_eq!(
            w.set(&p("MSH-2"), b"x"),
            Err(ScanError::DelimiterFieldNotWritable { field: 2 })
        );
        assert_eq!(
            w.set(&p("ZZZ-1"), b"x"),
            Err(ScanError::NoSuchSegment {
                segment: *b"ZZZ",
                occurrence: 1
            })
        );
        assert_eq!(
            w.set_raw(&p("PID-1"), b"a\rb"),
            Err(ScanError::TerminatorInValue { offset: 1 })
        );
        assert_eq!(w.remove_segment(0), Err(ScanError::MshNotRemovable));
        assert_eq!(
            w.remove_segment(9),
            Err(ScanError::SegmentIndexOutOfRange { index: 9, count: 4 })
        );
        assert_eq!(w.append_segment(b"nte|1"), Err(ScanError::BadSegmentId));
        assert!(matches!(
            w.set(&p("PID-3[99999]"), b"x"),
            Err(ScanError::PaddingTooLarge { max: 4096, .. })
        ));
        w.remove_segment(1).unwrap();
        assert!(w.set(&p("PID-1"), b"x").is_err());
        assert_eq!(
            w.to_vec().len(),
            MSG.len() - b"PID|1||123^^^H~456||DOE^JOHN\r\n\r\n".len()
        );
    }
}
