//! The main thread's runtime: a second tokio runtime, with a driver client of its own, that no
//! thread of its own runs. Redis's main thread turns it (`turn`) when the runtime's epoll fd is
//! readable and on a timer (`engine/load/main_driver.rs`), so a lone miss through the driver
//! wakes no thread but the one MongoDB's answer wakes: Redis's main thread. Any URI the driver
//! takes works here (TLS, SCRAM, replica sets, `mongodb+srv`). Knows nothing of Redis.
//!
//! A turn never blocks: it runs the tasks that are ready, polls the runtime's sockets and
//! timers without waiting, and ends when the runtime would park with nothing left to read
//! (tokio's `on_thread_park` hook wakes the turn, which makes the runtime poll instead of
//! sleep; tokio keeps this working for a runtime driven by short `block_on` calls, its issue
//! 8212). A turn that keeps finding work stops after `MAX_PARKS` polls and says so.
//!
//! tokio does not give its epoll fd: it is the one `/proc/self/fd` shows appearing while the
//! runtime is built (on Redis's main thread, at module load). Without exactly one, this
//! runtime is not started and every load goes through the loader thread.

use mongodb::options::ClientOptions;
use mongodb::Client;
use std::cell::RefCell;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering};
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

struct Main {
    rt: Runtime,
    /// The client and the `client::generation()` it was made for.
    client: Option<(u64, Client)>,
    /// The generation whose client is being made (its options parsed on the loader thread).
    making: Option<u64>,
    /// The generation whose client could not be made, and when: not tried again before
    /// `RETRY` has passed (e.g. a `mongodb+srv` lookup while DNS is down would otherwise be
    /// tried, and logged, at every lone miss).
    failed: Option<(u64, Instant)>,
}

thread_local! {
    // Main thread only. Never dropped: at Redis's exit nothing is to be shut down cleanly.
    static MAIN: RefCell<Option<ManuallyDrop<Main>>> = const { RefCell::new(None) };
}

/// The runtime's epoll fd.
static EPOLL: AtomicI32 = AtomicI32::new(-1);
/// A turn is running (the park hook acts only then).
static TURNING: AtomicBool = AtomicBool::new(false);
/// The turn may end: the runtime parked with nothing to read, or `MAX_PARKS` was reached.
static ENDS: AtomicBool = AtomicBool::new(false);
static PARKS: AtomicU32 = AtomicU32::new(0);
static TURN_WAKER: Mutex<Option<Waker>> = Mutex::new(None);

/// Polls of the runtime's sockets in one turn before it stops.
const MAX_PARKS: u32 = 64;

/// How long after a client could not be made it is not tried again (as the inline
/// connection's pause after a failed connect).
const RETRY: Duration = Duration::from_secs(1);

/// Builds the runtime on this thread (Redis's main thread, at load); returns its epoll fd,
/// for the caller to turn the runtime when it is readable.
pub fn start() -> Result<RawFd, String> {
    let before = epoll_fds();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .on_thread_park(on_park)
        .build()
        .map_err(|e| e.to_string())?;
    let new: Vec<RawFd> = epoll_fds()
        .into_iter()
        .filter(|f| !before.contains(f))
        .collect();
    // tokio keeps a duplicate of its epoll fd: the same epoll watches the same fds.
    let mut epolls: Vec<String> = new.iter().map(|&f| watched_by(f)).collect();
    epolls.dedup();
    let (Some(&fd), 1) = (new.first(), epolls.len()) else {
        return Err(format!("{} new epolls, not one", epolls.len()));
    };
    EPOLL.store(fd, Ordering::Relaxed);
    MAIN.with(|m| {
        *m.borrow_mut() = Some(ManuallyDrop::new(Main {
            rt,
            client: None,
            making: None,
            failed: None,
        }))
    });
    Ok(fd)
}

/// The client made for `generation`, if there is one. If not, and none is being made for it,
/// returns `Err(true)`: the caller makes its options and gives them to `set_client`.
pub fn client(generation: u64) -> Result<Client, bool> {
    MAIN.with(|m| {
        let mut m = m.borrow_mut();
        let Some(m) = m.as_mut() else {
            return Err(false);
        };
        match &m.client {
            Some((g, c)) if *g == generation => return Ok(c.clone()),
            _ => {}
        }
        if m.making == Some(generation) {
            return Err(false);
        }
        if matches!(m.failed, Some((g, at)) if g == generation && at.elapsed() < RETRY) {
            return Err(false);
        }
        m.making = Some(generation);
        Err(true)
    })
}

/// Makes the client for `generation` from `opts` (or gives up on it, on `Err`, until `RETRY`
/// has passed); the previous one is dropped inside the runtime (the driver's drop spawns its
/// clean-up).
pub fn set_client(made: Result<ClientOptions, String>, generation: u64) -> Result<(), String> {
    MAIN.with(|m| {
        let mut m = m.borrow_mut();
        let Some(m) = m.as_mut() else {
            return Ok(());
        };
        if m.making != Some(generation) {
            return Ok(()); // settings changed again meanwhile
        }
        m.making = None;
        let made = made.and_then(|opts| {
            let _in = m.rt.enter();
            Client::with_options(opts).map_err(|e| e.to_string())
        });
        let client = match made {
            Ok(client) => client,
            Err(e) => {
                m.failed = Some((generation, Instant::now()));
                return Err(e);
            }
        };
        if let Some((_, old)) = m.client.replace((generation, client)) {
            m.rt.spawn(async move { drop(old) });
        }
        Ok(())
    })
}

/// Runs `f` on this runtime (from the main thread: it starts at the next turn).
pub fn spawn<F: Future<Output = ()> + Send + 'static>(f: F) -> bool {
    MAIN.with(|m| match m.borrow().as_ref() {
        Some(m) => {
            m.rt.spawn(f);
            true
        }
        None => false,
    })
}

/// Runs what is ready on the runtime, without blocking. Returns true if it stopped with work
/// possibly left (the caller turns again soon).
pub fn turn() -> bool {
    MAIN.with(|m| {
        let Ok(m) = m.try_borrow() else {
            return false;
        };
        let Some(m) = m.as_ref() else {
            return false;
        };
        ENDS.store(false, Ordering::Relaxed);
        PARKS.store(0, Ordering::Relaxed);
        TURNING.store(true, Ordering::Relaxed);
        m.rt.block_on(Turn);
        TURNING.store(false, Ordering::Relaxed);
        PARKS.load(Ordering::Relaxed) >= MAX_PARKS
    })
}

/// The future a turn blocks on: pending until the park hook says the turn may end.
struct Turn;

impl Future for Turn {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if ENDS.load(Ordering::Relaxed) {
            return Poll::Ready(());
        }
        *TURN_WAKER.lock().unwrap_or_else(|p| p.into_inner()) = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// tokio calls this when it has no task to run and would wait for its sockets and timers.
/// During a turn it wakes the turn instead, so tokio polls them without waiting; the turn ends
/// once nothing is left to read (or after `MAX_PARKS` polls).
fn on_park() {
    if !TURNING.load(Ordering::Relaxed) {
        return;
    }
    let parks = PARKS.fetch_add(1, Ordering::Relaxed) + 1;
    if parks >= MAX_PARKS || !readable(EPOLL.load(Ordering::Relaxed)) {
        ENDS.store(true, Ordering::Relaxed);
    }
    if let Some(w) = TURN_WAKER.lock().unwrap_or_else(|p| p.into_inner()).take() {
        w.wake();
    }
}

fn readable(fd: RawFd) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no wait.
    unsafe { libc::poll(&mut p, 1, 0) > 0 }
}

/// What the epoll `fd` watches, as the kernel lists it.
fn watched_by(fd: RawFd) -> String {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).unwrap_or_default();
    let watched: Vec<&str> = info.lines().filter(|l| l.starts_with("tfd:")).collect();
    watched.join("\n")
}

/// The process's epoll fds.
fn epoll_fds() -> Vec<RawFd> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    dir.flatten()
        .filter(|e| {
            std::fs::read_link(e.path()).is_ok_and(|t| t.as_os_str() == "anon_inode:[eventpoll]")
        })
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}
