//! The module's commands: one table that declares each to Redis (flags, keys, key specs, ACL
//! categories), and one file per command family for argument parsing and replies. Every entry
//! point runs its handler through `dispatch`, which turns a panic into an error reply.

mod get;
mod invalidate;
mod mget;
mod read;
mod refresh;
mod reload_secrets;
mod transparent;
mod warm;

use crate::core::rewrite;
use crate::redis::command_table::{create_command, dispatch, KeyUse, Spec};
use redis_module::raw;
use redis_module::Context;
use std::os::raw::c_int;

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
        name: rewrite::TGET,
        entry: rt_tget_entry,
        flags: "readonly",
        keys: (1, 1, 1),
        key_use: KeyUse::Read,
        acl: "read string",
        summary: "Internal: what a plain GET of a mapped key is rewritten to.",
    },
    Spec {
        name: rewrite::TMGET,
        entry: rt_tmget_entry,
        flags: "readonly",
        keys: (1, -1, 1),
        key_use: KeyUse::Read,
        acl: "read string",
        summary: "Internal: what a plain MGET of mapped keys is rewritten to.",
    },
    Spec {
        name: rewrite::TJGET,
        entry: rt_tnative_entry,
        flags: "readonly",
        keys: (1, 1, 1),
        key_use: KeyUse::Read,
        acl: "read",
        summary: "Internal: what JSON.GET of a mapped key is rewritten to.",
    },
    Spec {
        name: rewrite::TJMGET,
        entry: rt_tnative_entry,
        flags: "readonly",
        keys: (1, -2, 1),
        key_use: KeyUse::Read,
        acl: "read",
        summary: "Internal: what JSON.MGET of mapped keys is rewritten to.",
    },
    Spec {
        name: rewrite::THGET,
        entry: rt_tnative_entry,
        flags: "readonly",
        keys: (1, 1, 1),
        key_use: KeyUse::Read,
        acl: "read hash",
        summary: "Internal: what HGET of a mapped key is rewritten to.",
    },
    Spec {
        name: rewrite::THMGET,
        entry: rt_tnative_entry,
        flags: "readonly",
        keys: (1, 1, 1),
        key_use: KeyUse::Read,
        acl: "read hash",
        summary: "Internal: what HMGET of a mapped key is rewritten to.",
    },
    Spec {
        name: rewrite::THGETALL,
        entry: rt_tnative_entry,
        flags: "readonly",
        keys: (1, 1, 1),
        key_use: KeyUse::Read,
        acl: "read hash",
        summary: "Internal: what HGETALL of a mapped key is rewritten to.",
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
    Spec {
        name: "rt.reload-secrets",
        entry: rt_reload_secrets_entry,
        flags: "admin deny-script",
        keys: (0, 0, 0),
        key_use: KeyUse::None,
        acl: "admin dangerous",
        summary: "Rereads readthrough.mongo-uri-file (after a password rotation).",
    },
];

/// Registers every command with its key specs and, where supported, ACL categories.
pub fn register(ctx: &Context) -> bool {
    COMMANDS.iter().all(|spec| create_command(ctx, spec))
}

macro_rules! entry {
    ($name:ident, $handler:path) => {
        // Called by Redis only (private: registered as a callback), on its main thread.
        extern "C" fn $name(
            ctx: *mut raw::RedisModuleCtx,
            argv: *mut *mut raw::RedisModuleString,
            argc: c_int,
        ) -> c_int {
            // SAFETY: Redis calls the entry point with its own arguments.
            unsafe { dispatch(ctx, argv, argc, $handler) }
        }
    };
}

entry!(rt_get_entry, get::rt_get);
entry!(rt_mget_entry, mget::rt_mget);
entry!(rt_tget_entry, get::rt_tget);
entry!(rt_tmget_entry, mget::rt_tmget);
entry!(rt_refresh_entry, refresh::rt_refresh);
entry!(rt_tnative_entry, transparent::rt_tnative);
entry!(rt_invalidate_entry, invalidate::rt_invalidate);
entry!(rt_warm_entry, warm::rt_warm);
entry!(rt_reload_secrets_entry, reload_secrets::rt_reload_secrets);
