//! `GET /metrics`: the engine's status and metrics in the Prometheus text exposition
//! format 0.0.4, encoded by the `prometheus` crate's `TextEncoder` from one snapshot taken
//! per scrape: every shard asked once, all at once, for its status, its latency buckets
//! (no histogram copied), its engine counters and its items' activity
//! ([`hie_core::engine::admin::scrape`]).
//!
//! Labels: `item`, `shard`, `stage` only (low cardinality: never a message's content).
//!
//! ```text
//! hie_item_received_total{item,shard}      counters of each item instance (see
//! hie_item_rejected_total …                 hie_core::engine::metrics::ItemCounters:
//!                                           …, no_route, alerts)
//! hie_item_queued{item,shard}              gauge: its queue's entries (held ones included)
//! hie_item_state{item,shard}               gauge: 0 stopped, 1 running, 2 paused,
//!                                           3 disabled, 4 failed
//! hie_item_waiting_for_wal{item,shard}     gauge: 1 while it waits for the WAL
//! hie_item_acks_total{item,shard,code}     replies an operation read, by MSA-1 (AA, AE,
//!                                           AR, CA, CE, CR, other)
//! hie_item_latency_seconds{item,stage}     histogram, merged over the shards
//! hie_shard_up{shard}                      1 when the shard answered this scrape
//! hie_wal_writable{shard}                  1 writable, 0 refusing appends
//! hie_wal_open_messages{shard}             messages the WAL keeps open
//! hie_wal_last_lsn{shard}                  last record's sequence number
//! hie_wal_recovery_errors{shard}           segments recovery found cut short at start
//! hie_held_failed{shard}, hie_held_suspended{shard}   messages in the held lists
//! hie_item_last_message_age_seconds{item}  since the item last handled a message
//! hie_wal_records_total{shard} …           the WAL's counters since it opened (records,
//!                                           bytes, commits, fdatasyncs, segments created
//!                                           and removed, failures, refused appends)
//! hie_wal_segments{shard}                  segments in its directory
//! hie_wal_sync_seconds{shard}              histogram of its fdatasyncs' latency
//! hie_shard_busy_seconds_total{shard}      the executor's time running tasks, and the
//! hie_shard_tasks_total{shard}              tasks it ran
//! hie_shard_reactor_stalls_total{shard}    wake-ups of its probe 20 ms or more late, and
//! hie_shard_reactor_stall_seconds_total{shard}   their lateness (engine::metrics)
//! hie_ring_inbound_queued{shard}           waiting in the rings towards the shard
//! hie_ring_queued{shard,peer}              of those, in the ring from shard `peer`
//! hie_item_oldest_queued_age_seconds{item} the oldest queued message's wait
//! hie_item_connections{item}               a TCP service's open inbound connections
//! hie_data_dir_free_bytes                  free space on the data directory's file system
//! hie_item_queue_count_alerts_total{item}  QueueCountAlert / InactivityTimeout alerts
//! hie_item_inactivity_alerts_total{item}   raised (see crate::alerts)
//! hie_start_seconds                        how long recovery and the start took
//! hie_uptime_seconds                       since `hie run` started
//! ```

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hie_core::engine::EngineStatus;
use hie_core::engine::admin::{EngineScrape, ItemActivity, ShardEngineStats};
use hie_core::engine::metrics::{ACK_CODES, LatencyBuckets, Stage};
use hie_core::engine::reader::EngineReader;
use hie_core::engine::runtime::{ItemStatus, ShardStatus};
use hie_persist::wal::SYNC_US_BOUNDS;
use hyper::StatusCode;
use prometheus::proto::{self, LabelPair, Metric, MetricFamily, MetricType};

use super::api::{self, ApiResponse};
use crate::alerts::AlertCounters;

/// What the main thread knows of the run itself.
#[derive(Debug, Clone)]
pub struct RunFacts {
    /// When `hie run` started.
    pub started: Instant,
    /// How long recovering the WALs and starting the items took.
    pub start_duration: Duration,
    pub data_dir: PathBuf,
}

/// The scrape's answer: every shard asked for its status, its metrics and its WAL's
/// counters; the data directory's file system for its free space; the alerts' counters.
pub fn scrape(engine: &EngineReader, run: &RunFacts, alerts: &AlertCounters) -> ApiResponse {
    let scrape = engine.scrape();
    let names = || engine.plan().items.iter().map(|i| i.name.as_str());
    let mut families = families(&scrape, names, run.started.elapsed());
    families.extend(wal_families(&scrape.stats));
    families.push(oldest_queued(&scrape.activity, names()));
    families.push(connections(engine));
    families.extend(run_families(run));
    families.extend(alerts.families());
    // The encoder refuses a family without samples (an item that has handled nothing).
    families.retain(|f| !f.get_metric().is_empty());
    let mut body = String::new();
    match prometheus::TextEncoder::new().encode_utf8(&families, &mut body) {
        Ok(()) => ApiResponse {
            status: StatusCode::OK,
            content_type: api::PROMETHEUS_TEXT,
            body,
        },
        Err(e) => api::error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// A value of every item instance.
type ItemValue = fn(&ItemStatus) -> f64;

const ITEM_COUNTERS: [(&str, &str, ItemValue); 11] = [
    (
        "hie_item_received_total",
        "Messages a service accepted (durable).",
        |i| i.counters.received as f64,
    ),
    (
        "hie_item_rejected_total",
        "Frames a service refused (NAK).",
        |i| i.counters.rejected as f64,
    ),
    (
        "hie_item_processed_total",
        "Messages a router or operation took from its queue.",
        |i| i.counters.processed as f64,
    ),
    (
        "hie_item_completed_total",
        "Messages an operation delivered or a router routed.",
        |i| i.counters.completed as f64,
    ),
    (
        "hie_item_failed_total",
        "Messages that failed (held list).",
        |i| i.counters.failed as f64,
    ),
    (
        "hie_item_suspended_total",
        "Messages suspended (held list).",
        |i| i.counters.suspended as f64,
    ),
    ("hie_item_discarded_total", "Messages discarded.", |i| {
        i.counters.discarded as f64
    }),
    (
        "hie_item_retries_total",
        "Delivery attempts retried.",
        |i| i.counters.retries as f64,
    ),
    (
        "hie_item_restarts_total",
        "Times the item restarted.",
        |i| i.counters.restarts as f64,
    ),
    (
        "hie_item_no_route_total",
        "Messages a router had no target for (BadMessageHandler or discarded).",
        |i| i.counters.no_route as f64,
    ),
    (
        "hie_item_alerts_total",
        "ALERT lines written for the item (AlertOnError, AlertOnBadMessage).",
        |i| i.counters.alerts as f64,
    ),
];

const ITEM_GAUGES: [(&str, &str, ItemValue); 3] = [
    (
        "hie_item_queued",
        "Messages waiting in the item's queue.",
        |i| i.queued as f64,
    ),
    (
        "hie_item_state",
        "0 stopped, 1 running, 2 paused, 3 disabled, 4 failed.",
        state_number,
    ),
    (
        "hie_item_waiting_for_wal",
        "1 while the item waits for the WAL.",
        |i| f64::from(u8::from(i.waiting_for_wal)),
    ),
];

fn state_number(item: &ItemStatus) -> f64 {
    match serde_json::to_value(item.state)
        .unwrap_or_default()
        .as_str()
    {
        Some("running") => 1.0,
        Some("paused") => 2.0,
        Some("disabled") => 3.0,
        Some("failed") => 4.0,
        _ => 0.0,
    }
}

/// A value of every shard.
type ShardValue = fn(&ShardStatus) -> f64;

const SHARD_GAUGES: [(&str, &str, ShardValue); 6] = [
    (
        "hie_shard_up",
        "1 when the shard answered this scrape.",
        |_| 1.0,
    ),
    (
        "hie_wal_writable",
        "1 while the WAL takes appends, 0 while it refuses them.",
        |s| f64::from(u8::from(s.wal_state == "writable")),
    ),
    (
        "hie_wal_open_messages",
        "Messages the WAL keeps open (not yet finished).",
        |s| s.wal_open_messages as f64,
    ),
    (
        "hie_wal_recovery_errors",
        "WAL segments recovery found cut short at start.",
        |s| s.wal_recovery_errors.len() as f64,
    ),
    (
        "hie_held_failed",
        "Failed messages in the held list.",
        |s| s.held.failed as f64,
    ),
    (
        "hie_held_suspended",
        "Suspended messages in the held list.",
        |s| s.held.suspended as f64,
    ),
];

/// A counter family of `samples`.
pub fn counter_family(name: &str, help: &str, samples: Vec<Metric>) -> MetricFamily {
    family(name, help, MetricType::COUNTER, samples)
}

/// Counter samples labelled `item`.
pub fn item_samples<'i>(values: impl Iterator<Item = (&'i str, f64)>) -> Vec<Metric> {
    values
        .map(|(item, value)| sample(labels(&[("item", item)]), MetricType::COUNTER, value))
        .collect()
}

fn family(name: &str, help: &str, kind: MetricType, metrics: Vec<Metric>) -> MetricFamily {
    let mut family = MetricFamily::default();
    family.set_name(name.to_string());
    family.set_help(help.to_string());
    family.set_field_type(kind);
    family.set_metric(metrics);
    family
}

fn labels(pairs: &[(&str, &str)]) -> Vec<LabelPair> {
    pairs
        .iter()
        .map(|(name, value)| {
            let mut pair = LabelPair::default();
            pair.set_name((*name).to_string());
            pair.set_value((*value).to_string());
            pair
        })
        .collect()
}

fn sample(labels: Vec<LabelPair>, kind: MetricType, value: f64) -> Metric {
    let mut metric = Metric::from_label(labels);
    if kind == MetricType::COUNTER {
        let mut counter = proto::Counter::default();
        counter.set_value(value);
        metric.set_counter(counter);
    } else {
        let mut gauge = proto::Gauge::default();
        gauge.set_value(value);
        metric.set_gauge(gauge);
    }
    metric
}

/// Every family of one scrape but the WAL's and the run's; `names` are the items' names
/// by id.
fn families<'n, N: Iterator<Item = &'n str>>(
    scrape: &EngineScrape,
    names: impl Fn() -> N,
    uptime: Duration,
) -> Vec<MetricFamily> {
    let status = &scrape.status;
    let mut families = Vec::new();
    let item_kinds = ITEM_COUNTERS
        .iter()
        .map(|c| (c, MetricType::COUNTER))
        .chain(ITEM_GAUGES.iter().map(|g| (g, MetricType::GAUGE)));
    for (&(name, help, value), kind) in item_kinds {
        let samples = status
            .shards
            .iter()
            .flat_map(|shard| shard.items.iter().map(move |item| (shard.shard, item)))
            .map(|(shard, item)| {
                let shard = shard.to_string();
                let pairs = labels(&[("item", &item.item), ("shard", &shard)]);
                sample(pairs, kind, value(item))
            })
            .collect();
        families.push(family(name, help, kind, samples));
    }
    families.push(acks(status));
    for (name, help, value) in SHARD_GAUGES {
        let samples = status
            .shards
            .iter()
            .map(|shard| {
                let pairs = labels(&[("shard", &shard.shard.to_string())]);
                sample(pairs, MetricType::GAUGE, value(shard))
            })
            .collect();
        families.push(family(name, help, MetricType::GAUGE, samples));
    }
    let lsn = status
        .shards
        .iter()
        .map(|shard| {
            let pairs = labels(&[("shard", &shard.shard.to_string())]);
            sample(pairs, MetricType::GAUGE, shard.wal_last_lsn as f64)
        })
        .collect();
    let help = "Sequence number of the WAL's last record.";
    families.push(family("hie_wal_last_lsn", help, MetricType::GAUGE, lsn));
    families.push(latency(&scrape.latency, names()));
    families.push(last_message(&scrape.activity, names()));
    let help = "Seconds since hie run started.";
    let uptime = vec![sample(Vec::new(), MetricType::GAUGE, uptime.as_secs_f64())];
    families.push(family(
        "hie_uptime_seconds",
        help,
        MetricType::GAUGE,
        uptime,
    ));
    families
}

/// Replies each operation instance read, by MSA-1 (`code`; `other`: none of the six).
fn acks(status: &EngineStatus) -> MetricFamily {
    let mut samples = Vec::new();
    for shard in &status.shards {
        let shard_label = shard.shard.to_string();
        for item in shard
            .items
            .iter()
            .filter(|i| i.counters.acks.iter().any(|&n| n > 0))
        {
            let codes = ACK_CODES.iter().chain(std::iter::once(&"other"));
            for (code, &count) in codes.zip(&item.counters.acks) {
                let pairs = labels(&[
                    ("item", &item.item),
                    ("shard", &shard_label),
                    ("code", code),
                ]);
                samples.push(sample(pairs, MetricType::COUNTER, count as f64));
            }
        }
    }
    let help = "Replies an operation read from its downstream, by MSA-1.";
    family("hie_item_acks_total", help, MetricType::COUNTER, samples)
}

/// Each service's open inbound connections (its connection table, all shards).
fn connections(engine: &EngineReader) -> MetricFamily {
    let samples = engine
        .plan()
        .items
        .iter()
        .filter_map(|item| {
            let open = item.host?.connections_open(item)?;
            let pairs = labels(&[("item", &item.name)]);
            Some(sample(pairs, MetricType::GAUGE, open as f64))
        })
        .collect();
    let help = "Inbound connections open at the TCP service.";
    family("hie_item_connections", help, MetricType::GAUGE, samples)
}

/// Seconds the oldest entry in each item's queues has waited since it entered that
/// queue (none for an empty queue).
fn oldest_queued<'n>(
    activity: &[ItemActivity],
    names: impl Iterator<Item = &'n str>,
) -> MetricFamily {
    let now = Instant::now();
    let samples = activity
        .iter()
        .zip(names)
        .filter_map(|(activity, item)| {
            let age = now.saturating_duration_since(activity.oldest_queued?);
            let pairs = labels(&[("item", item)]);
            Some(sample(pairs, MetricType::GAUGE, age.as_secs_f64()))
        })
        .collect();
    let help = "Seconds the oldest message in the item's queues has waited in them.";
    family(
        "hie_item_oldest_queued_age_seconds",
        help,
        MetricType::GAUGE,
        samples,
    )
}

/// Seconds since each item last handled a message (none before its first).
fn last_message<'n>(
    activity: &[ItemActivity],
    names: impl Iterator<Item = &'n str>,
) -> MetricFamily {
    let now = Instant::now();
    let samples = activity
        .iter()
        .zip(names)
        .filter_map(|(activity, item)| {
            let age = now.saturating_duration_since(activity.last_message_at?);
            let pairs = labels(&[("item", item)]);
            Some(sample(pairs, MetricType::GAUGE, age.as_secs_f64()))
        })
        .collect();
    let help = "Seconds since the item last received, routed or delivered a message.";
    family(
        "hie_item_last_message_age_seconds",
        help,
        MetricType::GAUGE,
        samples,
    )
}

type WalValue = fn(&ShardEngineStats) -> f64;

const WAL_FAMILIES: [(&str, &str, MetricType, WalValue); 14] = [
    (
        "hie_ring_inbound_queued",
        "Messages waiting in the rings from the other shards to this one.",
        MetricType::GAUGE,
        |w| w.ring_inbound_queued as f64,
    ),
    (
        "hie_shard_busy_seconds_total",
        "Seconds the shard's executor spent running tasks.",
        MetricType::COUNTER,
        |w| w.busy.as_secs_f64(),
    ),
    (
        "hie_shard_tasks_total",
        "Tasks the shard's executor ran.",
        MetricType::COUNTER,
        |w| w.tasks as f64,
    ),
    (
        "hie_shard_reactor_stalls_total",
        "Times the shard's reactor probe woke 20 ms or more past its deadline.",
        MetricType::COUNTER,
        |w| w.stalls as f64,
    ),
    (
        "hie_shard_reactor_stall_seconds_total",
        "The lateness of those wake-ups, summed.",
        MetricType::COUNTER,
        |w| w.stalled.as_secs_f64(),
    ),
    (
        "hie_wal_records_total",
        "Records made durable.",
        MetricType::COUNTER,
        |w| w.wal.records as f64,
    ),
    (
        "hie_wal_record_bytes_total",
        "Record bytes written.",
        MetricType::COUNTER,
        |w| w.wal.record_bytes as f64,
    ),
    (
        "hie_wal_commits_total",
        "Group commits (writes).",
        MetricType::COUNTER,
        |w| w.wal.commits as f64,
    ),
    (
        "hie_wal_syncs_total",
        "fdatasync calls.",
        MetricType::COUNTER,
        |w| w.wal.syncs as f64,
    ),
    (
        "hie_wal_segments_created_total",
        "Segments created.",
        MetricType::COUNTER,
        |w| w.wal.segments_created as f64,
    ),
    (
        "hie_wal_segments_removed_total",
        "Segments removed or archived by retention.",
        MetricType::COUNTER,
        |w| w.wal.segments_removed as f64,
    ),
    (
        "hie_wal_failures_total",
        "Times the WAL became unavailable after a failed write or sync.",
        MetricType::COUNTER,
        |w| w.wal.failures as f64,
    ),
    (
        "hie_wal_refused_total",
        "Appends refused while the WAL was unavailable.",
        MetricType::COUNTER,
        |w| w.wal.refused as f64,
    ),
    (
        "hie_wal_segments",
        "Segments in the WAL's directory.",
        MetricType::GAUGE,
        |w| w.segments as f64,
    ),
];

/// Each shard's `fdatasync` latencies as a histogram in seconds.
fn sync_latency(stats: &[ShardEngineStats]) -> MetricFamily {
    let samples = stats
        .iter()
        .map(|w| {
            let mut cumulative = 0;
            let buckets = SYNC_US_BOUNDS
                .iter()
                .zip(&w.wal.sync_us_buckets)
                .map(|(&bound, &count)| {
                    cumulative += count;
                    let mut bucket = proto::Bucket::default();
                    bucket.set_upper_bound(bound as f64 / 1e6);
                    bucket.set_cumulative_count(cumulative);
                    bucket
                })
                .collect();
            let mut histogram = proto::Histogram::default();
            histogram.set_sample_count(w.wal.sync_us_buckets.iter().sum());
            histogram.set_sample_sum(w.wal.sync_us_total as f64 / 1e6);
            histogram.set_bucket(buckets);
            let mut metric = Metric::from_label(labels(&[("shard", &w.shard.to_string())]));
            metric.set_histogram(histogram);
            metric
        })
        .collect();
    let help = "Latency of the WAL's fdatasync calls.";
    family("hie_wal_sync_seconds", help, MetricType::HISTOGRAM, samples)
}

fn wal_families(wal: &[ShardEngineStats]) -> Vec<MetricFamily> {
    [sync_latency(wal), ring_queued(wal)]
        .into_iter()
        .chain(WAL_FAMILIES.iter().map(|&(name, help, kind, value)| {
            let samples = wal
                .iter()
                .map(|w| sample(labels(&[("shard", &w.shard.to_string())]), kind, value(w)))
                .collect();
            family(name, help, kind, samples)
        }))
        .collect()
}

/// Values waiting in each ring, by receiving shard and sending shard (`peer`).
fn ring_queued(wal: &[ShardEngineStats]) -> MetricFamily {
    let samples = wal
        .iter()
        .flat_map(|w| {
            let shard = w.shard.to_string();
            w.ring_inbound_by_peer.iter().map(move |(peer, queued)| {
                let pairs = labels(&[("shard", &shard), ("peer", &peer.to_string())]);
                sample(pairs, MetricType::GAUGE, *queued as f64)
            })
        })
        .collect();
    let help = "Messages waiting in the ring from shard `peer` to shard `shard`.";
    family("hie_ring_queued", help, MetricType::GAUGE, samples)
}

fn run_families(run: &RunFacts) -> Vec<MetricFamily> {
    let gauge = |name: &str, help: &str, value: f64| {
        family(
            name,
            help,
            MetricType::GAUGE,
            vec![sample(Vec::new(), MetricType::GAUGE, value)],
        )
    };
    let mut families = vec![gauge(
        "hie_start_seconds",
        "Seconds the start took: recovering the WALs and starting the items.",
        run.start_duration.as_secs_f64(),
    )];
    if let Some(free) = free_bytes(&run.data_dir) {
        let help = "Bytes free to unprivileged users on the data directory's file system.";
        families.push(gauge("hie_data_dir_free_bytes", help, free as f64));
    }
    families
}

/// The space free to unprivileged users on `path`'s file system (`statvfs`), `None`
/// when it cannot be read. Blocking: called on the main thread, never on a shard.
fn free_bytes(path: &Path) -> Option<u64> {
    let path = CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs is plain data, all zeros is a valid value.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is a NUL-terminated string and `stat` is valid for writes, both for
    // the duration of the call.
    let rc = unsafe { libc::statvfs(path.as_ptr(), &mut stat) };
    (rc == 0).then(|| stat.f_bavail.saturating_mul(stat.f_frsize))
}

fn latency<'n>(
    latency: &[Vec<(Stage, LatencyBuckets)>],
    names: impl Iterator<Item = &'n str>,
) -> MetricFamily {
    let samples = latency
        .iter()
        .zip(names)
        .flat_map(|(stages, item)| stages.iter().map(move |(stage, b)| (item, stage, b)))
        .map(|(item, stage, latency)| {
            let mut metric = Metric::from_label(labels(&[("item", item), ("stage", stage.name())]));
            metric.set_histogram(buckets(latency));
            metric
        })
        .collect();
    let help =
        "Latency to reach each stage (see hie_core::engine::metrics), merged over the shards.";
    family(
        "hie_item_latency_seconds",
        help,
        MetricType::HISTOGRAM,
        samples,
    )
}

/// `latency` (µs) as a Prometheus histogram in seconds (cumulative buckets; the
/// encoder adds +Inf).
fn buckets(latency: &LatencyBuckets) -> proto::Histogram {
    let buckets = latency
        .cumulative()
        .map(|(bound, cumulative)| {
            let mut bucket = proto::Bucket::default();
            bucket.set_upper_bound(bound as f64 / 1e6);
            bucket.set_cumulative_count(cumulative);
            bucket
        })
        .collect();
    let mut out = proto::Histogram::default();
    out.set_sample_count(latency.count);
    out.set_sample_sum(latency.sum_us / 1e6);
    out.set_bucket(buckets);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::Histogram;
    use hie_core::engine::metrics::LATENCY_US_MAX;

    #[test]
    fn the_free_space_of_a_directory_is_read_and_of_nothing_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert!(free_bytes(dir.path()).is_some_and(|b| b > 0));
        assert_eq!(free_bytes(&dir.path().join("missing")), None);
    }

    #[test]
    fn buckets_are_cumulative_in_seconds() {
        let mut h = Histogram::<u64>::new_with_bounds(1, LATENCY_US_MAX, 2).unwrap();
        for v in [50, 90, 300, 20_000_000] {
            h.record(v).unwrap();
        }
        let out = buckets(&LatencyBuckets::of(&h));
        assert_eq!(out.get_sample_count(), 4);
        let first = &out.get_bucket()[0];
        assert_eq!((first.upper_bound(), first.cumulative_count()), (0.0001, 2));
        let last = out.get_bucket().last().unwrap();
        assert_eq!((last.upper_bound(), last.cumulative_count()), (10.0, 3));
        let sum = out.get_sample_sum();
        assert!((19.9..20.2).contains(&sum), "{sum}");
    }
}
