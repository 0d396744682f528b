//! Command entry points. Each one runs its body under `guarded`, so a panic becomes an error
//! reply instead of aborting Redis.

mod get;

use crate::error::Error;
use redis_module::{Context, RedisResult, RedisString};
use std::panic::{catch_unwind, AssertUnwindSafe};

fn guarded(ctx: &Context, f: impl FnOnce() -> RedisResult) -> RedisResult {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        ctx.log_warning(&format!("readthrough: caught a panic in a command: {what}"));
        Err(Error::Internal(what).into())
    })
}

pub fn rt_get(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    guarded(ctx, || get::rt_get(ctx, &args))
}
