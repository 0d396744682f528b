//! The few raw Redis module calls the safe `redis-module` wrapper does not cover the way this
//! module needs them: blocking a client with reply, timeout and free callbacks; a lock on the
//! Redis GIL from a background thread that keeps one context; replies without extra copies.
//! Every `unsafe` block of the module lives here.

use crate::error::Error;
use crate::{config, stats};
use redis_module::{raw, Context, ContextFlags};
use std::ffi::CString;
use std::os::raw::{c_int, c_void};
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Set (on the main thread) while the module opens a key itself.
static OWN_LOOKUP: AtomicBool = AtomicBool::new(false);

/// A command's arguments, borrowed from Redis for the duration of the call (no copies, no
/// reference counting).
pub struct Args<'a> {
    argv: &'a [*mut raw::RedisModuleString],
}

impl<'a> Args<'a> {
    /// # Safety
    /// `argv` must point to `argc` valid strings that outlive the returned value.
    unsafe fn new(argv: *mut *mut raw::RedisModuleString, argc: c_int) -> Self {
        let argv = if argv.is_null() || argc <= 0 {
            &[][..]
        } else {
            std::slice::from_raw_parts(argv, argc as usize)
        };
        Args { argv }
    }

    pub fn len(&self) -> usize {
        self.argv.len()
    }

    pub fn bytes(&self, i: usize) -> &'a [u8] {
        let mut len = 0;
        unsafe {
            let p = raw::RedisModule_StringPtrLen.unwrap()(self.argv[i], &mut len);
            std::slice::from_raw_parts(p.cast::<u8>(), len)
        }
    }
}

/// A command handler: replies itself (returning `NoReply`) or returns the reply.
pub type Handler = fn(&Context, &Args) -> redis_module::RedisResult;

/// A raw command entry point.
pub type Entry = unsafe extern "C" fn(
    *mut raw::RedisModuleCtx,
    *mut *mut raw::RedisModuleString,
    c_int,
) -> c_int;

/// Registers a command: entry point, flags and legacy key range, then its key spec (so ACL key
/// permissions and `COMMAND INFO` say how the keys are used) and, on Redis 7.2 and later, its
/// ACL categories (Redis 7.0 has no API for them: there a user is granted the commands by name).
pub fn create_command(ctx: &Context, spec: &crate::commands::Spec) -> bool {
    let name = CString::new(spec.name).expect("command name");
    let flags = CString::new(spec.flags).expect("flags");
    let (first, last, step) = spec.keys;
    let created = unsafe {
        raw::RedisModule_CreateCommand.unwrap()(
            ctx.ctx,
            name.as_ptr(),
            Some(spec.entry),
            flags.as_ptr(),
            first,
            last,
            step,
        ) == raw::REDISMODULE_OK as c_int
    };
    if !created {
        return false;
    }
    let command = unsafe { raw::RedisModule_GetCommand.unwrap()(ctx.ctx, name.as_ptr()) };
    if command.is_null() {
        return false;
    }
    set_command_info(ctx, command, spec)
        && match unsafe { raw::RedisModule_SetCommandACLCategories } {
            Some(set) if !spec.acl.is_empty() => {
                let acl = CString::new(spec.acl).expect("categories");
                unsafe { set(command, acl.as_ptr()) == raw::REDISMODULE_OK as c_int }
            }
            _ => true,
        }
}

fn set_command_info(
    ctx: &Context,
    command: *mut raw::RedisModuleCommand,
    spec: &crate::commands::Spec,
) -> bool {
    let Some(set_info) = (unsafe { raw::RedisModule_SetCommandInfo }) else {
        return true;
    };
    // One range spec, then the all-zero terminator Redis expects; none for a keyless command.
    let mut key_specs = spec.key_use.flags().map(|flags| {
        let (first, last, step) = spec.keys;
        // SAFETY: all-zero is a valid (terminating) key spec.
        let terminator: raw::RedisModuleCommandKeySpec = unsafe { std::mem::zeroed() };
        let range = raw::RedisModuleCommandKeySpec {
            notes: ptr::null(),
            flags: flags as u64,
            begin_search_type: raw::RedisModuleKeySpecBeginSearchType_REDISMODULE_KSPEC_BS_INDEX,
            bs: raw::RedisModuleCommandKeySpec__bindgen_ty_1 {
                index: raw::RedisModuleCommandKeySpec__bindgen_ty_1__bindgen_ty_1 { pos: first },
            },
            find_keys_type: raw::RedisModuleKeySpecFindKeysType_REDISMODULE_KSPEC_FK_RANGE,
            fk: raw::RedisModuleCommandKeySpec__bindgen_ty_2 {
                range: raw::RedisModuleCommandKeySpec__bindgen_ty_2__bindgen_ty_1 {
                    lastkey: if last < 0 { last } else { last - first },
                    keystep: step,
                    limit: 0,
                },
            },
        };
        [range, terminator]
    });
    let version = raw::RedisModuleCommandInfoVersion {
        version: 1,
        sizeof_historyentry: std::mem::size_of::<raw::RedisModuleCommandHistoryEntry>(),
        sizeof_keyspec: std::mem::size_of::<raw::RedisModuleCommandKeySpec>(),
        sizeof_arg: std::mem::size_of::<raw::RedisModuleCommandArg>(),
    };
    let summary = CString::new(spec.summary).expect("summary");
    let since = CString::new(env!("CARGO_PKG_VERSION")).expect("version");
    let info = raw::RedisModuleCommandInfo {
        version: &version,
        summary: summary.as_ptr(),
        complexity: ptr::null(),
        since: since.as_ptr(),
        history: ptr::null_mut(),
        tips: ptr::null(),
        arity: 0,
        key_specs: key_specs
            .as_mut()
            .map_or(ptr::null_mut(), |k| k.as_mut_ptr()),
        args: ptr::null_mut(),
    };
    // Redis copies everything it keeps; the strings and specs above only need to outlive the call.
    let ok = unsafe { set_info(command, &info) == raw::REDISMODULE_OK as c_int };
    if !ok {
        ctx.log_warning(&format!(
            "readthrough: could not set the command info of {}",
            spec.name
        ));
    }
    ok
}

/// Runs `handler` for a raw command call and sends its result.
///
/// # Safety
/// To be called only from a command entry point with Redis's own arguments.
pub unsafe fn dispatch(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
    handler: Handler,
) -> c_int {
    let args = Args::new(argv, argc);
    let ctx = Context::new(ctx);
    let result = crate::commands::guarded(&ctx, || handler(&ctx, &args));
    ctx.reply(result);
    raw::REDISMODULE_OK as c_int
}

/// Opens the key at argument `i` for reading and, if it holds a string, calls `f` with the
/// string and the open key. `None` when the key does not exist; `WRONGTYPE` for other types.
fn with_cached<R>(
    ctx: &Context,
    args: &Args,
    i: usize,
    f: impl FnOnce(&[u8], *mut raw::RedisModuleKey) -> R,
) -> Result<Option<R>, Error> {
    unsafe {
        // Our own lookup of a missing key fires a key-miss event: the hook must ignore it.
        OWN_LOOKUP.store(true, Ordering::Relaxed);
        let key = raw::RedisModule_OpenKey.unwrap()(
            ctx.ctx,
            args.argv[i],
            raw::REDISMODULE_READ as c_int,
        );
        OWN_LOOKUP.store(false, Ordering::Relaxed);
        if key.is_null() {
            return Ok(None);
        }
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

/// What a load produced: the JSON document, `None` when MongoDB has no such document, or why
/// it failed. Shared by every waiter of the load.
pub type Outcome = Result<Option<String>, Error>;

/// The database the calling client has selected (read on the main thread, since background
/// contexts always start in DB 0).
pub fn selected_db(ctx: &Context) -> i32 {
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

/// Replies with a bulk string straight from a borrowed buffer (one copy, into the client's
/// output buffer).
pub fn reply_bulk(ctx: &Context, bytes: &[u8]) {
    unsafe {
        raw::RedisModule_ReplyWithStringBuffer.unwrap()(ctx.ctx, bytes.as_ptr().cast(), bytes.len())
    };
}

pub fn reply_null(ctx: &Context) {
    unsafe { raw::RedisModule_ReplyWithNull.unwrap()(ctx.ctx) };
}

pub fn reply_error(ctx: &Context, e: &Error) {
    let text = CString::new(e.to_string().replace('\0', " ")).expect("no NUL left");
    unsafe { raw::RedisModule_ReplyWithError.unwrap()(ctx.ctx, text.as_ptr()) };
}

pub fn reply_outcome(ctx: &Context, outcome: &Outcome) {
    match outcome {
        Ok(Some(json)) => reply_bulk(ctx, json.as_bytes()),
        Ok(None) => reply_null(ctx),
        Err(e) => reply_error(ctx, e),
    }
}

/// What a blocked client is answered with.
pub enum Reply {
    /// `RT.GET`, `RT.REFRESH`: one load's outcome, shared by its waiters.
    One(Arc<Outcome>),
    /// `RT.MGET`: one value or nil per key, in order.
    Many(Result<Vec<Option<Vec<u8>>>, Error>),
}

pub fn reply_values(ctx: &Context, values: &[Option<Vec<u8>>]) {
    unsafe { raw::RedisModule_ReplyWithArray.unwrap()(ctx.ctx, values.len() as _) };
    for v in values {
        match v {
            Some(bytes) => reply_bulk(ctx, bytes),
            None => reply_null(ctx),
        }
    }
}

/// Main thread: answers an unblocked client (`timeouts` counts the clients answered `TIMEOUT`,
/// whichever command they sent).
fn send_reply(ctx: &Context, reply: &Reply) {
    if matches!(
        reply,
        Reply::One(outcome) if matches!(**outcome, Err(Error::Timeout(_)))
    ) || matches!(reply, Reply::Many(Err(Error::Timeout(_))))
    {
        stats::count(&stats::TIMEOUTS);
    }
    match reply {
        Reply::One(outcome) => reply_outcome(ctx, outcome),
        Reply::Many(Ok(values)) => reply_values(ctx, values),
        Reply::Many(Err(e)) => reply_error(ctx, e),
    }
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
}

// The blocked-client handle is meant to be passed to other threads; `UnblockClient` is
// thread-safe.
unsafe impl Send for Waiter {}

impl Waiter {
    /// Blocks the client running the current command for at most `timeout_ms`.
    pub fn block(ctx: &Context, timeout_ms: i64) -> Waiter {
        let bc = unsafe {
            raw::RedisModule_BlockClient.unwrap()(
                ctx.ctx,
                Some(on_reply),
                Some(on_timeout),
                Some(free_outcome),
                timeout_ms,
            )
        };
        Waiter { bc }
    }

    pub fn finish(mut self, outcome: Arc<Outcome>) {
        self.unblock(Reply::One(outcome));
    }

    pub fn finish_many(mut self, values: Result<Vec<Option<Vec<u8>>>, Error>) {
        self.unblock(Reply::Many(values));
    }

    fn unblock(&mut self, reply: Reply) {
        if self.bc.is_null() {
            return;
        }
        let data = Box::into_raw(Box::new(reply)).cast::<c_void>();
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

/// Main thread, after `UnblockClient`: send the outcome to the client.
unsafe extern "C" fn on_reply(
    ctx: *mut raw::RedisModuleCtx,
    _argv: *mut *mut raw::RedisModuleString,
    _argc: c_int,
) -> c_int {
    let data = raw::RedisModule_GetBlockedClientPrivateData.unwrap()(ctx) as *const Reply;
    let ctx = Context::new(ctx);
    match data.as_ref() {
        Some(reply) => send_reply(&ctx, reply),
        None => reply_error(
            &ctx,
            &Error::Internal("blocked client without outcome".into()),
        ),
    }
    raw::REDISMODULE_OK as c_int
}

/// Main thread: the client waited `readthrough.timeout` ms; the load goes on and still fills
/// the cache.
unsafe extern "C" fn on_timeout(
    ctx: *mut raw::RedisModuleCtx,
    _argv: *mut *mut raw::RedisModuleString,
    _argc: c_int,
) -> c_int {
    stats::count(&stats::TIMEOUTS);
    let ctx = Context::new(ctx);
    reply_error(
        &ctx,
        &Error::Timeout((config::timeout_ms() + TIMEOUT_SAFETY_MS) as u64),
    );
    raw::REDISMODULE_OK as c_int
}

unsafe extern "C" fn free_outcome(_ctx: *mut raw::RedisModuleCtx, data: *mut c_void) {
    if !data.is_null() {
        drop(Box::from_raw(data.cast::<Reply>()));
    }
}

/// The Redis GIL held from a background thread, with one thread-safe context for the whole
/// hold. Released on drop, also when unwinding.
pub struct Gil {
    ctx: *mut raw::RedisModuleCtx,
}

impl Gil {
    pub fn lock() -> Gil {
        unsafe {
            let ctx = raw::RedisModule_GetThreadSafeContext.unwrap()(ptr::null_mut());
            raw::RedisModule_ThreadSafeContextLock.unwrap()(ctx);
            Gil { ctx }
        }
    }

    /// The GIL if it is free right now, without waiting.
    pub fn try_lock() -> Option<Gil> {
        unsafe {
            let ctx = raw::RedisModule_GetThreadSafeContext.unwrap()(ptr::null_mut());
            if raw::RedisModule_ThreadSafeContextTryLock.unwrap()(ctx)
                == raw::REDISMODULE_OK as c_int
            {
                Some(Gil { ctx })
            } else {
                raw::RedisModule_FreeThreadSafeContext.unwrap()(ctx);
                None
            }
        }
    }

    pub fn context(&self) -> Context {
        Context::new(self.ctx)
    }

    pub fn select_db(&self, db: i32) -> bool {
        unsafe { raw::RedisModule_SelectDb.unwrap()(self.ctx, db) == raw::REDISMODULE_OK as c_int }
    }
}

impl Drop for Gil {
    fn drop(&mut self) {
        unsafe {
            raw::RedisModule_ThreadSafeContextUnlock.unwrap()(self.ctx);
            raw::RedisModule_FreeThreadSafeContext.unwrap()(self.ctx);
        }
    }
}

/// Registers the `INFO readthrough` section (fields from `stats::fields`).
pub fn register_info(ctx: &Context) -> bool {
    unsafe {
        raw::RedisModule_RegisterInfoFunc.unwrap()(ctx.ctx, Some(on_info))
            == raw::REDISMODULE_OK as c_int
    }
}

unsafe extern "C" fn on_info(ctx: *mut raw::RedisModuleInfoCtx, _for_crash_report: c_int) {
    raw::RedisModule_InfoAddSection.unwrap()(ctx, c"".as_ptr());
    for (name, value) in stats::fields() {
        let name = CString::new(name).expect("static name");
        raw::RedisModule_InfoAddFieldULongLong.unwrap()(ctx, name.as_ptr(), value);
    }
    for (name, value) in crate::cdc::info_lines()
        .into_iter()
        .chain(crate::warm::info_lines())
    {
        if let (Ok(name), Ok(value)) = (CString::new(name), CString::new(value)) {
            raw::RedisModule_InfoAddFieldCString.unwrap()(ctx, name.as_ptr(), value.as_ptr());
        }
    }
}

/// Keeps `cdc` told whether this node is a master (change-stream watchers run only there).
pub fn subscribe_role(ctx: &Context) -> bool {
    crate::cdc::set_master(!is_replica(ctx));
    subscribe(
        ctx,
        raw::REDISMODULE_EVENT_REPLICATION_ROLE_CHANGED,
        on_role,
    )
}

type EventHandler =
    unsafe extern "C" fn(*mut raw::RedisModuleCtx, raw::RedisModuleEvent, u64, *mut c_void);

/// Subscribes `handler` to the server event `id`.
fn subscribe(ctx: &Context, id: u64, handler: EventHandler) -> bool {
    let event = raw::RedisModuleEvent { id, dataver: 1 };
    unsafe {
        raw::RedisModule_SubscribeToServerEvent.unwrap()(ctx.ctx, event, Some(handler))
            == raw::REDISMODULE_OK as c_int
    }
}

unsafe extern "C" fn on_role(
    _ctx: *mut raw::RedisModuleCtx,
    _eid: raw::RedisModuleEvent,
    subevent: u64,
    _data: *mut c_void,
) {
    // REDISMODULE_SUBEVENT_REPLROLECHANGED_NOW_MASTER is 0 (a macro bindgen does not see).
    crate::cdc::set_master(subevent == 0);
}

/// Applies the module's configs given at load time; false if one was refused.
pub fn load_configs(ctx: &Context) -> bool {
    unsafe { raw::RedisModule_LoadConfigs.unwrap()(ctx.ctx) == raw::REDISMODULE_OK as c_int }
}

/// Calls `on_flush` after every FLUSHALL and FLUSHDB.
pub fn subscribe_flush(ctx: &Context) -> bool {
    subscribe(ctx, raw::REDISMODULE_EVENT_FLUSHDB, on_flush)
}

unsafe extern "C" fn on_flush(
    _ctx: *mut raw::RedisModuleCtx,
    _eid: raw::RedisModuleEvent,
    subevent: u64,
    _data: *mut c_void,
) {
    if subevent == raw::REDISMODULE_SUBEVENT_FLUSHDB_END {
        crate::load::flushed();
    }
}

fn string_bytes<'a>(s: *const raw::RedisModuleString) -> &'a [u8] {
    let mut len = 0;
    unsafe {
        let p = raw::RedisModule_StringPtrLen.unwrap()(s, &mut len);
        std::slice::from_raw_parts(p.cast::<u8>(), len)
    }
}

/// Registers the command filter (not applied to the module's own calls) and the key-miss hook.
pub fn register_transparent(ctx: &Context) -> bool {
    unsafe {
        let filter = raw::RedisModule_RegisterCommandFilter.unwrap()(
            ctx.ctx,
            Some(on_command),
            raw::REDISMODULE_CMDFILTER_NOSELF as c_int,
        );
        let subscribed = raw::RedisModule_SubscribeToKeyspaceEvents.unwrap()(
            ctx.ctx,
            raw::REDISMODULE_NOTIFY_KEY_MISS,
            Some(on_key_miss),
        );
        !filter.is_null() && subscribed == raw::REDISMODULE_OK as c_int
    }
}

/// Runs before every command: rewrites GET/MGET of mapped keys (see `filter`) and hides the
/// credentials of a `CONFIG SET readthrough.mongo-uri` (see `redact`).
unsafe extern "C" fn on_command(fctx: *mut raw::RedisModuleCommandFilterCtx) {
    let argc = raw::RedisModule_CommandFilterArgsCount.unwrap()(fctx);
    if argc < 2 {
        return;
    }
    let arg = |i: c_int| string_bytes(raw::RedisModule_CommandFilterArgGet.unwrap()(fctx, i));
    let replace = |i: c_int, text: &[u8]| {
        let s = raw::RedisModule_CreateString.unwrap()(
            ptr::null_mut(),
            text.as_ptr().cast(),
            text.len(),
        );
        raw::RedisModule_CommandFilterArgReplace.unwrap()(fctx, i, s);
    };
    let name = arg(0);
    if name.eq_ignore_ascii_case(b"config") {
        let args: Vec<&[u8]> = (0..argc).map(arg).collect();
        let secret = std::panic::catch_unwind(|| crate::redact::secret_positions(&args));
        for i in secret.unwrap_or_default() {
            // A value that is not UTF-8 is refused by the setter as it is; leave it alone.
            if let Ok(value) = std::str::from_utf8(args[i]) {
                let placeholder = crate::redact::set_aside(value.into(), crate::policy::random());
                replace(i as c_int, placeholder.as_bytes());
            }
        }
        return;
    }
    if !(name.len() == 3 || name.len() == 4) || !config::transparent() {
        return; // cheap exit for every command that cannot be GET or MGET
    }
    let args: Vec<&[u8]> = (0..argc).map(arg).collect();
    let decision =
        std::panic::catch_unwind(|| crate::filter::decide(&args, |k| config::check(k).is_ok()));
    if let Ok(crate::filter::Rewrite::To(cmd)) = decision {
        replace(0, cmd.as_bytes());
    }
}

/// A read command missed a key: prefetch it if it is mapped. Never blocks, never writes.
unsafe extern "C" fn on_key_miss(
    ctx: *mut raw::RedisModuleCtx,
    _type: c_int,
    _event: *const std::os::raw::c_char,
    key: *mut raw::RedisModuleString,
) -> c_int {
    if OWN_LOOKUP.load(Ordering::Relaxed) || !config::transparent() {
        return raw::REDISMODULE_OK as c_int;
    }
    let key = string_bytes(key);
    let ctx = Context::new(ctx);
    if is_replica(&ctx) {
        // A replica cannot store the value: prefetching would only cost a query.
        return raw::REDISMODULE_OK as c_int;
    }
    let _ = std::panic::catch_unwind(|| crate::load::prefetch(selected_db(&ctx), key));
    raw::REDISMODULE_OK as c_int
}
