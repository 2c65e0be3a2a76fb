//! Control ids and patient ids stamped into every message, and their parsing back.
//!
//! Every message a run sends carries a unique MSH-10 of exactly [`CONTROL_ID_LEN`] ASCII
//! characters, so the sender patches it in place into precomputed bytes, and the sink of
//! an `e2e` run recovers from it, without any shared table, which connection sent the
//! message, its sequence number on that connection and when it was meant to be sent:
//!
//! ```text
//! offset  0      4              12             20
//!         | conn | seq           | t_us         |
//!         4 hex   8 hex           8 hex           (lower-case, zero-padded)
//! conn: global connection index (0..=0xFFFF)
//! seq:  message number on that connection (0..=0xFFFF_FFFF)
//! t_us: intended send time, microseconds since the run started, modulo 2^32 (71 min);
//!       latency is computed with wrapping subtraction, exact below 71 minutes
//! ```
//!
//! 20 characters is the length HL7 v2.x gives MSH-10 (ST, 20). Patient ids are PID-3.1
//! values of exactly [`PATIENT_ID_LEN`] characters: `P` and 7 decimal digits.

/// Length of a control id in bytes.
pub const CONTROL_ID_LEN: usize = 20;
/// Length of a patient id in bytes.
pub const PATIENT_ID_LEN: usize = 8;
/// Largest patient population a patient id can express.
pub const PATIENTS_MAX: u32 = 9_999_999;
/// Largest number of connections a control id can express.
pub const CONNECTIONS_MAX: usize = 0x1_0000;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// What a control id says about its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlId {
    /// Global connection index.
    pub conn: u16,
    /// Message number on that connection.
    pub seq: u32,
    /// Intended send time, microseconds since the run start, modulo 2^32.
    pub t_us: u32,
}

impl ControlId {
    /// Writes the id into `out`, which must be exactly [`CONTROL_ID_LEN`] bytes.
    #[inline]
    pub fn write(self, out: &mut [u8]) {
        debug_assert_eq!(out.len(), CONTROL_ID_LEN);
        write_hex(&mut out[0..4], u64::from(self.conn));
        write_hex(&mut out[4..12], u64::from(self.seq));
        write_hex(&mut out[12..20], u64::from(self.t_us));
    }

    /// Parses an id written by [`ControlId::write`]; `None` for anything else (a message
    /// this run did not send, or one an engine rewrote).
    pub fn parse(bytes: &[u8]) -> Option<ControlId> {
        if bytes.len() != CONTROL_ID_LEN {
            return None;
        }
        Some(ControlId {
            conn: u16::try_from(read_hex(&bytes[0..4])?).ok()?,
            seq: u32::try_from(read_hex(&bytes[4..12])?).ok()?,
            t_us: u32::try_from(read_hex(&bytes[12..20])?).ok()?,
        })
    }
}

/// Writes patient `index` as `P` + 7 digits into `out` ([`PATIENT_ID_LEN`] bytes).
#[inline]
pub fn write_patient(out: &mut [u8], index: u32) {
    debug_assert_eq!(out.len(), PATIENT_ID_LEN);
    debug_assert!(index <= PATIENTS_MAX);
    out[0] = b'P';
    let mut v = index;
    for slot in out[1..].iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// Parses a patient id written by [`write_patient`].
pub fn parse_patient(bytes: &[u8]) -> Option<u32> {
    if bytes.len() != PATIENT_ID_LEN || bytes[0] != b'P' {
        return None;
    }
    bytes[1..].iter().try_fold(0u32, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
    })
}

#[inline]
fn write_hex(out: &mut [u8], mut v: u64) {
    for slot in out.iter_mut().rev() {
        *slot = HEX[(v & 0xF) as usize];
        v >>= 4;
    }
}

fn read_hex(bytes: &[u8]) -> Option<u64> {
    bytes.iter().try_fold(0u64, |acc, &b| {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => return None,
        };
        Some(acc << 4 | u64::from(digit))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_id_round_trips_through_its_text() {
        let id = ControlId {
            conn: 0xBEEF,
            seq: 0x0123_4567,
            t_us: u32::MAX,
        };
        let mut buf = [0u8; CONTROL_ID_LEN];
        id.write(&mut buf);
        assert_eq!(&buf, b"beef01234567ffffffff");
        assert_eq!(ControlId::parse(&buf), Some(id));
    }

    #[test]
    fn control_id_parse_rejects_foreign_ids() {
        assert_eq!(ControlId::parse(b"MSG00001"), None);
        assert_eq!(ControlId::parse(b"beef01234567fffffffG"), None);
        assert_eq!(ControlId::parse(b"BEEF01234567FFFFFFFF"), None);
    }

    #[test]
    fn patient_id_round_trips_and_rejects_others() {
        let mut buf = [0u8; PATIENT_ID_LEN];
        write_patient(&mut buf, 42);
        assert_eq!(&buf, b"P0000042");
        assert_eq!(parse_patient(&buf), Some(42));
        write_patient(&mut buf, PATIENTS_MAX);
        assert_eq!(parse_patient(&buf), Some(PATIENTS_MAX));
        assert_eq!(parse_patient(b"X0000042"), None);
        assert_eq!(parse_patient(b"P00000a2"), None);
        assert_eq!(parse_patient(b"P000042"), None);
    }
}
