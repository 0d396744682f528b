//! `RT.REFRESH key`: reloads the key from MongoDB now.

use crate::commands::read::load_one;
use crate::core::error::Error;
use crate::engine::store::Kind;
use crate::redis::args::Args;
use crate::redis::blocking::Answer;
use crate::redis::keys::selected_db;
use crate::redis::keys::{probe, Held};
use crate::redis::main_thread::MainThread;
use crate::state::settings;
use redis_module::{Context, RedisError, RedisResult};

/// Reloads the key from MongoDB now, stores the new value (or deletes the key if the document
/// is gone) and replies it.
pub fn rt_refresh(ctx: &Context, args: &Args, mt: MainThread) -> RedisResult {
    if args.len() != 2 {
        return Err(RedisError::WrongArity);
    }
    let key = args.bytes(1);
    let target = settings::resolve(key)?;
    let held = probe(ctx, key, false).0;
    if held != Held::Nothing && !held.fits(target.mapping.format) {
        // Never overwrite a value of another type.
        return Err(Error::WrongType.into());
    }
    let db = selected_db(ctx);
    let answer = || Answer::Value(key.to_vec());
    let never = || unreachable!("RT.REFRESH is not a transparent read");
    load_one(
        ctx,
        mt,
        false,
        (db, key, target, Kind::Refresh),
        answer,
        never,
    )
}
