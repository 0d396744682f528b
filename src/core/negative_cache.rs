//! The negative cache: keys MongoDB did not have, remembered for `readthrough.negative-ttl`
//! seconds so repeated reads of absent ids do not reach MongoDB (cache penetration). Pure:
//! time is passed in.
//!
//! Bounded: at most `max` entries. When full, expired entries are dropped first, then the
//! oldest ones (insertion order), so memory stays flat whatever ids clients try.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::{Duration, Instant};

pub struct NegativeCache<K> {
    until: HashMap<K, Instant>,
    order: VecDeque<K>,
}

impl<K: Hash + Eq + Clone> Default for NegativeCache<K> {
    fn default() -> Self {
        Self {
            until: HashMap::new(),
            order: VecDeque::new(),
        }
    }
}

impl<K: Hash + Eq + Clone> NegativeCache<K> {
    /// Remembers `key` as absent until `now + ttl`.
    pub fn insert(&mut self, key: K, ttl: Duration, now: Instant, max: usize) {
        if max == 0 {
            return;
        }
        if self.until.insert(key.clone(), now + ttl).is_none() {
            self.order.push_back(key);
        }
        while self.until.len() > max {
            self.evict_one(now);
        }
        // The order queue may hold keys removed meanwhile; keep it from growing past 2x.
        if self.order.len() > 2 * max.max(16) {
            let until = &self.until;
            self.order.retain(|k| until.contains_key(k));
        }
    }

    fn evict_one(&mut self, now: Instant) {
        // Prefer an expired entry among the oldest few, else the oldest.
        while let Some(k) = self.order.pop_front() {
            if self.until.remove(&k).is_some() {
                return;
            }
        }
        // Queue exhausted (should not happen): drop any expired entry.
        self.until.retain(|_, t| *t > now);
    }

    /// True if `key` is known absent at `now`; forgets it once expired.
    pub fn contains(&mut self, key: &K, now: Instant) -> bool {
        match self.until.get(key) {
            Some(t) if *t > now => true,
            Some(_) => {
                self.until.remove(key);
                false
            }
            None => false,
        }
    }

    /// Forgets `key`; true if it was remembered (expired or not).
    pub fn remove(&mut self, key: &K) -> bool {
        self.until.remove(key).is_some()
    }

    /// Forgets every key `pred` holds for; returns how many.
    pub fn remove_where(&mut self, mut pred: impl FnMut(&K) -> bool) -> usize {
        let before = self.until.len();
        self.until.retain(|k, _| !pred(k));
        before - self.until.len()
    }

    pub fn clear(&mut self) {
        self.until.clear();
        self.order.clear();
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.until.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.until.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn remembered_until_the_ttl_then_forgotten() {
        let t0 = Instant::now();
        let mut n = NegativeCache::default();
        n.insert("a", 30 * S, t0, 10);
        assert!(n.contains(&"a", t0 + 29 * S));
        assert!(!n.contains(&"a", t0 + 30 * S));
        assert!(n.is_empty(), "expired entry dropped on lookup");
        assert!(!n.contains(&"b", t0));
    }

    #[test]
    fn remove_and_clear() {
        let t0 = Instant::now();
        let mut n = NegativeCache::default();
        n.insert("a", S, t0, 10);
        n.insert("b", S, t0, 10);
        assert!(n.remove(&"a"));
        assert!(!n.remove(&"a"));
        n.insert("ab", S, t0, 10);
        assert_eq!(n.remove_where(|k| k.starts_with('a')), 1);
        assert!(n.contains(&"b", t0));
        n.clear();
        assert!(!n.contains(&"b", t0));
    }

    #[test]
    fn bounded_memory_drops_the_oldest() {
        let t0 = Instant::now();
        let mut n = NegativeCache::default();
        for i in 0..10_000 {
            n.insert(i, 60 * S, t0, 100);
            assert!(n.len() <= 100);
            assert!(n.order.len() <= 200);
        }
        assert!(n.contains(&9_999, t0));
        assert!(!n.contains(&0, t0));
        // Re-inserting a present key does not duplicate it.
        n.insert(9_999, 60 * S, t0, 100);
        assert_eq!(n.len(), 100);
        // max 0 disables it.
        let mut off = NegativeCache::default();
        off.insert(1, S, t0, 0);
        assert!(!off.contains(&1, t0));
    }
}
