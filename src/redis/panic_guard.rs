//! Every entry from Redis into Rust runs under `catch`: a panic that unwound into Redis would
//! abort redis-server. A caught panic becomes a log line, and the caller's fallback (an error
//! reply, nothing done).

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `f`; `None` (and a log line naming `what`) if it panicked.
pub fn catch<R>(what: &str, f: impl FnOnce() -> R) -> Option<R> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => Some(r),
        Err(panic) => {
            let text = format!(
                "readthrough: caught a panic in {what}: {}",
                message(&*panic)
            );
            redis_module::logging::log_warning(text.as_str());
            None
        }
    }
}

/// The text a panic was raised with.
pub fn message(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}
