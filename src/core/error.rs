//! The one error type of the module and its single conversion into a Redis error reply.
//!
//! Every reply error starts with a code word (`NOMAPPING`, `TIMEOUT`, ...) so that clients can
//! branch on it; the rest is a sentence for humans. Messages never carry MongoDB credentials:
//! backend errors are redacted where they are made (see `core/uri.rs`).

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The key matches no configured mapping.
    NoMapping(String),
    /// The key matches a mapping but cannot be turned into an id (empty, not UTF-8).
    BadKey(String),
    /// The load took longer than `readthrough.timeout`.
    Timeout(u64),
    /// MongoDB unreachable or failed; the text is already redacted.
    Backend(String),
    /// Too many loads in flight.
    Busy(usize),
    /// The key holds a non-string value.
    WrongType,
    /// A miss inside MULTI/EXEC, a Lua script or another context that cannot block.
    NoBlock,
    /// `RT.WARM` of a prefix no mapping has.
    NoPrefix(String),
    /// `RT.WARM` of a prefix whose warm-up is running.
    WarmRunning(String),
    /// A background job (a warm-up) stopped for a reason that is not a bug.
    Stopped(String),
    /// The client's user may not write a key a load would store.
    NoWrite(String),
    /// The client's user may not write every key under a prefix `RT.WARM` would store.
    NoWritePrefix(String),
    /// A bug: a panic was caught or a load ended without an outcome.
    Internal(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoMapping(key) => {
                write!(
                    f,
                    "NOMAPPING key '{key}' matches no prefix in readthrough.mappings"
                )
            }
            Error::BadKey(why) => write!(f, "ERR {why}"),
            Error::Timeout(ms) => {
                write!(f, "TIMEOUT loading from MongoDB took longer than {ms} ms")
            }
            Error::Backend(msg) => write!(f, "BACKEND MongoDB error: {msg}"),
            Error::Busy(max) => write!(
                f,
                "BUSY {max} loads already in flight (readthrough.max-inflight); retry later"
            ),
            Error::WrongType => {
                f.write_str("WRONGTYPE Operation against a key holding the wrong kind of value")
            }
            Error::NoBlock => f.write_str(
                "NOBLOCK the key is not cached and a load cannot wait inside MULTI/EXEC or a \
                 script; a background load was started, retry outside the transaction",
            ),
            Error::NoPrefix(p) => write!(
                f,
                "NOMAPPING no mapping has the prefix '{p}' (see readthrough.mappings)"
            ),
            Error::WarmRunning(p) => write!(
                f,
                "BUSY a warm-up of '{p}' is already running (see INFO readthrough)"
            ),
            Error::Stopped(why) => write!(f, "ERR {why}"),
            Error::NoWrite(key) => write!(
                f,
                "NOPERM this user has no permissions to write the key '{key}', which loading it \
                 from MongoDB would store"
            ),
            Error::NoWritePrefix(p) => write!(
                f,
                "NOPERM this user has no permissions to write every key under '{p}', which \
                 RT.WARM would store (see the README's Permissions section)"
            ),
            Error::Internal(msg) => write!(f, "ERR internal error in readthrough: {msg}"),
        }
    }
}

/// What a load produced: the document in its mapping's format, `None` when MongoDB has no such
/// document, or why it failed. Shared by every waiter of the load.
pub type Outcome = Result<Option<crate::core::format::Loaded>, Error>;

/// Shows a key in an error message: printable ASCII as is, other bytes as `\xNN` (error
/// replies must stay one clean line), cut after 128 bytes so a 1 MB key does not make a 1 MB
/// error.
pub fn show_key(key: &[u8]) -> String {
    const MAX: usize = 128;
    let mut s = String::new();
    for &b in &key[..key.len().min(MAX)] {
        if b.is_ascii_graphic() || b == b' ' {
            s.push(b as char);
        } else {
            s.push_str(&format!("\\x{b:02x}"));
        }
    }
    if key.len() > MAX {
        s.push_str("...");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_starts_with_its_code() {
        let cases = [
            (Error::NoMapping("x".into()), "NOMAPPING "),
            (Error::BadKey("y".into()), "ERR "),
            (Error::Timeout(5), "TIMEOUT "),
            (Error::Backend("z".into()), "BACKEND "),
            (Error::Busy(3), "BUSY "),
            (Error::WrongType, "WRONGTYPE "),
            (Error::NoBlock, "NOBLOCK "),
            (Error::NoPrefix("p:".into()), "NOMAPPING "),
            (Error::WarmRunning("p:".into()), "BUSY "),
            (Error::Stopped("s".into()), "ERR "),
            (Error::NoWrite("k".into()), "NOPERM "),
            (Error::NoWritePrefix("p:".into()), "NOPERM "),
            (Error::Internal("w".into()), "ERR "),
        ];
        for (e, code) in cases {
            assert!(e.to_string().starts_with(code), "{e}");
        }
    }

    #[test]
    fn long_and_multiline_keys_are_shortened() {
        let key = vec![b'a'; 1 << 20];
        assert_eq!(show_key(&key).len(), 131);
        assert_eq!(show_key(b"a\r\nb"), "a\\x0d\\x0ab");
        assert_eq!(show_key(&[0xff, b'x']), "\\xffx");
        assert_eq!(show_key("é".as_bytes()), "\\xc3\\xa9");
    }
}
