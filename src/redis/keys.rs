//! Reading the client's keys on the main thread: the cached string (replied straight from
//! Redis's buffer on the hit path), its TTL, and the calling client's situation (DB, role,
//! whether it may block).

use crate::core::error::Error;
use crate::core::format::Format;
use crate::redis::args::{Args, RStr};
use crate::redis::main_thread::MainThread;
use crate::redis::reply::reply_bulk;
use redis_module::{raw, Context, ContextFlags};
use std::os::raw::c_int;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

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

/// How `probe` opens a key: a look that is not a read of it. Whatever answers the client (the
/// native command, or a reply from the key) reads it, so the look must not also count in
/// `keyspace_hits`/`keyspace_misses`, touch the key's LRU/LFU, or fire another module's
/// key-miss event. Redis 7.0 honours `NOTOUCH` only (and ignores the other bits).
const PEEK: u32 = raw::REDISMODULE_READ
    | raw::REDISMODULE_OPEN_KEY_NOTOUCH
    | raw::REDISMODULE_OPEN_KEY_NONOTIFY
    | raw::REDISMODULE_OPEN_KEY_NOSTATS;

// `RedisModule_KeyType`'s answers, as the C int it returns.
const KEYTYPE_EMPTY: c_int = raw::REDISMODULE_KEYTYPE_EMPTY as c_int;
const KEYTYPE_STRING: c_int = raw::REDISMODULE_KEYTYPE_STRING as c_int;
const KEYTYPE_HASH: c_int = raw::REDISMODULE_KEYTYPE_HASH as c_int;
const KEYTYPE_MODULE: c_int = raw::REDISMODULE_KEYTYPE_MODULE as c_int;

/// `probe` of a key given as a Redis string (a command's own argument: no copy).
pub fn probe_raw(ctx: &Context, name: RStr<'_>, want_ttl: bool) -> (Held, i64) {
    // SAFETY: `ctx` is live (main thread or the GIL held, as for `probe`); `name` is a live
    // Redis string (its type says so); the key is closed before returning.
    unsafe {
        let k = as_own_lookup(|| {
            raw::RedisModule_OpenKey.unwrap()(ctx.ctx, name.as_ptr(), PEEK as c_int)
        });
        if k.is_null() {
            return (Held::Nothing, -1);
        }
        let held = match raw::RedisModule_KeyType.unwrap()(k) {
            KEYTYPE_EMPTY => Held::Nothing,
            KEYTYPE_STRING => Held::String,
            KEYTYPE_HASH => Held::Hash,
            KEYTYPE_MODULE => Held::Module,
            _ => Held::Other,
        };
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
        let res = if ty == KEYTYPE_STRING {
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
        } else if ty == KEYTYPE_EMPTY {
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

/// A detached context of the module's for the command filter's key checks, which have no
/// context of their own (made at load; null until then or where the server has none).
static FILTER_CTX: AtomicPtr<raw::RedisModuleCtx> = AtomicPtr::new(std::ptr::null_mut());

thread_local! {
    /// Main thread: whether some client may have selected a DB other than 0. Redis 7.0 does not
    /// tell the command filter its client, but every client starts in DB 0 and the filter sees
    /// every `SELECT`: until one names another DB, every client reads DB 0.
    static OFF_DB0: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The filter saw `SELECT db`: unless it is `0`, some client may now read another DB.
pub fn saw_select(_: MainThread, db: &[u8]) {
    if db != b"0" {
        OFF_DB0.with(|o| o.set(true));
    }
}

/// At load: makes the command filter's context. Clients connected before the module loaded
/// (`MODULE LOAD`) chose their DBs unseen.
pub fn init_filter_ctx(ctx: &Context) {
    let clients = ctx.server_info("clients").field("connected_clients");
    if clients.is_none_or(|n| n.to_string() != "0") {
        OFF_DB0.with(|o| o.set(true));
    }
    // SAFETY: reading an API pointer Redis filled in at load; main thread, inside the module's
    // init, with its context.
    if let Some(detach) = unsafe { raw::RedisModule_GetDetachedThreadSafeContext } {
        // SAFETY: as above.
        let own = unsafe { detach(ctx.ctx) };
        FILTER_CTX.store(own, Ordering::Release);
    }
}

/// Whether every one of `keys` holds a value of `format`'s type in the DB client `client_id`
/// has selected (`None`: a server that does not name the client, where that is DB 0 until some
/// client selects another): the command filter's check, so that a read of cached keys can stay
/// the native command. `None` when it cannot be known here. Does not let the key-miss hook
/// prefetch what is missing (the rewritten read that follows loads it).
pub fn all_cached_for_client<'k>(
    mt: MainThread,
    client_id: Option<u64>,
    keys: impl IntoIterator<Item = RStr<'k>>,
    format: Format,
) -> Option<bool> {
    let ctx = FILTER_CTX.load(Ordering::Acquire);
    if ctx.is_null() {
        return None;
    }
    let db = match client_id {
        Some(id) => client_db(mt, id)?,
        None if !OFF_DB0.with(|o| o.get()) => 0,
        None => return None,
    };
    // SAFETY: main thread (the token), where the keyspace is Redis's own to read; `ctx` is the
    // module's detached context; each key is a live Redis string (its type says so).
    unsafe {
        if FILTER_DB.get() != db {
            if raw::RedisModule_SelectDb.unwrap()(ctx, db) != raw::REDISMODULE_OK as c_int {
                return None;
            }
            FILTER_DB.set(db);
        }
        let ctx = Context::new(ctx);
        Some(
            keys.into_iter()
                .all(|k| probe_raw(&ctx, k, false).0.fits(format)),
        )
    }
}

thread_local! {
    /// Main thread: the DB the filter's context has selected (-1: none yet). Most reads come
    /// from clients of one DB: selecting it again for each costs as much as the rest of the
    /// check's own steps.
    static FILTER_DB: std::cell::Cell<c_int> = const { std::cell::Cell::new(-1) };
}

/// Slots of the cache of which DB each client has selected.
const CLIENT_DBS: usize = 1024;

thread_local! {
    /// Main thread: `(client id + 1, DB)` by `id % CLIENT_DBS` (0: empty). Asking Redis costs
    /// about 2,000 instructions (it formats the client's address), several times a cached read;
    /// a client's DB changes only by a command the filter sees first (`forget_client_db`).
    static CLIENT_DB: std::cell::RefCell<[(u64, c_int); CLIENT_DBS]> =
        const { std::cell::RefCell::new([(0, 0); CLIENT_DBS]) };
}

/// The DB client `id` has selected, from the cache or from Redis.
fn client_db(_: MainThread, id: u64) -> Option<c_int> {
    let slot = (id % CLIENT_DBS as u64) as usize;
    let cached = CLIENT_DB.with(|c| {
        let (tag, db) = c.borrow()[slot];
        (tag == id + 1).then_some(db)
    });
    if cached.is_some() {
        return cached;
    }
    let mut info = raw::RedisModuleClientInfoV1 {
        version: 1,
        flags: 0,
        id: 0,
        addr: [0; 46],
        port: 0,
        db: 0,
    };
    // SAFETY: main thread (the token), where Redis's clients are its own to read; `info` is a
    // version-1 struct Redis fills.
    let found = unsafe {
        let get_info = raw::RedisModule_GetClientInfoById?;
        get_info((&mut info as *mut raw::RedisModuleClientInfoV1).cast(), id)
    };
    if found != raw::REDISMODULE_OK as c_int {
        return None;
    }
    let db = info.db as c_int;
    CLIENT_DB.with(|c| c.borrow_mut()[slot] = (id + 1, db));
    Some(db)
}

/// The filter saw client `id` send a command that may change its DB (`SELECT`, `RESET`, or
/// `EXEC` of a transaction that may hold one): its DB is asked again next time.
pub fn forget_client_db(_: MainThread, id: u64) {
    let slot = (id % CLIENT_DBS as u64) as usize;
    CLIENT_DB.with(|c| c.borrow_mut()[slot] = (0, 0));
}
