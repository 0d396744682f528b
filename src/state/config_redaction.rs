//! Keeps MongoDB credentials out of the slowlog and MONITOR.
//!
//! Redis 7.0 does not honour the "sensitive" flag of module configs: `CONFIG SET
//! readthrough.mongo-uri mongodb://user:pass@...` would show the password in `SLOWLOG GET` and to
//! every `MONITOR` client. So the command filter swaps such a value for a placeholder before
//! Redis records the command, and keeps the real text here; the config's setter swaps it back.
//! Pure but for the small table of pending values.

use std::collections::VecDeque;
use std::sync::Mutex;

pub const PLACEHOLDER: &str = "(redacted-by-readthrough:";
const URI_CONFIG: &[u8] = b"readthrough.mongo-uri";
/// Values set aside but never claimed (a CONFIG SET refused before reaching the module) are
/// dropped beyond this many.
const PENDING_MAX: usize = 16;

static PENDING: Mutex<VecDeque<(String, String)>> = Mutex::new(VecDeque::new());

/// For `CONFIG SET name value [name value ...]` (name first in `args`): the positions of the
/// `readthrough.mongo-uri` values that carry credentials (an `@`).
pub fn secret_positions(args: &[&[u8]]) -> Vec<usize> {
    let is_config_set = args.len() >= 4
        && args[0].eq_ignore_ascii_case(b"config")
        && args[1].eq_ignore_ascii_case(b"set");
    if !is_config_set {
        return Vec::new();
    }
    (2..args.len() - 1)
        .step_by(2)
        .filter(|&i| args[i].eq_ignore_ascii_case(URI_CONFIG) && args[i + 1].contains(&b'@'))
        .map(|i| i + 1)
        .collect()
}

/// Sets `value` aside; the placeholder that stands for it.
pub fn set_aside(value: String, nonce: u64) -> String {
    let placeholder = format!("{PLACEHOLDER}{nonce:016x})");
    let mut pending = PENDING.lock().unwrap_or_else(|p| p.into_inner());
    if pending.len() >= PENDING_MAX {
        pending.pop_front();
    }
    pending.push_back((placeholder.clone(), value));
    placeholder
}

/// The real value for a placeholder (once), the text itself if it is not one; `Err` for a
/// placeholder this module did not hand out.
pub fn restore(text: String) -> Result<String, String> {
    if !text.starts_with(PLACEHOLDER) {
        return Ok(text);
    }
    let mut pending = PENDING.lock().unwrap_or_else(|p| p.into_inner());
    match pending.iter().position(|(p, _)| *p == text) {
        Some(i) => Ok(pending.remove(i).map(|(_, v)| v).unwrap_or_default()),
        None => Err("invalid MongoDB URI: an unknown redacted placeholder".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_uri_values_with_credentials_of_config_set_are_secret() {
        let a = |v: &[&str]| v.iter().map(|s| s.as_bytes().to_vec()).collect::<Vec<_>>();
        let pos = |v: &[&str]| {
            let owned = a(v);
            let args: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
            secret_positions(&args)
        };
        assert_eq!(
            pos(&["CONFIG", "SET", "readthrough.mongo-uri", "mongodb://u:p@h"]),
            [3]
        );
        assert_eq!(
            pos(&["config", "set", "READTHROUGH.MONGO-URI", "mongodb://u:p@h"]),
            [3]
        );
        assert_eq!(
            pos(&[
                "CONFIG",
                "SET",
                "readthrough.ttl",
                "5",
                "readthrough.mongo-uri",
                "m://u@h"
            ]),
            [5]
        );
        assert!(pos(&["CONFIG", "SET", "readthrough.mongo-uri", "mongodb://h"]).is_empty());
        assert!(pos(&["CONFIG", "GET", "readthrough.mongo-uri", "x@y"]).is_empty());
        assert!(pos(&["CONFIG", "SET", "readthrough.mongo-uri"]).is_empty());
        assert!(pos(&["SET", "readthrough.mongo-uri", "a@b", "x"]).is_empty());
        assert!(pos(&["CONFIG", "SET", "masterauth", "a@b"]).is_empty());
    }

    #[test]
    fn placeholders_restore_once_and_unknown_ones_are_refused() {
        let p = set_aside("mongodb://u:secret@h".into(), 42);
        assert!(!p.contains("secret"));
        assert_eq!(restore(p.clone()).unwrap(), "mongodb://u:secret@h");
        assert!(restore(p).is_err(), "claimed once");
        assert_eq!(restore("mongodb://h".into()).unwrap(), "mongodb://h");
        assert!(restore(format!("{PLACEHOLDER}0000)")).is_err());
        for i in 0..100 {
            set_aside(format!("v{i}"), 1000 + i);
        }
        assert!(PENDING.lock().unwrap().len() <= PENDING_MAX, "bounded");
    }
}
