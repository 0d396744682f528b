//! Lone loads through the driver on Redis's main thread: where the inline connection does not
//! serve the URI (credentials, TLS, a replica set's seed list, `mongodb+srv`), a miss with no
//! other load in flight runs its `find_one` on the main thread's runtime
//! (`mongo/main_runtime.rs`), which Redis's event loop turns. The query leaves while the
//! command runs, and MongoDB's answer wakes the main thread alone, which stores the value and
//! answers the client: none of the loader thread's two hand-offs (design.md, "What each MongoDB
//! URI shape gets on a miss").
//!
//! The main thread never waits: a turn runs only what is ready. A document over
//! `MAX_MAIN_THREAD_BYTES` is decoded on the loader thread. One such load at a time; the others
//! go to the loader thread as before. Same driver, same query, same errors as the loader
//! thread's path: a client sees no difference but the time.

use crate::core::error::{Error, Outcome};
use crate::engine::load::{inline, value_of, Loading};
use crate::mongo::{client, main_runtime, queries, runtime};
use crate::redis::event_loop::{self, Timer};
use crate::redis::main_thread::MainThread;
use crate::state::{counters, fault, settings};
use mongodb::bson::{Document, RawDocumentBuf};
use redis_module::logging::{log_notice, log_warning};
use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// A document longer than this is decoded on the loader thread, not the main thread.
const MAX_MAIN_THREAD_BYTES: usize = 64 * 1024;
/// How often the runtime is turned while a load is in flight (without one, at Redis's cron).
const TICK_MS: i64 = 10;

/// What a query on the main thread's runtime found: the document undecoded, or none.
type Found = Result<Option<RawDocumentBuf>, Error>;

/// Loads whose query ended during a turn, to be stored on the main thread after it.
static ENDED: Mutex<Vec<(Loading, Found)>> = Mutex::new(Vec::new());

/// A load is in flight on the main thread's runtime: set when it starts, cleared when its task
/// ends, however it ends (`InFlight`'s drop: a task that panicked too).
static IN_FLIGHT: AtomicBool = AtomicBool::new(false);

struct InFlight;

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.store(false, Ordering::Relaxed);
    }
}

fn in_flight() -> bool {
    IN_FLIGHT.load(Ordering::Relaxed)
}

thread_local! {
    // Main thread only.
    static STARTED: Cell<bool> = const { Cell::new(false) };
    static TICK: RefCell<Option<Timer>> = const { RefCell::new(None) };
}

/// At load: starts the main thread's runtime (if the server has the event-loop API).
pub fn start(mt: MainThread) {
    if !event_loop::available() {
        return;
    }
    match main_runtime::start() {
        Ok(fd) if event_loop::watch(mt, fd, turn) => {
            STARTED.with(|s| s.set(true));
        }
        Ok(_) => log_warning("readthrough: cannot watch the main thread's MongoDB runtime"),
        Err(e) => log_notice(
            format!("readthrough: lone driver loads stay on the loader thread ({e})").as_str(),
        ),
    }
}

/// Runs the load's query on the main thread's runtime, or gives the load back for the loader
/// thread (another load in flight, a `many` list, no client yet, `readthrough.inline-loads no`,
/// or a URI the inline connection serves).
pub fn try_start(mt: MainThread, loading: Loading) -> Result<(), Loading> {
    if !settings::inline_loads()
        || !STARTED.with(Cell::get)
        || !inline::unfit()
        || in_flight()
        || runtime::loads() > 0
        || loading.load().target.mapping.many.is_some()
    {
        return Err(loading);
    }
    let client = match main_runtime::client(client::generation()) {
        Ok(c) => c,
        Err(make) => {
            if make {
                make_client();
            }
            return Err(loading);
        }
    };
    IN_FLIGHT.store(true, Ordering::Relaxed);
    main_runtime::spawn(async move {
        let _in_flight = InFlight;
        let load = loading.load();
        let found = queries::find_one_raw_on(&client, &load.target, load.deadline).await;
        let ended = (loading, found.map_err(Into::into));
        ENDED.lock().unwrap_or_else(|p| p.into_inner()).push(ended);
    });
    tick(mt);
    // Sends the query now, while the command runs.
    turn(mt);
    Ok(())
}

/// Parses the client's options on the loader thread (a `mongodb+srv` URI looks up DNS) and
/// makes the client on the main thread. First the loader thread's client authenticates once:
/// the driver keeps the SCRAM key it derives (thousands of hash rounds, milliseconds of CPU)
/// for the whole process, so the main thread's connection does not derive it again.
fn make_client() {
    runtime::spawn(async {
        client::authenticate_once().await;
        // One query at a time runs here: one connection is enough.
        let made = client::options().await.map(|(mut opts, generation)| {
            opts.min_pool_size = Some(1);
            (opts, generation)
        });
        event_loop::on_main_thread(Box::new(move |_| {
            let generation = made.as_ref().map_or_else(|_| client::generation(), |m| m.1);
            let opts = made.map(|m| m.0).map_err(|e| e.to_string());
            if let Err(e) = main_runtime::set_client(opts, generation) {
                log_notice(
                    format!("readthrough: no driver client on the main thread ({e})").as_str(),
                );
            }
        }));
    });
}

/// Turns the runtime, then stores what its loads found.
fn turn(mt: MainThread) {
    if main_runtime::turn() {
        event_loop::on_main_thread(Box::new(turn));
    }
    if !in_flight() {
        untick(mt);
    }
    let ended = std::mem::take(&mut *ENDED.lock().unwrap_or_else(|p| p.into_inner()));
    for (loading, found) in ended {
        fault::maybe_panic("main-driver-answer");
        match found {
            Ok(Some(raw)) if raw.as_bytes().len() > MAX_MAIN_THREAD_BYTES => {
                runtime::spawn(async move {
                    let outcome = decode(&loading, Ok(Some(raw)));
                    count_and(loading, outcome, Loading::finish);
                });
            }
            found => {
                let outcome = decode(&loading, found);
                // Written from a timer: its context replicates the writes as one unit. A 0 ms
                // timer fires later in this same pass of the event loop.
                event_loop::after_ms(
                    mt,
                    0,
                    Box::new(move |ctx, _| {
                        count_and(loading, outcome, |l, o| l.finish_here(ctx, o))
                    }),
                );
            }
        }
    }
}

fn decode(loading: &Loading, found: Found) -> Outcome {
    let m = &loading.load().target.mapping;
    match found? {
        None => Ok(None),
        Some(raw) => {
            let doc: Document = raw
                .to_document()
                .map_err(|e| Error::Backend(e.to_string()))?;
            Ok(Some(value_of(m, doc)))
        }
    }
}

fn count_and(loading: Loading, outcome: Outcome, finish: impl FnOnce(Loading, Outcome)) {
    counters::count(&counters::MAIN_THREAD_DRIVER_LOADS);
    finish(loading, outcome);
}

/// Redis's cron: turns the runtime for the driver's own timers (its monitors) when no load is
/// in flight.
pub fn on_cron(mt: MainThread) {
    if STARTED.with(Cell::get) && !in_flight() {
        turn(mt);
    }
}

/// While a load is in flight: turns the runtime every `TICK_MS` for the driver's timers (its
/// retry pause, server selection, the load's deadline).
fn tick(mt: MainThread) {
    untick(mt);
    let timer = event_loop::after_ms(
        mt,
        TICK_MS,
        Box::new(|_, mt| {
            // This timer has fired: forget it before arming the next, so it is not stopped.
            TICK.with(|t| t.borrow_mut().take());
            turn(mt);
            if in_flight() && TICK.with(|t| t.borrow().is_none()) {
                tick(mt);
            }
        }),
    );
    TICK.with(|t| *t.borrow_mut() = Some(timer));
}

/// Stops the in-flight timer.
fn untick(mt: MainThread) {
    if let Some(timer) = TICK.with(|t| t.borrow_mut().take()) {
        timer.cancel(mt);
    }
}
