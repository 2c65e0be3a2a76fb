//! The log of an outbound connection's ups and downs (a TCP operation's downstream
//! system): connects, reconnects, lost connections and failed connect attempts, each
//! with the item and the address, read from the client's counters after every send.
//!
//! Rate limit: each kind of line is written at most once per [`DOWNSTREAM_LOG_INTERVAL`]
//! per item instance; the first of a kind is written at once, and a later line says how
//! many of its kind were not written since the last one. A connection after failures
//! or a loss is always written (it ends the trouble), with the count of failures.
//! With `StayConnected=0` a connection per message is expected, so routine connects are
//! not logged (failures and losses still are).

use std::time::{Duration, Instant};

use hie_net::{ClientStats, NoReplyReason, ReplyOutcome};

/// Shortest time between two log lines of the same kind for one item instance.
pub const DOWNSTREAM_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Lets one line through per interval and counts the others.
#[derive(Debug, Default)]
struct Limiter {
    last: Option<Instant>,
    suppressed: u64,
}

impl Limiter {
    /// `Some(lines not written since the last one)` when a line may be written now.
    fn allow(&mut self, now: Instant) -> Option<u64> {
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < DOWNSTREAM_LOG_INTERVAL)
        {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// What one send did to the connection, from the counters before and after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub connects: u64,
    pub connect_failures: u64,
    /// The connection was lost (closed by the peer, reset, no reply in time).
    pub lost: bool,
}

impl Change {
    pub fn between(before: ClientStats, after: ClientStats, outcome: &ReplyOutcome) -> Change {
        let lost_reply = matches!(
            outcome,
            ReplyOutcome::NoReply(
                NoReplyReason::ConnectionClosed | NoReplyReason::ResponseTimeout,
                _
            )
        );
        Change {
            connects: after.connects - before.connects,
            connect_failures: after.connect_failures - before.connect_failures,
            lost: lost_reply || after.resets > before.resets,
        }
    }
}

/// The connection log of one operation instance.
#[derive(Debug)]
pub struct DownstreamLog {
    item: String,
    /// The downstream as configured, `IPAddress:Port` (a host name is resolved at each
    /// connect).
    address: String,
    /// A connection per message is expected (`StayConnected=0`).
    connect_per_message: bool,
    connected_once: bool,
    /// Failed connect attempts since the last connection.
    failures: u64,
    /// The last connection was lost and none has been made since.
    lost: bool,
    connects: Limiter,
    losses: Limiter,
    failing: Limiter,
}

impl DownstreamLog {
    pub fn new(item: &str, address: String, connect_per_message: bool) -> Self {
        DownstreamLog {
            item: item.to_string(),
            address,
            connect_per_message,
            connected_once: false,
            failures: 0,
            lost: false,
            connects: Limiter::default(),
            losses: Limiter::default(),
            failing: Limiter::default(),
        }
    }

    /// Logs what `change` says happened; `what` describes the send's outcome (called only
    /// when a line is written).
    pub fn note(&mut self, change: Change, what: impl Fn() -> String, now: Instant) {
        let (item, address) = (&self.item, &self.address);
        if change.connect_failures > 0 {
            self.failures += change.connect_failures;
            if let Some(more) = self.failing.allow(now) {
                tracing::warn!(%item, %address, failed_attempts = self.failures, suppressed = more, "downstream: cannot connect: {}; retrying", what());
            }
        }
        if change.connects > 0 {
            let after_trouble = self.failures > 0 || self.lost;
            if after_trouble {
                tracing::info!(%item, %address, failed_attempts = self.failures, "downstream: connected again");
            } else if !self.connected_once {
                tracing::info!(%item, %address, "downstream: connected");
            } else if !self.connect_per_message
                && let Some(more) = self.connects.allow(now)
            {
                tracing::info!(%item, %address, suppressed = more, "downstream: reconnected (the previous connection was closed)");
            }
            self.connected_once = true;
            self.failures = 0;
            self.lost = false;
        }
        if change.lost {
            self.lost = true;
            if let Some(more) = self.losses.allow(now) {
                tracing::warn!(%item, %address, suppressed = more, "downstream: connection lost: {}", what());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limiter_lets_one_line_through_per_interval_and_counts_the_rest() {
        let mut limiter = Limiter::default();
        let t0 = Instant::now();
        assert_eq!(limiter.allow(t0), Some(0));
        assert_eq!(limiter.allow(t0 + Duration::from_secs(1)), None);
        assert_eq!(limiter.allow(t0 + Duration::from_secs(2)), None);
        assert_eq!(limiter.allow(t0 + DOWNSTREAM_LOG_INTERVAL), Some(2));
    }

    #[test]
    fn a_closed_connection_or_a_reset_is_a_loss_and_a_reply_is_not() {
        let before = ClientStats::default();
        let after = ClientStats {
            connects: 1,
            resets: 1,
            ..before
        };
        let replied = ReplyOutcome::Replied(b"MSA|AA".to_vec());
        let change = Change::between(before, after, &replied);
        assert_eq!((change.connects, change.lost), (1, true));
        let closed = ReplyOutcome::NoReply(NoReplyReason::ConnectionClosed, "closed".into());
        assert!(Change::between(before, before, &closed).lost);
        assert!(!Change::between(before, before, &replied).lost);
    }
}
