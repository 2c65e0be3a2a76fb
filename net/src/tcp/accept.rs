//! The accept loop of an inbound TCP server, whatever its protocol: the listening socket
//! (SO_REUSEPORT, so every shard listening on the same port gets its share of connections
//! from the kernel), the admission of each connection against the service's
//! [`ConnectionTable`] (refused at once, or room made by displacing a connection, see
//! [`crate::tcp::conns`]), one local task per connection running the protocol's future,
//! the connection counters, and a stop that waits for the open connections to close.
//!
//! A protocol (MLLP's server; later HTTP and TLS) hands [`Acceptor::run`] the future that
//! serves one [`Connection`]; what it reads and writes is its own.
//!
//! Limits: connections of the service (all shards) ≤ its table's `connections_max`, from
//! one IP address ≤ its `connections_per_peer_max`; refusals and displacements are logged
//! once per peer per [`REFUSAL_LOG_INTERVAL`].

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_lite::future::FutureExt as _;
use glommio::net::{TcpListener, TcpStream};
use glommio::timer::Timer;

use crate::error::MllpError;
use crate::tcp::conns::{Displaced, LocalConns, StopFlag};
use crate::tcp::limits::{Admission, ConnectionTable, REFUSAL_LOG_INTERVAL, Refusal, RefusalLog};

/// Listen backlog of a server's socket (glommio's own choice for its listeners).
const LISTEN_BACKLOG: i32 = 1024;
/// How long the loop pauses after a failed `accept` (out of descriptors and the like), so
/// that it does not spin on the error.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(10);

/// Who a connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnInfo {
    /// Number of the connection on this server, from 1.
    pub id: u64,
    /// The sender's address.
    pub peer: SocketAddr,
    /// Our address of the connection.
    pub local: SocketAddr,
}

/// The accept loop's counters, a snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct AcceptStats {
    /// Connections accepted and served.
    pub(crate) connections_accepted: u64,
    /// Connections open now.
    pub(crate) connections_active: usize,
    /// Connections closed at once, past the service's or the peer's maximum.
    pub(crate) connections_rejected: u64,
    /// Connections cut by the heaviest-address rule.
    pub(crate) connections_displaced: u64,
    /// Connections closed by the idle-longest rule.
    pub(crate) connections_displaced_idle: u64,
    /// Failed accepts, and accepted sockets whose addresses could not be read.
    pub(crate) io_errors: u64,
}

/// One admitted connection, handed to the protocol.
pub(crate) struct Connection {
    pub(crate) stream: TcpStream,
    pub(crate) info: ConnInfo,
    /// Its place in the service's connection table (and its buffer shares).
    pub(crate) admission: Admission,
    /// Raised when the server stops or displaces the connection; the protocol marks on it
    /// when the connection is idle between messages (see [`crate::tcp::conns`]).
    pub(crate) stop: Rc<StopFlag>,
}

#[derive(Debug)]
struct Shared {
    /// The protocol's name, for the log ("MLLP").
    protocol: &'static str,
    stats: Cell<AcceptStats>,
    refusals: RefCell<RefusalLog>,
    /// The same rate limit for displacements (per displaced address; one key for the
    /// idle-longest rule, whose victims are spread over many addresses).
    displacements: RefCell<RefusalLog>,
    accept_stop: StopFlag,
    conns: RefCell<LocalConns>,
    drained: StopFlag,
    stopping: Cell<bool>,
}

impl Shared {
    fn new(protocol: &'static str) -> Self {
        Self {
            protocol,
            stats: Cell::default(),
            refusals: RefCell::new(RefusalLog::new(REFUSAL_LOG_INTERVAL)),
            displacements: RefCell::new(RefusalLog::new(REFUSAL_LOG_INTERVAL)),
            accept_stop: StopFlag::default(),
            conns: RefCell::default(),
            drained: StopFlag::default(),
            stopping: Cell::default(),
        }
    }

    fn count(&self, f: impl FnOnce(&mut AcceptStats)) {
        let mut s = self.stats.get();
        f(&mut s);
        self.stats.set(s);
    }
}

/// Stops an accept loop and reads its counters; cheap to clone, local to its shard.
#[derive(Debug, Clone)]
pub(crate) struct AcceptHandle {
    shared: Rc<Shared>,
    local_addr: SocketAddr,
}

impl AcceptHandle {
    /// Stops accepting and raises every open connection's stop flag.
    pub(crate) fn stop(&self) {
        self.shared.stopping.set(true);
        self.shared.accept_stop.stop();
        self.shared.conns.borrow().stop_all();
    }

    /// The counters now.
    pub(crate) fn stats(&self) -> AcceptStats {
        self.shared.stats.get()
    }

    /// The address listened on.
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

/// A listening socket and its service's connection table, ready to [`run`](Self::run).
#[derive(Debug)]
pub(crate) struct Acceptor {
    listener: TcpListener,
    connections: ConnectionTable,
    handle: AcceptHandle,
}

impl Acceptor {
    /// Binds `addr` (SO_REUSEPORT, SO_REUSEADDR) on the current glommio executor; the log
    /// names the server by `protocol`.
    pub(crate) fn bind(
        addr: SocketAddr,
        connections: ConnectionTable,
        protocol: &'static str,
    ) -> Result<Self, MllpError> {
        let listener = listen(addr).map_err(|source| MllpError::Bind { addr, source })?;
        let local_addr = listener.local_addr().map_err(|e| MllpError::Bind {
            addr,
            source: e.into(),
        })?;
        Ok(Self {
            listener,
            connections,
            handle: AcceptHandle {
                shared: Rc::new(Shared::new(protocol)),
                local_addr,
            },
        })
    }

    /// A handle to stop the loop and read its counters.
    pub(crate) fn handle(&self) -> AcceptHandle {
        self.handle.clone()
    }

    /// Accepts connections until stopped, serving each with `serve` in a task of its own,
    /// then waits for the open ones to close.
    pub(crate) async fn run<F, Fut>(self, serve: F) -> Result<(), MllpError>
    where
        F: Fn(Connection) -> Fut,
        Fut: Future<Output = ()> + 'static,
    {
        let shared = self.handle.shared.clone();
        let mut next_id = 0u64;
        loop {
            let accepted = async { Some(self.listener.accept().await) }
                .or(async {
                    shared.accept_stop.wait().await;
                    None
                })
                .await;
            let Some(accepted) = accepted else { break };
            let stream = match accepted {
                Ok(stream) => stream,
                Err(e) => {
                    shared.count(|s| s.io_errors += 1);
                    tracing::warn!(addr = %self.handle.local_addr, error = %e, "{} accept failed", shared.protocol);
                    Timer::new(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            };
            next_id += 1;
            if let Some(conn) = self.admit(stream, next_id) {
                spawn_connection(conn, &serve, shared.clone());
            }
        }
        drop(self.listener);
        if !shared.conns.borrow().is_empty() {
            shared.drained.wait().await;
        }
        Ok(())
    }

    /// Admits the connection (displacing one to make room if need be) or refuses it.
    fn admit(&self, stream: TcpStream, id: u64) -> Option<Connection> {
        let shared = &self.handle.shared;
        let (Ok(peer), Ok(local)) = (stream.peer_addr(), stream.local_addr()) else {
            shared.count(|s| s.io_errors += 1);
            return None;
        };
        let admission = match self.connections.try_admit(peer.ip()) {
            Ok(admission) => admission,
            Err(Refusal::ServiceFull { connections_max }) => {
                let displaced = shared
                    .conns
                    .borrow_mut()
                    .displace_for(peer.ip(), Instant::now());
                let Some(displaced) = displaced else {
                    refuse(
                        stream,
                        peer,
                        Refusal::ServiceFull { connections_max },
                        shared,
                    );
                    return None;
                };
                note_displacement(displaced, peer, connections_max, shared);
                match self.connections.try_admit_displacing(peer.ip()) {
                    Ok(admission) => admission,
                    Err(refusal) => {
                        refuse(stream, peer, refusal, shared);
                        return None;
                    }
                }
            }
            Err(refusal) => {
                refuse(stream, peer, refusal, shared);
                return None;
            }
        };
        // Small answers must not wait for Nagle.
        let _ = stream.set_nodelay(true);
        Some(Connection {
            stream,
            info: ConnInfo { id, peer, local },
            admission,
            stop: Rc::new(StopFlag::default()),
        })
    }
}

/// Enters the connection in the table and serves it in a task of its own, which takes it
/// out again once served.
fn spawn_connection<F, Fut>(conn: Connection, serve: &F, shared: Rc<Shared>)
where
    F: Fn(Connection) -> Fut,
    Fut: Future<Output = ()> + 'static,
{
    let id = conn.info.id;
    shared
        .conns
        .borrow_mut()
        .insert(id, conn.info.peer.ip(), conn.stop.clone());
    shared.count(|s| {
        s.connections_accepted += 1;
        s.connections_active += 1;
    });
    let served = serve(conn);
    glommio::spawn_local(async move {
        served.await;
        shared.conns.borrow_mut().remove(id);
        shared.count(|s| s.connections_active -= 1);
        if shared.stopping.get() && shared.conns.borrow().is_empty() {
            shared.drained.stop();
        }
    })
    .detach();
}

/// Counts a displacement and logs it once per displaced address per
/// [`REFUSAL_LOG_INTERVAL`] (a flood from many addresses: once per interval in all).
fn note_displacement(
    displaced: Displaced,
    newcomer: SocketAddr,
    connections_max: usize,
    shared: &Shared,
) {
    let (key, rule) = match displaced {
        Displaced::Heaviest(victim) => {
            shared.count(|s| s.connections_displaced += 1);
            (
                victim,
                "the newest connection of the address with the most was cut",
            )
        }
        Displaced::IdleLongest(_) => {
            shared.count(|s| s.connections_displaced_idle += 1);
            (
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                "the connection idle longest (between messages) was closed",
            )
        }
    };
    let Some(displaced_n) = shared.displacements.borrow_mut().note(key, Instant::now()) else {
        return;
    };
    let victim = match displaced {
        Displaced::Heaviest(ip) | Displaced::IdleLongest(ip) => ip,
    };
    tracing::warn!(
        peer = %newcomer.ip(),
        displaced_peer = %victim,
        displaced = displaced_n,
        "{} service full (MaxConnections = {connections_max}): {rule} to make room for a \
         new connection (such displacements are logged at most once per {} s, `displaced` \
         counts them)",
        shared.protocol,
        REFUSAL_LOG_INTERVAL.as_secs()
    );
}

/// Closes a connection past a limit at once, unread, and logs it once per peer per
/// [`REFUSAL_LOG_INTERVAL`].
fn refuse(stream: TcpStream, peer: SocketAddr, refusal: Refusal, shared: &Shared) {
    shared.count(|s| s.connections_rejected += 1);
    drop(stream);
    let Some(refused) = shared.refusals.borrow_mut().note(peer.ip(), Instant::now()) else {
        return;
    };
    tracing::warn!(
        peer = %peer.ip(),
        refused,
        "{} connection refused: {refusal} (closed at once; refusals of this address are \
         logged at most once per {} s, `refused` counts them)",
        shared.protocol,
        REFUSAL_LOG_INTERVAL.as_secs()
    );
}

/// A listening socket on `addr` with SO_REUSEPORT (every shard's server on the same port
/// gets its share of connections) and SO_REUSEADDR (the port can be bound while
/// connections it accepted before wait out TIME_WAIT: a service restarted after cutting a
/// flood binds at once). glommio's own `TcpListener::bind` sets only the first.
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use std::os::fd::{FromRawFd as _, IntoRawFd as _};
    let domain = socket2::Domain::for_address(addr);
    let socket = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    // SAFETY: the descriptor is a bound, listening TCP socket that nothing else owns
    // (into_raw_fd gave up ownership); the listener takes it over and closes it.
    Ok(unsafe { TcpListener::from_raw_fd(socket.into_raw_fd()) })
}
