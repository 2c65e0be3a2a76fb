//! The dispatcher's hold lists: envelopes from the rings whose target queue is full (and
//! whose `Overflow` is `block`) wait here, one list per target instance, so that a full
//! queue holds back only its own deliveries and not those of the shard's other items.
//!
//! Invariants:
//! - FIFO per target: once a target has a list, every later delivery for it joins the
//!   back of that list, even if its queue has room again, until the list is empty.
//! - Nothing is dropped: an entry leaves a list only when its queue took it (or settled
//!   it: a closed queue leaves it to recovery, as for any delivery).
//! - Bounded: each list has a bound (the target queue's `QueueSize`); while any list is
//!   at its bound the dispatcher stops draining the rings, so backpressure reaches the
//!   sending shards. A list grows past its bound by less than one drain batch, so what is
//!   held is at most `QueueSize + DRAIN_BATCH_MAX` envelopes per target instance.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

/// One target's held entries.
#[derive(Debug)]
struct Held<T> {
    bound: usize,
    entries: VecDeque<T>,
}

/// Hold lists keyed by target instance `K`.
#[derive(Debug)]
pub struct HoldLists<K, T> {
    lists: HashMap<K, Held<T>>,
    len: usize,
}

impl<K: Hash + Eq + Copy, T> Default for HoldLists<K, T> {
    fn default() -> Self {
        HoldLists {
            lists: HashMap::new(),
            len: 0,
        }
    }
}

impl<K: Hash + Eq + Copy, T> HoldLists<K, T> {
    /// Entries held for the targets `wanted` picks.
    pub fn count(&self, wanted: impl Fn(&K) -> bool) -> usize {
        self.lists
            .iter()
            .filter(|(key, _)| wanted(key))
            .map(|(_, held)| held.entries.len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when `key` has entries waiting: a new delivery for it must wait behind them.
    pub fn holds(&self, key: &K) -> bool {
        // Nothing held is the steady state: no hashing then.
        self.len > 0 && self.lists.contains_key(key)
    }

    /// Holds `value` at the back of `key`'s list; `bound` (at least 1) is that list's bound.
    pub fn push(&mut self, key: K, bound: usize, value: T) {
        let held = self.lists.entry(key).or_insert_with(|| Held {
            bound: bound.max(1),
            entries: VecDeque::new(),
        });
        held.entries.push_back(value);
        self.len += 1;
    }

    /// True when some list has reached its bound: the rings must not be drained.
    pub fn at_bound(&self) -> bool {
        self.lists
            .values()
            .any(|held| held.entries.len() >= held.bound)
    }

    /// Offers each list's entries, oldest first, until its queue refuses one (`Err` hands
    /// it back; it stays at the head). Returns how many left the lists.
    pub fn release(&mut self, mut offer: impl FnMut(T) -> Result<(), T>) -> usize {
        let mut released = 0;
        self.lists.retain(|_, held| {
            while let Some(entry) = held.entries.pop_front() {
                if let Err(entry) = offer(entry) {
                    held.entries.push_front(entry);
                    break;
                }
                released += 1;
            }
            !held.entries.is_empty()
        });
        self.len -= released;
        released
    }

    /// The targets that have entries waiting.
    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.lists.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_target_holds_only_its_own_entries_in_fifo_order() {
        let mut holds: HoldLists<char, u32> = HoldLists::default();
        holds.push('a', 10, 1);
        holds.push('a', 10, 2);
        assert!(holds.holds(&'a') && !holds.holds(&'b'));
        // 'b' has room: releasing leaves 'a' alone while its queue refuses.
        let mut taken = Vec::new();
        assert_eq!(holds.release(Err), 0);
        assert_eq!(holds.count(|_| true), 2);
        holds.push('a', 10, 3);
        // Room for two: the oldest two go, in order; the third stays at the head.
        let mut room = 2;
        let released = holds.release(|v| {
            if room == 0 {
                return Err(v);
            }
            room -= 1;
            taken.push(v);
            Ok(())
        });
        assert_eq!((released, taken.as_slice()), (2, &[1, 2][..]));
        assert!(
            holds.holds(&'a'),
            "3 still waits, so a new 'a' entry queues behind it"
        );
        let released = holds.release(|v| {
            taken.push(v);
            Ok(())
        });
        assert_eq!(released, 1);
        assert_eq!(taken, [1, 2, 3]);
        assert!(holds.is_empty() && !holds.holds(&'a'));
    }

    #[test]
    fn a_list_at_its_bound_stops_the_draining_until_it_shrinks() {
        let mut holds: HoldLists<char, u32> = HoldLists::default();
        holds.push('a', 2, 1);
        holds.push('b', 5, 10);
        assert!(!holds.at_bound());
        holds.push('a', 2, 2);
        assert!(holds.at_bound(), "'a' holds its bound");
        let mut first = true;
        holds.release(|v| {
            if v < 10 && first {
                first = false;
                Ok(())
            } else {
                Err(v)
            }
        });
        assert!(!holds.at_bound());
        assert_eq!(
            (holds.count(|&k| k == 'a'), holds.count(|&k| k == 'b')),
            (1, 1)
        );
        let mut keys: Vec<char> = holds.keys().copied().collect();
        keys.sort();
        assert_eq!(keys, ['a', 'b']);
    }

    #[test]
    fn a_zero_bound_counts_as_one() {
        let mut holds: HoldLists<u8, u8> = HoldLists::default();
        holds.push(0, 0, 1);
        assert!(holds.at_bound());
    }
}
