//! Message priority: which lane of an item's queue a message takes (hie settings
//! `QueueOrder` and `PriorityMessageTypes` of routers and operations).
//!
//! - `QueueOrder=fifo` (the default): every message takes the normal lane; the queue is
//!   strictly FIFO.
//! - `QueueOrder=priority`: a message whose MSH-9 matches one of `PriorityMessageTypes`
//!   takes the high lane; the item takes the high lane first, FIFO within each lane.
//!
//! The lane is a pure function of the receiving item's settings and the message bytes, so
//! a message recovered from the WAL after a restart takes the lane it took before.
//!
//! Patterns (comma list, spaces ignored, case-insensitive): `ADT^A40` (type and trigger
//! event, the HL7 way), `ADT_A40` (the same, as IRIS names an HL7 message), `ORM^*` or
//! `ORM` (every event of a type), `*^A40` (an event of any type). A pattern that matches
//! every message (`*`, `*^*`) is refused: it would make the queue FIFO again in a way
//! that reads as priority.
//!
//! Limits: only MSH-9.1 and MSH-9.2 are looked at, read on the scan index the envelope
//! carries (a document without one: only its MSH segment is scanned).

use hie_hl7::Message;

use crate::envelope::Envelope;

use crate::queue::Priority;

/// Longest message type or trigger event a pattern may name (HL7 uses 3 characters).
pub const PATTERN_PART_BYTES_MAX: usize = 16;

/// One entry of `PriorityMessageTypes`: an MSH-9 type and trigger event, either of which
/// may be any (`*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageTypePattern {
    /// MSH-9.1 in upper case; `None` matches any.
    kind: Option<String>,
    /// MSH-9.2 in upper case; `None` matches any (and a message without one).
    event: Option<String>,
}

impl MessageTypePattern {
    /// Parses one pattern (`ADT^A40`, `ADT_A40`, `ORM^*`, `ORM`, `*^A40`).
    pub fn parse(text: &str) -> Result<MessageTypePattern, String> {
        let text = text.trim();
        let (kind, event) = match text.split_once(['^', '_']) {
            Some((kind, event)) => (kind, Some(event)),
            None => (text, None),
        };
        let kind = part(kind, text)?;
        let event = match event {
            Some(event) => part(event, text)?,
            None => None,
        };
        if kind.is_none() && event.is_none() {
            return Err(format!(
                "{text:?} matches every message (use QueueOrder fifo instead)"
            ));
        }
        Ok(MessageTypePattern { kind, event })
    }

    /// True when a message of type `kind` and trigger event `event` (MSH-9.1, MSH-9.2)
    /// matches.
    pub fn matches(&self, kind: &[u8], event: &[u8]) -> bool {
        let same = |want: &Option<String>, got: &[u8]| {
            want.as_ref()
                .is_none_or(|w| w.as_bytes().eq_ignore_ascii_case(got))
        };
        same(&self.kind, kind) && same(&self.event, event)
    }
}

impl std::fmt::Display for MessageTypePattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = self.kind.as_deref().unwrap_or("*");
        match &self.event {
            Some(event) => write!(f, "{kind}^{event}"),
            None => write!(f, "{kind}^*"),
        }
    }
}

/// One side of a pattern: `None` for `*`, else the code in upper case.
fn part(code: &str, pattern: &str) -> Result<Option<String>, String> {
    let code = code.trim();
    if code == "*" {
        return Ok(None);
    }
    if code.is_empty()
        || code.len() > PATTERN_PART_BYTES_MAX
        || !code.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err(format!(
            "{pattern:?} is not a message type pattern (TYPE^EVENT, e.g. ADT^A40, ORM^* or ADT_A40)"
        ));
    }
    Ok(Some(code.to_ascii_uppercase()))
}

/// Parses a `PriorityMessageTypes` value: a comma list of patterns (empty entries
/// ignored). `Err` names the first bad pattern.
pub fn parse_patterns(value: &str) -> Result<Vec<MessageTypePattern>, String> {
    value
        .split(',')
        .filter(|p| !p.trim().is_empty())
        .map(MessageTypePattern::parse)
        .collect()
}

/// The order of one item's queue.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum QueueOrder {
    /// One lane: strictly first in, first out.
    #[default]
    Fifo,
    /// Messages matching any of these patterns go first.
    Priority(Vec<MessageTypePattern>),
}

impl QueueOrder {
    /// The lane `bytes` (a whole HL7 message) takes in a queue of this order.
    pub fn lane_of(&self, bytes: &[u8]) -> Priority {
        let QueueOrder::Priority(patterns) = self else {
            return Priority::Normal;
        };
        match Message::scan(msh_segment(bytes)) {
            Ok(header) => lane_of_header(patterns, &header),
            // Stored messages were scanned when received; this is not expected. Normal is
            // the lane that keeps FIFO order.
            Err(_) => Priority::Normal,
        }
    }

    /// [`QueueOrder::lane_of`] for `env`, read on the scan its envelope carries (no
    /// scan at all for a FIFO queue).
    pub fn lane_of_envelope(&self, env: &Envelope) -> Priority {
        let QueueOrder::Priority(patterns) = self else {
            return Priority::Normal;
        };
        match env.message() {
            Some(msg) => lane_of_header(patterns, &msg),
            None => self.lane_of(&env.bytes),
        }
    }
}

/// High when the message type of `header` (MSH-9.1, MSH-9.2) matches one of `patterns`.
fn lane_of_header(patterns: &[MessageTypePattern], header: &Message<'_>) -> Priority {
    let kind = header.message_type().unwrap_or_default();
    let event = header.trigger_event().unwrap_or_default();
    if patterns.iter().any(|p| p.matches(kind, event)) {
        Priority::High
    } else {
        Priority::Normal
    }
}

/// `bytes` up to the end of its first segment (the MSH, after any BOM and blank lines),
/// so that deciding a lane does not scan a large message's body.
fn msh_segment(bytes: &[u8]) -> &[u8] {
    const BOM: &[u8] = b"\xEF\xBB\xBF";
    let mut start = if bytes.starts_with(BOM) { BOM.len() } else { 0 };
    while start < bytes.len() && matches!(bytes[start], b'\r' | b'\n') {
        start += 1;
    }
    let end = bytes[start..]
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .map_or(bytes.len(), |e| start + e);
    &bytes[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(msh9: &str) -> Vec<u8> {
        format!("MSH|^~\\&|A|B|C|D|20260101||{msh9}|1|P|2.5\rPID|1||MRN1\r").into_bytes()
    }

    fn order(patterns: &str) -> QueueOrder {
        QueueOrder::Priority(parse_patterns(patterns).expect("valid patterns"))
    }

    #[test]
    fn hl7_and_iris_forms_and_wildcards_parse_to_the_same_patterns() {
        let a = MessageTypePattern::parse("ADT^A40").unwrap();
        assert_eq!(a, MessageTypePattern::parse(" adt_a40 ").unwrap());
        assert_eq!(a.to_string(), "ADT^A40");
        assert_eq!(
            MessageTypePattern::parse("ORM").unwrap(),
            MessageTypePattern::parse("ORM^*").unwrap()
        );
        assert_eq!(
            MessageTypePattern::parse("*^A40").unwrap().to_string(),
            "*^A40"
        );
    }

    #[test]
    fn bad_patterns_are_refused_with_the_pattern_named() {
        for bad in [
            "*",
            "*^*",
            "ADT^",
            "^A01",
            "AD T^A01",
            "ADT^A01^X",
            "ADT|A01",
        ] {
            let err = parse_patterns(&format!("ORM^O01,{bad}")).unwrap_err();
            assert!(err.contains(bad.trim()), "{bad}: {err}");
        }
        assert_eq!(parse_patterns(" , ,").unwrap(), Vec::new());
    }

    #[test]
    fn matching_messages_take_the_high_lane_and_others_the_normal_lane() {
        let order = order("ADT^A40, ORM^*");
        assert_eq!(order.lane_of(&msg("ADT^A40")), Priority::High);
        assert_eq!(order.lane_of(&msg("ADT^A40^ADT_A39")), Priority::High);
        assert_eq!(order.lane_of(&msg("adt^a40")), Priority::High);
        assert_eq!(order.lane_of(&msg("ORM^O01")), Priority::High);
        assert_eq!(order.lane_of(&msg("ORM")), Priority::High);
        assert_eq!(order.lane_of(&msg("ADT^A01")), Priority::Normal);
        assert_eq!(order.lane_of(&msg("ADT")), Priority::Normal);
        assert_eq!(order.lane_of(&msg("ORU^R01")), Priority::Normal);
    }

    #[test]
    fn an_envelope_takes_the_lane_of_its_bytes_read_on_its_scan() {
        let order = order("ADT^A40");
        for kind in ["ADT^A40", "ADT^A01"] {
            let bytes = msg(kind);
            let scan = crate::engine::ingest::scan_of(&bytes);
            assert!(scan.is_some());
            let mut env = crate::engine::ingest::envelope(
                crate::envelope::MessageId {
                    origin_shard: 0,
                    wal_id: 1,
                },
                (bytes.as_slice().into(), scan),
                0,
                "In".into(),
                1,
                b"k",
            );
            assert_eq!(
                order.lane_of_envelope(&env),
                order.lane_of(&bytes),
                "{kind}"
            );
            env.scan = None;
            assert_eq!(
                order.lane_of_envelope(&env),
                order.lane_of(&bytes),
                "{kind}"
            );
        }
        assert_eq!(order.lane_of(&msg("ADT^A40")), Priority::High);
    }

    #[test]
    fn fifo_and_unreadable_messages_take_the_normal_lane() {
        assert_eq!(QueueOrder::Fifo.lane_of(&msg("ADT^A40")), Priority::Normal);
        let order = order("ADT^A40");
        assert_eq!(order.lane_of(b"not hl7"), Priority::Normal);
        assert_eq!(order.lane_of(b""), Priority::Normal);
    }

    #[test]
    fn only_the_msh_segment_is_read_and_a_bom_or_blank_lines_are_skipped() {
        let order = order("*^A40");
        let mut bytes = b"\xEF\xBB\xBF\r\n".to_vec();
        bytes.extend_from_slice(&msg("ADT^A40"));
        assert_eq!(order.lane_of(&bytes), Priority::High);
        assert!(msh_segment(&bytes).ends_with(b"2.5"));
        let lf_only = b"MSH|^~\\&|A|B|C|D|1||ADT^A40|1|P|2.5\nPID|1\n";
        assert_eq!(order.lane_of(lf_only), Priority::High);
    }
}
