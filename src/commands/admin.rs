//! `RT.INVALIDATE key [key ...]` and `RT.REFRESH key`.

use super::get::load_for_client;
use crate::ffi::{self, Args};
use crate::load::{self, Kind};
use crate::{config, stats};
use redis_module::{
    CallOptionsBuilder, CallReply, CallResult, Context, RedisError, RedisResult, RedisValue,
};

/// Removes the cached value and the negative entry of each key; replies how many keys had
/// either. The deletes are replicated. Every key must be mapped, else nothing is removed.
pub fn rt_invalidate(ctx: &Context, args: &Args) -> RedisResult {
    if args.len() < 2 {
        return Err(RedisError::WrongArity);
    }
    for i in 1..args.len() {
        config::check(args.bytes(i))?;
    }
    let db = ffi::selected_db(ctx);
    let opts = CallOptionsBuilder::new()
        .replicate()
        .errors_as_replies()
        .build();
    let mut removed = 0;
    for i in 1..args.len() {
        let key = args.bytes(i);
        let res: CallResult = ctx.call_ext("DEL", &opts, &[key][..]);
        let deleted = matches!(res, Ok(CallReply::I64(n)) if n.to_i64() > 0);
        let forgot = load::forget_absent(db, key);
        if deleted || forgot {
            removed += 1;
        }
    }
    stats::add(&stats::INVALIDATIONS, removed as u64);
    Ok(RedisValue::Integer(removed))
}

/// Reloads the key from MongoDB now, stores the new value (or deletes the key if the document
/// is gone) and replies it.
pub fn rt_refresh(ctx: &Context, args: &Args) -> RedisResult {
    if args.len() != 2 {
        return Err(RedisError::WrongArity);
    }
    let key = args.bytes(1);
    let target = config::resolve(key)?;
    let db = ffi::selected_db(ctx);
    load_for_client(ctx, db, key, target, Kind::Refresh)
}
