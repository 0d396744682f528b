//! The background runtime: one tokio runtime whose tasks run every MongoDB query, change
//! stream and warm-up. Knows nothing of Redis.
//!
//! One thread runs every task and polls every socket itself. The loads are I/O bound; with one
//! thread a miss wakes exactly one thread, which both sends the query and reads its answer (a
//! multi-threaded runtime may hand the answer from the thread that polled the socket to another
//! one: one more wake-up on every miss).
//!
//! With `readthrough.inline-loads` on (the default) a lone miss does not come here at all: Redis's
//! main thread sends its query itself (`engine/inline.rs`). The spin below serves the loads that
//! do: a second miss while one is inline, and every load with inline loads off or unfit.
//!
//! When at most `SPIN_MAX_LOADS` loads are in flight, the thread does not go to sleep for
//! `SPIN` after a load starts or ends: it keeps polling its sockets. Waking a sleeping thread
//! costs tens of microseconds on this kind of machine, which at low load is most of the
//! module's own cost of a miss: against a stand-in MongoDB that answers at once, a cold
//! `RT.GET` p50 went from 137 to 113 us (direct `find_one` 85 us, PING 35 us). The spin is
//! bounded per load, so an idle module sleeps, and it stops once more loads are in flight:
//! then the thread has work anyway, and spinning while MongoDB computes would take a core from
//! it and from Redis.

use once_cell::sync::{Lazy, OnceCell};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::runtime::Handle;
use tokio::sync::Notify;

static RUNTIME: OnceCell<Handle> = OnceCell::new();

/// How long the thread keeps polling after a load starts or ends, at low load.
const SPIN: Duration = Duration::from_micros(50);
/// Above this many loads in flight the thread sleeps whenever it has nothing to do.
const SPIN_MAX_LOADS: u64 = 2;

/// Loads in flight, and when one last started or ended (ns since `EPOCH`).
static LOADS: AtomicU64 = AtomicU64::new(0);
static LAST_CHANGE: AtomicU64 = AtomicU64::new(0);
static EPOCH: Lazy<Instant> = Lazy::new(Instant::now);
/// Wakes the spinner after it went to sleep.
static CHANGED: Notify = Notify::const_new();

/// Starts the runtime on its own thread, which runs it for as long as the module is loaded.
pub fn start_runtime() -> Result<(), String> {
    RUNTIME
        .get_or_try_init(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            let handle = rt.handle().clone();
            std::thread::Builder::new()
                .name("readthrough-loader".into())
                .spawn(move || rt.block_on(spinner()))
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(handle)
        })
        .map(|_| ())
        .map_err(|e| format!("cannot start the loader runtime: {e}"))
}

pub fn spawn<F: Future<Output = ()> + Send + 'static>(f: F) {
    RUNTIME.get().expect("runtime started in init").spawn(f);
}

/// The runtime's handle, for a task that spawns others and awaits them.
pub fn handle() -> &'static Handle {
    RUNTIME.get().expect("runtime started in init")
}

/// The runtime, once started (for dropping driver objects inside it).
pub fn get() -> Option<&'static Handle> {
    RUNTIME.get()
}

/// Marks one load in flight from `start` to drop (also when its task is dropped or unwinds).
pub struct Busy(());

impl Busy {
    pub fn start() -> Busy {
        LOADS.fetch_add(1, Ordering::Relaxed);
        changed();
        Busy(())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        LOADS.fetch_sub(1, Ordering::Relaxed);
        changed();
    }
}

/// Loads in flight on the loader thread.
pub fn loads() -> u64 {
    LOADS.load(Ordering::Relaxed)
}

fn now_ns() -> u64 {
    EPOCH.elapsed().as_nanos() as u64
}

fn changed() {
    LAST_CHANGE.store(now_ns(), Ordering::Relaxed);
    CHANGED.notify_one();
}

/// Whether the loader thread should keep polling rather than sleep.
fn should_spin(loads: u64, since_change: Duration) -> bool {
    loads <= SPIN_MAX_LOADS && since_change < SPIN
}

/// The thread's own task: while `should_spin` says so it stays ready (yielding), so the
/// scheduler polls the sockets without sleeping; otherwise it waits for the next change.
async fn spinner() {
    loop {
        let since =
            Duration::from_nanos(now_ns().saturating_sub(LAST_CHANGE.load(Ordering::Relaxed)));
        if should_spin(LOADS.load(Ordering::Relaxed), since) {
            tokio::task::yield_now().await;
        } else {
            CHANGED.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spins_briefly_and_only_at_low_load() {
        assert!(should_spin(1, Duration::from_micros(10)));
        assert!(
            should_spin(0, Duration::from_micros(10)),
            "right after a load ended"
        );
        assert!(!should_spin(1, SPIN), "bounded in time");
        assert!(
            !should_spin(SPIN_MAX_LOADS + 1, Duration::ZERO),
            "not under load"
        );
    }
}
