//! Counters and latency histograms: what each executor thread counts, and the final
//! reports (table and JSON) built from them.
//!
//! Each thread owns one [`Counters`] and one interval histogram and never shares them;
//! it hands cumulative counters and the interval's histogram to the main thread once a
//! second (see [`crate::runner`]). Latencies are recorded in microseconds, between 1 µs
//! and [`LATENCY_US_MAX`] (one hour), with 3 significant digits; a value outside is
//! clamped, so a recorded latency is never lost.
//!
//! Accounting invariant of a sender: every message written to a socket ends in exactly
//! one of `acked` (an ACK whose MSA-2 matched), `mismatched_acks`, `bad_acks`,
//! `timeouts` or `unanswered` (the connection closed or failed while it waited), so
//! `sent == acked + mismatched_acks + bad_acks + timeouts + unanswered` once a run ends.

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::flood::FloodReport;

/// Largest latency a histogram holds, in microseconds (one hour).
pub const LATENCY_US_MAX: u64 = 3_600_000_000;

/// The six acknowledgment codes, in MSA-1 order of [`ACK_CODE_NAMES`].
pub const ACK_CODE_NAMES: [&str; 6] = ["AA", "AE", "AR", "CA", "CE", "CR"];

/// A fresh latency histogram (µs, 1 µs to one hour, 3 significant digits).
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_US_MAX, 3).expect("constant histogram bounds are valid")
}

/// Records `latency_us`, clamped to the histogram's range.
#[inline]
pub fn record(hist: &mut Histogram<u64>, latency_us: u64) {
    // Within bounds by the clamp, so recording cannot fail.
    let _ = hist.record(latency_us.clamp(1, LATENCY_US_MAX));
}

/// Index of an MSA-1 value in [`ACK_CODE_NAMES`].
pub fn ack_code_index(code: &[u8]) -> Option<usize> {
    ACK_CODE_NAMES
        .iter()
        .position(|name| name.as_bytes() == code)
}

/// What one thread (or the sum of all threads) counted. Cumulative since the run started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Messages written completely to a socket.
    pub sent: u64,
    /// ACKs received whose MSA-2 matched the message's MSH-10.
    pub acked: u64,
    /// Matched ACKs by MSA-1 code (index as in [`ACK_CODE_NAMES`]).
    pub ack_codes: [u64; 6],
    /// Messages with no ACK within `--timeout`.
    pub timeouts: u64,
    /// ACKs whose MSA-2 named another message.
    pub mismatched_acks: u64,
    /// Replies without a readable MSA-1 / MSA-2, or with an unknown MSA-1 code.
    pub bad_acks: u64,
    /// Messages whose connection closed or failed while waiting for the ACK.
    pub unanswered: u64,
    /// Failed connects, resets, and connections closed under a message.
    pub connection_errors: u64,
    /// Sink: messages received.
    pub received: u64,
    /// Sink: payload bytes received (MLLP framing excluded).
    pub received_bytes: u64,
    /// Sink: connections accepted.
    pub connections: u64,
    /// Sink: connections closed on purpose (`--drop-rate`).
    pub dropped_connections: u64,
    /// Sink: replies sent by code (index as in [`ACK_CODE_NAMES`]).
    pub replies: [u64; 6],
    /// Sink: messages deliberately left without a reply (`--no-ack`).
    pub unreplied: u64,
    /// Sink: frames that were not HL7 (answered with AR when possible).
    pub malformed: u64,
    /// e2e: messages received whose control id this run did not write.
    pub foreign: u64,
    /// e2e: received messages of a patient older than one already received.
    pub order_violations: u64,
    /// e2e: duplicates seen by one sink thread (cross-thread ones are found at the end).
    pub duplicates: u64,
}

impl Counters {
    /// Adds `other` field by field.
    pub fn add(&mut self, other: &Counters) {
        self.sent += other.sent;
        self.acked += other.acked;
        for (a, b) in self.ack_codes.iter_mut().zip(other.ack_codes) {
            *a += b;
        }
        self.timeouts += other.timeouts;
        self.mismatched_acks += other.mismatched_acks;
        self.bad_acks += other.bad_acks;
        self.unanswered += other.unanswered;
        self.connection_errors += other.connection_errors;
        self.received += other.received;
        self.received_bytes += other.received_bytes;
        self.connections += other.connections;
        self.dropped_connections += other.dropped_connections;
        for (a, b) in self.replies.iter_mut().zip(other.replies) {
            *a += b;
        }
        self.unreplied += other.unreplied;
        self.malformed += other.malformed;
        self.foreign += other.foreign;
        self.order_violations += other.order_violations;
        self.duplicates += other.duplicates;
    }

    /// Every error a sender counts, for a progress line.
    pub fn sender_errors(&self) -> u64 {
        self.timeouts + self.mismatched_acks + self.bad_acks + self.connection_errors
    }
}

/// MSA-1 counts keyed by code, as the JSON report spells them.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
#[allow(non_snake_case)]
pub struct AckCodes {
    /// Application Accept.
    pub AA: u64,
    /// Application Error.
    pub AE: u64,
    /// Application Reject.
    pub AR: u64,
    /// Commit Accept.
    pub CA: u64,
    /// Commit Error.
    pub CE: u64,
    /// Commit Reject.
    pub CR: u64,
}

impl From<[u64; 6]> for AckCodes {
    fn from(c: [u64; 6]) -> Self {
        AckCodes {
            AA: c[0],
            AE: c[1],
            AR: c[2],
            CA: c[3],
            CE: c[4],
            CR: c[5],
        }
    }
}

/// Error counts of a sender report.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Errors {
    /// No ACK within `--timeout`.
    pub timeouts: u64,
    /// MSA-2 named another message.
    pub mismatched_acks: u64,
    /// Reply without usable MSA.
    pub bad_acks: u64,
    /// Failed connects, resets and closes.
    pub connection_errors: u64,
    /// Written, then the connection closed before an ACK.
    pub unanswered: u64,
    /// e2e: messages at the sink this run did not send.
    pub foreign_received: u64,
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct LatencyUs {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest value.
    pub max: u64,
}

impl LatencyUs {
    /// Percentiles of `hist` (all zero when it is empty).
    pub fn of(hist: &Histogram<u64>) -> Self {
        if hist.is_empty() {
            return LatencyUs::default();
        }
        LatencyUs {
            p50: hist.value_at_quantile(0.50),
            p90: hist.value_at_quantile(0.90),
            p99: hist.value_at_quantile(0.99),
            p999: hist.value_at_quantile(0.999),
            max: hist.max(),
        }
    }
}

/// The final report of `send` and `e2e`; its JSON form has exactly the keys the issue
/// lists.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    /// Messages written.
    pub sent: u64,
    /// Messages whose ACK matched.
    pub acked: u64,
    /// Matched ACKs by code.
    pub ack_codes: AckCodes,
    /// What went wrong, by kind.
    pub errors: Errors,
    /// Wall time of the load, seconds.
    pub duration_s: f64,
    /// ACKed messages per second.
    pub rate_per_s: f64,
    /// ACK latency (`send`) or end-to-end latency (`e2e`).
    pub latency_us: LatencyUs,
    /// e2e: ACKed, never received by the sink.
    pub lost: u64,
    /// e2e: received more than once.
    pub duplicates: u64,
    /// e2e: received out of order within a patient.
    pub order_violations: u64,
    /// Whether `latency_us` is end-to-end latency (an `e2e` run) rather than ACK latency.
    #[serde(skip)]
    pub end_to_end: bool,
    /// A run with `--flood`: what became of the flood held while the load ran (the key is
    /// absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flood: Option<FloodReport>,
}

impl Report {
    /// Builds the report from summed counters and the whole run's histogram.
    pub fn new(c: &Counters, hist: &Histogram<u64>, duration_s: f64, end_to_end: bool) -> Self {
        Report {
            sent: c.sent,
            acked: c.acked,
            ack_codes: c.ack_codes.into(),
            errors: Errors {
                timeouts: c.timeouts,
                mismatched_acks: c.mismatched_acks,
                bad_acks: c.bad_acks,
                connection_errors: c.connection_errors,
                unanswered: c.unanswered,
                foreign_received: c.foreign,
            },
            duration_s,
            rate_per_s: per_second(c.acked, duration_s),
            latency_us: LatencyUs::of(hist),
            lost: 0,
            duplicates: c.duplicates,
            order_violations: c.order_violations,
            end_to_end,
            flood: None,
        }
    }

    /// What `latency_us` measures: `e2e latency` or `ack latency`.
    pub fn latency_label(&self) -> &'static str {
        if self.end_to_end {
            "e2e latency"
        } else {
            "ack latency"
        }
    }

    /// The report as pretty-printed JSON with exactly the keys the issue lists.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report of numbers serializes")
    }

    /// The human-readable table, one `name value` row per line.
    pub fn to_table(&self) -> String {
        let latency_label = self.latency_label();
        let a = &self.ack_codes;
        let e = &self.errors;
        let l = &self.latency_us;
        let mut t = String::new();
        row(&mut t, "duration", &format!("{:.3} s", self.duration_s));
        row(&mut t, "sent", &self.sent.to_string());
        row(&mut t, "acked", &self.acked.to_string());
        row(&mut t, "rate", &format!("{:.0} msg/s", self.rate_per_s));
        row(
            &mut t,
            "ack codes",
            &format!(
                "AA {} AE {} AR {} CA {} CE {} CR {}",
                a.AA, a.AE, a.AR, a.CA, a.CE, a.CR
            ),
        );
        row(
            &mut t,
            "errors",
            &format!(
                "timeouts {} mismatched {} bad {} connection {} unanswered {} foreign {}",
                e.timeouts,
                e.mismatched_acks,
                e.bad_acks,
                e.connection_errors,
                e.unanswered,
                e.foreign_received
            ),
        );
        row(
            &mut t,
            latency_label,
            &format!(
                "p50 {} p90 {} p99 {} p99.9 {} max {} (µs)",
                l.p50, l.p90, l.p99, l.p999, l.max
            ),
        );
        row(&mut t, "lost", &self.lost.to_string());
        row(&mut t, "duplicates", &self.duplicates.to_string());
        row(
            &mut t,
            "order violations",
            &self.order_violations.to_string(),
        );
        for (name, value) in self.flood.iter().flat_map(FloodReport::table_rows) {
            row(&mut t, name, &value);
        }
        t
    }
}

/// The final report of `sink`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SinkReport {
    /// Messages received.
    pub received: u64,
    /// Payload bytes received.
    pub bytes: u64,
    /// Connections accepted.
    pub connections: u64,
    /// Connections closed on purpose.
    pub dropped_connections: u64,
    /// Replies sent, by code.
    pub ack_codes: AckCodes,
    /// Messages left unanswered on purpose.
    pub unanswered: u64,
    /// Frames that were not HL7.
    pub malformed: u64,
    /// Wall time, seconds.
    pub duration_s: f64,
    /// Messages received per second.
    pub rate_per_s: f64,
}

impl SinkReport {
    /// Builds the report from summed counters.
    pub fn new(c: &Counters, duration_s: f64) -> Self {
        SinkReport {
            received: c.received,
            bytes: c.received_bytes,
            connections: c.connections,
            dropped_connections: c.dropped_connections,
            ack_codes: c.replies.into(),
            unanswered: c.unreplied,
            malformed: c.malformed,
            duration_s,
            rate_per_s: per_second(c.received, duration_s),
        }
    }

    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report of numbers serializes")
    }

    /// The human-readable table, one `name value` row per line.
    pub fn to_table(&self) -> String {
        let a = &self.ack_codes;
        let mut t = String::new();
        row(&mut t, "duration", &format!("{:.3} s", self.duration_s));
        row(&mut t, "received", &self.received.to_string());
        row(&mut t, "bytes", &self.bytes.to_string());
        row(&mut t, "rate", &format!("{:.0} msg/s", self.rate_per_s));
        row(&mut t, "connections", &self.connections.to_string());
        row(&mut t, "dropped", &self.dropped_connections.to_string());
        row(
            &mut t,
            "replies",
            &format!(
                "AA {} AE {} AR {} CA {} CE {} CR {}",
                a.AA, a.AE, a.AR, a.CA, a.CE, a.CR
            ),
        );
        row(&mut t, "unanswered", &self.unanswered.to_string());
        row(&mut t, "malformed", &self.malformed.to_string());
        t
    }
}

fn per_second(count: u64, duration_s: f64) -> f64 {
    if duration_s > 0.0 {
        count as f64 / duration_s
    } else {
        0.0
    }
}

fn row(out: &mut String, name: &str, value: &str) {
    out.push_str(&format!("{name:<18}{value}\n"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_percentiles_of_an_empty_histogram_are_zero() {
        assert_eq!(LatencyUs::of(&new_histogram()), LatencyUs::default());
    }

    #[test]
    fn recording_clamps_out_of_range_latencies() {
        let mut h = new_histogram();
        record(&mut h, 0);
        record(&mut h, u64::MAX);
        assert_eq!(h.len(), 2);
        assert!(h.max() >= LATENCY_US_MAX);
    }

    #[test]
    fn report_json_has_exactly_the_issue_keys() {
        let mut c = Counters {
            sent: 10,
            acked: 8,
            timeouts: 2,
            ..Counters::default()
        };
        c.ack_codes[1] = 8;
        let mut h = new_histogram();
        for v in 1..=100 {
            record(&mut h, v);
        }
        let report = Report::new(&c, &h, 2.0, false);
        let json = serde_json::to_value(&report).unwrap();
        let mut keys: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "ack_codes",
                "acked",
                "duplicates",
                "duration_s",
                "errors",
                "latency_us",
                "lost",
                "order_violations",
                "rate_per_s",
                "sent"
            ]
        );
        assert_eq!(json["ack_codes"]["AE"], 8);
        assert_eq!(json["rate_per_s"], 4.0);
        assert_eq!(json["latency_us"]["p50"], 50);
        assert_eq!(json["latency_us"]["max"], 100);
    }

    #[test]
    fn counters_add_sums_every_field() {
        let mut a = Counters {
            sent: 1,
            replies: [1, 0, 0, 0, 0, 2],
            ..Counters::default()
        };
        let b = Counters {
            sent: 2,
            replies: [0, 3, 0, 0, 0, 1],
            foreign: 4,
            ..Counters::default()
        };
        a.add(&b);
        assert_eq!(a.sent, 3);
        assert_eq!(a.replies, [1, 3, 0, 0, 0, 3]);
        assert_eq!(a.foreign, 4);
    }

    #[test]
    fn ack_code_index_knows_the_six_codes_only() {
        assert_eq!(ack_code_index(b"AA"), Some(0));
        assert_eq!(ack_code_index(b"CR"), Some(5));
        assert_eq!(ack_code_index(b"ZZ"), None);
        assert_eq!(ack_code_index(b""), None);
    }
}
