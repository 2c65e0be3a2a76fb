//! The open connections of one server (one shard): each one's stop flag, peer address and
//! idle time, and the choice of a connection to displace when the service is full.
//!
//! `MaxConnections` counts the service's connections on every shard together (see
//! [`crate::tcp::limits::ConnectionTable`]); the choice of a connection to displace is
//! made among those of the shard the newcomer was accepted on.
//!
//! Displacing, when the service has `MaxConnections` open, by two rules tried in order:
//! - **Heaviest address**: when the newcomer's address has fewer connections on this shard
//!   than the address with the most here has minus one, the newest connection of that
//!   address is cut at once (even mid-frame) and the newcomer takes its place (the counts
//!   level out; the heaviest address itself never displaces). So connections held by a
//!   few addresses (a flood, idle or slow-loris) cannot lock a new sender out.
//! - **Idle longest**: otherwise (a flood from as many addresses as `MaxConnections`),
//!   the connection of this shard idle longest is stopped and the newcomer takes its
//!   place, if it has been idle at least [`DISPLACE_IDLE_MIN`]. Idle means between
//!   frames: no byte of an unfinished frame buffered and no message waiting for its ACK,
//!   so no message is cut (bytes that arrive in the instant after the choice get the
//!   stop grace, as at any stop). The minimum idle time keeps a sender that has just
//!   connected from being displaced before its first message, and bounds the churn of a
//!   flood of new connections (each place changes hands at most once per
//!   [`DISPLACE_IDLE_MIN`]); a real sender sends, so the connection idle longest is a
//!   flood's. A full service whose connections here are all busy or idle for less than
//!   that refuses the newcomer.
//!
//! While a displaced connection closes, the service holds one more connection than its
//! maximum (bounded by the displacements in flight).
//!
//! Limits: entries ≤ the connections open on this shard; one entry per peer address with a
//! connection here. Choosing costs one pass over the addresses and, for the second rule,
//! one over the connections of this shard, per connection a full service accepts.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// The shortest time a connection must have been idle between frames to be displaced by
/// the idle-longest rule (see the module doc): 1 second.
pub(crate) const DISPLACE_IDLE_MIN: Duration = Duration::from_secs(1);

/// Which rule displaced a connection (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Displaced {
    /// The newest connection of the address with the most, cut at once.
    Heaviest(IpAddr),
    /// The connection idle longest, stopped between frames.
    IdleLongest(IpAddr),
}

/// A stop request one task can wait for, with one waker slot (no growth however often it
/// is polled; the waiting future clears it when dropped). A connection's flag also says
/// since when the connection is idle between frames.
#[derive(Debug, Default)]
pub(crate) struct StopFlag {
    stopped: Cell<bool>,
    stopped_at: Cell<Option<Instant>>,
    /// Stopped to make room for another sender (either rule).
    displaced: Cell<bool>,
    /// Stopped by the heaviest-address rule: close at once, even mid-frame.
    cut_at_once: Cell<bool>,
    /// When the connection's last bytes came, while it is between frames with nothing
    /// buffered and no message waiting for its ACK; `None` otherwise.
    idle_since: Cell<Option<Instant>>,
    /// The waiting future's number and waker.
    waker: RefCell<Option<(u64, Waker)>>,
    /// Numbers handed to waiting futures.
    waiters: Cell<u64>,
}

impl StopFlag {
    pub(crate) fn stop(&self) {
        self.stopped.set(true);
        if self.stopped_at.get().is_none() {
            self.stopped_at.set(Some(Instant::now()));
        }
        if let Some((_, w)) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    /// When [`stop`](Self::stop) was first called.
    pub(crate) fn stopped_at(&self) -> Option<Instant> {
        self.stopped_at.get()
    }

    /// Whether the connection was stopped to make room for another sender (either rule).
    pub(crate) fn displaced(&self) -> bool {
        self.displaced.get()
    }

    /// Whether the connection is to close at once, even in the middle of a frame.
    pub(crate) fn cut_at_once(&self) -> bool {
        self.cut_at_once.get()
    }

    /// Notes whether the connection is idle between frames, since its last bytes
    /// (`Some`), or not (`None`).
    pub(crate) fn set_idle_since(&self, since: Option<Instant>) {
        self.idle_since.set(since);
    }

    fn displace(&self, cut_at_once: bool) {
        self.displaced.set(true);
        self.cut_at_once.set(cut_at_once);
        self.stop();
    }

    /// Resolves once the flag is stopped.
    pub(crate) fn wait(&self) -> StopWait<'_> {
        let number = self.waiters.get().wrapping_add(1);
        self.waiters.set(number);
        StopWait { flag: self, number }
    }
}

/// The future of [`StopFlag::wait`]; dropped, it takes its waker out of the flag's slot.
#[derive(Debug)]
pub(crate) struct StopWait<'a> {
    flag: &'a StopFlag,
    number: u64,
}

impl Future for StopWait<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.flag.stopped.get() {
            return Poll::Ready(());
        }
        let mut slot = self.flag.waker.borrow_mut();
        let current = slot
            .as_ref()
            .is_some_and(|(n, w)| *n == self.number && w.will_wake(cx.waker()));
        if !current {
            *slot = Some((self.number, cx.waker().clone()));
        }
        Poll::Pending
    }
}

impl Drop for StopWait<'_> {
    fn drop(&mut self) {
        let mut slot = self.flag.waker.borrow_mut();
        if slot.as_ref().is_some_and(|(n, _)| *n == self.number) {
            *slot = None;
        }
    }
}

#[derive(Debug)]
struct Entry {
    peer: IpAddr,
    stop: Rc<StopFlag>,
}

/// The open connections of one server.
#[derive(Debug, Default)]
pub(crate) struct LocalConns {
    entries: HashMap<u64, Entry>,
    /// Connections per address that are not being displaced.
    per_peer: HashMap<IpAddr, usize>,
}

impl LocalConns {
    pub(crate) fn insert(&mut self, id: u64, peer: IpAddr, stop: Rc<StopFlag>) {
        self.entries.insert(id, Entry { peer, stop });
        *self.per_peer.entry(peer).or_insert(0) += 1;
    }

    pub(crate) fn remove(&mut self, id: u64) {
        let Some(entry) = self.entries.remove(&id) else {
            return;
        };
        if !entry.stop.displaced() {
            self.uncount(entry.peer);
        }
    }

    fn uncount(&mut self, peer: IpAddr) {
        if let Some(n) = self.per_peer.get_mut(&peer) {
            *n -= 1;
            if *n == 0 {
                self.per_peer.remove(&peer);
            }
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn stop_all(&self) {
        for entry in self.entries.values() {
            entry.stop.stop();
        }
    }

    /// Stops a connection to make room for one from `newcomer` at `now` (see the module
    /// doc); `None` when no connection qualifies under either rule.
    pub(crate) fn displace_for(&mut self, newcomer: IpAddr, now: Instant) -> Option<Displaced> {
        if let Some(peer) = self.displace_heaviest(newcomer) {
            return Some(Displaced::Heaviest(peer));
        }
        self.displace_idle_longest(now).map(Displaced::IdleLongest)
    }

    fn displace_heaviest(&mut self, newcomer: IpAddr) -> Option<IpAddr> {
        let (&heaviest, &count) = self.per_peer.iter().max_by_key(|(_, n)| **n)?;
        let newcomer_count = self.per_peer.get(&newcomer).copied().unwrap_or(0);
        if heaviest == newcomer || count <= newcomer_count + 1 {
            return None;
        }
        let victim = self
            .entries
            .iter()
            .filter(|(_, e)| e.peer == heaviest && !e.stop.displaced())
            .max_by_key(|(id, _)| **id)
            .map(|(_, e)| Rc::clone(&e.stop))?;
        victim.displace(true);
        self.uncount(heaviest);
        Some(heaviest)
    }

    fn displace_idle_longest(&mut self, now: Instant) -> Option<IpAddr> {
        let (peer, victim) = self
            .entries
            .values()
            .filter(|e| !e.stop.displaced() && !e.stop.stopped.get())
            .filter_map(|e| Some((e.stop.idle_since.get()?, e)))
            .filter(|(since, _)| now.saturating_duration_since(*since) >= DISPLACE_IDLE_MIN)
            .min_by_key(|(since, _)| *since)
            .map(|(_, e)| (e.peer, Rc::clone(&e.stop)))?;
        victim.displace(false);
        self.uncount(peer);
        Some(peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn a_newcomer_displaces_the_newest_connection_of_the_heaviest_address() {
        let mut conns = LocalConns::default();
        let flags: Vec<Rc<StopFlag>> = (0..4).map(|_| Rc::default()).collect();
        conns.insert(1, ip(1), flags[0].clone());
        conns.insert(2, ip(1), flags[1].clone());
        conns.insert(3, ip(1), flags[2].clone());
        conns.insert(4, ip(2), flags[3].clone());
        assert!(conns.displace_for(ip(9), Instant::now()).is_some());
        assert!(flags[2].displaced(), "the newest of the heaviest address");
        assert!(!flags[0].displaced() && !flags[1].displaced() && !flags[3].displaced());
        conns.remove(3);
        assert_eq!(conns.per_peer[&ip(1)], 2);
    }

    #[test]
    fn no_displacement_for_the_heaviest_address_nor_when_the_counts_are_level() {
        let mut conns = LocalConns::default();
        conns.insert(1, ip(1), Rc::default());
        conns.insert(2, ip(1), Rc::default());
        conns.insert(3, ip(1), Rc::default());
        conns.insert(4, ip(2), Rc::default());
        assert!(
            conns.displace_for(ip(1), Instant::now()).is_none(),
            "the heaviest address itself"
        );
        assert!(
            conns.displace_for(ip(2), Instant::now()).is_some(),
            "3 > 1 + 1"
        );
        assert!(
            conns.displace_for(ip(2), Instant::now()).is_none(),
            "now 2 and 1: level enough"
        );
        let mut spread = LocalConns::default();
        spread.insert(1, ip(1), Rc::default());
        spread.insert(2, ip(2), Rc::default());
        assert!(
            spread.displace_for(ip(3), Instant::now()).is_none(),
            "one connection per address is fair"
        );
    }

    fn idle_since(
        conns: &mut LocalConns,
        id: u64,
        peer: IpAddr,
        since: Option<Instant>,
    ) -> Rc<StopFlag> {
        let flag = Rc::new(StopFlag::default());
        flag.set_idle_since(since);
        conns.insert(id, peer, flag.clone());
        flag
    }

    #[test]
    fn one_connection_per_address_gives_way_to_the_one_idle_longest_never_one_mid_frame() {
        let now = Instant::now();
        let ago = |ms: u64| Some(now - Duration::from_millis(ms));
        let mut conns = LocalConns::default();
        let busy = idle_since(&mut conns, 1, ip(1), None);
        let longest = idle_since(&mut conns, 2, ip(2), ago(5_000));
        let older = idle_since(&mut conns, 3, ip(3), ago(2_000));
        let fresh = idle_since(&mut conns, 4, ip(4), ago(500));
        assert_eq!(
            conns.displace_for(ip(9), now),
            Some(Displaced::IdleLongest(ip(2)))
        );
        assert!(
            longest.displaced() && !longest.cut_at_once(),
            "stopped, not cut"
        );
        assert_eq!(
            conns.displace_for(ip(8), now),
            Some(Displaced::IdleLongest(ip(3)))
        );
        assert!(older.displaced());
        assert_eq!(
            conns.displace_for(ip(7), now),
            None,
            "idle for less than DISPLACE_IDLE_MIN, or in the middle of a frame"
        );
        assert!(!busy.displaced() && !fresh.displaced());
        conns.remove(2);
        conns.remove(3);
        assert_eq!(conns.per_peer.len(), 2, "the displaced were uncounted once");
    }

    #[test]
    fn the_heaviest_address_rule_comes_before_the_idle_one() {
        let now = Instant::now();
        let long_ago = Some(now - Duration::from_secs(60));
        let mut conns = LocalConns::default();
        let idle = idle_since(&mut conns, 1, ip(1), long_ago);
        let heavy: Vec<_> = (2..5)
            .map(|id| idle_since(&mut conns, id, ip(2), None))
            .collect();
        assert_eq!(
            conns.displace_for(ip(9), now),
            Some(Displaced::Heaviest(ip(2)))
        );
        assert!(heavy[2].cut_at_once() && !idle.displaced());
    }

    #[test]
    fn a_dropped_wait_leaves_no_waker_behind() {
        let flag = StopFlag::default();
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut first = Box::pin(flag.wait());
        assert!(first.as_mut().poll(&mut cx).is_pending());
        assert!(flag.waker.borrow().is_some());
        let mut second = Box::pin(flag.wait());
        assert!(second.as_mut().poll(&mut cx).is_pending());
        drop(first);
        assert!(
            flag.waker.borrow().is_some(),
            "the other waiter's waker stays"
        );
        drop(second);
        assert!(
            flag.waker.borrow().is_none(),
            "a dropped wait took its waker"
        );
        flag.stop();
        assert!(Box::pin(flag.wait()).as_mut().poll(&mut cx).is_ready());
    }
}
