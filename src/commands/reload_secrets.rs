//! `RT.RELOAD-SECRETS`: reads `readthrough.mongo-uri-file` again, after a password rotation.

use crate::redis::args::Args;
use crate::redis::main_thread::MainThread;
use crate::redis::mongo_uri;
use redis_module::{Context, RedisError, RedisResult, RedisValue};

/// Rereads the URI file; replies `OK` (the new URI is in force for new loads; loads in flight
/// finish on the connections they have), or an error naming the path and the reason, the URI in
/// force unchanged.
pub fn rt_reload_secrets(_ctx: &Context, args: &Args, _: MainThread) -> RedisResult {
    if args.len() != 1 {
        return Err(RedisError::WrongArity);
    }
    mongo_uri::reload().map_err(|e| RedisError::String(format!("ERR {e}")))?;
    Ok(RedisValue::SimpleStringStatic("OK"))
}
