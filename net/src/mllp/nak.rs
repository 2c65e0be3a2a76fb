//! The NAK the server sends for a frame it cannot take whole (over `frame_bytes_max`): an
//! `AR` with an ERR segment (HL7 table 0357 code 207, application internal error) naming the
//! limit, echoing the control id found at the start of the message when there is one.
//!
//! The control id is read from the raw prefix without scanning (the message is incomplete):
//! the first segment must be `MSH` followed by its field separator; MSH-10 is the text
//! between the 9th and 10th field separators, cut at the end of the segment or of the
//! prefix. Anything else gives an empty MSA-2.

use hie_hl7::{AckBuilder, AckCode, ErrDetail};
use memchr::memchr2;

/// HL7 table 0357: application internal error.
const ERR_CODE_APPLICATION_INTERNAL: u16 = 207;

/// Appends the bare NAK (no MLLP frame) for an oversize frame whose first bytes are `partial`.
pub fn write_oversize_nak(partial: &[u8], frame_bytes_max: usize, out: &mut Vec<u8>) {
    let text = format!("message larger than the {frame_bytes_max} bytes this service accepts");
    let err = ErrDetail {
        code: ERR_CODE_APPLICATION_INTERNAL,
        severity: b'E',
        location: None,
        text: &text,
    };
    AckBuilder::new().write_nak_unscanned(
        out,
        control_id_from_prefix(partial),
        AckCode::AR,
        Some(&err),
    );
}

/// MSH-10 of a message of which only the first bytes are known (empty when not found).
pub fn control_id_from_prefix(prefix: &[u8]) -> &[u8] {
    let Some(rest) = prefix.strip_prefix(b"MSH") else {
        return &[];
    };
    let Some(&sep) = rest.first() else { return &[] };
    let segment_end = memchr2(b'\r', b'\n', rest).unwrap_or(rest.len());
    // rest = "|^~\&|MSH-3|…": field n (n ≥ 2) is piece n-1 after splitting on the separator.
    rest[..segment_end]
        .split(|b| *b == sep)
        .nth(9)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_id_is_found_in_a_message_prefix() {
        assert_eq!(
            control_id_from_prefix(b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|CTRL42|P|2.5\rPID|"),
            b"CTRL42"
        );
        assert_eq!(
            control_id_from_prefix(b"MSH#^~\\&#A#B#C#D#2024##ADT#X9#P"),
            b"X9"
        );
        assert_eq!(
            control_id_from_prefix(b"MSH|^~\\&|A|B|C|D|2024||ADT|CTRL4"),
            b"CTRL4"
        );
    }

    #[test]
    fn control_id_is_empty_when_absent_or_not_hl7() {
        assert_eq!(
            control_id_from_prefix(b"MSH|^~\\&|A|B\rPID|1|2|3|4|5|6|7|8|9|10"),
            b""
        );
        assert_eq!(control_id_from_prefix(b"GARBAGE"), b"");
        assert_eq!(control_id_from_prefix(b"MSH"), b"");
    }

    #[test]
    fn oversize_nak_is_an_ar_with_an_err_segment_and_the_control_id() {
        let mut out = Vec::new();
        write_oversize_nak(
            b"MSH|^~\\&|A|B|C|D|2024||ADT^A01|BIG1|P|2.5\rPID|",
            1024,
            &mut out,
        );
        let nak = hie_hl7::Message::scan(&out).expect("the NAK scans");
        assert_eq!(nak.ack_code(), Some(AckCode::AR));
        assert_eq!(nak.acked_control_id(), Some(&b"BIG1"[..]));
        assert!(
            nak.find_segment(b"ERR", 1).is_some(),
            "{}",
            String::from_utf8_lossy(&out)
        );
    }
}
