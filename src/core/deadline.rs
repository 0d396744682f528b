//! When a load must have its answer. Pure.

use std::time::{Duration, Instant};

/// The moment a load gives up, and the `readthrough.timeout` it stands for (the `TIMEOUT`
/// error names that, not what was left of it when a shared query began).
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    pub at: Instant,
    pub timeout_ms: u64,
}

impl Deadline {
    /// `timeout_ms` from now.
    pub fn after_ms(timeout_ms: u64) -> Deadline {
        Deadline {
            at: Instant::now() + Duration::from_millis(timeout_ms),
            timeout_ms,
        }
    }
}
