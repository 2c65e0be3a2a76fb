//! The admin server's HTTP side (hyper 1, HTTP/1.1) on its own current-thread tokio
//! runtime: accepting within the connection limit, the token, the routes, and handing
//! each request to the main thread.
//!
//! ```text
//! GET  /health/live                      200 while the process serves (no token)
//! GET  /health/ready                     200 / 503 with why (no token)
//! GET  /status                           production, state, uptime, items (JSON)
//! GET  /metrics                          Prometheus text format
//! GET  /histograms?item=&stage=&format=hdr&reset=1
//! POST /items/{name}/{enable|disable|restart|pause|resume}
//! POST /production/stop
//! GET  /held                             failed and suspended messages
//! GET  /held/{id}                        one held message
//! POST /held/{id}/{resend|discard}?item=
//! ```
//!
//! Limits: [`ADMIN_CONNECTIONS_MAX`] connections at once (one more is closed at once);
//! request headers of at most [`ADMIN_HEADER_BYTES_MAX`], read within
//! [`ADMIN_HEADER_READ_TIMEOUT`] (also the longest a kept-alive connection waits for its
//! next request); bodies of at most [`ADMIN_BODY_BYTES_MAX`] (no route takes one); each
//! request answered within [`ADMIN_REQUEST_TIMEOUT`] (else 503); a connection closed
//! after [`ADMIN_CONNECTION_LIFETIME`] whatever it does, so a client that stops reading
//! holds its slot no longer. Each connection is a task of its own: a slow one does not
//! hold up the others, and nothing here touches a shard. Requests that only read run on
//! the blocking pool ([`super::ADMIN_READS_AT_ONCE_MAX`] threads); on stop, the thread
//! waits at most [`ADMIN_STOP_WAIT`] for those still running (each ends at its shard
//! call's deadline at the latest).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};

use super::api::{self, ApiRequest, ApiResponse};
use super::{Phase, Shared};

/// Most admin connections open at once.
pub const ADMIN_CONNECTIONS_MAX: usize = 64;
/// Largest request head (request line and headers), in bytes.
pub const ADMIN_HEADER_BYTES_MAX: usize = 16 * 1024;
/// Largest request body, in bytes.
pub const ADMIN_BODY_BYTES_MAX: usize = 64 * 1024;
/// Time to send a whole request head (and the longest idle wait between requests).
pub const ADMIN_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Time to answer one request (a resend reads and writes the WAL: up to 60 s).
pub const ADMIN_REQUEST_TIMEOUT: Duration = Duration::from_secs(75);
/// Longest a connection stays open.
pub const ADMIN_CONNECTION_LIFETIME: Duration = Duration::from_secs(300);
/// How long stopping the admin thread waits for reads still being answered.
pub const ADMIN_STOP_WAIT: Duration = Duration::from_secs(1);

/// The thread's body: serves `listener` until `stopped` fires.
pub(super) fn run(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(super::ADMIN_READS_AT_ONCE_MAX)
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!("the admin API cannot start its runtime: {e}");
            return;
        }
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(listener) => listener,
            Err(e) => {
                tracing::error!("the admin API cannot listen: {e}");
                return;
            }
        };
        futures_lite::future::or(accept_loop(listener, shared), async {
            let _ = stopped.await;
        })
        .await;
    });
    runtime.shutdown_timeout(ADMIN_STOP_WAIT);
}

/// Counts a connection while it lives.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn accept_loop(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    let active = Arc::new(AtomicUsize::new(0));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors and the like: wait instead of spinning.
                tracing::warn!("admin API: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if active.fetch_add(1, Ordering::AcqRel) >= ADMIN_CONNECTIONS_MAX {
            active.fetch_sub(1, Ordering::AcqRel);
            tracing::warn!("admin API: a connection beyond {ADMIN_CONNECTIONS_MAX} closed");
            continue;
        }
        let slot = Slot(Arc::clone(&active));
        tokio::spawn(serve_connection(stream, Arc::clone(&shared), slot));
    }
}

async fn serve_connection(stream: tokio::net::TcpStream, shared: Arc<Shared>, _slot: Slot) {
    let service = hyper::service::service_fn(move |request| {
        let shared = Arc::clone(&shared);
        async move {
            let answer = tokio::time::timeout(ADMIN_REQUEST_TIMEOUT, handle(request, &shared))
                .await
                .unwrap_or_else(|_| {
                    error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        &format!("no answer within {ADMIN_REQUEST_TIMEOUT:?}"),
                    )
                });
            Ok::<_, Infallible>(answer)
        }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(ADMIN_HEADER_READ_TIMEOUT)
        .max_buf_size(ADMIN_HEADER_BYTES_MAX)
        .serve_connection(TokioIo::new(stream), service);
    let _ = tokio::time::timeout(ADMIN_CONNECTION_LIFETIME, connection).await;
}

/// One request: probes here, the rest on the main thread.
async fn handle(request: Request<Incoming>, shared: &Shared) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_string();
    if path == "/health/live" && parts.method == Method::GET {
        return respond(api::json(
            StatusCode::OK,
            &serde_json::json!({"live": true}),
        ));
    }
    if !path.starts_with("/health/") && !authorized(&parts.headers, shared) {
        let mut answer = error(StatusCode::UNAUTHORIZED, "a bearer token is required");
        answer
            .headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return answer;
    }
    if Limited::new(body, ADMIN_BODY_BYTES_MAX)
        .collect()
        .await
        .is_err()
    {
        let text = format!("request body longer than {ADMIN_BODY_BYTES_MAX} bytes");
        return error(StatusCode::PAYLOAD_TOO_LARGE, &text);
    }
    let request = match api::route(&parts.method, &path, parts.uri.query()) {
        Ok(request) => request,
        Err(answer) => return respond(answer),
    };
    match shared.phase() {
        Phase::Running => {}
        Phase::Starting if request == ApiRequest::Ready => {
            let why = serde_json::json!({"ready": false, "why": ["recovering the WAL and starting the items"]});
            return respond(api::json(StatusCode::SERVICE_UNAVAILABLE, &why));
        }
        Phase::Starting => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the production is starting",
            );
        }
        Phase::Stopping => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the production is stopping",
            );
        }
    }
    if request.only_reads() {
        return respond(read(request, shared).await);
    }
    respond(ask_main_thread(request, shared).await)
}

/// Answers `request`, one that only reads, on the blocking pool once a turn is free.
async fn read(request: ApiRequest, shared: &Shared) -> ApiResponse {
    let Some(reads) = shared.reads.get().map(Arc::clone) else {
        return api::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the production is starting",
        );
    };
    let Ok(turn) = Arc::clone(&shared.reading).acquire_owned().await else {
        return api::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the production is stopping",
        );
    };
    // The turn goes with the work: a request that timed out still holds it until its
    // shard calls end, so no more than the limit run at once.
    let answered = tokio::task::spawn_blocking(move || {
        let _turn = turn;
        reads.answer(request)
    });
    answered.await.unwrap_or_else(|e| {
        api::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("the answer failed: {e}"),
        )
    })
}

/// Hands `request` to the main thread and awaits its answer.
async fn ask_main_thread(request: ApiRequest, shared: &Shared) -> ApiResponse {
    let (answer_tx, answer) = tokio::sync::oneshot::channel();
    if shared.requests.try_send((request, answer_tx)).is_err() {
        return api::error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!(
                "{} admin requests wait already",
                super::ADMIN_REQUESTS_QUEUED_MAX
            ),
        );
    }
    answer.await.unwrap_or_else(|_| {
        api::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the production is stopping",
        )
    })
}

/// True when no token is set or the request carries it.
fn authorized(headers: &hyper::HeaderMap, shared: &Shared) -> bool {
    let Some(token) = &shared.token else {
        return true;
    };
    let given = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .unwrap_or_default();
    equal_in_constant_time(given, token.as_bytes())
}

/// Compares without stopping at the first difference (the time does not tell how much
/// of a guess was right).
fn equal_in_constant_time(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn respond(answer: ApiResponse) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(answer.body)));
    *response.status_mut() = answer.status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(answer.content_type));
    response
}

fn error(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    respond(api::error(status, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(equal_in_constant_time(b"secret", b"secret"));
        assert!(!equal_in_constant_time(b"secreT", b"secret"));
        assert!(!equal_in_constant_time(b"secret1", b"secret"));
        assert!(!equal_in_constant_time(b"", b"secret"));
    }
}
