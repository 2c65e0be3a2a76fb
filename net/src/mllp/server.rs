//! The MLLP inbound server (IRIS HL7 TCP service adapter, `EnsLib.HL7.Adapter.TCPInboundAdapter`):
//! the generic TCP accept loop ([`crate::tcp::accept`]: one per shard, SO_REUSEPORT, the
//! connection limits) serving each connection with this module's frame loop, in a local
//! task with its own reused read buffer and response buffer.
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
//! Settings (IRIS names): Port, local address (LocalInterface), ReadTimeout (seconds a
//! frame may take from its start block to its end block; on expiry the connection is
//! closed), StayConnected (-1 never close an idle connection, 0 close after each message,
//! N close after N idle seconds). JobPerConnection is accepted and has no effect: a
//! connection here is a local task of a few kilobytes, there is no job to save.
//!
//! Limits (see [`crate::tcp::limits`]):
//! - connections of the service (all shards) ≤ `connections.connections_max()`, from one
//!   IP address ≤ `connections.connections_per_peer_max()`; a connection past either is
//!   closed as soon as it is accepted, before any byte is read, and logged once per peer
//!   per [`REFUSAL_LOG_INTERVAL`] (as are connections closed on an error and
//!   displacements) — except that a full service makes room for a new sender by
//!   displacing a connection of its heaviest address or, failing that, the one idle
//!   longest between messages (see `crate::tcp::conns`);
//! - read buffer per connection ≤ `frame_bytes_max + 3` bytes, and every connection's
//!   buffer of every service together ≤ the process's [`InboundBudget`], of which one
//!   service holds at most half and one peer address an eighth (see
//!   [`crate::tcp::limits`]): a connection whose buffer would pass its share or the
//!   budget stops reading (TCP flow control holds the sender)
//!   until there is room, while its ReadTimeout runs; a buffer grown for a large frame
//!   shrinks back to [`READ_BUFFER_BYTES_INITIAL`] after it, and a connection idle for
//!   `buffer_release_idle` frees its buffer altogether;
//! - one frame in the handler per connection at a time;
//! - a stop lets a connection finish the frame it is in for at most `stop_frame_grace`
//!   after the stop, then cuts it: a stop never waits on a sender longer than that (plus
//!   the handler's own work on frames already whole).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_lite::future::{self, FutureExt as _};
use futures_lite::{AsyncRead, AsyncWrite, AsyncWriteExt as _};
use glommio::timer::Timer;

use crate::error::MllpError;
use crate::mllp::frame::{
    FRAME_BYTES_MAX_DEFAULT, FrameDecoder, READ_BUFFER_BYTES_INITIAL, encode_frame,
};
use crate::mllp::nak::write_oversize_nak;
pub use crate::tcp::accept::ConnInfo;
use crate::tcp::accept::{AcceptHandle, Acceptor, Connection};
use crate::tcp::busy::{BUSY_POLL_DEFAULT, BusyReader, TryRead};
use crate::tcp::conns::StopFlag;
use crate::tcp::limits::{
    BufferAccount, ConnectionTable, InboundBudget, REFUSAL_LOG_INTERVAL, RefusalLog,
};

/// IRIS's default ReadTimeout for TCP services: 5 seconds.
pub const READ_TIMEOUT_DEFAULT: Duration = Duration::from_secs(5);
/// The default time a connection idle between frames keeps its read buffer: 1 second.
pub const BUFFER_RELEASE_IDLE_DEFAULT: Duration = Duration::from_secs(1);
/// The default time a stop waits for a connection in the middle of a frame: 5 seconds.
pub const STOP_FRAME_GRACE_DEFAULT: Duration = Duration::from_secs(5);
/// How soon a connection waiting for the inbound budget first looks again (the budget is
/// shared by every shard: no wake-up comes from the others); each further look waits
/// twice as long, up to [`BUDGET_RETRY_MAX`], so that many waiting connections cost
/// little.
const BUDGET_RETRY: Duration = Duration::from_millis(10);
/// The longest wait between two looks at the inbound budget.
const BUDGET_RETRY_MAX: Duration = Duration::from_millis(320);
/// Bytes read into the connection's own small buffer when it has no read buffer (a new
/// or idle connection): the read buffer is allocated once bytes are there.
const FIRST_READ_BYTES: usize = 64;

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
    /// IRIS ReadTimeout: how long a frame may take, from its start block to its end
    /// block. `None` waits forever. Default 5 s.
    pub read_timeout: Option<Duration>,
    /// IRIS StayConnected. Default [`StayConnected::Forever`].
    pub stay_connected: StayConnected,
    /// The service's connection table (hie MaxConnections, MaxConnectionsPerPeer), shared
    /// by its instances on every shard. Default: a table of its own with 4,096
    /// connections, 256 per peer address.
    pub connections: ConnectionTable,
    /// Largest payload accepted (hie MaxMessageSize). Default 64 MiB.
    pub frame_bytes_max: usize,
    /// The process's budget of inbound read-buffer bytes, shared by every server. Default:
    /// a budget of its own of 1 GiB.
    pub inbound_budget: InboundBudget,
    /// How long a connection idle between frames keeps its read buffer. Default 1 s.
    pub buffer_release_idle: Duration,
    /// After a stop, how long a connection in the middle of a frame may take to finish it
    /// before it is cut. Default 5 s.
    pub stop_frame_grace: Duration,
    /// IRIS JobPerConnection: accepted for compatibility, no effect (see the module doc).
    pub job_per_connection: bool,
    /// How long a connection keeps trying non-blocking reads (yielding to the shard's
    /// other tasks) before it parks on the reactor; see [`crate::tcp::busy`]. Zero parks
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
            connections: ConnectionTable::default(),
            frame_bytes_max: FRAME_BYTES_MAX_DEFAULT,
            inbound_budget: InboundBudget::default(),
            buffer_release_idle: BUFFER_RELEASE_IDLE_DEFAULT,
            stop_frame_grace: STOP_FRAME_GRACE_DEFAULT,
            job_per_connection: false,
            busy_poll: BUSY_POLL_DEFAULT,
        }
    }
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
    /// Connections closed at once because the service or the peer address had its
    /// maximum of connections open.
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
    /// Connections closed because a frame did not arrive whole within ReadTimeout.
    pub read_timeouts: u64,
    /// Connections cut in the middle of a frame after a stop's grace.
    pub stop_cuts: u64,
    /// Connections cut (at once, even mid-frame) to make room for a sender from a new
    /// address while the service was full and one address held more connections than
    /// the others (see `crate::tcp::conns`).
    pub connections_displaced: u64,
    /// Connections closed between messages, idle for at least 1 s and longest of this
    /// shard's, to make room for a new sender while the service was full and no address
    /// held more connections than the others (see `crate::tcp::conns`).
    pub connections_displaced_idle: u64,
    /// Times a connection found the inbound budget spent and waited for room.
    pub budget_waits: u64,
    /// Read buffers freed because their connection was idle.
    pub buffers_released: u64,
    /// Connections closed because StayConnected's idle time expired.
    pub idle_closes: u64,
    /// Read or write errors.
    pub io_errors: u64,
}

/// The MLLP side of a server's state: its counters of frames and connection closes.
#[derive(Debug)]
struct Shared {
    /// The frame loop's counters; the connection counters are the accept loop's.
    stats: Cell<ServerStats>,
    /// The rate limit of the log line for connections closed on an error (a slow-loris
    /// flood cut by ReadTimeout would otherwise write one WARN per connection).
    error_closes: RefCell<RefusalLog>,
}

impl Default for Shared {
    fn default() -> Self {
        Self {
            stats: Cell::default(),
            error_closes: RefCell::new(RefusalLog::new(REFUSAL_LOG_INTERVAL)),
        }
    }
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
    accept: AcceptHandle,
    shared: Rc<Shared>,
}

impl ServerHandle {
    /// Stops accepting; connections finish the frame they are in (within the stop grace)
    /// and close. [`MllpServer::run`] returns once they are all closed.
    pub fn stop(&self) {
        self.accept.stop();
    }

    /// The counters now: the accept loop's and the frame loop's together.
    pub fn stats(&self) -> ServerStats {
        let accept = self.accept.stats();
        let mut s = self.shared.stats.get();
        s.connections_accepted = accept.connections_accepted;
        s.connections_active = accept.connections_active;
        s.connections_rejected = accept.connections_rejected;
        s.connections_displaced = accept.connections_displaced;
        s.connections_displaced_idle = accept.connections_displaced_idle;
        s.io_errors += accept.io_errors;
        s
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.accept.local_addr()
    }
}

/// An MLLP server bound to its port, ready to [`run`](Self::run) on the current shard.
#[derive(Debug)]
pub struct MllpServer<H> {
    acceptor: Acceptor,
    config: Rc<ServerConfig>,
    handler: Rc<H>,
    handle: ServerHandle,
}

impl<H: FrameHandler> MllpServer<H> {
    /// Binds the listening socket (SO_REUSEPORT) on the current glommio executor.
    pub fn bind(config: ServerConfig, handler: H) -> Result<Self, MllpError> {
        let addr = SocketAddr::new(config.local_address, config.port);
        let acceptor = Acceptor::bind(addr, config.connections.clone(), "MLLP")?;
        let handle = ServerHandle {
            accept: acceptor.handle(),
            shared: Rc::default(),
        };
        Ok(Self {
            acceptor,
            config: Rc::new(config),
            handler: Rc::new(handler),
            handle,
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }

    /// A handle to stop the server and read its counters.
    pub fn handle(&self) -> ServerHandle {
        self.handle.clone()
    }

    /// Accepts connections until stopped, then waits for the open ones to close.
    pub async fn run(self) -> Result<(), MllpError> {
        let (config, handler, shared) = (self.config, self.handler, self.handle.shared);
        self.acceptor
            .run(move |conn: Connection| {
                let (config, handler, shared) = (config.clone(), handler.clone(), shared.clone());
                async move {
                    let account =
                        BufferAccount::new(config.inbound_budget.clone(), Some(conn.admission));
                    serve_connection(
                        conn.stream,
                        &conn.info,
                        &config,
                        account,
                        &*handler,
                        &shared,
                        &conn.stop,
                    )
                    .await;
                }
            })
            .await
    }
}

enum ReadEvent {
    /// A read into the decoder's buffer.
    Data(std::io::Result<usize>),
    /// Bytes read into the connection's small buffer were copied into the decoder.
    Pushed,
    TimedOut,
    Stopped,
    /// Stopped, and the frame in progress did not end within the stop grace.
    Cut,
    /// Idle for `buffer_release_idle` with nothing buffered: free the buffer.
    Release,
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

/// What a connection reads into besides its decoder.
struct ConnBuffers {
    response: Vec<u8>,
    out: Vec<u8>,
    first: [u8; FIRST_READ_BYTES],
}

/// Serves one connection over any byte stream until it closes. Generic so that a TLS
/// stream is served by the same code.
async fn serve_connection<S, H>(
    mut stream: S,
    info: &ConnInfo,
    config: &ServerConfig,
    account: BufferAccount,
    handler: &H,
    shared: &Shared,
    stop: &StopFlag,
) where
    S: AsyncRead + AsyncWrite + TryRead + Unpin,
    H: FrameHandler,
{
    let mut decoder = FrameDecoder::with_account(config.frame_bytes_max, account);
    let mut reader = BusyReader::new(config.busy_poll);
    let mut bufs = ConnBuffers {
        response: Vec::new(),
        out: Vec::new(),
        first: [0; FIRST_READ_BYTES],
    };
    let mut frame_deadline = None;
    // When bytes last came (StayConnected counts idle time from it).
    let mut last_bytes_at = Instant::now();
    let closed = loop {
        let junk_before = decoder.junk_bytes();
        let frames_before = decoder.frames();
        let (answered, close) = drain_frames(
            &mut decoder,
            info,
            config,
            handler,
            shared,
            &mut bufs.response,
            &mut bufs.out,
        )
        .await;
        shared.count(|s| s.junk_bytes += decoder.junk_bytes() - junk_before);
        // Before the answers leave: a sender that has its ACK finds the memory given back.
        decoder.give_back(READ_BUFFER_BYTES_INITIAL);
        if !bufs.out.is_empty() {
            if let Err(source) = stream.write_all(&bufs.out).await {
                break Closed::Error(MllpError::Io {
                    peer: info.peer,
                    during: "writing",
                    source,
                });
            }
            bufs.out.clear();
        }
        if let Some(closed) = close {
            break closed;
        }
        if answered && config.stay_connected == StayConnected::AfterEachMessage {
            break Closed::AfterEachMessage;
        }
        frame_deadline = next_frame_deadline(&decoder, frames_before, frame_deadline, config);
        // Between frames, nothing buffered, every answer written: a connection the
        // idle-longest rule may displace (see `crate::tcp::conns`).
        let idle = !decoder.in_frame() && decoder.buffered_bytes() == 0;
        stop.set_idle_since(idle.then_some(last_bytes_at));
        let event = read_some(
            &mut stream,
            &mut reader,
            &mut decoder,
            &mut bufs.first,
            config,
            shared,
            stop,
            frame_deadline,
            last_bytes_at,
        )
        .await;
        if matches!(event, ReadEvent::Data(Ok(1..)) | ReadEvent::Pushed) {
            last_bytes_at = Instant::now();
            stop.set_idle_since(None);
        }
        match event {
            ReadEvent::Data(Ok(0)) => match decoder.finish() {
                Ok(()) => break Closed::Peer,
                Err(e) => break Closed::Error(e),
            },
            ReadEvent::Data(Ok(n)) => decoder.commit(n),
            ReadEvent::Pushed => {}
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
            ReadEvent::Cut => {
                break Closed::Error(MllpError::CutAtStop {
                    peer: info.peer,
                    grace_ms: config.stop_frame_grace.as_millis() as u64,
                    buffered_bytes: decoder.buffered_bytes(),
                });
            }
            ReadEvent::Release => {
                decoder.give_back(0);
                bufs.response = Vec::new();
                bufs.out = Vec::new();
                shared.count(|s| s.buffers_released += 1);
            }
        }
    };
    drop(decoder);
    record_close(&closed, info, shared);
    let _ = stream.close().await;
}

/// When the frame in progress must be whole (ReadTimeout from its start block): kept
/// while the same frame goes on, started afresh for a frame begun since, none between
/// frames.
fn next_frame_deadline(
    decoder: &FrameDecoder,
    frames_before: u64,
    deadline: Option<Instant>,
    config: &ServerConfig,
) -> Option<Instant> {
    if !decoder.in_frame() {
        return None;
    }
    if deadline.is_some() && decoder.frames() == frames_before {
        return deadline;
    }
    config.read_timeout.map(|t| Instant::now() + t)
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

/// Reads once (busy-polling first, see [`crate::tcp::busy`]), racing the timeout that
/// applies (the frame's ReadTimeout deadline inside a frame, StayConnected's idle time
/// between frames), a stop (inside a frame: the stop grace) and, between frames with a
/// buffer and nothing in it, the buffer's release. Reads into the decoder's buffer once
/// the budget has room for it; a connection without a buffer first reads into `first`.
#[allow(clippy::too_many_arguments)]
async fn read_some<S: AsyncRead + TryRead + Unpin>(
    stream: &mut S,
    reader: &mut BusyReader,
    decoder: &mut FrameDecoder,
    first: &mut [u8; FIRST_READ_BYTES],
    config: &ServerConfig,
    shared: &Shared,
    stop: &StopFlag,
    frame_deadline: Option<Instant>,
    last_bytes_at: Instant,
) -> ReadEvent {
    let in_frame = decoder.in_frame();
    let idle_deadline = match config.stay_connected {
        StayConnected::Idle(d) if !in_frame => Some(last_bytes_at + d),
        _ => None,
    };
    let deadline = if in_frame {
        frame_deadline
    } else {
        idle_deadline
    };
    let release = !in_frame && decoder.buffered_bytes() == 0 && decoder.buffer_bytes() > 0;
    let unbuffered = decoder.buffer_bytes() == 0;
    let read = async {
        if unbuffered {
            return read_first(stream, reader, decoder, first, shared).await;
        }
        wait_for_room(decoder, shared).await;
        ReadEvent::Data(reader.read(stream, decoder.read_buf()).await)
    };
    let timer = async {
        match deadline {
            Some(at) => {
                Timer::new(at.saturating_duration_since(Instant::now())).await;
                ReadEvent::TimedOut
            }
            None => future::pending().await,
        }
    };
    let released = async {
        if !release {
            future::pending::<()>().await;
        }
        Timer::new(config.buffer_release_idle).await;
        ReadEvent::Release
    };
    let stopped = async {
        stop.wait().await;
        if !in_frame || stop.cut_at_once() {
            return ReadEvent::Stopped;
        }
        let cut_at = stop.stopped_at().unwrap_or_else(Instant::now) + config.stop_frame_grace;
        Timer::new(cut_at.saturating_duration_since(Instant::now())).await;
        ReadEvent::Cut
    };
    read.or(timer).or(stopped).or(released).await
}

/// Waits until the decoder has room to read into (the inbound budget allows it).
async fn wait_for_room(decoder: &mut FrameDecoder, shared: &Shared) {
    if decoder.make_room() {
        return;
    }
    shared.count(|s| s.budget_waits += 1);
    let mut wait = BUDGET_RETRY;
    let mut retry = Timer::new(wait);
    loop {
        (&mut retry).await;
        if decoder.make_room() {
            return;
        }
        wait = (wait * 2).min(BUDGET_RETRY_MAX);
        retry.reset(wait);
    }
}

/// Reads into `first` (a connection without a read buffer: new, or idle), then copies
/// what came into the decoder once the budget has room for its buffer.
async fn read_first<S: AsyncRead + TryRead + Unpin>(
    stream: &mut S,
    reader: &mut BusyReader,
    decoder: &mut FrameDecoder,
    first: &mut [u8; FIRST_READ_BYTES],
    shared: &Shared,
) -> ReadEvent {
    // Never more than a fresh buffer of the smallest frame limit holds.
    let limit = FIRST_READ_BYTES.min(decoder.frame_bytes_max().saturating_add(3));
    let n = match reader.read(stream, &mut first[..limit]).await {
        Ok(0) => return ReadEvent::Data(Ok(0)),
        Ok(n) => n,
        Err(e) => return ReadEvent::Data(Err(e)),
    };
    wait_for_room(decoder, shared).await;
    let copied = decoder.push(&first[..n]);
    // A fresh buffer holds min(64 KiB, frame_bytes_max + 3) bytes, at least `limit`.
    assert_eq!(copied, n, "first bytes did not fit a fresh read buffer");
    ReadEvent::Pushed
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
                MllpError::CutAtStop { .. } => s.stop_cuts += 1,
                _ => s.io_errors += 1,
            });
            let now = Instant::now();
            let Some(closed) = shared.error_closes.borrow_mut().note(info.peer.ip(), now) else {
                tracing::debug!(peer = %info.peer, conn = info.id, error = %e, "MLLP connection closed");
                return;
            };
            tracing::warn!(
                peer = %info.peer,
                conn = info.id,
                closed,
                error = %e,
                "MLLP connection closed (such closes of this address are logged at most once \
                 per {} s, `closed` counts them)",
                REFUSAL_LOG_INTERVAL.as_secs()
            );
        }
    }
}
