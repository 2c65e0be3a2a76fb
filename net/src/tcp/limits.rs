//! The inbound server's shared limits: the process-wide budget of inbound read-buffer
//! bytes, the connection table of one service (all its shards together), and the
//! rate limit of the log line written for each refused connection.
//!
//! - [`InboundBudget`]: every byte of every inbound connection's read buffer is reserved
//!   here before it is allocated and given back when the buffer shrinks or is freed, so
//!   the read buffers of all services of the process together never pass `bytes_max`.
//!   Reservations are made when a buffer is allocated or doubles, not per read: the
//!   atomic is touched a few times per large frame and once per idle period of a
//!   connection, never per message of a busy one.
//! - [`ConnectionTable`]: open connections of one service, in total and per peer IP
//!   address, shared by the service's instances on every shard. A connection that would
//!   pass either limit is refused: closed at once, never read. The table also counts the
//!   read-buffer bytes of the service and of each peer: a service holds at most
//!   1/[`SERVICE_SHARE_DIVISOR`] of the budget and a peer address at most
//!   1/[`PEER_SHARE_DIVISOR`], so that a flood from one address, or on one service, always
//!   leaves room for the other senders and the other services.
//! - [`BufferAccount`]: one connection's way to reserve: its peer's and its service's
//!   shares, then the process budget.
//! - [`RefusalLog`]: one WARN per peer per [`REFUSAL_LOG_INTERVAL`], with the number of
//!   refusals it stands for, about at most [`REFUSAL_LOG_PEERS_MAX`] peers at a time.
//!
//! Limits: the connection table holds at most `connections_max` peers; the refusal log
//! at most [`REFUSAL_LOG_PEERS_MAX`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The default process-wide budget of inbound read-buffer bytes: 1 GiB.
pub const INBOUND_BUFFER_BYTES_MAX_DEFAULT: usize = 1 << 30;
/// The default maximum of open connections of one service: 4,096.
pub const CONNECTIONS_MAX_DEFAULT: usize = 4096;
/// The default maximum of open connections of one service from one IP address: 256.
pub const CONNECTIONS_PER_PEER_MAX_DEFAULT: usize = 256;
/// A peer's refused connections are logged at most once per this interval.
pub const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(60);
/// A service's read buffers hold at most this fraction (1/N) of the process budget.
pub const SERVICE_SHARE_DIVISOR: usize = 2;
/// One peer address's read buffers (on one service) hold at most this fraction (1/N) of
/// the process budget.
pub const PEER_SHARE_DIVISOR: usize = 8;

/// Peers the refusal log remembers at once (per server); past it, entries older than
/// the interval are forgotten, then all of them.
pub const REFUSAL_LOG_PEERS_MAX: usize = 1024;

/// The process-wide budget of inbound read-buffer bytes; cheap to clone, shared by every
/// shard. See the module doc.
#[derive(Debug, Clone)]
pub struct InboundBudget {
    inner: Arc<BudgetInner>,
}

#[derive(Debug)]
struct BudgetInner {
    bytes_max: usize,
    held: AtomicUsize,
}

impl InboundBudget {
    /// A budget of `bytes_max` bytes, none held.
    pub fn new(bytes_max: usize) -> Self {
        Self {
            inner: Arc::new(BudgetInner {
                bytes_max,
                held: AtomicUsize::new(0),
            }),
        }
    }

    /// The configured maximum.
    pub fn bytes_max(&self) -> usize {
        self.inner.bytes_max
    }

    /// Bytes reserved now.
    pub fn held(&self) -> usize {
        self.inner.held.load(Ordering::Relaxed)
    }

    /// Reserves `bytes` if the total stays within the maximum; false (nothing reserved)
    /// otherwise.
    pub fn try_reserve(&self, bytes: usize) -> bool {
        let max = self.inner.bytes_max;
        self.inner
            .held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                held.checked_add(bytes).filter(|&total| total <= max)
            })
            .is_ok()
    }

    /// Gives back `bytes` reserved before.
    pub fn release(&self, bytes: usize) {
        let before = self.inner.held.fetch_sub(bytes, Ordering::AcqRel);
        assert!(before >= bytes, "released more inbound bytes than reserved");
    }
}

impl Default for InboundBudget {
    fn default() -> Self {
        Self::new(INBOUND_BUFFER_BYTES_MAX_DEFAULT)
    }
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The service has `connections_max` connections open.
    ServiceFull {
        /// The limit.
        connections_max: usize,
    },
    /// The peer address has `connections_per_peer_max` connections open.
    PeerFull {
        /// The limit.
        connections_per_peer_max: usize,
    },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::ServiceFull { connections_max } => {
                write!(f, "the service has MaxConnections = {connections_max} open")
            }
            Refusal::PeerFull {
                connections_per_peer_max,
            } => write!(
                f,
                "this address has MaxConnectionsPerPeer = {connections_per_peer_max} open"
            ),
        }
    }
}

/// Open connections of one service, in total and per peer address; cheap to clone,
/// shared by the service's instances on every shard.
#[derive(Debug, Clone)]
pub struct ConnectionTable {
    inner: Arc<TableInner>,
}

#[derive(Debug)]
struct TableInner {
    connections_max: usize,
    connections_per_peer_max: usize,
    open: Mutex<TableCounts>,
}

#[derive(Debug, Default)]
struct TableCounts {
    total: usize,
    /// Read-buffer bytes reserved by the service's connections.
    bytes: usize,
    per_peer: HashMap<IpAddr, PeerCounts>,
}

#[derive(Debug, Default)]
struct PeerCounts {
    connections: usize,
    bytes: usize,
}

impl ConnectionTable {
    /// A table admitting at most `connections_max` connections (at least 1), at most
    /// `connections_per_peer_max` (at least 1) from one IP address.
    pub fn new(connections_max: usize, connections_per_peer_max: usize) -> Self {
        Self {
            inner: Arc::new(TableInner {
                connections_max: connections_max.max(1),
                connections_per_peer_max: connections_per_peer_max.max(1),
                open: Mutex::default(),
            }),
        }
    }

    /// The service's limit.
    pub fn connections_max(&self) -> usize {
        self.inner.connections_max
    }

    /// The per-address limit.
    pub fn connections_per_peer_max(&self) -> usize {
        self.inner.connections_per_peer_max
    }

    /// Connections open now (all shards).
    pub fn open(&self) -> usize {
        self.lock().total
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TableCounts> {
        // The counts stay consistent whatever panicked while holding the lock: each
        // update is a single step.
        self.inner
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a new connection from `peer`, or says why it must be refused. The
    /// connection counts until the returned admission is dropped.
    pub fn try_admit(&self, peer: IpAddr) -> Result<Admission, Refusal> {
        self.admit(peer, false)
    }

    /// [`try_admit`](Self::try_admit) in the place of a connection being displaced for it
    /// (see `crate::tcp::conns`): past `connections_max` while that one closes, never
    /// past the per-peer limit.
    pub fn try_admit_displacing(&self, peer: IpAddr) -> Result<Admission, Refusal> {
        self.admit(peer, true)
    }

    fn admit(&self, peer: IpAddr, displacing: bool) -> Result<Admission, Refusal> {
        let mut open = self.lock();
        if !displacing && open.total >= self.inner.connections_max {
            return Err(Refusal::ServiceFull {
                connections_max: self.inner.connections_max,
            });
        }
        let from_peer = open.per_peer.entry(peer).or_default();
        if from_peer.connections >= self.inner.connections_per_peer_max {
            return Err(Refusal::PeerFull {
                connections_per_peer_max: self.inner.connections_per_peer_max,
            });
        }
        from_peer.connections += 1;
        open.total += 1;
        Ok(Admission {
            table: self.clone(),
            peer,
        })
    }
}

impl Default for ConnectionTable {
    fn default() -> Self {
        Self::new(CONNECTIONS_MAX_DEFAULT, CONNECTIONS_PER_PEER_MAX_DEFAULT)
    }
}

/// One open connection's place in its [`ConnectionTable`]; given back when dropped.
#[derive(Debug)]
pub struct Admission {
    table: ConnectionTable,
    peer: IpAddr,
}

impl Admission {
    /// Reserves `bytes` within the service's and the peer's shares of `budget_max`.
    fn try_reserve(&self, bytes: usize, budget_max: usize) -> bool {
        let mut guard = self.table.lock();
        let open = &mut *guard;
        let Some(peer) = open.per_peer.get_mut(&self.peer) else {
            return false;
        };
        let service_fits = open.bytes.saturating_add(bytes) <= budget_max / SERVICE_SHARE_DIVISOR;
        let peer_fits = peer.bytes.saturating_add(bytes) <= budget_max / PEER_SHARE_DIVISOR;
        if !(service_fits && peer_fits) {
            return false;
        }
        open.bytes += bytes;
        peer.bytes += bytes;
        true
    }

    fn release(&self, bytes: usize) {
        let mut guard = self.table.lock();
        let open = &mut *guard;
        let peer = open.per_peer.get_mut(&self.peer);
        assert!(
            open.bytes >= bytes && peer.as_ref().is_some_and(|p| p.bytes >= bytes),
            "released more service bytes than reserved"
        );
        open.bytes -= bytes;
        if let Some(peer) = peer {
            peer.bytes -= bytes;
        }
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut open = self.table.lock();
        open.total -= 1;
        if let Some(counts) = open.per_peer.get_mut(&self.peer) {
            counts.connections -= 1;
            if counts.connections == 0 {
                debug_assert_eq!(counts.bytes, 0, "a closed peer still holds bytes");
                open.per_peer.remove(&self.peer);
            }
        }
    }
}

/// Where one connection's read buffer is reserved: its service's and its peer's shares
/// (when it has an [`Admission`]), then the process budget. Dropping it drops the
/// admission; the bytes must have been released before.
#[derive(Debug)]
pub struct BufferAccount {
    budget: InboundBudget,
    admission: Option<Admission>,
}

impl BufferAccount {
    /// An account charging `budget`, and the shares of `admission`'s service and peer.
    pub fn new(budget: InboundBudget, admission: Option<Admission>) -> Self {
        Self { budget, admission }
    }

    /// Reserves `bytes` everywhere, or nowhere (false).
    pub fn try_reserve(&self, bytes: usize) -> bool {
        let budget_max = self.budget.bytes_max();
        if let Some(admission) = &self.admission
            && !admission.try_reserve(bytes, budget_max)
        {
            return false;
        }
        if self.budget.try_reserve(bytes) {
            return true;
        }
        if let Some(admission) = &self.admission {
            admission.release(bytes);
        }
        false
    }

    /// Gives back `bytes` reserved before.
    pub fn release(&self, bytes: usize) {
        if let Some(admission) = &self.admission {
            admission.release(bytes);
        }
        self.budget.release(bytes);
    }
}

/// Rate limit of the refused-connection WARN: once per peer per interval.
#[derive(Debug)]
pub struct RefusalLog {
    interval: Duration,
    /// Per peer: when it was last logged, refusals since then not logged.
    peers: HashMap<IpAddr, (Instant, u64)>,
}

impl RefusalLog {
    /// A log that speaks about each peer at most once per `interval`.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            peers: HashMap::new(),
        }
    }

    /// Notes a refusal of `peer` at `now`: `Some(n)` when it is to be logged now, `n`
    /// being the refusals it stands for (this one and those not logged since the last
    /// line), `None` when it is to stay silent.
    pub fn note(&mut self, peer: IpAddr, now: Instant) -> Option<u64> {
        if let Some((last, silent)) = self.peers.get_mut(&peer) {
            if now.duration_since(*last) < self.interval {
                *silent += 1;
                return None;
            }
            let n = *silent + 1;
            *last = now;
            *silent = 0;
            return Some(n);
        }
        if self.peers.len() >= REFUSAL_LOG_PEERS_MAX {
            let interval = self.interval;
            self.peers
                .retain(|_, (last, _)| now.duration_since(*last) < interval);
            if self.peers.len() >= REFUSAL_LOG_PEERS_MAX {
                self.peers.clear();
            }
        }
        self.peers.insert(peer, (now, 0));
        Some(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn budget_refuses_what_would_pass_the_maximum_and_takes_back_releases() {
        let budget = InboundBudget::new(100);
        assert!(budget.try_reserve(60));
        assert!(!budget.try_reserve(41), "60 + 41 > 100");
        assert_eq!(budget.held(), 60);
        assert!(budget.try_reserve(40));
        budget.release(100);
        assert_eq!(budget.held(), 0);
        assert!(!budget.try_reserve(usize::MAX), "no overflow");
    }

    #[test]
    fn table_refuses_past_the_per_peer_limit_but_admits_other_peers() {
        let table = ConnectionTable::new(10, 2);
        let a1 = table.try_admit(ip(1)).unwrap();
        let _a2 = table.try_admit(ip(1)).unwrap();
        assert_eq!(
            table.try_admit(ip(1)).unwrap_err(),
            Refusal::PeerFull {
                connections_per_peer_max: 2
            }
        );
        let _b = table.try_admit(ip(2)).expect("another peer is admitted");
        drop(a1);
        assert!(table.try_admit(ip(1)).is_ok(), "a freed place is reused");
    }

    #[test]
    fn table_refuses_past_the_service_limit_and_forgets_closed_peers() {
        let table = ConnectionTable::new(2, 5);
        let a = table.try_admit(ip(1)).unwrap();
        let b = table.try_admit(ip(2)).unwrap();
        assert_eq!(
            table.try_admit(ip(3)).unwrap_err(),
            Refusal::ServiceFull { connections_max: 2 }
        );
        drop((a, b));
        assert_eq!(table.open(), 0);
        assert!(
            table.lock().per_peer.is_empty(),
            "no entry kept per closed peer"
        );
    }

    #[test]
    fn one_peer_takes_at_most_its_share_and_leaves_room_for_another() {
        let budget = InboundBudget::new(800);
        let table = ConnectionTable::new(10, 10);
        let a1 = BufferAccount::new(budget.clone(), Some(table.try_admit(ip(1)).unwrap()));
        let a2 = BufferAccount::new(budget.clone(), Some(table.try_admit(ip(1)).unwrap()));
        let b = BufferAccount::new(budget.clone(), Some(table.try_admit(ip(2)).unwrap()));
        assert!(a1.try_reserve(100), "the peer's share is 800 / 8");
        assert!(!a2.try_reserve(1), "the peer's share is spent");
        assert!(b.try_reserve(100), "another peer has its own share");
        assert_eq!(budget.held(), 200);
        a1.release(100);
        assert!(a2.try_reserve(100), "a released share is reused");
        a2.release(100);
        b.release(100);
        assert_eq!(budget.held(), 0);
    }

    #[test]
    fn one_service_takes_at_most_half_of_the_budget() {
        let budget = InboundBudget::new(800);
        let flooded = ConnectionTable::new(100, 100);
        let accounts: Vec<_> = (1..=5)
            .map(|i| BufferAccount::new(budget.clone(), Some(flooded.try_admit(ip(i)).unwrap())))
            .collect();
        let granted = accounts.iter().filter(|a| a.try_reserve(100)).count();
        assert_eq!(granted, 4, "400 bytes: half of the budget");
        let other = ConnectionTable::new(100, 100);
        let quiet = BufferAccount::new(budget.clone(), Some(other.try_admit(ip(1)).unwrap()));
        assert!(quiet.try_reserve(100), "the other service still has room");
        for a in accounts.iter().take(granted) {
            a.release(100);
        }
        quiet.release(100);
        assert_eq!(budget.held(), 0);
    }

    #[test]
    fn refusal_log_speaks_once_per_peer_per_interval_with_the_count() {
        let mut log = RefusalLog::new(Duration::from_secs(60));
        let t0 = Instant::now();
        assert_eq!(log.note(ip(1), t0), Some(1));
        for _ in 0..99 {
            assert_eq!(log.note(ip(1), t0 + Duration::from_secs(1)), None);
        }
        assert_eq!(
            log.note(ip(2), t0),
            Some(1),
            "another peer has its own line"
        );
        assert_eq!(log.note(ip(1), t0 + Duration::from_secs(61)), Some(100));
    }

    #[test]
    fn refusal_log_stays_bounded_under_many_peers() {
        let mut log = RefusalLog::new(Duration::from_secs(60));
        let t0 = Instant::now();
        for i in 0..(REFUSAL_LOG_PEERS_MAX as u32 * 3) {
            let peer = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            assert_eq!(log.note(peer, t0), Some(1));
            assert!(log.peers.len() <= REFUSAL_LOG_PEERS_MAX);
        }
    }
}
