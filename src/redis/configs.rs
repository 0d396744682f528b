//! The `readthrough.*` module configs as Redis sees them: settable in redis.conf after
//! `loadmodule`, with `MODULE LOADEX ... CONFIG`, and by `CONFIG SET`. A value is checked here
//! and refused with an error (the old value stays in force); an accepted one goes into the
//! settings snapshot (`state/settings.rs`), and the engine is told (`callbacks`).

use crate::core::format::Format;
use crate::core::invalidation::Mode;
use crate::core::mapping::Mappings;
use crate::core::uri;
use crate::redis::callbacks::{self, Changed};
use crate::redis::events::load_configs;
use crate::redis::main_thread::MainThread;
use crate::redis::mongo_uri;
use crate::redis::panic_guard::catch;
use crate::redis::server_commands;
use crate::state::config_redaction;
use crate::state::settings::{self, Numeric, Text};
use redis_module::configuration::{
    register_bool_configuration, register_i64_configuration, register_string_configuration,
    ConfigurationContext, ConfigurationFlags, ConfigurationValue,
};
use redis_module::{Context, RedisError, RedisString};
use std::sync::atomic::AtomicI64;

/// A string config: where its text is kept; `accept`, which checks a new value and, if it
/// passes, puts what it means in force (the parsed mappings, the mode) and returns the text to
/// keep (a redacted URI's real text); and what the engine is told once it is accepted.
pub struct StringConfig {
    text: &'static Text,
    accept: fn(String) -> Result<String, String>,
    /// Called with the accepted text once it is stored.
    changed: Option<fn(&str)>,
}

impl ConfigurationValue<RedisString> for StringConfig {
    fn get(&self, _: &ConfigurationContext) -> RedisString {
        RedisString::create(None, self.text.get().as_str())
    }

    fn set(&self, _: &ConfigurationContext, val: RedisString) -> Result<(), RedisError> {
        let text = val
            .try_as_str()
            .map_err(|_| refused("the value is not valid UTF-8".into()))?
            .to_owned();
        let accepted = catch("a config setter", || (self.accept)(text))
            .unwrap_or_else(|| Err("internal error while checking the value".into()))
            .map_err(refused)?;
        self.text.set(accepted.clone());
        if let Some(changed) = self.changed {
            catch("a config change", || changed(&accepted));
        }
        Ok(())
    }
}

/// The one way a refused config value becomes a Redis error.
fn refused(why: String) -> RedisError {
    RedisError::String(why)
}

/// Tells the engine a config changed.
fn notify(change: Changed) {
    (callbacks::get().config_changed)(change)
}

/// `readthrough.mongo-uri`. Marked sensitive; a value with credentials reaches the setter as a
/// placeholder (see `state/config_redaction.rs`), so the slowlog and MONITOR never see it. Not in
/// force while `readthrough.mongo-uri-file` names a file (see `mongo_uri.rs`).
static MONGO_URI: StringConfig = StringConfig {
    text: &settings::MONGO_URI,
    accept: |t| {
        let uri = config_redaction::restore(t)?;
        uri::validate(&uri)?;
        Ok(uri)
    },
    changed: Some(mongo_uri::uri_set),
};

/// `readthrough.mongo-uri-file`: a file holding the URI; `CONFIG GET` shows the path only.
static MONGO_URI_FILE: StringConfig = StringConfig {
    text: &settings::MONGO_URI_FILE,
    accept: |path| mongo_uri::check_path(&path).map(|_| path),
    changed: Some(|_| mongo_uri::path_set()),
};

/// `readthrough.mappings`: parsed here; the parsed form goes into the settings snapshot.
static MAPPINGS: StringConfig = StringConfig {
    text: &settings::MAPPINGS_TEXT,
    accept: |t| {
        let parsed = Mappings::parse(&t)?;
        if parsed.uses(Format::Json) && !server_commands::exists(MainThread::here(), "json.set") {
            let why = "a mapping with format=json needs the JSON.SET command, which this server \
                       does not have: load RedisJSON (or Valkey's JSON module) before readthrough, \
                       or use Redis 8";
            redis_module::logging::log_warning(format!("readthrough: {why}").as_str());
            return Err(why.into());
        }
        settings::set_mappings(parsed);
        Ok(t)
    },
    changed: Some(|_| notify(Changed::Mappings)),
};

/// `readthrough.invalidation`: `off`, `delete` or `refresh`.
static INVALIDATION: StringConfig = StringConfig {
    text: &settings::INVALIDATION_TEXT,
    accept: |t| {
        settings::set_mode(Mode::parse(&t)?);
        Ok(t)
    },
    changed: Some(|_| notify(Changed::Invalidation)),
};

/// `readthrough.warm-on-load`: prefixes to warm when the module loads (`*` = every mapping).
static WARM_ON_LOAD: StringConfig = StringConfig {
    text: &settings::WARM_ON_LOAD,
    accept: |t| settings::check_warm_on_load(&t).map(|_| t),
    changed: None,
};

fn on_timeout_changed(_: &ConfigurationContext, _: &str, v: &'static AtomicI64) {
    let ms = v.load(std::sync::atomic::Ordering::Relaxed);
    catch("a config change", || {
        (callbacks::get().config_changed)(Changed::TimeoutMs(ms))
    });
}

fn register_numeric(ctx: &Context, n: &'static Numeric) {
    type OnChanged = Box<dyn Fn(&ConfigurationContext, &str, &'static AtomicI64)>;
    let on_changed: Option<OnChanged> = if std::ptr::eq(n, &settings::TIMEOUT) {
        Some(Box::new(on_timeout_changed))
    } else {
        None
    };
    register_i64_configuration(
        ctx,
        n.name,
        &n.value,
        n.default,
        n.min,
        n.max,
        ConfigurationFlags::DEFAULT,
        on_changed,
    );
}

/// Registers every config with Redis, then applies the values given in redis.conf or
/// `MODULE LOADEX ... CONFIG` (or the defaults). Fails if one of them is refused.
pub fn register(ctx: &Context) -> Result<(), String> {
    for n in settings::NUMERIC {
        register_numeric(ctx, n);
    }
    register_bool_configuration(
        ctx,
        "transparent",
        &settings::TRANSPARENT,
        true,
        ConfigurationFlags::DEFAULT,
        None,
    );
    register_bool_configuration(
        ctx,
        "inline-loads",
        &settings::INLINE_LOADS,
        true,
        ConfigurationFlags::DEFAULT,
        None,
    );
    let strings: [(&str, &'static StringConfig, &str, ConfigurationFlags); 5] = [
        (
            "mongo-uri",
            &MONGO_URI,
            settings::DEFAULT_URI,
            ConfigurationFlags::SENSITIVE,
        ),
        (
            "mongo-uri-file",
            &MONGO_URI_FILE,
            "",
            ConfigurationFlags::DEFAULT,
        ),
        ("mappings", &MAPPINGS, "", ConfigurationFlags::DEFAULT),
        (
            "invalidation",
            &INVALIDATION,
            "delete",
            ConfigurationFlags::DEFAULT,
        ),
        (
            "warm-on-load",
            &WARM_ON_LOAD,
            "",
            ConfigurationFlags::DEFAULT,
        ),
    ];
    for (name, config, default, flags) in strings {
        register_string_configuration(ctx, name, config, default, flags, None);
    }
    if load_configs(ctx) {
        Ok(())
    } else {
        Err("a readthrough.* config given at load time was refused (see the line above)".into())
    }
}
