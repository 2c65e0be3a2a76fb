//! Errors of `hie-hl7`: [`ScanError`] for everything that looks at message bytes
//! (scanning, text validation, re-attaching an index, writing edits) and [`PathError`] for
//! the syntax of a field path, which is checked once when a path is parsed (usually at
//! configuration time) and never on the data path.
//!
//! Every variant says what went wrong and where: a byte offset into the message (counted
//! from the first byte handed to [`crate::Message::scan`], BOM included), a segment index
//! (0-based, in scan order) or a character position in the path text. Errors are small and
//! `Copy` where they can be, so a hot path can build a NAK from them without allocating.

use thiserror::Error;

/// What went wrong looking at, validating or editing HL7 v2 bytes, and where.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ScanError {
    /// No bytes at all (or only a BOM and blank lines).
    #[error("empty input: no HL7 segment found")]
    Empty,
    /// The first segment is not `MSH`.
    #[error("message does not begin with an MSH segment (byte offset {offset})")]
    NotMsh {
        /// Offset of the first byte of the first segment.
        offset: usize,
    },
    /// MSH is shorter than `MSH` + field separator + 3 encoding characters.
    #[error("MSH segment too short for the delimiters (byte offset {offset})")]
    TruncatedMsh {
        /// Offset where the delimiters should be.
        offset: usize,
    },
    /// MSH-1 is not a usable field separator (a letter, digit, CR or LF).
    #[error("invalid field separator {byte:#04x} at byte offset {offset}")]
    BadFieldSeparator {
        /// The offending byte.
        byte: u8,
        /// Its offset.
        offset: usize,
    },
    /// MSH-2 does not give 3 to 5 distinct encoding characters (or is longer than
    /// [`crate::scan::ENCODING_CHARACTERS_WRITTEN_MAX`]).
    #[error(
        "MSH-2 at byte offset {offset} is {len} characters long; 3 to 5 distinct encoding \
         characters expected"
    )]
    BadEncodingCharacters {
        /// Offset of MSH-2.
        offset: usize,
        /// How many characters were found before the next field separator.
        len: usize,
    },
    /// MSH-2 leaves a delimiter out (3 characters, or a repeated one) and the default
    /// for it is already one of the message's delimiters.
    #[error(
        "MSH-2 at byte offset {offset} does not give the {role}, and its default {:?} is \
         already a delimiter of the message",
        char::from(*byte)
    )]
    DefaultDelimiterTaken {
        /// Which delimiter is missing, e.g. "sub-component separator".
        role: &'static str,
        /// The default that could not be used.
        byte: u8,
        /// Offset of MSH-2.
        offset: usize,
    },
    /// A delimiter is a letter, digit, CR or LF.
    #[error(
        "delimiter {byte:#04x} at byte offset {offset} is unusable (a letter, digit, CR or LF)"
    )]
    BadDelimiter {
        /// The offending byte.
        byte: u8,
        /// Its offset.
        offset: usize,
    },
    /// The message is longer than the index's 32-bit offsets can address.
    #[error("message of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Length of the input.
        len: usize,
        /// The limit ([`crate::scan::MESSAGE_BYTES_MAX`]).
        max: usize,
    },
    /// Text that MSH-18 (or its absence) says is UTF-8 is not.
    #[error("invalid UTF-8 at byte offset {offset} (segment {segment})")]
    InvalidUtf8 {
        /// Offset of the first byte of the invalid sequence.
        offset: usize,
        /// Index of the segment holding it.
        segment: usize,
    },
    /// Text that MSH-18 says is ASCII holds a byte above 0x7F.
    #[error("non-ASCII byte {byte:#04x} at byte offset {offset} (segment {segment})")]
    NonAscii {
        /// The offending byte.
        byte: u8,
        /// Its offset.
        offset: usize,
        /// Index of the segment holding it.
        segment: usize,
    },
    /// A detached [`crate::ScanIndex`] does not describe the bytes it is attached to.
    #[error("scan index does not match the bytes: {what}")]
    IndexMismatch {
        /// Which check failed.
        what: &'static str,
    },
    /// A writer edit names a segment the message does not have.
    #[error(
        "no segment {} occurrence {occurrence} in the message",
        String::from_utf8_lossy(segment)
    )]
    NoSuchSegment {
        /// The segment id as written in the path.
        segment: [u8; 3],
        /// The 1-based occurrence asked for.
        occurrence: u32,
    },
    /// A writer edit names a segment index past the end.
    #[error("segment index {index} out of range: message has {count} segments")]
    SegmentIndexOutOfRange {
        /// The index asked for.
        index: usize,
        /// How many segments there are.
        count: usize,
    },
    /// MSH-1 and MSH-2 hold the delimiters; they cannot be edited field by field.
    #[error("MSH-{field} holds delimiters and cannot be edited")]
    DelimiterFieldNotWritable {
        /// 1 or 2.
        field: u32,
    },
    /// A raw value or segment contains a segment terminator (CR or LF).
    #[error("raw value contains a segment terminator at byte offset {offset} of the value")]
    TerminatorInValue {
        /// Offset inside the value.
        offset: usize,
    },
    /// An edit past the end of a field would need more padding separators than allowed.
    #[error("edit needs {needed} padding separators; at most {max} are written")]
    PaddingTooLarge {
        /// Separators the edit would add.
        needed: usize,
        /// The limit ([`crate::writer::PADDING_SEPARATORS_MAX`]).
        max: usize,
    },
    /// The MSH is the message's header; removing it would leave no message.
    #[error("segment 0 (MSH) cannot be removed")]
    MshNotRemovable,
    /// A segment to insert does not start with a 3-character id followed by the field
    /// separator (or end).
    #[error("segment to insert does not start with a 3-character segment id")]
    BadSegmentId,
}

/// What is wrong with a field path's text, and at which character.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum PathError {
    /// The path is empty.
    #[error("empty path")]
    Empty,
    /// The segment id is not 3 upper-case letters or digits.
    #[error("segment id must be 3 letters or digits (position {at})")]
    BadSegmentId {
        /// Character position.
        at: usize,
    },
    /// A number was expected.
    #[error("number expected at position {at}")]
    NumberExpected {
        /// Character position.
        at: usize,
    },
    /// Indices are 1-based; 0 is not an index.
    #[error("index 0 at position {at}: indices start at 1")]
    ZeroIndex {
        /// Character position.
        at: usize,
    },
    /// A number does not fit the index type.
    #[error("number too large at position {at}")]
    NumberTooLarge {
        /// Character position.
        at: usize,
    },
    /// A bracket or parenthesis is not closed.
    #[error("missing closing bracket at position {at}")]
    Unclosed {
        /// Character position.
        at: usize,
    },
    /// A character that does not belong in a path.
    #[error("unexpected character {found:?} at position {at}")]
    Unexpected {
        /// Character position.
        at: usize,
        /// The character found.
        found: char,
    },
    /// A sub-component without a component, or more than 3 levels below the field.
    #[error("too many levels below the field at position {at}")]
    TooDeep {
        /// Character position.
        at: usize,
    },
}
