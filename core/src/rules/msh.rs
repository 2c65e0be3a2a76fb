//! The MSH's field boundaries, found in one pass per message on first use: rules read
//! the header more than any other segment (the facts a constraint compares, the version
//! that picks the schema tables, and conditions on MSH-3..MSH-12), and each read through
//! [`hie_hl7::Segment::get`] would search the segment from its start again.
//!
//! Limit: one `u32` per field separator of the MSH, bounded by the message's size (itself
//! bounded by the scanner); the buffer is reused from message to message.

use std::cell::RefCell;

use hie_hl7::{Message, Path, scan::narrow_field};

/// The field separators' positions in the message's MSH (segment 0), made on first use.
#[derive(Debug, Default)]
pub struct MshFields {
    seps: RefCell<Seps>,
}

#[derive(Debug, Default)]
struct Seps {
    ready: bool,
    /// The MSH the positions are of (its address and length): a message read without a
    /// reset in between is searched anew, never read with another's positions.
    of: (usize, usize),
    at: Vec<u32>,
}

impl MshFields {
    /// Forgets the boundaries (a new message).
    pub fn reset(&self) {
        self.seps.borrow_mut().ready = false;
    }

    /// MSH-`n` (`n` ≥ 2, HL7 numbering) of `m`, raw, every repetition; `None` past the
    /// last field. The same as `m.segment(0)?.field(n)`.
    pub fn field<'m>(&self, m: &Message<'m>, n: u32) -> Option<&'m [u8]> {
        let segment = m.segment(0)?;
        let msh = segment.as_bytes();
        let mut seps = self.seps.borrow_mut();
        let of = (msh.as_ptr() as usize, msh.len());
        if !seps.ready || seps.of != of {
            seps.ready = true;
            seps.of = of;
            seps.at.clear();
            segment.separators(&mut seps.at);
        }
        // Field n (n ≥ 2) follows separator n - 1 (the first is MSH-1 itself, at 3).
        let i = usize::try_from(n.checked_sub(2)?).ok()?;
        let start = *seps.at.get(i)? as usize + 1;
        let end = seps.at.get(i + 1).map_or(msh.len(), |&e| e as usize);
        msh.get(start..end)
    }

    /// Component `c` of the first repetition of MSH-`n` (`MSH-9.1`, the message type).
    pub fn component<'m>(&self, m: &Message<'m>, n: u32, c: u32) -> Option<&'m [u8]> {
        self.get(m, &Path::field_of([0; 3], n).with_component(Some(c)))
    }

    /// MSH-9.1, MSH-9.2 and MSH-9.3 (message type, trigger event, structure) of the first
    /// repetition, in one pass; a missing one is empty.
    pub fn message_type<'m>(&self, m: &Message<'m>) -> [&'m [u8]; 3] {
        let d = m.delimiters();
        let field = self.field(m, 9).unwrap_or_default();
        let first = field
            .split(|&b| b == d.repetition)
            .next()
            .unwrap_or_default();
        let mut out: [&[u8]; 3] = [&[]; 3];
        for (slot, c) in out.iter_mut().zip(first.split(|&b| b == d.component)) {
            *slot = c;
        }
        out
    }

    /// The value at `path` (field ≥ 3) in `m`'s MSH, as `Segment::get` reads it.
    pub fn get<'m>(&self, m: &Message<'m>, path: &Path) -> Option<&'m [u8]> {
        let field = self.field(m, path.field())?;
        narrow_field(field, m.delimiters(), path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_read_as_the_segment_reads_them() {
        let m = Message::scan(
            b"MSH|^~\\&|APP^X|FAC|R||20240101||ORU^R01^ORU_R01|C1|P|2.5\rPID|1||9~8^^^A\r",
        )
        .unwrap();
        let cache = MshFields::default();
        let msh = m.segment(0).unwrap();
        for round in 0..2 {
            for n in 2..=20 {
                assert_eq!(cache.field(&m, n), msh.field(n), "MSH-{n}, round {round}");
            }
            for p in [
                "MSH-3.1",
                "MSH-3.2",
                "MSH-9.3",
                "MSH-9(1).2",
                "MSH-12",
                "MSH-13.1",
            ] {
                let path = Path::parse(p).unwrap();
                assert_eq!(cache.get(&m, &path), msh.get(&path), "{p}");
            }
            cache.reset();
        }
        assert_eq!(cache.component(&m, 9, 3), m.message_structure());
        assert_eq!(cache.component(&m, 9, 1), m.message_type());
        let [kind, trigger, structure] = cache.message_type(&m);
        assert_eq!(
            (Some(kind), Some(trigger), Some(structure)),
            (m.message_type(), m.trigger_event(), m.message_structure())
        );
        // Another message, even without a reset, reads its own MSH.
        let other = Message::scan(b"MSH|^~\\&|B\r").unwrap();
        assert_eq!(cache.field(&other, 3), Some(&b"B"[..]));
        assert_eq!(cache.field(&other, 4), None);
        assert_eq!(cache.message_type(&other), [&b""[..]; 3]);
    }
}
