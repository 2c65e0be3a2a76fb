//! Busy-polling reads: take the bytes a socket already holds with a plain non-blocking
//! `recv`, and wait for more for a short budget without arming an io_uring poll, before
//! falling back to the reactor's read, which arms one and parks the task.
//!
//! Why: on a busy connection the reactor path costs a cross-core wake-up per message.
//! glommio 0.9 sets up its rings without `IORING_SETUP_COOP_TASKRUN`, so every armed poll
//! that completes interrupts the owning thread (an IPI, a VM exit under virtualisation)
//! even while it is running, and a parked thread must be woken the same way. Measured on
//! the 2-vCPU development VM, loopback, one message in flight: a blocking ping-pong costs
//! about 7 µs of system time per message and side with both ends on one CPU and 31–35 µs
//! across two CPUs; the ACK-only server (`examples/mllp_probe.rs`, 8 connections) spent
//! 20 µs of CPU per message parking on the reactor and 8 µs busy-polling. With no poll
//! armed, the sender's `send` finds no waiter on the socket and nobody is interrupted.
//!
//! How a connection waits ([`BusyReader`]): its socket joins the shard's readiness set
//! ([`crate::tcp::readiness`], one edge-triggered epoll set swept by one task), so a
//! shard of many waiting connections makes one `epoll_wait` per turn rather than one
//! `recv` per connection per turn; and a read that returned less than its buffer proves
//! the socket drained, so the next read waits for an edge instead of trying a `recv` that
//! would fail. A connection parks on the reactor once the whole shard has been quiet for
//! the budget, so an idle engine parks as before, while a busy shard keeps every
//! connection in the set however long its own peer takes.
//!
//! Invariants and limits:
//! - [`TryRead::try_read`] never blocks and never waits on the reactor; `None` means "would
//!   block". Streams that cannot read without the reactor (a TLS stream with no plaintext
//!   buffered) return `None` and lose nothing but the spin; a stream with no socket of its
//!   own to watch ([`TryRead::readiness_fd`] `None`) is tried on every turn instead.
//! - A wait ends at the latest once the shard's readiness set has been quiet for the
//!   budget (a stream without a socket to watch: once it has tried for the budget); a
//!   budget of zero reads through the reactor at once (the plain glommio behaviour).
//! - While waiting, the shard's other tasks run, and at least every
//!   [`REACTOR_PASS_INTERVAL`] the executor polls its reactor ([`ReactorPass`]), so disk
//!   completions and timers are not held up.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use futures_lite::{AsyncRead, AsyncReadExt as _};

use crate::tcp::readiness::{Registration, Wait};

/// The default busy-poll budget of servers and clients: long enough to cover a loopback
/// or LAN round trip of the peer, short enough that an idle connection parks within it.
pub const BUSY_POLL_DEFAULT: Duration = Duration::from_micros(50);

/// A byte stream that can hand over bytes it already holds without waiting.
pub trait TryRead {
    /// `Some(Ok(n))` with `n` bytes read (0 at end of stream), `Some(Err(_))` on an error,
    /// `None` when nothing is there yet.
    fn try_read(&mut self, buf: &mut [u8]) -> Option<io::Result<usize>>;

    /// The socket under the stream, to watch in the shard's readiness set
    /// ([`crate::tcp::readiness`]) while waiting. `None` (the default) makes a waiting
    /// read try [`TryRead::try_read`] on every turn of the executor instead.
    fn readiness_fd(&self) -> Option<RawFd> {
        None
    }
}

impl TryRead for glommio::net::TcpStream {
    fn try_read(&mut self, buf: &mut [u8]) -> Option<io::Result<usize>> {
        // An unbuffered glommio stream holds no bytes of its own (the default type
        // parameter, `NonBuffered`), so reading the socket directly skips nothing.
        recv_now(self.as_raw_fd(), buf)
    }

    fn readiness_fd(&self) -> Option<RawFd> {
        Some(self.as_raw_fd())
    }
}

/// One non-blocking `recv` on `fd`.
fn recv_now(fd: RawFd, buf: &mut [u8]) -> Option<io::Result<usize>> {
    if buf.is_empty() {
        return Some(Ok(0));
    }
    // SAFETY: `buf` is a live, writable slice of `buf.len()` bytes for the whole call, and
    // recv writes at most that many bytes into it; `fd` is borrowed from a stream the caller
    // holds, so it stays open during the call. MSG_DONTWAIT keeps the call from blocking.
    let n = unsafe {
        libc::recv(
            fd,
            buf.as_mut_ptr().cast::<libc::c_void>(),
            buf.len(),
            libc::MSG_DONTWAIT,
        )
    };
    if n >= 0 {
        return Some(Ok(n as usize));
    }
    let err = io::Error::last_os_error();
    match err.kind() {
        io::ErrorKind::WouldBlock => None,
        io::ErrorKind::Interrupted => None,
        _ => Some(Err(err)),
    }
}

/// The busy-polling reads of one connection: its budget, its place in the shard's
/// readiness set, and whether its socket is known to be drained.
///
/// One per connection, made anew (or [`reset`](Self::reset)) when the connection is
/// replaced: the registration belongs to one socket.
#[derive(Debug)]
pub struct BusyReader {
    spin: Duration,
    registration: Option<Registration>,
    /// A readiness set could not take the socket: spin by trying reads.
    unregistrable: bool,
    /// The last read returned less than its buffer (or would block): the socket held no
    /// more bytes then, so nothing is there until it raises a new edge.
    drained: bool,
}

impl BusyReader {
    /// A reader that waits up to `spin` for bytes before its caller parks on the reactor.
    pub fn new(spin: Duration) -> Self {
        Self {
            spin,
            registration: None,
            unregistrable: false,
            drained: false,
        }
    }

    /// Forgets the socket (its registration and what was known of it): call it when the
    /// connection is replaced.
    pub fn reset(&mut self) {
        self.registration = None;
        self.unregistrable = false;
        self.drained = false;
    }

    /// The bytes of `stream` that arrive within the budget, without parking on the
    /// reactor; `None` when the budget passed (the caller then reads through the reactor,
    /// and should call [`after_reactor_read`](Self::after_reactor_read)).
    pub async fn spin_read<F>(
        &mut self,
        fd: Option<RawFd>,
        mut try_read: F,
        buf: &mut [u8],
    ) -> Option<io::Result<usize>>
    where
        F: FnMut(&mut [u8]) -> Option<io::Result<usize>>,
    {
        let edge = self
            .registration
            .as_ref()
            .is_some_and(Registration::take_ready);
        if edge || !self.drained || self.registration.is_none() {
            if let Some(result) = try_read(buf) {
                self.note(&result, buf.len());
                return Some(result);
            }
            self.drained = true;
        }
        if self.spin.is_zero() {
            return None;
        }
        if self.registration.is_none() && !self.unregistrable {
            match fd.map(Registration::new) {
                Some(Ok(r)) => self.registration = Some(r),
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "socket not added to the readiness set; spinning on reads");
                    self.unregistrable = true;
                }
                None => self.unregistrable = true,
            }
            // Bytes may have come between the read above and the registration: the
            // registration reports them as an edge.
        }
        if let Some(registration) = &self.registration {
            loop {
                match registration.wait(self.spin).await {
                    Wait::Expired => return None,
                    Wait::Ready => {
                        registration.take_ready();
                        if let Some(result) = try_read(buf) {
                            self.note(&result, buf.len());
                            return Some(result);
                        }
                    }
                }
            }
        }
        let deadline = Instant::now() + self.spin;
        let mut pass = ReactorPass::new();
        loop {
            pass.yield_now().await;
            if let Some(result) = try_read(buf) {
                self.note(&result, buf.len());
                return Some(result);
            }
            if Instant::now() >= deadline {
                return None;
            }
        }
    }

    /// Reads into `buf`: within the budget without the reactor, then through the reactor
    /// like `AsyncReadExt::read`.
    pub async fn read<S>(&mut self, stream: &mut S, buf: &mut [u8]) -> io::Result<usize>
    where
        S: TryRead + AsyncRead + Unpin,
    {
        let fd = stream.readiness_fd();
        if let Some(result) = self.spin_read(fd, |b| stream.try_read(b), buf).await {
            return result;
        }
        let result = stream.read(buf).await;
        self.after_reactor_read();
        result
    }

    /// A read went through the reactor: what the reader knew of the socket is stale.
    pub fn after_reactor_read(&mut self) {
        self.drained = false;
    }

    fn note(&mut self, result: &io::Result<usize>, asked: usize) {
        self.drained = matches!(result, Ok(n) if *n < asked);
    }
}

/// Yields between the tries of a spinning read, making sure the executor still polls its
/// reactor often.
///
/// A task that yields by waking itself runs again before glommio polls its rings (glommio
/// polls them only when no task is runnable or a latency-ring event asks it to), so a
/// shard of spinning connections would reap disk completions (the WAL's) and fire timers
/// only every preempt interval (100 ms by default). So at least every
/// [`REACTOR_PASS_INTERVAL`] (per shard) the yield is a timer of the shortest duration: it
/// leaves the task parked until the executor has run every runnable task and polled the
/// reactor, which fires it. Between those, a plain yield is much cheaper than a pass
/// through the reactor (which submits to io_uring).
#[derive(Debug)]
pub struct ReactorPass {
    timer: glommio::timer::Timer,
}

thread_local! {
    /// When a spinning read of this shard last saw the executor poll its reactor. Shared
    /// by the shard's connections: under steady traffic every single spin is short, but
    /// together they would keep the executor from polling.
    static LAST_PASS: std::cell::Cell<Instant> = std::cell::Cell::new(Instant::now());
}

impl ReactorPass {
    /// One shortest timer, reused for every pass.
    pub fn new() -> Self {
        Self {
            timer: glommio::timer::Timer::new(REACTOR_PASS_TIMER),
        }
    }

    /// Yields: through the reactor if the shard's last pass is [`REACTOR_PASS_INTERVAL`]
    /// old, otherwise to the other runnable tasks only.
    pub async fn yield_now(&mut self) {
        if LAST_PASS.with(|t| t.get().elapsed()) < REACTOR_PASS_INTERVAL {
            futures_lite::future::yield_now().await;
            return;
        }
        // Reset just before the wait: a timer already due would be ready at once, without
        // a pass through the reactor.
        self.timer.reset(REACTOR_PASS_TIMER);
        (&mut self.timer).await;
        LAST_PASS.with(|t| t.set(Instant::now()));
    }
}

impl Default for ReactorPass {
    fn default() -> Self {
        Self::new()
    }
}

/// Longest the spinning connections of a shard go without letting the executor poll its
/// reactor: the added delay, at worst, of a disk completion or timer of a shard whose
/// connections spin.
pub const REACTOR_PASS_INTERVAL: Duration = Duration::from_micros(20);

/// The timer of a pass: due after the reactor's next poll of its timers, but not before
/// the `reset` and the first poll of the timer (a few tens of nanoseconds apart).
const REACTOR_PASS_TIMER: Duration = Duration::from_nanos(100);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::test_support::{on_executor, pair};
    use futures_lite::AsyncWriteExt as _;

    #[test]
    fn try_read_reports_nothing_then_the_bytes_then_end_of_stream() {
        on_executor(|| async {
            let (mut client, mut server) = pair().await;
            let mut buf = [0u8; 16];
            assert!(server.try_read(&mut buf).is_none(), "nothing sent yet");
            client.write_all(b"hello").await.unwrap();
            let n = BusyReader::new(Duration::from_millis(100))
                .read(&mut server, &mut buf)
                .await
                .unwrap();
            assert_eq!(&buf[..n], b"hello");
            client.close().await.unwrap();
            drop(client);
            let n = BusyReader::new(Duration::ZERO)
                .read(&mut server, &mut buf)
                .await
                .unwrap();
            assert_eq!(n, 0, "end of stream");
        });
    }

    #[test]
    fn read_busy_falls_back_to_the_reactor_after_its_budget() {
        on_executor(|| async {
            let (mut client, mut server) = pair().await;
            let writer = glommio::spawn_local(async move {
                glommio::timer::sleep(Duration::from_millis(30)).await;
                client.write_all(b"late").await.unwrap();
                client
            });
            let mut buf = [0u8; 16];
            let started = Instant::now();
            let n = BusyReader::new(Duration::from_micros(100))
                .read(&mut server, &mut buf)
                .await
                .unwrap();
            assert_eq!(&buf[..n], b"late");
            assert!(started.elapsed() >= Duration::from_millis(20));
            drop(writer.await);
        });
    }

    #[test]
    fn spinning_connections_leave_the_shards_timers_on_time() {
        on_executor(|| async {
            // Two connections spin for half a second on a silent peer; a 5 ms timer of
            // the same shard must still fire close to 5 ms: not after the spins (a loop
            // that never yields), nor at glommio's 100 ms preempt interval (a loop that
            // yields to tasks but never lets the executor poll its reactor).
            let started = Instant::now();
            let mut peers = Vec::new();
            for _ in 0..2 {
                let (client, mut server) = pair().await;
                peers.push(client);
                glommio::spawn_local(async move {
                    let mut buf = [0u8; 8];
                    let spin = Duration::from_millis(500);
                    let mut reader = BusyReader::new(spin);
                    let _ = futures_lite::future::or(reader.read(&mut server, &mut buf), async {
                        glommio::timer::sleep(Duration::from_millis(600)).await;
                        Ok(0)
                    })
                    .await;
                })
                .detach();
            }
            glommio::timer::sleep(Duration::from_millis(5)).await;
            let late = started.elapsed();
            assert!(
                late < Duration::from_millis(50),
                "a 5 ms timer took {late:?}"
            );
            drop(peers);
        });
    }

    #[test]
    fn try_read_of_an_empty_buffer_is_zero_without_a_syscall_error() {
        on_executor(|| async {
            let (_client, mut server) = pair().await;
            assert!(matches!(server.try_read(&mut []), Some(Ok(0))));
        });
    }
}
