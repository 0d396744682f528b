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
    pub entry: ffi::Entry,
    pub flags: &'static str,
    /// First key, last key (-1: to the end), step; as in `COMMAND INFO`.
    pub keys: (c_int, c_int, c_int),
    pub key_use: KeyUse,
    /// ACL categories, applied where Redis supports them for modules (7.2 and later).
    pub acl: &'static str,
    pub summary: &'static str,
}

pub const COMMANDS: &[Spec] = &[
    Spec {
        name: "rt.get",
        entry: rt_get_entry,
        flags: "readonly",
        keys: (1, 1, 1),
        key_use: KeyUse::Read,
        acl: "read string",
        summary: "Returns the key's value, loading it from MongoDB on a miss.",
    },
    Spec {
        name: "rt.mget",
        entry: rt_mget_entry,
        flags: "readonly",
        keys: (1, -1, 1),
        key_use: KeyUse::Read,
        acl: "read string",
        summary: "Returns the values of the keys, loading the misses with one query per mapping.",
    },
    Spec {
        name: crate::filter::TGET,
        entry: rt_tget_entry,
        flags: "readonly",
        keys: (1, 1, 1),
        key_use: KeyUse::Read,
        acl: "read string",
        summary: "Internal: what a plain GET of a mapped key is rewritten to.",
    },
    Spec {
        name: crate::filter::TMGET,
        entry: rt_tmget_entry,
        flags: "readonly",
        keys: (1, -1, 1),
        key_use: KeyUse::Read,
        acl: "read string",
        summary: "Internal: what a plain MGET of mapped keys is rewritten to.",
    },
    Spec {
        name: "rt.refresh",
        entry: rt_refresh_entry,
        flags: "readonly",
        keys: (1, 1, 1),
        key_use: KeyUse::Reload,
        acl: "write string",
        summary: "Reloads the key from MongoDB now and returns the new value.",
    },
    Spec {
        name: "rt.invalidate",
        entry: rt_invalidate_entry,
        flags: "write",
        keys: (1, -1, 1),
        key_use: KeyUse::Delete,
        acl: "write keyspace",
        summary: "Removes the cached values and negative entries of the keys.",
    },
    Spec {
        name: "rt.warm",
        entry: rt_warm_entry,
        flags: "write deny-oom",
        keys: (0, 0, 0),
        key_use: KeyUse::None,
        acl: "write slow",
        summary: "Starts a background bulk load of a mapping's documents.",
    },
];

/// Registers every command with its key specs and, where supported, ACL categories.
pub fn register(ctx: &Context) -> bool {
    COMMANDS.iter().all(|spec| ffi::create_command(ctx, spec))
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
