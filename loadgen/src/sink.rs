//! The sink: an MLLP server playing the downstream system. Every executor thread listens
//! on the same address (`SO_REUSEPORT`, glommio's default), so the kernel spreads
//! connections over the threads; each connection is one task that reads frames into a
//! reused buffer, decides each message's fate and writes the replies of one read in one
//! write.
//!
//! Fate of a message, drawn per message from the thread's generator: with probability
//! `drop_rate` the connection is closed without a reply (counted in
//! `dropped_connections`); with `--no-ack` no reply; otherwise after the delay an ACK with
//! AR (probability `ar_rate`), AE (`ae_rate`) or AA. A frame that is not HL7 is answered
//! AR with an empty MSA-2. In an `e2e` run the sink also parses the control id the
//! sender wrote and records end-to-end latency, duplicates and per-patient order.
//!
//! `--save-dir` writes each message to `<dir>/<thread>-<n>.hl7` with a blocking write on
//! the executor thread: it is meant for small runs that inspect what arrived, and it slows
//! the sink down.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd as _, RawFd};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use futures_lite::io::AsyncWriteExt;
use glommio::net::{TcpListener, TcpStream};
use hie_hl7::{AckBuilder, AckCode, Message, Path};
use hie_net::mllp::frame::{FrameDecoder, encode_frame};
use hie_net::{BusyReader, WakeGate};

use crate::e2e::PatientOrder;
use crate::error::LoadgenError;
use crate::hl7io;
use crate::ids::{ControlId, parse_patient};
use crate::runner::ThreadCtx;
use crate::stats::{ack_code_index, record};

/// Largest message the sink accepts.
pub const MESSAGE_BYTES_MAX: usize = 64 << 20;

/// How the sink answers, shared read-only by all threads. The default answers AA to
/// everything at once.
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    /// Fraction answered AE.
    pub ae_rate: f64,
    /// Fraction answered AR.
    pub ar_rate: f64,
    /// Fixed delay, or the low end of a random one.
    pub delay: Option<Duration>,
    /// High end of a random delay.
    pub delay_max: Option<Duration>,
    /// Fraction of messages whose connection is closed instead of answered.
    pub drop_rate: f64,
    /// Never answer.
    pub no_ack: bool,
    /// Save messages here.
    pub save_dir: Option<PathBuf>,
}

impl Behaviour {
    /// Checks the rates (each in 0..=1, AE + AR at most 1) and creates the save directory.
    pub fn check(&self) -> Result<(), LoadgenError> {
        for (rate, option) in [
            (self.ae_rate, "--ae-rate"),
            (self.ar_rate, "--ar-rate"),
            (self.drop_rate, "--drop-rate"),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(LoadgenError::BadOption {
                    option,
                    reason: format!("{rate} is not between 0 and 1"),
                });
            }
        }
        if self.ae_rate + self.ar_rate > 1.0 {
            return Err(LoadgenError::BadOption {
                option: "--ae-rate",
                reason: "--ae-rate + --ar-rate exceeds 1".into(),
            });
        }
        if let Some(high) = self.delay_max
            && self.delay.is_some_and(|low| low > high)
        {
            return Err(LoadgenError::BadOption {
                option: "--delay-max",
                reason: "smaller than --delay".into(),
            });
        }
        if let Some(dir) = &self.save_dir {
            std::fs::create_dir_all(dir).map_err(|source| LoadgenError::WriteReport {
                path: dir.clone(),
                source,
            })?;
        }
        Ok(())
    }
}

/// What a sink thread needs.
#[derive(Debug)]
pub struct SinkPlan {
    /// Address every thread listens on (the real port, never 0).
    pub listen: SocketAddr,
    /// How to answer.
    pub behaviour: Behaviour,
    /// Messages received by all threads (for `--messages` and the e2e drain).
    pub received_total: Arc<AtomicU64>,
    /// e2e: per-patient order, when this sink checks an e2e run.
    pub order: Option<Arc<PatientOrder>>,
    /// Where the patient id is (PID-3.1, first repetition), parsed once.
    pub patient_path: Path,
    /// Executors listening so far (each adds one once its listener is bound).
    pub listening: Arc<AtomicUsize>,
    /// How long a connection busy-polls for the next message before parking.
    pub busy_poll: Duration,
    /// e2e: latency leaves out messages meant to be sent before this (µs since the start).
    pub warmup_us: u64,
}

/// The address the sink threads will listen on: `addr` itself, or with port 0 a free
/// port picked by the OS (bound once and released, so every thread can then bind it with
/// `SO_REUSEPORT`).
pub fn pick_port(addr: SocketAddr) -> Result<SocketAddr, LoadgenError> {
    if addr.port() != 0 {
        return Ok(addr);
    }
    let err = |source| LoadgenError::Listen { addr, source };
    let probe = std::net::TcpListener::bind(addr).map_err(err)?;
    probe.local_addr().map_err(err)
}

/// Runs this thread's listener until the stop flag ends the thread.
pub async fn run_thread(ctx: Rc<ThreadCtx>, plan: Arc<SinkPlan>) {
    let listener = match TcpListener::bind(plan.listen) {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "hie-loadgen: thread {} cannot listen on {}: {e}",
                ctx.thread, plan.listen
            );
            return;
        }
    };
    plan.listening.fetch_add(1, Ordering::Release);
    let open = OpenConnections::default();
    let mut conn_index = 0u64;
    loop {
        // Gated: this task is woken by the monitor and the sender too, and glommio keeps
        // a clone of the task's waker per poll of a pending accept (see WakeGate).
        match WakeGate::new(Box::pin(listener.accept())).await {
            Ok(stream) => {
                ctx.stats.borrow_mut().counters.connections += 1;
                conn_index += 1;
                let seed = (ctx.thread as u64) << 48 ^ conn_index;
                let entry = open.add(conn_index, stream.as_raw_fd());
                let (ctx, plan) = (ctx.clone(), plan.clone());
                glommio::spawn_local(async move {
                    serve(ctx, plan, stream, seed).await;
                    drop(entry);
                })
                .detach();
            }
            Err(_) => glommio::timer::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// The connections a sink thread serves. When the thread stops (its future is dropped),
/// every one still open is shut down, so the engine under test sees its connections
/// close at once and reconnects to the next sink: the serving tasks are detached, and
/// glommio need not drop them with an executor that ends, which left the engine's
/// operations waiting out their ResponseTimeout on sockets nobody read.
#[derive(Debug, Default)]
struct OpenConnections(Rc<RefCell<HashMap<u64, RawFd>>>);

/// One open connection's place in [`OpenConnections`]; dropped (removing it) before the
/// stream, so a descriptor is never shut down after it was closed and reused.
struct OpenEntry {
    set: Rc<RefCell<HashMap<u64, RawFd>>>,
    key: u64,
}

impl OpenConnections {
    fn add(&self, key: u64, fd: RawFd) -> OpenEntry {
        self.0.borrow_mut().insert(key, fd);
        OpenEntry {
            set: self.0.clone(),
            key,
        }
    }
}

impl Drop for OpenEntry {
    fn drop(&mut self) {
        self.set.borrow_mut().remove(&self.key);
    }
}

impl Drop for OpenConnections {
    fn drop(&mut self) {
        for (_, fd) in self.0.borrow_mut().drain() {
            // SAFETY: `fd` is the descriptor of a stream whose serving task still holds it
            // open (its entry is removed before the stream drops); shutdown only changes
            // the socket's state and touches no memory.
            unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
        }
    }
}

/// What to do with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Reply(AckCode),
    Silent,
    Drop,
}

fn fate(b: &Behaviour, rng: &mut u64) -> Fate {
    let roll = uniform(rng);
    if roll < b.drop_rate {
        return Fate::Drop;
    }
    if b.no_ack {
        return Fate::Silent;
    }
    let roll = uniform(rng);
    if roll < b.ar_rate {
        Fate::Reply(AckCode::AR)
    } else if roll < b.ar_rate + b.ae_rate {
        Fate::Reply(AckCode::AE)
    } else {
        Fate::Reply(AckCode::AA)
    }
}

fn uniform(rng: &mut u64) -> f64 {
    *rng ^= *rng >> 12;
    *rng ^= *rng << 25;
    *rng ^= *rng >> 27;
    (rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
}

fn delay(b: &Behaviour, rng: &mut u64) -> Option<Duration> {
    let low = b.delay?;
    match b.delay_max {
        Some(high) if high > low => Some(low + (high - low).mul_f64(uniform(rng))),
        _ => Some(low),
    }
}

async fn serve(ctx: Rc<ThreadCtx>, plan: Arc<SinkPlan>, mut stream: TcpStream, seed: u64) {
    let _ = stream.set_nodelay(true);
    let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut decoder = FrameDecoder::new(MESSAGE_BYTES_MAX);
    let mut ack = Vec::with_capacity(256);
    let mut builder = AckBuilder::new().with_identity(b"HIE-LOADGEN", b"SINK");
    let mut out = Vec::with_capacity(4096);
    let mut reader = BusyReader::new(plan.busy_poll);
    let b = &plan.behaviour;
    loop {
        let n = match reader.read(&mut stream, decoder.read_buf()).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        decoder.commit(n);
        out.clear();
        loop {
            let msg = match decoder.next_frame() {
                Ok(Some(msg)) => msg,
                Ok(None) => break,
                Err(_) => return,
            };
            let scanned = Message::scan(msg).ok();
            receive(&ctx, &plan, msg, scanned.as_ref());
            match fate(b, &mut rng) {
                Fate::Drop => {
                    ctx.stats.borrow_mut().counters.dropped_connections += 1;
                    let _ = stream.write_all(&out).await;
                    return;
                }
                Fate::Silent => ctx.stats.borrow_mut().counters.unreplied += 1,
                Fate::Reply(code) => {
                    ack.clear();
                    let code = hl7io::write_reply(&mut builder, &mut ack, scanned.as_ref(), code);
                    encode_frame(&mut out, &ack);
                    if let Some(i) = ack_code_index(code.as_str().as_bytes()) {
                        ctx.stats.borrow_mut().counters.replies[i] += 1;
                    }
                    if let Some(d) = delay(b, &mut rng) {
                        // A delayed reply goes out on its own, in order.
                        if stream.write_all(&out).await.is_err() {
                            return;
                        }
                        out.clear();
                        glommio::timer::sleep(d).await;
                    }
                }
            }
        }
        if !out.is_empty() && stream.write_all(&out).await.is_err() {
            return;
        }
    }
}

/// Counts, saves and (in e2e) checks one received message.
fn receive(ctx: &ThreadCtx, plan: &SinkPlan, msg: &[u8], scanned: Option<&Message<'_>>) {
    plan.received_total.fetch_add(1, Ordering::Relaxed);
    let mut s = ctx.stats.borrow_mut();
    s.counters.received += 1;
    s.counters.received_bytes += msg.len() as u64;
    let Some(ctrl) = scanned.and_then(Message::control_id) else {
        s.counters.malformed += 1;
        return;
    };
    if let Some(dir) = &plan.behaviour.save_dir {
        let path = dir.join(format!("{}-{:010}.hl7", ctx.thread, s.counters.received));
        if std::fs::write(&path, msg).is_err() {
            eprintln!("hie-loadgen: cannot save {}", path.display());
        }
    }
    let Some(order) = &plan.order else { return };
    let Some(id) = ControlId::parse(ctrl) else {
        s.counters.foreign += 1;
        return;
    };
    if s.tracks.receive(id.conn, id.seq) {
        s.counters.duplicates += 1;
        return;
    }
    let now_us = ctx.now_ns() / 1000;
    let latency_us = u64::from((now_us as u32).wrapping_sub(id.t_us));
    if crate::send::past_warmup(now_us.saturating_sub(latency_us), plan.warmup_us) {
        record(&mut s.interval, latency_us);
    }
    let patient = scanned
        .and_then(|m| m.get(&plan.patient_path))
        .and_then(parse_patient);
    if let Some(p) = patient
        && order.arrive(p, id.conn, id.seq)
    {
        s.counters.order_violations += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn behaviour() -> Behaviour {
        Behaviour {
            ae_rate: 0.0,
            ar_rate: 0.0,
            delay: None,
            delay_max: None,
            drop_rate: 0.0,
            no_ack: false,
            save_dir: None,
        }
    }

    #[test]
    fn a_listening_sink_polled_over_and_over_by_its_task_keeps_the_tasks_waker_count_bounded() {
        // A sink thread's root task also runs the monitor (woken every STOP_POLL) and, in
        // e2e, the sender: every wake polls the pending accept again. glommio kept a
        // clone of the task's waker per poll and aborted past 32,767 of them ("Waker
        // invariant broken"), after about 22 minutes of a real run; 40,000 yields on the
        // same task do it in a moment.
        let plan = Arc::new(SinkPlan {
            listen: pick_port("127.0.0.1:0".parse().unwrap()).unwrap(),
            behaviour: behaviour(),
            received_total: Arc::default(),
            order: None,
            patient_path: hl7io::patient_path(),
            listening: Arc::default(),
            busy_poll: Duration::ZERO,
            warmup_us: 0,
        });
        let listening = plan.listening.clone();
        glommio::LocalExecutorBuilder::default()
            .spawn(move || async move {
                let ctx = Rc::new(ThreadCtx {
                    thread: 0,
                    start: std::time::Instant::now(),
                    stop: Arc::default(),
                    stats: RefCell::new(crate::runner::ThreadStats {
                        counters: crate::stats::Counters::default(),
                        interval: crate::stats::new_histogram(),
                        tracks: crate::e2e::Tracks::default(),
                    }),
                });
                let other_work = async {
                    for _ in 0..40_000 {
                        futures_lite::future::yield_now().await;
                    }
                };
                futures_lite::future::or(run_thread(ctx, plan), other_work).await;
            })
            .expect("executor")
            .join()
            .expect("the sink thread ran without glommio's waker assertion");
        assert_eq!(listening.load(Ordering::Acquire), 1, "the sink listened");
    }

    #[test]
    fn fates_follow_the_configured_rates() {
        let b = Behaviour {
            ae_rate: 0.2,
            ar_rate: 0.1,
            drop_rate: 0.05,
            ..behaviour()
        };
        let mut rng = 12345;
        let mut counts = [0usize; 4];
        for _ in 0..100_000 {
            match fate(&b, &mut rng) {
                Fate::Reply(c) => counts[ack_code_index(c.as_str().as_bytes()).unwrap()] += 1,
                Fate::Silent => unreachable!("no_ack is off"),
                Fate::Drop => counts[3] += 1,
            }
        }
        let near = |n: usize, p: f64| ((n as f64 / 100_000.0) - p).abs() < 0.01;
        assert!(near(counts[3], 0.05), "{counts:?}");
        assert!(near(counts[2], 0.95 * 0.1), "{counts:?}");
        assert!(near(counts[1], 0.95 * 0.2), "{counts:?}");
    }

    #[test]
    fn no_ack_is_silent_and_default_is_aa() {
        let mut rng = 7;
        assert_eq!(
            fate(
                &Behaviour {
                    no_ack: true,
                    ..behaviour()
                },
                &mut rng
            ),
            Fate::Silent
        );
        assert_eq!(fate(&behaviour(), &mut rng), Fate::Reply(AckCode::AA));
    }

    #[test]
    fn random_delay_stays_in_its_range() {
        let b = Behaviour {
            delay: Some(Duration::from_millis(2)),
            delay_max: Some(Duration::from_millis(5)),
            ..behaviour()
        };
        let mut rng = 99;
        for _ in 0..1000 {
            let d = delay(&b, &mut rng).unwrap();
            assert!(d >= Duration::from_millis(2) && d <= Duration::from_millis(5));
        }
    }
}
