//! The Redis lock (GIL) held from a background thread, with one thread-safe context for the
//! whole hold. Only the engine's store step takes it, never on the main thread, never across
//! an `.await`. On the main thread (an inline load's timer) the store step runs under the
//! context Redis gave the callback, which already holds the lock.

use redis_module::{raw, Context};
use std::os::raw::c_int;
use std::ptr;

/// Released on drop, also when unwinding.
pub struct Gil {
    ctx: *mut raw::RedisModuleCtx,
    /// Taken by this value (and so released on drop), or the main thread's own hold.
    owned: bool,
}

impl Gil {
    pub fn lock() -> Gil {
        // SAFETY: a detached thread-safe context may be made and locked from any thread.
        unsafe {
            let ctx = raw::RedisModule_GetThreadSafeContext.unwrap()(ptr::null_mut());
            raw::RedisModule_ThreadSafeContextLock.unwrap()(ctx);
            Gil { ctx, owned: true }
        }
    }

    /// The GIL if it is free right now, without waiting.
    pub fn try_lock() -> Option<Gil> {
        // SAFETY: as in `lock`; a context not locked is freed at once.
        unsafe {
            let ctx = raw::RedisModule_GetThreadSafeContext.unwrap()(ptr::null_mut());
            if raw::RedisModule_ThreadSafeContextTryLock.unwrap()(ctx)
                == raw::REDISMODULE_OK as c_int
            {
                Some(Gil { ctx, owned: true })
            } else {
                raw::RedisModule_FreeThreadSafeContext.unwrap()(ctx);
                None
            }
        }
    }

    /// The main thread's hold, inside a callback Redis gave `ctx` to (a timer): nothing is
    /// taken or released.
    pub fn held_by(ctx: &Context) -> Gil {
        Gil {
            ctx: ctx.ctx,
            owned: false,
        }
    }

    pub fn context(&self) -> Context {
        Context::new(self.ctx)
    }

    /// Background contexts start in DB 0: select the DB a write is for.
    pub fn select_db(&self, db: i32) -> bool {
        // SAFETY: `ctx` is a live context and this thread holds the lock.
        unsafe { raw::RedisModule_SelectDb.unwrap()(self.ctx, db) == raw::REDISMODULE_OK as c_int }
    }
}

impl Drop for Gil {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        // SAFETY: `ctx` was locked by this value and is unlocked and freed exactly once.
        unsafe {
            raw::RedisModule_ThreadSafeContextUnlock.unwrap()(self.ctx);
            raw::RedisModule_FreeThreadSafeContext.unwrap()(self.ctx);
        }
    }
}
