//! End-to-end accounting: which messages each sender connection got ACKed, which the sink
//! received, and per-patient order, merged into lost / duplicates / order violations.
//!
//! Each thread keeps its own [`Tracks`] (bitsets indexed by sequence number, one per
//! global connection index, one bit per message), so nothing is shared on the hot path
//! except [`PatientOrder`], one atomic word per patient. At the end [`merge`] ORs the
//! threads' bitsets: a message seen by two sink threads is a duplicate, an ACKed message no
//! sink thread saw is lost.
//!
//! Order: a patient's messages are all sent on one connection (the patient population is
//! partitioned over connections), so their send order is their sequence order. A message
//! whose sequence number is below the highest already received for its patient on the
//! same connection is an order violation. Duplicates are not checked for order.
//!
//! ```text
//! PatientOrder slot (u64): 0 = nothing received yet
//!   bits 40..56  connection index
//!   bits  0..40  sequence number + 1
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// A growable bitset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BitSet {
    words: Vec<u64>,
}

impl BitSet {
    /// Sets bit `i`; returns whether it was already set.
    #[inline]
    pub fn set(&mut self, i: u32) -> bool {
        let (w, b) = ((i / 64) as usize, i % 64);
        if w >= self.words.len() {
            self.words.resize(w + 1, 0);
        }
        let was = self.words[w] >> b & 1 == 1;
        self.words[w] |= 1 << b;
        was
    }

    /// Whether bit `i` is set.
    #[cfg(test)]
    pub fn get(&self, i: u32) -> bool {
        self.words
            .get((i / 64) as usize)
            .is_some_and(|w| w >> (i % 64) & 1 == 1)
    }

    /// Ones in `self`.
    #[cfg(test)]
    pub fn count(&self) -> u64 {
        self.words.iter().map(|w| u64::from(w.count_ones())).sum()
    }

    /// Ones in both `self` and `other`.
    pub fn count_and(&self, other: &BitSet) -> u64 {
        self.words
            .iter()
            .zip(&other.words)
            .map(|(a, b)| u64::from((a & b).count_ones()))
            .sum()
    }

    /// Ones in `self` and not in `other`.
    pub fn count_and_not(&self, other: &BitSet) -> u64 {
        self.words
            .iter()
            .enumerate()
            .map(|(i, a)| u64::from((a & !other.words.get(i).copied().unwrap_or(0)).count_ones()))
            .sum()
    }

    /// ORs `other` into `self`.
    pub fn or(&mut self, other: &BitSet) {
        if other.words.len() > self.words.len() {
            self.words.resize(other.words.len(), 0);
        }
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a |= b;
        }
    }
}

/// What one thread saw: ACKed messages (sender side) and received ones (sink side), by
/// global connection index.
#[derive(Debug, Clone, Default)]
pub struct Tracks {
    /// Sequence numbers ACKed, by connection.
    pub acked: HashMap<u16, BitSet>,
    /// Sequence numbers received by the sink, by connection.
    pub received: HashMap<u16, BitSet>,
}

impl Tracks {
    /// Records an ACKed message.
    pub fn ack(&mut self, conn: u16, seq: u32) {
        self.acked.entry(conn).or_default().set(seq);
    }

    /// Records a received message; returns whether this thread had already received it.
    pub fn receive(&mut self, conn: u16, seq: u32) -> bool {
        self.received.entry(conn).or_default().set(seq)
    }
}

/// Lost and cross-thread duplicates, from every thread's tracks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Merged {
    /// ACKed and never received.
    pub lost: u64,
    /// Received by more than one sink thread (duplicates within one thread are counted
    /// where they happen).
    pub cross_thread_duplicates: u64,
}

/// Merges all threads' tracks.
pub fn merge(all: &[Tracks]) -> Merged {
    let mut acked: HashMap<u16, BitSet> = HashMap::new();
    let mut received: HashMap<u16, BitSet> = HashMap::new();
    let mut dup = 0;
    for t in all {
        for (conn, bits) in &t.acked {
            acked.entry(*conn).or_default().or(bits);
        }
        for (conn, bits) in &t.received {
            let seen = received.entry(*conn).or_default();
            dup += bits.count_and(seen);
            seen.or(bits);
        }
    }
    let empty = BitSet::default();
    let lost = acked
        .iter()
        .map(|(conn, a)| a.count_and_not(received.get(conn).unwrap_or(&empty)))
        .sum();
    Merged {
        lost,
        cross_thread_duplicates: dup,
    }
}

/// The highest (connection, sequence) received per patient, shared by the sink threads.
#[derive(Debug)]
pub struct PatientOrder {
    slots: Box<[AtomicU64]>,
}

impl PatientOrder {
    /// Room for `patients` patients.
    pub fn new(patients: u32) -> Self {
        PatientOrder {
            slots: (0..patients).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Records that message `seq` of connection `conn` for `patient` arrived; returns
    /// whether it arrived after a later message of the same patient and connection.
    /// Patients outside the population are ignored.
    pub fn arrive(&self, patient: u32, conn: u16, seq: u32) -> bool {
        let Some(slot) = self.slots.get(patient as usize) else {
            return false;
        };
        let key = u64::from(conn) << 40 | (u64::from(seq) + 1);
        let mut current = slot.load(Ordering::Relaxed);
        loop {
            if current != 0 && current >> 40 == u64::from(conn) && current > key {
                return true;
            }
            match slot.compare_exchange_weak(current, key, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return false,
                Err(now) => current = now,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitset_reports_repeats_and_counts() {
        let mut b = BitSet::default();
        assert!(!b.set(3));
        assert!(b.set(3));
        assert!(!b.set(200));
        assert!(b.get(200) && !b.get(199));
        assert_eq!(b.count(), 2);
    }

    #[test]
    fn merge_finds_lost_and_cross_thread_duplicates() {
        let mut sender = Tracks::default();
        for seq in 0..10 {
            sender.ack(1, seq);
        }
        let mut sink_a = Tracks::default();
        let mut sink_b = Tracks::default();
        for seq in 0..6 {
            sink_a.receive(1, seq);
        }
        sink_b.receive(1, 5);
        sink_b.receive(1, 6);
        // 7, 8, 9 never arrived; 5 arrived on both sink threads.
        assert_eq!(
            merge(&[sender, sink_a, sink_b]),
            Merged {
                lost: 3,
                cross_thread_duplicates: 1
            }
        );
    }

    #[test]
    fn patient_order_flags_an_older_message_of_the_same_connection_only() {
        let order = PatientOrder::new(4);
        assert!(!order.arrive(2, 7, 0));
        assert!(!order.arrive(2, 7, 5));
        assert!(order.arrive(2, 7, 3));
        // Another connection's message for that patient is not comparable.
        assert!(!order.arrive(2, 8, 1));
        assert!(!order.arrive(99, 7, 1));
    }
}
