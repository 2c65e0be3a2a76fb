//! The zero-copy scanner: a [`Message`] is the caller's bytes plus a [`ScanIndex`] of
//! segment offsets, found in one `memchr2` pass for CR/LF. Nothing else is parsed until a
//! caller asks for a field; field lookup scans only the target segment, with `memchr` for
//! the separators, and returns a slice of the original bytes.
//!
//! What the scanner accepts:
//!
//! ```text
//! [EF BB BF] [CR|LF]*  "MSH" F E1 E2 E3 [E4] [E5] ( F ... )  term  SEG ... term  ...  [term]
//!   BOM      blank     F  = field separator (MSH-1), any byte but a letter, digit, CR, LF
//!            lines     E1..E4 = component, repetition, escape, sub-component (MSH-2)
//!                      E5 = truncation character (HL7 2.7), optional
//!                      term = CR, LF or CRLF; blank lines are skipped; the last
//!                      segment may lack its terminator
//! ```
//!
//! MSH-2 is read as most HL7 libraries read it, not only as the standard writes it:
//! - a character doubled in place (`^~\\&`, a common escaping slip) is read once;
//! - a character that repeats an earlier delimiter (`^~^&`) leaves its role not given;
//! - a role not given, or past the end of a 3-character MSH-2 (`^~\`), takes its default
//!   (`^`, `~`, `\`, `&`) unless that byte is already a delimiter of the message, which is
//!   [`ScanError::DefaultDelimiterTaken`]; the truncation character has no default.
//!
//! So the delimiters of a scanned message are always distinct, usable bytes. MSH-2 is kept
//! as written in the message ([`Message::encoding_characters`]); an ACK writes the
//! delimiters read ([`Delimiters::write_separators`]).
//!
//! Invariants of a [`ScanIndex`] (checked again by [`Message::from_index`]):
//! - segment spans are non-empty, in order, do not overlap, contain no CR or LF, and lie
//!   inside the bytes; the first span starts with `MSH` followed by the field separator;
//! - offsets are `u32`, so a message is at most [`MESSAGE_BYTES_MAX`] bytes;
//! - up to [`SEGMENTS_INLINE`] segments are held inline: scanning such a message does not
//!   touch the heap. Longer messages spill the span list to one heap allocation.
//!
//! Limits and choices: segment ids are not validated (junk lines become segments with a
//! junk id, as the six reference libraries in the corpus treat them); a batch header
//! (`FHS`/`BHS`) is not a message (split batches with [`crate::Batch`]); an escape
//! character of space (seen in real feeds) is kept in [`Delimiters`] but treated as "no
//! escape character" by [`crate::decode`] and [`crate::encode`].

use crate::error::ScanError;
use crate::path::Path;
use crate::swar::{after_nth, find};
use smallvec::SmallVec;
use std::borrow::Cow;

/// Largest message the index can address (32-bit offsets).
pub const MESSAGE_BYTES_MAX: usize = u32::MAX as usize;
/// Segments held inline in a [`ScanIndex`] before it spills to the heap.
pub const SEGMENTS_INLINE: usize = 32;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The message's delimiters, from MSH-1 and MSH-2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Delimiters {
    /// Field separator (MSH-1), usually `|`.
    pub field: u8,
    /// Component separator, usually `^`.
    pub component: u8,
    /// Repetition separator, usually `~`.
    pub repetition: u8,
    /// Escape character, usually `\`.
    pub escape: u8,
    /// Sub-component separator, usually `&`.
    pub subcomponent: u8,
    /// Truncation character (HL7 2.7+), usually `#`, when MSH-2 has a fifth character.
    pub truncation: Option<u8>,
}

impl Default for Delimiters {
    fn default() -> Self {
        Self::STANDARD
    }
}

impl Delimiters {
    /// `|^~\&`, the delimiters nearly every sender uses.
    pub const STANDARD: Delimiters = Delimiters {
        field: b'|',
        component: b'^',
        repetition: b'~',
        escape: b'\\',
        subcomponent: b'&',
        truncation: None,
    };

    /// The escape character, or `None` when the message declares none usable (a space,
    /// which would turn ordinary text into escape sequences).
    #[inline]
    pub fn escape_char(&self) -> Option<u8> {
        (self.escape != b' ').then_some(self.escape)
    }

    /// Appends MSH-1 and MSH-2 as they appear after `MSH`, e.g. `|^~\&`.
    pub fn write_separators(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[
            self.field,
            self.component,
            self.repetition,
            self.escape,
            self.subcomponent,
        ]);
        if let Some(t) = self.truncation {
            out.push(t);
        }
    }

    /// True if `b` is one of the delimiters (the escape character included).
    #[inline]
    pub fn is_delimiter(&self, b: u8) -> bool {
        b == self.field
            || b == self.component
            || b == self.repetition
            || b == self.escape
            || b == self.subcomponent
            || Some(b) == self.truncation
    }

    /// The delimiters a header segment (`MSH`, `FHS` or `BHS`, terminator excluded)
    /// declares in its fields 1 and 2, read as the scanner reads an MSH.
    pub fn of_header(segment: &[u8]) -> Result<Delimiters, ScanError> {
        Delimiters::from_msh(segment, 0)
    }

    /// Reads MSH-1/MSH-2 from a segment starting with `MSH` (or `FHS`/`BHS`); `base` is
    /// the segment's offset in the message, for error positions. MSH-2 is read leniently,
    /// as most HL7 libraries read it (see the module header).
    fn from_msh(msh: &[u8], base: usize) -> Result<Delimiters, ScanError> {
        let field = *msh
            .get(3)
            .ok_or(ScanError::TruncatedMsh { offset: base + 3 })?;
        if !usable_delimiter(field) {
            return Err(ScanError::BadFieldSeparator {
                byte: field,
                offset: base + 3,
            });
        }
        let enc = &msh[4..];
        let len = enc
            .iter()
            .take(ENCODING_CHARACTERS_WRITTEN_MAX)
            .position(|&b| b == field)
            .unwrap_or(enc.len().min(ENCODING_CHARACTERS_WRITTEN_MAX));
        if len < 3 && enc.len() < 3 {
            return Err(ScanError::TruncatedMsh { offset: base + 4 });
        }
        let given = encoding_roles(field, &enc[..len], base + 4)?;
        let mut roles = [0u8; 4];
        for r in 0..4 {
            roles[r] = match given[r] {
                Some(b) => b,
                None => {
                    let default = DEFAULT_ENCODING[r];
                    let taken = default == field
                        || given.contains(&Some(default))
                        || roles[..r].contains(&default);
                    if taken {
                        return Err(ScanError::DefaultDelimiterTaken {
                            role: ROLE_NAMES[r],
                            byte: default,
                            offset: base + 4,
                        });
                    }
                    default
                }
            };
        }
        Ok(Delimiters {
            field,
            component: roles[0],
            repetition: roles[1],
            escape: roles[2],
            subcomponent: roles[3],
            truncation: given[4],
        })
    }
}

/// Most characters MSH-2 may hold as written, a doubled character included (`^~\\&#`).
pub const ENCODING_CHARACTERS_WRITTEN_MAX: usize = 6;

/// The component, repetition, escape and sub-component separators a role not given in
/// MSH-2 takes.
const DEFAULT_ENCODING: [u8; 4] = [b'^', b'~', b'\\', b'&'];
const ROLE_NAMES: [&str; 4] = [
    "component separator",
    "repetition separator",
    "escape character",
    "sub-component separator",
];

/// The byte MSH-2 gives each role (component, repetition, escape, sub-component,
/// truncation), in order: a character doubled in place is read once; a character that
/// repeats an earlier delimiter leaves its role not given (`None`), as does a role past
/// the end of MSH-2. At least 3 and at most 5 roles must be written.
fn encoding_roles(field: u8, enc: &[u8], offset: usize) -> Result<[Option<u8>; 5], ScanError> {
    let mut given = [None; 5];
    let mut roles = 0;
    let mut prev = None;
    for (i, &b) in enc.iter().enumerate() {
        if !usable_delimiter(b) {
            return Err(ScanError::BadDelimiter {
                byte: b,
                offset: offset + i,
            });
        }
        if prev == Some(b) {
            continue;
        }
        prev = Some(b);
        if roles == given.len() {
            return Err(ScanError::BadEncodingCharacters {
                offset,
                len: enc.len(),
            });
        }
        let repeated = b == field || given[..roles].contains(&Some(b));
        given[roles] = (!repeated).then_some(b);
        roles += 1;
    }
    if roles < 3 {
        return Err(ScanError::BadEncodingCharacters {
            offset,
            len: enc.len(),
        });
    }
    Ok(given)
}

fn usable_delimiter(b: u8) -> bool {
    !(b.is_ascii_alphanumeric() || b == b'\r' || b == b'\n')
}

/// Byte range of one segment in the message, terminator excluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Span {
    start: u32,
    end: u32,
}

/// The owned result of a scan: delimiters and segment offsets, detached from the bytes.
///
/// An envelope can carry it beside the message bytes and re-attach it with
/// [`Message::from_index`], which re-checks it against the bytes in O(segments) without
/// looking at their content again. Scanning again is also cheap; measured with
/// `cargo bench -p hie-bench --bench hl7 -- --quick hl7_reattach` on the shared 2-core
/// machine: a 300-byte ADT re-attaches in ~25 ns against ~63 ns to rescan, a 100 KB ORU
/// (500 segments, spilled index) in ~0.5 µs against ~7.5 µs. Carry the index when the
/// envelope already has room for it; otherwise rescanning costs little.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ScanIndex {
    delimiters: Delimiters,
    len: u32,
    segments: SmallVec<[Span; SEGMENTS_INLINE]>,
}

impl ScanIndex {
    /// The delimiters the index was scanned with.
    pub fn delimiters(&self) -> &Delimiters {
        &self.delimiters
    }

    /// Number of segments.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Length of the bytes the index describes.
    pub fn byte_len(&self) -> usize {
        self.len as usize
    }

    /// True when the span list lives on the heap (more than [`SEGMENTS_INLINE`] segments).
    pub fn spilled(&self) -> bool {
        self.segments.spilled()
    }
}

/// A scanned HL7 v2 message: borrowed bytes plus the index of its segments (its own
/// after a scan, borrowed when re-attached with [`Message::from_index`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<'a> {
    bytes: &'a [u8],
    index: Cow<'a, ScanIndex>,
}

/// One segment of a scanned message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment<'a> {
    bytes: &'a [u8],
    offset: usize,
    index: usize,
    delimiters: Delimiters,
}

/// The character set MSH-18 declares (first repetition), as far as validation cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    /// MSH-18 empty or absent: validated as UTF-8 (ASCII is a subset).
    Unspecified,
    /// `ASCII`: every byte must be below 0x80.
    Ascii,
    /// `UNICODE UTF-8` (or the common non-standard `UTF-8`/`UTF8`).
    Utf8,
    /// Any other set (`8859/1`, `UNICODE UTF-16`, ...): not validated here.
    Other,
}

impl<'a> Message<'a> {
    /// Scans `bytes`: delimiters from MSH-1/MSH-2 and the offset of every segment. One
    /// `memchr2` pass; no heap allocation for up to [`SEGMENTS_INLINE`] segments.
    pub fn scan(bytes: &'a [u8]) -> Result<Message<'a>, ScanError> {
        if bytes.len() > MESSAGE_BYTES_MAX {
            return Err(ScanError::TooLarge {
                len: bytes.len(),
                max: MESSAGE_BYTES_MAX,
            });
        }
        let mut pos = if bytes.starts_with(BOM) { BOM.len() } else { 0 };
        while pos < bytes.len() && (bytes[pos] == b'\r' || bytes[pos] == b'\n') {
            pos += 1;
        }
        if pos == bytes.len() {
            return Err(ScanError::Empty);
        }
        if !bytes[pos..].starts_with(b"MSH") {
            return Err(ScanError::NotMsh { offset: pos });
        }
        let first_end =
            memchr::memchr2(b'\r', b'\n', &bytes[pos..]).map_or(bytes.len(), |e| pos + e);
        let delimiters = Delimiters::from_msh(&bytes[pos..first_end], pos)?;
        let segments = split_segments(bytes, pos);
        Ok(Message {
            bytes,
            index: Cow::Owned(ScanIndex {
                delimiters,
                len: bytes.len() as u32,
                segments,
            }),
        })
    }

    /// Re-attaches an index detached with [`Message::index`] to the same bytes, checking
    /// (in O(segments), without reading the content) that it fits them. The message
    /// borrows the index: re-attaching copies nothing.
    pub fn from_index(bytes: &'a [u8], index: &'a ScanIndex) -> Result<Message<'a>, ScanError> {
        if index.len as usize != bytes.len() {
            return Err(ScanError::IndexMismatch {
                what: "byte length differs",
            });
        }
        let mut prev_end = 0u32;
        for s in &index.segments {
            if s.start < prev_end || s.end <= s.start || s.end as usize > bytes.len() {
                return Err(ScanError::IndexMismatch {
                    what: "segment span out of order or range",
                });
            }
            prev_end = s.end;
        }
        let first = index.segments.first().ok_or(ScanError::IndexMismatch {
            what: "no segments",
        })?;
        let msh = &bytes[first.start as usize..first.end as usize];
        if !msh.starts_with(b"MSH") || msh.get(3) != Some(&index.delimiters.field) {
            return Err(ScanError::IndexMismatch {
                what: "first segment is not this MSH",
            });
        }
        Ok(Message {
            bytes,
            index: Cow::Borrowed(index),
        })
    }

    /// The index, detached from the bytes (inline copy for up to 32 segments).
    pub fn index(&self) -> ScanIndex {
        self.index.as_ref().clone()
    }

    /// The index, consuming the message.
    pub fn into_index(self) -> ScanIndex {
        self.index.into_owned()
    }

    /// The bytes that were scanned, BOM and terminators included.
    #[inline]
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The delimiters from MSH-1/MSH-2.
    #[inline]
    pub fn delimiters(&self) -> &Delimiters {
        &self.index.delimiters
    }

    /// Number of segments (blank lines are not segments).
    #[inline]
    pub fn segment_count(&self) -> usize {
        self.index.segments.len()
    }

    /// Segment `i` (0-based), if there is one.
    #[inline]
    pub fn segment(&self, i: usize) -> Option<Segment<'a>> {
        let s = *self.index.segments.get(i)?;
        Some(Segment {
            bytes: &self.bytes[s.start as usize..s.end as usize],
            offset: s.start as usize,
            index: i,
            delimiters: self.index.delimiters,
        })
    }

    /// The segments in order.
    pub fn segments(&self) -> impl Iterator<Item = Segment<'a>> + '_ {
        (0..self.segment_count()).filter_map(move |i| self.segment(i))
    }

    /// Every segment's id as three bytes, in order; `[0; 3]` for a segment whose id (the
    /// bytes before the first field separator) is not three bytes long, which no message
    /// structure names. Read from the index without making each `Segment` (placement in
    /// a structure's groups wants exactly this).
    pub fn segment_ids(&self) -> impl Iterator<Item = [u8; 3]> + '_ {
        let (bytes, sep) = (self.bytes, self.index.delimiters.field);
        self.index
            .segments
            .iter()
            .map(move |s| match &bytes[s.start as usize..s.end as usize] {
                [a, b, c, rest @ ..]
                    if rest.first().is_none_or(|&x| x == sep) && ![a, b, c].contains(&&sep) =>
                {
                    [*a, *b, *c]
                }
                _ => [0; 3],
            })
    }

    /// The `occurrence`-th (1-based) segment whose id is `id`, e.g. `(b"OBX", 3)`.
    pub fn find_segment(&self, id: &[u8], occurrence: u32) -> Option<Segment<'a>> {
        let fsep = self.index.delimiters.field;
        let mut seen = 0u32;
        for (i, s) in self.index.segments.iter().enumerate() {
            let seg = &self.bytes[s.start as usize..s.end as usize];
            if segment_has_id(seg, id, fsep) {
                seen += 1;
                if seen == occurrence {
                    return self.segment(i);
                }
            }
        }
        None
    }

    /// The raw value at `path` (escapes kept, no copy), or `None` if the message does not
    /// reach that far. A field that is present but empty is `Some(b"")`.
    pub fn get(&self, path: &Path) -> Option<&'a [u8]> {
        let seg = self.find_segment(path.segment_id(), path.segment_occurrence())?;
        seg.get(path)
    }

    /// Segment index of the byte at `offset` (the segment before it for a terminator).
    pub fn segment_at(&self, offset: usize) -> usize {
        let n = self
            .index
            .segments
            .partition_point(|s| (s.start as usize) <= offset);
        n.saturating_sub(1)
    }

    fn msh(&self) -> Segment<'a> {
        // The scan guarantees segment 0 exists and is the MSH.
        self.segment(0).unwrap_or(Segment {
            bytes: b"MSH",
            offset: 0,
            index: 0,
            delimiters: self.index.delimiters,
        })
    }

    fn msh_component(&self, field: u32, component: u32) -> Option<&'a [u8]> {
        let d = &self.index.delimiters;
        let f = self.msh().field(field)?;
        let rep = nth(f, d.repetition, 1)?;
        nth(rep, d.component, component)
    }

    /// MSH-2, the encoding characters as written (4 or 5 bytes).
    pub fn encoding_characters(&self) -> &'a [u8] {
        self.msh().field(2).unwrap_or_default()
    }

    /// MSH-3, sending application (raw, all components).
    pub fn sending_application(&self) -> Option<&'a [u8]> {
        self.msh().field(3)
    }
    /// MSH-4, sending facility.
    pub fn sending_facility(&self) -> Option<&'a [u8]> {
        self.msh().field(4)
    }
    /// MSH-5, receiving application.
    pub fn receiving_application(&self) -> Option<&'a [u8]> {
        self.msh().field(5)
    }
    /// MSH-6, receiving facility.
    pub fn receiving_facility(&self) -> Option<&'a [u8]> {
        self.msh().field(6)
    }
    /// MSH-7, date/time of message.
    pub fn timestamp(&self) -> Option<&'a [u8]> {
        self.msh().field(7)
    }
    /// MSH-9.1, message type (e.g. `ADT`).
    pub fn message_type(&self) -> Option<&'a [u8]> {
        self.msh_component(9, 1)
    }
    /// MSH-9.2, trigger event (e.g. `A01`).
    pub fn trigger_event(&self) -> Option<&'a [u8]> {
        self.msh_component(9, 2)
    }
    /// MSH-9.3, message structure (e.g. `ADT_A01`).
    pub fn message_structure(&self) -> Option<&'a [u8]> {
        self.msh_component(9, 3)
    }
    /// MSH-10, message control id.
    pub fn control_id(&self) -> Option<&'a [u8]> {
        self.msh().field(10)
    }
    /// MSH-11, processing id (raw, e.g. `P` or `P^T`).
    pub fn processing_id(&self) -> Option<&'a [u8]> {
        self.msh().field(11)
    }
    /// MSH-12, version id (raw, e.g. `2.5.1`).
    pub fn version(&self) -> Option<&'a [u8]> {
        self.msh().field(12)
    }
    /// MSH-18, character set (first repetition).
    pub fn character_set(&self) -> Option<&'a [u8]> {
        nth(self.msh().field(18)?, self.index.delimiters.repetition, 1)
    }
    /// MSA-1, the acknowledgment code of an ACK.
    pub fn ack_code(&self) -> Option<crate::ack::AckCode> {
        crate::ack::AckCode::parse(self.find_segment(b"MSA", 1)?.field(1)?)
    }
    /// MSA-2, the control id an ACK acknowledges.
    pub fn acked_control_id(&self) -> Option<&'a [u8]> {
        self.find_segment(b"MSA", 1)?.field(2)
    }

    /// What MSH-18 says about the text's encoding.
    pub fn charset(&self) -> Charset {
        let Some(cs) = self.character_set() else {
            return Charset::Unspecified;
        };
        let cs = cs.trim_ascii();
        if cs.is_empty() {
            Charset::Unspecified
        } else if cs.eq_ignore_ascii_case(b"ASCII") {
            Charset::Ascii
        } else if [&b"UNICODE UTF-8"[..], b"UTF-8", b"UTF8"]
            .iter()
            .any(|n| cs.eq_ignore_ascii_case(n))
        {
            Charset::Utf8
        } else {
            Charset::Other
        }
    }

    /// Checks the text only where MSH-18 declares it: as [`Message::validate_text`] when
    /// MSH-18 names ASCII or UTF-8, and not at all when MSH-18 is empty (no declaration; a
    /// Latin-1 feed without MSH-18 passes) or names another set.
    pub fn validate_declared_text(&self) -> Result<(), ScanError> {
        if self.charset() == Charset::Unspecified {
            return Ok(());
        }
        self.validate_text()
    }

    /// Checks the text against MSH-18: UTF-8 (with `simdutf8`) when MSH-18 says UTF-8 or
    /// is empty, 7-bit when it says ASCII; other character sets are not checked. The error
    /// carries the byte offset of the first bad byte and its segment.
    pub fn validate_text(&self) -> Result<(), ScanError> {
        match self.charset() {
            Charset::Utf8 | Charset::Unspecified => match simdutf8::basic::from_utf8(self.bytes) {
                Ok(_) => Ok(()),
                Err(_) => {
                    let e = simdutf8::compat::from_utf8(self.bytes).err();
                    let offset = e.map_or(0, |e| e.valid_up_to());
                    Err(ScanError::InvalidUtf8 {
                        offset,
                        segment: self.segment_at(offset),
                    })
                }
            },
            Charset::Ascii => match self.bytes.iter().position(|b| !b.is_ascii()) {
                None => Ok(()),
                Some(offset) => Err(ScanError::NonAscii {
                    byte: self.bytes[offset],
                    offset,
                    segment: self.segment_at(offset),
                }),
            },
            Charset::Other => Ok(()),
        }
    }
}

/// The single pass: every non-empty run of bytes between CR/LF is a segment.
fn split_segments(bytes: &[u8], from: usize) -> SmallVec<[Span; SEGMENTS_INLINE]> {
    let mut segments = SmallVec::new();
    let mut start = from;
    for t in memchr::memchr2_iter(b'\r', b'\n', &bytes[from..]) {
        let t = from + t;
        if t > start {
            segments.push(Span {
                start: start as u32,
                end: t as u32,
            });
        }
        start = t + 1;
    }
    if start < bytes.len() {
        segments.push(Span {
            start: start as u32,
            end: bytes.len() as u32,
        });
    }
    segments
}

/// True for an MSH, FHS or BHS segment, whose fields 1 and 2 are the delimiters.
#[inline]
pub(crate) fn is_header_segment(seg: &[u8], fsep: u8) -> bool {
    let id = &seg[..seg.len().min(3)];
    (id == b"MSH" || id == b"FHS" || id == b"BHS") && seg.get(3) == Some(&fsep)
}

#[inline]
fn segment_has_id(seg: &[u8], id: &[u8], fsep: u8) -> bool {
    if let (&[a, b, c], &[x, y, z, ..]) = (id, seg) {
        // Three-letter ids, the common case, compared without a call to memcmp.
        return [a, b, c] == [x, y, z] && seg.get(3).is_none_or(|&s| s == fsep);
    }
    seg.len() >= id.len() && &seg[..id.len()] == id && seg.get(id.len()).is_none_or(|&b| b == fsep)
}

/// The `n`-th (1-based) element of `hay` split on `sep`, or `None` past the last one.
#[inline]
pub(crate) fn nth(hay: &[u8], sep: u8, n: u32) -> Option<&[u8]> {
    let (start, end) = nth_range(hay, sep, n)?;
    Some(&hay[start..end])
}

/// Byte range of the `n`-th (1-based) element of `hay` split on `sep`.
#[inline]
pub(crate) fn nth_range(hay: &[u8], sep: u8, n: u32) -> Option<(usize, usize)> {
    let start = if n <= 1 {
        0
    } else {
        after_nth(hay, sep, n - 1)?
    };
    let end = find(&hay[start..], sep).map_or(hay.len(), |e| start + e);
    Some((start, end))
}

impl<'a> Segment<'a> {
    /// The segment's bytes, terminator excluded.
    #[inline]
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The segment id: the bytes before the first field separator (e.g. `PID`).
    pub fn id(&self) -> &'a [u8] {
        let end = memchr::memchr(self.delimiters.field, self.bytes).unwrap_or(self.bytes.len());
        &self.bytes[..end]
    }

    /// Offset of the segment's first byte in the message.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Index of the segment in the message (0-based).
    pub fn index(&self) -> usize {
        self.index
    }

    /// True for the MSH (or a batch header) whose fields 1 and 2 are the delimiters.
    fn is_header(&self) -> bool {
        is_header_segment(self.bytes, self.delimiters.field)
    }

    /// Field `n` with HL7 numbering (for MSH, field 1 is the field separator and field 2
    /// the encoding characters), raw, all repetitions; `None` past the last field.
    pub fn field(&self, n: u32) -> Option<&'a [u8]> {
        let (s, e) = self.field_range(n)?;
        Some(&self.bytes[s..e])
    }

    /// Byte range of field `n` inside the segment (see [`Segment::field`]).
    pub(crate) fn field_range(&self, n: u32) -> Option<(usize, usize)> {
        if n == 0 {
            return None;
        }
        if self.is_header() {
            match n {
                1 => Some((3, 4)),
                _ => nth_range(self.bytes, self.delimiters.field, n),
            }
        } else {
            nth_range(self.bytes, self.delimiters.field, n + 1)
        }
    }

    /// Fields 1..=N in one pass (`[0]` is field 1, HL7 numbering); absent fields are empty.
    pub fn fields_array<const N: usize>(&self) -> [&'a [u8]; N] {
        let mut out: [&'a [u8]; N] = [&[]; N];
        let sep = self.delimiters.field;
        let mut next = 0usize;
        if self.is_header() && N > 0 {
            out[0] = &self.bytes[3..4];
            next = 1;
        } else if self.bytes.get(3) != Some(&sep) {
            // A segment id that is not 3 bytes long: fall back to the general search.
            for (i, slot) in out.iter_mut().enumerate() {
                *slot = self.field(i as u32 + 1).unwrap_or_default();
            }
            return out;
        }
        let mut pos = 4usize;
        while next < N && pos <= self.bytes.len() {
            let rest = &self.bytes[pos..];
            let end = find(rest, sep).unwrap_or(rest.len());
            out[next] = &rest[..end];
            next += 1;
            pos += end + 1;
        }
        out
    }

    /// Appends the offset in the segment of each field separator to `out`, in order (one
    /// pass; for callers that read many fields of the same segment).
    pub fn separators(&self, out: &mut Vec<u32>) {
        crate::swar::positions(self.bytes, self.delimiters.field, out);
    }

    /// Number of fields (HL7 numbering: the last field's number).
    pub fn field_count(&self) -> usize {
        let seps = memchr::memchr_iter(self.delimiters.field, self.bytes).count();
        if self.is_header() { seps + 1 } else { seps }
    }

    /// The raw value at `path`'s field, repetition, component and sub-component inside
    /// this segment (the path's segment id is not checked).
    pub fn get(&self, path: &Path) -> Option<&'a [u8]> {
        let field = self.field(path.field())?;
        if self.is_header() && path.field() <= 2 {
            let all_first = [path.repetition(), path.component(), path.subcomponent()]
                .iter()
                .all(|x| x.is_none_or(|v| v == 1));
            return all_first.then_some(field);
        }
        narrow(
            field,
            &self.delimiters,
            path.repetition(),
            path.component(),
            path.subcomponent(),
        )
    }
}

/// The value at `path`'s repetition, component and sub-component inside `field`, the raw
/// value of field `path.field()` of a segment (not MSH-1 or MSH-2): what [`Segment::get`]
/// does once it has the field, for callers that keep a segment's field boundaries.
pub fn narrow_field<'v>(field: &'v [u8], d: &Delimiters, path: &Path) -> Option<&'v [u8]> {
    narrow(
        field,
        d,
        path.repetition(),
        path.component(),
        path.subcomponent(),
    )
}

/// Narrows a field to a repetition, component and sub-component. A component without a
/// repetition means the first repetition.
#[inline]
pub(crate) fn narrow<'v>(
    field: &'v [u8],
    d: &Delimiters,
    rep: Option<u32>,
    comp: Option<u32>,
    sub: Option<u32>,
) -> Option<&'v [u8]> {
    let mut v = field;
    let rep = rep.or(comp.map(|_| 1));
    if let Some(r) = rep {
        v = nth(v, d.repetition, r)?;
    }
    if let Some(c) = comp {
        v = nth(v, d.component, c)?;
    }
    if let Some(s) = sub {
        v = nth(v, d.subcomponent, s)?;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADT: &[u8] =
        b"MSH|^~\\&|SEND|FAC|RECV|RFAC|20240101120000||ADT^A01^ADT_A01|CTRL1|P|2.5.1\r\
EVN|A01|20240101\rPID|1||123^^^H^MR~456^^^S^SS||DOE^JOHN^Q\rPV1|1|I\r";

    #[test]
    fn scan_finds_delimiters_and_segments() {
        let m = Message::scan(ADT).unwrap();
        assert_eq!(*m.delimiters(), Delimiters::STANDARD);
        assert_eq!(m.segment_count(), 4);
        let ids: Vec<&[u8]> = m.segments().map(|s| s.id()).collect();
        assert_eq!(ids, [&b"MSH"[..], b"EVN", b"PID", b"PV1"]);
        assert!(!m.index().spilled());
    }

    #[test]
    fn separators_are_every_field_separator_in_order() {
        let long = b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|X|P|2.5|||||||||||||||||||||||end";
        for bytes in [ADT, &long[..]] {
            let m = Message::scan(bytes).unwrap();
            for s in m.segments() {
                let mut out = Vec::new();
                s.separators(&mut out);
                let expected: Vec<u32> = memchr::memchr_iter(b'|', s.as_bytes())
                    .map(|p| p as u32)
                    .collect();
                assert_eq!(out, expected, "{:?}", String::from_utf8_lossy(s.as_bytes()));
            }
        }
    }

    #[test]
    fn header_accessors_read_msh() {
        let m = Message::scan(ADT).unwrap();
        assert_eq!(m.control_id(), Some(&b"CTRL1"[..]));
        assert_eq!(m.message_type(), Some(&b"ADT"[..]));
        assert_eq!(m.trigger_event(), Some(&b"A01"[..]));
        assert_eq!(m.message_structure(), Some(&b"ADT_A01"[..]));
        assert_eq!(m.processing_id(), Some(&b"P"[..]));
        assert_eq!(m.version(), Some(&b"2.5.1"[..]));
        assert_eq!(m.sending_application(), Some(&b"SEND"[..]));
        assert_eq!(m.receiving_facility(), Some(&b"RFAC"[..]));
        assert_eq!(m.character_set(), None);
        assert_eq!(m.encoding_characters(), b"^~\\&");
    }

    #[test]
    fn get_walks_repetitions_components_and_subcomponents() {
        let m = Message::scan(
            b"MSH|^~\\&|A\rPID|1||123^^^H&1.2&ISO^MR~456^^^S^SS||DOE^JOHN^^^|\rOBX|1\rOBX|2|x\r",
        )
        .unwrap();
        let get = |p: &str| m.get(&Path::parse(p).unwrap());
        assert_eq!(get("MSH-1"), Some(&b"|"[..]));
        assert_eq!(get("MSH-2"), Some(&b"^~\\&"[..]));
        assert_eq!(get("MSH-2.1"), Some(&b"^~\\&"[..]));
        assert_eq!(get("MSH-2.2"), None);
        assert_eq!(get("MSH-3"), Some(&b"A"[..]));
        assert_eq!(get("MSH-4"), None);
        assert_eq!(get("PID-3"), Some(&b"123^^^H&1.2&ISO^MR~456^^^S^SS"[..]));
        assert_eq!(get("PID-3[2]"), Some(&b"456^^^S^SS"[..]));
        assert_eq!(get("PID-3[2].5"), Some(&b"SS"[..]));
        assert_eq!(get("PID-3.4"), Some(&b"H&1.2&ISO"[..]));
        assert_eq!(get("PID-3.4.2"), Some(&b"1.2"[..]));
        assert_eq!(get("PID-3.4.4"), None);
        assert_eq!(get("PID-3[3]"), None);
        assert_eq!(get("PID-3.6"), None);
        assert_eq!(get("PID-5.3"), Some(&b""[..]));
        assert_eq!(get("PID-6"), Some(&b""[..]));
        assert_eq!(get("PID-7"), None);
        assert_eq!(get("OBX[2]-2"), Some(&b"x"[..]));
        assert_eq!(get("OBX-2"), None);
        assert_eq!(get("OBX[3]-1"), None);
        assert_eq!(get("PID:3(2).1"), Some(&b"456"[..]));
    }

    #[test]
    fn lf_crlf_bom_and_missing_final_terminator_are_accepted() {
        let m = Message::scan(b"\xEF\xBB\xBFMSH|^~\\&|A\r\nPID|1\n\nPV1|2").unwrap();
        assert_eq!(m.segment_count(), 3);
        assert_eq!(m.segment(2).unwrap().as_bytes(), b"PV1|2");
        assert_eq!(m.segment(0).unwrap().offset(), 3);
    }

    #[test]
    fn truncation_character_and_unusual_sets_are_read() {
        let m = Message::scan(b"MSH|^~\\&#|A\r").unwrap();
        assert_eq!(m.delimiters().truncation, Some(b'#'));
        let m = Message::scan(b"MSH|^~\\}|A\r").unwrap();
        assert_eq!(m.delimiters().subcomponent, b'}');
        let m = Message::scan(b"MSH|^~ &|A\r").unwrap();
        assert_eq!(m.delimiters().escape_char(), None);
        let m = Message::scan(b"MSH^~|\\&^A\r").unwrap();
        assert_eq!(m.delimiters().field, b'^');
        assert_eq!(m.delimiters().repetition, b'|');
    }

    #[test]
    fn segment_ids_are_the_three_byte_ids_of_the_segments() {
        let m = Message::scan(b"MSH|^~\\&|A\rPID\rOBX|1\rZZZZ|x\rNT|y\r").unwrap();
        let made: Vec<[u8; 3]> = m
            .segments()
            .map(|s| <[u8; 3]>::try_from(s.id()).unwrap_or([0; 3]))
            .collect();
        assert_eq!(m.segment_ids().collect::<Vec<_>>(), made);
        assert_eq!(made, [*b"MSH", *b"PID", *b"OBX", [0; 3], [0; 3]]);
    }

    #[test]
    fn bad_headers_are_errors_with_offsets() {
        assert_eq!(Message::scan(b""), Err(ScanError::Empty));
        assert_eq!(Message::scan(b"\r\n\r"), Err(ScanError::Empty));
        assert_eq!(
            Message::scan(b"PID|1"),
            Err(ScanError::NotMsh { offset: 0 })
        );
        assert_eq!(
            Message::scan(b"MSH|^~"),
            Err(ScanError::TruncatedMsh { offset: 4 })
        );
        assert_eq!(
            Message::scan(b"MSHA^~\\&"),
            Err(ScanError::BadFieldSeparator {
                byte: b'A',
                offset: 3
            })
        );
        assert_eq!(
            Message::scan(b"MSH|^~|x"),
            Err(ScanError::BadEncodingCharacters { offset: 4, len: 2 })
        );
        assert_eq!(
            Message::scan(b"MSH|^~&|"),
            Err(ScanError::DefaultDelimiterTaken {
                role: "sub-component separator",
                byte: b'&',
                offset: 4
            })
        );
        assert_eq!(
            Message::scan(b"MSH|^\\^|"),
            Err(ScanError::DefaultDelimiterTaken {
                role: "escape character",
                byte: b'\\',
                offset: 4
            })
        );
        assert_eq!(
            Message::scan(b"MSH|^^^^|"),
            Err(ScanError::BadEncodingCharacters { offset: 4, len: 4 })
        );
        assert_eq!(
            Message::scan(b"MSH|^~x&|"),
            Err(ScanError::BadDelimiter {
                byte: b'x',
                offset: 6
            })
        );
        assert_eq!(
            Message::scan(b"MSH|^~\\&#!|"),
            Err(ScanError::BadEncodingCharacters { offset: 4, len: 6 })
        );
    }

    #[test]
    fn three_encoding_characters_take_the_default_sub_component_separator() {
        let m = Message::scan(
            b"MSH|^~\\|A|B
PID|1||12&34^X
",
        )
        .unwrap();
        assert_eq!(*m.delimiters(), Delimiters::STANDARD);
        assert_eq!(m.encoding_characters(), b"^~\\");
        assert_eq!(m.sending_application(), Some(&b"A"[..]));
        assert_eq!(m.get(&Path::parse("PID-3.1.2").unwrap()), Some(&b"34"[..]));
        let mut ack = Vec::new();
        m.delimiters().write_separators(&mut ack);
        assert_eq!(ack, b"|^~\\&");
    }

    #[test]
    fn repeated_encoding_characters_are_read_as_libraries_read_them() {
        // Doubled in place: read once.
        let m = Message::scan(
            b"MSH|^~\\\\&|A
",
        )
        .unwrap();
        assert_eq!(*m.delimiters(), Delimiters::STANDARD);
        assert_eq!(m.sending_application(), Some(&b"A"[..]));
        let m = Message::scan(
            b"MSH|^~\\&&#|A
",
        )
        .unwrap();
        assert_eq!(m.delimiters().truncation, Some(b'#'));
        // Repeating an earlier delimiter: that role takes its default.
        let m = Message::scan(
            b"MSH|^~^&|A
",
        )
        .unwrap();
        assert_eq!(*m.delimiters(), Delimiters::STANDARD);
        let m = Message::scan(
            b"MSH|^~\\&^|A
",
        )
        .unwrap();
        assert_eq!(m.delimiters().truncation, None);
        assert_eq!(m.sending_application(), Some(&b"A"[..]));
    }

    #[test]
    fn declared_text_is_checked_only_where_msh_18_declares_it() {
        let m = Message::scan(b"MSH|^~\\&|A\rPID|1||J\xFFr\r").unwrap();
        assert_eq!(m.validate_declared_text(), Ok(()));
        assert!(m.validate_text().is_err());
        let m =
            Message::scan(b"MSH|^~\\&||||||||||||||||UNICODE UTF-8\rPID|\xC3\xA9\xFF\r").unwrap();
        assert_eq!(
            m.validate_declared_text(),
            Err(ScanError::InvalidUtf8 {
                offset: 44,
                segment: 1
            })
        );
    }

    #[test]
    fn index_detaches_and_reattaches() {
        let m = Message::scan(ADT).unwrap();
        let idx = m.index();
        let again = Message::from_index(ADT, &idx).unwrap();
        assert_eq!(again, m);
        assert!(Message::from_index(&ADT[..ADT.len() - 1], &idx).is_err());
        let other = b"PSH|^~\\&|SEND|FAC|RECV|RFAC|20240101120000||ADT^A01^ADT_A01|CTRL1|P|2.5.1\r\
EVN|A01|20240101\rPID|1||123^^^H^MR~456^^^S^SS||DOE^JOHN^Q\rPV1|1|I\r";
        assert!(Message::from_index(other, &idx).is_err());
    }

    #[test]
    fn more_than_32_segments_spill_but_scan() {
        let mut msg = b"MSH|^~\\&|A\r".to_vec();
        for i in 0..40 {
            msg.extend_from_slice(format!("OBX|{i}\r").as_bytes());
        }
        let m = Message::scan(&msg).unwrap();
        assert_eq!(m.segment_count(), 41);
        assert!(m.index().spilled());
        assert_eq!(
            m.find_segment(b"OBX", 40).unwrap().field(1),
            Some(&b"39"[..])
        );
    }

    #[test]
    fn fields_array_matches_field_by_field_lookup() {
        let m = Message::scan(ADT).unwrap();
        for seg in m.segments() {
            let all: [&[u8]; 20] = seg.fields_array();
            for (i, f) in all.iter().enumerate() {
                assert_eq!(
                    *f,
                    seg.field(i as u32 + 1).unwrap_or_default(),
                    "{:?} field {}",
                    seg.id(),
                    i + 1
                );
            }
        }
        let m = Message::scan(b"MSH|^~\\&|A\rLONGID|x|y\r").unwrap();
        let f: [&[u8]; 3] = m.segment(1).unwrap().fields_array();
        assert_eq!(f, [&b"x"[..], b"y", b""]);
    }

    #[test]
    fn validate_text_reports_offset_of_bad_utf8() {
        let m = Message::scan(b"MSH|^~\\&|A\rPID|1||J\xC3\xA9r\xFFme\r").unwrap();
        assert_eq!(
            m.validate_text(),
            Err(ScanError::InvalidUtf8 {
                offset: 22,
                segment: 1
            })
        );
        let m = Message::scan(b"MSH|^~\\&||||||||||||||||ASCII\rPID|\xC3\xA9\r").unwrap();
        assert_eq!(m.charset(), Charset::Ascii);
        assert!(matches!(
            m.validate_text(),
            Err(ScanError::NonAscii {
                offset: 34,
                segment: 1,
                ..
            })
        ));
        let m = Message::scan(b"MSH|^~\\&||||||||||||||||8859/1\rPID|\xE9\r").unwrap();
        assert_eq!(m.validate_text(), Ok(()));
        let m = Message::scan(b"MSH|^~\\&||||||||||||||||UNICODE UTF-8\rPID|\xC3\xA9\r").unwrap();
        assert_eq!(m.charset(), Charset::Utf8);
        assert_eq!(m.validate_text(), Ok(()));
    }
}
