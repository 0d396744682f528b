//! Module configs (`readthrough.*`). Each is settable in redis.conf after `loadmodule`, with
//! `MODULE LOADEX ... CONFIG`, and by `CONFIG SET`. String configs are validated here: a bad
//! value is refused with an error and the old value stays in force.

use crate::error::Error;
use crate::loader;
use crate::mapping::{Mappings, ResolveError, Target};
use once_cell::sync::Lazy;
use redis_module::configuration::{
    register_bool_configuration, register_i64_configuration, register_string_configuration,
    ConfigurationContext, ConfigurationFlags, ConfigurationValue,
};
use redis_module::{Context, RedisError, RedisString};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

pub const DEFAULT_URI: &str = "mongodb://127.0.0.1:27017";

pub static TTL: AtomicI64 = AtomicI64::new(3600);
pub static TIMEOUT: AtomicI64 = AtomicI64::new(2000);
pub static MAX_INFLIGHT: AtomicI64 = AtomicI64::new(10_000);
pub static TTL_JITTER: AtomicI64 = AtomicI64::new(10);
pub static NEGATIVE_TTL: AtomicI64 = AtomicI64::new(30);
pub static NEGATIVE_MAX: AtomicI64 = AtomicI64::new(100_000);
pub static GRACE: AtomicI64 = AtomicI64::new(0);
pub static TRANSPARENT: AtomicBool = AtomicBool::new(true);

pub fn transparent() -> bool {
    TRANSPARENT.load(Ordering::Relaxed)
}

/// Bounds of the numeric configs: (min, max).
pub const TTL_RANGE: (i64, i64) = (0, 10 * 365 * 24 * 3600);
pub const TIMEOUT_RANGE: (i64, i64) = (1, 3_600_000);
pub const MAX_INFLIGHT_RANGE: (i64, i64) = (1, 1_000_000);
pub const JITTER_RANGE: (i64, i64) = (0, 1000);
pub const NEGATIVE_MAX_RANGE: (i64, i64) = (0, 10_000_000);

/// PX for a value loaded now (ttl, jitter and grace applied); `None` for no expiry.
pub fn store_ttl_ms() -> Option<i64> {
    crate::policy::store_ttl_ms(
        TTL.load(Ordering::Relaxed),
        TTL_JITTER.load(Ordering::Relaxed),
        GRACE.load(Ordering::Relaxed),
        crate::policy::random(),
    )
}

pub fn grace_s() -> i64 {
    GRACE.load(Ordering::Relaxed)
}

pub fn negative_ttl() -> Duration {
    Duration::from_secs(NEGATIVE_TTL.load(Ordering::Relaxed).max(0) as u64)
}

pub fn negative_max() -> usize {
    NEGATIVE_MAX.load(Ordering::Relaxed) as usize
}

pub fn timeout_ms() -> i64 {
    TIMEOUT.load(Ordering::Relaxed)
}

pub fn max_inflight() -> usize {
    MAX_INFLIGHT.load(Ordering::Relaxed) as usize
}

/// After `readthrough.timeout` changes: bound MongoDB server selection by 3/4 of it, so an
/// unreachable server yields `BACKEND` before the client's `TIMEOUT`.
pub fn on_timeout_changed(_: &ConfigurationContext, _: &str, v: &'static AtomicI64) {
    let ms = (v.load(Ordering::Relaxed) * 3 / 4).max(1) as u64;
    loader::configure(None, Some(Duration::from_millis(ms)));
}

fn text_of(val: &RedisString) -> Result<String, RedisError> {
    val.try_as_str()
        .map(str::to_owned)
        .map_err(|_| RedisError::Str("the value is not valid UTF-8"))
}

/// The value of a string config, as Redis reads it back (`CONFIG GET`).
fn text_value(text: &Mutex<String>) -> RedisString {
    RedisString::create(
        None,
        text.lock().unwrap_or_else(|p| p.into_inner()).as_str(),
    )
}

/// `readthrough.mappings`: the text as given and its parsed form.
pub struct MappingsConfig {
    text: Mutex<String>,
    parsed: RwLock<Arc<Mappings>>,
}

pub static MAPPINGS: Lazy<MappingsConfig> = Lazy::new(|| MappingsConfig {
    text: Mutex::new(String::new()),
    parsed: RwLock::new(Arc::new(Mappings::default())),
});

impl ConfigurationValue<RedisString> for MappingsConfig {
    fn get(&self, _: &ConfigurationContext) -> RedisString {
        text_value(&self.text)
    }

    fn set(&self, _: &ConfigurationContext, val: RedisString) -> Result<(), RedisError> {
        let text = text_of(&val)?;
        let parsed = Mappings::parse(&text).map_err(RedisError::String)?;
        *self.parsed.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(parsed);
        *self.text.lock().unwrap_or_else(|p| p.into_inner()) = text;
        crate::cdc::reconfigure();
        Ok(())
    }
}

pub fn mappings() -> Arc<Mappings> {
    Arc::clone(&MAPPINGS.parsed.read().unwrap_or_else(|p| p.into_inner()))
}

fn resolve_error(key: &[u8], e: ResolveError) -> Error {
    let shown = crate::error::show_key(key);
    match e {
        ResolveError::NoMapping => Error::NoMapping(shown),
        ResolveError::EmptyId => Error::BadKey(format!(
            "key '{shown}' has an empty id after its mapping's prefix"
        )),
        ResolveError::NotUtf8 => {
            Error::BadKey(format!("the id of key '{shown}' is not valid UTF-8"))
        }
    }
}

/// Fails as `resolve` would, without allocating: the hit path checks keys with this.
pub fn check(key: &[u8]) -> Result<(), Error> {
    let parsed = MAPPINGS.parsed.read().unwrap_or_else(|p| p.into_inner());
    parsed
        .check(key)
        .map(|_| ())
        .map_err(|e| resolve_error(key, e))
}

/// The key's target, or the error the client sees.
pub fn resolve(key: &[u8]) -> Result<Target, Error> {
    mappings().resolve(key).map_err(|e| resolve_error(key, e))
}

/// `readthrough.mongo-uri`. Marked sensitive; a value with credentials reaches `set` as a
/// placeholder (see `redact`), so the slowlog and MONITOR never see it.
pub struct UriConfig {
    text: Mutex<String>,
}

pub static MONGO_URI: UriConfig = UriConfig {
    text: Mutex::new(String::new()),
};

impl ConfigurationValue<RedisString> for UriConfig {
    fn get(&self, _: &ConfigurationContext) -> RedisString {
        text_value(&self.text)
    }

    fn set(&self, _: &ConfigurationContext, val: RedisString) -> Result<(), RedisError> {
        let uri = crate::redact::restore(text_of(&val)?).map_err(RedisError::String)?;
        loader::validate_uri(&uri).map_err(RedisError::String)?;
        loader::configure(Some(&uri), None);
        *self.text.lock().unwrap_or_else(|p| p.into_inner()) = uri;
        crate::cdc::reconfigure();
        Ok(())
    }
}

/// A string config whose text is checked by `check` and handed to `apply` once accepted.
pub struct TextConfig {
    text: Mutex<String>,
    check: fn(&str) -> Result<(), String>,
    apply: fn(&str),
}

impl ConfigurationValue<RedisString> for TextConfig {
    fn get(&self, _: &ConfigurationContext) -> RedisString {
        text_value(&self.text)
    }

    fn set(&self, _: &ConfigurationContext, val: RedisString) -> Result<(), RedisError> {
        let text = text_of(&val)?;
        (self.check)(&text).map_err(RedisError::String)?;
        (self.apply)(&text);
        *self.text.lock().unwrap_or_else(|p| p.into_inner()) = text;
        Ok(())
    }
}

impl TextConfig {
    pub fn text(&self) -> String {
        self.text.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// `readthrough.invalidation`: `off`, `delete` or `refresh`.
pub static INVALIDATION: TextConfig = TextConfig {
    text: Mutex::new(String::new()),
    check: |t| crate::cdc::Mode::parse(t).map(|_| ()),
    apply: |t| {
        if let Ok(m) = crate::cdc::Mode::parse(t) {
            crate::cdc::set_mode(m);
        }
    },
};

/// `readthrough.warm-on-load`: prefixes to warm when the module loads (`*` = every mapping).
pub static WARM_ON_LOAD: TextConfig = TextConfig {
    text: Mutex::new(String::new()),
    check: |t| crate::warm::check_on_load(t),
    apply: |_| {},
};

/// Registers every config with Redis, then applies the values given in redis.conf or
/// `MODULE LOADEX ... CONFIG` (or the defaults). Fails if one of them is refused.
pub fn register(ctx: &Context) -> Result<(), String> {
    register_i64_configuration(
        ctx,
        "ttl",
        &TTL,
        3600,
        TTL_RANGE.0,
        TTL_RANGE.1,
        ConfigurationFlags::DEFAULT,
        None,
    );
    register_i64_configuration(
        ctx,
        "timeout",
        &TIMEOUT,
        2000,
        TIMEOUT_RANGE.0,
        TIMEOUT_RANGE.1,
        ConfigurationFlags::DEFAULT,
        Some(Box::new(on_timeout_changed)),
    );
    register_i64_configuration(
        ctx,
        "max-inflight",
        &MAX_INFLIGHT,
        10_000,
        MAX_INFLIGHT_RANGE.0,
        MAX_INFLIGHT_RANGE.1,
        ConfigurationFlags::DEFAULT,
        None,
    );
    for (name, var, default, range) in [
        ("ttl-jitter", &TTL_JITTER, 10, JITTER_RANGE),
        ("negative-ttl", &NEGATIVE_TTL, 30, TTL_RANGE),
        ("negative-max", &NEGATIVE_MAX, 100_000, NEGATIVE_MAX_RANGE),
        ("grace", &GRACE, 0, TTL_RANGE),
    ] {
        register_i64_configuration(
            ctx,
            name,
            var,
            default,
            range.0,
            range.1,
            ConfigurationFlags::DEFAULT,
            None,
        );
    }
    register_bool_configuration(
        ctx,
        "transparent",
        &TRANSPARENT,
        true,
        ConfigurationFlags::DEFAULT,
        None,
    );
    register_string_configuration(
        ctx,
        "mongo-uri",
        &MONGO_URI,
        DEFAULT_URI,
        ConfigurationFlags::SENSITIVE,
        None,
    );
    register_string_configuration(
        ctx,
        "mappings",
        &*MAPPINGS,
        "",
        ConfigurationFlags::DEFAULT,
        None,
    );
    register_string_configuration(
        ctx,
        "invalidation",
        &INVALIDATION,
        "delete",
        ConfigurationFlags::DEFAULT,
        None,
    );
    register_string_configuration(
        ctx,
        "warm-on-load",
        &WARM_ON_LOAD,
        "",
        ConfigurationFlags::DEFAULT,
        None,
    );
    if crate::ffi::load_configs(ctx) {
        Ok(())
    } else {
        Err("a readthrough.* config given at load time was refused (see the line above)".into())
    }
}
