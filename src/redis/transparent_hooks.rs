//! The command filter and the key-miss hook: how plain `GET`/`MGET` read through and other
//! reads prefetch. Both run inside Redis's own command processing, so both catch panics and
//! never block or write.

use crate::core::format::Format;
use crate::core::rewrite;
use crate::redis::acl;
use crate::redis::args::{string_bytes, RStr};
use crate::redis::callbacks;
use crate::redis::keys::{self, is_replica, own_lookup, selected_db};
use crate::redis::main_thread::MainThread;
use crate::redis::panic_guard::catch;
use crate::state::{config_redaction, counters, fault, random, settings};
use redis_module::{raw, Context};
use std::os::raw::c_int;
use std::ptr;

/// Registers the command filter (not applied to the module's own calls) and the key-miss hook.
pub fn register(ctx: &Context) -> bool {
    // SAFETY: called from the module's init with its context.
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

/// A command as the filter sees it: its arguments, readable and replaceable.
struct Filtered(*mut raw::RedisModuleCommandFilterCtx);

impl Filtered {
    fn len(&self) -> c_int {
        // SAFETY: the filter context is live for the whole filter call.
        unsafe { raw::RedisModule_CommandFilterArgsCount.unwrap()(self.0) }
    }

    /// Argument `i` as the Redis string it is (no copy).
    fn raw(&self, i: c_int) -> RStr<'_> {
        // SAFETY: `i` < `len()` (every caller); the string lives until the filter replaces it,
        // and `replace` takes `&mut self`, so the borrow has ended by then.
        unsafe { RStr::new(raw::RedisModule_CommandFilterArgGet.unwrap()(self.0, i)) }
    }

    fn arg(&self, i: c_int) -> &[u8] {
        // SAFETY: `i` < `len()` (every caller); the argument lives until the filter replaces
        // it, and `replace` takes `&mut self`, so the borrow returned here has ended by then.
        unsafe { string_bytes(raw::RedisModule_CommandFilterArgGet.unwrap()(self.0, i)) }
    }

    /// Takes `&mut self`: no argument borrowed by `arg` may live past a replacement, which
    /// frees it.
    fn replace(&mut self, i: c_int, text: &[u8]) {
        // SAFETY: a new string owned by Redis once handed to `CommandFilterArgReplace`.
        unsafe {
            let s = raw::RedisModule_CreateString.unwrap()(
                ptr::null_mut(),
                text.as_ptr().cast(),
                text.len(),
            );
            raw::RedisModule_CommandFilterArgReplace.unwrap()(self.0, i, s);
        }
    }
}

/// Arguments of a read the filter keeps on the stack; longer ones go to the heap.
const SHORT_ARGS: usize = 8;

/// Runs before every command: rewrites reads of mapped keys (see `core/rewrite.rs`) and
/// hides the credentials of a `CONFIG SET readthrough.mongo-uri` (see
/// `state/config_redaction.rs`). A panic leaves the command as it was.
// Called by Redis only (private: registered as a callback), on its main thread.
extern "C" fn on_command(fctx: *mut raw::RedisModuleCommandFilterCtx) {
    // SAFETY: the filter context of this call.
    let client = unsafe { acl::filter_client(fctx) };
    catch("the command filter", || filter(&mut Filtered(fctx), client));
}

fn filter(cmd: &mut Filtered, client: Option<u64>) {
    acl::saw_client(client);
    let argc = cmd.len();
    if argc < 1 {
        return;
    }
    let name = cmd.arg(0);
    if by_name(name) {
        return named(cmd, argc, client);
    }
    // Only a read of mapped keys is left to rewrite. The cheap exits for most commands Redis
    // runs: the name (every command but a native read, `RT.GET` included, leaves here without
    // its arguments read), then the first key (argument 1 in every read rewritten), since a read
    // is rewritten only when all its keys are mapped.
    let Some(native) = rewrite::native_named(name) else {
        return;
    };
    if argc < 2 {
        return;
    }
    let first_key = cmd.arg(1);
    if !settings::may_be_mapped(first_key) {
        return;
    }
    if !settings::transparent() {
        return;
    }
    // The arguments on the stack for the usual short read (the filter runs for every command);
    // the two already read are not asked for again.
    let mut short: [&[u8]; SHORT_ARGS] = [&[]; SHORT_ARGS];
    let long: Vec<&[u8]>;
    let args: &[&[u8]] = if argc as usize <= SHORT_ARGS {
        short[0] = name;
        short[1] = first_key;
        for (i, slot) in short.iter_mut().enumerate().take(argc as usize).skip(2) {
            *slot = cmd.arg(i as c_int);
        }
        &short[..argc as usize]
    } else {
        long = [name, first_key]
            .into_iter()
            .chain((2..argc).map(|i| cmd.arg(i)))
            .collect();
        &long
    };
    if let rewrite::Rewrite::To(to) = rewrite::decide_for(native, args, settings::format_of) {
        fault::maybe_panic("filter");
        if cached_for(cmd, native, args.len(), client) {
            // Every key is in Redis: the native command answers exactly what the rewritten one
            // would, for less (README, Transparent mode).
            for _ in native.keys(args.len()) {
                counters::count_main(&counters::HITS);
            }
            return;
        }
        // Never change what the user may do: stay native where the rewrite would.
        if acl::may_rewrite(native, args, client) {
            cmd.replace(0, to.as_bytes());
        } else {
            counters::count_main(&counters::ACL_KEPT_NATIVE);
        }
    }
}

/// The commands the filter acts on by name (`by_name`): the table of uniform reads marked stale
/// after `ACL`, `MODULE` or `EXEC`, a client's DB forgotten after `SELECT`, `RESET` or `EXEC`, and
/// the credentials of a `CONFIG SET readthrough.mongo-uri` set aside.
fn named(cmd: &mut Filtered, argc: c_int, client: Option<u64>) {
    let name = cmd.arg(0);
    acl::saw_command(name, || (argc >= 2).then(|| cmd.arg(1)));
    if argc >= 2 && name.eq_ignore_ascii_case(b"select") {
        if let Some(mt) = MainThread::try_here() {
            keys::saw_select(mt, cmd.arg(1));
        }
    }
    if let Some(id) = client {
        if changes_db(name) {
            if let Some(mt) = MainThread::try_here() {
                keys::forget_client_db(mt, id);
            }
        }
    }
    if argc < 2 || !name.eq_ignore_ascii_case(b"config") {
        return;
    }
    let args: Vec<&[u8]> = (0..argc).map(|i| cmd.arg(i)).collect();
    let mut swaps = Vec::new();
    for i in config_redaction::secret_positions(&args) {
        // A value that is not UTF-8 is refused by the setter as it is; leave it alone.
        if let Ok(value) = std::str::from_utf8(args[i]) {
            let placeholder = config_redaction::set_aside(value.into(), random::random());
            swaps.push((i as c_int, placeholder));
        }
    }
    for (i, placeholder) in swaps {
        cmd.replace(i, placeholder.as_bytes());
    }
}

/// Whether every key of this mapped read is cached (in Redis, of its format's type), where that
/// can be known: in the client's DB (7.2+, Valkey: the server names the client; Redis 7.0: DB 0
/// while no client has selected another), on the main thread, and with no grace window (a hit
/// in grace starts a refresh, which only the rewritten read does).
fn cached_for(cmd: &Filtered, native: &rewrite::Native, argc: usize, client: Option<u64>) -> bool {
    // Redis 7.0 counts the check in `keyspace_hits` too (it has no `NOSTATS`). A string read
    // rewritten there answers from the key it opens, one count; a JSON or hash read opens its
    // key again either way, so leaving it native costs no extra count.
    if client.is_none() && native.format == Format::String {
        return false;
    }
    if settings::any_grace() {
        return false;
    }
    let Some(mt) = MainThread::try_here() else {
        return false;
    };
    let keys = native.keys(argc).map(|i| cmd.raw(i as c_int));
    keys::all_cached_for_client(mt, client, keys, native.format) == Some(true)
}

/// Whether the filter acts on a command by its name alone, whatever its arguments (`named`).
/// Runs for every command: the length decides for most.
fn by_name(name: &[u8]) -> bool {
    const NAMES: [&[u8]; 6] = [b"acl", b"exec", b"reset", b"module", b"select", b"config"];
    NAMES
        .iter()
        .any(|n| n.len() == name.len() && name.eq_ignore_ascii_case(n))
}

/// Commands after which a client's selected DB may differ.
fn changes_db(name: &[u8]) -> bool {
    [&b"select"[..], b"reset", b"exec"]
        .iter()
        .any(|c| name.eq_ignore_ascii_case(c))
}

/// A read command missed a key: prefetch it if it is mapped. Never blocks, never writes.
// Called by Redis only (private: registered as a callback), on its main thread.
extern "C" fn on_key_miss(
    ctx: *mut raw::RedisModuleCtx,
    _type: c_int,
    _event: *const std::os::raw::c_char,
    key: *mut raw::RedisModuleString,
) -> c_int {
    if own_lookup() || !settings::transparent() {
        return raw::REDISMODULE_OK as c_int;
    }
    // SAFETY: Redis passes the missed key, live for the duration of this call.
    let key = unsafe { string_bytes(key) };
    let ctx = Context::new(ctx);
    catch("the key-miss hook", || {
        // Only a mapped key's miss is the module's business (also in tests: the module's own
        // unmapped lookups must not take the injected fault).
        if fault::any_armed() && settings::format_of(key).is_some() {
            fault::maybe_panic("key-miss");
        }
        // A miss on a background thread (under the lock: the store step, a change event's
        // write) is the module's own, like `own_lookup`'s: nothing to prefetch.
        let Some(mt) = MainThread::try_here() else {
            return;
        };
        // A replica cannot store the value: prefetching there would only cost a query. A user
        // who may not write the key does not make the module write it.
        if !is_replica(&ctx) && acl::last_client_may_write(key) {
            (callbacks::get().key_missed)(mt, selected_db(&ctx), key);
        }
    });
    raw::REDISMODULE_OK as c_int
}
