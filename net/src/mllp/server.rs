//! The MLLP inbound server (IRIS HL7 TCP service adapter, `EnsLib.HL7.Adapter.TCPInboundAdapter`):
//! one accept loop per shard on glommio's io_uring `TcpListener` (it sets SO_REUSEPORT, so
//! every shard listening on the same port gets its share of connections from the kernel),
//! one local task per connection with its own reused read buffer and response buffer.
//!
//! Contract with the handler (the engine's service):
//! - [`FrameHandler::on_frame`] is called once per frame, in arrival order, and may await
//!   (the WAL) before it returns; the next frame of that connection waits for it, so
//!   responses on one connection always go out in request order.
//! - Frames that arrived in one read are handled one after another and their responses
//!   leave in one write.
//! - A frame over `frame_bytes_max` is answered with [`FrameHandler::on_oversize`] (by
//!   default a NAK `AR` with an ERR segment) and the connection is closed; nothing past the
//!   limit is buffered.
//!
//! Settings (IRIS names): Port, local address (LocalInterface), ReadTimeout (seconds to
//! wait for the rest of a frame once it has begun; on expiry the connection is closed),
//! StayConnected (-1 never close an idle connection, 0 close after each message, N close
//! after N idle seconds), maximum connections (further connections are accepted and closed
//! at once, counted as rejected). JobPerConnection is accepted and has no effect: a
//! connection here is a local task of a few kilobytes, there is no job to save.
//!
//! Limits: connections per server ≤ `connections_max`; read buffer per connection ≤
//! `frame_bytes_max + 3` bytes; one frame in the handler per connection at a time.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use futures_lite::future::{self, FutureExt as _};
use futures_lite::{AsyncRead, AsyncWrite, AsyncWriteExt as _};
use glommio::net::TcpListener;
use glommio::timer::Timer;

use crate::error::MllpError;
use crate::mllp::busy::{BUSY_POLL_DEFAULT, BusyReader, TryRead};
use crate::mllp::frame::{FRAME_BYTES_MAX_DEFAULT, FrameDecoder, encode_frame};
use crate::mllp::nak::write_oversize_nak;

/// The default maximum number of connections of one server (one shard).
pub const CONNECTIONS_MAX_DEFAULT: usize = 4096;
/// IRIS's default ReadTimeout for TCP services: 5 seconds.
pub const READ_TIMEOUT_DEFAULT: Duration = Duration::from_secs(5);

/// IRIS StayConnected: when to close a connection that is idle between messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StayConnected {
    /// `-1`: keep it open until the peer closes it (the default).
    #[default]
    Forever,
    /// `0`: close after each message (inbound: after its response; outbound: after its reply).
    AfterEachMessage,
    /// `N > 0`: close after this long without a message.
    Idle(Duration),
}

impl StayConnected {
    /// From the IRIS setting value in seconds: -1, 0 or a positive number.
    pub fn from_iris_seconds(seconds: i64) -> Result<Self, MllpError> {
        match seconds {
            -1 => Ok(Self::Forever),
            0 => Ok(Self::AfterEachMessage),
            n if n > 0 => Ok(Self::Idle(Duration::from_secs(n.unsigned_abs()))),
            n => Err(MllpError::Setting {
                setting: "StayConnected",
                value: n.to_string(),
                reason: "must be -1 (stay connected), 0 (close after each message) or N > 0 idle seconds",
            }),
        }
    }
}

/// Settings of one inbound server. Every field documents its default.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Local address to listen on (IRIS LocalInterface). Default `0.0.0.0`.
    pub local_address: IpAddr,
    /// TCP port (IRIS Port). `0` picks a free port (tests). Default `0`.
    pub port: u16,
    /// IRIS ReadTimeout: how long to wait for more bytes of a frame that has begun. `None`
    /// waits forever. Default 5 s.
    pub read_timeout: Option<Duration>,
    /// IRIS StayConnected. Default [`StayConnected::Forever`].
    pub stay_connected: StayConnected,
    /// Connections open at once; more are closed on accept. Default 4096, at least 1.
    pub connections_max: usize,
    /// Largest payload accepted. Default 64 MiB.
    pub frame_bytes_max: usize,
    /// IRIS JobPerConnection: accepted for compatibility, no effect (see the module doc).
    pub job_per_connection: bool,
    /// How long a connection keeps trying non-blocking reads (yielding to the shard's
    /// other tasks) before it parks on the reactor; see [`crate::mllp::busy`]. Zero parks
    /// at once. Default [`BUSY_POLL_DEFAULT`] (50 µs).
    pub busy_poll: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            local_address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 0,
            read_timeout: Some(READ_TIMEOUT_DEFAULT),
            stay_connected: StayConnected::Forever,
            connections_max: CONNECTIONS_MAX_DEFAULT,
            frame_bytes_max: FRAME_BYTES_MAX_DEFAULT,
            job_per_connection: false,
            busy_poll: BUSY_POLL_DEFAULT,
        }
    }
}

/// Who a frame came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnInfo {
    /// Number of the connection on this server, from 1.
    pub id: u64,
    /// The sender's address.
    pub peer: SocketAddr,
    /// Our address of the connection.
    pub local: SocketAddr,
}

/// What the handler wants done after a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// Send the response written (if not empty), keep reading.
    Respond,
    /// Send the response written (if not empty), then close the connection.
    RespondAndClose,
    /// Send nothing for this frame, keep reading.
    Silent,
    /// Send nothing and close the connection.
    Close,
}

/// The engine's hook: what to do with each frame.
pub trait FrameHandler: 'static {
    /// Handles one frame: write the bare response message (an ACK or NAK, no MLLP frame:
    /// the server adds it) into `response`, which arrives empty, and say what to do next.
    fn on_frame(
        &self,
        conn: &ConnInfo,
        frame: &[u8],
        response: &mut Vec<u8>,
    ) -> impl Future<Output = Reply>;

    /// A frame passed `frame_bytes_max`; `partial` is its beginning. Writes the bare
    /// response to send before the connection closes. Default: NAK `AR` with an ERR segment
    /// naming the limit, for the control id found at the start of the message.
    fn on_oversize(
        &self,
        conn: &ConnInfo,
        partial: &[u8],
        frame_bytes_max: usize,
        response: &mut Vec<u8>,
    ) {
        let _ = conn;
        write_oversize_nak(partial, frame_bytes_max, response);
    }
}

/// Counters of one server, a snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Connections accepted and served.
    pub connections_accepted: u64,
    /// Connections open now.
    pub connections_active: usize,
    /// Connections closed at once because `connections_max` were open.
    pub connections_rejected: u64,
    /// Frames handed to the handler.
    pub frames_received: u64,
    /// Responses sent.
    pub responses_sent: u64,
    /// Bytes skipped outside frames.
    pub junk_bytes: u64,
    /// Frames over the limit (each closed its connection).
    pub frames_oversize: u64,
    /// Connections closed by the peer in the middle of a frame.
    pub frames_truncated: u64,
    /// Connections closed because ReadTimeout expired inside a frame.
    pub read_timeouts: u64,
    /// Connections closed because StayConnected's idle time expired.
    pub idle_closes: u64,
    /// Read or write errors.
    pub io_errors: u64,
}

/// A stop request one task can wait for, with one waker slot (no growth however often it
/// is polled).
#[derive(Debug, Default)]
struct StopFlag {
    stopped: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl StopFlag {
    fn stop(&self) {
        self.stopped.set(true);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    async fn wait(&self) {
        future::poll_fn(|cx| {
            if self.stopped.get() {
                return Poll::Ready(());
            }
            let mut slot = self.waker.borrow_mut();
            if !slot.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *slot = Some(cx.waker().clone());
            }
            Poll::Pending
        })
        .await
    }
}

#[derive(Debug, Default)]
struct Shared {
    stats: Cell<ServerStats>,
    accept_stop: StopFlag,
    conns: RefCell<HashMap<u64, Rc<StopFlag>>>,
    drained: StopFlag,
    stopping: Cell<bool>,
}

impl Shared {
    fn count(&self, f: impl FnOnce(&mut ServerStats)) {
        let mut s = self.stats.get();
        f(&mut s);
        self.stats.set(s);
    }
}

/// Stops a server and reads its counters; cheap to clone, local to the server's shard.
#[derive(Debug, Clone)]
pub struct ServerHandle {
    shared: Rc<Shared>,
    local_addr: SocketAddr,
}

impl ServerHandle {
    /// Stops accepting; connections finish the frame they are in and close when idle.
    /// [`MllpServer::run`] returns once they are all closed.
    pub fn stop(&self) {
        self.shared.stopping.set(true);
        self.shared.accept_stop.stop();
        for conn in self.shared.conns.borrow().values() {
            conn.stop();
        }
    }

    /// The counters now.
    pub fn stats(&self) -> ServerStats {
        self.shared.stats.get()
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

/// An MLLP server bound to its port, ready to [`run`](Self::run) on the current shard.
#[derive(Debug)]
pub struct MllpServer<H> {
    listener: TcpListener,
    config: Rc<ServerConfig>,
    handler: Rc<H>,
    handle: ServerHandle,
}

impl<H: FrameHandler> MllpServer<H> {
    /// Binds the listening socket (SO_REUSEPORT) on the current glommio executor.
    pub fn bind(config: ServerConfig, handler: H) -> Result<Self, MllpError> {
        let addr = SocketAddr::new(config.local_address, config.port);
        let listener = TcpListener::bind(addr).map_err(|e| MllpError::Bind {
            addr,
            source: e.into(),
        })?;
        let local_addr = listener.local_addr().map_err(|e| MllpError::Bind {
            addr,
            source: e.into(),
        })?;
        let mut config = config;
        config.connections_max = config.connections_max.max(1);
        Ok(Self {
            listener,
            config: Rc::new(config),
            handler: Rc::new(handler),
            handle: ServerHandle {
                shared: Rc::default(),
                local_addr,
            },
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.handle.local_addr
    }

    /// A handle to stop the server and read its counters.
    pub fn handle(&self) -> ServerHandle {
        self.handle.clone()
    }

    /// Accepts connections until stopped, then waits for the open ones to close.
    pub async fn run(self) -> Result<(), MllpError> {
        let shared = self.handle.shared.clone();
        let mut next_id = 0u64;
        loop {
            let accepted = async { Some(self.listener.accept().await) }
                .or(async {
                    shared.accept_stop.wait().await;
                    None
                })
                .await;
            let Some(accepted) = accepted else { break };
            let stream = match accepted {
                Ok(stream) => stream,
                Err(e) => {
                    shared.count(|s| s.io_errors += 1);
                    tracing::warn!(addr = %self.handle.local_addr, error = %e, "MLLP accept failed");
                    // Out of descriptors and the like: do not spin on the error.
                    Timer::new(Duration::from_millis(10)).await;
                    continue;
                }
            };
            next_id += 1;
            self.spawn_connection(stream, next_id);
        }
        drop(self.listener);
        if !shared.conns.borrow().is_empty() {
            shared.drained.wait().await;
        }
        Ok(())
    }

    fn spawn_connection(&self, stream: glommio::net::TcpStream, id: u64) {
        let shared = self.handle.shared.clone();
        if shared.stats.get().connections_active >= self.config.connections_max {
            shared.count(|s| s.connections_rejected += 1);
            tracing::warn!(
                max = self.config.connections_max,
                "MLLP connection refused: too many connections"
            );
            drop(stream);
            return;
        }
        let (Ok(peer), Ok(local)) = (stream.peer_addr(), stream.local_addr()) else {
            shared.count(|s| s.io_errors += 1);
            return;
        };
        // Small ACKs must not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let info = ConnInfo { id, peer, local };
        let stop = Rc::new(StopFlag::default());
        shared.conns.borrow_mut().insert(id, stop.clone());
        shared.count(|s| {
            s.connections_accepted += 1;
            s.connections_active += 1;
        });
        let config = self.config.clone();
        let handler = self.handler.clone();
        glommio::spawn_local(async move {
            serve_connection(stream, &info, &config, &*handler, &shared, &stop).await;
            shared.conns.borrow_mut().remove(&id);
            shared.count(|s| s.connections_active -= 1);
            if shared.stopping.get() && shared.conns.borrow().is_empty() {
                shared.drained.stop();
            }
        })
        .detach();
    }
}

enum ReadEvent {
    Data(std::io::Result<usize>),
    TimedOut,
    Stopped,
}

/// Why a connection loop ended (for the log and the counters).
#[derive(Debug)]
enum Closed {
    Peer,
    Handler,
    AfterEachMessage,
    Stopped,
    Idle,
    Error(MllpError),
}

/// Serves one connection over any byte stream until it closes. Generic so that a TLS
/// stream is served by the same code.
async fn serve_connection<S, H>(
    mut stream: S,
    info: &ConnInfo,
    config: &ServerConfig,
    handler: &H,
    shared: &Shared,
    stop: &StopFlag,
) where
    S: AsyncRead + AsyncWrite + TryRead + Unpin,
    H: FrameHandler,
{
    let mut decoder = FrameDecoder::new(config.frame_bytes_max);
    let mut reader = BusyReader::new(config.busy_poll);
    let mut response = Vec::new();
    let mut out = Vec::new();
    let closed = loop {
        let junk_before = decoder.junk_bytes();
        let (answered, close) = drain_frames(
            &mut decoder,
            info,
            config,
            handler,
            shared,
            &mut response,
            &mut out,
        )
        .await;
        shared.count(|s| s.junk_bytes += decoder.junk_bytes() - junk_before);
        if !out.is_empty() {
            if let Err(source) = stream.write_all(&out).await {
                break Closed::Error(MllpError::Io {
                    peer: info.peer,
                    during: "writing",
                    source,
                });
            }
            out.clear();
        }
        if let Some(closed) = close {
            break closed;
        }
        if answered && config.stay_connected == StayConnected::AfterEachMessage {
            break Closed::AfterEachMessage;
        }
        match read_some(&mut stream, &mut reader, &mut decoder, config, stop).await {
            ReadEvent::Data(Ok(0)) => match decoder.finish() {
                Ok(()) => break Closed::Peer,
                Err(e) => break Closed::Error(e),
            },
            ReadEvent::Data(Ok(n)) => decoder.commit(n),
            ReadEvent::Data(Err(source)) => {
                break Closed::Error(MllpError::Io {
                    peer: info.peer,
                    during: "reading",
                    source,
                });
            }
            ReadEvent::TimedOut if decoder.in_frame() => {
                break Closed::Error(MllpError::ReadTimeout {
                    peer: info.peer,
                    timeout_ms: config.read_timeout.map_or(0, |d| d.as_millis() as u64),
                    buffered_bytes: decoder.buffered_bytes(),
                });
            }
            ReadEvent::TimedOut => break Closed::Idle,
            ReadEvent::Stopped => break Closed::Stopped,
        }
    };
    record_close(&closed, info, shared);
    let _ = stream.close().await;
}

/// Handles every whole frame buffered, appending framed responses to `out`. Returns
/// whether a frame was answered, and a reason to close if there is one.
async fn drain_frames<H: FrameHandler>(
    decoder: &mut FrameDecoder,
    info: &ConnInfo,
    config: &ServerConfig,
    handler: &H,
    shared: &Shared,
    response: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> (bool, Option<Closed>) {
    let mut answered = false;
    loop {
        let frame = match decoder.next_frame() {
            Ok(Some(frame)) => frame,
            Ok(None) => return (answered, None),
            Err(e) => {
                response.clear();
                handler.on_oversize(
                    info,
                    decoder.partial_payload(),
                    config.frame_bytes_max,
                    response,
                );
                push_response(out, response, shared);
                return (answered, Some(Closed::Error(e)));
            }
        };
        shared.count(|s| s.frames_received += 1);
        response.clear();
        let reply = handler.on_frame(info, frame, response).await;
        answered = true;
        match reply {
            Reply::Respond => push_response(out, response, shared),
            Reply::Silent => {}
            Reply::RespondAndClose => {
                push_response(out, response, shared);
                return (answered, Some(Closed::Handler));
            }
            Reply::Close => return (answered, Some(Closed::Handler)),
        }
    }
}

fn push_response(out: &mut Vec<u8>, response: &[u8], shared: &Shared) {
    if !response.is_empty() {
        encode_frame(out, response);
        shared.count(|s| s.responses_sent += 1);
    }
}

/// Reads once into the decoder's buffer (busy-polling first, see [`crate::mllp::busy`]),
/// racing the timeout that applies (ReadTimeout inside a frame, StayConnected's idle time
/// between frames) and, between frames, a stop.
async fn read_some<S: AsyncRead + TryRead + Unpin>(
    stream: &mut S,
    reader: &mut BusyReader,
    decoder: &mut FrameDecoder,
    config: &ServerConfig,
    stop: &StopFlag,
) -> ReadEvent {
    let in_frame = decoder.in_frame();
    let limit = if in_frame {
        config.read_timeout
    } else {
        match config.stay_connected {
            StayConnected::Idle(d) => Some(d),
            StayConnected::Forever | StayConnected::AfterEachMessage => None,
        }
    };
    let buf = decoder.read_buf();
    let read = async { ReadEvent::Data(reader.read(stream, buf).await) };
    let timer = async {
        match limit {
            Some(d) => {
                Timer::new(d).await;
                ReadEvent::TimedOut
            }
            None => future::pending().await,
        }
    };
    let stopped = async {
        if in_frame {
            future::pending::<()>().await;
        }
        stop.wait().await;
        ReadEvent::Stopped
    };
    read.or(timer).or(stopped).await
}

fn record_close(closed: &Closed, info: &ConnInfo, shared: &Shared) {
    match closed {
        Closed::Peer | Closed::Handler | Closed::AfterEachMessage | Closed::Stopped => {
            tracing::debug!(peer = %info.peer, conn = info.id, reason = ?closed, "MLLP connection closed");
        }
        Closed::Idle => {
            shared.count(|s| s.idle_closes += 1);
            tracing::debug!(peer = %info.peer, conn = info.id, "MLLP connection closed: StayConnected idle time");
        }
        Closed::Error(e) => {
            shared.count(|s| match e {
                MllpError::FrameTooLarge { .. } => s.frames_oversize += 1,
                MllpError::TruncatedFrame { .. } => s.frames_truncated += 1,
                MllpError::ReadTimeout { .. } => s.read_timeouts += 1,
                _ => s.io_errors += 1,
            });
            tracing::warn!(peer = %info.peer, conn = info.id, error = %e, "MLLP connection closed");
        }
    }
}
