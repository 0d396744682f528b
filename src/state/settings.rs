//! The settings snapshot: the one owner of every `readthrough.*` value in force. Redis's
//! config machinery (`redis/configs.rs`) writes here once a value is accepted; everything else
//! only reads. Pure: atomics, locks and per-thread copies, no Redis, no I/O.

use crate::core::error::{show_key, Error};
use crate::core::format::Format;
use crate::core::invalidation::Mode;
use crate::core::mapping::{Mapping, Mappings, ResolveError, Target};
use crate::core::policy::{self, Life, Px};
use once_cell::sync::Lazy;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::time::Duration;

pub const DEFAULT_URI: &str = "mongodb://127.0.0.1:27017";

/// A numeric config: its name (without `readthrough.`), default and bounds.
pub struct Numeric {
    pub name: &'static str,
    pub value: AtomicI64,
    pub default: i64,
    pub min: i64,
    pub max: i64,
}

impl Numeric {
    const fn new(name: &'static str, default: i64, min: i64, max: i64) -> Numeric {
        Numeric {
            name,
            value: AtomicI64::new(default),
            default,
            min,
            max,
        }
    }

    pub fn get(&self) -> i64 {
        self.value.load(Ordering::Relaxed)
    }
}

const TEN_YEARS_S: i64 = policy::MAX_SECONDS;

pub static TTL: Numeric = Numeric::new("ttl", 3600, 0, TEN_YEARS_S);
pub static TIMEOUT: Numeric = Numeric::new("timeout", 2000, 1, 3_600_000);
pub static MAX_INFLIGHT: Numeric = Numeric::new("max-inflight", 10_000, 1, 1_000_000);
pub static TTL_JITTER: Numeric = Numeric::new("ttl-jitter", 10, 0, policy::MAX_JITTER_PCT);
pub static NEGATIVE_TTL: Numeric = Numeric::new("negative-ttl", 30, 0, TEN_YEARS_S);
pub static NEGATIVE_MAX: Numeric = Numeric::new("negative-max", 100_000, 0, 10_000_000);
pub static GRACE: Numeric = Numeric::new("grace", 0, 0, TEN_YEARS_S);
/// A loaded value larger than this (bytes of its text, or of a hash's fields and values) is
/// answered but not stored. Redis's own limit on a string is 512 MB.
pub static MAX_VALUE_BYTES: Numeric =
    Numeric::new("max-value-bytes", 8 * 1024 * 1024, 1, 512 * 1024 * 1024);

/// Every numeric config, in the order they are registered.
pub static NUMERIC: [&Numeric; 8] = [
    &TTL,
    &TIMEOUT,
    &MAX_INFLIGHT,
    &TTL_JITTER,
    &NEGATIVE_TTL,
    &NEGATIVE_MAX,
    &GRACE,
    &MAX_VALUE_BYTES,
];

pub static TRANSPARENT: AtomicBool = AtomicBool::new(true);

pub fn transparent() -> bool {
    TRANSPARENT.load(Ordering::Relaxed)
}

pub static INLINE_LOADS: AtomicBool = AtomicBool::new(true);

/// `readthrough.inline-loads`: at low load Redis's main thread sends and reads a miss's query.
pub fn inline_loads() -> bool {
    INLINE_LOADS.load(Ordering::Relaxed)
}

/// The expiry policy of `m`: its own options over the server-wide settings.
pub fn life_of(m: &Mapping) -> Life {
    Life {
        ttl_s: m.expiry.ttl_s.unwrap_or_else(|| TTL.get()),
        jitter_pct: m.expiry.jitter_pct.unwrap_or_else(|| TTL_JITTER.get()),
        grace_s: grace_of(m),
    }
}

pub fn grace_of(m: &Mapping) -> i64 {
    m.expiry.grace_s.unwrap_or_else(|| GRACE.get())
}

/// How to store a value of `key` loaded now whose document expires at `expire_at_ms`: the
/// policy of the key's mapping in force (the server-wide one if none maps it any more).
pub fn store_px(key: &[u8], expire_at_ms: Option<i64>) -> Px {
    let life = match read_mappings().find(key) {
        Some(m) => life_of(m),
        None => life_of(&Mapping::default()),
    };
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    life.px(expire_at_ms, now_ms, crate::state::random::random())
}

/// How long "not in MongoDB" is remembered for `key`: its mapping's `negative-ttl=`, else
/// `readthrough.negative-ttl`.
pub fn negative_ttl(key: &[u8]) -> Duration {
    let own = read_mappings()
        .find(key)
        .and_then(|m| m.expiry.negative_ttl_s);
    Duration::from_secs(own.unwrap_or_else(|| NEGATIVE_TTL.get()).max(0) as u64)
}

/// True when some read may fall in a grace window (`readthrough.grace` or a mapping's
/// `grace=` above 0): a cached read then takes the module's path, which starts the refresh.
pub fn any_grace() -> bool {
    GRACE.get() > 0 || MAPPING_GRACE.load(Ordering::Relaxed)
}

static MAPPING_GRACE: AtomicBool = AtomicBool::new(false);

pub fn negative_max() -> usize {
    NEGATIVE_MAX.get() as usize
}

pub fn timeout_ms() -> i64 {
    TIMEOUT.get()
}

pub fn max_inflight() -> usize {
    MAX_INFLIGHT.get() as usize
}

/// Server selection and connection bound for a `readthrough.timeout`: 3/4 of it, so a refused
/// connection is reported (`BACKEND`) before the client's deadline.
pub fn server_selection(timeout_ms: i64) -> Duration {
    Duration::from_millis((timeout_ms * 3 / 4).max(1) as u64)
}

static MODE: AtomicU8 = AtomicU8::new(Mode::Delete as u8);

/// `readthrough.invalidation` in force.
pub fn mode() -> Mode {
    Mode::from_u8(MODE.load(Ordering::Relaxed))
}

pub fn set_mode(m: Mode) {
    MODE.store(m as u8, Ordering::Relaxed);
}

/// A string config's text as given (`CONFIG GET` shows it).
pub struct Text(Mutex<String>);

impl Text {
    const fn new() -> Text {
        Text(Mutex::new(String::new()))
    }

    pub fn get(&self) -> String {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn set(&self, text: String) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = text;
    }
}

pub static MONGO_URI: Text = Text::new();
/// `readthrough.mongo-uri-file`: the path (the URI read from it lives in `redis/mongo_uri.rs`).
pub static MONGO_URI_FILE: Text = Text::new();
pub static MAPPINGS_TEXT: Text = Text::new();
pub static INVALIDATION_TEXT: Text = Text::new();
pub static WARM_ON_LOAD: Text = Text::new();

static MAPPINGS: Lazy<RwLock<Arc<Mappings>>> = Lazy::new(Default::default);

/// The mappings in force.
pub fn mappings() -> Arc<Mappings> {
    Arc::clone(&read_mappings())
}

/// The mappings in force, read under their lock: for the hit path's lookups, which hold it for a
/// few hundred instructions and so need no reference of their own (`mappings` takes one: two
/// more atomic read-modify-writes a call).
fn read_mappings() -> RwLockReadGuard<'static, Arc<Mappings>> {
    MAPPINGS.read().unwrap_or_else(|p| p.into_inner())
}

pub fn set_mappings(m: Mappings) {
    let grace = m.iter().any(|m| m.expiry.grace_s.is_some_and(|g| g > 0));
    MAPPING_GRACE.store(grace, Ordering::Relaxed);
    // While the mappings change, the screen lets through the first bytes of both sets.
    let new = m.first_bytes();
    for (word, bits) in FIRST_BYTES.iter().zip(new) {
        word.fetch_or(bits, Ordering::Relaxed);
    }
    *MAPPINGS.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(m);
    for (word, bits) in FIRST_BYTES.iter().zip(new) {
        word.store(bits, Ordering::Relaxed);
    }
}

/// `Mappings::first_bytes` of the mappings in force, readable without the lock.
static FIRST_BYTES: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];

/// False when no mapping can serve `key`, told by its first byte alone: the command filter's
/// exit for the unmapped keys of every read it sees, a few instructions where `format_of`
/// takes the lock and walks the mappings. True means "ask `format_of`".
pub fn may_be_mapped(key: &[u8]) -> bool {
    // An empty key has an empty id under any prefix: never mapped.
    key.first().is_some_and(|&b| {
        FIRST_BYTES[b as usize / 64].load(Ordering::Relaxed) & (1 << (b % 64)) != 0
    })
}

fn resolve_error(key: &[u8], e: ResolveError) -> Error {
    let shown = show_key(key);
    match e {
        ResolveError::NoMapping => Error::NoMapping(shown),
        ResolveError::EmptyId => Error::BadKey(format!(
            "key '{shown}' has an empty id after its mapping's prefix"
        )),
        ResolveError::NotUtf8 => {
            Error::BadKey(format!("the id of key '{shown}' is not valid UTF-8"))
        }
        ResolveError::WrongParts(m) => {
            let sep = m.key.sep().to_string();
            Error::BadKey(format!(
                "key '{shown}' does not fit mapping '{}' ({}.{}): its id has {} non-empty parts \
                 ({}) separated by '{sep}'; nothing loaded",
                m.prefix,
                m.db,
                m.collection,
                m.key.names().len(),
                m.key.names().join(&sep),
            ))
        }
    }
}

/// Fails as `resolve` would; allocates only for the error (the hit path checks keys with this).
pub fn check(key: &[u8]) -> Result<(), Error> {
    check_format(key).map(|_| ())
}

/// The format of the key's mapping, or the error `check` gives; allocates only for the error.
pub fn check_format(key: &[u8]) -> Result<Format, Error> {
    check_read(key).map(|(format, _)| format)
}

/// The format and the grace window (seconds) of the key's mapping, or the error `check` gives;
/// allocates only for the error (the mappings are read under their lock: measured by callgrind,
/// no dearer than a per-thread copy of them).
pub fn check_read(key: &[u8]) -> Result<(Format, i64), Error> {
    read_mappings()
        .check(key)
        .map(|(m, _)| (m.format, grace_of(m)))
        .map_err(|e| resolve_error(key, e))
}

/// The format of the key's mapping; `None` for a key no mapping serves. Never allocates: the
/// command filter asks this for every key of every read it could rewrite.
pub fn format_of(key: &[u8]) -> Option<Format> {
    read_mappings().check(key).ok().map(|(m, _)| m.format)
}

/// The key's target, or the error the client sees.
pub fn resolve(key: &[u8]) -> Result<Target, Error> {
    mappings().resolve(key).map_err(|e| resolve_error(key, e))
}

/// Checks `readthrough.warm-on-load`: space-separated prefixes, or `*` for every mapping.
/// Prefixes are matched against the mappings when the module loads (the mappings may be set
/// after this config); unknown ones are logged there.
pub fn check_warm_on_load(text: &str) -> Result<(), String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.contains(&"*") && words.len() > 1 {
        return Err("readthrough.warm-on-load is either * or a list of prefixes".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warm_on_load_accepts_prefixes_or_a_star() {
        assert!(check_warm_on_load("").is_ok());
        assert!(check_warm_on_load("todo: user:").is_ok());
        assert!(check_warm_on_load("*").is_ok());
        assert!(check_warm_on_load("* todo:").is_err());
    }

    #[test]
    fn every_thread_reads_the_mappings_in_force_at_once_after_a_change() {
        let set = |spec: &str| set_mappings(Mappings::parse(spec).unwrap());
        set("todo:=test.todos:id");
        assert_eq!(format_of(b"todo:1"), Some(Format::String));
        let other = std::thread::spawn(|| format_of(b"todo:1"));
        assert_eq!(other.join().unwrap(), Some(Format::String));
        set("j:=test.todos:id;format=json");
        assert_eq!(format_of(b"todo:1"), None);
        assert_eq!(format_of(b"j:1"), Some(Format::Json));
        assert!(check_read(b"todo:1").is_err());
        assert_eq!(check_read(b"j:1").unwrap(), (Format::Json, 0));
        let other = std::thread::spawn(|| (format_of(b"todo:1"), format_of(b"j:1")));
        assert_eq!(other.join().unwrap(), (None, Some(Format::Json)));
        set("");
        assert_eq!(format_of(b"j:1"), None);
    }

    #[test]
    fn defaults_lie_within_their_bounds() {
        for n in NUMERIC {
            assert!(n.min <= n.default && n.default <= n.max, "{}", n.name);
            assert_eq!(n.get(), n.default, "{}", n.name);
        }
        assert_eq!(server_selection(2000), Duration::from_millis(1500));
        assert_eq!(server_selection(1), Duration::from_millis(1));
    }
}
