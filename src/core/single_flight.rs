//! The single-flight table: at most one load per key, any number of waiters on it. Pure.
//!
//! The first request for a cold key becomes the leader and starts the load; later requests for
//! the same key only add their waiter. When the load ends, `complete` hands every waiter to the
//! loader at once and forgets the key, so the next miss starts a fresh load. The table is
//! bounded: a new key beyond `max` loads in flight is refused (`Join::Full`), never queued.

use std::collections::HashMap;
use std::hash::Hash;

#[derive(Debug, PartialEq, Eq)]
pub enum Join<W> {
    /// No load was running for this key: the caller must start one.
    Leader,
    /// A load is already running; the waiter was added to it.
    Follower,
    /// The table is full; the waiter is handed back.
    Full(Option<W>),
}

#[derive(Debug)]
pub struct InFlight<K, W> {
    loads: HashMap<K, Vec<W>>,
}

impl<K: Hash + Eq, W> Default for InFlight<K, W> {
    fn default() -> Self {
        Self {
            loads: HashMap::new(),
        }
    }
}

impl<K: Hash + Eq, W> InFlight<K, W> {
    /// Registers interest in `key`. `waiter` is `None` for a load nobody waits on (a prefetch).
    pub fn join(&mut self, key: K, waiter: Option<W>, max: usize) -> Join<W> {
        if let Some(waiters) = self.loads.get_mut(&key) {
            waiters.extend(waiter);
            return Join::Follower;
        }
        if self.loads.len() >= max {
            return Join::Full(waiter);
        }
        self.loads.insert(key, waiter.into_iter().collect());
        Join::Leader
    }

    /// Ends the load of `key` and returns its waiters (empty if the key was not loading).
    pub fn complete(&mut self, key: &K) -> Vec<W> {
        self.loads.remove(key).unwrap_or_default()
    }

    pub fn is_loading(&self, key: &K) -> bool {
        self.loads.contains_key(key)
    }

    /// Loads in flight (keys, not waiters).
    pub fn len(&self) -> usize {
        self.loads.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_leads_the_rest_follow_and_all_are_handed_back_once() {
        let mut t = InFlight::default();
        assert_eq!(t.join("k", Some(1), 10), Join::Leader);
        assert_eq!(t.join("k", Some(2), 10), Join::Follower);
        assert_eq!(t.join("k", None, 10), Join::Follower);
        assert_eq!(t.join("k", Some(3), 10), Join::Follower);
        assert_eq!(t.len(), 1);
        assert_eq!(t.complete(&"k"), vec![1, 2, 3]);
        assert!(t.complete(&"k").is_empty());
        assert_eq!(
            t.join("k", Some(4), 10),
            Join::Leader,
            "a new load after completion"
        );
    }

    #[test]
    fn a_prefetch_leads_with_no_waiter() {
        let mut t: InFlight<&str, i32> = InFlight::default();
        assert_eq!(t.join("k", None, 10), Join::Leader);
        assert!(t.is_loading(&"k"));
        assert_eq!(t.join("k", Some(9), 10), Join::Follower);
        assert_eq!(t.complete(&"k"), vec![9]);
    }

    #[test]
    fn full_table_refuses_new_keys_but_not_followers() {
        let mut t = InFlight::default();
        assert_eq!(t.join("a", Some(1), 2), Join::Leader);
        assert_eq!(t.join("b", Some(2), 2), Join::Leader);
        assert_eq!(t.join("c", Some(3), 2), Join::Full(Some(3)));
        assert_eq!(t.join("a", Some(4), 2), Join::Follower);
        t.complete(&"a");
        assert_eq!(t.join("c", Some(5), 2), Join::Leader);
    }
}
