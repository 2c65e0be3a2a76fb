//! hie-hl7: zero-copy HL7 v2. A message is its bytes plus a small index of segment
//! offsets; fields are located on demand. No I/O, no async.
//!
//! - [`scan`]: [`Message::scan`] finds the delimiters and every segment in one pass;
//!   [`ScanIndex`] is the owned index an envelope can carry.
//! - [`path`]: [`Path`] (`PID-3[2].1.2`, `OBX[3]-5`, `PID:3(2).1`), parsed once.
//! - [`escape`]: [`decode`] / [`encode`] of escape sequences, on request only.
//! - [`ack`]: [`AckBuilder`] for ACK/NAK in original and enhanced mode.
//! - [`writer`]: [`MessageWriter`], edits spliced into copied spans.
//! - [`batch`]: [`Batch`], the messages of a batch file.
//! - [`schema`]: HL7 2.3-2.5.1 field names and message structures, for named and
//!   group paths; [`schema::place()`] puts a message's segments in its groups.
//! - [`fuzz`]: the fuzz target's body, runnable on stable.

pub mod ack;
pub mod batch;
pub mod error;
pub mod escape;
pub mod fuzz;
pub mod path;
pub mod scan;
pub mod schema;
mod swar;
pub mod writer;

pub use ack::{AckBuilder, AckCode, ErrDetail};
pub use batch::{Batch, Envelope};
pub use error::{PathError, ScanError};
pub use escape::{decode, encode};
pub use path::Path;
pub use scan::{Charset, Delimiters, Message, ScanIndex, Segment};
pub use writer::MessageWriter;
