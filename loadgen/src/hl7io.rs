//! The load generator's use of HL7 v2, all of it through `hie-hl7` (scanner, field paths,
//! ACK builder): where MSH-10 and PID-3.1 sit in a message (so the sender can stamp ids
//! into precomputed frames in place), MSA-1 and MSA-2 of an ACK, and the ACK the sink
//! sends back. Nothing here reads HL7 bytes by hand.
//!
//! Invariants: every function takes untrusted bytes and returns `None` (or writes a NAK
//! `AR`) on anything the scanner rejects; nothing here panics on input. Ranges returned
//! are byte offsets into the slice given.

use std::ops::Range;

use hie_hl7::{AckBuilder, AckCode, Message, Path};

/// Byte range of `part` inside `whole`; `part` must be a sub-slice of `whole`, as every
/// value the scanner returns is.
fn range_in(whole: &[u8], part: &[u8]) -> Range<usize> {
    let start = (part.as_ptr() as usize).wrapping_sub(whole.as_ptr() as usize);
    assert!(
        start <= whole.len() && part.len() <= whole.len() - start,
        "a scanned value lies inside its message"
    );
    start..start + part.len()
}

/// PID-3.1, first repetition: the patient identifier the sender stamps.
pub fn patient_path() -> Path {
    Path::parse("PID-3[1].1").expect("constant path parses")
}

/// Byte ranges of MSH-10 and of PID-3.1 (first repetition, if the message has PID-3) of
/// `msg`; `None` when `msg` does not scan.
pub fn id_ranges(msg: &[u8]) -> Option<(Range<usize>, Option<Range<usize>>)> {
    let scanned = Message::scan(msg).ok()?;
    let control = range_in(msg, scanned.control_id()?);
    let patient = scanned
        .get(&patient_path())
        .map(|value| range_in(msg, value));
    Some((control, patient))
}

/// MSA-1 and MSA-2 of an ACK; `None` when it does not scan or has no MSA.
pub fn msa(ack: &[u8]) -> Option<(&[u8], &[u8])> {
    let scanned = Message::scan(ack).ok()?;
    let msa = scanned.find_segment(b"MSA", 1)?;
    Some((msa.field(1)?, msa.field(2).unwrap_or_default()))
}

/// Appends to `out` the reply to `msg` with MSA-1 `code`: an ACK echoing MSH-10 when `msg`
/// scans, otherwise a NAK `AR` with an empty MSA-2 (there is no control id to answer).
/// Returns the code actually written.
pub fn write_reply(
    builder: &mut AckBuilder,
    out: &mut Vec<u8>,
    msg: Option<&Message<'_>>,
    code: AckCode,
) -> AckCode {
    match msg {
        Some(m) => {
            builder.write_ack(out, m, code, None);
            code
        }
        None => {
            builder.write_nak_unscanned(out, b"", AckCode::AR, None);
            AckCode::AR
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADT: &[u8] = b"MSH|^~\\&|SND|FAC|RCV|RFAC|20250101||ADT^A01|CTRL123|P|2.5\rPID|1||PAT9^^^H^MR~OTHER||DOE\r";

    #[test]
    fn control_id_and_patient_are_located() {
        let (ctrl, patient) = id_ranges(ADT).unwrap();
        assert_eq!(&ADT[ctrl], b"CTRL123");
        assert_eq!(&ADT[patient.unwrap()], b"PAT9");
    }

    #[test]
    fn lf_terminated_messages_are_read_too() {
        let msg = b"MSH|^~\\&|A|B|C|D|x||ADT^A08|ID9|P|2.3\nPID|||77\n";
        let (ctrl, patient) = id_ranges(msg).unwrap();
        assert_eq!(&msg[ctrl], b"ID9");
        assert_eq!(&msg[patient.unwrap()], b"77");
    }

    #[test]
    fn ack_written_for_a_message_reads_back_with_its_control_id() {
        let mut out = Vec::new();
        let scanned = Message::scan(ADT).unwrap();
        let code = write_reply(
            &mut AckBuilder::new(),
            &mut out,
            Some(&scanned),
            AckCode::AE,
        );
        assert_eq!(code, AckCode::AE);
        assert!(out.starts_with(b"MSH|^~\\&|RCV|RFAC|SND|FAC|"), "{out:?}");
        assert_eq!(msa(&out), Some((&b"AE"[..], &b"CTRL123"[..])));
    }

    #[test]
    fn garbage_gets_a_nak_with_empty_msa2_and_no_panic() {
        let mut out = Vec::new();
        let code = write_reply(&mut AckBuilder::new(), &mut out, None, AckCode::AA);
        assert_eq!(code, AckCode::AR);
        assert_eq!(msa(&out), Some((&b"AR"[..], &b""[..])));
        for junk in [
            &b""[..],
            b"MSH",
            b"MSH||",
            b"MSH|^~\\&",
            b"MSA|AA",
            b"\r\r\n",
        ] {
            assert_eq!(msa(junk), None);
            let _ = id_ranges(junk);
        }
    }
}
