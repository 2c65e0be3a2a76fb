//! The sender: connections to an MLLP server, closed loop (one message in flight, the way
//! HL7 senders behave) or open loop at a fixed rate (pipelined, latency measured from each
//! message's intended send time, which corrects coordinated omission as wrk2 does).
//!
//! Each connection owns a copy of the prepared frames and overwrites MSH-10 and PID-3.1 in
//! place before each write, so sending costs one `memcpy`-free write per message. Global
//! connection `c` of `C` runs on thread `c % threads`; with `--messages N` it sends
//! `N / C` messages (plus one if `c < N % C`), so totals are exact. In open loop at rate
//! `R`, message `k` of connection `c` is due at `(c + k·C) / R` seconds after the start,
//! which spreads the connections' sends evenly.
//!
//! Outcomes (see [`crate::stats`] for the accounting invariant): a write that fails is
//! retried on a new connection and not counted as sent; a message that was written and
//! then saw its connection time out or close is counted once, as `timeouts` or
//! `unanswered`, and the sender moves on after reconnecting. After
//! [`CONNECT_ATTEMPTS_MAX`] consecutive failed connects a connection gives up.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use futures_lite::io::AsyncWriteExt;
use glommio::net::TcpStream;
use glommio::sync::Semaphore;
use hie_net::mllp::frame::FrameDecoder;
use hie_net::{BusyReader, TryRead};

use crate::ids::{CONTROL_ID_LEN, ControlId, PATIENT_ID_LEN, write_patient};
use crate::runner::ThreadCtx;
use crate::source::Prepared;
use crate::stats::{ack_code_index, record};

/// Consecutive failed connects after which a connection gives up.
pub const CONNECT_ATTEMPTS_MAX: u32 = 20;
/// Pause between failed connects.
pub const CONNECT_BACKOFF: Duration = Duration::from_millis(50);
/// Largest ACK accepted.
pub const ACK_BYTES_MAX: usize = 1 << 20;

/// Everything a sender thread needs, shared read-only by all threads.
#[derive(Debug)]
pub struct SendPlan {
    /// Where to connect.
    pub to: SocketAddr,
    /// Connections in total.
    pub connections: usize,
    /// Executor threads.
    pub threads: usize,
    /// Total message budget.
    pub messages: Option<u64>,
    /// Stop sending after this long.
    pub duration: Option<Duration>,
    /// Open loop rate (messages per second in total).
    pub rate: Option<f64>,
    /// Open loop: most in flight per connection.
    pub max_in_flight: usize,
    /// Latency leaves out messages meant to be sent before this (µs since the start).
    pub warmup_us: u64,
    /// ACK timeout.
    pub timeout: Duration,
    /// The messages to send.
    pub corpus: Vec<Prepared>,
    /// Patient population.
    pub patients: u32,
    /// e2e: record ACKed messages in the thread's tracks, and not the ACK latency.
    pub e2e: bool,
    /// Closed loop: how long to busy-poll for an ACK before parking.
    pub busy_poll: Duration,
}

impl SendPlan {
    fn budget(&self, conn: usize) -> Option<u64> {
        self.messages.map(|n| {
            let c = self.connections as u64;
            n / c + u64::from((conn as u64) < n % c)
        })
    }
}

/// Runs this thread's share of the connections until they are done.
pub async fn run_thread(ctx: Rc<ThreadCtx>, plan: Arc<SendPlan>) {
    let tasks: Vec<_> = (ctx.thread..plan.connections)
        .step_by(plan.threads)
        .map(|conn| {
            let state = Conn::new(&plan, conn);
            let (ctx, plan) = (ctx.clone(), plan.clone());
            glommio::spawn_local(async move {
                if plan.rate.is_some() {
                    open_loop(ctx, plan, state).await;
                } else {
                    closed_loop(ctx, plan, state).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await;
    }
}

/// One connection's messages and position.
#[derive(Debug)]
struct Conn {
    index: u16,
    frames: Vec<Prepared>,
    budget: Option<u64>,
    /// Next sequence number to send.
    seq: u32,
    rng: u64,
    /// Nanoseconds between this connection's sends, and its first due time (open loop).
    interval_ns: f64,
    offset_ns: f64,
    connect_failures: u32,
}

impl Conn {
    fn new(plan: &SendPlan, conn: usize) -> Conn {
        let (interval_ns, offset_ns) = match plan.rate {
            Some(rate) => (
                plan.connections as f64 * 1e9 / rate,
                conn as f64 * 1e9 / rate,
            ),
            None => (0.0, 0.0),
        };
        let rotate = conn % plan.corpus.len();
        let mut frames = plan.corpus.clone();
        frames.rotate_left(rotate);
        Conn {
            index: conn as u16,
            frames,
            budget: plan.budget(conn),
            seq: 0,
            rng: 0x9E37_79B9_7F4A_7C15 ^ (conn as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9),
            interval_ns,
            offset_ns,
            connect_failures: 0,
        }
    }

    /// Due time of message `seq` (open loop), ns since the start.
    fn due_ns(&self, seq: u32) -> u64 {
        (self.offset_ns + self.interval_ns * f64::from(seq)) as u64
    }

    /// Whether message `self.seq` should be sent (budget, duration, stop).
    fn more(&self, ctx: &ThreadCtx, plan: &SendPlan, at_ns: u64) -> bool {
        if ctx.stopping()
            || self.budget.is_some_and(|b| u64::from(self.seq) >= b)
            || self.seq == u32::MAX
        {
            return false;
        }
        plan.duration.is_none_or(|d| at_ns < d.as_nanos() as u64)
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64*: fast, and good enough to pick patients.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Patient for the next message: patients are partitioned over connections so that
    /// one patient's messages are all sent, in order, on one connection.
    fn pick_patient(&mut self, patients: u32, connections: usize) -> u32 {
        let (c, n) = (u64::from(self.index), connections as u64);
        let p = u64::from(patients.max(1));
        if p <= c {
            return (c % p) as u32;
        }
        let owned = (p - c).div_ceil(n);
        (c + n * (self.next_random() % owned)) as u32
    }

    /// Stamps message `self.seq` (due at `due_ns`) into its frame; returns the frame's index.
    fn stamp(&mut self, plan: &SendPlan, due_ns: u64) -> usize {
        let i = self.seq as usize % self.frames.len();
        let patient = self.pick_patient(plan.patients, plan.connections);
        let id = ControlId {
            conn: self.index,
            seq: self.seq,
            t_us: (due_ns / 1000) as u32,
        };
        let f = &mut self.frames[i];
        id.write(&mut f.frame[f.control_id_at..f.control_id_at + CONTROL_ID_LEN]);
        if let Some(at) = f.patient_at {
            write_patient(&mut f.frame[at..at + PATIENT_ID_LEN], patient);
        }
        i
    }

    fn control_id(&self, i: usize) -> [u8; CONTROL_ID_LEN] {
        let f = &self.frames[i];
        let mut id = [0; CONTROL_ID_LEN];
        id.copy_from_slice(&f.frame[f.control_id_at..f.control_id_at + CONTROL_ID_LEN]);
        id
    }
}

/// Connects, counting failures; `None` when the connection should give up.
async fn connect(ctx: &ThreadCtx, plan: &SendPlan, conn: &mut Conn) -> Option<TcpStream> {
    loop {
        if ctx.stopping() {
            return None;
        }
        match TcpStream::connect_timeout(plan.to, plan.timeout).await {
            Ok(stream) => {
                conn.connect_failures = 0;
                let _ = stream.set_nodelay(true);
                return Some(stream);
            }
            Err(_) => {
                ctx.stats.borrow_mut().counters.connection_errors += 1;
                conn.connect_failures += 1;
                if conn.connect_failures >= CONNECT_ATTEMPTS_MAX {
                    return None;
                }
                glommio::timer::sleep(CONNECT_BACKOFF).await;
            }
        }
    }
}

/// How waiting for one ACK ended.
enum AckWait {
    /// An ACK frame, copied into the buffer given.
    Frame,
    /// Nothing within the timeout.
    TimedOut,
    /// The peer closed or the connection failed.
    Closed,
}

/// A reader that always waits on the reactor (the open loop's read half, which shares the
/// socket with its writer and cannot be read around it).
struct Parked<R>(R);

impl<R> TryRead for Parked<R> {
    fn try_read(&mut self, _buf: &mut [u8]) -> Option<std::io::Result<usize>> {
        None
    }
}

impl<R: futures_lite::AsyncRead + Unpin> futures_lite::AsyncRead for Parked<R> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

/// Reads until one whole frame is decoded, copying it into `ack`; busy-polls (`busy`'s
/// budget) before each wait on the reactor (see `hie_net::tcp::busy`).
async fn read_ack<R: futures_lite::AsyncRead + TryRead + Unpin>(
    stream: &mut R,
    busy: &mut BusyReader,
    decoder: &mut FrameDecoder,
    ack: &mut Vec<u8>,
) -> AckWait {
    loop {
        match decoder.next_frame() {
            Ok(Some(frame)) => {
                ack.clear();
                ack.extend_from_slice(frame);
                return AckWait::Frame;
            }
            Ok(None) => {}
            Err(_) => return AckWait::Closed,
        }
        match busy.read(stream, decoder.read_buf()).await {
            Ok(0) => return AckWait::Closed,
            Ok(n) => decoder.commit(n),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
                ) =>
            {
                return AckWait::TimedOut;
            }
            Err(_) => return AckWait::Closed,
        }
    }
}

/// Whether a message meant to be sent at `sent_us` (µs since the run's start) counts in
/// the latency figures: it was meant to be sent after the warm-up.
#[inline]
pub(crate) fn past_warmup(sent_us: u64, warmup_us: u64) -> bool {
    sent_us >= warmup_us
}

/// Classifies an ACK for the message with control id `expected`; records it.
fn account_ack(
    ctx: &ThreadCtx,
    plan: &SendPlan,
    conn: u16,
    seq: u32,
    ack: &[u8],
    expected: &[u8],
    latency_us: u64,
) {
    let mut s = ctx.stats.borrow_mut();
    match crate::hl7io::msa(ack) {
        Some((code, id)) if id == expected => match ack_code_index(code) {
            Some(i) => {
                s.counters.acked += 1;
                s.counters.ack_codes[i] += 1;
                if plan.e2e {
                    s.tracks.ack(conn, seq);
                } else if past_warmup(
                    (ctx.now_ns() / 1000).saturating_sub(latency_us),
                    plan.warmup_us,
                ) {
                    record(&mut s.interval, latency_us);
                }
            }
            None => s.counters.bad_acks += 1,
        },
        Some(_) => s.counters.mismatched_acks += 1,
        None => s.counters.bad_acks += 1,
    }
}

/// Closed loop: write one message, wait for its ACK, repeat.
async fn closed_loop(ctx: Rc<ThreadCtx>, plan: Arc<SendPlan>, mut conn: Conn) {
    let mut ack = Vec::with_capacity(512);
    'connect: while conn.more(&ctx, &plan, ctx.now_ns()) {
        let Some(mut stream) = connect(&ctx, &plan, &mut conn).await else {
            return;
        };
        let _ = stream.set_read_timeout(Some(plan.timeout));
        let mut decoder = FrameDecoder::new(ACK_BYTES_MAX);
        let mut busy = BusyReader::new(plan.busy_poll);
        loop {
            let t0 = ctx.now_ns();
            if !conn.more(&ctx, &plan, t0) {
                break 'connect;
            }
            let i = conn.stamp(&plan, t0);
            if stream.write_all(&conn.frames[i].frame).await.is_err() {
                ctx.stats.borrow_mut().counters.connection_errors += 1;
                continue 'connect;
            }
            ctx.stats.borrow_mut().counters.sent += 1;
            let seq = conn.seq;
            conn.seq += 1;
            match read_ack(&mut stream, &mut busy, &mut decoder, &mut ack).await {
                AckWait::Frame => {
                    let latency_us = (ctx.now_ns() - t0) / 1000;
                    account_ack(
                        &ctx,
                        &plan,
                        conn.index,
                        seq,
                        &ack,
                        &conn.control_id(i),
                        latency_us,
                    );
                }
                AckWait::TimedOut => {
                    ctx.stats.borrow_mut().counters.timeouts += 1;
                    continue 'connect;
                }
                AckWait::Closed => {
                    let mut s = ctx.stats.borrow_mut();
                    s.counters.unanswered += 1;
                    s.counters.connection_errors += 1;
                    continue 'connect;
                }
            }
        }
    }
}

/// Messages written and not yet answered on one open-loop connection.
#[derive(Debug, Default)]
struct InFlight {
    /// (sequence, due time ns, control id), oldest first.
    queue: RefCell<VecDeque<(u32, u64, [u8; CONTROL_ID_LEN])>>,
    /// The connection failed or timed out: both halves stop.
    broken: Cell<bool>,
    /// The writer has sent everything it will send.
    writer_done: Cell<bool>,
}

/// Open loop: a writer sending on schedule and a reader matching ACKs, per connection.
async fn open_loop(ctx: Rc<ThreadCtx>, plan: Arc<SendPlan>, mut conn: Conn) {
    while conn.more(&ctx, &plan, conn.due_ns(conn.seq)) {
        let Some(stream) = connect(&ctx, &plan, &mut conn).await else {
            return;
        };
        let _ = stream.set_read_timeout(Some(plan.timeout));
        let (reader, writer) = futures_lite::io::split(stream);
        let flight = Rc::new(InFlight::default());
        let permits = Rc::new(Semaphore::new(plan.max_in_flight as u64));
        let reader_task = glommio::spawn_local(read_acks(
            ctx.clone(),
            plan.clone(),
            reader,
            flight.clone(),
            permits.clone(),
        ));
        write_scheduled(&ctx, &plan, &mut conn, writer, &flight, &permits).await;
        flight.writer_done.set(true);
        if flight.broken.get() || flight.queue.borrow().is_empty() {
            drop(reader_task);
        } else {
            reader_task.await;
        }
        let left = flight.queue.borrow().len() as u64;
        if left > 0 {
            let mut s = ctx.stats.borrow_mut();
            s.counters.unanswered += left;
            s.counters.connection_errors += 1;
        }
        if !flight.broken.get() {
            return;
        }
    }
}

async fn write_scheduled<W: futures_lite::AsyncWrite + Unpin>(
    ctx: &ThreadCtx,
    plan: &SendPlan,
    conn: &mut Conn,
    mut writer: W,
    flight: &InFlight,
    permits: &Semaphore,
) {
    loop {
        let due = conn.due_ns(conn.seq);
        if !conn.more(ctx, plan, due) || flight.broken.get() {
            return;
        }
        let now = ctx.now_ns();
        if due > now {
            glommio::timer::sleep(Duration::from_nanos(due - now)).await;
        }
        if permits.acquire(1).await.is_err() || flight.broken.get() || ctx.stopping() {
            return;
        }
        let i = conn.stamp(plan, due);
        flight
            .queue
            .borrow_mut()
            .push_back((conn.seq, due, conn.control_id(i)));
        if writer.write_all(&conn.frames[i].frame).await.is_err() {
            flight.queue.borrow_mut().pop_back();
            flight.broken.set(true);
            ctx.stats.borrow_mut().counters.connection_errors += 1;
            return;
        }
        ctx.stats.borrow_mut().counters.sent += 1;
        conn.seq += 1;
    }
}

async fn read_acks<R: futures_lite::AsyncRead + Unpin>(
    ctx: Rc<ThreadCtx>,
    plan: Arc<SendPlan>,
    reader: R,
    flight: Rc<InFlight>,
    permits: Rc<Semaphore>,
) {
    let mut decoder = FrameDecoder::new(ACK_BYTES_MAX);
    let mut ack = Vec::with_capacity(512);
    let mut reader = Parked(reader);
    let mut busy = BusyReader::new(Duration::ZERO);
    loop {
        if flight.writer_done.get() && flight.queue.borrow().is_empty() {
            return;
        }
        match read_ack(&mut reader, &mut busy, &mut decoder, &mut ack).await {
            AckWait::Frame => {
                let Some((seq, due, id)) = flight.queue.borrow_mut().pop_front() else {
                    ctx.stats.borrow_mut().counters.mismatched_acks += 1;
                    continue;
                };
                permits.signal(1);
                let latency_us = ctx.now_ns().saturating_sub(due) / 1000;
                account_ack(&ctx, &plan, conn_of(&id), seq, &ack, &id, latency_us);
            }
            AckWait::TimedOut => {
                let oldest = flight.queue.borrow().front().map(|f| f.1);
                // A quiet socket with nothing overdue is not a timeout: the writer may just
                // be waiting for its next due time.
                if oldest.is_some_and(|due| {
                    ctx.now_ns().saturating_sub(due) >= plan.timeout.as_nanos() as u64
                }) {
                    let n = flight.queue.borrow_mut().drain(..).count() as u64;
                    ctx.stats.borrow_mut().counters.timeouts += n;
                    flight.broken.set(true);
                    permits.close();
                    return;
                }
            }
            AckWait::Closed => {
                flight.broken.set(true);
                permits.close();
                return;
            }
        }
    }
}

fn conn_of(id: &[u8; CONTROL_ID_LEN]) -> u16 {
    ControlId::parse(id).map_or(0, |c| c.conn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{Source, load};
    use crate::template::TemplateKind;

    fn plan(
        connections: usize,
        messages: Option<u64>,
        rate: Option<f64>,
        patients: u32,
    ) -> SendPlan {
        SendPlan {
            to: "127.0.0.1:1".parse().unwrap(),
            connections,
            threads: 1,
            messages,
            duration: None,
            rate,
            max_in_flight: 8,
            warmup_us: 0,
            timeout: Duration::from_secs(1),
            corpus: load(&Source::Template {
                kind: TemplateKind::AdtA01,
                obx: 0,
                size_bytes: None,
            })
            .unwrap()
            .messages,
            patients,
            e2e: false,
            busy_poll: Duration::ZERO,
        }
    }

    #[test]
    fn message_budget_splits_exactly_over_connections() {
        let p = plan(7, Some(100), None, 10);
        let total: u64 = (0..7).map(|c| p.budget(c).unwrap()).sum();
        assert_eq!(total, 100);
        assert_eq!(p.budget(0), Some(15));
        assert_eq!(p.budget(6), Some(14));
    }

    #[test]
    fn open_loop_schedule_spreads_connections_evenly() {
        let p = plan(4, None, Some(1000.0), 10);
        let dues: Vec<u64> = (0..4).map(|c| Conn::new(&p, c).due_ns(1)).collect();
        assert_eq!(dues, vec![4_000_000, 5_000_000, 6_000_000, 7_000_000]);
    }

    #[test]
    fn patients_stay_on_their_connection() {
        let p = plan(4, None, None, 10);
        for c in 0..4 {
            let mut conn = Conn::new(&p, c);
            for _ in 0..100 {
                let patient = conn.pick_patient(10, 4);
                assert_eq!(patient as usize % 4, c);
                assert!(patient < 10);
            }
        }
    }

    #[test]
    fn stamp_writes_a_parsable_control_id_and_patient() {
        let p = plan(2, None, None, 5);
        let mut conn = Conn::new(&p, 1);
        conn.seq = 77;
        let i = conn.stamp(&p, 3_000_000);
        let f = &conn.frames[i];
        let id =
            ControlId::parse(&f.frame[f.control_id_at..f.control_id_at + CONTROL_ID_LEN]).unwrap();
        assert_eq!(
            id,
            ControlId {
                conn: 1,
                seq: 77,
                t_us: 3000
            }
        );
        let at = f.patient_at.unwrap();
        let patient = crate::ids::parse_patient(&f.frame[at..at + PATIENT_ID_LEN]).unwrap();
        assert_eq!(patient % 2, 1);
    }
}
