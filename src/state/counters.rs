//! The module's counters, their one owner. Relaxed atomics bumped from the main thread and the
//! loader threads; load latency percentiles come from the last `WINDOW` load durations. Pure.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

pub static HITS: AtomicU64 = AtomicU64::new(0);
pub static MISSES: AtomicU64 = AtomicU64::new(0);
pub static LOADS: AtomicU64 = AtomicU64::new(0);
pub static LOAD_ERRORS: AtomicU64 = AtomicU64::new(0);
pub static NOT_FOUND: AtomicU64 = AtomicU64::new(0);
pub static TIMEOUTS: AtomicU64 = AtomicU64::new(0);
pub static COALESCED: AtomicU64 = AtomicU64::new(0);
pub static NEGATIVE_HITS: AtomicU64 = AtomicU64::new(0);
pub static BUSY_REJECTIONS: AtomicU64 = AtomicU64::new(0);
pub static REFRESHES: AtomicU64 = AtomicU64::new(0);
pub static REFRESH_ERRORS: AtomicU64 = AtomicU64::new(0);
pub static PREFETCHES: AtomicU64 = AtomicU64::new(0);
pub static INVALIDATIONS: AtomicU64 = AtomicU64::new(0);
pub static STORES: AtomicU64 = AtomicU64::new(0);
/// Misses answered by a query shared with misses of other keys (`mongo/shared_queries.rs`).
pub static BATCHED: AtomicU64 = AtomicU64::new(0);
pub static STORE_SKIPPED: AtomicU64 = AtomicU64::new(0);
/// Loaded values larger than `readthrough.max-value-bytes`, answered but not stored.
pub static TOO_LARGE: AtomicU64 = AtomicU64::new(0);
/// Loads whose query Redis's main thread sent and read itself (`engine/load/inline.rs`).
pub static INLINE_LOADS: AtomicU64 = AtomicU64::new(0);
/// Inline queries handed to the driver: the connection broke or was dropped (an error reply
/// after which the driver retries, an answer not understood, no answer by half the deadline).
pub static INLINE_HANDOFFS: AtomicU64 = AtomicU64::new(0);
/// Lone loads the driver ran on Redis's main thread (`engine/load/main_driver.rs`).
pub static MAIN_THREAD_DRIVER_LOADS: AtomicU64 = AtomicU64::new(0);
/// Plain reads of mapped keys the filter left native: the client's user may run the native
/// read but not its internal read-through command (see `redis/acl.rs`).
pub static ACL_KEPT_NATIVE: AtomicU64 = AtomicU64::new(0);
/// Loads not started because the client's user may not write the key.
pub static ACL_NO_WRITE: AtomicU64 = AtomicU64::new(0);

pub fn count(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// For counters only the main thread bumps: a plain load and store, no locked instruction.
pub fn count_main(c: &AtomicU64) {
    c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

pub fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

pub fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

const WINDOW: usize = 1024;

/// The last `WINDOW` load durations in microseconds.
struct Latencies {
    ring: Vec<u64>,
    next: usize,
}

static LATENCIES: Mutex<Latencies> = Mutex::new(Latencies {
    ring: Vec::new(),
    next: 0,
});

pub fn record_load_us(us: u64) {
    let mut l = LATENCIES.lock().unwrap_or_else(|p| p.into_inner());
    if l.ring.len() < WINDOW {
        l.ring.push(us);
    } else {
        let i = l.next;
        l.ring[i] = us;
    }
    l.next = (l.next + 1) % WINDOW;
}

/// The `p`-th percentile (0..=100) of `samples`, nearest rank; 0 when there are none.
pub fn percentile(samples: &[u64], p: u32) -> u64 {
    if samples.is_empty() {
        return 0;
    }
    let mut v = samples.to_vec();
    v.sort_unstable();
    let rank = (p as usize * v.len()).div_ceil(100).max(1);
    v[rank - 1]
}

fn load_percentiles() -> (u64, u64) {
    let l = LATENCIES.lock().unwrap_or_else(|p| p.into_inner());
    (percentile(&l.ring, 50), percentile(&l.ring, 99))
}

/// The counters' fields of `INFO readthrough`, in order.
pub fn fields() -> Vec<(&'static str, u64)> {
    vec![
        ("hits", get(&HITS)),
        ("misses", get(&MISSES)),
        ("loads", get(&LOADS)),
        ("load_errors", get(&LOAD_ERRORS)),
        ("not_found", get(&NOT_FOUND)),
        ("timeouts", get(&TIMEOUTS)),
        ("coalesced", get(&COALESCED)),
        ("negative_hits", get(&NEGATIVE_HITS)),
        ("busy_rejections", get(&BUSY_REJECTIONS)),
        ("refreshes", get(&REFRESHES)),
        ("refresh_errors", get(&REFRESH_ERRORS)),
        ("prefetches", get(&PREFETCHES)),
        ("invalidations", get(&INVALIDATIONS)),
        ("batched", get(&BATCHED)),
        ("stores", get(&STORES)),
        ("store_skipped", get(&STORE_SKIPPED)),
        ("too_large", get(&TOO_LARGE)),
        ("inline_loads", get(&INLINE_LOADS)),
        ("inline_handoffs", get(&INLINE_HANDOFFS)),
        ("main_thread_driver_loads", get(&MAIN_THREAD_DRIVER_LOADS)),
        ("acl_kept_native", get(&ACL_KEPT_NATIVE)),
        ("acl_no_write", get(&ACL_NO_WRITE)),
    ]
}

/// The load latency fields of `INFO readthrough` (the last fields of its numbers).
pub fn latency_fields() -> [(&'static str, u64); 2] {
    let (p50, p99) = load_percentiles();
    [("load_p50_us", p50), ("load_p99_us", p99)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_nearest_rank() {
        assert_eq!(percentile(&[], 50), 0);
        assert_eq!(percentile(&[7], 99), 7);
        let v: Vec<u64> = (1..=100).rev().collect();
        assert_eq!(percentile(&v, 50), 50);
        assert_eq!(percentile(&v, 99), 99);
        assert_eq!(percentile(&v, 100), 100);
    }
}
