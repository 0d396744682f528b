//! The background runtime: one tokio runtime whose tasks run every MongoDB query, change
//! stream and warm-up. Knows nothing of Redis.

use once_cell::sync::OnceCell;
use std::future::Future;
use tokio::runtime::Runtime;

static RUNTIME: OnceCell<Runtime> = OnceCell::new();

/// Starts the runtime (two worker threads: the machine's loads are I/O bound).
pub fn start_runtime() -> Result<(), String> {
    RUNTIME
        .get_or_try_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("readthrough-loader")
                .enable_all()
                .build()
        })
        .map(|_| ())
        .map_err(|e| format!("cannot start the loader runtime: {e}"))
}

pub fn spawn<F: Future<Output = ()> + Send + 'static>(f: F) {
    RUNTIME.get().expect("runtime started in init").spawn(f);
}

/// The runtime, once started (for dropping driver objects inside it).
pub fn get() -> Option<&'static Runtime> {
    RUNTIME.get()
}
