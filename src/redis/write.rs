//! Writes from a background thread under the Redis lock: the one way the module changes data.
//! Every write is replicated to replicas and the AOF, and refused under OOM.

use crate::core::settings;
use crate::redis::gil::Gil;
use redis_module::{CallOptionsBuilder, CallReply, CallResult};

/// The condition of a `SET`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Only {
    /// `NX`: a value written meanwhile by someone else wins.
    Absent,
    /// `XX`: only where the key is cached.
    Present,
}

/// `SET key json [PX ttl] [NX|XX]` with the TTL policy applied. `Some(written)` (false when
/// the condition did not hold), `None` if the command failed.
pub fn set_value(gil: &Gil, db: i32, key: &[u8], json: &str, only: Option<Only>) -> Option<bool> {
    let ttl = settings::store_ttl_ms().map(|ms| ms.to_string());
    let mut args: Vec<&[u8]> = vec![key, json.as_bytes()];
    if let Some(ttl) = &ttl {
        args.extend([&b"PX"[..], ttl.as_bytes()]);
    }
    match only {
        Some(Only::Absent) => args.push(b"NX"),
        Some(Only::Present) => args.push(b"XX"),
        None => {}
    }
    call_read(gil, db, "SET", &args, |r| !matches!(r, CallReply::Null(_)))
}

/// `DEL keys...` in `db`: how many existed; `None` if the command failed.
pub fn delete(gil: &Gil, db: i32, keys: &[&[u8]]) -> Option<i64> {
    call_read(gil, db, "DEL", keys, |r| match r {
        CallReply::I64(n) => Some(n.to_i64()),
        _ => None,
    })
    .flatten()
}

/// Runs a write command in `db`; `read` turns the reply into a result; `None` if the command
/// failed.
pub fn call_read<R>(
    gil: &Gil,
    db: i32,
    cmd: &str,
    args: &[&[u8]],
    read: impl FnOnce(&CallReply) -> R,
) -> Option<R> {
    if !gil.select_db(db) {
        return None;
    }
    let ctx = gil.context();
    let opts = CallOptionsBuilder::new()
        .replicate()
        .errors_as_replies()
        .verify_oom()
        .build();
    let res: CallResult = ctx.call_ext(cmd, &opts, args);
    match res {
        Ok(reply) => Some(read(&reply)),
        Err(e) => {
            let msg = e.to_utf8_string().unwrap_or_default();
            // In Redis Cluster, keys of slots another node serves are that node's business
            // (change streams and warm-ups run on every master): expected, not worth a log line.
            if !msg.contains("non local key") {
                ctx.log_warning(&format!("readthrough: could not write ({cmd}): {msg}"));
            }
            None
        }
    }
}
