//! Redis's own event loop, for the inline loads: a socket watched by it, timers on the main
//! thread, and work handed to the main thread from another one. Each callback catches panics.

use crate::redis::main_thread::MainThread;
use crate::redis::panic_guard::catch;
use redis_module::{raw, Context};
use std::os::raw::{c_int, c_void};
use std::sync::atomic::{AtomicPtr, Ordering};

/// A detached context kept for the module's life: timers are created and stopped with it.
static TIMER_CTX: AtomicPtr<raw::RedisModuleCtx> = AtomicPtr::new(std::ptr::null_mut());

/// At load: keeps a context for timers. False if this server has no event-loop API (then the
/// inline loads stay off).
pub fn init(ctx: &Context) -> bool {
    // SAFETY: reading the API pointers Redis filled in at module init.
    let api = unsafe {
        let (add, del, one_shot, detach) = (
            raw::RedisModule_EventLoopAdd,
            raw::RedisModule_EventLoopDel,
            raw::RedisModule_EventLoopAddOneShot,
            raw::RedisModule_GetDetachedThreadSafeContext,
        );
        add.is_some() && del.is_some() && one_shot.is_some() && detach.is_some()
    };
    if !api {
        return false;
    }
    // SAFETY: main thread, inside the module's init, with its context.
    let detached = unsafe { raw::RedisModule_GetDetachedThreadSafeContext.unwrap()(ctx.ctx) };
    TIMER_CTX.store(detached, Ordering::Release);
    true
}

/// Whether `init` found the API.
pub fn available() -> bool {
    !TIMER_CTX.load(Ordering::Acquire).is_null()
}

/// Calls `f` whenever `fd` is readable, until `unwatch(fd)`.
pub fn watch(_: MainThread, fd: c_int, f: fn(MainThread)) -> bool {
    // SAFETY: main thread (the token); the callback is a plain fn pointer carried as user data.
    unsafe {
        raw::RedisModule_EventLoopAdd.unwrap()(
            fd,
            raw::REDISMODULE_EVENTLOOP_READABLE as c_int,
            Some(on_readable),
            f as *mut c_void,
        ) == raw::REDISMODULE_OK as c_int
    }
}

/// Stops watching `fd` (before it is closed).
pub fn unwatch(_: MainThread, fd: c_int) {
    // SAFETY: main thread (the token); deleting a watch that is not there is a no-op.
    unsafe {
        raw::RedisModule_EventLoopDel.unwrap()(fd, raw::REDISMODULE_EVENTLOOP_READABLE as c_int);
    }
}

extern "C" fn on_readable(_fd: c_int, data: *mut c_void, _mask: c_int) {
    // SAFETY: `data` is the fn pointer `watch` was given.
    let f: fn(MainThread) = unsafe { std::mem::transmute::<*mut c_void, fn(MainThread)>(data) };
    catch("a MongoDB socket's callback", || f(MainThread::here()));
}

type Job = Box<dyn FnOnce(MainThread) + Send>;

/// Any thread: runs `f` on the main thread at its next event-loop pass.
pub fn on_main_thread(f: Job) {
    let data = Box::into_raw(Box::new(f)) as *mut c_void;
    // SAFETY: AddOneShot may be called from any thread; `data` is freed by `run_job`.
    unsafe {
        raw::RedisModule_EventLoopAddOneShot.unwrap()(Some(run_job), data);
    }
}

extern "C" fn run_job(data: *mut c_void) {
    // SAFETY: made by `on_main_thread` from a boxed job, taken back exactly once.
    let job = unsafe { Box::from_raw(data as *mut Job) };
    catch("work handed to the main thread", || job(MainThread::here()));
}

type TimerJob = Box<dyn FnOnce(&Context, MainThread)>;

/// A timer that has not fired yet.
pub struct Timer(raw::RedisModuleTimerID);

/// Runs `f` with a context (writes under it are replicated as one unit when it returns) after
/// `ms`. A 0 ms timer fires later in the same event-loop pass.
pub fn after_ms(_: MainThread, ms: i64, f: TimerJob) -> Timer {
    let data = Box::into_raw(Box::new(f)) as *mut c_void;
    let ctx = TIMER_CTX.load(Ordering::Acquire);
    // SAFETY: main thread (the token); `ctx` is the module's detached context; `data` is freed by
    // `fire` or by `cancel`.
    let id = unsafe { raw::RedisModule_CreateTimer.unwrap()(ctx, ms, Some(fire), data) };
    Timer(id)
}

impl Timer {
    /// The timer will not fire; its work is dropped.
    pub fn cancel(self, _: MainThread) {
        let ctx = TIMER_CTX.load(Ordering::Acquire);
        let mut data: *mut c_void = std::ptr::null_mut();
        // SAFETY: main thread (the token); a timer that already fired is not found and nothing is freed.
        unsafe {
            if raw::RedisModule_StopTimer.unwrap()(ctx, self.0, &mut data)
                == raw::REDISMODULE_OK as c_int
                && !data.is_null()
            {
                drop(Box::from_raw(data as *mut TimerJob));
            }
        }
    }
}

extern "C" fn fire(ctx: *mut raw::RedisModuleCtx, data: *mut c_void) {
    // SAFETY: made by `after_ms` from a boxed job; a timer fires once.
    let job = unsafe { Box::from_raw(data as *mut TimerJob) };
    let ctx = Context::new(ctx);
    catch("a timer", move || job(&ctx, MainThread::here()));
}
