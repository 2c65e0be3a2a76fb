//! The few HL7 v2 facts the load generator needs, located in raw message bytes: where
//! MSH-10 and PID-3.1 are (to stamp ids into messages), MSA-1 and MSA-2 of an ACK, and
//! the ACK the sink sends back.
//!
//! Invariants: every function takes untrusted bytes and returns `None` (or a reply with
//! AR) on anything it cannot read; nothing here panics on input. Segment terminators are
//! CR, LF or CRLF; delimiters are read from MSH-1 / MSH-2.

use std::ops::Range;

use memchr::{memchr, memchr2};

/// Delimiters of a message, from MSH-1 and MSH-2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delimiters {
    /// Field separator (MSH-1).
    pub field: u8,
    /// Component separator (first character of MSH-2).
    pub component: u8,
}

/// The delimiters of `msg`, which must start with `MSH`.
pub fn delimiters(msg: &[u8]) -> Option<Delimiters> {
    if msg.len() < 5 || &msg[..3] != b"MSH" {
        return None;
    }
    let field = msg[3];
    let component = msg[4];
    if field == component || is_terminator(field) || is_terminator(component) {
        return None;
    }
    Some(Delimiters { field, component })
}

fn is_terminator(b: u8) -> bool {
    b == b'\r' || b == b'\n'
}

/// Byte ranges of the segments of `msg` (terminators excluded, empty lines skipped).
pub fn segments(msg: &[u8]) -> impl Iterator<Item = Range<usize>> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        loop {
            if at >= msg.len() {
                return None;
            }
            let end = memchr2(b'\r', b'\n', &msg[at..]).map_or(msg.len(), |i| at + i);
            let range = at..end;
            at = end + 1;
            if !range.is_empty() {
                return Some(range);
            }
        }
    })
}

/// The byte range of field `n` of the segment `seg` (`seg` starts with the segment id).
/// For MSH, `n` counts as HL7 does (MSH-1 is the separator itself, MSH-2 the encoding
/// characters); for other segments field 1 is the one after the id.
pub fn field(msg: &[u8], seg: Range<usize>, n: usize, sep: u8) -> Option<Range<usize>> {
    let is_msh = msg.get(seg.start..seg.start + 3) == Some(b"MSH");
    // Index of the separator-delimited piece holding field n: piece 0 is the segment id.
    let piece = if is_msh { n.checked_sub(1)? } else { n };
    if is_msh && piece == 0 {
        return None;
    }
    let mut start = seg.start;
    for _ in 0..piece {
        let next = memchr(sep, &msg[start..seg.end])?;
        start += next + 1;
    }
    let end = memchr(sep, &msg[start..seg.end]).map_or(seg.end, |i| start + i);
    Some(start..end)
}

/// The first component of `range`.
pub fn first_component(msg: &[u8], range: Range<usize>, comp: u8) -> Range<usize> {
    let end = memchr(comp, &msg[range.clone()]).map_or(range.end, |i| range.start + i);
    range.start..end
}

/// The first segment with id `id`.
pub fn find_segment(msg: &[u8], id: &[u8; 3]) -> Option<Range<usize>> {
    segments(msg).find(|s| msg.get(s.start..s.start + 3) == Some(id.as_slice()))
}

/// MSH-10 of `msg`.
pub fn control_id_range(msg: &[u8]) -> Option<Range<usize>> {
    let d = delimiters(msg)?;
    let msh = segments(msg).next()?;
    field(msg, msh, 10, d.field)
}

/// PID-3.1 (first repetition) of `msg`.
pub fn patient_range(msg: &[u8]) -> Option<Range<usize>> {
    let d = delimiters(msg)?;
    let pid = find_segment(msg, b"PID")?;
    let f = field(msg, pid, 3, d.field)?;
    let rep_end = msg[f.clone()]
        .iter()
        .position(|&b| b == b'~')
        .map_or(f.end, |i| f.start + i);
    Some(first_component(msg, f.start..rep_end, d.component))
}

/// MSA-1 and MSA-2 of an ACK.
pub fn msa(ack: &[u8]) -> Option<(&[u8], &[u8])> {
    let d = delimiters(ack)?;
    let seg = find_segment(ack, b"MSA")?;
    let code = field(ack, seg.clone(), 1, d.field)?;
    let id = field(ack, seg, 2, d.field)?;
    let id = first_component(ack, id, d.component);
    Some((&ack[code], &ack[id]))
}

/// Appends to `out` an ACK with MSA-1 `code` answering `msg`: MSH with sender and
/// receiver swapped, MSA-1, MSA-2 = the message's MSH-10. `msg` that is not HL7 gets a
/// minimal ACK with an empty MSA-2.
pub fn write_ack(out: &mut Vec<u8>, msg: &[u8], code: &str) {
    let d = delimiters(msg).unwrap_or(Delimiters {
        field: b'|',
        component: b'^',
    });
    let msh = segments(msg).next().filter(|_| delimiters(msg).is_some());
    let get = |n: usize| -> &[u8] {
        msh.clone()
            .and_then(|s| field(msg, s, n, d.field))
            .map_or(&[][..], |r| &msg[r])
    };
    let encoding: &[u8] = if msh.is_some() { get(2) } else { b"^~\\&" };
    let f = d.field;
    out.extend_from_slice(b"MSH");
    out.push(f);
    out.extend_from_slice(encoding);
    for part in [get(5), get(6), get(3), get(4), b"".as_slice()] {
        out.push(f);
        out.extend_from_slice(part);
    }
    out.push(f);
    out.push(f);
    out.extend_from_slice(b"ACK");
    out.push(f);
    out.extend_from_slice(get(10));
    out.push(f);
    out.extend_from_slice(get(11));
    out.push(f);
    out.extend_from_slice(get(12));
    out.extend_from_slice(b"\rMSA");
    out.push(f);
    out.extend_from_slice(code.as_bytes());
    out.push(f);
    out.extend_from_slice(get(10));
    out.push(b'\r');
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADT: &[u8] = b"MSH|^~\\&|SND|FAC|RCV|RFAC|20250101||ADT^A01|CTRL123|P|2.5\rPID|1||PAT9^^^H^MR~OTHER||DOE\r";

    #[test]
    fn control_id_and_patient_are_located() {
        assert_eq!(&ADT[control_id_range(ADT).unwrap()], b"CTRL123");
        assert_eq!(&ADT[patient_range(ADT).unwrap()], b"PAT9");
    }

    #[test]
    fn lf_terminated_messages_are_read_too() {
        let msg = b"MSH|^~\\&|A|B|C|D|x||ADT^A08|ID9|P|2.3\nPID|||77\n";
        assert_eq!(&msg[control_id_range(msg).unwrap()], b"ID9");
        assert_eq!(&msg[patient_range(msg).unwrap()], b"77");
    }

    #[test]
    fn ack_written_for_a_message_reads_back_with_its_control_id() {
        let mut out = Vec::new();
        write_ack(&mut out, ADT, "AE");
        assert!(out.starts_with(b"MSH|^~\\&|RCV|RFAC|SND|FAC|"));
        assert_eq!(msa(&out), Some((&b"AE"[..], &b"CTRL123"[..])));
    }

    #[test]
    fn garbage_gets_an_ack_with_empty_msa2_and_no_panic() {
        let mut out = Vec::new();
        write_ack(&mut out, b"\x00\x01garbage", "AR");
        assert_eq!(msa(&out), Some((&b"AR"[..], &b""[..])));
        for junk in [
            &b""[..],
            b"MSH",
            b"MSH||",
            b"MSH|^~\\&",
            b"MSA|AA",
            b"\r\r\n",
        ] {
            assert_eq!(control_id_range(junk), None);
            assert_eq!(msa(junk), None);
            let _ = patient_range(junk);
        }
    }
}
