//! Expiry decisions: TTL with jitter, and the stale-while-revalidate (grace) window. Pure: the
//! random number comes from the caller (`state/random.rs`).
//!
//! A loaded value lives `ttl·(1 + u·jitter/100) + grace` seconds, `u` uniform in [0, 1], so keys
//! loaded together do not expire together (avalanche). A read in the last `grace` seconds of a
//! value's life is served at once and triggers one background refresh.

/// The PX to store a value with, in ms; `None` for no expiry (`ttl` 0). `rnd` is any random u64.
pub fn store_ttl_ms(ttl_s: i64, jitter_pct: i64, grace_s: i64, rnd: u64) -> Option<i64> {
    if ttl_s <= 0 {
        return None;
    }
    let base = ttl_s * 1000;
    let span = base * jitter_pct.max(0) / 100;
    let jitter = (rnd % (span as u64 + 1)) as i64;
    Some(base + jitter + grace_s.max(0) * 1000)
}

/// True when a value with `pttl_ms` left (-1: no expiry) is in its grace window.
pub fn in_grace(pttl_ms: i64, grace_s: i64) -> bool {
    grace_s > 0 && pttl_ms >= 0 && pttl_ms <= grace_s * 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_zero_means_no_expiry() {
        assert_eq!(store_ttl_ms(0, 10, 5, 123), None);
    }

    #[test]
    fn jitter_stays_within_bounds_and_spreads() {
        let mut rnd = 0x1234_5678_9abc_def0_u64;
        let mut random = move || {
            rnd = rnd
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            rnd >> 11
        };
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let t = store_ttl_ms(100, 10, 0, random()).unwrap();
            assert!((100_000..=110_000).contains(&t), "{t}");
            seen.insert(t / 1000);
        }
        assert!(seen.len() >= 10, "spread over the whole range: {seen:?}");
        assert_eq!(store_ttl_ms(100, 0, 0, random()), Some(100_000));
        assert_eq!(
            store_ttl_ms(100, 0, 7, random()),
            Some(107_000),
            "grace added"
        );
    }

    #[test]
    fn grace_window() {
        assert!(!in_grace(5_000, 0), "grace off");
        assert!(in_grace(5_000, 10));
        assert!(in_grace(0, 10));
        assert!(!in_grace(10_001, 10));
        assert!(!in_grace(-1, 10), "no expiry, no grace");
    }
}
