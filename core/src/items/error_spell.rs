//! IRIS's alert grace periods: when a lasting error condition at one item becomes an
//! `AlertOnError` alert.
//!
//! - `AlertGracePeriod` (services): a file service whose `FilePath` cannot be listed is in
//!   an error condition from the first failed poll until a poll succeeds; it alerts once,
//!   at the first failed poll after the condition has lasted the grace period (0: at the
//!   first one). An error that clears within the grace period does not alert. A TCP
//!   service whose port cannot be bound (when it is enabled or restarted, retried per its
//!   restart policy) is in one from the first failed bind until a bind succeeds, alike
//!   ([`BindAlert`]); when the restart policy gives up (the item fails), it alerts at
//!   once if it has not yet: it now waits for a person.
//! - `AlertRetryGracePeriod` (operations): an operation whose delivery attempts fail is in
//!   an error condition from the first failed attempt until one succeeds (across the
//!   messages it retries in between); retries alert once, at the first failed attempt
//!   after the condition has lasted the grace period (0: at the first one). A message the
//!   operation gives up on (failed, suspended, item disabled) alerts as before, whatever
//!   the grace period: it now waits for a person.
//!
//! Each worker instance owns its [`ErrorSpell`]; nothing is shared or locked.

use std::time::{Duration, Instant};

use crate::engine::runtime::Shard;
use crate::engine::runtime::bump;
use crate::envelope::ItemId;

/// One error condition at one worker: since when it holds, and whether it alerted.
#[derive(Debug)]
pub struct ErrorSpell {
    grace: Duration,
    since: Option<Instant>,
    alerted: bool,
}

impl ErrorSpell {
    /// A spell that alerts once its condition has lasted `grace_s` seconds.
    pub fn new(grace_s: u32) -> Self {
        ErrorSpell {
            grace: Duration::from_secs(u64::from(grace_s)),
            since: None,
            alerted: false,
        }
    }

    /// The condition holds at `now`. `Some(lasted)` exactly once per condition: when it
    /// has lasted the grace period (the caller alerts).
    pub fn failed(&mut self, now: Instant) -> Option<Duration> {
        let since = *self.since.get_or_insert(now);
        let lasted = now.saturating_duration_since(since);
        if self.alerted || lasted < self.grace {
            return None;
        }
        self.alerted = true;
        Some(lasted)
    }

    /// The worker gave up on the condition (it now waits for a person): `Some(lasted)`
    /// unless it alerted already, whatever the grace period.
    pub fn given_up(&mut self, now: Instant) -> Option<Duration> {
        let since = *self.since.get_or_insert(now);
        if std::mem::replace(&mut self.alerted, true) {
            return None;
        }
        Some(now.saturating_duration_since(since))
    }

    /// The condition cleared; true when it had alerted.
    pub fn cleared(&mut self) -> bool {
        self.since = None;
        std::mem::take(&mut self.alerted)
    }
}

/// Logs and counts an `AlertOnError` alert at `item` for a condition that lasted `lasted`.
pub fn raise(shard: &Shard, item: ItemId, lasted: Duration, what: &str) {
    let name = &shard.plan().item(item).name;
    bump(&shard.counters(item).alerts);
    shard.metrics().note_error(item, what);
    tracing::error!(
        target: "hie::alert",
        alert = "AlertOnError",
        item = %name,
        lasted_s = lasted.as_secs(),
        "ALERT {name}: {what} (for {}s)",
        lasted.as_secs()
    );
}

/// A TCP service's "cannot bind its port" condition at one shard, alerting per
/// `AlertOnError` and `AlertGracePeriod`.
#[derive(Debug)]
pub struct BindAlert {
    on: bool,
    spell: ErrorSpell,
}

impl BindAlert {
    /// For service `item` on `shard` with `AlertGracePeriod` `grace_s`.
    pub fn new(shard: &Shard, item: ItemId, grace_s: u32) -> Self {
        BindAlert {
            on: shard.plan().item(item).alert_on_error,
            spell: ErrorSpell::new(grace_s),
        }
    }

    /// A bind failed with `error`; `retried`: the restart policy tries again.
    pub fn failed(
        &mut self,
        shard: &Shard,
        item: ItemId,
        error: &dyn std::fmt::Display,
        retried: bool,
    ) {
        if !self.on {
            return;
        }
        let now = Instant::now();
        let lasted = if retried {
            self.spell.failed(now)
        } else {
            self.spell.given_up(now)
        };
        if let Some(lasted) = lasted {
            raise(shard, item, lasted, &format!("cannot listen: {error}"));
        }
    }

    /// A bind succeeded: the condition, if any, cleared.
    pub fn bound(&mut self, shard: &Shard, item: ItemId) {
        if self.spell.cleared() {
            cleared(shard, item);
        }
    }
}

/// Logs that the condition of an alert raised by [`raise`] at `item` cleared.
pub fn cleared(shard: &Shard, item: ItemId) {
    let name = &shard.plan().item(item).name;
    tracing::info!(target: "hie::alert", alert = "AlertOnError", item = %name, cleared = true, "cleared: {name} works again");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spell_alerts_once_after_its_grace_and_again_after_clearing() {
        let t0 = Instant::now();
        let mut spell = ErrorSpell::new(10);
        assert_eq!(spell.failed(t0), None);
        assert_eq!(spell.failed(t0 + Duration::from_secs(9)), None);
        assert_eq!(
            spell.failed(t0 + Duration::from_secs(10)),
            Some(Duration::from_secs(10))
        );
        assert_eq!(spell.failed(t0 + Duration::from_secs(20)), None);
        assert!(spell.cleared());
        assert_eq!(spell.failed(t0 + Duration::from_secs(21)), None);
        assert!(!spell.cleared(), "cleared within its grace: no alert");
    }

    #[test]
    fn giving_up_alerts_at_once_unless_the_spell_alerted_already() {
        let t0 = Instant::now();
        let mut spell = ErrorSpell::new(600);
        assert_eq!(spell.failed(t0), None);
        let later = t0 + Duration::from_secs(5);
        assert_eq!(spell.given_up(later), Some(Duration::from_secs(5)));
        assert_eq!(spell.given_up(later), None);
        assert!(spell.cleared());
        let mut quick = ErrorSpell::new(0);
        assert!(quick.failed(t0).is_some());
        assert_eq!(quick.given_up(later), None, "it alerted already");
    }

    #[test]
    fn no_grace_alerts_at_the_first_failure() {
        let t0 = Instant::now();
        let mut spell = ErrorSpell::new(0);
        assert_eq!(spell.failed(t0), Some(Duration::ZERO));
        assert_eq!(spell.failed(t0 + Duration::from_secs(1)), None);
    }
}
