//! Proof, in a signature, that code runs on Redis's main thread. Some of the module's state is
//! the main thread's alone (the inline loads' connection, timers, watched sockets; loads start
//! there). A function that may only run there takes a `MainThread`; the only ways to get one
//! are at an entry from Redis (`here`, checked, or `try_here`) and from another `MainThread`.
//! It cannot be sent to another thread, so a background thread cannot hold one.
//!
//! Not every call from Redis is on the main thread: a background thread holding the lock (the
//! store step, a change event's write) that reads or writes a key runs the key-miss hook and the
//! command filter on that thread. Those entries ask `try_here`.

use std::cell::Cell;
use std::marker::PhantomData;

thread_local! {
    static IS_MAIN: Cell<bool> = const { Cell::new(false) };
}

/// See the module's comment. Zero-sized; copied freely on the main thread.
#[derive(Clone, Copy)]
pub struct MainThread(PhantomData<*const ()>);

impl MainThread {
    /// At module load (`OnLoad` runs on the main thread): marks this thread as the main one.
    pub fn mark() -> MainThread {
        IS_MAIN.with(|m| m.set(true));
        MainThread(PhantomData)
    }

    /// At an entry from Redis that runs on the main thread (a command, a config setter, a
    /// server event, an event-loop callback, a timer). Panics elsewhere: the panic guard of
    /// the entry turns it into an error instead of letting main-thread state be touched from
    /// another thread. One thread-local read.
    pub fn here() -> MainThread {
        Self::try_here().expect("main-thread-only code called from another thread")
    }

    /// `Some` on the main thread; `None` on a background thread that holds Redis's lock.
    pub fn try_here() -> Option<MainThread> {
        IS_MAIN.with(Cell::get).then_some(MainThread(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_marked_thread_is_the_main_one() {
        MainThread::mark();
        MainThread::here();
        let elsewhere = std::thread::spawn(|| {
            MainThread::try_here().is_none() && std::panic::catch_unwind(MainThread::here).is_err()
        });
        assert!(elsewhere.join().unwrap());
    }
}
