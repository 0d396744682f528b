//! Which commands the server has: a `format=json` mapping needs `JSON.SET` (RedisJSON, Redis 8's
//! built-in JSON, Valkey's JSON module) and is refused without it.

use crate::redis::main_thread::MainThread;
use redis_module::{raw, Context, RedisValue};
use std::ptr;

/// True when the server knows the command `name` (config setters, module load, the ACL
/// check's recompute).
pub fn exists(_: MainThread, name: &str) -> bool {
    // SAFETY: main thread (the token), which holds the Redis lock; the detached context is freed below.
    let ctx = unsafe { raw::RedisModule_GetThreadSafeContext.unwrap()(ptr::null_mut()) };
    let found = match Context::new(ctx).call("COMMAND", &["INFO", name]) {
        Ok(RedisValue::Array(items)) => items
            .first()
            .is_some_and(|i| !matches!(i, RedisValue::Null)),
        _ => false,
    };
    // SAFETY: made above, used by nothing else.
    unsafe { raw::RedisModule_FreeThreadSafeContext.unwrap()(ctx) };
    found
}
