//! The metrics of one shard: per-item counters and per-stage latency histograms
//! (`hdrhistogram`), owned by the shard and merged over the shards on demand
//! ([`super::shard_call`] asks every shard for a [`MetricsSnapshot`]; [`EngineMetrics`]
//! adds them up).
//!
//! Stages of a message, each a histogram of the latency to reach it, in µs:
//!
//! ```text
//! service   received ─▶ durable     store started → MessageReceived + Enqueued durable
//! router    durable  ─▶ routed      stored at the service → routing records submitted
//! operation durable  ─▶ delivered   stored at the service → Completed (downstream ACKed)
//! operation (per attempt) round_trip  message sent downstream → its reply read (TCP)
//! ```
//!
//! "Stored at the service" is the envelope's `received_at` (a recovered message: its
//! recovery). The `received` count is the service's `received` counter.
//!
//! Invariants and limits:
//! - Nothing here is shared between threads: counters are `Cell`s and histograms
//!   `RefCell`s of the shard that records into them; the data path neither locks nor
//!   touches an atomic.
//! - Every histogram is allocated when the shard starts, one per stage an item has on
//!   this shard (a service: `durable`; a router: `routed`; an operation: `delivered` and
//!   `round_trip`), and recording never allocates: values past
//!   [`LATENCY_US_MAX`] are counted at it, precision is [`LATENCY_SIGNIFICANT_DIGITS`]
//!   significant digits (about 26 KiB per histogram).
//! - A snapshot copies the histograms (on the control path, never per message); the
//!   scrape copies none: each shard reads its histograms into [`LatencyBuckets`] (the
//!   counts at [`LATENCY_BUCKETS_US`], 17 numbers) and those are added up.

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::engine::plan::{Plan, Role};
use crate::envelope::ItemId;

/// Longest latency a histogram tells apart, in µs (1 hour); longer ones count as this.
pub const LATENCY_US_MAX: u64 = 3_600_000_000;

/// Significant decimal digits each histogram keeps (1 % resolution).
pub const LATENCY_SIGNIFICANT_DIGITS: u8 = 2;

/// Upper bounds of the latency buckets `/metrics` reports, in µs (the last bucket, past
/// these, is +Inf).
pub const LATENCY_BUCKETS_US: [u64; 16] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000,
];

/// One latency histogram read at [`LATENCY_BUCKETS_US`]: what a Prometheus histogram
/// needs, without copying the histogram.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LatencyBuckets {
    /// Values in each bucket (not cumulative): `counts[i]` are at or below
    /// `LATENCY_BUCKETS_US[i]` and above the bound before; the last, above them all.
    pub counts: [u64; 17],
    /// Values recorded, and their sum in µs (each value as its bucket's middle, as
    /// `Histogram::mean` counts it).
    pub count: u64,
    pub sum_us: f64,
}

impl LatencyBuckets {
    /// `histogram` read in one pass over its recorded values (no allocation). A value
    /// counts at or below a bound when its histogram bucket starts at or below it, as
    /// `Histogram::count_between(0, bound)` counts.
    pub fn of(histogram: &Histogram<u64>) -> Self {
        let mut out = LatencyBuckets::default();
        for recorded in histogram.iter_recorded() {
            let value = recorded.value_iterated_to();
            let count = recorded.count_since_last_iteration();
            let low = histogram.lowest_equivalent(value);
            let bucket = LATENCY_BUCKETS_US.partition_point(|&bound| bound < low);
            out.counts[bucket] += count;
            out.count += count;
            out.sum_us += histogram.median_equivalent(value) as f64 * count as f64;
        }
        out
    }

    /// Adds `other`'s counts (another shard's).
    pub fn add(&mut self, other: &LatencyBuckets) {
        for (into, from) in self.counts.iter_mut().zip(&other.counts) {
            *into += from;
        }
        self.count += other.count;
        self.sum_us += other.sum_us;
    }

    /// Each bound of [`LATENCY_BUCKETS_US`] with the values at or below it.
    pub fn cumulative(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        LATENCY_BUCKETS_US
            .iter()
            .zip(&self.counts)
            .scan(0, |sum, (&bound, &count)| {
                *sum += count;
                Some((bound, *sum))
            })
    }
}

/// A point on a message's way whose latency is measured (module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Durable,
    Routed,
    Delivered,
    RoundTrip,
}

impl Stage {
    pub const ALL: [Stage; 4] = [
        Stage::Durable,
        Stage::Routed,
        Stage::Delivered,
        Stage::RoundTrip,
    ];

    /// The stages an item of `role` records.
    pub fn of(role: &Role) -> &'static [Stage] {
        match role {
            Role::Service(_) => &[Stage::Durable],
            Role::Router(_) => &[Stage::Routed],
            Role::Operation(_) => &[Stage::Delivered, Stage::RoundTrip],
            Role::Inert(_) => &[],
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Stage::Durable => "durable",
            Stage::Routed => "routed",
            Stage::Delivered => "delivered",
            Stage::RoundTrip => "round_trip",
        }
    }
}

/// Counters of one item on one shard.
#[derive(Debug, Default)]
pub struct ItemCounters {
    /// Messages accepted by a service (durable).
    pub received: Cell<u64>,
    /// Frames refused by a service (NAK).
    pub rejected: Cell<u64>,
    /// Messages a router or operation took from its queue.
    pub processed: Cell<u64>,
    pub completed: Cell<u64>,
    pub failed: Cell<u64>,
    pub suspended: Cell<u64>,
    pub discarded: Cell<u64>,
    pub retries: Cell<u64>,
    pub restarts: Cell<u64>,
    /// Messages a router had no target for (sent to its `BadMessageHandler`, or
    /// discarded).
    pub no_route: Cell<u64>,
    /// `ALERT` lines written for the item (`AlertOnError`, `AlertOnBadMessage`).
    pub alerts: Cell<u64>,
    /// Replies an operation read, by MSA-1 (index of [`ACK_CODES`]; the last: a reply
    /// with none of them, or not HL7).
    pub acks: [Cell<u64>; ACK_CODES.len() + 1],
    /// Instances of the item waiting for the WAL to be writable again
    /// (`Shard::until_wal_writable`).
    pub wal_waits: Cell<u32>,
}

/// The counters of one item, copied out of a shard (or summed over shards).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterValues {
    pub received: u64,
    pub rejected: u64,
    pub processed: u64,
    pub completed: u64,
    pub failed: u64,
    pub suspended: u64,
    pub discarded: u64,
    pub retries: u64,
    pub restarts: u64,
    pub no_route: u64,
    pub alerts: u64,
    /// Replies by MSA-1, as [`ItemCounters::acks`].
    #[serde(default, skip_serializing_if = "is_zero")]
    pub acks: [u64; ACK_CODES.len() + 1],
}

/// The MSA-1 codes counted apart, in this order.
pub const ACK_CODES: [&str; 6] = ["AA", "AE", "AR", "CA", "CE", "CR"];

fn is_zero(acks: &[u64; ACK_CODES.len() + 1]) -> bool {
    acks.iter().all(|&n| n == 0)
}

impl ItemCounters {
    /// Counts a reply whose MSA-1 is `code` (`None`: none of [`ACK_CODES`], or not HL7).
    pub fn count_ack(&self, code: Option<&str>) {
        let at = code
            .and_then(|c| ACK_CODES.iter().position(|&k| k == c))
            .unwrap_or(ACK_CODES.len());
        self.acks[at].set(self.acks[at].get() + 1);
    }

    pub fn values(&self) -> CounterValues {
        CounterValues {
            received: self.received.get(),
            rejected: self.rejected.get(),
            processed: self.processed.get(),
            completed: self.completed.get(),
            failed: self.failed.get(),
            suspended: self.suspended.get(),
            discarded: self.discarded.get(),
            retries: self.retries.get(),
            restarts: self.restarts.get(),
            no_route: self.no_route.get(),
            alerts: self.alerts.get(),
            acks: std::array::from_fn(|i| self.acks[i].get()),
        }
    }
}

impl CounterValues {
    fn add(&mut self, o: &CounterValues) {
        self.received += o.received;
        self.rejected += o.rejected;
        self.processed += o.processed;
        self.completed += o.completed;
        self.failed += o.failed;
        self.suspended += o.suspended;
        self.discarded += o.discarded;
        self.retries += o.retries;
        self.restarts += o.restarts;
        self.no_route += o.no_route;
        self.alerts += o.alerts;
        for (into, from) in self.acks.iter_mut().zip(o.acks) {
            *into += from;
        }
    }
}

/// An empty latency histogram with this module's bounds.
fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_US_MAX, LATENCY_SIGNIFICANT_DIGITS)
        .expect("constant bounds are valid")
}

/// One item's metrics on one shard.
#[derive(Debug)]
struct ItemMetrics {
    counters: ItemCounters,
    /// When the item last reached one of its stages with a message (the clock read that
    /// measured the latency).
    last_message_at: Cell<Option<Instant>>,
    /// The item's last error here (error path only: it allocates).
    last_error: RefCell<Option<LastError>>,
    /// By stage (index of [`Stage::ALL`]): `None` for a stage the item does not have here.
    latency: [Option<RefCell<Histogram<u64>>>; 4],
}

/// The metrics of every item on one shard.
#[derive(Debug)]
pub struct ShardMetrics {
    items: Vec<ItemMetrics>,
    /// The executor's time running tasks and tasks run, summed over every
    /// [`ShardMetrics::executor_totals`] (glommio hands its counters over and resets them).
    executor_busy: Cell<Duration>,
    executor_tasks: Cell<u64>,
    /// Reactor stalls the probe saw ([`ShardMetrics::note_probe_lateness`]), and their
    /// lateness summed.
    stalls: Cell<u64>,
    stalled: Cell<Duration>,
    /// The shard's coarse clock: when the reactor probe last woke
    /// ([`ShardMetrics::note_probe`]).
    clock: Cell<Instant>,
}

/// How often each shard's reactor probe sleeps and checks how late it woke.
pub const REACTOR_PROBE_INTERVAL: Duration = Duration::from_millis(20);
/// A probe that wakes at least this late past its deadline counts one reactor stall: the
/// shard did not get back to its timers for that long (a task that ran without yielding,
/// a blocking call on the shard's thread, or the OS not running the thread).
pub const REACTOR_STALL_MIN: Duration = Duration::from_millis(20);

impl ShardMetrics {
    /// Counters for every item of `plan`; histograms for the stages of the items that run
    /// on shard `shard`.
    pub fn new(plan: &Plan, shard: usize) -> Self {
        let items = plan
            .items
            .iter()
            .map(|item| {
                let here = item.shards.contains(&shard);
                let stages = if here { Stage::of(&item.role) } else { &[] };
                ItemMetrics {
                    counters: ItemCounters::default(),
                    last_message_at: Cell::new(None),
                    last_error: RefCell::new(None),
                    latency: Stage::ALL.map(|s| {
                        stages
                            .contains(&s)
                            .then(|| RefCell::new(latency_histogram()))
                    }),
                }
            })
            .collect();
        ShardMetrics::of_items(items)
    }

    fn of_items(items: Vec<ItemMetrics>) -> Self {
        ShardMetrics {
            items,
            executor_busy: Cell::new(Duration::ZERO),
            executor_tasks: Cell::new(0),
            stalls: Cell::new(0),
            stalled: Cell::new(Duration::ZERO),
            clock: Cell::new(Instant::now()),
        }
    }

    /// The shard's time running tasks and the tasks it ran since it started. Call it on
    /// the shard's thread (a task of its own, see `engine::admin`); the only reader of
    /// glommio's executor counters, which reset when read.
    pub fn executor_totals(&self) -> (Duration, u64) {
        let stats = glommio::executor().executor_stats();
        self.executor_busy
            .set(self.executor_busy.get() + stats.executor_runtime());
        self.executor_tasks
            .set(self.executor_tasks.get() + stats.tasks_executed());
        (self.executor_busy.get(), self.executor_tasks.get())
    }

    /// The reactor probe woke at `woke`, `late` past its deadline: the coarse clock moves
    /// to `woke` ([`ShardMetrics::coarse_now`]), and a stall is counted when `late` is
    /// at least [`REACTOR_STALL_MIN`].
    pub fn note_probe(&self, woke: Instant, late: Duration) {
        self.clock.set(self.clock.get().max(woke));
        self.note_probe_lateness(late);
    }

    /// The shard's coarse clock, read without a system call: the reactor probe's last
    /// wake-up, at most [`REACTOR_PROBE_INTERVAL`] (plus any reactor stall) behind the
    /// time. Stamps queue entries (their wait is shown and alerted on in seconds).
    pub fn coarse_now(&self) -> Instant {
        self.clock.get()
    }

    /// The reactor probe woke `late` past its deadline: a stall when at least
    /// [`REACTOR_STALL_MIN`].
    pub fn note_probe_lateness(&self, late: Duration) {
        if late >= REACTOR_STALL_MIN {
            self.stalls.set(self.stalls.get() + 1);
            self.stalled.set(self.stalled.get() + late);
        }
    }

    /// Reactor stalls since the shard started, and their lateness summed.
    pub fn stalls(&self) -> (u64, Duration) {
        (self.stalls.get(), self.stalled.get())
    }

    pub fn counters(&self, item: ItemId) -> &ItemCounters {
        &self.items[item as usize].counters
    }

    /// Records that `item` took `latency` to reach `stage` (nothing when the item has no
    /// such stage here).
    pub fn record(&self, item: ItemId, stage: Stage, latency: Duration) {
        let histogram = self
            .items
            .get(item as usize)
            .and_then(|m| m.latency[stage as usize].as_ref());
        if let Some(histogram) = histogram {
            let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
            histogram.borrow_mut().saturating_record(us.max(1));
        }
    }

    /// [`ShardMetrics::record`] of the time since `since`; the item's last message is
    /// now.
    pub fn record_since(&self, item: ItemId, stage: Stage, since: Instant) {
        let now = Instant::now();
        self.record(item, stage, now.saturating_duration_since(since));
        if let Some(m) = self.items.get(item as usize) {
            m.last_message_at.set(Some(now));
        }
    }

    /// Notes `what` as the last error of `item` (called where the error is logged).
    pub fn note_error(&self, item: ItemId, what: &str) {
        if let Some(m) = self.items.get(item as usize) {
            let at_us = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
            *m.last_error.borrow_mut() = Some(LastError {
                at_us,
                what: what.to_string(),
            });
        }
    }

    /// When each item (by id) last reached one of its stages with a message here.
    pub fn last_messages(&self) -> Vec<Option<Instant>> {
        self.items.iter().map(|m| m.last_message_at.get()).collect()
    }

    /// Every item's (by id) histograms read as [`LatencyBuckets`], by stage: the scrape's
    /// part, without copying a histogram.
    pub fn latency_buckets(&self) -> Vec<Vec<(Stage, LatencyBuckets)>> {
        self.items
            .iter()
            .map(|m| {
                Stage::ALL
                    .iter()
                    .zip(&m.latency)
                    .filter_map(|(&s, h)| Some((s, LatencyBuckets::of(&h.as_ref()?.borrow()))))
                    .collect()
            })
            .collect()
    }

    /// A copy of every item's counters and histograms (for items on this shard).
    pub fn snapshot(&self, plan: &Plan) -> MetricsSnapshot {
        let items = self
            .items
            .iter()
            .zip(&plan.items)
            .map(|(m, item)| ItemSnapshot {
                item: item.name.clone(),
                counters: m.counters.values(),
                last_message_at: m.last_message_at.get(),
                last_error: m.last_error.borrow().clone(),
                latency: Stage::ALL
                    .iter()
                    .zip(&m.latency)
                    .filter_map(|(&s, h)| Some((s, h.as_ref()?.borrow().clone())))
                    .collect(),
            })
            .collect();
        MetricsSnapshot { items }
    }
}

/// One item's counters and histograms, of one shard or merged.
#[derive(Debug, Clone)]
pub struct ItemSnapshot {
    pub item: String,
    pub counters: CounterValues,
    /// When the item last reached one of its stages with a message (the latest over
    /// the shards); `None`: never since the start.
    pub last_message_at: Option<Instant>,
    /// The latest error over the shards.
    pub last_error: Option<LastError>,
    pub latency: Vec<(Stage, Histogram<u64>)>,
}

/// An item's last error: when (µs since the Unix epoch) and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastError {
    pub at_us: u64,
    pub what: String,
}

/// Every item's metrics on one shard, by item id.
#[derive(Debug, Clone)]
pub struct MetricsSnapshot {
    pub items: Vec<ItemSnapshot>,
}

/// The metrics of the whole production: each item's counters and histograms summed over
/// its shards.
#[derive(Debug, Clone)]
pub struct EngineMetrics {
    pub production: String,
    /// Shards whose metrics are in (a shard that did not answer is left out).
    pub shards: Vec<usize>,
    /// By item id.
    pub items: Vec<ItemSnapshot>,
}

impl EngineMetrics {
    pub fn new(production: &str) -> Self {
        EngineMetrics {
            production: production.to_string(),
            shards: Vec::new(),
            items: Vec::new(),
        }
    }

    /// Adds shard `shard`'s snapshot.
    pub fn merge(&mut self, shard: usize, snapshot: MetricsSnapshot) {
        self.shards.push(shard);
        if self.items.is_empty() {
            self.items = snapshot.items;
            return;
        }
        for (into, from) in self.items.iter_mut().zip(snapshot.items) {
            into.counters.add(&from.counters);
            into.last_message_at = into.last_message_at.max(from.last_message_at);
            if from.last_error.as_ref().map(|e| e.at_us) > into.last_error.as_ref().map(|e| e.at_us)
            {
                into.last_error = from.last_error;
            }
            for (stage, histogram) in from.latency {
                match into.latency.iter_mut().find(|(s, _)| *s == stage) {
                    Some((_, into)) => {
                        into.add(&histogram)
                            .expect("histograms of equal bounds add");
                    }
                    None => into.latency.push((stage, histogram)),
                }
            }
            into.latency.sort_by_key(|(s, _)| *s);
        }
    }

    /// Takes `earlier` (a merge of the same shards taken before) out of these counts:
    /// what happened since. A histogram that cannot be (a shard left out of one of
    /// the two) is kept whole.
    pub fn subtract(&mut self, earlier: &EngineMetrics) {
        for (into, from) in self.items.iter_mut().zip(&earlier.items) {
            for (stage, histogram) in &mut into.latency {
                if let Some((_, before)) = from.latency.iter().find(|(s, _)| s == stage) {
                    let mut since = histogram.clone();
                    if since.subtract(before).is_ok() {
                        *histogram = since;
                    }
                }
            }
        }
    }

    /// Keeps only `stage`'s histograms.
    pub fn keep_stage(&mut self, stage: Stage) {
        for item in &mut self.items {
            item.latency.retain(|(s, _)| *s == stage);
        }
    }

    /// Percentiles of every stage of every item (or of the item named `item`).
    pub fn report(&self, item: Option<&str>) -> LatencyReport {
        let items = self
            .items
            .iter()
            .filter(|i| item.is_none_or(|name| i.item == name))
            .filter(|i| !i.latency.is_empty())
            .map(|i| ItemLatency {
                item: i.item.clone(),
                stages: i.latency.iter().map(|(s, h)| summary(*s, h)).collect(),
            })
            .collect();
        LatencyReport {
            production: self.production.clone(),
            shards: self.shards.clone(),
            items,
        }
    }
}

/// The latency of one stage of one item, merged over its shards (µs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageLatency {
    pub stage: Stage,
    pub count: u64,
    pub min_us: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    pub mean_us: f64,
}

fn summary(stage: Stage, h: &Histogram<u64>) -> StageLatency {
    let at = |q| h.value_at_quantile(q);
    StageLatency {
        stage,
        count: h.len(),
        min_us: h.min(),
        p50_us: at(0.5),
        p90_us: at(0.9),
        p99_us: at(0.99),
        p999_us: at(0.999),
        max_us: h.max(),
        mean_us: h.mean(),
    }
}

/// One item's stages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemLatency {
    pub item: String,
    pub stages: Vec<StageLatency>,
}

/// The answer to `hie ctl histograms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyReport {
    pub production: String,
    pub shards: Vec<usize>,
    pub items: Vec<ItemLatency>,
}

impl LatencyReport {
    /// A table: one row per item and stage, latencies in µs.
    pub fn table(&self) -> String {
        let header = [
            "ITEM", "STAGE", "COUNT", "P50", "P90", "P99", "P99.9", "MAX",
        ];
        let mut rows: Vec<Vec<String>> = vec![header.map(String::from).to_vec()];
        for item in &self.items {
            for s in &item.stages {
                let mut row = vec![item.item.clone(), s.stage.name().to_string()];
                let values = [s.count, s.p50_us, s.p90_us, s.p99_us, s.p999_us, s.max_us];
                row.extend(values.iter().map(u64::to_string));
                rows.push(row);
            }
        }
        let widths: Vec<usize> = (0..header.len())
            .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
            .collect();
        let mut out = format!("production {} (latency in µs)\n", self.production);
        for row in rows {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, &width)| format!("{cell:<width$}"))
                .collect();
            out.push_str(cells.join("  ").trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(item: &str, stage: Stage, values: &[u64], received: u64) -> MetricsSnapshot {
        let mut h = latency_histogram();
        for &v in values {
            h.record(v).unwrap();
        }
        MetricsSnapshot {
            items: vec![ItemSnapshot {
                item: item.into(),
                counters: CounterValues {
                    received,
                    ..CounterValues::default()
                },
                last_message_at: None,
                last_error: None,
                latency: vec![(stage, h)],
            }],
        }
    }

    #[test]
    fn buckets_count_as_count_between_does_and_add_over_shards() {
        let mut h = latency_histogram();
        let values = [
            50,
            90,
            100,
            101,
            300,
            2_499,
            2_600,
            99_000,
            20_000_000,
            LATENCY_US_MAX,
        ];
        for v in values {
            h.record(v).unwrap();
        }
        let buckets = LatencyBuckets::of(&h);
        assert_eq!(buckets.count, values.len() as u64);
        for (bound, cumulative) in buckets.cumulative() {
            assert_eq!(cumulative, h.count_between(0, bound), "at {bound}");
        }
        assert_eq!(buckets.counts[16], 2, "past the last bound");
        let expected = h.mean() * h.len() as f64;
        assert!(
            (buckets.sum_us - expected).abs() < 1.0,
            "{}",
            buckets.sum_us
        );
        let mut two = buckets;
        two.add(&buckets);
        assert_eq!((two.count, two.counts[0]), (20, 6));
        assert_eq!(
            LatencyBuckets::of(&latency_histogram()),
            LatencyBuckets::default()
        );
    }

    #[test]
    fn a_probe_wake_up_at_least_the_stall_minimum_late_counts_one_stall() {
        let metrics = ShardMetrics::of_items(Vec::new());
        metrics.note_probe_lateness(Duration::ZERO);
        metrics.note_probe_lateness(REACTOR_STALL_MIN - Duration::from_millis(1));
        assert_eq!(metrics.stalls(), (0, Duration::ZERO), "on time, or nearly");
        metrics.note_probe_lateness(REACTOR_STALL_MIN);
        metrics.note_probe_lateness(Duration::from_millis(500));
        let late = REACTOR_STALL_MIN + Duration::from_millis(500);
        assert_eq!(metrics.stalls(), (2, late));
    }

    #[test]
    fn shards_merge_into_one_histogram_per_stage_and_summed_counters() {
        let mut all = EngineMetrics::new("P");
        all.merge(0, snapshot("In", Stage::Durable, &[100, 200], 2));
        all.merge(1, snapshot("In", Stage::Durable, &[300], 1));
        assert_eq!(all.items[0].counters.received, 3);
        let report = all.report(None);
        assert_eq!(report.shards, [0, 1]);
        let stage = &report.items[0].stages[0];
        assert_eq!((stage.stage, stage.count), (Stage::Durable, 3));
        assert_eq!(stage.min_us, 100);
        assert!((299..=301).contains(&stage.max_us), "{stage:?}");
        assert!(
            report.table().contains("In    durable  3"),
            "{}",
            report.table()
        );
        assert!(all.report(Some("Out")).items.is_empty());
    }

    #[test]
    fn the_last_message_is_the_latest_over_the_stages_and_the_shards() {
        let metrics = ShardMetrics::of_items(vec![ItemMetrics {
            counters: ItemCounters::default(),
            last_message_at: Cell::new(None),
            last_error: RefCell::new(None),
            latency: Stage::ALL
                .map(|s| (s == Stage::Durable).then(|| RefCell::new(latency_histogram()))),
        }]);
        let before = Instant::now();
        metrics.record_since(0, Stage::Durable, before);
        let at = metrics.items[0].last_message_at.get().expect("set");
        assert!(at >= before);
        let mut one = snapshot("In", Stage::Durable, &[1], 1);
        one.items[0].last_message_at = Some(at);
        let mut all = EngineMetrics::new("P");
        all.merge(1, one);
        all.merge(0, snapshot("In", Stage::Durable, &[1], 1));
        assert_eq!(
            all.items[0].last_message_at,
            Some(at),
            "a shard with none keeps it"
        );
    }

    #[test]
    fn replies_count_by_their_code_and_the_rest_as_other() {
        let counters = ItemCounters::default();
        for code in [Some("AA"), Some("AA"), Some("CR"), Some("ZZ"), None] {
            counters.count_ack(code);
        }
        assert_eq!(counters.values().acks, [2, 0, 0, 0, 0, 1, 2]);
        let json = serde_json::to_value(ItemCounters::default().values()).unwrap();
        assert!(json.get("acks").is_none(), "left out when all zero: {json}");
    }

    #[test]
    fn an_interval_is_the_whole_less_what_came_before() {
        let mut before = EngineMetrics::new("P");
        before.merge(0, snapshot("In", Stage::Durable, &[100, 200], 2));
        let mut now = EngineMetrics::new("P");
        now.merge(0, snapshot("In", Stage::Durable, &[100, 200, 5000], 3));
        now.subtract(&before);
        let stage = &now.report(None).items[0].stages[0];
        assert_eq!(stage.count, 1, "{stage:?}");
        assert!((4900..=5100).contains(&stage.min_us), "{stage:?}");
        now.keep_stage(Stage::Routed);
        assert!(now.report(None).items.is_empty());
    }

    #[test]
    fn a_latency_past_the_maximum_is_counted_at_the_maximum_without_growing() {
        let metrics = ShardMetrics::of_items(vec![ItemMetrics {
            counters: ItemCounters::default(),
            last_message_at: Cell::new(None),
            last_error: RefCell::new(None),
            latency: Stage::ALL
                .map(|s| (s == Stage::Routed).then(|| RefCell::new(latency_histogram()))),
        }]);
        let before = metrics.items[0].latency[1]
            .as_ref()
            .unwrap()
            .borrow()
            .distinct_values();
        metrics.record(0, Stage::Routed, Duration::from_secs(7200));
        metrics.record(0, Stage::Routed, Duration::ZERO);
        // A stage the item does not have, and an item that does not exist: nothing.
        metrics.record(0, Stage::Delivered, Duration::from_millis(1));
        metrics.record(9, Stage::Routed, Duration::from_millis(1));
        let h = metrics.items[0].latency[1].as_ref().unwrap().borrow();
        assert_eq!(h.len(), 2);
        assert_eq!(h.distinct_values(), before, "no counts array grew");
        assert!(
            h.max() >= LATENCY_US_MAX - LATENCY_US_MAX / 100,
            "{}",
            h.max()
        );
        assert_eq!(h.min(), 1);
    }

    #[test]
    fn a_histogram_costs_about_26_kib() {
        let bytes = latency_histogram().distinct_values() * std::mem::size_of::<u64>();
        assert!((20_000..=32_000).contains(&bytes), "{bytes} bytes");
    }
}
