//! A blocking client of the admin API for `hie ctl`: one request on a new connection
//! (hyper's HTTP/1 client on a current-thread tokio runtime), its status and body.
//!
//! Limits: the whole exchange within the caller's timeout; an answer body of at most
//! [`ANSWER_BYTES_MAX`].

use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper::header::{AUTHORIZATION, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;

/// Largest answer body read, in bytes (a held list of thousands of messages fits).
pub const ANSWER_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Why no answer came.
#[derive(Debug)]
pub enum ClientError {
    /// Nothing answers at the address.
    Connect(String),
    /// The exchange failed or took too long.
    Exchange(String),
}

/// Sends `method path` to `address` (`ip:port`) with the bearer `token`; the answer's
/// status and body.
pub fn request(
    address: &str,
    method: Method,
    path: &str,
    token: Option<&str>,
    timeout: Duration,
) -> Result<(StatusCode, String), ClientError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ClientError::Exchange(e.to_string()))?;
    runtime.block_on(async {
        tokio::time::timeout(timeout, exchange(address, method, path, token))
            .await
            .unwrap_or_else(|_| {
                Err(ClientError::Exchange(format!(
                    "no answer within {timeout:?}"
                )))
            })
    })
}

async fn exchange(
    address: &str,
    method: Method,
    path: &str,
    token: Option<&str>,
) -> Result<(StatusCode, String), ClientError> {
    let stream = tokio::net::TcpStream::connect(address)
        .await
        .map_err(|e| ClientError::Connect(e.to_string()))?;
    let failed = |e: &dyn std::fmt::Display| ClientError::Exchange(e.to_string());
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| failed(&e))?;
    let connection = tokio::spawn(connection);
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header(HOST, address);
    if let Some(token) = token {
        builder = builder.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = builder
        .body(Empty::<Bytes>::new())
        .map_err(|e| failed(&e))?;
    let answer = sender.send_request(request).await.map_err(|e| failed(&e))?;
    let status = answer.status();
    let body = Limited::new(answer.into_body(), ANSWER_BYTES_MAX)
        .collect()
        .await
        .map_err(|e| failed(&e))?
        .to_bytes();
    connection.abort();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}
