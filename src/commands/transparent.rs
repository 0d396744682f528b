//! The internal commands that `JSON.GET`, `JSON.MGET`, `HGET`, `HMGET` and `HGETALL` of mapped
//! keys are rewritten to (see `core/rewrite.rs`): load the missing keys, then run the native
//! command as the client and forward its reply, so the client sees exactly what the native
//! command gives once the keys exist (paths, fields and options applied, RESP2 or RESP3).

use crate::core::format::Slot;
use crate::core::rewrite::native_of;
use crate::core::{counters, settings};
use crate::engine::cache_state;
use crate::engine::load;
use crate::engine::mget::{start_batch, BatchMiss};
use crate::redis::answer::forward;
use crate::redis::args::Args;
use crate::redis::blocking::{Answer, Waiter, TIMEOUT_SAFETY_MS};
use crate::redis::keys::{cannot_block, is_replica, probe, selected_db, Held};
use redis_module::{Context, RedisError, RedisResult, RedisValue};

pub fn rt_tnative(ctx: &Context, args: &Args) -> RedisResult {
    let name = String::from_utf8_lossy(args.bytes(0)).to_ascii_lowercase();
    let Some(native) = native_of(&name) else {
        return Err(RedisError::Str("ERR not a transparent read"));
    };
    let mut cmd: Vec<&[u8]> = Vec::with_capacity(args.len());
    cmd.push(native.name.as_bytes());
    cmd.extend((1..args.len()).map(|i| args.bytes(i)));
    // A replica cannot store what it would load: it answers as without the module.
    if is_replica(ctx) || cmd.len() < native.min_args {
        forward(ctx, &cmd, true);
        return Ok(RedisValue::NoReply);
    }
    let db = selected_db(ctx);
    let mut misses = Vec::new();
    for i in native.keys(cmd.len()) {
        let key = cmd[i];
        // Mapped with this format when rewritten; the mappings may have changed since.
        if settings::check_format(key) != Ok(native.format) {
            continue;
        }
        if probe(ctx, key, false).0 != Held::Nothing {
            counters::count_main(&counters::HITS);
        } else if cache_state::known_absent(db, key) {
            counters::count(&counters::NEGATIVE_HITS);
        } else if let Ok(target) = settings::resolve(key) {
            counters::count(&counters::MISSES);
            if !misses.iter().any(|m: &BatchMiss| m.key == key) {
                misses.push(BatchMiss {
                    index: misses.len(),
                    key: key.to_vec(),
                    target,
                });
            }
        }
    }
    if misses.is_empty() {
        forward(ctx, &cmd, true);
        return Ok(RedisValue::NoReply);
    }
    if cannot_block(ctx) {
        // Inside MULTI/EXEC or a script: answer what the native command answers now, load in
        // the background.
        for m in &misses {
            load::prefetch(db, &m.key);
        }
        forward(ctx, &cmd, true);
        return Ok(RedisValue::NoReply);
    }
    let waited = misses.iter().map(|m| m.key.clone()).collect();
    let answer = Answer::Native(cmd.iter().map(|a| a.to_vec()).collect(), waited);
    let waiter = Waiter::block(ctx, settings::timeout_ms() + TIMEOUT_SAFETY_MS, answer);
    if misses.len() == 1 {
        // One key: join or lead its single-flight load.
        let m = misses.pop().expect("one miss");
        load::start(
            db,
            &m.key,
            m.target,
            Some(waiter),
            crate::engine::store::Kind::Fill,
        );
    } else {
        let slots = vec![Slot::Nil; misses.len()];
        start_batch(db, misses, slots, Some(waiter));
    }
    Ok(RedisValue::NoReply)
}
