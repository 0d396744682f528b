//! Fault injection for tests: `READTHROUGH_TEST_PANIC_AT=point[,point...]` in redis-server's
//! environment makes the named places panic, each once, so the tests can show that every entry
//! from Redis into Rust catches a panic (a panic inside a module aborts redis-server). Without
//! the variable nothing panics; the check is one relaxed load. Pure.

use std::sync::atomic::{AtomicU32, Ordering};

/// The places that can be made to panic, by name.
pub const POINTS: &[&str] = &[
    "command",            // a command handler (RT.GET ...)
    "reply",              // the reply callback of an unblocked client
    "timeout",            // Redis's own timeout callback of a blocked client
    "filter",             // the command filter (transparent GET)
    "key-miss",           // the key-miss notification
    "flush-event",        // the FLUSHALL/FLUSHDB server event
    "info",               // the INFO section callback
    "change-event",       // applying a change-stream event
    "warm-up",            // a warm-up task
    "inline-answer",      // an inline load's answer, read by the main thread
    "main-driver-answer", // what the driver found on the main thread's runtime
];

/// Points still armed: bit i stands for `POINTS[i]`.
static ARMED: AtomicU32 = AtomicU32::new(0);

/// Arms the points named in the environment variable (read once, at module load).
pub fn arm_from_env() {
    if let Ok(list) = std::env::var("READTHROUGH_TEST_PANIC_AT") {
        ARMED.store(mask(&list), Ordering::SeqCst);
    }
}

fn mask(list: &str) -> u32 {
    list.split(',')
        .filter_map(|name| POINTS.iter().position(|p| *p == name.trim()))
        .fold(0, |m, i| m | 1 << i)
}

/// True while any point is armed (lets a caller skip work done only to place a fault).
pub fn any_armed() -> bool {
    ARMED.load(Ordering::Relaxed) != 0
}

/// Panics if `point` is armed, and disarms it.
pub fn maybe_panic(point: &str) {
    if !any_armed() {
        return;
    }
    let Some(i) = POINTS.iter().position(|p| *p == point) else {
        return;
    };
    if ARMED.fetch_and(!(1 << i), Ordering::SeqCst) & (1 << i) != 0 {
        panic!("injected fault at {point} (READTHROUGH_TEST_PANIC_AT)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_make_a_mask_and_unknown_ones_are_ignored() {
        assert_eq!(mask(""), 0);
        assert_eq!(mask("command"), 1);
        assert_eq!(mask("reply, timeout,nonsense"), 0b110);
    }
}
