//! Reading the client's keys on the main thread: the cached string (replied straight from
//! Redis's buffer on the hit path), its TTL, and the calling client's situation (DB, role,
//! whether it may block).

use crate::core::error::Error;
use crate::core::format::Format;
use crate::redis::args::{Args, RStr};
use crate::redis::reply::reply_bulk;
use redis_module::{raw, Context, ContextFlags};
use std::os::raw::c_int;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set (on the main thread) while the module opens a key itself: on Redis 7.0 that lookup of a
/// missing key fires the key-miss event too, and the hook must ignore it.
static OWN_LOOKUP: AtomicBool = AtomicBool::new(false);

pub fn own_lookup() -> bool {
    OWN_LOOKUP.load(Ordering::Relaxed)
}

/// Runs `f` (a lookup or a native read the module makes itself) with the key-miss hook told to
/// ignore what it sees. Main thread or under the GIL.
pub fn as_own_lookup<R>(f: impl FnOnce() -> R) -> R {
    let before = OWN_LOOKUP.swap(true, Ordering::Relaxed);
    let r = f();
    OWN_LOOKUP.store(before, Ordering::Relaxed);
    r
}

/// What a key holds, as far as the module's formats care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    Nothing,
    String,
    Hash,
    /// A module type: a RedisJSON document when the mapping is `format=json` (the native read
    /// says `WRONGTYPE` for any other module's type).
    Module,
    Other,
}

impl Held {
    /// True when the key holds the type `format` stores.
    pub fn fits(self, format: Format) -> bool {
        matches!(
            (self, format),
            (Held::String, Format::String)
                | (Held::Hash, Format::Hash)
                | (Held::Module, Format::Json)
        )
    }
}

/// What `key` holds in `ctx`'s selected DB, and its TTL in ms (-1: none, or not asked for).
/// Main thread, or a thread holding the GIL.
pub fn probe(ctx: &Context, key: &[u8], want_ttl: bool) -> (Held, i64) {
    // SAFETY: `ctx` is live and the caller runs on the main thread or holds the GIL; the string
    // made here is freed after its last use.
    unsafe {
        let name = raw::RedisModule_CreateString.unwrap()(ctx.ctx, key.as_ptr().cast(), key.len());
        let found = probe_raw(ctx, RStr::new(name), want_ttl);
        raw::RedisModule_FreeString.unwrap()(ctx.ctx, name);
        found
    }
}

/// `probe` of a key given as a Redis string (a command's own argument: no copy).
pub fn probe_raw(ctx: &Context, name: RStr<'_>, want_ttl: bool) -> (Held, i64) {
    // SAFETY: `ctx` is live (main thread or the GIL held, as for `probe`); `name` is a live
    // Redis string (its type says so); the key is closed before returning.
    unsafe {
        let k = as_own_lookup(|| {
            raw::RedisModule_OpenKey.unwrap()(
                ctx.ctx,
                name.as_ptr(),
                raw::REDISMODULE_READ as c_int,
            )
        });
        if k.is_null() {
            return (Held::Nothing, -1);
        }
        let ty = raw::RedisModule_KeyType.unwrap()(k);
        let held = [
            (raw::REDISMODULE_KEYTYPE_EMPTY as c_int, Held::Nothing),
            (raw::REDISMODULE_KEYTYPE_STRING as c_int, Held::String),
            (raw::REDISMODULE_KEYTYPE_HASH as c_int, Held::Hash),
            (raw::REDISMODULE_KEYTYPE_MODULE as c_int, Held::Module),
        ]
        .into_iter()
        .find_map(|(t, h)| (t == ty).then_some(h))
        .unwrap_or(Held::Other);
        let ttl = if want_ttl && held != Held::Nothing {
            raw::RedisModule_GetExpire.unwrap()(k)
        } else {
            -1
        };
        raw::RedisModule_CloseKey.unwrap()(k);
        (held, ttl)
    }
}

/// Opens the key at argument `i` for reading and, if it holds a string, calls `f` with the
/// string and the open key. `None` when the key does not exist; `WRONGTYPE` for other types.
fn with_cached<R>(
    ctx: &Context,
    args: &Args,
    i: usize,
    f: impl FnOnce(&[u8], *mut raw::RedisModuleKey) -> R,
) -> Result<Option<R>, Error> {
    OWN_LOOKUP.store(true, Ordering::Relaxed);
    // SAFETY: main thread, inside a command call: `ctx` and the argument are live.
    let key = unsafe {
        raw::RedisModule_OpenKey.unwrap()(
            ctx.ctx,
            args.raw(i).as_ptr(),
            raw::REDISMODULE_READ as c_int,
        )
    };
    OWN_LOOKUP.store(false, Ordering::Relaxed);
    if key.is_null() {
        return Ok(None);
    }
    // SAFETY: `key` is open until the `CloseKey` below; the string Redis lends (DMA) is read
    // before the key is closed and nothing writes meanwhile (main thread).
    unsafe {
        let ty = raw::RedisModule_KeyType.unwrap()(key);
        let res = if ty == raw::REDISMODULE_KEYTYPE_STRING as c_int {
            let mut len = 0;
            let p =
                raw::RedisModule_StringDMA.unwrap()(key, &mut len, raw::REDISMODULE_READ as c_int);
            if p.is_null() {
                Ok(None)
            } else {
                Ok(Some(f(
                    std::slice::from_raw_parts(p.cast::<u8>(), len),
                    key,
                )))
            }
        } else if ty == raw::REDISMODULE_KEYTYPE_EMPTY as c_int {
            Ok(None)
        } else {
            Err(Error::WrongType)
        };
        raw::RedisModule_CloseKey.unwrap()(key);
        res
    }
}

/// Replies with the string held at argument `i` if that key holds one, and returns
/// `Some(ms left)` (-1: no expiry; also -1 unless `want_ttl`). `None` when the key does not
/// exist; `WRONGTYPE` when it holds another type.
pub fn reply_cached(
    ctx: &Context,
    args: &Args,
    i: usize,
    want_ttl: bool,
) -> Result<Option<i64>, Error> {
    with_cached(ctx, args, i, |value, key| {
        reply_bulk(ctx, value);
        if want_ttl {
            // SAFETY: called inside `with_cached`, while `key` is open.
            unsafe { raw::RedisModule_GetExpire.unwrap()(key) }
        } else {
            -1
        }
    })
}

/// A copy of the string held at argument `i`, if any.
pub fn read_cached(ctx: &Context, args: &Args, i: usize) -> Result<Option<Vec<u8>>, Error> {
    with_cached(ctx, args, i, |value, _| value.to_vec())
}

/// The database the calling client has selected (read on the main thread, since background
/// contexts always start in DB 0).
pub fn selected_db(ctx: &Context) -> i32 {
    // SAFETY: `ctx` is the live context of the current call.
    unsafe { raw::RedisModule_GetSelectedDb.unwrap()(ctx.ctx) }
}

/// True on a replica (values arrive from the master; the module never writes there).
pub fn is_replica(ctx: &Context) -> bool {
    ctx.get_flags().contains(ContextFlags::SLAVE)
}

/// True where a command cannot block its client: inside MULTI/EXEC, Lua, or a context that
/// denies blocking (e.g. a command run by another module).
pub fn cannot_block(ctx: &Context) -> bool {
    ctx.get_flags()
        .intersects(ContextFlags::MULTI | ContextFlags::LUA | ContextFlags::DENY_BLOCKING)
}

/// True when Redis runs in cluster mode.
pub fn is_cluster(ctx: &Context) -> bool {
    ctx.get_flags().contains(ContextFlags::CLUSTER)
}
