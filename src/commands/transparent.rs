//! The internal commands that `JSON.GET`, `JSON.MGET`, `HGET`, `HMGET` and `HGETALL` of mapped
//! keys are rewritten to (see `core/rewrite.rs`): load the missing keys, then run the native
//! command as the client and forward its reply, so the client sees exactly what the native
//! command gives once the keys exist (paths, fields and options applied, RESP2 or RESP3).

use crate::commands::read::{load_batch, load_one, not_cached, NotCached};
use crate::core::format::Slot;
use crate::core::rewrite::{native_of, Native};
use crate::engine::load::batch::BatchMiss;
use crate::engine::store::Kind;
use crate::redis::answer::forward_raw;
use crate::redis::args::Args;
use crate::redis::blocking::Answer;
use crate::redis::keys::{is_replica, probe_raw, selected_db, Held};
use crate::redis::main_thread::MainThread;
use crate::state::{counters, settings};
use redis_module::{Context, RedisError, RedisResult, RedisValue};

pub fn rt_tnative(ctx: &Context, args: &Args, mt: MainThread) -> RedisResult {
    let Some(native) = native_of(args.bytes(0)) else {
        return Err(RedisError::Str("ERR not a transparent read"));
    };
    // The native command with the client's own arguments: no copy on the hit path.
    let run_native = || {
        forward_raw(ctx, native.call_name, args.raw_from(1), true);
        Ok(RedisValue::NoReply)
    };
    // A replica cannot store what it would load: it answers as without the module.
    if args.len() < native.min_args || is_replica(ctx) {
        return run_native();
    }
    let db = selected_db(ctx);
    let mut misses = misses(ctx, args, native, db);
    if misses.is_empty() {
        return run_native();
    }
    // Once the keys are loaded: the native command, run as the client.
    let waited = misses.iter().map(|m| m.key.clone()).collect();
    let answer = move || {
        let mut cmd = vec![native.name.as_bytes().to_vec()];
        cmd.extend((1..args.len()).map(|i| args.bytes(i).to_vec()));
        Answer::Native(cmd, waited)
    };
    if misses.len() == 1 {
        // One key: join or lead its single-flight load.
        let m = misses.pop().expect("one miss");
        return load_one(
            ctx,
            mt,
            true,
            (db, &m.key, m.target, Kind::Fill),
            answer,
            run_native,
        );
    }
    let slots = vec![Slot::Nil; misses.len()];
    load_batch(ctx, true, db, (misses, slots), answer, |_| run_native())
}

/// The keys of the command that are mapped with its format, missing, and not known to be
/// absent: the ones to load (each once). Counts hits, negative hits and misses.
fn misses(ctx: &Context, args: &Args, native: &Native, db: i32) -> Vec<BatchMiss> {
    let mut misses: Vec<BatchMiss> = Vec::new();
    for i in native.keys(args.len()) {
        let key = args.bytes(i);
        // Mapped with this format when rewritten; the mappings may have changed since.
        if settings::format_of(key) != Some(native.format) {
            continue;
        }
        if probe_raw(ctx, args.raw(i), false).0 != Held::Nothing {
            counters::count_main(&counters::HITS);
            continue;
        }
        // Known absent, or not the user's to load: the native answer, as without the module.
        if not_cached(ctx, db, key) != NotCached::Miss {
            continue;
        }
        if let Ok(target) = settings::resolve(key) {
            if !misses.iter().any(|m| m.key == key) {
                misses.push(BatchMiss {
                    index: misses.len(),
                    key: key.to_vec(),
                    target,
                });
            }
        }
    }
    misses
}
