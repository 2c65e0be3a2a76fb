//! `GET /metrics`: the engine's status and metrics in the Prometheus text format, encoded
//! by `prometheus-client` from one snapshot taken per scrape (every shard asked once for
//! its status and once for its metrics; nothing is kept between scrapes).
//!
//! Labels: `item`, `shard`, `stage` only (low cardinality: never a message's content).
//!
//! ```text
//! hie_item_received_total{item,shard}      counters of each item instance (see
//! hie_item_rejected_total …                 hie_core::engine::metrics::ItemCounters)
//! hie_item_queued{item,shard}              gauge: its queue's entries (held ones included)
//! hie_item_state{item,shard}               gauge: 0 stopped, 1 running, 2 paused,
//!                                           3 disabled, 4 failed
//! hie_item_waiting_for_wal{item,shard}     gauge: 1 while it waits for the WAL
//! hie_item_latency_seconds{item,stage}     histogram, merged over the shards
//! hie_shard_up{shard}                      1 when the shard answered this scrape
//! hie_wal_writable{shard}                  1 writable, 0 refusing appends
//! hie_wal_open_messages{shard}             messages the WAL keeps open
//! hie_wal_last_lsn{shard}                  last record's sequence number (a counter)
//! hie_wal_recovery_errors{shard}           segments recovery found cut short at start
//! hie_held_failed{shard}, hie_held_suspended{shard}   messages in the held lists
//! hie_uptime_seconds                       since `hie run` started
//! ```

use std::time::Duration;

use hdrhistogram::Histogram;
use hie_core::engine::metrics::{EngineMetrics, LATENCY_US_MAX};
use hie_core::engine::runtime::{ItemStatus, ShardStatus};
use hie_core::engine::{EngineStatus, RunningEngine};
use hyper::StatusCode;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::api::{self, ApiResponse};

/// Upper bounds of the latency histogram's buckets, in µs (the last bucket is +Inf).
const LATENCY_BUCKETS_US: [u64; 16] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000,
];

/// Everything one scrape shows.
#[derive(Debug)]
struct Snapshot {
    status: EngineStatus,
    metrics: EngineMetrics,
    uptime: Duration,
}

/// The scrape's answer.
pub fn scrape(engine: &RunningEngine, uptime: Duration) -> ApiResponse {
    let snapshot = Snapshot {
        status: engine.status(),
        metrics: engine.metrics(),
        uptime,
    };
    match encode(snapshot) {
        Ok(body) => ApiResponse {
            status: StatusCode::OK,
            content_type: api::PROMETHEUS_TEXT,
            body,
        },
        Err(e) => api::error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

fn encode(snapshot: Snapshot) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(snapshot));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry)?;
    Ok(text)
}

type Labels = Vec<(&'static str, String)>;

fn item_labels(item: &ItemStatus, shard: usize) -> Labels {
    vec![("item", item.item.clone()), ("shard", shard.to_string())]
}

fn shard_labels(shard: &ShardStatus) -> Labels {
    vec![("shard", shard.shard.to_string())]
}

/// A counter of every item instance.
type ItemValue = fn(&ItemStatus) -> i64;

const ITEM_COUNTERS: [(&str, &str, ItemValue); 9] = [
    (
        "hie_item_received",
        "Messages a service accepted (durable).",
        |i| i.counters.received as i64,
    ),
    (
        "hie_item_rejected",
        "Frames a service refused (NAK).",
        |i| i.counters.rejected as i64,
    ),
    (
        "hie_item_processed",
        "Messages a router or operation took from its queue.",
        |i| i.counters.processed as i64,
    ),
    (
        "hie_item_completed",
        "Messages an operation delivered or a router routed.",
        |i| i.counters.completed as i64,
    ),
    (
        "hie_item_failed",
        "Messages that failed (held list).",
        |i| i.counters.failed as i64,
    ),
    (
        "hie_item_suspended",
        "Messages suspended (held list).",
        |i| i.counters.suspended as i64,
    ),
    ("hie_item_discarded", "Messages discarded.", |i| {
        i.counters.discarded as i64
    }),
    ("hie_item_retries", "Delivery attempts retried.", |i| {
        i.counters.retries as i64
    }),
    ("hie_item_restarts", "Times the item restarted.", |i| {
        i.counters.restarts as i64
    }),
];

const ITEM_GAUGES: [(&str, &str, ItemValue); 3] = [
    (
        "hie_item_queued",
        "Messages waiting in the item's queue.",
        |i| i.queued as i64,
    ),
    (
        "hie_item_state",
        "0 stopped, 1 running, 2 paused, 3 disabled, 4 failed.",
        |i| state_number(i),
    ),
    (
        "hie_item_waiting_for_wal",
        "1 while the item waits for the WAL.",
        |i| i64::from(i.waiting_for_wal),
    ),
];

fn state_number(item: &ItemStatus) -> i64 {
    match serde_json::to_value(item.state)
        .unwrap_or_default()
        .as_str()
    {
        Some("running") => 1,
        Some("paused") => 2,
        Some("disabled") => 3,
        Some("failed") => 4,
        _ => 0,
    }
}

/// A value of every shard.
type ShardValue = fn(&ShardStatus) -> i64;

const SHARD_GAUGES: [(&str, &str, ShardValue); 6] = [
    (
        "hie_shard_up",
        "1 when the shard answered this scrape.",
        |_| 1,
    ),
    (
        "hie_wal_writable",
        "1 while the WAL takes appends, 0 while it refuses them.",
        |s| i64::from(s.wal_state == "writable"),
    ),
    (
        "hie_wal_open_messages",
        "Messages the WAL keeps open (not yet finished).",
        |s| s.wal_open_messages as i64,
    ),
    (
        "hie_wal_recovery_errors",
        "WAL segments recovery found cut short at start.",
        |s| s.wal_recovery_errors.len() as i64,
    ),
    (
        "hie_held_failed",
        "Failed messages in the held list.",
        |s| s.held.failed as i64,
    ),
    (
        "hie_held_suspended",
        "Suspended messages in the held list.",
        |s| s.held.suspended as i64,
    ),
];

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let shards = &self.status.shards;
        for (name, help, value) in ITEM_COUNTERS {
            let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for shard in shards {
                for item in &shard.items {
                    let labels = item_labels(item, shard.shard);
                    metric
                        .encode_family(&labels)?
                        .encode_counter::<NoLabelSet, _, u64>(&(value(item) as u64), None)?;
                }
            }
        }
        for (name, help, value) in ITEM_GAUGES {
            let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for shard in shards {
                for item in &shard.items {
                    let labels = item_labels(item, shard.shard);
                    metric.encode_family(&labels)?.encode_gauge(&value(item))?;
                }
            }
        }
        for (name, help, value) in SHARD_GAUGES {
            let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for shard in shards {
                metric
                    .encode_family(&shard_labels(shard))?
                    .encode_gauge(&value(shard))?;
            }
        }
        let help = "Last WAL record's sequence number.";
        let mut metric =
            encoder.encode_descriptor("hie_wal_last_lsn", help, None, MetricType::Counter)?;
        for shard in shards {
            metric
                .encode_family(&shard_labels(shard))?
                .encode_counter::<NoLabelSet, _, u64>(&shard.wal_last_lsn, None)?;
        }
        self.encode_latency(&mut encoder)?;
        let help = "Seconds since hie run started.";
        encoder
            .encode_descriptor("hie_uptime_seconds", help, None, MetricType::Gauge)?
            .encode_gauge(&self.uptime.as_secs_f64())?;
        Ok(())
    }
}

impl Snapshot {
    fn encode_latency(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let help =
            "Latency to reach each stage (see hie_core::engine::metrics), merged over the shards.";
        let mut metric = encoder.encode_descriptor(
            "hie_item_latency_seconds",
            help,
            None,
            MetricType::Histogram,
        )?;
        for item in &self.metrics.items {
            for (stage, histogram) in &item.latency {
                let labels: Labels = vec![
                    ("item", item.item.clone()),
                    ("stage", stage.name().to_string()),
                ];
                let (sum, count, buckets) = buckets(histogram);
                metric
                    .encode_family(&labels)?
                    .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
            }
        }
        Ok(())
    }
}

/// `histogram` (µs) as Prometheus buckets in seconds, each with its own count (the
/// encoder adds them up), then the sum and count.
fn buckets(histogram: &Histogram<u64>) -> (f64, u64, Vec<(f64, u64)>) {
    let mut buckets = Vec::with_capacity(LATENCY_BUCKETS_US.len() + 1);
    let mut below = 0;
    for bound in LATENCY_BUCKETS_US {
        let upto = histogram.count_between(0, bound);
        buckets.push((bound as f64 / 1e6, upto.saturating_sub(below)));
        below = upto.max(below);
    }
    let count = histogram.len();
    buckets.push((f64::INFINITY, count.saturating_sub(below)));
    let sum = histogram.mean() * count as f64 / 1e6;
    debug_assert!(histogram.max() <= LATENCY_US_MAX * 2);
    (sum, count, buckets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_count_each_value_once_and_end_at_infinity() {
        let mut h = Histogram::<u64>::new_with_bounds(1, LATENCY_US_MAX, 2).unwrap();
        for v in [50, 90, 300, 20_000_000] {
            h.record(v).unwrap();
        }
        let (sum, count, buckets) = buckets(&h);
        assert_eq!(count, 4);
        assert_eq!(buckets.iter().map(|b| b.1).sum::<u64>(), 4);
        assert_eq!(buckets[0], (0.0001, 2));
        assert_eq!(buckets.last().unwrap(), &(f64::INFINITY, 1));
        assert!((19.9..20.2).contains(&sum), "{sum}");
    }
}
