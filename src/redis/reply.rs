//! Replies to the calling client, and the one conversion of the module's errors into Redis
//! error replies.

use crate::core::error::Error;
use redis_module::{raw, Context, RedisError};
use std::ffi::CString;

impl From<Error> for RedisError {
    fn from(e: Error) -> Self {
        RedisError::String(e.to_string())
    }
}

/// Replies with a bulk string straight from a borrowed buffer (one copy, into the client's
/// output buffer).
pub fn reply_bulk(ctx: &Context, bytes: &[u8]) {
    // SAFETY: `ctx` is the live context of the call being answered; Redis copies the bytes.
    unsafe {
        raw::RedisModule_ReplyWithStringBuffer.unwrap()(ctx.ctx, bytes.as_ptr().cast(), bytes.len())
    };
}

pub fn reply_null(ctx: &Context) {
    // SAFETY: `ctx` is the live context of the call being answered.
    unsafe { raw::RedisModule_ReplyWithNull.unwrap()(ctx.ctx) };
}

pub fn reply_error(ctx: &Context, e: &Error) {
    reply_error_text(ctx, &e.to_string());
}

/// An error reply; `text` starts with its code word.
pub fn reply_error_text(ctx: &Context, text: &str) {
    let text = CString::new(text.replace('\0', " ")).expect("no NUL left");
    // SAFETY: `ctx` is live; the text is a NUL-terminated string Redis copies.
    unsafe { raw::RedisModule_ReplyWithError.unwrap()(ctx.ctx, text.as_ptr()) };
}
