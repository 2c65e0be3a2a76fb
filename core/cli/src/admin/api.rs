//! The admin API's requests and answers: [`route`] turns a method, path and query into
//! an [`ApiRequest`] (on the HTTP thread). A request that only reads
//! ([`ApiRequest::only_reads`]: readiness, status, metrics, histograms, the held list, one
//! held message) is answered by [`Reads::answer`] on any thread, through an
//! [`EngineReader`], so several are answered at once; one that changes something (an item
//! command, resend, discard, stop) by [`Api::answer`] on the main thread, which owns the
//! engine, one at a time. Both wait for the shards.
//!
//! Answers are JSON (`{"error": "..."}` with a 4xx/5xx status when refused), except
//! `/metrics` (Prometheus text) and `/histograms?format=hdr` (an HdrHistogram interval
//! log, as `hie-loadgen --hist` writes).

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use hie_core::engine::control::ItemCommand;
use hie_core::engine::held;
use hie_core::engine::metrics::{EngineMetrics, Stage};
use hie_core::engine::operator::HeldRequest;
use hie_core::engine::reader::EngineReader;
use hie_core::engine::{EngineError, EngineStatus, RunningEngine};
use hie_core::envelope::ItemId;
use hyper::{Method, StatusCode};
use percent_encoding::percent_decode_str;
use serde_json::{Value, json};

use super::prometheus::RunFacts;
use crate::alerts::{AlertCounters, Alerts};

pub const JSON: &str = "application/json";
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
pub const TEXT: &str = "text/plain; charset=utf-8";

/// What the main thread is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiRequest {
    Ready,
    Status,
    Metrics,
    Histograms {
        item: Option<String>,
        stage: Option<Stage>,
        /// The HdrHistogram interval log instead of percentiles.
        hdr: bool,
        /// Start a new interval after answering.
        reset: bool,
    },
    Item {
        name: String,
        command: ItemCommand,
    },
    Stop,
    Held,
    Show {
        id: String,
    },
    Resend {
        id: String,
        item: Option<String>,
    },
    Discard {
        id: String,
        item: Option<String>,
    },
}

impl ApiRequest {
    /// True for a request that changes nothing (see the module doc).
    pub fn only_reads(&self) -> bool {
        matches!(
            self,
            ApiRequest::Ready
                | ApiRequest::Status
                | ApiRequest::Metrics
                | ApiRequest::Histograms { .. }
                | ApiRequest::Held
                | ApiRequest::Show { .. }
        )
    }
}

/// An answer: status, content type and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiResponse {
    pub status: StatusCode,
    pub content_type: &'static str,
    pub body: String,
}

pub fn json(status: StatusCode, value: &Value) -> ApiResponse {
    ApiResponse {
        status,
        content_type: JSON,
        body: value.to_string(),
    }
}

pub fn error(status: StatusCode, text: &str) -> ApiResponse {
    json(status, &json!({"error": text}))
}

/// The request a method, path and query make; `Err` is the answer (404, 405, 400).
pub fn route(method: &Method, path: &str, query: Option<&str>) -> Result<ApiRequest, ApiResponse> {
    let segments: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let query = Query::parse(query);
    let get = *method == Method::GET;
    let request = match (get, segments.as_slice()) {
        (true, ["health", "ready"]) => ApiRequest::Ready,
        (true, ["status"]) => ApiRequest::Status,
        (true, ["metrics"]) => ApiRequest::Metrics,
        (true, ["histograms"]) => histograms(&query)?,
        (true, ["held"]) => ApiRequest::Held,
        (true, ["held", id]) => ApiRequest::Show { id: id.to_string() },
        (false, ["held", id, "resend"]) => ApiRequest::Resend {
            id: id.to_string(),
            item: query.get("item"),
        },
        (false, ["held", id, "discard"]) => ApiRequest::Discard {
            id: id.to_string(),
            item: query.get("item"),
        },
        (false, ["items", name, command]) => ApiRequest::Item {
            name: name.to_string(),
            command: item_command(command)?,
        },
        (false, ["production", "stop"]) => ApiRequest::Stop,
        _ => return Err(error(StatusCode::NOT_FOUND, &format!("no route {path}"))),
    };
    if *method != Method::GET && *method != Method::POST {
        return Err(error(StatusCode::METHOD_NOT_ALLOWED, "GET or POST only"));
    }
    Ok(request)
}

fn item_command(word: &str) -> Result<ItemCommand, ApiResponse> {
    Ok(match word {
        "enable" => ItemCommand::Enable,
        "disable" => ItemCommand::Disable,
        "restart" => ItemCommand::Restart,
        "pause" => ItemCommand::Pause,
        "resume" => ItemCommand::Resume,
        other => {
            let text =
                format!("no item command {other:?} (enable, disable, restart, pause, resume)");
            return Err(error(StatusCode::NOT_FOUND, &text));
        }
    })
}

fn histograms(query: &Query) -> Result<ApiRequest, ApiResponse> {
    let stage = match query.get("stage") {
        None => None,
        Some(name) => Some(
            Stage::ALL
                .into_iter()
                .find(|s| s.name() == name)
                .ok_or_else(|| {
                    let text =
                        format!("no stage {name:?} (durable, routed, delivered, round_trip)");
                    error(StatusCode::BAD_REQUEST, &text)
                })?,
        ),
    };
    let hdr = match query.get("format").as_deref() {
        None | Some("json") => false,
        Some("hdr") => true,
        Some(other) => {
            let text = format!("no format {other:?} (json, hdr)");
            return Err(error(StatusCode::BAD_REQUEST, &text));
        }
    };
    let reset = matches!(query.get("reset").as_deref(), Some("1" | "true"));
    Ok(ApiRequest::Histograms {
        item: query.get("item"),
        stage,
        hdr,
        reset,
    })
}

/// A query string's `key=value` pairs, decoded.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(query: Option<&str>) -> Query {
        let decode = |s: &str| {
            percent_decode_str(&s.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        };
        Query(
            query
                .unwrap_or_default()
                .split('&')
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                    (decode(key), decode(value))
                })
                .collect(),
        )
    }

    fn get(&self, key: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }
}

/// The answers to requests that only read, shared by the threads that give them.
#[derive(Debug)]
pub struct Reads {
    engine: EngineReader,
    run: RunFacts,
    alerts: AlertCounters,
    interval: Mutex<Interval>,
}

/// The histograms when the current interval began (`?reset=1`; none before the first),
/// and when it began.
#[derive(Debug)]
struct Interval {
    baseline: Option<EngineMetrics>,
    start: SystemTime,
}

impl Reads {
    /// The answer to `request`, one that [`ApiRequest::only_reads`] (any other is
    /// refused: it is for [`Api::answer`]).
    pub fn answer(&self, request: ApiRequest) -> ApiResponse {
        match request {
            ApiRequest::Ready => ready(&self.engine.status()),
            ApiRequest::Status => json(StatusCode::OK, &self.status()),
            ApiRequest::Metrics => super::prometheus::scrape(&self.engine, &self.run, &self.alerts),
            ApiRequest::Histograms {
                item,
                stage,
                hdr,
                reset,
            } => self.histograms(item.as_deref(), stage, hdr, reset),
            ApiRequest::Held => match self.engine.held_list() {
                Ok(held) => json(StatusCode::OK, &json!({"held": held})),
                Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e),
            },
            ApiRequest::Show { id } => match message_id(&id) {
                Ok((shard, wal_id)) => match self.engine.held_message(shard, wal_id) {
                    Ok(value) => json(StatusCode::OK, &value),
                    Err(e) => error(StatusCode::CONFLICT, &e),
                },
                Err(answer) => answer,
            },
            other => error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("{other:?} is not a request that only reads"),
            ),
        }
    }

    fn status(&self) -> Value {
        let engine = &self.engine;
        let status = engine.status();
        let metrics = engine.metrics();
        let items: Vec<Value> = engine
            .plan()
            .items
            .iter()
            .map(|planned| {
                let mut item = item_status(&status, &planned.name, &planned.class, &planned.shards);
                let last_error = metrics
                    .items
                    .get(planned.id as usize)
                    .and_then(|m| m.last_error.as_ref());
                item["last_error"] = last_error.map_or(
                    Value::Null,
                    |e| json!({"at": held::utc_text(e.at_us), "what": e.what}),
                );
                item
            })
            .collect();
        json!({
            "production": status.production,
            "state": "running",
            "uptime_s": self.run.started.elapsed().as_secs_f64(),
            "start_s": self.run.start_duration.as_secs_f64(),
            "ready": readiness(&status).is_empty(),
            "items": items,
            "shards": status.shards,
        })
    }

    fn histograms(
        &self,
        item: Option<&str>,
        stage: Option<Stage>,
        hdr: bool,
        reset: bool,
    ) -> ApiResponse {
        if let Some(name) = item
            && self.engine.plan().item_named(name).is_none()
        {
            return error(StatusCode::NOT_FOUND, &format!("no item named {name:?}"));
        }
        let whole = self.engine.metrics();
        let mut interval = whole.clone();
        // Held across the answer so that a reset and another histogram request agree on
        // which interval each saw.
        let mut current = self.interval.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(baseline) = &current.baseline {
            interval.subtract(baseline);
        }
        if let Some(stage) = stage {
            interval.keep_stage(stage);
        }
        let answer = if hdr {
            hdr_log(&interval, item, current.start)
        } else {
            let report = interval.report(item);
            json(
                StatusCode::OK,
                &serde_json::to_value(report).unwrap_or_default(),
            )
        };
        if reset {
            *current = Interval {
                baseline: Some(whole),
                start: SystemTime::now(),
            };
        }
        answer
    }
}

/// The main thread's side: answers requests that change something with the engine, and
/// checks the alerts.
#[derive(Debug)]
pub struct Api {
    reads: Arc<Reads>,
    alerts: Alerts,
}

impl Api {
    pub fn new(run: RunFacts, alerts: Alerts, engine: EngineReader) -> Api {
        let reads = Reads {
            engine,
            run,
            alerts: alerts.counters(),
            interval: Mutex::new(Interval {
                baseline: None,
                start: SystemTime::now(),
            }),
        };
        Api {
            reads: Arc::new(reads),
            alerts,
        }
    }

    /// The answers to requests that only read, for the threads that give them.
    pub fn reads(&self) -> Arc<Reads> {
        Arc::clone(&self.reads)
    }

    /// The alerts, for the main thread to check.
    pub fn alerts_mut(&mut self) -> &mut Alerts {
        &mut self.alerts
    }

    /// The answer to `request`, and whether the production is to stop.
    pub fn answer(&mut self, engine: &RunningEngine, request: ApiRequest) -> (ApiResponse, bool) {
        let answer = match request {
            ApiRequest::Item { name, command } => item(engine, &name, command),
            ApiRequest::Stop => {
                let body = json!({"production": engine.plan().production, "state": "stopping"});
                return (json(StatusCode::ACCEPTED, &body), true);
            }
            ApiRequest::Resend { id, item } => {
                held(engine, &id, item.as_deref(), |wal_id, item| {
                    HeldRequest::Resend { wal_id, item }
                })
            }
            ApiRequest::Discard { id, item } => {
                held(engine, &id, item.as_deref(), |wal_id, item| {
                    HeldRequest::Discard { wal_id, item }
                })
            }
            reads => self.reads.answer(reads),
        };
        (answer, false)
    }
}

/// Why the production is not ready: an item instance that should run and does not
/// (stopped, failed), or a shard that did not answer. Empty: ready.
pub fn readiness(status: &EngineStatus) -> Vec<String> {
    let mut why = Vec::new();
    for shard in &status.shards {
        for item in &shard.items {
            let state = serde_json::to_value(item.state).unwrap_or_default();
            if matches!(state.as_str(), Some("stopped" | "failed")) {
                why.push(format!(
                    "item {:?} is {} on shard {}",
                    item.item,
                    state.as_str().unwrap_or_default(),
                    shard.shard
                ));
            }
        }
    }
    if status.shards.is_empty() {
        why.push("no shard answered".to_string());
    }
    why
}

fn ready(status: &EngineStatus) -> ApiResponse {
    let why = readiness(status);
    if why.is_empty() {
        json(StatusCode::OK, &json!({"ready": true, "why": []}))
    } else {
        json(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"ready": false, "why": why}),
        )
    }
}

/// One item of `/status`: its states over its shards, counters summed.
fn item_status(status: &EngineStatus, name: &str, class: &str, shards: &[usize]) -> Value {
    let mut states: Vec<Value> = Vec::new();
    let mut counts = serde_json::Map::new();
    let mut queued = 0;
    for entry in status.shards.iter().flat_map(|s| &s.items) {
        if entry.item != name {
            continue;
        }
        let state = serde_json::to_value(entry.state).unwrap_or_default();
        if !states.contains(&state) {
            states.push(state);
        }
        queued += entry.queued;
        if let Value::Object(values) = serde_json::to_value(entry.counters).unwrap_or_default() {
            for (key, value) in values {
                let sum = counts.get(&key).and_then(Value::as_u64).unwrap_or(0);
                counts.insert(key, json!(sum + value.as_u64().unwrap_or(0)));
            }
        }
    }
    let state = match states.as_slice() {
        [] => json!("not run"),
        [one] => one.clone(),
        many => json!(
            many.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(",")
        ),
    };
    json!({
        "item": name,
        "class": class,
        "state": state,
        "shards": shards,
        "queued": queued,
        "suspended": counts.get("suspended").cloned().unwrap_or(json!(0)),
        "counts": counts,
    })
}

fn item(engine: &RunningEngine, name: &str, command: ItemCommand) -> ApiResponse {
    match engine.command(name, command) {
        Ok(()) => {
            let planned = engine
                .plan()
                .item_named(name)
                .expect("the command found it");
            let status = engine.status();
            let mut value = item_status(&status, name, &planned.class, &planned.shards);
            value["command"] = json!(command);
            json(StatusCode::OK, &value)
        }
        Err(e @ EngineError::NoSuchItem(_)) => error(StatusCode::NOT_FOUND, &e.to_string()),
        Err(e @ EngineError::NotRun { .. }) => error(StatusCode::CONFLICT, &e.to_string()),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

/// A request about held message `id` (`SHARD:WAL_ID`), optionally at `item`.
fn held(
    engine: &RunningEngine,
    id: &str,
    item: Option<&str>,
    request: impl FnOnce(u64, Option<ItemId>) -> HeldRequest,
) -> ApiResponse {
    let (shard, wal_id) = match message_id(id) {
        Ok(parsed) => parsed,
        Err(answer) => return answer,
    };
    let item = match item.map(|name| engine.plan().item_named(name).ok_or(name)) {
        None => None,
        Some(Ok(planned)) => Some(planned.id),
        Some(Err(name)) => {
            return error(StatusCode::NOT_FOUND, &format!("no item named {name:?}"));
        }
    };
    match engine.held_request(shard, request(wal_id, item)) {
        Ok(value) => json(StatusCode::OK, &value),
        Err(e) => error(StatusCode::CONFLICT, &e),
    }
}

/// The shard and WAL id of message id `id` (`SHARD:WAL_ID`); `Err` is the answer (400).
fn message_id(id: &str) -> Result<(usize, u64), ApiResponse> {
    id.split_once(':')
        .and_then(|(shard, wal_id)| Some((shard.parse::<usize>().ok()?, wal_id.parse().ok()?)))
        .ok_or_else(|| {
            let text =
                format!("{id:?} is not a message id (SHARD:ID, as `hie ctl held` lists them)");
            error(StatusCode::BAD_REQUEST, &text)
        })
}

/// `metrics` as an HdrHistogram interval log: one interval per item and stage, tagged
/// `ITEM/STAGE` (spaces and commas in a name as `_`), from `start` to now.
fn hdr_log(metrics: &EngineMetrics, item: Option<&str>, start: SystemTime) -> ApiResponse {
    let mut out = Vec::new();
    let mut serializer = V2DeflateSerializer::new();
    let since = start.elapsed().unwrap_or_default();
    let written = (|| -> Result<(), String> {
        let mut log = IntervalLogWriterBuilder::new()
            .add_comment("[hie latency, values in microseconds]")
            .with_start_time(start)
            .begin_log_with(&mut out, &mut serializer)
            .map_err(|e| e.to_string())?;
        for entry in &metrics.items {
            if item.is_some_and(|name| entry.item != name) {
                continue;
            }
            for (stage, histogram) in &entry.latency {
                let tag = format!("{}/{}", entry.item, stage.name()).replace([' ', ','], "_");
                log.write_histogram(histogram, std::time::Duration::ZERO, since, Tag::new(&tag))
                    .map_err(|e| format!("{e:?}"))?;
            }
        }
        Ok(())
    })();
    match written {
        Ok(()) => ApiResponse {
            status: StatusCode::OK,
            content_type: TEXT,
            body: String::from_utf8_lossy(&out).into_owned(),
        },
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_decode_names_and_refuse_what_they_do_not_know() {
        assert_eq!(
            route(&Method::POST, "/items/Main%20ADT%20Router/disable", None),
            Ok(ApiRequest::Item {
                name: "Main ADT Router".into(),
                command: ItemCommand::Disable
            })
        );
        assert_eq!(
            route(
                &Method::GET,
                "/histograms",
                Some("item=A+B&stage=routed&format=hdr&reset=1")
            ),
            Ok(ApiRequest::Histograms {
                item: Some("A B".into()),
                stage: Some(Stage::Routed),
                hdr: true,
                reset: true
            })
        );
        let status = |r: Result<ApiRequest, ApiResponse>| r.unwrap_err().status;
        assert_eq!(
            status(route(&Method::POST, "/items/X/explode", None)),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status(route(&Method::GET, "/histograms", Some("stage=nowhere"))),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status(route(&Method::GET, "/items/X/disable", None)),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status(route(&Method::DELETE, "/production/stop", None)),
            StatusCode::METHOD_NOT_ALLOWED
        );
    }
}
