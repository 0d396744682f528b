//! Redis ACL checks the module makes itself, so that loading it never changes what a user may
//! do:
//! - a transparent read is rewritten to its internal command only where that changes nothing
//!   for the user: where every user's right to the internal command equals its right to the
//!   native read (checked once per ACL change, `Uniform`), or, on servers that tell the filter
//!   the client (7.2+, Valkey), where this client's user may run both;
//! - a load stores a key on a client's behalf only if the client's user may write that key;
//! - `RT.WARM` writes a whole prefix only if one of the user's selectors may write all of it.
//!
//! Refusals are added to `ACL LOG` as Redis's own are.

use crate::core::acl_rules;
use crate::core::rewrite::{Native, NATIVES};
use crate::redis::args::string_bytes;
use crate::redis::main_thread::MainThread;
use crate::redis::server_commands;
use crate::state::counters;
use redis_module::{raw, Context, RedisValue};
use std::os::raw::c_int;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use std::sync::Mutex;

/// A context of the module's own, for the calls the command filter makes (it has none).
static OWN_CTX: AtomicPtr<raw::RedisModuleCtx> = AtomicPtr::new(ptr::null_mut());

/// Set when a command that may change users or their rules was seen: the table of uniform
/// reads is recomputed before the next rewrite.
static STALE: AtomicBool = AtomicBool::new(true);

/// Per native read (as in `NATIVES`): true when every user may run it exactly when it may run
/// its internal command.
static UNIFORM: [AtomicBool; 7] = [const { AtomicBool::new(false) }; 7];

/// The users whose rights differ, as last logged (logged again only when it changes).
static LOGGED: Mutex<String> = Mutex::new(String::new());

/// The client of the command being run, as the filter last saw it (7.2+; 0: unknown).
static LAST_CLIENT: AtomicU64 = AtomicU64::new(0);

/// Makes the module's own context. Called from the module's init.
pub fn init(ctx: &Context) -> bool {
    const _: () = assert!(NATIVES.len() == 7, "UNIFORM has one entry per native read");
    // SAFETY: called from init with the module's context; the context made lives until exit.
    let own = unsafe { raw::RedisModule_GetDetachedThreadSafeContext.unwrap()(ctx.ctx) };
    OWN_CTX.store(own, Ordering::Relaxed);
    !own.is_null()
}

/// A Redis user, borrowed from Redis's table (or a stand-in of the module's own) for one check.
struct User(*mut raw::RedisModuleUser);

impl Drop for User {
    fn drop(&mut self) {
        // SAFETY: made by GetModuleUserFromUserName or CreateModuleUser, freed once here.
        unsafe { raw::RedisModule_FreeModuleUser.unwrap()(self.0) };
    }
}

/// A Redis string the module owns until dropped.
struct Owned(*mut raw::RedisModuleString);

impl Owned {
    fn new(bytes: &[u8]) -> Owned {
        // SAFETY: a new string without a context (not auto-memory), freed in `drop`.
        Owned(unsafe {
            raw::RedisModule_CreateString.unwrap()(
                ptr::null_mut(),
                bytes.as_ptr().cast(),
                bytes.len(),
            )
        })
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: made without a context and owned by this value.
            unsafe { raw::RedisModule_FreeString.unwrap()(ptr::null_mut(), self.0) };
        }
    }
}

impl User {
    /// The user a name stands for (taking over the name string).
    fn named(name: &Owned) -> Option<User> {
        if name.0.is_null() {
            return None;
        }
        // SAFETY: `name` is a valid string; the user returned is freed by `Drop`.
        let user = unsafe { raw::RedisModule_GetModuleUserFromUserName.unwrap()(name.0) };
        (!user.is_null()).then_some(User(user))
    }

    /// The user of the client running the command (`None`: no user, e.g. an internal client).
    fn of_context(ctx: &Context) -> Option<User> {
        User::named(&current_name(ctx))
    }

    /// The user of the client with this id, where the server can say (7.2+ filter ids).
    fn of_client(id: u64) -> Option<User> {
        let own = OWN_CTX.load(Ordering::Relaxed);
        if id == 0 || own.is_null() {
            return None;
        }
        // SAFETY: main thread; the module's own context is live; the name is ours to free.
        let name = unsafe { raw::RedisModule_GetClientUserNameById.unwrap()(own, id) };
        User::named(&Owned(name))
    }

    /// A stand-in user with these rules (the module's own, never in `ACL LIST`).
    fn stand_in(rules: &str) -> Option<User> {
        let own = OWN_CTX.load(Ordering::Relaxed);
        let rules = std::ffi::CString::new(rules).ok()?;
        // SAFETY: main thread; the name and rules outlive the calls; the user is freed by `Drop`
        // (a module user: freeing it deletes it).
        unsafe {
            let u = User(raw::RedisModule_CreateModuleUser.unwrap()(
                c"readthrough-acl-check".as_ptr(),
            ));
            let mut err: *mut raw::RedisModuleString = ptr::null_mut();
            let ok = raw::RedisModule_SetModuleUserACLString.unwrap()(
                own,
                u.0,
                rules.as_ptr(),
                &mut err,
            ) == raw::REDISMODULE_OK as c_int;
            drop(Owned(err));
            ok.then_some(u)
        }
    }

    /// Whether the user may run this command line (command, subcommand and keys).
    fn may_run(&self, argv: &[&[u8]]) -> bool {
        let strings: Vec<Owned> = argv.iter().map(|a| Owned::new(a)).collect();
        let mut raw_argv: Vec<*mut raw::RedisModuleString> = strings.iter().map(|s| s.0).collect();
        // SAFETY: the strings live until the end of this function.
        unsafe {
            raw::RedisModule_ACLCheckCommandPermissions.unwrap()(
                self.0,
                raw_argv.as_mut_ptr(),
                raw_argv.len() as c_int,
            ) == raw::REDISMODULE_OK as c_int
        }
    }

    /// Whether the user may write (create or overwrite) the key.
    fn may_write(&self, key: &[u8]) -> bool {
        let key = Owned::new(key);
        // SAFETY: the key string lives until the end of this function.
        unsafe {
            raw::RedisModule_ACLCheckKeyPermissions.unwrap()(
                self.0,
                key.0,
                (raw::REDISMODULE_CMD_KEY_INSERT | raw::REDISMODULE_CMD_KEY_UPDATE) as c_int,
            ) == raw::REDISMODULE_OK as c_int
        }
    }

    /// Adds a refusal about `object` (a key) to `ACL LOG`, as Redis does for its own.
    fn log_refusal(&self, ctx: &Context, object: &[u8]) {
        // SAFETY: reading an API pointer Redis filled in at load.
        if let Some(add) = unsafe { raw::RedisModule_ACLAddLogEntry } {
            let object = Owned::new(object);
            // SAFETY: `ctx` is the calling client's; Redis copies what it keeps.
            unsafe {
                add(
                    ctx.ctx,
                    self.0,
                    object.0,
                    raw::RedisModuleACLLogEntryReason_REDISMODULE_ACL_LOG_KEY,
                )
            };
        }
    }
}

/// Seen by the command filter for every command: the client that runs it (for the key-miss
/// hook, which is not told the client).
pub fn saw_client(client_id: Option<u64>) {
    if let Some(id) = client_id {
        LAST_CLIENT.store(id, Ordering::Relaxed);
    }
}

/// Seen by the command filter for the commands it handles by name (`sub`: the first
/// argument): marks the table of uniform reads stale after a command that may change users or
/// their rules or the commands there are (`ACL`, `MODULE`, `EXEC`).
pub fn saw_command<'a>(name: &[u8], sub: impl FnOnce() -> Option<&'a [u8]>) {
    let is = |a: &[u8], b: &str| a.eq_ignore_ascii_case(b.as_bytes());
    if is(name, "exec") {
        // An ACL command queued in MULTI runs only now. The filter cannot tell which client
        // queued it, so for a while after any ACL change every EXEC marks the table stale.
        let since = uptime_s().saturating_sub(LAST_ACL_CHANGE_S.load(Ordering::Relaxed));
        if since < EXEC_AFTER_ACL_S {
            STALE.store(true, Ordering::Relaxed);
        }
        return;
    }
    let (acl, module) = (is(name, "acl"), is(name, "module"));
    if !acl && !module {
        return;
    }
    let sub = sub();
    let sub_is = |names: &[&str]| sub.is_some_and(|s| names.iter().any(|n| is(s, n)));
    if acl && sub_is(&["setuser", "deluser", "load"]) {
        STALE.store(true, Ordering::Relaxed);
        LAST_ACL_CHANGE_S.store(uptime_s(), Ordering::Relaxed);
    } else if module && sub_is(&["load", "loadex", "unload"]) {
        STALE.store(true, Ordering::Relaxed);
    }
}

/// How long after an ACL change an EXEC still marks the table stale.
const EXEC_AFTER_ACL_S: u64 = 300;

/// When the last ACL change was seen, in seconds of `uptime_s` (far in the past at start).
static LAST_ACL_CHANGE_S: AtomicU64 = AtomicU64::new(0);

/// Seconds since the module loaded, plus `EXEC_AFTER_ACL_S` (so that 0 is long ago).
fn uptime_s() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_secs()
        + EXEC_AFTER_ACL_S
}

/// Whether the filter may rewrite this native read (`args`, name first) to its internal command
/// for the client `client_id` (`None`: the server does not say).
pub fn may_rewrite(native: &Native, args: &[&[u8]], client_id: Option<u64>) -> bool {
    // A plain load and store: only the main thread recomputes (a background thread's own
    // command under the lock leaves it to the next one there).
    if STALE.load(Ordering::Relaxed) {
        if let Some(mt) = MainThread::try_here() {
            STALE.store(false, Ordering::Relaxed);
            recompute(mt);
        }
    }
    let i = NATIVES
        .iter()
        .position(|n| n.internal == native.internal)
        .expect("a native read");
    if UNIFORM[i].load(Ordering::Relaxed) {
        return true;
    }
    // Rights differ for some user: rewrite only when this client's user may run both.
    let Some(user) = client_id.and_then(User::of_client) else {
        return false;
    };
    let mut internal = args.to_vec();
    internal[0] = native.internal.as_bytes();
    user.may_run(args) && user.may_run(&internal)
}

/// Recomputes which native reads every user may run exactly when it may run their internal
/// commands, from `ACL LIST`; logs the users for which it is not so.
fn recompute(mt: MainThread) {
    let own = OWN_CTX.load(Ordering::Relaxed);
    if own.is_null() {
        return;
    }
    let Some(lines) = acl_list(&Context::new(own)) else {
        Context::new(own).log_warning("readthrough: ACL LIST failed");
        // Not known: every read takes the per-client path (or stays native) until next time.
        UNIFORM
            .iter()
            .for_each(|u| u.store(false, Ordering::Relaxed));
        STALE.store(true, Ordering::Relaxed);
        return;
    };
    let mut uniform = [true; 7];
    let mut differing: Vec<String> = Vec::new();
    // A read whose command this server lacks (JSON.GET without a JSON module) is never sent.
    let present: Vec<bool> = NATIVES
        .iter()
        .map(|n| server_commands::exists(mt, n.name))
        .collect();
    for line in lines {
        let stand_in = acl_rules::parse_line(&line).and_then(|(name, selectors)| {
            Some((name, User::stand_in(&acl_rules::commands_only(&selectors))?))
        });
        let Some((name, user)) = stand_in else {
            // A rule this module cannot read: assume the worst for this user.
            uniform = [false; 7];
            differing.push(line.split(' ').nth(1).unwrap_or("?").to_owned());
            continue;
        };
        let mut differs = Vec::new();
        for (i, n) in NATIVES.iter().enumerate().filter(|(i, _)| present[*i]) {
            let argv = probe_args(n);
            let mut internal = argv.clone();
            internal[0] = n.internal.as_bytes();
            if user.may_run(&argv) != user.may_run(&internal) {
                uniform[i] = false;
                differs.push(n.name);
            }
        }
        if !differs.is_empty() {
            differing.push(format!("{name} ({})", differs.join(", ")));
        }
    }
    for (u, v) in UNIFORM.iter().zip(uniform) {
        u.store(v, Ordering::Relaxed);
    }
    let text = differing.join(", ");
    let mut logged = LOGGED.lock().unwrap_or_else(|p| p.into_inner());
    if *logged != text {
        let ctx = Context::new(own);
        if text.is_empty() {
            ctx.log_notice("readthrough: every user may read through exactly where it may read");
        } else {
            let how = if per_client_checks() {
                "their plain reads read through only where their user may run the internal command"
            } else {
                "on this server their plain reads stay native (no read-through) for every user"
            };
            ctx.log_notice(&format!(
                "readthrough: users whose right to a read differs from their right to its \
                 internal read-through command: {text}; {how} (grant rt.tget, rt.tmget, ... as \
                 the README's Permissions section says)"
            ));
        }
        *logged = text;
    }
}

/// The text of one line of an `ACL LIST` reply.
fn line_text(v: &RedisValue) -> Option<String> {
    match v {
        RedisValue::SimpleString(s) | RedisValue::BulkString(s) => Some(s.clone()),
        RedisValue::StringBuffer(b) => Some(String::from_utf8_lossy(b).into_owned()),
        RedisValue::BulkRedisString(s) => Some(s.to_string_lossy()),
        _ => None,
    }
}

/// A command line for a probe of a native read or its internal command (any key: the stand-in
/// user may read every key).
fn probe_args(n: &Native) -> Vec<&'static [u8]> {
    let mut argv: Vec<&'static [u8]> = vec![n.name.as_bytes(), b"readthrough-probe"];
    while argv.len() < n.min_args {
        argv.push(b"$");
    }
    argv
}

/// Whether the filter is told the client (Redis 7.2+, Valkey): then a user's reads are checked
/// one by one.
pub fn per_client_checks() -> bool {
    // SAFETY: reading an API pointer Redis filled in at load (absent before 7.2).
    unsafe { raw::RedisModule_CommandFilterGetClientId }.is_some()
}

/// The client id a command filter call is for, where the server says.
///
/// # Safety
/// `fctx` must be the filter context of the current filter call.
pub unsafe fn filter_client(fctx: *mut raw::RedisModuleCommandFilterCtx) -> Option<u64> {
    // SAFETY: reading an API pointer Redis filled in at load; `fctx` is live (caller's promise).
    unsafe { raw::RedisModule_CommandFilterGetClientId }.map(|f| unsafe { f(fctx) })
}

/// Whether the calling client's user may have the module write `key` (a load stores it); a
/// refusal goes to `ACL LOG`.
pub fn may_write(ctx: &Context, key: &[u8]) -> bool {
    let Some(user) = User::of_context(ctx) else {
        return true;
    };
    let ok = user.may_write(key);
    if !ok {
        counters::count(&counters::ACL_NO_WRITE);
        user.log_refusal(ctx, key);
    }
    ok
}

/// Whether the client that ran the current command may have the module write `key`, for the
/// key-miss hook, which has no client: where the filter saw it (7.2+). Unknown: yes.
pub fn last_client_may_write(key: &[u8]) -> bool {
    let ok = User::of_client(LAST_CLIENT.load(Ordering::Relaxed)).is_none_or(|u| u.may_write(key));
    if !ok {
        counters::count(&counters::ACL_NO_WRITE);
    }
    ok
}

/// Whether the calling client's user may write every key starting with `prefix`: one of its
/// selectors must allow `RT.WARM` and write access to every such key (see
/// `core/acl_rules.rs`). A refusal goes to `ACL LOG`.
pub fn may_write_prefix(ctx: &Context, prefix: &str) -> bool {
    let name = current_name(ctx);
    let Some(user) = User::named(&name) else {
        return true;
    };
    // SAFETY: a valid string while `name` lives.
    let name = String::from_utf8_lossy(unsafe { string_bytes(name.0) }).into_owned();
    let ok = acl_list(ctx).is_some_and(|lines| {
        lines.iter().any(|text| match acl_rules::parse_line(text) {
            Some((n, selectors)) if n == name => selectors.iter().any(|s| {
                acl_rules::covers_for_write(s, prefix)
                    && User::stand_in(&acl_rules::commands_only(std::slice::from_ref(s)))
                        .is_some_and(|u| u.may_run(&[b"rt.warm", prefix.as_bytes()]))
            }),
            _ => false,
        })
    });
    if !ok {
        user.log_refusal(ctx, format!("{prefix}*").as_bytes());
    }
    ok
}

/// The name of the calling client's user (a null string when it has none).
fn current_name(ctx: &Context) -> Owned {
    // SAFETY: `ctx` is live; the name returned is ours (freed by `Owned`).
    Owned(unsafe { raw::RedisModule_GetCurrentUserName.unwrap()(ctx.ctx) })
}

/// The lines of `ACL LIST` (`None` if the call failed).
fn acl_list(ctx: &Context) -> Option<Vec<String>> {
    match ctx.call("ACL", &["LIST"]) {
        Ok(RedisValue::Array(lines)) => Some(lines.iter().filter_map(line_text).collect()),
        _ => None,
    }
}
