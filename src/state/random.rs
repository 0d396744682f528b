//! A fast, non-cryptographic random source shared by every thread (TTL jitter, placeholders).

use std::sync::atomic::{AtomicU64, Ordering};

static STATE: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);

/// A fast, non-cryptographic random number (splitmix64 over a shared counter).
pub fn random() -> u64 {
    let mut z = STATE.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Seeds `random` (from the clock at module load), so restarts do not repeat the sequence.
pub fn seed(s: u64) {
    STATE.fetch_add(s, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_is_not_constant() {
        let a = random();
        let b = random();
        assert_ne!(a, b);
    }
}
