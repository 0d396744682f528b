//! Answering a client in the format of its key: a JSON document or a hash is answered by the
//! native read (`JSON.GET key`, `HGETALL key`, or the client's own command in transparent mode),
//! run for the client and forwarded as it is (RESP2 or RESP3, as the client speaks), so the
//! reply is exactly what the native command gives. A value that could not be stored (a replica,
//! a flush meanwhile, memory full) is answered from what was loaded.

use crate::core::error::{Error, Outcome};
use crate::core::format::{Format, Slot, Value};
use crate::redis::args::RStr;
use crate::redis::keys::{as_own_lookup, probe, Held};
use crate::redis::reply::{reply_bulk, reply_error, reply_error_text, reply_null};
use redis_module::{raw, Context};
use std::ffi::{CStr, CString};
use std::os::raw::c_int;

/// The native read of a whole value of each format.
pub fn native_read(format: Format) -> &'static CStr {
    match format {
        Format::String => c"GET",
        Format::Json => c"JSON.GET",
        Format::Hash => c"HGETALL",
    }
}

/// Runs `args` (the command name first) for the client of `ctx` and forwards its reply, errors
/// included. `as_user`: with the client's ACL rights (transparent mode stands in for the
/// client's own command). The key-miss hook ignores the run.
pub fn forward(ctx: &Context, args: &[&[u8]], as_user: bool) {
    let Some((name, rest)) = args.split_first() else {
        return reply_error(ctx, &Error::Internal("an empty native command".into()));
    };
    let Ok(name) = CString::new(name.to_vec()) else {
        return reply_error(ctx, &Error::Internal("a command name with NUL".into()));
    };
    // SAFETY: `ctx` is live; the strings made here are freed below, after their last use.
    unsafe {
        let strings: Vec<RStr> = rest
            .iter()
            .map(|a| {
                RStr::new(raw::RedisModule_CreateString.unwrap()(
                    ctx.ctx,
                    a.as_ptr().cast(),
                    a.len(),
                ))
            })
            .collect();
        forward_raw(ctx, &name, &strings, as_user);
        for s in strings {
            raw::RedisModule_FreeString.unwrap()(ctx.ctx, s.as_ptr());
        }
    }
}

/// `forward` with the arguments as Redis strings (the client's own, on the hit path: no copy).
pub fn forward_raw(ctx: &Context, name: &CStr, args: &[RStr<'_>], as_user: bool) {
    // `v`: the arguments as a vector; `0`: the reply in the client's protocol (RESP2 or 3);
    // `C`: with the client's ACL rights; `E`: errors as replies.
    let fmt = if as_user { c"v0CE" } else { c"v0E" };
    // SAFETY: `ctx` is the live context of the call being answered, on the main thread; `args`
    // are live Redis strings (their type says so; `RStr` is a transparent wrapper, so the slice
    // is the vector of pointers Redis expects); the reply is freed after Redis copied it.
    unsafe {
        let reply = as_own_lookup(|| {
            raw::RedisModule_Call.unwrap()(
                ctx.ctx,
                name.as_ptr(),
                fmt.as_ptr(),
                args.as_ptr().cast::<*mut raw::RedisModuleString>(),
                args.len(),
            )
        });
        if reply.is_null() {
            let what = name.to_string_lossy();
            return reply_error(
                ctx,
                &Error::Internal(format!("'{what}' could not be run for the client")),
            );
        }
        if raw::RedisModule_CallReplyType.unwrap()(reply) == raw::REDISMODULE_REPLY_ERROR as c_int {
            let mut len = 0;
            let p = raw::RedisModule_CallReplyStringPtr.unwrap()(reply, &mut len);
            let text = std::slice::from_raw_parts(p.cast::<u8>(), len);
            if text.windows(23).any(|w| w == b"acl verification failed") {
                let why = format!(
                    "NOPERM this user has no permissions to run the '{}' command or to access \
                     one of its keys",
                    name.to_string_lossy().to_ascii_lowercase()
                );
                raw::RedisModule_FreeCallReply.unwrap()(reply);
                return reply_error_text(ctx, &why);
            }
        }
        raw::RedisModule_ReplyWithCallReply.unwrap()(ctx.ctx, reply);
        raw::RedisModule_FreeCallReply.unwrap()(reply);
    }
}

/// Answers with the native read of `key` if it holds `format`'s type: `Ok(true)` when answered,
/// `Ok(false)` when the key does not exist, `WRONGTYPE` when it holds another type.
pub fn read_back(ctx: &Context, key: &[u8], format: Format) -> Result<bool, Error> {
    match probe(ctx, key, false).0 {
        Held::Nothing => Ok(false),
        held if held.fits(format) => {
            forward(ctx, &[native_read(format).to_bytes(), key], false);
            Ok(true)
        }
        _ => Err(Error::WrongType),
    }
}

/// Answers with a value as it was loaded: JSON text as a bulk string, a hash as a map (a flat
/// array in RESP2), as `HGETALL` would.
pub fn reply_loaded(ctx: &Context, value: &Value) {
    match value {
        Value::String(t) | Value::Json(t) => reply_bulk(ctx, t.as_bytes()),
        Value::Hash(fields) => {
            // SAFETY: `ctx` is the live context of the call being answered.
            unsafe { raw::RedisModule_ReplyWithMap.unwrap()(ctx.ctx, fields.len() as _) };
            for (k, v) in fields {
                reply_bulk(ctx, k.as_bytes());
                reply_bulk(ctx, v.as_bytes());
            }
        }
    }
}

/// Answers one loaded value of `key`: a string as loaded; a JSON document or hash read back
/// natively where it was stored, else as loaded.
pub fn reply_value(ctx: &Context, key: &[u8], value: &Value) {
    if value.format() == Format::String {
        return reply_loaded(ctx, value);
    }
    match read_back(ctx, key, value.format()) {
        Ok(true) => {}
        Ok(false) => reply_loaded(ctx, value),
        Err(e) => reply_error(ctx, &e),
    }
}

/// Answers a load's outcome for `key` (`RT.GET`, `RT.REFRESH`, a transparent `GET`).
pub fn reply_outcome(ctx: &Context, key: &[u8], outcome: &Outcome) {
    match outcome {
        Ok(Some(value)) => reply_value(ctx, key, value),
        Ok(None) => reply_null(ctx),
        Err(e) => reply_error(ctx, e),
    }
}

/// Answers an `RT.MGET`: one element per key, each in its key's format (`formats[i]`).
pub fn reply_slots(ctx: &Context, keys: &[Vec<u8>], formats: &[Format], slots: &[Slot]) {
    // SAFETY: `ctx` is the live context of the call being answered.
    unsafe { raw::RedisModule_ReplyWithArray.unwrap()(ctx.ctx, slots.len() as _) };
    for (i, slot) in slots.iter().enumerate() {
        match slot {
            Slot::Nil => reply_null(ctx),
            Slot::Bytes(b) => reply_bulk(ctx, b),
            Slot::Loaded(v) => reply_value(ctx, &keys[i], v),
            Slot::Cached => match read_back(ctx, &keys[i], formats[i]) {
                Ok(true) => {}
                // Gone between the read and the reply (expired): nil, as MGET would say.
                Ok(false) => reply_null(ctx),
                Err(e) => reply_error(ctx, &e),
            },
        }
    }
}

/// Answers a transparent native read once its keys were loaded (`loaded[i]`: what the load of
/// `keys[i]` found). Normally the loaded keys are stored and the native command runs as the
/// client. A loaded value that could not be stored (the document changed during the load, a
/// flush, memory full) is answered from what was loaded where the native reply can be made
/// exactly (`HGET`, `HMGET`, `HGETALL`, `JSON.GET key` with no path or the root path); for
/// other JSON paths the client gets `TRYAGAIN` rather than a wrong nil.
pub fn reply_native(ctx: &Context, cmd: &[Vec<u8>], keys: &[Vec<u8>], loaded: &[Option<&Value>]) {
    let unstored: Vec<&Value> = keys
        .iter()
        .zip(loaded)
        .filter_map(|(k, v)| v.filter(|_| probe(ctx, k, false).0 == Held::Nothing))
        .collect();
    if let [value] = unstored.as_slice() {
        if keys.len() == 1 && reply_from_loaded(ctx, cmd, value) {
            return;
        }
    }
    if !unstored.is_empty() {
        return reply_error_text(
            ctx,
            "TRYAGAIN the document was loaded but could not be stored (it changed during the \
             load, the database was flushed, or memory is full); retry",
        );
    }
    let args: Vec<&[u8]> = cmd.iter().map(Vec::as_slice).collect();
    forward(ctx, &args, true);
}

/// The native reply of `cmd` made from a loaded value, where that can be exact.
fn reply_from_loaded(ctx: &Context, cmd: &[Vec<u8>], value: &Value) -> bool {
    let name = cmd[0].to_ascii_lowercase();
    let field = |f: &[u8]| match value {
        Value::Hash(fields) => fields
            .iter()
            .find(|(k, _)| k.as_bytes() == f)
            .map(|(_, v)| v),
        _ => None,
    };
    match (name.as_slice(), value, cmd.len()) {
        (b"hgetall", Value::Hash(_), 2) => reply_loaded(ctx, value),
        (b"hget", Value::Hash(_), 3) => match field(&cmd[2]) {
            Some(v) => reply_bulk(ctx, v.as_bytes()),
            None => reply_null(ctx),
        },
        (b"hmget", Value::Hash(_), n) if n >= 3 => {
            // SAFETY: `ctx` is the live context of the call being answered.
            unsafe { raw::RedisModule_ReplyWithArray.unwrap()(ctx.ctx, (n - 2) as _) };
            for f in &cmd[2..] {
                match field(f) {
                    Some(v) => reply_bulk(ctx, v.as_bytes()),
                    None => reply_null(ctx),
                }
            }
        }
        (b"json.get", Value::Json(t), 2) => reply_bulk(ctx, t.as_bytes()),
        (b"json.get", Value::Json(t), 3) if cmd[2] == b"." => reply_bulk(ctx, t.as_bytes()),
        (b"json.get", Value::Json(t), 3) if cmd[2] == b"$" => {
            reply_bulk(ctx, format!("[{t}]").as_bytes())
        }
        _ => return false,
    }
    true
}
