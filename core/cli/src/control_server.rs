//! The control socket of `hie run` (`DATA_DIR/hie.sock`) and its protocol: JSON lines.
//! Each request is one JSON object on one line (see [`ControlRequest`]); each answer is
//! one JSON object on one line. Item names are JSON strings, so any name (spaces,
//! quotes, non-ASCII) reaches the engine as it was written.
//!
//! Access: the socket file is set to mode 0600 right after it is bound (whatever the
//! umask), and every connection's peer credentials (`SO_PEERCRED`) are checked: only
//! root and the engine's own user may talk to it; anyone else gets one refusal line
//! (this also closes the moment between bind and chmod).
//!
//! Limits: at most [`CONTROL_CONNECTIONS_MAX`] connections at once (one thread each; one
//! more is answered with an error and closed); a request line of at most
//! [`CONTROL_REQUEST_BYTES_MAX`]; a connection idle for [`CONTROL_READ_TIMEOUT`] is
//! closed; an answer that cannot be written within [`CONTROL_WRITE_TIMEOUT`] closes it.
//! Requests are answered one at a time by the main thread.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crossbeam_channel::Sender;
use serde::{Deserialize, Serialize};

/// Most control connections served at once.
pub const CONTROL_CONNECTIONS_MAX: usize = 16;
/// Longest request line, in bytes.
pub const CONTROL_REQUEST_BYTES_MAX: usize = 64 * 1024;
/// A connection that sends no request for this long is closed.
pub const CONTROL_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// An answer not written within this closes the connection.
pub const CONTROL_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// One request on the control socket (`{"command": "disable", "item": "Main ADT Router"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case", deny_unknown_fields)]
pub enum ControlRequest {
    /// Every item on every shard, with held-message counts.
    Status,
    /// Every failed and suspended message listed.
    Held,
    Enable {
        item: String,
    },
    Disable {
        item: String,
    },
    Restart {
        item: String,
    },
    Pause {
        item: String,
    },
    Resume {
        item: String,
    },
    /// A held message's bytes (`id` is `SHARD:WAL_ID`, as listed).
    Show {
        id: String,
    },
    /// Deliver a held message again to the item where it is held (`item` when it is held
    /// at several).
    Resend {
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        item: Option<String>,
    },
    /// Take a held message off its list for good.
    Discard {
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        item: Option<String>,
    },
    /// Latency percentiles per item and stage, merged over the shards (`item`: one item).
    Histograms {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        item: Option<String>,
    },
}

/// A request line and where its answer goes.
pub type Request = (String, Sender<String>);

/// Binds `socket` (mode 0600) and serves it on a thread; each request line goes to
/// `requests`.
pub fn serve(socket: &Path, requests: Sender<Request>) -> std::io::Result<()> {
    let _ = std::fs::remove_file(socket);
    let listener = UnixListener::bind(socket)?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))?;
    let active = Arc::new(AtomicUsize::new(0));
    std::thread::Builder::new()
        .name("hie-control".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                accept(stream, &requests, &active);
            }
        })?;
    Ok(())
}

/// Checks the peer and the connection limit, then serves `stream` on its own thread.
fn accept(stream: UnixStream, requests: &Sender<Request>, active: &Arc<AtomicUsize>) {
    let _ = stream.set_write_timeout(Some(CONTROL_WRITE_TIMEOUT));
    if let Err(refusal) = check_peer(&stream) {
        tracing::warn!("control connection refused: {refusal}");
        refuse(stream, &refusal);
        return;
    }
    if active.fetch_add(1, Ordering::AcqRel) >= CONTROL_CONNECTIONS_MAX {
        active.fetch_sub(1, Ordering::AcqRel);
        let text = format!("too many control connections (at most {CONTROL_CONNECTIONS_MAX})");
        refuse(stream, &text);
        return;
    }
    let requests = requests.clone();
    let active2 = Arc::clone(active);
    let spawned = std::thread::Builder::new()
        .name("hie-control-conn".into())
        .spawn(move || {
            serve_connection(stream, &requests);
            active2.fetch_sub(1, Ordering::AcqRel);
        });
    if spawned.is_err() {
        active.fetch_sub(1, Ordering::AcqRel);
    }
}

/// How long a refused connection is given to send its request line before the refusal is
/// written (so that the client reads the refusal instead of failing its write).
const REFUSAL_READ_TIMEOUT: Duration = Duration::from_millis(500);

/// Reads (and drops) the request line, up to the request limit, then answers `text`.
fn refuse(mut stream: UnixStream, text: &str) {
    let _ = stream.set_read_timeout(Some(REFUSAL_READ_TIMEOUT));
    let mut line = Vec::new();
    let limit = CONTROL_REQUEST_BYTES_MAX as u64;
    let _ = BufReader::new(&stream)
        .take(limit)
        .read_until(b'\n', &mut line);
    let _ = writeln!(stream, "{}", error_line(text));
}

/// `{"ok": false, "error": text}`.
pub fn error_line(text: &str) -> String {
    serde_json::json!({"ok": false, "error": text}).to_string()
}

/// Root and the engine's own user may connect.
fn check_peer(stream: &UnixStream) -> Result<(), String> {
    let uid = peer_uid(stream).map_err(|e| format!("cannot read the peer's credentials: {e}"))?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let own = unsafe { libc::geteuid() };
    if uid == 0 || uid == own {
        Ok(())
    } else {
        Err(format!(
            "uid {uid} may not control this engine (only root and uid {own}, the engine's user)"
        ))
    }
}

/// The user id of the process at the other end (`SO_PEERCRED`).
fn peer_uid(stream: &UnixStream) -> std::io::Result<u32> {
    use std::os::fd::AsRawFd;
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: the fd is a valid socket owned by `stream` for the call; `cred` and `len`
    // are valid for writes and `len` holds `cred`'s size, as SO_PEERCRED requires.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&raw mut cred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(cred.uid)
}

fn serve_connection(stream: UnixStream, requests: &Sender<Request>) {
    let _ = stream.set_read_timeout(Some(CONTROL_READ_TIMEOUT));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        let limit = CONTROL_REQUEST_BYTES_MAX as u64 + 1;
        match reader.by_ref().take(limit).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if line.last() != Some(&b'\n') {
            if line.len() > CONTROL_REQUEST_BYTES_MAX {
                let text = format!("request longer than {CONTROL_REQUEST_BYTES_MAX} bytes");
                let _ = writeln!(writer, "{}", error_line(&text));
            }
            return;
        }
        let text = String::from_utf8_lossy(&line).trim_end().to_string();
        let (reply_tx, reply_rx) = crossbeam_channel::bounded(1);
        if requests.send((text, reply_tx)).is_err() {
            return;
        }
        let Ok(reply) = reply_rx.recv() else { return };
        if writeln!(writer, "{reply}").is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_json_objects_with_names_kept_whole() {
        let request = ControlRequest::Disable {
            item: "Main ADT Router".into(),
        };
        let line = serde_json::to_string(&request).unwrap();
        assert_eq!(line, r#"{"command":"disable","item":"Main ADT Router"}"#);
        assert_eq!(
            serde_json::from_str::<ControlRequest>(&line).unwrap(),
            request
        );
        let resend: ControlRequest =
            serde_json::from_str(r#"{"command":"resend","id":"0:7"}"#).unwrap();
        assert_eq!(
            resend,
            ControlRequest::Resend {
                id: "0:7".into(),
                item: None
            }
        );
        assert!(serde_json::from_str::<ControlRequest>(r#"{"command":"explode"}"#).is_err());
        assert!(serde_json::from_str::<ControlRequest>("disable Out").is_err());
    }

    #[test]
    fn a_peer_of_our_own_uid_is_accepted() {
        let (a, _b) = UnixStream::pair().unwrap();
        assert_eq!(check_peer(&a), Ok(()));
    }
}
