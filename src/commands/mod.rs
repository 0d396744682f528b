//! Command entry points. Each one runs its body under `guarded`, so a panic becomes an error
//! reply instead of aborting Redis.

mod admin;
pub mod get;
mod mget;

use crate::error::Error;
use crate::ffi;
use redis_module::raw;
use redis_module::{Context, RedisResult};
use std::os::raw::c_int;
use std::panic::{catch_unwind, AssertUnwindSafe};

pub fn guarded(ctx: &Context, f: impl FnOnce() -> RedisResult) -> RedisResult {
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

/// Registers every command: name, entry point, flags, (first key, last key, key step).
pub fn register(ctx: &Context) -> bool {
    ffi::create_command(ctx, "rt.get", rt_get_entry, "readonly", (1, 1, 1))
        && ffi::create_command(ctx, "rt.mget", rt_mget_entry, "readonly", (1, -1, 1))
        && ffi::create_command(
            ctx,
            crate::filter::TGET,
            rt_tget_entry,
            "readonly",
            (1, 1, 1),
        )
        && ffi::create_command(
            ctx,
            crate::filter::TMGET,
            rt_tmget_entry,
            "readonly",
            (1, -1, 1),
        )
        && ffi::create_command(ctx, "rt.refresh", rt_refresh_entry, "readonly", (1, 1, 1))
        && ffi::create_command(
            ctx,
            "rt.invalidate",
            rt_invalidate_entry,
            "write",
            (1, -1, 1),
        )
        && ffi::create_command(ctx, "rt.warm", rt_warm_entry, "write deny-oom", (0, 0, 0))
}

macro_rules! entry {
    ($name:ident, $handler:path) => {
        unsafe extern "C" fn $name(
            ctx: *mut raw::RedisModuleCtx,
            argv: *mut *mut raw::RedisModuleString,
            argc: c_int,
        ) -> c_int {
            ffi::dispatch(ctx, argv, argc, $handler)
        }
    };
}

entry!(rt_get_entry, get::rt_get);
entry!(rt_mget_entry, mget::rt_mget);
entry!(rt_tget_entry, get::rt_tget);
entry!(rt_tmget_entry, mget::rt_tmget);
entry!(rt_refresh_entry, admin::rt_refresh);
entry!(rt_invalidate_entry, admin::rt_invalidate);
entry!(rt_warm_entry, admin::rt_warm);
