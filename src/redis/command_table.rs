//! Declaring commands to Redis: entry point, flags, key positions, key specs and ACL
//! categories; and running a handler so that a panic becomes an error reply.

use crate::core::error::Error;
use crate::redis::args::Args;
use crate::redis::main_thread::MainThread;
use crate::redis::panic_guard;
use crate::state::fault;
use redis_module::{raw, Context, RedisResult};
use std::ffi::CString;
use std::os::raw::c_int;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

/// What a command's keys are used for, as Redis's key specs and ACL key permissions see it.
#[derive(Clone, Copy)]
pub enum KeyUse {
    /// Returns the value (ACL: read permission): the module's own store is not the caller's write.
    Read,
    /// Rewrites the value from MongoDB (ACL: read and write permission).
    Reload,
    /// Deletes the key (ACL: write permission).
    Delete,
    /// The command takes no key names (a prefix is not a key).
    None,
}

impl KeyUse {
    /// The key-spec flags (`REDISMODULE_CMD_KEY_*`); `None` for a command without keys.
    pub fn flags(self) -> Option<u32> {
        match self {
            KeyUse::Read => Some(raw::REDISMODULE_CMD_KEY_RO | raw::REDISMODULE_CMD_KEY_ACCESS),
            KeyUse::Reload => Some(
                raw::REDISMODULE_CMD_KEY_RW
                    | raw::REDISMODULE_CMD_KEY_ACCESS
                    | raw::REDISMODULE_CMD_KEY_UPDATE,
            ),
            KeyUse::Delete => Some(raw::REDISMODULE_CMD_KEY_RM | raw::REDISMODULE_CMD_KEY_DELETE),
            KeyUse::None => None,
        }
    }
}

/// One module command as Redis is told about it.
pub struct Spec {
    pub name: &'static str,
    pub entry: Entry,
    pub flags: &'static str,
    /// First key, last key (-1: to the end), step; as in `COMMAND INFO`.
    pub keys: (c_int, c_int, c_int),
    pub key_use: KeyUse,
    /// ACL categories, applied where Redis supports them for modules (7.2 and later).
    pub acl: &'static str,
    pub summary: &'static str,
}

/// A command handler: replies itself (returning `NoReply`) or returns the reply.
pub type Handler = fn(&Context, &Args, MainThread) -> redis_module::RedisResult;

/// A raw command entry point.
pub type Entry = unsafe extern "C" fn(
    *mut raw::RedisModuleCtx,
    *mut *mut raw::RedisModuleString,
    c_int,
) -> c_int;

/// Registers a command: entry point, flags and legacy key range, then its key spec (so ACL key
/// permissions and `COMMAND INFO` say how the keys are used) and, on Redis 7.2 and later, its
/// ACL categories (Redis 7.0 has no API for them: there a user is granted the commands by name).
pub fn create_command(ctx: &Context, spec: &Spec) -> bool {
    let name = CString::new(spec.name).expect("command name");
    let flags = CString::new(spec.flags).expect("flags");
    let (first, last, step) = spec.keys;
    // SAFETY: called from the module's init with its context; the strings outlive the call.
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
    // SAFETY: as above; the command was just created.
    let command = unsafe { raw::RedisModule_GetCommand.unwrap()(ctx.ctx, name.as_ptr()) };
    if command.is_null() {
        return false;
    }
    set_command_info(ctx, command, spec)
        // SAFETY: reading an API pointer Redis filled in at load (absent before 7.2).
        && match unsafe { raw::RedisModule_SetCommandACLCategories } {
            Some(set) if !spec.acl.is_empty() => {
                let acl = CString::new(spec.acl).expect("categories");
                // SAFETY: `command` is the module's own; Redis copies the categories.
                unsafe { set(command, acl.as_ptr()) == raw::REDISMODULE_OK as c_int }
            }
            _ => true,
        }
}

fn set_command_info(ctx: &Context, command: *mut raw::RedisModuleCommand, spec: &Spec) -> bool {
    // SAFETY: reading an API pointer Redis filled in at load.
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
    // SAFETY: `info` and everything it points to live until the call returns; Redis copies.
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
    // SAFETY: Redis's own arguments for this call (the caller's promise).
    let args = unsafe { Args::new(argv, argc) };
    let ctx = Context::new(ctx);
    let result = guarded(&ctx, || {
        fault::maybe_panic("command");
        handler(&ctx, &args, MainThread::here())
    });
    ctx.reply(result);
    raw::REDISMODULE_OK as c_int
}

/// Runs a handler; a panic becomes an error reply (and a log line) instead of aborting Redis.
fn guarded(ctx: &Context, f: impl FnOnce() -> RedisResult) -> RedisResult {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let what = panic_guard::message(&*panic);
        ctx.log_warning(&format!("readthrough: caught a panic in a command: {what}"));
        Err(Error::Internal(what).into())
    })
}
