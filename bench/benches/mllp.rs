//! MLLP round trips: an ACK-only server from hie-net + hie-hl7 on one pinned glommio shard
//! (no WAL), and the same load against a tokio (current-thread) server built on the `mllp`
//! crate and against a floor (the same HL7 work on a hand-written busy epoll loop: what
//! loopback TCP allows a server core), each pinned to the same core. The load client is a glommio executor pinned to the
//! other core: 1, 8 and 64 connections, one message in flight per connection, a 300-byte
//! ADT^A01. Criterion reports time per round of 32 messages per connection (throughput in
//! messages/s); p50/p99 round
//! trip latencies are printed after each case.
//!
//! Every connection's ACK is checked (AA, MSA-2 = the control id sent) before timing.
//!
//! Next to msg/s each case prints the server thread's CPU time per message (from
//! `/proc/self/task/TID/schedstat`), a figure that holds when other work shares the
//! machine and wall-clock rates do not. The load client busy-polls its reads
//! (`hie_net::BusyReader`) the same way for both servers, so it does not take a
//! cross-core wake-up per ACK.

use glommio::ExecutorJoinHandle as JoinHandle;
use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures_lite::AsyncWriteExt as _;
use glommio::net::TcpStream;
use glommio::timer::Timer;
use glommio::{LocalExecutorBuilder, Placement};
use hdrhistogram::Histogram;
use hie_net::{AckOnlyHandler, FrameDecoder, MllpServer, ServerConfig};

/// Starts one of the servers compared.
type StartServer = fn() -> Server;

const SERVER_CPU: usize = 0;
const CLIENT_CPU: usize = 1;
const CONNECTIONS: [usize; 3] = [1, 8, 64];
/// Messages per connection in one criterion iteration: an iteration is a round of
/// `connections * ROUND_MESSAGES_PER_CONNECTION` round trips, so the cost of handing a
/// round to the load thread stays small next to it.
const ROUND_MESSAGES_PER_CONNECTION: u64 = 32;

fn adt(id: &str) -> Vec<u8> {
    let msg = format!(
        "MSH|^~\\&|SENDAPP|SENDFAC|RECVAPP|RECVFAC|20240101120000||ADT^A01^ADT_A01|{id}|P|2.5.1\r\
         EVN|A01|20240101120000\r\
         PID|1||123456^^^HOSP^MR||DOE^JOHN^A||19800101|M|||1 MAIN ST^^TOWN^ST^12345||555-0100\r\
         PV1|1|I|WARD^101^A|||||||MED||||||||V1234567890\r"
    );
    let mut out = Vec::new();
    hie_net::encode_frame(&mut out, msg.as_bytes());
    out
}

/// A server on its own pinned thread, stopped on drop.
struct Server {
    addr: SocketAddr,
    /// The server thread's kernel thread id, to read its CPU time.
    tid: i32,
    stop: Arc<AtomicBool>,
    join: Option<JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(join) = self.join.take() {
            join.join().expect("server thread");
        }
    }
}

/// Starts a server on an executor pinned to the server core: `run` binds, reports its
/// address (with [`Bound::ready`]) and serves until the stop flag is set.
fn pinned_server<F, Fut>(name: &str, run: F) -> Server
where
    F: FnOnce(Bound) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let (tx, rx) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let bound = Bound {
        tx,
        stop: stop.clone(),
    };
    let join = LocalExecutorBuilder::new(Placement::Fixed(SERVER_CPU))
        .name(name)
        .spawn(move || run(bound))
        .expect("server executor");
    let (addr, tid) = rx.recv().unwrap();
    Server {
        addr,
        tid,
        stop,
        join: Some(join),
    }
}

/// What a server thread gets: where to report its address, and its stop flag.
struct Bound {
    tx: mpsc::Sender<(SocketAddr, i32)>,
    stop: Arc<AtomicBool>,
}

impl Bound {
    /// Reports the listening address and the server thread's id.
    fn ready(&self, addr: SocketAddr) {
        self.tx.send((addr, thread_id())).unwrap();
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }
}

fn hie_server() -> Server {
    pinned_server("hie-mllp", |bound| async move {
        let config = ServerConfig {
            local_address: "127.0.0.1".parse().unwrap(),
            ..ServerConfig::default()
        };
        let server = MllpServer::bind(config, AckOnlyHandler::default()).expect("bind");
        bound.ready(server.local_addr());
        let handle = server.handle();
        glommio::spawn_local(async move {
            while !bound.stopped() {
                Timer::new(Duration::from_millis(10)).await;
            }
            handle.stop();
        })
        .detach();
        server.run().await.expect("server run");
    })
}

/// The peer: tokio's current-thread runtime with the `mllp` crate's decoder, parser and ACK
/// builder. It runs inside a thread glommio pins to the server core (the glommio executor
/// there only hosts this one blocking call), so both servers get the same core.
fn tokio_mllp_server() -> Server {
    pinned_server("tokio-mllp", |bound| async move {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            bound.ready(listener.local_addr().unwrap());
            let accept = tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    stream.set_nodelay(true).unwrap();
                    tokio::spawn(tokio_connection(stream));
                }
            });
            while !bound.stopped() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            accept.abort();
        });
    })
}

/// The floor: the same HL7 work as hie-net's ACK-only handler (frame decoder, scan, ACK
/// builder) on a hand-written loop over one edge-triggered epoll set that never parks
/// (`epoll_wait` with a zero timeout), with plain non-blocking `recv`/`send`. No runtime,
/// no tasks, no timers: what this machine's loopback TCP allows a server core for this
/// load, so a target above it (for instance twice a peer that is already near it) can be
/// seen to be out of reach in the same run.
fn epoll_floor_server() -> Server {
    pinned_server("epoll-floor", |bound| async move {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        bound.ready(listener.local_addr().unwrap());
        epoll_floor_loop(&listener, &bound.stop);
    })
}

fn epoll_floor_loop(listener: &std::net::TcpListener, stop: &AtomicBool) {
    use std::io::{Read as _, Write as _};
    use std::os::fd::AsRawFd as _;
    struct FloorConn {
        stream: std::net::TcpStream,
        decoder: FrameDecoder,
    }
    // SAFETY: no memory arguments; the descriptor is closed at the end of this function.
    let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    assert!(epoll >= 0, "epoll_create1");
    let mut conns: Vec<FloorConn> = Vec::new();
    let mut builder = hie_hl7::AckBuilder::new();
    let (mut response, mut out) = (Vec::new(), Vec::new());
    const LISTENER: u64 = u64::MAX;
    let mut event = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: LISTENER,
    };
    // SAFETY: `event` is live for the call; both descriptors are open.
    let rc =
        unsafe { libc::epoll_ctl(epoll, libc::EPOLL_CTL_ADD, listener.as_raw_fd(), &mut event) };
    assert_eq!(rc, 0, "epoll_ctl");
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
    while !stop.load(Ordering::Acquire) {
        // SAFETY: `events` is a live, writable array of its length; zero timeout.
        let n = unsafe { libc::epoll_wait(epoll, events.as_mut_ptr(), events.len() as i32, 0) };
        for event in &events[..n.max(0) as usize] {
            if event.u64 == LISTENER {
                while let Ok((stream, _)) = listener.accept() {
                    stream.set_nonblocking(true).unwrap();
                    stream.set_nodelay(true).unwrap();
                    let mut event = libc::epoll_event {
                        events: (libc::EPOLLIN | libc::EPOLLET) as u32,
                        u64: conns.len() as u64,
                    };
                    // SAFETY: `event` is live for the call; both descriptors are open.
                    let rc = unsafe {
                        libc::epoll_ctl(epoll, libc::EPOLL_CTL_ADD, stream.as_raw_fd(), &mut event)
                    };
                    assert_eq!(rc, 0, "epoll_ctl");
                    conns.push(FloorConn {
                        stream,
                        decoder: FrameDecoder::new(1 << 20),
                    });
                }
                continue;
            }
            let conn = &mut conns[event.u64 as usize];
            // Edge-triggered: read until the socket would block.
            loop {
                match conn.stream.read(conn.decoder.read_buf()) {
                    Ok(0) => break,
                    Ok(n) => conn.decoder.commit(n),
                    Err(_) => break,
                }
                while let Ok(Some(frame)) = conn.decoder.next_frame() {
                    response.clear();
                    hie_net::mllp::ack_only::write_ack_or_nak(&mut builder, frame, &mut response);
                    hie_net::encode_frame(&mut out, &response);
                }
                if !out.is_empty() {
                    let _ = conn.stream.write_all(&out);
                    out.clear();
                }
            }
        }
    }
    // SAFETY: `epoll` was created above and is not used after this.
    unsafe { libc::close(epoll) };
}

/// The calling thread's kernel id.
fn thread_id() -> i32 {
    // SAFETY: gettid takes no arguments and cannot fail.
    unsafe { libc::gettid() }
}

/// CPU time of thread `tid` of this process so far, in nanoseconds (first field of its
/// schedstat).
fn thread_cpu_ns(tid: i32) -> u64 {
    let path = format!("/proc/self/task/{tid}/schedstat");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    text.split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("unexpected {path}: {text:?}"))
}

async fn tokio_connection(mut stream: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut decoder = mllp::Decoder::new();
    let mut buf = vec![0u8; 64 << 10];
    let mut out = Vec::new();
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        decoder.push(&buf[..n]);
        while let Some(Ok(frame)) = decoder.next_frame() {
            let Ok(text) = std::str::from_utf8(&frame) else {
                return;
            };
            let Ok(msg) = mllp::Message::parse(text) else {
                return;
            };
            let context = mllp::AckContext::from_message(&msg);
            let ack = mllp::build_ack(
                &context,
                mllp::AckCode::Accept,
                "ACK1",
                "",
                msg.separators(),
            );
            out.extend_from_slice(&mllp::frame(ack.as_bytes()));
        }
        if stream.write_all(&out).await.is_err() {
            return;
        }
        out.clear();
    }
}

struct Conn {
    stream: TcpStream,
    reader: hie_net::BusyReader,
    decoder: FrameDecoder,
    msg: Vec<u8>,
}

impl Conn {
    /// Sends the message and waits for the reply frame; `take` sees it in the decoder's
    /// buffer (so the timed path need not copy it).
    async fn round_trip_with<R>(&mut self, take: impl FnOnce(&[u8]) -> R) -> R {
        self.stream.write_all(&self.msg).await.expect("write");
        loop {
            if let Some(ack) = self.decoder.next_frame().expect("framing") {
                return take(ack);
            }
            let n = self
                .reader
                .read(&mut self.stream, self.decoder.read_buf())
                .await
                .expect("read");
            assert!(n > 0, "server closed the connection");
            self.decoder.commit(n);
        }
    }

    async fn round_trip(&mut self) -> Vec<u8> {
        self.round_trip_with(<[u8]>::to_vec).await
    }

    async fn round_trip_unchecked(&mut self) {
        self.round_trip_with(|_| ()).await
    }
}

struct Report {
    elapsed: Duration,
    latency_ns: Histogram<u64>,
}

/// The load client: `connections` connections on a glommio executor pinned to the client
/// core, driven `iters` messages at a time.
struct Driver {
    commands: mpsc::Sender<u64>,
    reports: mpsc::Receiver<Report>,
    join: Option<JoinHandle<()>>,
    total: Histogram<u64>,
    total_elapsed: Duration,
}

impl Driver {
    fn start(addr: SocketAddr, connections: usize) -> Self {
        let (commands, command_rx) = mpsc::channel::<u64>();
        let (report_tx, reports) = mpsc::channel();
        let join = LocalExecutorBuilder::new(Placement::Fixed(CLIENT_CPU))
            .name("mllp-load")
            .spawn(move || async move {
                let conns = Rc::new(RefCell::new(connect_and_check(addr, connections).await));
                while let Ok(iters) = command_rx.recv() {
                    report_tx.send(drive(&conns, iters).await).unwrap();
                }
            })
            .expect("load executor");
        let total = Histogram::new(3).unwrap();
        Self {
            commands,
            reports,
            join: Some(join),
            total,
            total_elapsed: Duration::ZERO,
        }
    }

    fn run(&mut self, iters: u64) -> Duration {
        self.commands.send(iters).unwrap();
        let report = self.reports.recv().expect("load thread");
        self.total.add(&report.latency_ns).unwrap();
        self.total_elapsed += report.elapsed;
        report.elapsed
    }

    /// Messages per second over every round so far.
    fn rate(&self) -> f64 {
        self.total.len() as f64 / self.total_elapsed.as_secs_f64()
    }

    /// The figures of the case; `server_cpu_ns` is `None` for a server that spins by design.
    fn summary(&self, server_cpu_ns: Option<u64>) -> String {
        let secs = self.total_elapsed.as_secs_f64();
        let messages = self.total.len();
        let cpu = server_cpu_ns.map_or_else(
            || "server CPU n/a (spins)".to_owned(),
            |ns| {
                format!(
                    "server CPU {:.2} us/msg",
                    ns as f64 / 1000.0 / messages.max(1) as f64
                )
            },
        );
        format!(
            "{:.0} msg/s, p50 {:.1} us, p99 {:.1} us, {cpu} ({} messages)",
            messages as f64 / secs,
            self.total.value_at_quantile(0.50) as f64 / 1000.0,
            self.total.value_at_quantile(0.99) as f64 / 1000.0,
            messages
        )
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let (tx, _) = mpsc::channel();
        drop(std::mem::replace(&mut self.commands, tx));
        if let Some(join) = self.join.take() {
            join.join().expect("load thread");
        }
    }
}

async fn connect_and_check(addr: SocketAddr, connections: usize) -> Vec<Conn> {
    let mut conns = Vec::with_capacity(connections);
    for i in 0..connections {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).unwrap();
        let id = format!("BENCH{i:04}");
        let mut conn = Conn {
            stream,
            reader: hie_net::BusyReader::new(hie_net::BUSY_POLL_DEFAULT),
            decoder: FrameDecoder::new(1 << 20),
            msg: adt(&id),
        };
        let ack = conn.round_trip().await;
        let ack = hie_hl7::Message::scan(&ack).expect("the ACK scans");
        assert_eq!(ack.ack_code(), Some(hie_hl7::AckCode::AA));
        assert_eq!(ack.acked_control_id(), Some(id.as_bytes()));
        conns.push(conn);
    }
    conns
}

async fn drive(conns: &Rc<RefCell<Vec<Conn>>>, iters: u64) -> Report {
    let taken: Vec<Conn> = conns.borrow_mut().drain(..).collect();
    let n = taken.len() as u64;
    let start = Instant::now();
    let tasks: Vec<_> = taken
        .into_iter()
        .enumerate()
        .map(|(i, mut conn)| {
            let count = iters / n + u64::from((i as u64) < iters % n);
            glommio::spawn_local(async move {
                let mut latency_ns = Histogram::<u64>::new(3).unwrap();
                for _ in 0..count {
                    let t = Instant::now();
                    conn.round_trip_unchecked().await;
                    latency_ns.record(t.elapsed().as_nanos() as u64).unwrap();
                }
                (conn, latency_ns)
            })
        })
        .collect();
    let mut latency_ns = Histogram::<u64>::new(3).unwrap();
    for task in tasks {
        let (conn, h) = task.await;
        latency_ns.add(&h).unwrap();
        conns.borrow_mut().push(conn);
    }
    Report {
        elapsed: start.elapsed(),
        latency_ns,
    }
}

fn mllp_round_trips(c: &mut Criterion) {
    let mut group = c.benchmark_group("mllp_ack_only");
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    group.sample_size(10);
    let servers: [(&str, StartServer); 3] = [
        ("hie-net", hie_server),
        ("tokio-mllp", tokio_mllp_server),
        ("epoll-floor", epoll_floor_server),
    ];
    let mut summaries = Vec::new();
    let mut rates = std::collections::BTreeMap::new();
    for (name, start) in servers {
        let server = start();
        for connections in CONNECTIONS {
            let mut driver = Driver::start(server.addr, connections);
            let cpu_before = thread_cpu_ns(server.tid);
            let round = connections as u64 * ROUND_MESSAGES_PER_CONNECTION;
            group.throughput(Throughput::Elements(round));
            group.bench_with_input(BenchmarkId::new(name, connections), &connections, |b, _| {
                b.iter_custom(|iters| driver.run(iters * round))
            });
            let server_cpu_ns = thread_cpu_ns(server.tid) - cpu_before;
            rates.insert((name, connections), driver.rate());
            let line = format!(
                "{name:>11} {connections:>2} connections: {}",
                driver.summary((name != "epoll-floor").then_some(server_cpu_ns))
            );
            println!("{line}");
            summaries.push(line);
        }
    }
    group.finish();
    println!("\nmllp_ack_only summary (300-byte ADT, one message in flight per connection):");
    for line in summaries {
        println!("  {line}");
    }
    for connections in CONNECTIONS {
        let (hie, peer, floor) = (
            rates[&("hie-net", connections)],
            rates[&("tokio-mllp", connections)],
            rates[&("epoll-floor", connections)],
        );
        println!(
            "  {connections:>2} connections: hie-net {:.2}x tokio-mllp, {:.0} % of the epoll floor; 2x tokio-mllp is {:.0} % of the floor",
            hie / peer,
            100.0 * hie / floor,
            200.0 * peer / floor
        );
    }
}

criterion_group!(benches, mllp_round_trips);
criterion_main!(benches);
