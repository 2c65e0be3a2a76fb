//! The open connections of one server (one shard): each one's stop flag and peer address,
//! and the choice of a connection to displace when the service is full.
//!
//! Displacing: when the service has `MaxConnections` open and a connection comes from an
//! address with fewer connections on this shard than the address with the most here has
//! minus one, the newest connection of that address is cut and the newcomer takes its
//! place (the counts level out; the heaviest address itself never displaces). So
//! connections held by a few addresses (a flood, idle or slow-loris) cannot lock a new
//! sender out; only as many addresses as `MaxConnections` could. While a displaced connection closes, the service holds one
//! more connection than its maximum (bounded by the displacements in flight).
//!
//! Limits: entries ≤ the connections open on this shard; one entry per peer address with a
//! connection here.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future;
use std::net::IpAddr;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Instant;

/// A stop request one task can wait for, with one waker slot (no growth however often it
/// is polled).
#[derive(Debug, Default)]
pub(crate) struct StopFlag {
    stopped: Cell<bool>,
    stopped_at: Cell<Option<Instant>>,
    /// Stopped to make room for another sender: close at once, even mid-frame.
    displaced: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl StopFlag {
    pub(crate) fn stop(&self) {
        self.stopped.set(true);
        if self.stopped_at.get().is_none() {
            self.stopped_at.set(Some(Instant::now()));
        }
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    /// When [`stop`](Self::stop) was first called.
    pub(crate) fn stopped_at(&self) -> Option<Instant> {
        self.stopped_at.get()
    }

    /// Whether the connection was stopped to make room for another sender.
    pub(crate) fn displaced(&self) -> bool {
        self.displaced.get()
    }

    fn displace(&self) {
        self.displaced.set(true);
        self.stop();
    }

    pub(crate) async fn wait(&self) {
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

    /// Cuts a connection to make room for one from `newcomer` (see the module doc); false
    /// when no address qualifies.
    pub(crate) fn displace_for(&mut self, newcomer: IpAddr) -> bool {
        let Some((&heaviest, &count)) = self.per_peer.iter().max_by_key(|(_, n)| **n) else {
            return false;
        };
        let newcomer_count = self.per_peer.get(&newcomer).copied().unwrap_or(0);
        if heaviest == newcomer || count <= newcomer_count + 1 {
            return false;
        }
        let newest = self
            .entries
            .iter()
            .filter(|(_, e)| e.peer == heaviest && !e.stop.displaced())
            .max_by_key(|(id, _)| **id)
            .map(|(_, e)| Rc::clone(&e.stop));
        let Some(victim) = newest else {
            return false;
        };
        victim.displace();
        self.uncount(heaviest);
        true
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
        assert!(conns.displace_for(ip(9)));
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
        assert!(!conns.displace_for(ip(1)), "the heaviest address itself");
        assert!(conns.displace_for(ip(2)), "3 > 1 + 1");
        assert!(!conns.displace_for(ip(2)), "now 2 and 1: level enough");
        let mut spread = LocalConns::default();
        spread.insert(1, ip(1), Rc::default());
        spread.insert(2, ip(2), Rc::default());
        assert!(
            !spread.displace_for(ip(3)),
            "one connection per address is fair"
        );
    }
}
