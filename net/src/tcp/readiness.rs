//! The readiness set of a shard's busy sockets: one edge-triggered epoll set per executor,
//! read with a zero timeout by one driver task, which wakes the connections whose sockets
//! have new bytes. It is how a busy connection learns that its peer wrote without arming
//! an io_uring poll (a cross-core wake-up per message, see [`crate::tcp::busy`]) and
//! without trying a `recv` of its own on every turn of the executor (one system call per
//! idle connection per turn: at 64 connections, most of a shard's time).
//!
//! Protocol:
//! - A socket joins with [`Registration::new`] (`EPOLL_CTL_ADD`, `EPOLLIN | EPOLLRDHUP |
//!   EPOLLET`); the epoll data is the slot index and its generation, so an event of a
//!   socket whose registration was dropped (the slot freed, perhaps reused) is ignored.
//!   A registration is never deleted from the epoll set: the kernel drops it when the
//!   socket's last descriptor closes, and deleting by descriptor number after the socket
//!   closed could remove another socket's registration that reused the number.
//! - The driver harvests events and sets the slot's `ready` flag (waking the waiter, if
//!   any). A connection clears the flag just before it reads; a read that returns less
//!   than its buffer drained the socket, and any byte that arrives later raises a new edge.
//! - A waiter gives a budget. It is released with [`Wait::Expired`] (and parks on the
//!   reactor instead) once the whole set has been quiet for that long: no edge from any
//!   socket since the wait began. While the shard is busy a waiting connection stays in
//!   the set whatever its own peer does, because the set costs nothing per idle socket
//!   and parking would cost a reactor wake-up for its next message (at 64 connections
//!   with one message in flight each, a connection's own gap exceeds any sensible budget
//!   under load). When nobody waits, the driver parks too.
//! - Between sweeps the driver yields through [`ReactorPass`], so the executor's other
//!   tasks run and its reactor (disk completions, timers) is polled at least every
//!   [`crate::tcp::busy::REACTOR_PASS_INTERVAL`].
//!
//! One hub per executor (found through a thread-local keyed by the executor's id); it and
//! its driver live as long as a registration or a waiter holds them.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use crate::tcp::busy::ReactorPass;

/// Events taken from the epoll set in one sweep.
const EVENTS_PER_SWEEP: usize = 256;

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// The socket raised an edge (bytes, end of stream or an error) since the flag was last
    /// cleared: read it.
    Ready,
    /// The deadline passed with no edge: park on the reactor.
    Expired,
}

#[derive(Debug, Default)]
struct Slot {
    generation: u32,
    in_use: bool,
    ready: bool,
    expired: bool,
    waker: Option<Waker>,
    /// When the wait began, and the quiet time after which it expires.
    since: Option<Instant>,
    spin: Duration,
    /// Index in `Hub::waiting` while waiting.
    waiting_at: Option<usize>,
}

#[derive(Debug)]
struct Hub {
    executor: usize,
    epoll: OwnedFd,
    slots: RefCell<Vec<Slot>>,
    free: RefCell<Vec<u32>>,
    /// Slots with a waiter.
    waiting: RefCell<Vec<u32>>,
    /// Earliest time a waiter may expire (a lower bound: it may be stale-early).
    next_deadline: Cell<Option<Instant>>,
    /// When the last sweep found an edge.
    last_edge: Cell<Instant>,
    driver_spawned: Cell<bool>,
    driver_waker: RefCell<Option<Waker>>,
}

thread_local! {
    static HUB: RefCell<Option<Rc<Hub>>> = const { RefCell::new(None) };
}

impl Hub {
    /// This executor's hub, made on first use.
    fn current() -> io::Result<Rc<Hub>> {
        let executor = glommio::executor().id();
        HUB.with(|hub| {
            let mut hub = hub.borrow_mut();
            if let Some(h) = hub.as_ref().filter(|h| h.executor == executor) {
                return Ok(h.clone());
            }
            // SAFETY: epoll_create1 has no memory arguments; a non-negative result is a new
            // descriptor that nothing else owns.
            let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `fd` was just returned by epoll_create1 and is owned by nobody else.
            let epoll = unsafe { OwnedFd::from_raw_fd(fd) };
            let h = Rc::new(Hub {
                executor,
                epoll,
                slots: RefCell::default(),
                free: RefCell::default(),
                waiting: RefCell::default(),
                next_deadline: Cell::new(None),
                last_edge: Cell::new(Instant::now()),
                driver_spawned: Cell::new(false),
                driver_waker: RefCell::default(),
            });
            *hub = Some(h.clone());
            Ok(h)
        })
    }

    fn wake_driver(self: &Rc<Self>) {
        if !self.driver_spawned.get() {
            self.driver_spawned.set(true);
            let hub = self.clone();
            glommio::spawn_local(async move { hub.drive().await }).detach();
        } else if let Some(w) = self.driver_waker.borrow_mut().take() {
            w.wake();
        }
    }

    fn remove_waiter(&self, slots: &mut [Slot], index: u32) {
        let Some(at) = slots[index as usize].waiting_at.take() else {
            return;
        };
        let mut waiting = self.waiting.borrow_mut();
        waiting.swap_remove(at);
        if let Some(&moved) = waiting.get(at) {
            slots[moved as usize].waiting_at = Some(at);
        }
    }

    /// One sweep: harvest the epoll set, wake the sockets that raised an edge, release the
    /// waiters whose deadline passed. Returns the number of events.
    fn sweep(&self, events: &mut [libc::epoll_event]) -> io::Result<usize> {
        // SAFETY: `events` is a live, writable array of `events.len()` epoll_event values
        // for the whole call, the kernel writes at most that many; the epoll descriptor is
        // owned by the hub. A zero timeout never blocks.
        let n = unsafe {
            libc::epoll_wait(
                self.epoll.as_raw_fd(),
                events.as_mut_ptr(),
                events.len() as libc::c_int,
                0,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(0)
            } else {
                Err(e)
            };
        }
        let n = n as usize;
        let mut slots = self.slots.borrow_mut();
        let now = Instant::now();
        if n > 0 {
            self.last_edge.set(now);
        }
        for event in &events[..n] {
            let data = event.u64;
            let (index, generation) = ((data & 0xffff_ffff) as u32, (data >> 32) as u32);
            let Some(slot) = slots.get_mut(index as usize) else {
                continue;
            };
            if !slot.in_use || slot.generation != generation {
                continue;
            }
            slot.ready = true;
            if let Some(w) = slot.waker.take() {
                w.wake();
            }
            self.remove_waiter(&mut slots, index);
        }
        if let Some(due) = self.next_deadline.get() {
            let last_edge = self.last_edge.get();
            if now >= due {
                let mut next: Option<Instant> = None;
                let mut i = 0;
                loop {
                    let Some(&index) = self.waiting.borrow().get(i) else {
                        break;
                    };
                    let slot = &mut slots[index as usize];
                    let deadline = slot.since.map(|since| since.max(last_edge) + slot.spin);
                    match deadline {
                        Some(d) if d <= now => {
                            slot.expired = true;
                            if let Some(w) = slot.waker.take() {
                                w.wake();
                            }
                            // swap_remove: the element moved into `i` is looked at next.
                            self.remove_waiter(&mut slots, index);
                        }
                        d => {
                            next = match (next, d) {
                                (Some(a), Some(b)) => Some(a.min(b)),
                                (a, b) => a.or(b),
                            };
                            i += 1;
                        }
                    }
                }
                self.next_deadline.set(next);
            }
        }
        Ok(n)
    }

    /// The driver: sweeps while anyone waits, parks when nobody does.
    async fn drive(self: Rc<Self>) {
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; EVENTS_PER_SWEEP];
        let mut pass = ReactorPass::new();
        loop {
            if self.waiting.borrow().is_empty() {
                // Nobody waits: park until a waiter arrives. The hub holds no strong count
                // of itself here beyond this task, so an executor that ends drops both.
                poll_fn(|cx| {
                    if self.waiting.borrow().is_empty() {
                        *self.driver_waker.borrow_mut() = Some(cx.waker().clone());
                        Poll::Pending
                    } else {
                        Poll::Ready(())
                    }
                })
                .await;
            }
            if let Err(e) = self.sweep(&mut events) {
                // Not expected (EBADF/EINVAL would be a bug): release every waiter to the
                // reactor so nothing hangs, and say so once.
                tracing::error!(error = %e, "epoll_wait on the shard's readiness set failed; connections park on the reactor");
                self.expire_all();
            }
            pass.yield_now().await;
        }
    }

    fn expire_all(&self) {
        let mut slots = self.slots.borrow_mut();
        let waiting = std::mem::take(&mut *self.waiting.borrow_mut());
        for index in waiting {
            let slot = &mut slots[index as usize];
            slot.waiting_at = None;
            slot.expired = true;
            if let Some(w) = slot.waker.take() {
                w.wake();
            }
        }
        self.next_deadline.set(None);
    }
}

/// A socket's membership of its shard's readiness set. Dropping it frees the slot (later
/// events of the socket are ignored); see the module doc for why the epoll entry stays.
#[derive(Debug)]
pub struct Registration {
    hub: Rc<Hub>,
    index: u32,
    generation: u32,
}

impl Registration {
    /// Adds `fd` (a socket that stays open at least as long as the registration is used)
    /// to this executor's readiness set. Must be called on a glommio executor.
    pub fn new(fd: RawFd) -> io::Result<Self> {
        let hub = Hub::current()?;
        let (index, generation) = {
            let mut slots = hub.slots.borrow_mut();
            let index = match hub.free.borrow_mut().pop() {
                Some(i) => i,
                None => {
                    slots.push(Slot::default());
                    (slots.len() - 1) as u32
                }
            };
            let slot = &mut slots[index as usize];
            slot.generation = slot.generation.wrapping_add(1);
            slot.in_use = true;
            slot.ready = false;
            slot.expired = false;
            (index, slot.generation)
        };
        let mut event = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
            u64: u64::from(index) | (u64::from(generation) << 32),
        };
        // SAFETY: `event` is a live epoll_event for the call; the kernel only reads it.
        // Both descriptors are open: the hub owns the epoll set, the caller holds `fd`.
        let mut rc =
            unsafe { libc::epoll_ctl(hub.epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut event) };
        if rc < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EEXIST) {
            // Registered before by a registration since dropped (the socket stayed open):
            // point the entry at the new slot.
            // SAFETY: as above.
            rc = unsafe {
                libc::epoll_ctl(hub.epoll.as_raw_fd(), libc::EPOLL_CTL_MOD, fd, &mut event)
            };
        }
        let registration = Registration {
            hub,
            index,
            generation,
        };
        if rc < 0 {
            // Dropping the registration frees the slot.
            return Err(io::Error::last_os_error());
        }
        Ok(registration)
    }

    /// Takes the ready flag: true if the socket raised an edge since the last take. Call it
    /// just before reading; a short read then proves the socket drained.
    pub fn take_ready(&self) -> bool {
        let mut slots = self.hub.slots.borrow_mut();
        std::mem::take(&mut slots[self.index as usize].ready)
    }

    /// Waits for an edge, or until the whole readiness set has been quiet for `spin`.
    pub async fn wait(&self, spin: Duration) -> Wait {
        let since = Instant::now();
        let guard = WaitGuard(self);
        let result = poll_fn(|cx| {
            let mut slots = self.hub.slots.borrow_mut();
            let slot = &mut slots[self.index as usize];
            if slot.ready {
                return Poll::Ready(Wait::Ready);
            }
            if std::mem::take(&mut slot.expired) {
                return Poll::Ready(Wait::Expired);
            }
            match &slot.waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => slot.waker = Some(cx.waker().clone()),
            }
            if slot.waiting_at.is_none() {
                slot.since = Some(since);
                slot.spin = spin;
                let deadline = since + spin;
                let mut waiting = self.hub.waiting.borrow_mut();
                slot.waiting_at = Some(waiting.len());
                waiting.push(self.index);
                drop(waiting);
                let next = self.hub.next_deadline.get();
                if next.is_none_or(|n| deadline < n) {
                    self.hub.next_deadline.set(Some(deadline));
                }
                drop(slots);
                self.hub.wake_driver();
            }
            Poll::Pending
        })
        .await;
        drop(guard);
        result
    }
}

/// Leaves the waiting list when a wait ends or is dropped (a timeout won the race).
struct WaitGuard<'a>(&'a Registration);

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        let r = self.0;
        let mut slots = r.hub.slots.borrow_mut();
        let slot = &mut slots[r.index as usize];
        slot.waker = None;
        slot.since = None;
        slot.expired = false;
        r.hub.remove_waiter(&mut slots, r.index);
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut slots = self.hub.slots.borrow_mut();
        self.hub.remove_waiter(&mut slots, self.index);
        let slot = &mut slots[self.index as usize];
        debug_assert_eq!(slot.generation, self.generation);
        *slot = Slot {
            generation: slot.generation,
            ..Slot::default()
        };
        self.hub.free.borrow_mut().push(self.index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::AsyncWriteExt as _;
    use glommio::net::{TcpListener, TcpStream};

    use crate::tcp::busy::{BusyReader, TryRead as _};
    use crate::tcp::test_support::{on_executor, pair_on as pair};

    fn fd(s: &TcpStream) -> RawFd {
        s.readiness_fd().expect("a TCP stream has a socket")
    }

    #[test]
    fn an_edge_wakes_exactly_the_socket_that_raised_it() {
        on_executor(|| async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let (mut a_client, a_server) = pair(&listener).await;
            let (_b_client, b_server) = pair(&listener).await;
            let a = Registration::new(fd(&a_server)).unwrap();
            let b = Registration::new(fd(&b_server)).unwrap();
            assert!(!a.take_ready() && !b.take_ready(), "nothing sent yet");
            a_client.write_all(b"x").await.unwrap();
            let spin = Duration::from_secs(5);
            assert_eq!(a.wait(spin).await, Wait::Ready);
            assert!(a.take_ready(), "the flag stays until taken");
            assert!(!a.take_ready(), "taken once");
            assert!(!b.take_ready(), "b raised no edge");
        });
    }

    #[test]
    fn a_wait_expires_once_the_whole_set_is_quiet_not_while_another_socket_is_busy() {
        on_executor(|| async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let (_idle_client, idle_server) = pair(&listener).await;
            let (mut busy_client, mut busy_server) = pair(&listener).await;
            let idle = Registration::new(fd(&idle_server)).unwrap();
            // Traffic on the other socket (in the set) every millisecond for 1.5 s. The budget
            // is far above the gap between edges, so a loaded machine's scheduling stalls
            // do not end the wait early.
            let busy = Registration::new(fd(&busy_server)).unwrap();
            let traffic = glommio::spawn_local(async move {
                let mut buf = [0u8; 64];
                for _ in 0..1500 {
                    busy_client.write_all(b"m").await.unwrap();
                    assert_eq!(busy.wait(Duration::from_secs(1)).await, Wait::Ready);
                    busy.take_ready();
                    assert!(matches!(busy_server.try_read(&mut buf), Some(Ok(1))));
                    glommio::timer::sleep(Duration::from_millis(1)).await;
                }
                (busy_client, busy_server)
            });
            let started = Instant::now();
            // A budget of 500 ms: the set is never quiet that long during the traffic.
            assert_eq!(idle.wait(Duration::from_millis(500)).await, Wait::Expired);
            let waited = started.elapsed();
            assert!(
                waited >= Duration::from_millis(1500),
                "expired after {waited:?}, while the other socket was busy"
            );
            drop(traffic.await);
        });
    }

    #[test]
    fn a_freed_slot_reused_by_another_socket_ignores_the_old_sockets_edges() {
        on_executor(|| async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let (mut old_client, old_server) = pair(&listener).await;
            let (_new_client, new_server) = pair(&listener).await;
            let old = Registration::new(fd(&old_server)).unwrap();
            let (index, generation) = (old.index, old.generation);
            drop(old);
            let new = Registration::new(fd(&new_server)).unwrap();
            assert_eq!(new.index, index, "the freed slot is reused");
            assert_ne!(new.generation, generation);
            // The old socket stays in the epoll set (never deleted) and raises an edge.
            old_client.write_all(b"stale").await.unwrap();
            assert_eq!(new.wait(Duration::from_millis(50)).await, Wait::Expired);
            assert!(
                !new.take_ready(),
                "the old socket's edge reached the new slot"
            );
            drop(old_server);
        });
    }

    #[test]
    fn a_socket_registered_again_after_its_registration_dropped_still_raises_edges() {
        on_executor(|| async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let (mut client, server) = pair(&listener).await;
            drop(Registration::new(fd(&server)).unwrap());
            // EPOLL_CTL_ADD fails with EEXIST; the registration points the entry at its slot.
            let again = Registration::new(fd(&server)).unwrap();
            client.write_all(b"y").await.unwrap();
            assert_eq!(again.wait(Duration::from_secs(5)).await, Wait::Ready);
        });
    }

    #[test]
    fn many_waiting_connections_each_get_their_own_bytes_in_order() {
        on_executor(|| async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let mut tasks = Vec::new();
            for c in 0..64u32 {
                let (mut client, mut server) = pair(&listener).await;
                tasks.push(glommio::spawn_local(async move {
                    let mut reader = BusyReader::new(Duration::from_millis(200));
                    let mut got = Vec::new();
                    let mut buf = [0u8; 7];
                    let expected: Vec<u8> = (0..50u32)
                        .flat_map(|i| (c * 1000 + i).to_be_bytes())
                        .collect();
                    let writer = glommio::spawn_local(async move {
                        for i in 0..50u32 {
                            client
                                .write_all(&(c * 1000 + i).to_be_bytes())
                                .await
                                .unwrap();
                            if i % 7 == 0 {
                                glommio::timer::sleep(Duration::from_micros(300)).await;
                            }
                        }
                        client
                    });
                    while got.len() < expected.len() {
                        // A 7-byte buffer makes full reads (socket maybe not drained)
                        // and short ones (drained) both happen.
                        let n = reader.read(&mut server, &mut buf).await.unwrap();
                        assert!(n > 0, "connection {c} closed early");
                        got.extend_from_slice(&buf[..n]);
                    }
                    assert_eq!(got, expected, "connection {c}");
                    drop(writer.await);
                }));
            }
            for t in tasks {
                t.await;
            }
        });
    }
}
