//! Server events and the INFO section: registered at load, each callback catches panics and
//! hands the event to the engine (`callbacks`).

use crate::redis::callbacks;
use crate::redis::keys::is_replica;
use crate::redis::main_thread::MainThread;
use crate::redis::panic_guard::catch;
use crate::state::fault;
use redis_module::{raw, Context};
use std::ffi::CString;
use std::os::raw::{c_int, c_void};

/// Registers the `INFO readthrough` section.
pub fn register_info(ctx: &Context) -> bool {
    // SAFETY: called from the module's init with its context.
    unsafe {
        raw::RedisModule_RegisterInfoFunc.unwrap()(ctx.ctx, Some(on_info))
            == raw::REDISMODULE_OK as c_int
    }
}

// Called by Redis only (private: registered as a callback), on its main thread.
extern "C" fn on_info(ctx: *mut raw::RedisModuleInfoCtx, _for_crash_report: c_int) {
    let fields = catch("the INFO section", || {
        fault::maybe_panic("info");
        (callbacks::get().info)()
    });
    // SAFETY: Redis calls this with a live info context; the names and values are
    // NUL-terminated strings it copies.
    unsafe {
        raw::RedisModule_InfoAddSection.unwrap()(ctx, c"".as_ptr());
        let Some((numbers, texts)) = fields else {
            return; // an empty section rather than an aborted server
        };
        for (name, value) in numbers {
            let name = CString::new(name).expect("static name");
            raw::RedisModule_InfoAddFieldULongLong.unwrap()(ctx, name.as_ptr(), value);
        }
        for (name, value) in texts {
            if let (Ok(name), Ok(value)) = (CString::new(name), CString::new(value)) {
                raw::RedisModule_InfoAddFieldCString.unwrap()(ctx, name.as_ptr(), value.as_ptr());
            }
        }
    }
}

type EventHandler =
    unsafe extern "C" fn(*mut raw::RedisModuleCtx, raw::RedisModuleEvent, u64, *mut c_void);

/// Subscribes `handler` to the server event `id`.
fn subscribe(ctx: &Context, id: u64, handler: EventHandler) -> bool {
    let event = raw::RedisModuleEvent { id, dataver: 1 };
    // SAFETY: called from the module's init with its context.
    unsafe {
        raw::RedisModule_SubscribeToServerEvent.unwrap()(ctx.ctx, event, Some(handler))
            == raw::REDISMODULE_OK as c_int
    }
}

/// Tells the engine whether this node is a master now, and after every role change.
pub fn subscribe_role(ctx: &Context) -> bool {
    (callbacks::get().role_changed)(!is_replica(ctx));
    subscribe(
        ctx,
        raw::REDISMODULE_EVENT_REPLICATION_ROLE_CHANGED,
        on_role,
    )
}

// Called by Redis only (private: registered as a callback), on its main thread.
extern "C" fn on_role(
    _ctx: *mut raw::RedisModuleCtx,
    _eid: raw::RedisModuleEvent,
    subevent: u64,
    _data: *mut c_void,
) {
    // REDISMODULE_SUBEVENT_REPLROLECHANGED_NOW_MASTER is 0 (a macro bindgen does not see).
    catch("the role-change event", || {
        (callbacks::get().role_changed)(subevent == 0)
    });
}

/// Tells the engine after every FLUSHALL and FLUSHDB.
pub fn subscribe_flush(ctx: &Context) -> bool {
    subscribe(ctx, raw::REDISMODULE_EVENT_FLUSHDB, on_flush)
}

// Called by Redis only (private: registered as a callback), on its main thread.
extern "C" fn on_flush(
    _ctx: *mut raw::RedisModuleCtx,
    _eid: raw::RedisModuleEvent,
    subevent: u64,
    _data: *mut c_void,
) {
    if subevent == raw::REDISMODULE_SUBEVENT_FLUSHDB_END {
        catch("the flush event", || {
            fault::maybe_panic("flush-event");
            (callbacks::get().flushed)()
        });
    }
}

/// Calls the engine at each pass of Redis's cron (a timer of the module's own would make
/// Redis refuse `MODULE UNLOAD` for a timer, before the module can say why).
pub fn subscribe_cron(ctx: &Context) -> bool {
    subscribe(ctx, raw::REDISMODULE_EVENT_CRON_LOOP, on_cron)
}

// Called by Redis only (private: registered as a callback), on its main thread.
extern "C" fn on_cron(
    _ctx: *mut raw::RedisModuleCtx,
    _eid: raw::RedisModuleEvent,
    _subevent: u64,
    _data: *mut c_void,
) {
    catch("the cron event", || {
        (callbacks::get().cron)(MainThread::here())
    });
}

/// Applies the module's configs given at load time; false if one was refused.
pub fn load_configs(ctx: &Context) -> bool {
    // SAFETY: called from the module's init with its context, after the configs registered.
    unsafe { raw::RedisModule_LoadConfigs.unwrap()(ctx.ctx) == raw::REDISMODULE_OK as c_int }
}
