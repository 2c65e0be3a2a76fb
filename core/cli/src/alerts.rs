//! Alerts on a running production's queues and activity, with IRIS's host settings:
//!
//! - `QueueCountAlert=N`: an alert when an item's queue (summed over its shards) holds
//!   `N` messages or more; no further alert until it has fallen below 80 % of `N` (the
//!   alert clears then) and reached `N` again.
//! - `QueueWaitAlert=S`: an alert when the oldest message in an item's queues has waited
//!   `S` seconds or more in that queue (since it entered it, as IRIS counts); no further alert until that
//!   wait has fallen below 80 % of `S` (the queue emptied, or moved on) and reached `S`
//!   again.
//! - `InactivityTimeout=S`: an alert when a running item has handled no message (received,
//!   routed or delivered one) for `S` seconds, counted from the start for an item that has
//!   handled none; it clears, with a log line, at its next message.
//!
//! Each alert is a log event (target `hie::alert`) with a stable `alert` field
//! (`QueueCountAlert`, `QueueWaitAlert`, `InactivityTimeout`) and the `item`, and a counter per item in
//! `/metrics` (read through [`AlertCounters`], which the admin API's readers share). The
//! main thread checks every [`ALERT_CHECK_INTERVAL`] (only when some
//! item has one of the settings), asking the shards for their status and for when each
//! item last handled a message; nothing runs on the data path. `AlertOnError` and
//! `AlertOnBadMessage` are written where the error happens (see `hie_core::items`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hie_core::config::catalog::{self, SettingSpec};
use hie_core::config::{Diagnostic, Production, SettingTarget, settings};
use hie_core::engine::RunningEngine;
use hie_core::engine::control::ItemState;
use prometheus::proto::MetricFamily;

use crate::admin::prometheus::{counter_family, item_samples};

/// How often the alert settings are checked.
pub const ALERT_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// The settings read here, with their catalog entries (type and range).
const SETTINGS: [&str; 3] = ["QueueCountAlert", "QueueWaitAlert", "InactivityTimeout"];

/// The value of setting `name` of every item that sets it, or why it is wrong.
fn values<'p>(
    production: &'p Production,
    name: &str,
) -> impl Iterator<Item = (&'p hie_core::config::Item, Result<u64, String>, u32)> {
    let spec: Option<&SettingSpec> = catalog::HOST_ALL.iter().find(|s| s.name == name);
    production.items.iter().filter_map(move |item| {
        let raw = item.raw(SettingTarget::Host).get(name)?;
        let value = match spec.map(|spec| settings::check_value(spec, &raw.value)) {
            Some(Err(why)) => Err(why),
            _ => raw.value.trim().parse::<u64>().map_err(|e| e.to_string()),
        };
        Some((item, value, raw.line))
    })
}

/// A bad value of an alert setting, as `hie check` and `hie run` report it.
pub fn check(production: &Production) -> Vec<Diagnostic> {
    SETTINGS
        .iter()
        .flat_map(|name| {
            values(production, name).filter_map(move |(item, value, line)| {
                let why = value.err()?;
                Some(Diagnostic {
                    file: item.source.file.clone(),
                    line,
                    item: Some(item.name.clone()),
                    message: format!("{name}: {why}"),
                })
            })
        })
        .collect()
}

/// One item's alert settings and where its alerts stand.
#[derive(Debug)]
struct Watch {
    item: String,
    queue_count: u64,
    queue_wait: Option<Duration>,
    inactivity: Option<Duration>,
    /// A queue-count alert was raised and has not cleared.
    queue_raised: bool,
    /// A queue-wait alert was raised and has not cleared.
    wait_raised: bool,
    /// An inactivity alert was raised at this time and has not cleared.
    inactive_since: Option<Instant>,
    queue_alerts: u64,
    wait_alerts: u64,
    inactivity_alerts: u64,
}

/// The alerts raised so far, by item: queue count, queue wait, inactivity. Written by
/// [`Alerts::check`] on the main thread, read by any thread (`/metrics`).
#[derive(Debug, Clone, Default)]
pub struct AlertCounters(Arc<Vec<(String, [AtomicU64; 3])>>);

impl AlertCounters {
    /// The alert counters, one family per kind of alert, by item.
    pub fn families(&self) -> Vec<MetricFamily> {
        let samples =
            |kind: usize| {
                item_samples(self.0.iter().map(|(item, counts)| {
                    (item.as_str(), counts[kind].load(Ordering::Relaxed) as f64)
                }))
            };
        vec![
            counter_family(
                "hie_item_queue_count_alerts_total",
                "QueueCountAlert alerts raised.",
                samples(0),
            ),
            counter_family(
                "hie_item_queue_wait_alerts_total",
                "QueueWaitAlert alerts raised.",
                samples(1),
            ),
            counter_family(
                "hie_item_inactivity_alerts_total",
                "InactivityTimeout alerts raised.",
                samples(2),
            ),
        ]
    }
}

/// The alert settings of a production and where each alert stands.
#[derive(Debug)]
pub struct Alerts {
    watches: Vec<Watch>,
    /// The watches' counters (same order), for `/metrics`.
    counters: AlertCounters,
    /// When the production started running (inactivity counts from here at the most).
    since: Instant,
}

impl Alerts {
    /// The enabled items' alert settings (values already checked by [`check`]).
    pub fn new(production: &Production, since: Instant) -> Alerts {
        let mut watches: Vec<Watch> = Vec::new();
        for name in SETTINGS {
            for (item, value, _) in values(production, name) {
                let Ok(value) = value else { continue };
                if value == 0 {
                    continue;
                }
                let at = match watches.iter().position(|w| w.item == item.name) {
                    Some(at) => at,
                    None => {
                        watches.push(Watch {
                            item: item.name.clone(),
                            queue_count: 0,
                            queue_wait: None,
                            inactivity: None,
                            queue_raised: false,
                            wait_raised: false,
                            inactive_since: None,
                            queue_alerts: 0,
                            wait_alerts: 0,
                            inactivity_alerts: 0,
                        });
                        watches.len() - 1
                    }
                };
                match name {
                    "QueueCountAlert" => watches[at].queue_count = value,
                    "QueueWaitAlert" => {
                        watches[at].queue_wait = Some(Duration::from_secs(value));
                    }
                    _ => watches[at].inactivity = Some(Duration::from_secs(value)),
                }
            }
        }
        let counters = watches
            .iter()
            .map(|w| (w.item.clone(), Default::default()))
            .collect();
        Alerts {
            watches,
            counters: AlertCounters(Arc::new(counters)),
            since,
        }
    }

    /// The counters of the alerts raised, shared.
    pub fn counters(&self) -> AlertCounters {
        self.counters.clone()
    }

    /// True when no item has an alert setting (nothing to check).
    pub fn is_empty(&self) -> bool {
        self.watches.is_empty()
    }

    /// Checks every alert setting against the engine now.
    pub fn check(&mut self, engine: &RunningEngine) {
        let status = engine.status();
        let activity = engine.activity();
        let now = Instant::now();
        for watch in &mut self.watches {
            let Some(planned) = engine.plan().item_named(&watch.item) else {
                continue;
            };
            let instances = status.shards.iter().flat_map(|s| &s.items);
            let mine: Vec<_> = instances.filter(|i| i.item == watch.item).collect();
            let queued: u64 = mine.iter().map(|i| i.queued as u64).sum();
            let running = mine.iter().any(|i| i.state == ItemState::Running);
            watch.check_queue(queued);
            let activity = activity
                .get(planned.id as usize)
                .copied()
                .unwrap_or_default();
            let waited = activity
                .oldest_queued
                .map(|at| now.saturating_duration_since(at));
            watch.check_wait(waited);
            let last = activity
                .last_message_at
                .unwrap_or(self.since)
                .max(self.since);
            watch.check_inactivity(running, last, now);
        }
        for (watch, (_, counts)) in self.watches.iter().zip(self.counters.0.iter()) {
            let raised = [
                watch.queue_alerts,
                watch.wait_alerts,
                watch.inactivity_alerts,
            ];
            for (count, value) in counts.iter().zip(raised) {
                count.store(value, Ordering::Relaxed);
            }
        }
    }
}

impl Watch {
    fn check_queue(&mut self, queued: u64) {
        if self.queue_count == 0 {
            return;
        }
        let (item, limit) = (&self.item, self.queue_count);
        if !self.queue_raised && queued >= limit {
            self.queue_raised = true;
            self.queue_alerts += 1;
            tracing::error!(
                target: "hie::alert",
                alert = "QueueCountAlert",
                item = %item,
                queued,
                "ALERT {item}: {queued} messages queued (QueueCountAlert {limit})"
            );
        } else if self.queue_raised && queued * 5 < limit * 4 {
            self.queue_raised = false;
            tracing::info!(
                target: "hie::alert",
                alert = "QueueCountAlert",
                item = %item,
                queued,
                cleared = true,
                "alert cleared: {item}: {queued} messages queued, below 80 % of {limit}"
            );
        }
    }

    fn check_wait(&mut self, waited: Option<Duration>) {
        let Some(limit) = self.queue_wait else {
            return;
        };
        let item = &self.item;
        let waited = waited.unwrap_or_default();
        if !self.wait_raised && waited >= limit {
            self.wait_raised = true;
            self.wait_alerts += 1;
            let waited_s = waited.as_secs();
            tracing::error!(
                target: "hie::alert",
                alert = "QueueWaitAlert",
                item = %item,
                waited_s,
                "ALERT {item}: a queued message has waited {waited_s} s (QueueWaitAlert {} s)",
                limit.as_secs()
            );
        } else if self.wait_raised && waited * 5 < limit * 4 {
            self.wait_raised = false;
            tracing::info!(
                target: "hie::alert",
                alert = "QueueWaitAlert",
                item = %item,
                cleared = true,
                "alert cleared: {item}: its oldest queued message waits below 80 % of {} s",
                limit.as_secs()
            );
        }
    }

    fn check_inactivity(&mut self, running: bool, last: Instant, now: Instant) {
        let Some(timeout) = self.inactivity else {
            return;
        };
        let item = &self.item;
        match self.inactive_since {
            Some(raised) if last > raised => {
                self.inactive_since = None;
                tracing::info!(
                    target: "hie::alert",
                    alert = "InactivityTimeout",
                    item = %item,
                    cleared = true,
                    "alert cleared: {item} handled a message again"
                );
            }
            Some(_) => {}
            None if running && now.saturating_duration_since(last) >= timeout => {
                self.inactive_since = Some(now);
                self.inactivity_alerts += 1;
                let idle_s = now.saturating_duration_since(last).as_secs();
                tracing::error!(
                    target: "hie::alert",
                    alert = "InactivityTimeout",
                    item = %item,
                    idle_s,
                    "ALERT {item}: no message for {idle_s} s (InactivityTimeout {} s)",
                    timeout.as_secs()
                );
            }
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch(queue_count: u64, inactivity_s: Option<u64>) -> Watch {
        Watch {
            item: "In".into(),
            queue_count,
            queue_wait: Some(Duration::from_secs(10)),
            inactivity: inactivity_s.map(Duration::from_secs),
            queue_raised: false,
            wait_raised: false,
            inactive_since: None,
            queue_alerts: 0,
            wait_alerts: 0,
            inactivity_alerts: 0,
        }
    }

    #[test]
    fn a_queue_alert_is_raised_once_and_again_only_after_falling_below_80_percent() {
        let mut w = watch(10, None);
        for queued in [9, 10, 12, 9, 8, 10] {
            w.check_queue(queued);
        }
        assert_eq!(w.queue_alerts, 1, "8 is not below 80 % of 10");
        for queued in [7, 10] {
            w.check_queue(queued);
        }
        assert_eq!(w.queue_alerts, 2);
    }

    #[test]
    fn a_wait_alert_is_raised_once_and_again_only_after_the_wait_fell_below_80_percent() {
        let mut w = watch(0, None);
        let s = |n| Some(Duration::from_secs(n));
        for waited in [s(9), s(10), s(30), s(9), s(8), s(12)] {
            w.check_wait(waited);
        }
        assert_eq!(w.wait_alerts, 1);
        w.check_wait(None);
        w.check_wait(s(10));
        assert_eq!(w.wait_alerts, 2, "an empty queue clears it");
    }

    #[test]
    fn an_inactivity_alert_fires_once_and_clears_at_the_next_message() {
        let mut w = watch(0, Some(5));
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        w.check_inactivity(true, t0, at(4));
        assert_eq!(w.inactivity_alerts, 0);
        w.check_inactivity(true, t0, at(5));
        w.check_inactivity(true, t0, at(60));
        assert_eq!(w.inactivity_alerts, 1, "once while it lasts");
        w.check_inactivity(true, at(61), at(62));
        assert_eq!(w.inactive_since, None, "cleared");
        // Not running (disabled, paused): no alert.
        w.check_inactivity(false, at(61), at(200));
        assert_eq!(w.inactivity_alerts, 1);
        w.check_inactivity(true, at(61), at(200));
        assert_eq!(w.inactivity_alerts, 2, "a new silence");
    }
}
