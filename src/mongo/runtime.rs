//! The background runtime: one tokio runtime whose tasks run every MongoDB query, change
//! stream and warm-up. Knows nothing of Redis.
//!
//! One thread runs every task and polls every socket itself. The loads are I/O bound; with one
//! thread a miss wakes exactly one thread, which both sends the query and reads its answer (a
//! multi-threaded runtime may hand the answer from the thread that polled the socket to another
//! one: one more wake-up on every miss).
//!
//! With `readthrough.inline-loads` on (the default) a lone miss does not come here at all:
//! Redis's main thread sends its query itself on a plain one-host URI (`engine/load/inline.rs`),
//! and runs the driver on a runtime of its own for any other URI (`main_runtime.rs`).
//!
//! The thread sleeps whenever it has nothing to do. It used to keep polling for 50 us after a
//! load started or ended, which saved a wake-up against a MongoDB that answers at once, but on a
//! real one it cost every miss: the scheduler wakes Redis's main thread on the loader's CPU
//! when a load ends, and the polling loader kept that CPU. A scheduler trace of cold misses on
//! SCRAM + TLS showed the main thread waiting 57 us (p50) to run after the loader woke it,
//! against 4 to 6 us for every other wake-up; without the polling, the module's own cost of a
//! miss went from 100 to 92 us (6 alternating runs each, README: Design).

use once_cell::sync::OnceCell;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::runtime::Handle;

static RUNTIME: OnceCell<Handle> = OnceCell::new();

/// Loads in flight.
static LOADS: AtomicU64 = AtomicU64::new(0);

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
                .spawn(move || rt.block_on(std::future::pending::<()>()))
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
        Busy(())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        LOADS.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Loads in flight on the loader thread.
pub fn loads() -> u64 {
    LOADS.load(Ordering::Relaxed)
}
