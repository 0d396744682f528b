//! Redis Cluster's bus, for the change-stream watchers: where the node keeps its view of the
//! cluster (which master serves which slots), sending a message to one master, and receiving
//! (handed to the engine through `callbacks`). Everything here runs on the main thread or
//! under the GIL.

use crate::redis::callbacks;
use crate::redis::gil::Gil;
use crate::redis::panic_guard::catch;
use crate::redis::write;
use redis_module::{raw, CallReply, Context};
use std::ffi::CString;
use std::os::raw::{c_char, c_int, c_uchar};
use std::sync::atomic::{AtomicPtr, Ordering};

/// The module's one message type on the bus.
const MESSAGE_TYPE: u8 = 1;
/// Node ids are 40 characters, not NUL-terminated where Redis hands them over.
const NODE_ID_LEN: usize = 40;

/// A detached context of the module's: sending needs a context that names the module, which
/// the store thread's thread-safe contexts do not (made at load).
static SEND_CTX: AtomicPtr<raw::RedisModuleCtx> = AtomicPtr::new(std::ptr::null_mut());

/// At load, in cluster mode: receive the module's messages and make the sending context.
pub fn register(ctx: &Context) -> bool {
    // SAFETY: reading API pointers Redis filled in at load; main thread, inside the module's
    // init, with its context.
    unsafe {
        let (Some(detach), Some(receiver)) = (
            raw::RedisModule_GetDetachedThreadSafeContext,
            raw::RedisModule_RegisterClusterMessageReceiver,
        ) else {
            return false;
        };
        SEND_CTX.store(detach(ctx.ctx), Ordering::Release);
        receiver(ctx.ctx, MESSAGE_TYPE, Some(on_message));
    }
    true
}

// Called by Redis only (registered above), on its main thread, with the lock held.
extern "C" fn on_message(
    ctx: *mut raw::RedisModuleCtx,
    sender_id: *const c_char,
    _type: u8,
    payload: *const c_uchar,
    len: u32,
) {
    catch("a cluster bus message", || {
        // SAFETY: Redis passes a sender id of NODE_ID_LEN bytes and `len` bytes of payload,
        // both live for this call.
        let (sender, bytes) = unsafe {
            (
                std::slice::from_raw_parts(sender_id as *const u8, NODE_ID_LEN),
                std::slice::from_raw_parts(payload, len as usize),
            )
        };
        let sender = String::from_utf8_lossy(sender);
        let gil = Gil::held_by(&Context::new(ctx));
        (callbacks::get().bus_message)(&gil, &sender, bytes);
    });
}

/// Sends `payload` to the master `target`; false if Redis does not know that node (the bus
/// itself may still drop it: receivers count what they miss).
pub fn send(_gil: &Gil, target: &str, payload: &[u8]) -> bool {
    let ctx = SEND_CTX.load(Ordering::Acquire);
    let Ok(target) = CString::new(target) else {
        return false;
    };
    if ctx.is_null() || payload.len() > u32::MAX as usize {
        return false;
    }
    // SAFETY: the caller holds the GIL (the token); `ctx` is the module's detached context;
    // Redis copies the target and the payload before returning.
    unsafe {
        raw::RedisModule_SendClusterMessage.unwrap()(
            ctx,
            target.as_ptr(),
            MESSAGE_TYPE,
            payload.as_ptr() as *const c_char,
            payload.len() as u32,
        ) == raw::REDISMODULE_OK as c_int
    }
}

/// The path of the node's cluster config file (`cluster-config-file`, relative to the working
/// directory, which Redis keeps at `dir`). Read, rather than `CLUSTER SLOTS` through the
/// module API: Valkey 8.0 answers `CLUSTER SLOTS`, `SHARDS` and `NODES` with the calling
/// client's address, and a background thread's module client has none (it crashes).
pub fn config_file(gil: &Gil) -> Option<String> {
    write::call_read(gil, 0, "CONFIG", &[b"GET", b"cluster-config-file"], |r| {
        let CallReply::Array(a) = r else {
            return None;
        };
        match a.get(1) {
            Some(Ok(CallReply::String(s))) => s.to_string(),
            _ => None,
        }
    })
    .flatten()
}
