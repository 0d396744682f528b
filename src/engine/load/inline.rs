//! Inline loads: at low load, Redis's main thread sends a miss's `find` on a connection of its
//! own, reads the answer when Redis's event loop says the socket is readable, and stores the
//! value and answers the client in that same pass.
//!
//! Why: through the loader thread, a miss wakes a sleeping thread at every hand-off: the loader
//! to send the query, the loader again when MongoDB answers, then Redis's main thread to answer
//! the client. Inline, the main thread that read the command sends the query, and MongoDB's
//! answer wakes it alone. On this project's machines a thread whose CPU slept longer than about
//! 0.2 ms takes 0.1 to 0.25 ms to wake, so at one client these hand-offs were 0.35 ms of a
//! 1.2 ms miss (README, Benchmarks).
//!
//! The main thread never waits: the socket is non-blocking, a query and its answer are small
//! (an answer over `MAX_INLINE_BYTES` is decoded on the loader thread), and only one query is
//! inline at a time. The others go to the loader thread as before: MongoDB answers one
//! connection's requests in order, so a second inline query would wait behind the first.
//!
//! What a client sees does not depend on the path: the inline path answers only what the driver
//! would answer the same way, and hands the load to the loader thread (the driver), with what
//! is left of its deadline, wherever the driver would do more:
//! - no connection yet, or a broken one (the driver would retry on another connection);
//! - an error reply after which the driver retries a read (a step-down, a shutdown: the
//!   connection is dropped, as the server is no longer the primary); any other error reply is
//!   answered `BACKEND` with the driver's wording, and the connection kept, as the driver keeps
//!   its own;
//! - an answer not understood (the connection is dropped: the stream may be out of step), and a
//!   `many` list too large for one batch (the driver reads it with `getMore`; the server's
//!   cursor is left to its idle timeout);
//! - no answer by half the deadline: the connection may be dead without a word (a NAT or load
//!   balancer dropped it), where the driver's pool would still serve. `TIMEOUT` then comes from
//!   the driver's side, at the deadline, as for every load.
//!
//! Each hand-off is logged and counted (`inline_handoffs`). The connection is made on the loader
//! thread (`mongo/inline_conn.rs`), only for a deployment where a plain `find` is what the
//! driver would send, and it follows `readthrough.mongo-uri`.

use crate::core::error::{Error, Outcome};
use crate::core::format::Loaded;
use crate::core::mapping::Target;
use crate::core::wire::{self, NoAnswer};
use crate::engine::load::{driver, list_value_of, value_of, Loading};
use crate::mongo::inline_conn::{self, Conn, NotOpened};
use crate::mongo::{client, runtime};
use crate::redis::event_loop::{self, Timer};
use crate::redis::main_thread::MainThread;
use crate::state::counters;
use crate::state::{fault, settings};
use redis_module::logging::{log_notice, log_verbose};
use std::cell::RefCell;
use std::mem::ManuallyDrop;
use std::time::{Duration, Instant};

/// An answer longer than this is decoded on the loader thread, not the main thread.
const MAX_INLINE_BYTES: usize = 64 * 1024;
/// How long after a failed or dropped connection the next one is tried.
const RETRY: Duration = Duration::from_secs(1);

enum Link {
    /// No connection; one is opened at the first miss from `retry_at` on.
    Down {
        retry_at: Instant,
    },
    Opening,
    Up(Conn),
    /// The URI in force asks for what only the driver does: every load uses the loader thread.
    Unfit,
}

/// The one inline query in flight.
struct Sent {
    id: i32,
    load: Loading,
    deadline: Timer,
}

struct Lane {
    link: Link,
    /// `client::generation()` the link was made for.
    generation: u64,
    sent: Option<Sent>,
}

thread_local! {
    // Main thread only: commands, socket callbacks and timers all run there. Never dropped:
    // at Redis's exit a query in flight must not try to answer its client.
    static LANE: RefCell<ManuallyDrop<Lane>> = RefCell::new(ManuallyDrop::new(Lane {
        link: Link::Down { retry_at: Instant::now() },
        generation: u64::MAX,
        sent: None,
    }));
}

/// At load: opens the connection now, so that the first miss is inline too.
pub fn connect(mt: MainThread) {
    if settings::inline_loads() && event_loop::available() {
        LANE.with(|l| l.borrow_mut().refresh(mt))
    }
}

/// Sends the load's query inline, or gives the load back for the loader thread.
pub fn try_start(mt: MainThread, load: Loading) -> Result<(), Loading> {
    if !settings::inline_loads() || !event_loop::available() {
        return Err(load);
    }
    LANE.with(|l| l.borrow_mut().start(mt, load))
}

/// Whether the URI in force asks for what only the driver does (then lone misses take the
/// driver on the main thread, `main_driver.rs`).
pub fn unfit() -> bool {
    LANE.with(|l| matches!(l.borrow().link, Link::Unfit))
}

impl Lane {
    /// Follows the MongoDB settings in force, and opens a connection if it is time to.
    fn refresh(&mut self, mt: MainThread) {
        // Every miss comes here: only a number is read unless a connection is to be opened.
        let generation = client::generation();
        if generation != self.generation {
            self.close(mt, "the MongoDB settings changed");
            self.generation = generation;
            self.link = Link::Down {
                retry_at: Instant::now(),
            };
        }
        if matches!(self.link, Link::Down { retry_at } if Instant::now() >= retry_at) {
            let (uri, connect_timeout, generation) = client::settings();
            self.generation = generation;
            self.link = Link::Opening;
            open(uri, connect_timeout, generation);
        }
    }

    fn start(&mut self, mt: MainThread, loading: Loading) -> Result<(), Loading> {
        self.refresh(mt);
        match &mut self.link {
            Link::Up(conn) if self.sent.is_none() && runtime::loads() == 0 => {
                let load = loading.load();
                let m = &load.target.mapping;
                let (filter, projection) = (load.target.filter(), m.projection());
                let cmd = match &m.many {
                    None => wire::find_one(&m.db, &m.collection, filter, projection),
                    Some(many) => {
                        let (sort, limit) = (many.sort_doc(), many.limit);
                        wire::find_list(&m.db, &m.collection, filter, projection, sort, limit)
                    }
                };
                match conn.send(&cmd) {
                    Ok(id) => {
                        let left = load.deadline.at.saturating_duration_since(Instant::now());
                        let deadline = event_loop::after_ms(
                            mt,
                            left.as_millis() as i64 / 2 + 1,
                            Box::new(move |_, mt| no_answer_in_time(mt, id)),
                        );
                        let load = loading;
                        self.sent = Some(Sent { id, load, deadline });
                        Ok(())
                    }
                    Err(e) => {
                        self.close(mt, &e);
                        Err(loading)
                    }
                }
            }
            _ => Err(loading),
        }
    }

    /// Drops the connection, if any; the query in flight goes to the loader thread.
    fn close(&mut self, mt: MainThread, why: &str) {
        if let Link::Up(conn) = &self.link {
            event_loop::unwatch(mt, conn.fd());
            log_notice(format!("readthrough: inline loads: connection dropped ({why})").as_str());
            self.link = Link::Down {
                retry_at: Instant::now() + RETRY,
            };
        }
        if let Some(sent) = self.sent.take() {
            sent.deadline.cancel(mt);
            hand_off(sent.load);
        }
    }

    fn opened(&mut self, mt: MainThread, generation: u64, made: Result<Conn, NotOpened>) {
        if generation != self.generation || !matches!(self.link, Link::Opening) {
            return; // made for settings no longer in force: dropped, closed
        }
        self.link = match made {
            Ok(conn) if event_loop::watch(mt, conn.fd(), on_readable) => Link::Up(conn),
            Ok(_) => Link::Unfit,
            Err(NotOpened::Unfit(why)) => {
                log_notice(
                    format!("readthrough: inline loads off for this MongoDB URI ({why})").as_str(),
                );
                Link::Unfit
            }
            Err(NotOpened::Failed(why)) => {
                log_verbose(format!("readthrough: inline loads: no connection ({why})").as_str());
                Link::Down {
                    retry_at: Instant::now() + RETRY,
                }
            }
        };
    }

    /// What arrived on the socket: the query in flight and its answer, once whole.
    fn read(&mut self, mt: MainThread) -> Option<(Sent, Vec<u8>)> {
        let Link::Up(conn) = &mut self.link else {
            return None;
        };
        match conn.receive() {
            Err(e) => {
                self.close(mt, &e);
                None
            }
            Ok(messages) => {
                let id = self.sent.as_ref()?.id;
                // Only the query in flight is answered: nothing else was sent.
                let answer = messages.into_iter().find(|m| response_to(m) == id)?;
                Some((self.sent.take()?, answer))
            }
        }
    }
}

/// Opens a connection on the loader thread; the main thread takes it at its next pass.
fn open(uri: String, timeout: Duration, generation: u64) {
    runtime::spawn(async move {
        let made = inline_conn::open(uri, timeout).await;
        event_loop::on_main_thread(Box::new(move |mt| {
            LANE.with(|l| l.borrow_mut().opened(mt, generation, made))
        }));
    });
}

fn response_to(msg: &[u8]) -> i32 {
    i32::from_le_bytes([msg[8], msg[9], msg[10], msg[11]])
}

/// The socket is readable.
fn on_readable(mt: MainThread) {
    let Some((sent, answer)) = LANE.with(|l| l.borrow_mut().read(mt)) else {
        return;
    };
    sent.deadline.cancel(mt);
    let load = sent.load;
    fault::maybe_panic("inline-answer");
    if answer.len() > MAX_INLINE_BYTES {
        runtime::spawn(async move {
            let decoded = decode(&load.load().target, &answer);
            conclude(load, decoded, Loading::finish);
        });
        return;
    }
    let decoded = decode(&load.load().target, &answer);
    // Written from a timer: its context replicates the writes as one unit. A 0 ms timer fires
    // later in this same pass of the event loop.
    event_loop::after_ms(
        mt,
        0,
        Box::new(move |ctx, _| conclude(load, decoded, |l, o| l.finish_here(ctx, o))),
    );
}

/// Ends an inline load with what MongoDB's reply held: the document (or none), or an error
/// reply the driver would answer at once (`BACKEND` in its words). Anything else goes to the
/// driver, which would try again, and the connection is dropped.
fn conclude(
    load: Loading,
    decoded: Result<Option<Loaded>, NoAnswer>,
    finish: impl FnOnce(Loading, Outcome),
) {
    let outcome = match decoded {
        Ok(found) => Ok(found),
        Err(e) if !e.retryable() && matches!(e, NoAnswer::Refused { .. }) => {
            Err(Error::Backend(e.into_text()))
        }
        Err(e) => {
            let why = format!("MongoDB answered: {}", e.into_text());
            // Dropping the connection must happen on the main thread, which owns it (this may
            // run on the loader thread, for a large answer).
            event_loop::on_main_thread(Box::new(move |mt| {
                LANE.with(|l| l.borrow_mut().close(mt, &why))
            }));
            return hand_off(load);
        }
    };
    counters::count(&counters::INLINE_LOADS);
    finish(load, outcome);
}

/// Gives an inline load to the loader thread, with what is left of its deadline.
fn hand_off(load: Loading) {
    counters::count(&counters::INLINE_HANDOFFS);
    driver::spawn(load);
}

/// A `find` answer as the load's outcome: the document in its mapping's format, or none; for a
/// `many` mapping the list (a result larger than one batch goes to the driver).
fn decode(target: &Target, answer: &[u8]) -> Result<Option<Loaded>, NoAnswer> {
    let (_, body) = wire::decode(answer).map_err(NoAnswer::Odd)?;
    let m = &target.mapping;
    if m.many.is_some() {
        return Ok(Some(list_value_of(m, wire::found_all(body)?)));
    }
    Ok(wire::found(body)?.map(|d| value_of(m, d)))
}

/// Inline query `id` had no answer by half its deadline (in a timer): the connection may be
/// dead without a word, so it is dropped and the load goes to the driver.
fn no_answer_in_time(mt: MainThread, id: i32) {
    let sent = LANE.with(|l| {
        let mut l = l.borrow_mut();
        if l.sent.as_ref().map(|s| s.id) != Some(id) {
            return None;
        }
        // Taken out before `close`, which would stop this very timer: Redis frees a timer only
        // after its callback returns, so stopping it here would free it, and this job, twice.
        let sent = l.sent.take();
        l.close(
            mt,
            "no answer by half the deadline; the driver takes the load",
        );
        sent
    });
    if let Some(sent) = sent {
        hand_off(sent.load);
    }
}
