//! The MLLP outbound client (IRIS HL7 TCP operation adapter, `EnsLib.HL7.Adapter.TCPOutboundAdapter`):
//! one connection to one downstream system, one message in flight, every reply checked
//! against the message it answers.
//!
//! Contract:
//! - [`MllpClient::send`] frames the message, sends it, and (GetReply) reads frames until
//!   one arrives or ResponseTimeout expires (one deadline for the whole reply, not per read).
//! - A reply whose MSA-2 is not the MSH-10 sent is never taken as the answer: it is logged,
//!   the connection is reset and the outcome is [`ReplyOutcome::Mismatched`]. Bytes still
//!   buffered after a matching reply (a peer sending several ACKs for one message) also
//!   reset the connection, so they cannot answer the next message.
//! - After ResponseTimeout the connection is reset: a late ACK lands on a closed socket.
//! - A connection reused after being idle that turns out closed by the peer before any
//!   reply byte is reconnected and the message sent again once, at once (at-least-once).
//! - Connect: ConnectTimeout per attempt, ReconnectRetry more attempts with a doubling
//!   backoff. StayConnected: -1 keep the connection, 0 close after each reply, N close when
//!   a send finds it idle for N seconds (or at [`MllpClient::close_if_idle`]).
//!
//! Streams come from a [`Connector`], so TLS is another connector, not another client.
//! Limits: replies up to `frame_bytes_max` bytes; the address is resolved beforehand (no
//! DNS on a shard).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_lite::future::{self, FutureExt as _};
use futures_lite::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use glommio::timer::Timer;
use hie_hl7::{Batch, Envelope, Message};

use crate::error::MllpError;
use crate::mllp::frame::{FRAME_BYTES_MAX_DEFAULT, FrameDecoder, check_payload, encode_frame};
use crate::mllp::server::StayConnected;
use crate::tcp::busy::{BUSY_POLL_DEFAULT, BusyReader, TryRead};

/// IRIS's default ConnectTimeout: 5 s.
pub const CONNECT_TIMEOUT_DEFAULT: Duration = Duration::from_secs(5);
/// IRIS's default ResponseTimeout for HL7 TCP operations: 30 s.
pub const RESPONSE_TIMEOUT_DEFAULT: Duration = Duration::from_secs(30);
/// IRIS's default ReconnectRetry: 5.
pub const RECONNECT_RETRY_DEFAULT: u32 = 5;

/// Settings of one outbound client. Every field documents its default.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The downstream system (IRIS IPAddress + Port), already resolved.
    pub address: SocketAddr,
    /// IRIS ConnectTimeout, per attempt. Default 5 s.
    pub connect_timeout: Duration,
    /// IRIS ReconnectRetry: attempts after the first before a send gives up. Default 5.
    pub reconnect_retry: u32,
    /// First wait between connect attempts, doubled each time up to `reconnect_backoff_max`.
    /// Default 100 ms.
    pub reconnect_backoff_initial: Duration,
    /// Longest wait between connect attempts. Default 5 s.
    pub reconnect_backoff_max: Duration,
    /// IRIS StayConnected. Default [`StayConnected::Forever`].
    pub stay_connected: StayConnected,
    /// IRIS ResponseTimeout; `None` waits forever (-1). Default 30 s.
    pub response_timeout: Option<Duration>,
    /// IRIS GetReply: wait for a reply. Default true.
    pub get_reply: bool,
    /// Largest reply accepted. Default 64 MiB.
    pub frame_bytes_max: usize,
    /// The reply type expected in MSH-9.1 (`:T?` matches others). Default `ACK`.
    pub expected_reply_type: Vec<u8>,
    /// How long to keep trying non-blocking reads of the reply (yielding to the shard's
    /// other tasks) before parking on the reactor; see [`crate::tcp::busy`]. Zero parks
    /// at once. Default [`BUSY_POLL_DEFAULT`] (50 µs).
    pub busy_poll: Duration,
}

impl ClientConfig {
    /// The IRIS defaults for `address`.
    pub fn new(address: SocketAddr) -> Self {
        Self {
            address,
            connect_timeout: CONNECT_TIMEOUT_DEFAULT,
            reconnect_retry: RECONNECT_RETRY_DEFAULT,
            reconnect_backoff_initial: Duration::from_millis(100),
            reconnect_backoff_max: Duration::from_secs(5),
            stay_connected: StayConnected::Forever,
            response_timeout: Some(RESPONSE_TIMEOUT_DEFAULT),
            get_reply: true,
            frame_bytes_max: FRAME_BYTES_MAX_DEFAULT,
            expected_reply_type: b"ACK".to_vec(),
            busy_poll: BUSY_POLL_DEFAULT,
        }
    }
}

/// Opens byte streams to a downstream system: plain TCP here, TLS later.
pub trait Connector: 'static {
    /// The stream type.
    type Stream: AsyncRead + AsyncWrite + Unpin;
    /// Connects within `timeout` (an `io::ErrorKind::TimedOut` error when it expires).
    fn connect(
        &self,
        addr: SocketAddr,
        timeout: Duration,
    ) -> impl Future<Output = io::Result<Self::Stream>>;

    /// Bytes `stream` already holds, taken without waiting (see [`crate::tcp::busy`]);
    /// `None` when it would block. The default has none, so every read of a reply goes
    /// through the reactor.
    fn try_read(stream: &mut Self::Stream, buf: &mut [u8]) -> Option<io::Result<usize>> {
        let _ = (stream, buf);
        None
    }

    /// The socket under `stream`, to wait for a reply in the shard's readiness set (see
    /// [`TryRead::readiness_fd`]). The default has none.
    fn readiness_fd(stream: &Self::Stream) -> Option<std::os::fd::RawFd> {
        let _ = stream;
        None
    }
}

/// Plain TCP on glommio's io_uring sockets, with TCP_NODELAY.
#[derive(Debug, Clone, Copy, Default)]
pub struct TcpConnector;

impl Connector for TcpConnector {
    type Stream = glommio::net::TcpStream;

    async fn connect(&self, addr: SocketAddr, timeout: Duration) -> io::Result<Self::Stream> {
        let stream = glommio::net::TcpStream::connect_timeout(addr, timeout)
            .await
            .map_err(io::Error::from)?;
        stream.set_nodelay(true).map_err(io::Error::from)?;
        Ok(stream)
    }

    fn try_read(stream: &mut Self::Stream, buf: &mut [u8]) -> Option<io::Result<usize>> {
        TryRead::try_read(stream, buf)
    }

    fn readiness_fd(stream: &Self::Stream) -> Option<std::os::fd::RawFd> {
        TryRead::readiness_fd(stream)
    }
}

/// Why no reply came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoReplyReason {
    /// ResponseTimeout expired.
    ResponseTimeout,
    /// The peer closed the connection before replying.
    ConnectionClosed,
    /// No connection could be made (all attempts).
    ConnectFailed,
    /// A read or write failed, or the reply was malformed MLLP (too large, cut).
    Io,
}

impl NoReplyReason {
    /// Its name, as the log and an operation's error codes spell it.
    pub fn code(self) -> &'static str {
        match self {
            Self::ResponseTimeout => "ResponseTimeout",
            Self::ConnectionClosed => "ConnectionClosed",
            Self::ConnectFailed => "ConnectFailed",
            Self::Io => "Io",
        }
    }
}

/// What happened to one sent message.
#[derive(Debug)]
pub enum ReplyOutcome {
    /// Sent; GetReply is off so no reply was read.
    Sent,
    /// The reply to this message (MSA-2 = MSH-10 sent); it may be an AE or AR.
    Replied(Vec<u8>),
    /// A reply that answers another message (MSA-2 is not the MSH-10 sent); the
    /// connection was reset.
    Mismatched(Vec<u8>),
    /// A frame that is not an HL7 message; the connection was reset.
    Unparseable(Vec<u8>),
    /// No reply at all, and why (with the error's text).
    NoReply(NoReplyReason, String),
}

impl ReplyOutcome {
    /// A few words naming the outcome, for the log.
    pub fn summary(&self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Replied(_) => "replied",
            Self::Mismatched(_) => "reply for another control id",
            Self::Unparseable(_) => "unparseable reply",
            Self::NoReply(reason, _) => reason.code(),
        }
    }
}

/// Counters of one client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Messages written to a connection.
    pub messages_sent: u64,
    /// Replies matching the message sent.
    pub replies: u64,
    /// Replies for another control id.
    pub replies_mismatched: u64,
    /// ResponseTimeout expiries.
    pub response_timeouts: u64,
    /// Connections opened.
    pub connects: u64,
    /// Connect attempts that failed.
    pub connect_failures: u64,
    /// Connections reset because of a bad, extra or late reply.
    pub resets: u64,
}

/// The outbound client of one connection.
#[derive(Debug)]
pub struct MllpClient<C: Connector = TcpConnector> {
    config: ClientConfig,
    connector: C,
    stream: Option<C::Stream>,
    decoder: FrameDecoder,
    /// Busy-polling reads of the open connection; reset with each new one.
    reader: BusyReader,
    out: Vec<u8>,
    last_used: Instant,
    stats: ClientStats,
}

enum ReadResult {
    Frame(Vec<u8>),
    Failed(NoReplyReason, String),
}

impl MllpClient<TcpConnector> {
    /// A TCP client; it connects on the first send.
    pub fn new(config: ClientConfig) -> Self {
        Self::with_connector(config, TcpConnector)
    }
}

impl<C: Connector> MllpClient<C> {
    /// A client over any connector (TLS, tests).
    pub fn with_connector(config: ClientConfig, connector: C) -> Self {
        let decoder = FrameDecoder::new(config.frame_bytes_max);
        let reader = BusyReader::new(config.busy_poll);
        Self {
            config,
            connector,
            stream: None,
            decoder,
            reader,
            out: Vec::new(),
            last_used: Instant::now(),
            stats: ClientStats::default(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The counters.
    pub fn stats(&self) -> ClientStats {
        self.stats
    }

    /// Whether a connection is open.
    pub fn is_connected(&self) -> bool {
        self.stream.is_some()
    }

    /// Sends one message and classifies what came back. `Err` only for a message that cannot
    /// be sent at all (not framable, no MSH); every network outcome is an `Ok` outcome.
    pub async fn send(&mut self, msg: &[u8]) -> Result<ReplyOutcome, MllpError> {
        check_payload(msg)?;
        let control_id = if Batch::has_envelope(msg) {
            // A batch taken whole (BatchHandling=Whole): answered by its control id.
            Envelope::of(msg).control_id().to_vec()
        } else {
            let scanned = Message::scan(msg).map_err(|_| MllpError::InvalidMessage {
                reason: "not an HL7 message (no MSH segment)",
            })?;
            scanned.control_id().unwrap_or_default().to_vec()
        };
        self.send_framed(msg, &control_id).await
    }

    /// [`MllpClient::send`] for a message whose control id (MSH-10) the caller has read
    /// already (on the scan it keeps): the reply must answer `control_id`.
    pub async fn send_answering(
        &mut self,
        msg: &[u8],
        control_id: &[u8],
    ) -> Result<ReplyOutcome, MllpError> {
        check_payload(msg)?;
        self.send_framed(msg, control_id).await
    }

    /// Frames `msg`, sends it and reads the reply that answers `control_id`.
    async fn send_framed(
        &mut self,
        msg: &[u8],
        control_id: &[u8],
    ) -> Result<ReplyOutcome, MllpError> {
        self.out.clear();
        encode_frame(&mut self.out, msg);
        self.close_if_idle().await;
        let reused = self.stream.is_some();
        let outcome = match self.exchange(control_id).await {
            Ok(outcome) => outcome,
            Err((reason, text)) if reused && reason == NoReplyReason::ConnectionClosed => {
                tracing::debug!(peer = %self.config.address, %text, "MLLP idle connection was closed by the peer; sending again");
                self.exchange(control_id)
                    .await
                    .unwrap_or_else(|(r, t)| ReplyOutcome::NoReply(r, t))
            }
            Err((reason, text)) => ReplyOutcome::NoReply(reason, text),
        };
        self.last_used = Instant::now();
        if self.config.stay_connected == StayConnected::AfterEachMessage {
            self.close().await;
        }
        Ok(outcome)
    }

    /// Connects if needed, writes the framed message in `out`, reads the reply.
    async fn exchange(
        &mut self,
        control_id: &[u8],
    ) -> Result<ReplyOutcome, (NoReplyReason, String)> {
        if self.stream.is_none() {
            let stream = self
                .connect()
                .await
                .map_err(|e| (NoReplyReason::ConnectFailed, e.to_string()))?;
            self.stream = Some(stream);
            self.decoder.clear();
            self.reader.reset();
        }
        let stream = self.stream.as_mut().expect("connected above");
        if let Err(e) = stream.write_all(&self.out).await {
            self.reset();
            return Err((
                NoReplyReason::ConnectionClosed,
                format!("writing to {}: {e}", self.config.address),
            ));
        }
        self.stats.messages_sent += 1;
        if !self.config.get_reply {
            return Ok(ReplyOutcome::Sent);
        }
        match self.read_frame().await {
            ReadResult::Failed(reason, text) => {
                if reason == NoReplyReason::ResponseTimeout {
                    self.stats.response_timeouts += 1;
                }
                self.reset();
                Err((reason, text))
            }
            ReadResult::Frame(reply) => Ok(self.classify(reply, control_id)),
        }
    }

    fn classify(&mut self, reply: Vec<u8>, control_id: &[u8]) -> ReplyOutcome {
        let scanned = if Batch::has_envelope(&reply) {
            // A batch of ACKs answers the batch whose control id its BHS-12/FHS-12 names.
            let reference = Envelope::of(&reply).reference_id().trim_ascii();
            Ok((!reference.is_empty()).then(|| reference.to_vec()))
        } else {
            Message::scan(&reply)
                .map(|msg| msg.acked_control_id().map(|id| id.trim_ascii().to_vec()))
        };
        let acked = match scanned {
            Ok(acked) => acked,
            Err(_) => {
                tracing::warn!(peer = %self.config.address, "MLLP reply is not an HL7 message; connection reset");
                self.reset();
                return ReplyOutcome::Unparseable(reply);
            }
        };
        // A reply without MSA cannot be checked; the operation decides on it (IRIS `:~`).
        if acked
            .as_deref()
            .is_some_and(|id| id != control_id.trim_ascii())
        {
            self.stats.replies_mismatched += 1;
            tracing::warn!(
                peer = %self.config.address,
                sent = %String::from_utf8_lossy(control_id),
                acked = %String::from_utf8_lossy(acked.as_deref().unwrap_or_default()),
                "MLLP reply answers another message (MSA-2 is not the MSH-10 sent); connection reset"
            );
            self.reset();
            return ReplyOutcome::Mismatched(reply);
        }
        self.stats.replies += 1;
        if self.decoder.buffered_bytes() > 0 {
            tracing::warn!(peer = %self.config.address, bytes = self.decoder.buffered_bytes(), "MLLP peer sent more than one reply; connection reset");
            self.reset();
        }
        ReplyOutcome::Replied(reply)
    }

    /// Reads until a whole frame is buffered or ResponseTimeout expires.
    async fn read_frame(&mut self) -> ReadResult {
        let deadline = self.config.response_timeout.map(|d| Instant::now() + d);
        let peer = self.config.address;
        let Some(stream) = self.stream.as_mut() else {
            return ReadResult::Failed(NoReplyReason::ConnectionClosed, "not connected".into());
        };
        loop {
            match self.decoder.next_frame() {
                Ok(Some(frame)) => return ReadResult::Frame(frame.to_vec()),
                Ok(None) => {}
                Err(e) => return ReadResult::Failed(NoReplyReason::Io, e.to_string()),
            }
            let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if remaining == Some(Duration::ZERO) {
                return ReadResult::Failed(
                    NoReplyReason::ResponseTimeout,
                    format!("no reply from {peer} within ResponseTimeout"),
                );
            }
            let buf = self.decoder.read_buf();
            let fd = C::readiness_fd(stream);
            let spun = self
                .reader
                .spin_read(fd, |b| C::try_read(stream, b), buf)
                .await;
            if let Some(result) = spun {
                match result {
                    Ok(0) => {
                        let text = match self.decoder.finish() {
                            Ok(()) => format!("{peer} closed the connection before replying"),
                            Err(e) => e.to_string(),
                        };
                        return ReadResult::Failed(NoReplyReason::ConnectionClosed, text);
                    }
                    Ok(n) => {
                        self.decoder.commit(n);
                        continue;
                    }
                    Err(e) => {
                        return ReadResult::Failed(
                            NoReplyReason::ConnectionClosed,
                            format!("reading from {peer}: {e}"),
                        );
                    }
                }
            }
            let buf = self.decoder.read_buf();
            let read = async { Some(stream.read(buf).await) };
            let timer = async {
                match remaining {
                    Some(d) => {
                        Timer::new(d).await;
                        None
                    }
                    None => future::pending().await,
                }
            };
            let read = read.or(timer).await;
            self.reader.after_reactor_read();
            match read {
                None => {
                    return ReadResult::Failed(
                        NoReplyReason::ResponseTimeout,
                        format!("no reply from {peer} within ResponseTimeout"),
                    );
                }
                Some(Ok(0)) => {
                    let text = match self.decoder.finish() {
                        Ok(()) => format!("{peer} closed the connection before replying"),
                        Err(e) => e.to_string(),
                    };
                    return ReadResult::Failed(NoReplyReason::ConnectionClosed, text);
                }
                Some(Ok(n)) => self.decoder.commit(n),
                Some(Err(e)) => {
                    return ReadResult::Failed(
                        NoReplyReason::ConnectionClosed,
                        format!("reading from {peer}: {e}"),
                    );
                }
            }
        }
    }

    async fn connect(&mut self) -> Result<C::Stream, MllpError> {
        let addr = self.config.address;
        let mut backoff = self.config.reconnect_backoff_initial;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            match self
                .connector
                .connect(addr, self.config.connect_timeout)
                .await
            {
                Ok(stream) => {
                    self.stats.connects += 1;
                    return Ok(stream);
                }
                Err(e) => {
                    self.stats.connect_failures += 1;
                    tracing::debug!(%addr, attempt, error = %e, "MLLP connect failed");
                    if attempt > self.config.reconnect_retry {
                        return Err(if e.kind() == io::ErrorKind::TimedOut {
                            MllpError::ConnectTimeout {
                                addr,
                                timeout_ms: self.config.connect_timeout.as_millis() as u64,
                            }
                        } else {
                            MllpError::Connect {
                                addr,
                                attempts: attempt,
                                source: e,
                            }
                        });
                    }
                    Timer::new(backoff).await;
                    backoff = (backoff * 2).min(self.config.reconnect_backoff_max);
                }
            }
        }
    }

    /// Drops the connection without ceremony (bad or late reply): whatever the peer sends
    /// on it later is never read.
    fn reset(&mut self) {
        if self.stream.take().is_some() {
            self.stats.resets += 1;
        }
        self.decoder.clear();
    }

    /// Closes the connection if StayConnected's idle time has passed since the last send.
    pub async fn close_if_idle(&mut self) {
        if let StayConnected::Idle(idle) = self.config.stay_connected
            && self.stream.is_some()
            && self.last_used.elapsed() >= idle
        {
            self.close().await;
        }
    }

    /// Closes the connection (a later send reconnects).
    pub async fn close(&mut self) {
        if let Some(mut stream) = self.stream.take() {
            let _ = stream.close().await;
        }
        self.decoder.clear();
    }
}
