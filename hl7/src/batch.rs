//! Batch files split into messages: `FHS`/`BHS` … `BTS`/`FTS` envelopes, and messages
//! written back to back with no envelope at all (or a mix of both).
//!
//! ```text
//! [BOM] [FHS …] [BHS …] MSH … (segments) … [MSH … …]* [BTS …] [BHS …] … [FTS …]
//! ```
//!
//! Every line that starts with `MSH` followed by a non-alphanumeric byte begins a message;
//! the message runs to the line before the next `MSH` or envelope segment
//! (`FHS`/`BHS`/`BTS`/`FTS`), its last terminator included. Envelope segments and lines
//! before the first `MSH` are not part of any message. Blank lines are skipped. The
//! iterator never fails: each slice it yields begins with `MSH`, and [`crate::Message::scan`]
//! says whether it is a well-formed message. One `memchr2` per line; no allocation.

/// An iterator over the messages in a file, as slices of its bytes. A batch's headers
/// are [`Envelope::of`] the same bytes.
#[derive(Debug, Clone)]
pub struct Batch<'a> {
    bytes: &'a [u8],
    pos: usize,
}

const ENVELOPE: [&[u8]; 4] = [b"FHS", b"BHS", b"BTS", b"FTS"];

impl<'a> Batch<'a> {
    /// Iterates the messages in `bytes` (a UTF-8 BOM at the start is skipped).
    pub fn new(bytes: &'a [u8]) -> Batch<'a> {
        let pos = if bytes.starts_with(b"\xEF\xBB\xBF") {
            3
        } else {
            0
        };
        Batch { bytes, pos }
    }

    /// True if `bytes` begins (after a BOM and blank lines) with an `FHS` or `BHS` header.
    pub fn has_envelope(bytes: &[u8]) -> bool {
        let start = bytes
            .iter()
            .position(|&b| !matches!(b, b'\r' | b'\n' | 0xEF | 0xBB | 0xBF));
        start.is_some_and(|s| {
            starts_segment(&bytes[s..], b"FHS") || starts_segment(&bytes[s..], b"BHS")
        })
    }
}

/// The headers of a batch, as a reply to it needs them: its first `FHS` and its first
/// `BHS` line (terminator excluded), each found before the first message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// The file header, if the batch has one.
    pub fhs: Option<&'a [u8]>,
    /// The (first) batch header, if the batch has one.
    pub bhs: Option<&'a [u8]>,
}

impl<'a> Envelope<'a> {
    /// The headers of `bytes`, read line by line up to the first `MSH`.
    pub fn of(bytes: &'a [u8]) -> Envelope<'a> {
        let mut env = Envelope::default();
        for line in bytes.split(|&b| b == b'\r' || b == b'\n') {
            let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
            if starts_segment(line, b"MSH") {
                break;
            }
            if env.fhs.is_none() && starts_segment(line, b"FHS") && line.len() > 3 {
                env.fhs = Some(line);
            }
            if env.bhs.is_none() && starts_segment(line, b"BHS") && line.len() > 3 {
                env.bhs = Some(line);
            }
        }
        env
    }

    /// True when there is neither an `FHS` nor a `BHS`.
    pub fn is_empty(&self) -> bool {
        self.fhs.is_none() && self.bhs.is_none()
    }

    /// The batch's control id: BHS-11, else FHS-11 (empty when neither has one). Read
    /// with the header's own field separator (its fourth byte).
    pub fn control_id(&self) -> &'a [u8] {
        header_field(self.bhs, 11)
            .filter(|v| !v.is_empty())
            .or_else(|| header_field(self.fhs, 11))
            .unwrap_or_default()
    }

    /// The control id of the batch this one answers: BHS-12, else FHS-12 (empty when
    /// neither has one), as a reply batch carries it.
    pub fn reference_id(&self) -> &'a [u8] {
        header_field(self.bhs, 12)
            .filter(|v| !v.is_empty())
            .or_else(|| header_field(self.fhs, 12))
            .unwrap_or_default()
    }

    /// The outermost header's segment id, `FHS` or `BHS` (empty when there is none): what
    /// a batch taken whole is listed as, where a message shows its MSH-9.
    pub fn header_id(&self) -> &'static str {
        match (self.fhs, self.bhs) {
            (Some(_), _) => "FHS",
            (None, Some(_)) => "BHS",
            (None, None) => "",
        }
    }
}

/// Field `n` (counted as HL7 counts them, field 1 the separator) of a header line.
fn header_field(line: Option<&[u8]>, n: usize) -> Option<&[u8]> {
    let line = line?;
    let sep = *line.get(3)?;
    line.split(move |&b| b == sep).nth(n - 1)
}

/// True if `line` is segment `id`: the id then a non-alphanumeric byte (or nothing).
fn starts_segment(line: &[u8], id: &[u8]) -> bool {
    line.starts_with(id)
        && line
            .get(id.len())
            .is_none_or(|b| !b.is_ascii_alphanumeric() && *b != b'\r' && *b != b'\n')
}

impl<'a> Iterator for Batch<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let bytes = self.bytes;
        let mut start: Option<usize> = None;
        let mut end = 0;
        while self.pos < bytes.len() {
            let line_start = self.pos;
            let line_end = memchr::memchr2(b'\r', b'\n', &bytes[line_start..])
                .map_or(bytes.len(), |e| line_start + e);
            let mut next = line_end;
            if next < bytes.len() {
                next += if bytes[next] == b'\r' && bytes.get(next + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
            }
            let line = &bytes[line_start..line_end];
            if line.is_empty() {
                self.pos = next;
                continue;
            }
            let is_msh = starts_segment(line, b"MSH") && line.len() > 3;
            let is_envelope = ENVELOPE.iter().any(|id| starts_segment(line, id));
            match start {
                Some(s) if is_msh || is_envelope => return Some(&bytes[s..end]),
                Some(_) => end = next,
                None if is_msh => {
                    start = Some(line_start);
                    end = next;
                }
                None => {}
            }
            self.pos = next;
        }
        start.map(|s| &bytes[s..end])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_segments_are_dropped_and_messages_split() {
        let file = b"FHS|^~\\&|A\rBHS|^~\\&|A\rMSH|^~\\&|1\rPID|1\rMSH|^~\\&|2\rBTS|2\rFTS|1\r";
        let msgs: Vec<&[u8]> = Batch::new(file).collect();
        assert_eq!(msgs, [&b"MSH|^~\\&|1\rPID|1\r"[..], b"MSH|^~\\&|2\r"]);
        assert!(Batch::has_envelope(file));
    }

    #[test]
    fn back_to_back_messages_with_blank_lines_and_crlf_split() {
        let file = b"\xEF\xBB\xBFMSH|^~\\&|1\r\nPID|1\r\n\r\nMSH|^~\\&|2\nPID|2";
        let msgs: Vec<&[u8]> = Batch::new(file).collect();
        assert_eq!(
            msgs,
            [&b"MSH|^~\\&|1\r\nPID|1\r\n"[..], b"MSH|^~\\&|2\nPID|2"]
        );
        assert!(!Batch::has_envelope(file));
    }

    #[test]
    fn the_envelope_is_the_first_fhs_and_bhs_before_the_first_message() {
        let file =
            b"\xEF\xBB\xBFFHS|^~\\&|F\r\nBHS|^~\\&|B1\rMSH|^~\\&|1\rBTS|1\rBHS|^~\\&|B2\rFTS|2\r";
        let env = Envelope::of(file);
        assert_eq!(env.fhs, Some(&b"FHS|^~\\&|F"[..]));
        assert_eq!(env.bhs, Some(&b"BHS|^~\\&|B1"[..]));
        assert!(Envelope::of(b"MSH|^~\\&|1\rBHS|^~\\&|x\r").is_empty());
        let bhs_only = Envelope::of(b"BHS|^~\\&|B\rMSH|^~\\&|1\r");
        assert_eq!((bhs_only.fhs, bhs_only.bhs.is_some()), (None, true));
    }

    #[test]
    fn control_ids_are_read_from_bhs_else_fhs() {
        let both =
            Envelope::of(b"FHS|^~\\&|A||||||||F1|R0\rBHS|^~\\&|A||||||||B1|R1\rMSH|^~\\&|\r");
        assert_eq!(
            (both.control_id(), both.reference_id()),
            (&b"B1"[..], &b"R1"[..])
        );
        assert_eq!(both.header_id(), "FHS");
        let fhs = Envelope::of(b"FHS#^~\\&#A########F1\rMSH|^~\\&|\r");
        assert_eq!(
            (fhs.control_id(), fhs.reference_id()),
            (&b"F1"[..], &b""[..])
        );
        let empty_bhs = Envelope::of(b"FHS|^~\\&|A||||||||F1\rBHS|^~\\&\rMSH|\r");
        assert_eq!(
            (empty_bhs.control_id(), empty_bhs.header_id()),
            (&b"F1"[..], "FHS")
        );
        assert_eq!(Envelope::of(b"BHS\r").control_id(), b"");
        assert_eq!(Envelope::of(b"BHS|\r").header_id(), "BHS");
    }

    #[test]
    fn junk_before_the_first_msh_and_msh_lookalikes_are_not_messages() {
        let file = b"hello\rMSHX|1\rMSH|^~\\&|1\rOBX||MSH\r";
        let msgs: Vec<&[u8]> = Batch::new(file).collect();
        assert_eq!(msgs, [&b"MSH|^~\\&|1\rOBX||MSH\r"[..]]);
        assert_eq!(Batch::new(b"").count(), 0);
        assert_eq!(Batch::new(b"FHS|^~\\&\rFTS|0").count(), 0);
    }
}
