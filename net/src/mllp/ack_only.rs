//! A frame handler that acknowledges every frame at once, without storing anything: `AA`
//! for a message that scans, NAK `AR` with an ERR segment (table 0357 code 100, with the
//! scanner's reason) for one that does not. It is the peer for benchmarks and interop
//! tests and the MLLP sink of the load generator; the engine's services use their own
//! handler that acknowledges only once the message is durable.

use std::cell::RefCell;

use hie_hl7::{AckBuilder, AckCode, ErrDetail, Message};

use crate::mllp::nak::control_id_from_prefix;
use crate::mllp::server::{ConnInfo, FrameHandler, Reply};

/// HL7 table 0357: segment sequence error (the message does not scan: no valid MSH first).
const ERR_CODE_SEGMENT_SEQUENCE: u16 = 100;

/// Acknowledges each frame immediately (see the module doc).
#[derive(Debug, Default)]
pub struct AckOnlyHandler {
    builder: RefCell<AckBuilder>,
}

impl AckOnlyHandler {
    /// A handler using `builder` for its identity and control ids.
    pub fn new(builder: AckBuilder) -> Self {
        Self {
            builder: RefCell::new(builder),
        }
    }
}

impl FrameHandler for AckOnlyHandler {
    async fn on_frame(&self, _conn: &ConnInfo, frame: &[u8], response: &mut Vec<u8>) -> Reply {
        write_ack_or_nak(&mut self.builder.borrow_mut(), frame, response);
        Reply::Respond
    }
}

/// Appends `AA` for a frame that scans, NAK `AR` with the scan error otherwise.
pub fn write_ack_or_nak(builder: &mut AckBuilder, frame: &[u8], response: &mut Vec<u8>) {
    match Message::scan(frame) {
        Ok(msg) => builder.write_ack(response, &msg, AckCode::AA, None),
        Err(e) => {
            let text = e.to_string();
            let err = ErrDetail {
                code: ERR_CODE_SEGMENT_SEQUENCE,
                severity: b'E',
                location: None,
                text: &text,
            };
            builder.write_nak_unscanned(
                response,
                control_id_from_prefix(frame),
                AckCode::AR,
                Some(&err),
            );
        }
    }
}
