//! `RT.INVALIDATE key [key ...]`: removes cached values and negative entries.

use crate::engine::cache_state;
use crate::redis::args::Args;
use crate::redis::keys::selected_db;
use crate::redis::main_thread::MainThread;
use crate::state::{counters, settings};
use redis_module::{
    CallOptionsBuilder, CallReply, CallResult, Context, RedisError, RedisResult, RedisValue,
};

/// Removes the cached value and the negative entry of each key; replies how many keys had
/// either. The deletes are replicated. Every key must be mapped, else nothing is removed.
pub fn rt_invalidate(ctx: &Context, args: &Args, _: MainThread) -> RedisResult {
    if args.len() < 2 {
        return Err(RedisError::WrongArity);
    }
    for i in 1..args.len() {
        settings::check(args.bytes(i))?;
    }
    let db = selected_db(ctx);
    let opts = CallOptionsBuilder::new()
        .replicate()
        .errors_as_replies()
        .build();
    let mut removed = 0;
    for i in 1..args.len() {
        let key = args.bytes(i);
        let res: CallResult = ctx.call_ext("DEL", &opts, &[key][..]);
        let deleted = matches!(res, Ok(CallReply::I64(n)) if n.to_i64() > 0);
        let forgot = cache_state::forget_absent(db, key);
        if deleted || forgot {
            removed += 1;
        }
    }
    counters::add(&counters::INVALIDATIONS, removed as u64);
    Ok(RedisValue::Integer(removed))
}
