//! Blocked clients: a client that missed waits (the server does not) until its load ends, and
//! gets exactly one reply.

use crate::core::error::{Error, Outcome};
use crate::core::format::{Format, Slot, Value};
use crate::redis::answer::{reply_native, reply_outcome, reply_slots};
use crate::redis::panic_guard::catch;
use crate::redis::reply::reply_error;
use crate::state::counters;
use crate::state::{fault, settings};
use redis_module::{raw, Context};
use std::os::raw::{c_int, c_void};
use std::ptr;
use std::sync::Arc;

/// What a blocked client is answered with.
enum Reply {
    /// `RT.GET`, `RT.REFRESH`: one load's outcome, shared by its waiters.
    One(Arc<Outcome>),
    /// `RT.MGET`: one value or nil per key, in order.
    Many(Result<Vec<Slot>, Error>),
}

/// How a blocked client is answered once its load ended, decided when it blocked.
pub enum Answer {
    /// The value of `key` (`RT.GET`, `RT.REFRESH`, a transparent `GET`), in its format.
    Value(Vec<u8>),
    /// `RT.MGET`: the keys and their formats.
    Values(Vec<Vec<u8>>, Vec<Format>),
    /// A transparent native read (`JSON.GET key $.name`, `HGET key f`, ...): run as the client
    /// once the keys are loaded, its reply forwarded. The command (name first) and the keys it
    /// waits for (in the order of a batch's slots).
    Native(Vec<Vec<u8>>, Vec<Vec<u8>>),
}

/// Redis's own timeout on a blocked client is only a safety net, this long after
/// `readthrough.timeout`. The load itself is bounded by `readthrough.timeout` and answers
/// `TIMEOUT` through `finish`. Reason: on Redis 7.0, when `UnblockClient` is called after the
/// deadline but before the main thread has processed the timeout (a window of up to 1/hz
/// seconds), the timeout handler skips the client and the reply callback is never called: the
/// client waits for ever. With one path for the reply, that race cannot happen.
pub const TIMEOUT_SAFETY_MS: i64 = 5000;

/// A client blocked on a load. It gets exactly one reply: the outcome handed to `finish`, or,
/// if the waiter is dropped unfinished (a bug, a panic), an internal error. If Redis already
/// timed the client out or it disconnected, Redis drops the reply and frees the outcome.
pub struct Waiter {
    bc: *mut raw::RedisModuleBlockedClient,
    answer: Option<Answer>,
}

// SAFETY: the blocked-client handle is meant to be passed to other threads; `UnblockClient`
// is thread-safe, and the handle is used once (`unblock` nulls it).
unsafe impl Send for Waiter {}

impl Waiter {
    /// Blocks the client running the current command for at most `timeout_ms`; it will be
    /// answered as `answer` says.
    pub fn block(ctx: &Context, timeout_ms: i64, answer: Answer) -> Waiter {
        // SAFETY: main thread, inside a command call that may block (checked by the caller).
        let bc = unsafe {
            raw::RedisModule_BlockClient.unwrap()(
                ctx.ctx,
                Some(on_reply),
                Some(on_timeout),
                Some(free_reply),
                timeout_ms,
            )
        };
        Waiter {
            bc,
            answer: Some(answer),
        }
    }

    pub fn finish(mut self, outcome: Arc<Outcome>) {
        self.unblock(Reply::One(outcome));
    }

    pub fn finish_many(mut self, values: Result<Vec<Slot>, Error>) {
        self.unblock(Reply::Many(values));
    }

    fn unblock(&mut self, reply: Reply) {
        if self.bc.is_null() {
            return;
        }
        let answer = self.answer.take();
        let data = Box::into_raw(Box::new((reply, answer))).cast::<c_void>();
        // SAFETY: `bc` is a live blocked client, unblocked exactly once; Redis hands `data` to
        // `on_reply` and then to `free_reply`, which takes the box back.
        unsafe { raw::RedisModule_UnblockClient.unwrap()(self.bc, data) };
        self.bc = ptr::null_mut();
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let e = Error::Internal("the load ended without a result".into());
        self.unblock(Reply::One(Arc::new(Err(e))));
    }
}

/// What Redis hands to the reply callback: the result and how to answer it.
type Unblocked = (Reply, Option<Answer>);

/// Main thread: answers an unblocked client (`timeouts` counts the clients answered `TIMEOUT`,
/// whichever command they sent).
fn send_reply(ctx: &Context, (reply, answer): &Unblocked) {
    fault::maybe_panic("reply");
    let error = match reply {
        Reply::One(outcome) => outcome.as_ref().as_ref().err(),
        Reply::Many(values) => values.as_ref().err(),
    };
    if matches!(error, Some(Error::Timeout(_))) {
        counters::count(&counters::TIMEOUTS);
    }
    match (reply, answer) {
        (_, Some(Answer::Native(cmd, keys))) => match error {
            Some(e) => reply_error(ctx, e),
            None => {
                let loaded: Vec<Option<&Value>> = match reply {
                    Reply::One(outcome) => {
                        vec![outcome
                            .as_ref()
                            .as_ref()
                            .ok()
                            .and_then(Option::as_ref)
                            .map(|l| &l.value)]
                    }
                    Reply::Many(Ok(slots)) => slots
                        .iter()
                        .map(|s| match s {
                            Slot::Loaded(v) => Some(v),
                            _ => None,
                        })
                        .collect(),
                    Reply::Many(Err(_)) => Vec::new(),
                };
                reply_native(ctx, cmd, keys, &loaded);
            }
        },
        (Reply::One(outcome), Some(Answer::Value(key))) => reply_outcome(ctx, key, outcome),
        (Reply::Many(Ok(slots)), Some(Answer::Values(keys, formats))) => {
            reply_slots(ctx, keys, formats, slots)
        }
        (_, _) => match error {
            Some(e) => reply_error(ctx, e),
            None => reply_error(ctx, &Error::Internal("a reply of the wrong shape".into())),
        },
    }
}

/// Main thread, after `UnblockClient`: send the outcome to the client.
// Called by Redis only (private: registered as a callback), on its main thread.
extern "C" fn on_reply(
    ctx: *mut raw::RedisModuleCtx,
    _argv: *mut *mut raw::RedisModuleString,
    _argc: c_int,
) -> c_int {
    // SAFETY: Redis calls this with the blocked client's context; the private data is the
    // `Unblocked` boxed by `unblock`, alive until `free_reply`.
    let data = unsafe { raw::RedisModule_GetBlockedClientPrivateData.unwrap()(ctx) };
    let ctx = Context::new(ctx);
    // SAFETY: see above; a null pointer reads as `None`.
    let reply = unsafe { data.cast::<Unblocked>().as_ref() };
    let sent = catch("a blocked client's reply", || match reply {
        Some(reply) => send_reply(&ctx, reply),
        None => reply_error(
            &ctx,
            &Error::Internal("blocked client without outcome".into()),
        ),
    });
    if sent.is_none() {
        reply_error(&ctx, &Error::Internal("a panic while replying".into()));
    }
    raw::REDISMODULE_OK as c_int
}

/// Main thread: Redis's safety-net timeout ran out (see `TIMEOUT_SAFETY_MS`).
// Called by Redis only (private: registered as a callback), on its main thread.
extern "C" fn on_timeout(
    ctx: *mut raw::RedisModuleCtx,
    _argv: *mut *mut raw::RedisModuleString,
    _argc: c_int,
) -> c_int {
    let ctx = Context::new(ctx);
    let timeout = Error::Timeout((settings::timeout_ms() + TIMEOUT_SAFETY_MS) as u64);
    let answered = catch("a blocked client's timeout", || {
        fault::maybe_panic("timeout");
        counters::count(&counters::TIMEOUTS);
        reply_error(&ctx, &timeout);
    });
    if answered.is_none() {
        reply_error(&ctx, &timeout);
    }
    raw::REDISMODULE_OK as c_int
}

// Called by Redis only (private: registered as a callback), on its main thread.
extern "C" fn free_reply(_ctx: *mut raw::RedisModuleCtx, data: *mut c_void) {
    if !data.is_null() {
        // SAFETY: `data` is the box made by `unblock`; Redis frees it exactly once. Dropping an
        // `Unblocked` runs no code of ours that could panic (strings and errors only).
        drop(unsafe { Box::from_raw(data.cast::<Unblocked>()) });
    }
}
