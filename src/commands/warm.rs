//! `RT.WARM prefix [LIMIT n]`: starts a background bulk load of a mapping.

use crate::core::error::Error;
use crate::engine::warm;
use crate::redis::acl;
use crate::redis::args::Args;
use crate::redis::keys::selected_db;
use crate::redis::main_thread::MainThread;
use redis_module::{Context, RedisError, RedisResult, RedisValue};

/// Starts a background warm-up of the mapping with this prefix into the client's DB; replies
/// at once. Progress in `INFO readthrough`.
pub fn rt_warm(ctx: &Context, args: &Args, _: MainThread) -> RedisResult {
    if args.len() != 2 && args.len() != 4 {
        return Err(RedisError::WrongArity);
    }
    let prefix = std::str::from_utf8(args.bytes(1))
        .map_err(|_| RedisError::Str("ERR the prefix is not valid UTF-8"))?;
    let limit = if args.len() == 4 {
        if !args.bytes(2).eq_ignore_ascii_case(b"LIMIT") {
            return Err(RedisError::Str(
                "ERR syntax error, expected RT.WARM prefix [LIMIT n]",
            ));
        }
        let n = std::str::from_utf8(args.bytes(3))
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .filter(|n| *n > 0)
            .ok_or(RedisError::Str("ERR LIMIT must be a positive integer"))?;
        Some(n)
    } else {
        None
    };
    // The warm-up writes every key of the mapping: refused unless the user may write them all.
    if !acl::may_write_prefix(ctx, prefix) {
        return Err(Error::NoWritePrefix(prefix.to_owned()).into());
    }
    warm::start(prefix, limit, selected_db(ctx))?;
    Ok(RedisValue::SimpleStringStatic("OK"))
}
