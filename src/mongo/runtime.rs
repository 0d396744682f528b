//! The background runtime: one tokio runtime whose tasks run every MongoDB query, change
//! stream and warm-up. Knows nothing of Redis.
//!
//! One thread runs every task and polls every socket itself. The loads are I/O bound; with one
//! thread a miss wakes exactly one thread, which both sends the query and reads its answer (a
//! multi-threaded runtime may hand the answer from the thread that polled the socket to another
//! one: one more wake-up on every miss).

use once_cell::sync::OnceCell;
use std::future::Future;
use tokio::runtime::Handle;

static RUNTIME: OnceCell<Handle> = OnceCell::new();

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
