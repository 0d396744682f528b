//! Writes from a background thread under the Redis lock: the one way the module changes data.
//! Every write is replicated to replicas and the AOF, and refused under OOM.

use crate::core::format::{Format, Loaded, Value};
use crate::core::policy::Px;
use crate::redis::gil::Gil;
use crate::redis::keys::{probe, Held};
use crate::state::settings;
use redis_module::{CallOptionsBuilder, CallReply, CallResult};

/// The condition of a `SET`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Only {
    /// `NX`: a value written meanwhile by someone else wins.
    Absent,
    /// `XX`: only where the key is cached.
    Present,
}

/// Stores a value in its format with its mapping's expiry policy applied, under the condition
/// `only` (`None`: overwrite). `Some(written)`: false when the condition did not hold, the key
/// holds another type (never overwritten) or the document's `expire-at=` date has passed (an
/// overwrite then deletes the key); `None` if a command failed. All the commands of one value
/// run in one hold of the lock, so replicas and the AOF get them as one `MULTI`/`EXEC` unit.
pub fn store_value(
    gil: &Gil,
    db: i32,
    key: &[u8],
    loaded: &Loaded,
    only: Option<Only>,
) -> Option<bool> {
    if !gil.select_db(db) {
        return None;
    }
    let ttl = match settings::store_px(key, loaded.expire_at_ms) {
        Px::Expired => {
            if only != Some(Only::Absent) {
                delete(gil, db, &[key])?;
            }
            return Some(false);
        }
        Px::Never => None,
        Px::Ms(ms) => Some(ms.max(1).to_string()),
    };
    let value = &loaded.value;
    let format = value.format();
    if only != Some(Only::Absent) || format == Format::Hash {
        // Overwriting: never over another type. A fill of a hash: HSET has no NX.
        let (held, _) = probe(&gil.context(), key, false);
        let ok = match only {
            Some(Only::Absent) => held == Held::Nothing,
            Some(Only::Present) => held.fits(format),
            None => held == Held::Nothing || held.fits(format),
        };
        if !ok {
            return Some(false);
        }
    }
    match value {
        Value::String(json) => set_string(gil, db, key, json, ttl.as_deref(), only),
        Value::Json(json) => {
            let mut args: Vec<&[u8]> = vec![key, b"$", json.as_bytes()];
            match only {
                Some(Only::Absent) => args.push(b"NX"),
                Some(Only::Present) => args.push(b"XX"),
                None => {}
            }
            let written = call_read(gil, db, "JSON.SET", &args, |r| {
                !matches!(r, CallReply::Null(_))
            })?;
            if written {
                expire(gil, db, key, ttl.as_deref())?;
            }
            Some(written)
        }
        Value::Hash(fields) => {
            // The document's fields replace the hash's: a field gone from the document goes.
            if only != Some(Only::Absent) {
                delete(gil, db, &[key])?;
            }
            if fields.is_empty() {
                return Some(false); // Redis has no empty hash
            }
            let mut args: Vec<&[u8]> = Vec::with_capacity(1 + 2 * fields.len());
            args.push(key);
            for (f, v) in fields {
                args.extend([f.as_bytes(), v.as_bytes()]);
            }
            call_read(gil, db, "HSET", &args, |_| ())?;
            expire(gil, db, key, ttl.as_deref())?;
            Some(true)
        }
    }
}

/// `PEXPIRE key ttl`, or `PERSIST key` when values do not expire (an overwritten JSON document
/// would otherwise keep its old TTL).
fn expire(gil: &Gil, db: i32, key: &[u8], ttl: Option<&str>) -> Option<()> {
    match ttl {
        Some(ms) => call_read(gil, db, "PEXPIRE", &[key, ms.as_bytes()], |_| ()),
        None => call_read(gil, db, "PERSIST", &[key], |_| ()),
    }
}

/// `SET key json [PX ttl] [NX|XX]`. `Some(written)` (false when the condition did not hold),
/// `None` if the command failed.
fn set_string(
    gil: &Gil,
    db: i32,
    key: &[u8],
    json: &str,
    ttl: Option<&str>,
    only: Option<Only>,
) -> Option<bool> {
    let mut args: Vec<&[u8]> = vec![key, json.as_bytes()];
    if let Some(ttl) = ttl {
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
            // (warm-ups run on every master), and a cluster not up yet refuses everything (the
            // watcher waits and says so): expected, not worth a log line each.
            if !msg.contains("non local key") && !msg.contains("cluster is down") {
                ctx.log_warning(&format!("readthrough: could not write ({cmd}): {msg}"));
            }
            None
        }
    }
}
