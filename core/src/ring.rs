//! Rings between shards: one bounded lock-free SPSC ring (`rtrb`) for every ordered pair
//! of shards, and a doorbell per shard to wake it when it sleeps.
//!
//! Each shard owns a [`ShardRings`]: the producer ends of the rings to every other shard
//! and the consumer ends of the rings from every other shard. Nothing else is shared
//! between shards on the data path.
//!
//! Invariants and costs:
//! - A full ring is backpressure: [`ShardRings::try_push`] hands the value back
//!   (`Err(Full(value))`), and [`ShardRings::push`] waits for space. Nothing is dropped.
//! - A consumer parks only when all its inbound rings are empty ([`ShardRings::wait_inbound`]).
//!   Before parking it raises its doorbell's `asleep` flag; a producer rings the bell only
//!   when it sees that flag, so on the busy path a push costs one extra atomic load.
//! - The flag and the ring indices form a Dekker pair (store one, load the other), so both
//!   sides put a `SeqCst` fence between their store and their load: either the producer
//!   sees `asleep`, or the consumer sees the new item before parking. No lost wakeups.
//! - A producer waiting for space re-checks at least every [`SPACE_RECHECK`]: several
//!   tasks of one shard may wait on the same ring and the space doorbell wakes only the
//!   last to register. Rings are sized so that this is the rare, overloaded case.

use std::cell::RefCell;
use std::future::poll_fn;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering, fence};
use std::task::Poll;
use std::time::Duration;

use atomic_waker::AtomicWaker;
use rtrb::{Consumer, Producer, RingBuffer};

/// How long a producer blocked on a full ring sleeps at most before it looks again.
pub const SPACE_RECHECK: Duration = Duration::from_micros(500);

/// The smallest ring a mesh accepts; smaller rings would make every burst backpressure.
pub const RING_CAPACITY_MIN: usize = 16;

/// A value handed back because the ring to its shard is full.
#[derive(Debug, PartialEq, Eq)]
pub struct Full<T>(pub T);

/// Wakes a parked task of one shard from any thread.
#[derive(Debug, Default)]
pub struct Doorbell {
    asleep: AtomicBool,
    waker: AtomicWaker,
}

impl Doorbell {
    /// Wakes the task parked on this bell, if one is. Costs one atomic load when none is.
    pub fn ring(&self) {
        fence(Ordering::SeqCst);
        if self.asleep.load(Ordering::Relaxed) && self.asleep.swap(false, Ordering::AcqRel) {
            self.waker.wake();
        }
    }

    /// Registers the current task and raises the `asleep` flag; the caller must re-check
    /// its condition afterwards and [`Doorbell::cancel`] if it no longer needs to sleep.
    fn prepare_sleep(&self, waker: &std::task::Waker) {
        self.waker.register(waker);
        self.asleep.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    fn cancel(&self) {
        self.asleep.store(false, Ordering::Relaxed);
    }
}

/// The doorbells of every shard: `inbox[s]` is rung when something arrives for shard `s`,
/// `space[s]` when a ring out of shard `s` has been drained.
#[derive(Debug)]
pub struct Doorbells {
    inbox: Box<[Doorbell]>,
    space: Box<[Doorbell]>,
}

impl Doorbells {
    fn new(shards: usize) -> Self {
        Doorbells {
            inbox: (0..shards).map(|_| Doorbell::default()).collect(),
            space: (0..shards).map(|_| Doorbell::default()).collect(),
        }
    }

    /// The bell that wakes shard `shard`'s inbound loop (also used by the control channel).
    pub fn inbox(&self, shard: usize) -> &Doorbell {
        &self.inbox[shard]
    }
}

/// One shard's ends of the ring mesh.
#[derive(Debug)]
pub struct ShardRings<T> {
    shard: usize,
    /// `outbound[d]`: producer of the ring from this shard to shard `d` (`None` for itself).
    outbound: Vec<Option<RefCell<Producer<T>>>>,
    /// `inbound[s]`: consumer of the ring from shard `s` to this shard (`None` for itself).
    inbound: Vec<Option<RefCell<Consumer<T>>>>,
    bells: Arc<Doorbells>,
    /// Where the next drain starts, so that no source shard is favoured.
    next_source: std::cell::Cell<usize>,
}

/// Builds the full mesh for `shards` shards, each ring holding `capacity` values.
///
/// Returns one [`ShardRings`] per shard, in shard order, to be moved onto its thread.
pub fn mesh<T: Send>(shards: usize, capacity: usize) -> Vec<ShardRings<T>> {
    assert!(shards >= 1, "a mesh needs at least one shard");
    let capacity = capacity.max(RING_CAPACITY_MIN);
    let bells = Arc::new(Doorbells::new(shards));
    let mut outbound: Vec<Vec<Option<RefCell<Producer<T>>>>> = (0..shards)
        .map(|_| (0..shards).map(|_| None).collect())
        .collect();
    let mut inbound: Vec<Vec<Option<RefCell<Consumer<T>>>>> = (0..shards)
        .map(|_| (0..shards).map(|_| None).collect())
        .collect();
    for from in 0..shards {
        for to in 0..shards {
            if from != to {
                let (producer, consumer) = RingBuffer::new(capacity);
                outbound[from][to] = Some(RefCell::new(producer));
                inbound[to][from] = Some(RefCell::new(consumer));
            }
        }
    }
    outbound
        .into_iter()
        .zip(inbound)
        .enumerate()
        .map(|(shard, (outbound, inbound))| ShardRings {
            shard,
            outbound,
            inbound,
            bells: Arc::clone(&bells),
            next_source: std::cell::Cell::new(0),
        })
        .collect()
}

impl<T> ShardRings<T> {
    /// This shard's index.
    pub fn shard(&self) -> usize {
        self.shard
    }

    /// The number of shards in the mesh.
    pub fn shards(&self) -> usize {
        self.outbound.len()
    }

    /// The doorbells of the whole mesh (to wake a shard from outside, e.g. for control).
    pub fn doorbells(&self) -> &Arc<Doorbells> {
        &self.bells
    }

    /// Values waiting in the rings towards this shard, summed over their senders (for
    /// the admin API; a ring in use at the moment is left out).
    pub fn inbound_queued(&self) -> usize {
        self.inbound
            .iter()
            .flatten()
            .filter_map(|ring| ring.try_borrow().ok().map(|c| c.slots()))
            .sum()
    }

    /// Values waiting in each ring towards this shard, as `(sending shard, values)` (for
    /// the admin API; a ring in use at the moment is left out).
    pub fn inbound_queued_by_peer(&self) -> Vec<(usize, usize)> {
        self.inbound
            .iter()
            .enumerate()
            .filter_map(|(peer, ring)| Some((peer, ring.as_ref()?.try_borrow().ok()?.slots())))
            .collect()
    }

    /// Pushes `value` to shard `to`, or hands it back if that ring is full.
    ///
    /// Panics if `to` is this shard or out of range: routing to oneself goes through the
    /// local queue, and a wrong shard index is a bug of ours, not bad input.
    pub fn try_push(&self, to: usize, value: T) -> Result<(), Full<T>> {
        let ring = self.outbound[to]
            .as_ref()
            .unwrap_or_else(|| panic!("shard {} pushed to its own ring", self.shard));
        match ring.borrow_mut().push(value) {
            Ok(()) => {
                self.bells.inbox[to].ring();
                Ok(())
            }
            Err(rtrb::PushError::Full(value)) => Err(Full(value)),
        }
    }

    /// Pushes `value` to shard `to`, waiting while that ring is full (backpressure).
    pub async fn push(&self, to: usize, value: T) {
        let mut value = value;
        loop {
            match self.try_push(to, value) {
                Ok(()) => return,
                Err(Full(back)) => value = back,
            }
            self.wait_space(to).await;
        }
    }

    /// Waits until the ring to `to` has room, or [`SPACE_RECHECK`] has passed.
    async fn wait_space(&self, to: usize) {
        let bell = &self.bells.space[self.shard];
        let has_space = || {
            let ring = self.outbound[to].as_ref().expect("ring to another shard");
            !ring.borrow().is_full()
        };
        let parked = poll_fn(|cx| {
            if has_space() {
                return Poll::Ready(());
            }
            bell.prepare_sleep(cx.waker());
            if has_space() {
                bell.cancel();
                return Poll::Ready(());
            }
            Poll::Pending
        });
        futures_lite::future::or(parked, glommio::timer::sleep(SPACE_RECHECK)).await;
    }

    /// Pops up to `max` values from the inbound rings, calling `deliver(from_shard, value)`
    /// for each; returns how many were delivered. Producers waiting for space are woken.
    pub fn drain(&self, max: usize, mut deliver: impl FnMut(usize, T)) -> usize {
        let shards = self.inbound.len();
        let start = self.next_source.get();
        let mut delivered = 0;
        for step in 0..shards {
            let from = (start + step) % shards;
            let Some(ring) = self.inbound[from].as_ref() else {
                continue;
            };
            let mut ring = ring.borrow_mut();
            let mut taken = 0;
            while delivered < max {
                let Ok(value) = ring.pop() else { break };
                deliver(from, value);
                delivered += 1;
                taken += 1;
            }
            drop(ring);
            if taken > 0 {
                self.bells.space[from].ring();
            }
            if delivered == max {
                self.next_source.set((from + 1) % shards);
                return delivered;
            }
        }
        self.next_source.set((start + 1) % shards.max(1));
        delivered
    }

    /// True when an inbound ring holds a value.
    pub fn has_inbound(&self) -> bool {
        self.inbound
            .iter()
            .flatten()
            .any(|ring| !ring.borrow().is_empty())
    }

    /// Waits until an inbound ring holds a value or the inbox bell is rung (by another
    /// shard or by the control channel through [`Doorbells::inbox`]).
    pub async fn wait_inbound(&self) {
        let bell = &self.bells.inbox[self.shard];
        let mut registered = false;
        poll_fn(|cx| {
            if registered && !bell.asleep.load(Ordering::Acquire) {
                // Rung since we parked: something arrived, on a ring or elsewhere.
                return Poll::Ready(());
            }
            if self.has_inbound() {
                bell.cancel();
                return Poll::Ready(());
            }
            bell.prepare_sleep(cx.waker());
            registered = true;
            if self.has_inbound() {
                bell.cancel();
                return Poll::Ready(());
            }
            Poll::Pending
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use glommio::LocalExecutorBuilder;
    use std::time::Instant;

    #[test]
    fn try_push_hands_the_value_back_when_the_ring_is_full() {
        let rings = mesh::<u32>(2, RING_CAPACITY_MIN);
        for n in 0..RING_CAPACITY_MIN as u32 {
            rings[0].try_push(1, n).expect("room");
        }
        assert_eq!(rings[0].try_push(1, 99), Err(Full(99)));
        let mut got = Vec::new();
        assert_eq!(
            rings[1].drain(usize::MAX, |from, v| got.push((from, v))),
            16
        );
        assert_eq!(got, (0..16).map(|v| (0, v)).collect::<Vec<_>>());
        rings[0].try_push(1, 99).expect("room after drain");
    }

    #[test]
    fn drain_stops_at_max_and_resumes_with_the_next_source() {
        let mut rings = mesh::<u32>(3, 64);
        let two = rings.pop().unwrap();
        let one = rings.pop().unwrap();
        let zero = rings.pop().unwrap();
        for v in 0..4 {
            zero.try_push(2, v).unwrap();
            one.try_push(2, 100 + v).unwrap();
        }
        assert_eq!((two.inbound_queued(), zero.inbound_queued()), (8, 0));
        assert_eq!(two.inbound_queued_by_peer(), [(0, 4), (1, 4)]);
        let mut got = Vec::new();
        assert_eq!(two.drain(3, |from, v| got.push((from, v))), 3);
        assert_eq!(two.inbound_queued(), 5);
        assert_eq!(two.inbound_queued_by_peer(), [(0, 1), (1, 4)]);
        assert_eq!(two.drain(usize::MAX, |from, v| got.push((from, v))), 5);
        let from_zero: Vec<u32> = got.iter().filter(|g| g.0 == 0).map(|g| g.1).collect();
        let from_one: Vec<u32> = got.iter().filter(|g| g.0 == 1).map(|g| g.1).collect();
        assert_eq!(from_zero, vec![0, 1, 2, 3], "FIFO per source");
        assert_eq!(from_one, vec![100, 101, 102, 103], "FIFO per source");
    }

    #[test]
    #[should_panic(expected = "pushed to its own ring")]
    fn pushing_to_oneself_is_a_bug() {
        let rings = mesh::<u32>(2, 16);
        let _ = rings[0].try_push(0, 1);
    }

    /// Two executors on two threads: a producer that outruns a tiny ring and a consumer
    /// that parks whenever the ring is empty. Every value arrives, in order, once.
    #[test]
    fn values_cross_threads_in_order_with_parking_and_backpressure() {
        const COUNT: u64 = 200_000;
        let mut rings = mesh::<u64>(2, RING_CAPACITY_MIN);
        let consumer_end = rings.pop().unwrap();
        let producer_end = rings.pop().unwrap();
        let consumer = LocalExecutorBuilder::default()
            .spawn(move || async move {
                let mut expected = 0;
                let deadline = Instant::now() + Duration::from_secs(60);
                while expected < COUNT {
                    assert!(Instant::now() < deadline, "consumer stalled at {expected}");
                    // Bounded, so that a lost wake-up fails the test instead of hanging
                    // the run: values waiting a whole second while the consumer was
                    // parked were never announced.
                    let woken = async {
                        consumer_end.wait_inbound().await;
                        true
                    };
                    let second = async {
                        glommio::timer::sleep(Duration::from_secs(1)).await;
                        false
                    };
                    if !futures_lite::future::or(woken, second).await {
                        assert!(
                            !consumer_end.has_inbound(),
                            "lost wake-up: values waited a second at {expected}"
                        );
                    }
                    consumer_end.drain(64, |from, v| {
                        assert_eq!(from, 0);
                        assert_eq!(v, expected, "values arrive once, in order");
                        expected += 1;
                    });
                }
                expected
            })
            .unwrap();
        let producer = LocalExecutorBuilder::default()
            .spawn(move || async move {
                for v in 0..COUNT {
                    producer_end.push(1, v).await;
                    if v % 5_000 == 0 {
                        // Let the consumer catch up and park now and then.
                        glommio::timer::sleep(Duration::from_micros(200)).await;
                    }
                }
            })
            .unwrap();
        producer.join().unwrap();
        assert_eq!(consumer.join().unwrap(), COUNT);
    }
}
