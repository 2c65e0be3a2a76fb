//! The flood: extra connections that take a slot on the target and never finish a message
//! (idle, slow-loris, or one large unfinished frame), opened before a run's legitimate load
//! and held until it ends, so the run's report shows what a legitimate sender sees while
//! the target is flooded (its ACK latency and errors) beside what became of the flood.
//!
//! One plain thread owns every flood socket (non-blocking, watched with one `poll(2)` per
//! [`FLOOD_POLL`]), apart from the load's executors. Connection `i` is bound, before its
//! connect, to source address number `i mod K` of `K` sources (127.0.0.2 ..= 127.0.0.254,
//! then 127.0.1.1 ..= 127.0.1.254 and so on through 127.0.0.0/8, see [`source_ip`]) when
//! the target is an IPv4 loopback address, so that a per-peer limit does not refuse the
//! whole flood at once, a flood can come from as many addresses as the target's
//! MaxConnections, and the legitimate senders (from 127.0.0.1) are a peer of their own.
//!
//! Connects are paced at `open_rate` a second: a burst overflows the target's accept
//! queue, and a handshake the client saw complete may then not exist on the target yet
//! (its last ACK dropped) or ever (a SYN cookie): reported held, it would hold nothing.
//! Every flood socket sends TCP keepalive probes after [`KEEPALIVE_IDLE`] of silence, so
//! the target soon either completes such a connection (and its own limits then apply) or
//! resets it (counted among the refused or cut, and in `resets`); the load starts `settle`
//! after the last handshake, once the target has had time to do so. Probes carry no data:
//! an idle connection stays idle for the target's application.
//!
//! Each flood connection ends in exactly one of: `connect_failed` (connect error, no
//! handshake within the run's `--timeout`, or never started: the run was stopped first),
//! `refused_at_once` (closed or reset by the target within [`REFUSED_WITHIN`] of its
//! handshake), `cut` (closed or reset later) or `held` (still open at the end, when every
//! flood socket is closed). So
//! `requested == connect_failed + refused_at_once + cut + held`.
//!
//! Limits: at most [`FLOOD_CONNECTIONS_MAX`] connections and [`FLOOD_SOURCES_MAX`] source
//! addresses; the process's RLIMIT_NOFILE soft limit is raised to what the flood needs (up
//! to the hard limit), and a flood the hard limit cannot hold is refused before it starts.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;
use socket2::{Domain, Protocol, SockAddr, Socket, TcpKeepalive, Type};

use crate::error::LoadgenError;

/// Most flood connections one run opens.
pub const FLOOD_CONNECTIONS_MAX: usize = 60_000;
/// Most source addresses (see [`source_ip`]): 65,536, 127.0.0.2 ..= 127.1.2.5.
pub const FLOOD_SOURCES_MAX: usize = 1 << 16;
/// Usable host numbers in each 127.x.y.0/24 of a flood's sources: .1 ..= .254 (no .0 nor
/// .255, which look like network and broadcast addresses to a reader of the target's log).
const SOURCE_HOSTS_PER_BLOCK: usize = 254;
/// Largest unfinished frame of a `partial` flood (16 MiB).
pub const FLOOD_FRAME_BYTES_MAX: usize = 16 << 20;
/// A flood connection closed by the target within this long of its handshake was refused
/// (the target turned it away at once); later, it was cut.
pub const REFUSED_WITHIN: Duration = Duration::from_secs(1);
/// How long the flood thread waits in `poll(2)` before it looks at its stop flag.
pub const FLOOD_POLL: Duration = Duration::from_millis(20);
/// File descriptors kept free beside the flood and the legitimate connections (executors'
/// rings and event fds, the report files, the standard streams).
pub const DESCRIPTORS_SPARE: u64 = 256;
/// Silence after which a flood socket sends TCP keepalive probes (then one a second, two
/// unanswered ones close it): a connection the target does not know is reset by it.
pub const KEEPALIVE_IDLE: Duration = Duration::from_secs(1);
/// Connects a second when the options give none.
pub const OPEN_RATE_DEFAULT: u32 = 1000;
/// Time the flood waits, once every handshake is done, before the load starts: past the
/// first keepalive probes and the target's first SYN-ACK retransmission (1 s), and long
/// enough for a loaded target to take its accept queue.
pub const SETTLE_DEFAULT: Duration = Duration::from_secs(3);
/// Bytes read at once from a flood connection the target answers.
const READ_CHUNK: usize = 4096;

/// What each flood connection does once connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum FloodKind {
    /// Connect and say nothing.
    Idle,
    /// Start an MLLP frame, then send one more byte of it every `interval`, never ending it.
    Slowloris,
    /// Send `frame_bytes` of one MLLP frame at once and never end it.
    Partial,
}

impl FloodKind {
    /// The kind as the command line spells it.
    pub fn name(self) -> &'static str {
        match self {
            FloodKind::Idle => "idle",
            FloodKind::Slowloris => "slowloris",
            FloodKind::Partial => "partial",
        }
    }
}

/// A flood, as [`crate::SendOptions::flood`] asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FloodOptions {
    /// Flood connections, 1..=[`FLOOD_CONNECTIONS_MAX`].
    pub connections: usize,
    /// What they do.
    pub kind: FloodKind,
    /// Source addresses [`source_ip`]`(0 .. sources)`, 1..=[`FLOOD_SOURCES_MAX`];
    /// must be 1 when the target is not an IPv4 loopback address (no binding then).
    pub sources: usize,
    /// Slow-loris: time between two bytes. Default 1 s.
    pub interval: Duration,
    /// Partial: bytes of the unfinished frame, start block included. Default 64 KiB.
    pub frame_bytes: usize,
    /// Connects started a second; 0: all at once. Default [`OPEN_RATE_DEFAULT`].
    pub open_rate: u32,
    /// Time between the last handshake and the load's start, for the target to complete or
    /// reset the handshakes it had not taken yet. Default [`SETTLE_DEFAULT`].
    pub settle: Duration,
}

impl Default for FloodOptions {
    fn default() -> Self {
        Self {
            connections: 1,
            kind: FloodKind::Idle,
            sources: 1,
            interval: Duration::from_secs(1),
            frame_bytes: 64 << 10,
            open_rate: OPEN_RATE_DEFAULT,
            settle: SETTLE_DEFAULT,
        }
    }
}

/// Times flood connections were held before the target cut them, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct HeldMs {
    /// Shortest.
    pub min: u64,
    /// Median.
    pub p50: u64,
    /// Longest.
    pub max: u64,
}

impl HeldMs {
    fn of(mut ms: Vec<u64>) -> Self {
        ms.sort_unstable();
        match (ms.first(), ms.last()) {
            (Some(&min), Some(&max)) => HeldMs {
                min,
                p50: ms[ms.len() / 2],
                max,
            },
            _ => HeldMs::default(),
        }
    }
}

/// What became of the flood (see the module header for the accounting).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FloodReport {
    /// What the flood connections did.
    pub kind: FloodKind,
    /// Flood connections asked for.
    pub requested: u64,
    /// Source addresses they came from.
    pub sources: u64,
    /// Handshakes completed.
    pub connected: u64,
    /// Connect errors, connects that did not complete within `--timeout`, and connects
    /// never started because the run was stopped first.
    pub connect_failed: u64,
    /// Closed or reset by the target within [`REFUSED_WITHIN`] of the handshake.
    pub refused_at_once: u64,
    /// Closed or reset by the target later.
    pub cut: u64,
    /// Still open when the run ended.
    pub held: u64,
    /// Of the refused and cut, those ended by a reset rather than an orderly close (a
    /// phantom handshake answering a keepalive probe among them).
    pub resets: u64,
    /// Flood connections on which the target sent something (a NAK, an error).
    pub answered: u64,
    /// Bytes the flood wrote.
    pub bytes_sent: u64,
    /// Time from the first connect until every connect had completed or failed.
    pub setup_s: f64,
    /// How long the `cut` connections had been held.
    pub cut_after_ms: HeldMs,
    /// The first connect error, if any (e.g. too many open files).
    pub first_error: Option<String>,
}

impl FloodReport {
    /// The table rows of the flood, one `name value` per line, as the other reports print.
    pub fn table_rows(&self) -> Vec<(&'static str, String)> {
        let c = &self.cut_after_ms;
        let mut rows = vec![
            (
                "flood",
                format!(
                    "{} {} connections from {} source(s), set up in {:.3} s",
                    self.requested,
                    self.kind.name(),
                    self.sources,
                    self.setup_s
                ),
            ),
            (
                "flood outcome",
                format!(
                    "connected {} connect-failed {} refused-at-once {} cut {} held {} resets {} answered {}",
                    self.connected,
                    self.connect_failed,
                    self.refused_at_once,
                    self.cut,
                    self.held,
                    self.resets,
                    self.answered
                ),
            ),
            (
                "flood cut after",
                format!("min {} p50 {} max {} (ms)", c.min, c.p50, c.max),
            ),
            ("flood bytes", self.bytes_sent.to_string()),
        ];
        if let Some(e) = &self.first_error {
            rows.push(("flood error", e.clone()));
        }
        rows
    }
}

/// A flood in place; [`FloodHandle::finish`] closes it and returns its report.
#[derive(Debug)]
pub struct FloodHandle {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<FloodReport>>,
}

impl FloodHandle {
    /// Closes every flood socket and returns the report.
    pub fn finish(mut self) -> Result<FloodReport, LoadgenError> {
        self.stop.store(true, Ordering::Relaxed);
        let thread = self
            .thread
            .take()
            .ok_or_else(|| flood_thread_error("joined"))?;
        thread.join().map_err(|_| flood_thread_error("panicked"))
    }
}

impl Drop for FloodHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn flood_thread_error(what: &str) -> LoadgenError {
    LoadgenError::Executor {
        thread: 0,
        reason: format!("the flood thread {what}"),
    }
}

/// Checks `opts` against the target, raises the descriptor limit for the flood and
/// `legitimate` other connections, opens the flood and returns once every connect has
/// completed or failed (within `connect_timeout`) and `opts.settle` has passed, or
/// `external` is set.
pub fn start(
    opts: &FloodOptions,
    to: SocketAddr,
    connect_timeout: Duration,
    legitimate: usize,
    external: Option<Arc<AtomicBool>>,
) -> Result<FloodHandle, LoadgenError> {
    let sources = check(opts, to)?;
    raise_descriptor_limit(opts.connections as u64 + legitimate as u64 + DESCRIPTORS_SPARE)?;
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = mpsc::channel();
    let flood = Flood::new(opts, to, sources, connect_timeout);
    let stops = [Some(stop.clone()), external];
    let thread = std::thread::Builder::new()
        .name("loadgen-flood".into())
        .spawn(move || flood.run(&stops, ready_tx))
        .map_err(|e| flood_thread_error(&format!("cannot start: {e}")))?;
    let handle = FloodHandle {
        stop,
        thread: Some(thread),
    };
    // An error means the thread ended before it was ready: finish reports why.
    let _ = ready_rx.recv();
    Ok(handle)
}

/// Validates the options; returns the source addresses to bind (none: no binding).
fn check(opts: &FloodOptions, to: SocketAddr) -> Result<Vec<IpAddr>, LoadgenError> {
    let bad = |option, reason: String| Err(LoadgenError::BadOption { option, reason });
    if opts.connections == 0 || opts.connections > FLOOD_CONNECTIONS_MAX {
        return bad(
            "--flood",
            format!(
                "{} is not between 1 and {FLOOD_CONNECTIONS_MAX}",
                opts.connections
            ),
        );
    }
    if opts.sources == 0 || opts.sources > FLOOD_SOURCES_MAX {
        return bad(
            "--flood-sources",
            format!("{} is not between 1 and {FLOOD_SOURCES_MAX}", opts.sources),
        );
    }
    if opts.kind == FloodKind::Partial && !(2..=FLOOD_FRAME_BYTES_MAX).contains(&opts.frame_bytes) {
        return bad(
            "--flood-bytes",
            format!(
                "{} is not between 2 and {FLOOD_FRAME_BYTES_MAX}",
                opts.frame_bytes
            ),
        );
    }
    if opts.kind == FloodKind::Slowloris && opts.interval.is_zero() {
        return bad("--flood-interval", "must be longer than zero".into());
    }
    match to.ip() {
        IpAddr::V4(ip) if ip.is_loopback() => Ok((0..opts.sources)
            .map(|k| IpAddr::V4(source_ip(k)))
            .collect()),
        _ if opts.sources == 1 => Ok(Vec::new()),
        _ => bad(
            "--flood-sources",
            format!("{to} is not an IPv4 loopback address: the flood cannot spread its sources"),
        ),
    }
}

/// Source address number `k` of a flood: the loopback addresses whose last byte is 1 ..=
/// 254, in order, from 127.0.0.2 (127.0.0.1 is the legitimate senders'). Every one of
/// 127.0.0.0/8 is local on Linux without configuration.
pub fn source_ip(k: usize) -> Ipv4Addr {
    // Host number j counts from 127.0.0.1 (j = 0), which the flood leaves out.
    let j = k + 1;
    let block = j / SOURCE_HOSTS_PER_BLOCK;
    let host = (j % SOURCE_HOSTS_PER_BLOCK + 1) as u8;
    Ipv4Addr::new(127, (block >> 8) as u8, block as u8, host)
}

/// Raises the RLIMIT_NOFILE soft limit to at least `needed` (up to the hard limit).
fn raise_descriptor_limit(needed: u64) -> Result<(), LoadgenError> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit for the call's duration.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(descriptor_error(
            needed,
            format!("getrlimit: {}", std::io::Error::last_os_error()),
        ));
    }
    if limit.rlim_cur >= needed {
        return Ok(());
    }
    if limit.rlim_max < needed {
        return Err(descriptor_error(
            needed,
            format!(
                "the hard limit (RLIMIT_NOFILE) is {}; raise it (`ulimit -Hn`, as root) or flood fewer",
                limit.rlim_max
            ),
        ));
    }
    limit.rlim_cur = needed;
    // SAFETY: `limit` is a valid rlimit read by the call only.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        return Err(descriptor_error(
            needed,
            format!("setrlimit: {}", std::io::Error::last_os_error()),
        ));
    }
    Ok(())
}

fn descriptor_error(needed: u64, reason: String) -> LoadgenError {
    LoadgenError::BadOption {
        option: "--flood",
        reason: format!("the flood and the load need {needed} file descriptors: {reason}"),
    }
}

/// Where one flood connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Connect in progress, since this instant.
    Connecting,
    /// Handshake done at `since`.
    Open,
}

/// One flood connection.
#[derive(Debug)]
struct Conn {
    socket: Socket,
    state: State,
    /// When the connect was started, then when the handshake was seen.
    since: Instant,
    /// Bytes of the script written.
    written: usize,
    /// The target sent something on it.
    answered: bool,
    /// It ended with a reset.
    reset: bool,
}

/// The flood thread's state.
struct Flood {
    kind: FloodKind,
    requested: usize,
    to: SocketAddr,
    sources: Vec<IpAddr>,
    connect_timeout: Duration,
    interval: Duration,
    open_rate: u32,
    settle: Duration,
    /// Partial: the whole unfinished frame. Slow-loris: the start block, then the bytes
    /// sent one at a time, round and round (never an end block).
    script: Vec<u8>,
    conns: Vec<Conn>,
    fds: Vec<libc::pollfd>,
    report: FloodReport,
    cut_after: Vec<u64>,
}

/// The bytes of a flood frame: a plausible MSH, then NTE segments (never FS).
fn script(kind: FloodKind, frame_bytes: usize) -> Vec<u8> {
    let mut s = b"\x0bMSH|^~\\&|FLOOD|FLOOD|HIE|HIE|20260101000000||ADT^A01|FLOOD|P|2.5\r".to_vec();
    if kind == FloodKind::Partial {
        while s.len() < frame_bytes {
            s.extend_from_slice(b"NTE|1||");
            s.resize(s.len() + 120, b'x');
            s.push(b'\r');
        }
        s.truncate(frame_bytes);
    }
    s
}

impl Flood {
    fn new(opts: &FloodOptions, to: SocketAddr, sources: Vec<IpAddr>, timeout: Duration) -> Self {
        Flood {
            kind: opts.kind,
            requested: opts.connections,
            to,
            connect_timeout: timeout,
            interval: opts.interval,
            open_rate: opts.open_rate,
            settle: opts.settle,
            script: script(opts.kind, opts.frame_bytes),
            conns: Vec::with_capacity(opts.connections),
            fds: Vec::with_capacity(opts.connections),
            report: FloodReport {
                kind: opts.kind,
                requested: opts.connections as u64,
                sources: opts.sources as u64,
                connected: 0,
                connect_failed: 0,
                refused_at_once: 0,
                cut: 0,
                held: 0,
                resets: 0,
                answered: 0,
                bytes_sent: 0,
                setup_s: 0.0,
                cut_after_ms: HeldMs::default(),
                first_error: None,
            },
            cut_after: Vec::new(),
            sources,
        }
    }

    /// Opens the flood, says when it is in place, holds it until a stop flag is set.
    fn run(mut self, stops: &[Option<Arc<AtomicBool>>], ready: mpsc::Sender<()>) -> FloodReport {
        let stopping = || stops.iter().flatten().any(|s| s.load(Ordering::Relaxed));
        let setup_start = Instant::now();
        let mut opened = 0;
        let mut set_up: Option<Instant> = None;
        let mut ready = Some(ready);
        let mut next_drip = Instant::now() + self.interval;
        while !stopping() {
            let due = match self.open_rate {
                0 => self.requested,
                rate => (setup_start.elapsed().as_secs_f64() * f64::from(rate)) as usize + 1,
            };
            while opened < due.min(self.requested) {
                self.open(opened);
                opened += 1;
            }
            let connecting = self.conns.iter().any(|c| c.state == State::Connecting);
            if opened == self.requested && !connecting && set_up.is_none() {
                self.report.setup_s = setup_start.elapsed().as_secs_f64();
                set_up = Some(Instant::now());
            }
            if set_up.is_some_and(|at| at.elapsed() >= self.settle)
                && let Some(tx) = ready.take()
            {
                let _ = tx.send(());
            }
            let now = Instant::now();
            let wait = if self.kind == FloodKind::Slowloris {
                FLOOD_POLL.min(next_drip.saturating_duration_since(now))
            } else {
                FLOOD_POLL
            };
            self.poll(wait);
            self.expire_connects();
            if self.kind == FloodKind::Slowloris && Instant::now() >= next_drip {
                self.drip();
                next_drip += self.interval;
            }
        }
        if set_up.is_none() {
            self.report.setup_s = setup_start.elapsed().as_secs_f64();
        }
        // Stopped before every connect was started: those never started failed too.
        self.report.connect_failed += (self.requested - opened) as u64;
        self.finish()
    }

    /// Starts connection `i`'s connect.
    fn open(&mut self, i: usize) {
        let source = (!self.sources.is_empty()).then(|| self.sources[i % self.sources.len()]);
        match connect(self.to, source) {
            Ok((socket, done)) => {
                self.conns.push(Conn {
                    socket,
                    state: State::Connecting,
                    since: Instant::now(),
                    written: 0,
                    answered: false,
                    reset: false,
                });
                if done {
                    let last = self.conns.len() - 1;
                    self.connected(last);
                }
            }
            Err(e) => self.connect_failed(e),
        }
    }

    fn connect_failed(&mut self, e: std::io::Error) {
        self.report.connect_failed += 1;
        self.report.first_error.get_or_insert_with(|| e.to_string());
    }

    /// Waits up to `wait` for events on the flood's sockets and handles them.
    fn poll(&mut self, wait: Duration) {
        self.fds.clear();
        for c in &self.conns {
            let events = match c.state {
                State::Connecting => libc::POLLOUT,
                State::Open if c.written < self.script.len() && self.kind == FloodKind::Partial => {
                    libc::POLLIN | libc::POLLOUT
                }
                State::Open => libc::POLLIN,
            };
            self.fds.push(libc::pollfd {
                fd: c.socket.as_raw_fd(),
                events,
                revents: 0,
            });
        }
        let timeout = wait.as_millis().min(i32::MAX as u128) as libc::c_int;
        // SAFETY: `fds` is a valid array of `fds.len()` pollfd structures that outlives the
        // call, and every fd in it is owned by a live socket of `self.conns`.
        let n = unsafe {
            libc::poll(
                self.fds.as_mut_ptr(),
                self.fds.len() as libc::nfds_t,
                timeout,
            )
        };
        if n <= 0 {
            // Nothing happened within `wait`, or EINTR: look again next round.
            return;
        }
        // Backwards, so that removing connection `i` (swap_remove) leaves the ones still to
        // visit where they were.
        for i in (0..self.fds.len()).rev() {
            let revents = self.fds[i].revents;
            if revents != 0 {
                self.event(i, revents);
            }
        }
    }

    fn event(&mut self, i: usize, revents: libc::c_short) {
        if self.conns[i].state == State::Connecting {
            match self.conns[i].socket.take_error() {
                Ok(None) if self.conns[i].socket.peer_addr().is_ok() => self.connected(i),
                Ok(None) => {}
                Ok(Some(e)) | Err(e) => {
                    self.conns.swap_remove(i);
                    self.connect_failed(e);
                }
            }
            return;
        }
        if revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 && !self.read(i) {
            self.closed(i);
            return;
        }
        if revents & libc::POLLOUT != 0 && !self.write(i, self.script.len()) {
            self.closed(i);
        }
    }

    /// A handshake completed: the connection starts its script.
    fn connected(&mut self, i: usize) {
        self.report.connected += 1;
        let c = &mut self.conns[i];
        c.state = State::Open;
        c.since = Instant::now();
        let first = match self.kind {
            FloodKind::Idle => 0,
            FloodKind::Slowloris => 1,
            FloodKind::Partial => self.script.len(),
        };
        if !self.write(i, first) {
            self.closed(i);
        }
    }

    /// Connects that have not completed within the timeout fail.
    fn expire_connects(&mut self) {
        let timeout = self.connect_timeout;
        let mut i = 0;
        while i < self.conns.len() {
            let c = &self.conns[i];
            if c.state == State::Connecting && c.since.elapsed() >= timeout {
                self.conns.swap_remove(i);
                self.connect_failed(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no handshake within {timeout:?}"),
                ));
            } else {
                i += 1;
            }
        }
    }

    /// Slow-loris: one more byte on every open connection.
    fn drip(&mut self) {
        for i in (0..self.conns.len()).rev() {
            if self.conns[i].state == State::Open {
                let upto = self.conns[i].written + 1;
                if !self.write(i, upto) {
                    self.closed(i);
                }
            }
        }
    }

    /// Writes connection `i`'s script up to byte `upto` (slow-loris wraps round the
    /// message after the start block); false when the connection failed.
    fn write(&mut self, i: usize, upto: usize) -> bool {
        let c = &mut self.conns[i];
        while c.written < upto {
            let at = if c.written < self.script.len() {
                c.written
            } else {
                1 + (c.written - 1) % (self.script.len() - 1)
            };
            let end = self.script.len().min(at + (upto - c.written));
            match c.socket.send(&self.script[at..end]) {
                Ok(n) => {
                    c.written += n;
                    self.report.bytes_sent += n as u64;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    c.reset = matches!(
                        e.kind(),
                        std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
                    );
                    return false;
                }
            }
        }
        true
    }

    /// Reads what the target sent; false when it closed or reset the connection.
    fn read(&mut self, i: usize) -> bool {
        let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); READ_CHUNK];
        loop {
            match self.conns[i].socket.recv(&mut buf) {
                Ok(0) => return false,
                Ok(_) => self.conns[i].answered = true,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.conns[i].reset = e.kind() == std::io::ErrorKind::ConnectionReset;
                    return false;
                }
            }
        }
    }

    /// The target closed or reset open connection `i`.
    fn closed(&mut self, i: usize) {
        let c = self.conns.swap_remove(i);
        let held = c.since.elapsed();
        self.report.answered += u64::from(c.answered);
        self.report.resets += u64::from(c.reset);
        if held < REFUSED_WITHIN {
            self.report.refused_at_once += 1;
        } else {
            self.report.cut += 1;
            self.cut_after.push(held.as_millis() as u64);
        }
    }

    /// Counts what is left and closes every socket.
    fn finish(mut self) -> FloodReport {
        for c in self.conns.drain(..) {
            match c.state {
                State::Open => {
                    self.report.held += 1;
                    self.report.answered += u64::from(c.answered);
                }
                State::Connecting => self.report.connect_failed += 1,
            }
        }
        self.report.cut_after_ms = HeldMs::of(std::mem::take(&mut self.cut_after));
        self.report
    }
}

/// Starts a non-blocking connect to `to` from `source`; true when it completed at once.
fn connect(to: SocketAddr, source: Option<IpAddr>) -> std::io::Result<(Socket, bool)> {
    let socket = Socket::new(Domain::for_address(to), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    socket.set_tcp_nodelay(true)?;
    socket.set_tcp_keepalive(
        &TcpKeepalive::new()
            .with_time(KEEPALIVE_IDLE)
            .with_interval(Duration::from_secs(1))
            .with_retries(2),
    )?;
    if let Some(ip) = source {
        socket.bind(&SockAddr::from(SocketAddr::new(ip, 0)))?;
    }
    match socket.connect(&SockAddr::from(to)) {
        Ok(()) => Ok((socket, true)),
        Err(e)
            if e.raw_os_error() == Some(libc::EINPROGRESS)
                || e.kind() == std::io::ErrorKind::WouldBlock =>
        {
            Ok((socket, false))
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(kind: FloodKind) -> FloodOptions {
        FloodOptions {
            connections: 4,
            kind,
            ..FloodOptions::default()
        }
    }

    #[test]
    fn sources_spread_over_loopback_from_127_0_0_2() {
        let to: SocketAddr = "127.0.0.1:2575".parse().unwrap();
        let o = FloodOptions {
            sources: 3,
            ..opts(FloodKind::Idle)
        };
        let ips: Vec<String> = check(&o, to)
            .unwrap()
            .iter()
            .map(|i| i.to_string())
            .collect();
        assert_eq!(ips, ["127.0.0.2", "127.0.0.3", "127.0.0.4"]);
        let many = FloodOptions {
            sources: 4096,
            ..opts(FloodKind::Idle)
        };
        let ips = check(&many, to).unwrap();
        let distinct: std::collections::HashSet<_> = ips.iter().collect();
        assert_eq!(distinct.len(), 4096, "as many distinct addresses as asked");
        assert!(
            ips.iter()
                .all(|ip| ip.is_loopback() && ip.to_string() != "127.0.0.1")
        );
        assert_eq!(source_ip(252).to_string(), "127.0.0.254");
        assert_eq!(source_ip(253).to_string(), "127.0.1.1");
        assert_eq!(source_ip(4095).to_string(), "127.0.16.33");
        assert_eq!(source_ip(FLOOD_SOURCES_MAX - 1).to_string(), "127.1.2.5");
        let v6: SocketAddr = "[::1]:2575".parse().unwrap();
        assert!(check(&o, v6).is_err());
        assert!(check(&opts(FloodKind::Idle), v6).unwrap().is_empty());
    }

    #[test]
    fn nonsense_options_are_refused() {
        let to: SocketAddr = "127.0.0.1:2575".parse().unwrap();
        for o in [
            FloodOptions {
                connections: 0,
                ..opts(FloodKind::Idle)
            },
            FloodOptions {
                sources: FLOOD_SOURCES_MAX + 1,
                ..opts(FloodKind::Idle)
            },
            FloodOptions {
                frame_bytes: 1,
                ..opts(FloodKind::Partial)
            },
            FloodOptions {
                interval: Duration::ZERO,
                ..opts(FloodKind::Slowloris)
            },
        ] {
            assert!(
                matches!(check(&o, to), Err(LoadgenError::BadOption { .. })),
                "{o:?}"
            );
        }
    }

    #[test]
    fn flood_frames_start_a_block_and_never_end_it() {
        let partial = script(FloodKind::Partial, 10_000);
        assert_eq!(partial.len(), 10_000);
        assert_eq!(partial[0], 0x0b);
        assert!(!partial[1..].contains(&0x0b) && !partial.contains(&0x1c));
        let drip = script(FloodKind::Slowloris, 0);
        assert_eq!(drip[0], 0x0b);
        assert!(!drip.contains(&0x1c));
    }

    #[test]
    fn a_limit_beyond_the_hard_limit_is_refused_with_the_numbers() {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `limit` is a valid, writable rlimit for the call's duration.
        assert_eq!(
            unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
            0
        );
        if limit.rlim_max == libc::RLIM_INFINITY {
            return;
        }
        let err = raise_descriptor_limit(limit.rlim_max + 1)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--flood") && err.contains("hard limit"),
            "{err}"
        );
    }

    #[test]
    fn cut_times_summarise() {
        assert_eq!(
            HeldMs::of(vec![30, 10, 20]),
            HeldMs {
                min: 10,
                p50: 20,
                max: 30
            }
        );
        assert_eq!(HeldMs::of(Vec::new()), HeldMs::default());
    }
}
