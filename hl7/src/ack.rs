//! ACK/NAK building: original mode (AA/AE/AR) and enhanced mode (CA/CE/CR), written into
//! a caller's reusable buffer (appended, so a caller can frame it with MLLP bytes around).
//!
//! ```text
//! MSH|^~\&|<in MSH-5>|<in MSH-6>|<in MSH-3>|<in MSH-4>|<now UTC YYYYMMDDHHMMSS>||ACK^<in MSH-9.2>^ACK|<fresh id>|<in MSH-11>|<in MSH-12>[||||||<in MSH-18>] CR
//! MSA|<code>|<in MSH-10>[|<error text>] CR
//! [ERR||<location>|<code>^<text>^HL70357|<severity> CR]
//! ```
//!
//! A batch (`FHS`/`BHS` … `BTS`/`FTS`) is answered with a batch holding one ACK per
//! message, as IRIS answers one by default (its `NoBatchReply` off):
//!
//! ```text
//! [FHS|^~\&|<in FHS-5>|<in FHS-6>|<in FHS-3>|<in FHS-4>|<now>||||<fresh id>|<in FHS-11> CR]
//! [BHS|… the same from the BHS …|<in BHS-11> CR]
//! MSH … MSA … (one ACK per message, as above)
//! [BTS|<number of ACKs> CR]
//! [FTS|<number of batches: 1 with a BHS, else 0> CR]
//! ```
//!
//! The field separator and encoding characters (4 or 5) are those of the inbound message,
//! and so are the version, processing id and character set; sending and receiving
//! application/facility are swapped. When the inbound MSH-5/MSH-6 are empty, the builder's
//! own identity (if configured) fills the ACK's MSH-3/MSH-4. The ERR segment uses the
//! HL7 2.5+ layout (ERR-2 location, ERR-3 code from table 0357, ERR-4 severity), and the
//! text is also put in MSA-3 for receivers older than 2.5. Every value written from the
//! error detail is escaped. No allocation per ACK: control ids come from a counter and the
//! timestamp is formatted at most once a second.

use crate::batch::Envelope;
use crate::escape::encode;
use crate::scan::{Delimiters, Message, narrow, nth};
use std::time::{SystemTime, UNIX_EPOCH};

/// An acknowledgment code (MSA-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AckCode {
    /// Original mode: application accept.
    AA,
    /// Original mode: application error.
    AE,
    /// Original mode: application reject.
    AR,
    /// Enhanced mode: commit accept.
    CA,
    /// Enhanced mode: commit error.
    CE,
    /// Enhanced mode: commit reject.
    CR,
}

impl AckCode {
    /// The code as written in MSA-1.
    pub fn as_str(self) -> &'static str {
        match self {
            AckCode::AA => "AA",
            AckCode::AE => "AE",
            AckCode::AR => "AR",
            AckCode::CA => "CA",
            AckCode::CE => "CE",
            AckCode::CR => "CR",
        }
    }

    /// Reads MSA-1 (surrounding spaces ignored, case-sensitive as the standard).
    pub fn parse(msa1: &[u8]) -> Option<AckCode> {
        match msa1.trim_ascii() {
            b"AA" => Some(AckCode::AA),
            b"AE" => Some(AckCode::AE),
            b"AR" => Some(AckCode::AR),
            b"CA" => Some(AckCode::CA),
            b"CE" => Some(AckCode::CE),
            b"CR" => Some(AckCode::CR),
            _ => None,
        }
    }

    /// AA or CA.
    pub fn is_accept(self) -> bool {
        matches!(self, AckCode::AA | AckCode::CA)
    }
    /// AE or CE.
    pub fn is_error(self) -> bool {
        matches!(self, AckCode::AE | AckCode::CE)
    }
    /// AR or CR.
    pub fn is_reject(self) -> bool {
        matches!(self, AckCode::AR | AckCode::CR)
    }
    /// CA, CE or CR (enhanced-mode commit acknowledgments).
    pub fn is_enhanced(self) -> bool {
        matches!(self, AckCode::CA | AckCode::CE | AckCode::CR)
    }
}

/// The content of an ERR segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrDetail<'e> {
    /// HL7 table 0357: 0 message accepted, 100 segment sequence error, 101 required field
    /// missing, 102 data type error, 103 table value not found, 200 unsupported message
    /// type, 201 unsupported event code, 203 unsupported version id, 207 application
    /// internal error.
    pub code: u16,
    /// `b'E'` error, `b'W'` warning, `b'I'` information (anything else is written as E).
    pub severity: u8,
    /// ERR-2 error location with `^` between its components, e.g. `"MSH^1^10"`; the
    /// message's own component separator is written in place of `^`.
    pub location: Option<&'e str>,
    /// Human-readable text (escaped when written).
    pub text: &'e str,
}

/// Builds ACKs and NAKs; holds this engine's identity and the control-id counter.
#[derive(Debug, Clone)]
pub struct AckBuilder {
    application: Vec<u8>,
    facility: Vec<u8>,
    prefix: Vec<u8>,
    counter: u64,
    ts_secs: u64,
    ts: [u8; 14],
}

impl Default for AckBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl AckBuilder {
    /// A builder with no identity and a control-id prefix made of the current UTC
    /// second in hex (so ids differ across restarts), e.g. `6743A1F0-1`, `6743A1F0-2`…
    pub fn new() -> Self {
        let secs = now_secs();
        let mut prefix = format!("{secs:X}").into_bytes();
        prefix.push(b'-');
        AckBuilder {
            application: Vec::new(),
            facility: Vec::new(),
            prefix,
            counter: 0,
            ts_secs: u64::MAX,
            ts: [b'0'; 14],
        }
    }

    /// Sets this engine's application and facility (raw ER7, written as they are), used
    /// for MSH-3/MSH-4 when the inbound MSH-5/MSH-6 are empty and for unscanned NAKs.
    pub fn with_identity(mut self, application: &[u8], facility: &[u8]) -> Self {
        self.application = strip_terminators(application);
        self.facility = strip_terminators(facility);
        self
    }

    /// Replaces the control-id prefix (e.g. a node and shard name). Default: see [`new`].
    ///
    /// [`new`]: AckBuilder::new
    pub fn with_control_id_prefix(mut self, prefix: &[u8]) -> Self {
        self.prefix = strip_terminators(prefix);
        self
    }

    /// How many ACKs/NAKs this builder has written.
    pub fn acks_written(&self) -> u64 {
        self.counter
    }

    /// Appends an ACK to `inbound` with `code` (and an ERR segment if `err` is given).
    pub fn write_ack(
        &mut self,
        out: &mut Vec<u8>,
        inbound: &Message<'_>,
        code: AckCode,
        err: Option<&ErrDetail<'_>>,
    ) {
        let d = *inbound.delimiters();
        let f = d.field;
        // One pass over the inbound MSH: msh[n - 1] is MSH-n.
        let msh: [&[u8]; 18] = inbound
            .segment(0)
            .map(|s| s.fields_array())
            .unwrap_or([&[]; 18]);
        out.extend_from_slice(b"MSH");
        d.write_separators(out);
        field(
            out,
            f,
            if msh[4].is_empty() {
                &self.application
            } else {
                msh[4]
            },
        );
        field(
            out,
            f,
            if msh[5].is_empty() {
                &self.facility
            } else {
                msh[5]
            },
        );
        field(out, f, msh[2]);
        field(out, f, msh[3]);
        let trigger = narrow(msh[8], &d, None, Some(2), None);
        self.write_time_and_id(out, f, d.component, trigger);
        field(out, f, msh[10]);
        field(out, f, msh[11]);
        if !msh[17].is_empty() {
            out.extend_from_slice(&[f; 5]);
            field(out, f, msh[17]);
        }
        out.push(b'\r');
        write_msa_err(out, &d, code, Msa2::Raw(msh[9]), err);
    }

    /// Appends a NAK for bytes that did not scan (there is no MSH to echo): standard
    /// delimiters, version 2.5, processing id P, MSA-2 = `control_id` (best effort, may be
    /// empty; escaped).
    pub fn write_nak_unscanned(
        &mut self,
        out: &mut Vec<u8>,
        control_id: &[u8],
        code: AckCode,
        err: Option<&ErrDetail<'_>>,
    ) {
        let d = Delimiters::STANDARD;
        out.extend_from_slice(b"MSH");
        d.write_separators(out);
        field(out, d.field, &self.application);
        field(out, d.field, &self.facility);
        out.extend_from_slice(b"||");
        self.write_time_and_id(out, d.field, d.component, None);
        out.extend_from_slice(b"|P|2.5\r");
        write_msa_err(out, &d, code, Msa2::Text(control_id), err);
    }

    /// Appends the headers of a reply to a batch with headers `env`: an `FHS` when the
    /// batch had one, a `BHS` when it had one (see the module header). Each message's ACK
    /// follows, then [`AckBuilder::write_batch_close`].
    pub fn write_batch_open(&mut self, out: &mut Vec<u8>, env: &Envelope<'_>) {
        for (id, header) in [(b"FHS", env.fhs), (b"BHS", env.bhs)] {
            if let Some(header) = header {
                self.write_batch_header(out, id, header);
            }
        }
    }

    /// Appends the trailers of a batch reply opened with [`AckBuilder::write_batch_open`]:
    /// `BTS` with the number of ACKs written, `FTS` with the number of batches (0 or 1).
    pub fn write_batch_close(&self, out: &mut Vec<u8>, env: &Envelope<'_>, acks: usize) {
        if env.bhs.is_some() {
            out.extend_from_slice(b"BTS|");
            push_decimal(out, acks as u64);
            out.push(b'\r');
        }
        if env.fhs.is_some() {
            out.extend_from_slice(if env.bhs.is_some() {
                b"FTS|1\r"
            } else {
                b"FTS|0\r"
            });
        }
    }

    /// `FHS`/`BHS` answering `header` (its id, delimiters, swapped applications and
    /// facilities, and its control id (field 11) as the reference in field 12).
    fn write_batch_header(&mut self, out: &mut Vec<u8>, id: &[u8; 3], header: &[u8]) {
        let d = Delimiters::of_header(header).unwrap_or(Delimiters::STANDARD);
        let f = d.field;
        let get = |n: u32| nth(header, d.field, n).unwrap_or_default();
        out.extend_from_slice(id);
        d.write_separators(out);
        let application = if get(5).is_empty() {
            &self.application[..]
        } else {
            get(5)
        };
        let facility = if get(6).is_empty() {
            &self.facility[..]
        } else {
            get(6)
        };
        for value in [application, facility, get(3), get(4)] {
            field(out, f, value);
        }
        let secs = now_secs();
        if secs != self.ts_secs {
            self.ts = format_utc(secs);
            self.ts_secs = secs;
        }
        field(out, f, &self.ts);
        out.extend_from_slice(&[f; 4]);
        self.counter += 1;
        out.extend_from_slice(&self.prefix);
        push_decimal(out, self.counter);
        field(out, f, get(11));
        out.push(b'\r');
    }

    /// `|MSH-7||MSH-9|MSH-10`
    fn write_time_and_id(&mut self, out: &mut Vec<u8>, f: u8, c: u8, trigger: Option<&[u8]>) {
        let secs = now_secs();
        if secs != self.ts_secs {
            self.ts = format_utc(secs);
            self.ts_secs = secs;
        }
        out.push(f);
        out.extend_from_slice(&self.ts);
        out.extend_from_slice(&[f, f]);
        out.extend_from_slice(b"ACK");
        if let Some(t) = trigger.filter(|t| !t.is_empty()) {
            out.push(c);
            out.extend_from_slice(t);
            out.push(c);
            out.extend_from_slice(b"ACK");
        }
        self.counter += 1;
        out.push(f);
        out.extend_from_slice(&self.prefix);
        push_decimal(out, self.counter);
    }
}

fn field(out: &mut Vec<u8>, f: u8, value: &[u8]) {
    out.push(f);
    out.extend_from_slice(value);
}

/// MSA-2 as raw ER7 echoed from a scanned MSH, or as text to escape.
enum Msa2<'v> {
    Raw(&'v [u8]),
    Text(&'v [u8]),
}

fn write_msa_err(
    out: &mut Vec<u8>,
    d: &Delimiters,
    code: AckCode,
    control_id: Msa2<'_>,
    err: Option<&ErrDetail<'_>>,
) {
    let f = d.field;
    out.extend_from_slice(b"MSA");
    field(out, f, code.as_str().as_bytes());
    match control_id {
        Msa2::Raw(raw) => field(out, f, raw),
        Msa2::Text(text) => {
            out.push(f);
            encode(text, d, out);
        }
    }
    let Some(err) = err else {
        out.push(b'\r');
        return;
    };
    out.push(f);
    encode(err.text.as_bytes(), d, out);
    out.extend_from_slice(b"\rERR");
    out.extend_from_slice(&[f, f]);
    if let Some(loc) = err.location {
        for (i, part) in loc.split('^').enumerate() {
            if i > 0 {
                out.push(d.component);
            }
            encode(part.as_bytes(), d, out);
        }
    }
    out.push(f);
    push_decimal(out, u64::from(err.code));
    out.push(d.component);
    encode(err.text.as_bytes(), d, out);
    out.push(d.component);
    out.extend_from_slice(b"HL70357");
    out.push(f);
    out.push(if matches!(err.severity, b'E' | b'W' | b'I') {
        err.severity
    } else {
        b'E'
    });
    out.push(b'\r');
}

fn strip_terminators(v: &[u8]) -> Vec<u8> {
    v.iter()
        .copied()
        .filter(|&b| b != b'\r' && b != b'\n')
        .collect()
}

fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `(year, month, day)` of the proleptic Gregorian calendar for `days` since 1970-01-01,
/// by the civil-from-days algorithm (H. Hinnant).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// `YYYYMMDDHHMMSS` for a Unix time in seconds (UTC), valid for years 0..=9999.
fn format_utc(secs: u64) -> [u8; 14] {
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    let mut ts = [b'0'; 14];
    let parts = [
        (year.clamp(0, 9999) as u64, 0, 4),
        (month as u64, 4, 2),
        (day as u64, 6, 2),
        (rem / 3600, 8, 2),
        (rem / 60 % 60, 10, 2),
        (rem % 60, 12, 2),
    ];
    for (mut v, at, width) in parts {
        for k in (at..at + width).rev() {
            ts[k] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    }
    ts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Path;

    #[test]
    fn a_batch_reply_mirrors_the_headers_and_counts_its_acks() {
        let batch =
            b"FHS|^~\\&|LAB|HOSP|HIE|TRUST|20240101||||F7\rBHS|^~\\&|LAB|HOSP|||20240101||||B9\r\
MSH|^~\\&|LAB|HOSP|HIE|TRUST|1||ADT^A01|M1|P|2.5\rBTS|1\rFTS|1\r";
        let env = Envelope::of(batch);
        let mut b = AckBuilder::new().with_identity(b"HIE", b"HERE");
        let mut out = Vec::new();
        b.write_batch_open(&mut out, &env);
        let msg = Message::scan(crate::Batch::new(batch).next().unwrap()).unwrap();
        b.write_ack(&mut out, &msg, AckCode::AA, None);
        b.write_batch_close(&mut out, &env, 1);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.split('\r').collect();
        assert!(
            lines[0].starts_with("FHS|^~\\&|HIE|TRUST|LAB|HOSP|"),
            "{text}"
        );
        assert!(lines[0].ends_with("|F7"), "{text}");
        assert!(
            lines[1].starts_with("BHS|^~\\&|HIE|HERE|LAB|HOSP|"),
            "{text}"
        );
        assert!(lines[1].ends_with("|B9"), "{text}");
        assert!(lines[2].starts_with("MSH|"));
        assert_eq!(lines[3], "MSA|AA|M1");
        assert_eq!(&lines[4..], ["BTS|1", "FTS|1", ""]);
        let fields: Vec<&str> = lines[0].split('|').collect();
        assert_eq!(fields.len(), 12, "FHS-12 is the last field: {text}");
        let acks: Vec<&[u8]> = crate::Batch::new(text.as_bytes()).collect();
        assert_eq!(acks.len(), 1);
        assert_eq!(
            Message::scan(acks[0]).unwrap().acked_control_id(),
            Some(&b"M1"[..])
        );
    }

    const IN: &[u8] =
        b"MSH|^~\\&|LAB|HOSP|HIE|TRUST|20240101120000||ORU^R01^ORU_R01|MSG42|P|2.5.1\rPID|1||123\r";

    fn get<'a>(m: &Message<'a>, p: &str) -> Option<&'a [u8]> {
        m.get(&Path::parse(p).unwrap())
    }

    #[test]
    fn ack_echoes_and_swaps_the_header() {
        let inbound = Message::scan(IN).unwrap();
        let mut b = AckBuilder::new().with_control_id_prefix(b"T-");
        let mut out = Vec::new();
        b.write_ack(&mut out, &inbound, AckCode::AA, None);
        let ack = Message::scan(&out).unwrap();
        assert_eq!(ack.sending_application(), Some(&b"HIE"[..]));
        assert_eq!(ack.sending_facility(), Some(&b"TRUST"[..]));
        assert_eq!(ack.receiving_application(), Some(&b"LAB"[..]));
        assert_eq!(ack.receiving_facility(), Some(&b"HOSP"[..]));
        assert_eq!(get(&ack, "MSH-9"), Some(&b"ACK^R01^ACK"[..]));
        assert_eq!(ack.control_id(), Some(&b"T-1"[..]));
        assert_eq!(ack.processing_id(), Some(&b"P"[..]));
        assert_eq!(ack.version(), Some(&b"2.5.1"[..]));
        assert_eq!(ack.ack_code(), Some(AckCode::AA));
        assert_eq!(ack.acked_control_id(), Some(&b"MSG42"[..]));
        assert_eq!(ack.timestamp().unwrap().len(), 14);
        assert_eq!(ack.segment_count(), 2);
        out.clear();
        b.write_ack(&mut out, &inbound, AckCode::CA, None);
        assert_eq!(Message::scan(&out).unwrap().control_id(), Some(&b"T-2"[..]));
    }

    #[test]
    fn nak_carries_an_escaped_err_segment() {
        let inbound = Message::scan(IN).unwrap();
        let mut out = Vec::new();
        let err = ErrDetail {
            code: 101,
            severity: b'E',
            location: Some("PID^1^3"),
            text: "missing | id",
        };
        AckBuilder::new().write_ack(&mut out, &inbound, AckCode::AE, Some(&err));
        let nak = Message::scan(&out).unwrap();
        assert_eq!(nak.ack_code(), Some(AckCode::AE));
        assert_eq!(get(&nak, "MSA-3"), Some(&br"missing \F\ id"[..]));
        assert_eq!(get(&nak, "ERR-2"), Some(&b"PID^1^3"[..]));
        assert_eq!(get(&nak, "ERR-3.1"), Some(&b"101"[..]));
        assert_eq!(get(&nak, "ERR-3.3"), Some(&b"HL70357"[..]));
        assert_eq!(get(&nak, "ERR-4"), Some(&b"E"[..]));
    }

    #[test]
    fn ack_uses_the_inbound_delimiters_and_identity_when_receiver_is_empty() {
        let inbound = Message::scan(b"MSH#$%@*!#LAB#HOSP#####ADT$A01#9#T#2.7\r").unwrap();
        let mut out = Vec::new();
        let err = ErrDetail {
            code: 207,
            severity: b'x',
            location: Some("MSH^1^10"),
            text: "a#b",
        };
        AckBuilder::new().with_identity(b"HIE", b"NODE1").write_ack(
            &mut out,
            &inbound,
            AckCode::AR,
            Some(&err),
        );
        assert!(out.starts_with(b"MSH#$%@*!#HIE#NODE1#LAB#HOSP#"));
        let nak = Message::scan(&out).unwrap();
        assert_eq!(nak.delimiters().truncation, Some(b'!'));
        assert_eq!(get(&nak, "MSH-9"), Some(&b"ACK$A01$ACK"[..]));
        assert_eq!(get(&nak, "ERR-2.3"), Some(&b"10"[..]));
        assert_eq!(get(&nak, "ERR-3.2"), Some(&b"a@F@b"[..]));
        assert_eq!(get(&nak, "ERR-4"), Some(&b"E"[..]));
        assert_eq!(nak.acked_control_id(), Some(&b"9"[..]));
    }

    #[test]
    fn unscanned_nak_is_a_valid_message() {
        let mut out = Vec::new();
        let err = ErrDetail {
            code: 100,
            severity: b'E',
            location: None,
            text: "not HL7",
        };
        AckBuilder::new().write_nak_unscanned(&mut out, b"X|\r1", AckCode::AR, Some(&err));
        let nak = Message::scan(&out).unwrap();
        assert_eq!(nak.ack_code(), Some(AckCode::AR));
        assert_eq!(nak.acked_control_id(), Some(&br"X\F\\X0D\1"[..]));
        assert_eq!(nak.version(), Some(&b"2.5"[..]));
        assert_eq!(nak.segment_count(), 3);
        assert_eq!(nak.validate_text(), Ok(()));
    }

    #[test]
    fn ack_codes_parse_and_classify() {
        for c in [
            AckCode::AA,
            AckCode::AE,
            AckCode::AR,
            AckCode::CA,
            AckCode::CE,
            AckCode::CR,
        ] {
            assert_eq!(AckCode::parse(c.as_str().as_bytes()), Some(c));
            assert_eq!(
                [c.is_accept(), c.is_error(), c.is_reject()]
                    .iter()
                    .filter(|x| **x)
                    .count(),
                1
            );
        }
        assert_eq!(AckCode::parse(b" AA "), Some(AckCode::AA));
        assert_eq!(AckCode::parse(b"aa"), None);
        assert!(AckCode::CE.is_enhanced() && !AckCode::AE.is_enhanced());
    }

    #[test]
    fn timestamps_format_as_utc_civil_time() {
        assert_eq!(&format_utc(0), b"19700101000000");
        assert_eq!(&format_utc(951_782_400), b"20000229000000");
        assert_eq!(&format_utc(1_735_689_599), b"20241231235959");
    }
}
