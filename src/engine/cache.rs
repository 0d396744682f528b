//! The small store the engine's decisions write to: Redis under its lock in the module, a map in
//! unit tests (in the style of redis-cell, whose rate-limit logic sees a store trait with a
//! Redis and an in-memory implementation). Decisions about what to write, where and under which
//! condition live in the engine and are tested without Redis.

use crate::core::format::Loaded;
#[cfg(test)]
use crate::core::format::Value;
use crate::redis::gil::Gil;
use crate::redis::keys::{is_replica, probe, Held};
use crate::redis::write::{self, Only};
use crate::state::{counters, settings};

pub trait Cache {
    /// False on a replica: the module never writes there.
    fn writable(&self) -> bool;
    /// Stores `value` in its format in `db` with the TTL policy, if `only` holds and the key
    /// holds no other type: `Some(written)`, `None` if the write failed.
    fn set(&mut self, db: i32, key: &[u8], value: &Loaded, only: Option<Only>) -> Option<bool>;
    /// `DEL keys` in `db`: how many existed, `None` if the write failed.
    fn del(&mut self, db: i32, keys: &[&[u8]]) -> Option<i64>;
    /// True when `key` holds a value in `db`.
    fn holds(&mut self, db: i32, key: &[u8]) -> bool;
}

/// Redis itself, under its lock.
pub struct RedisCache<'a>(pub &'a Gil);

impl Cache for RedisCache<'_> {
    fn writable(&self) -> bool {
        !is_replica(&self.0.context())
    }

    /// Every write of a loaded value comes here (fills, refreshes, batches, warm-ups, change
    /// events): one value larger than `readthrough.max-value-bytes` is not stored, and one that
    /// would overwrite the key deletes it instead, so an older value is not served on.
    fn set(&mut self, db: i32, key: &[u8], value: &Loaded, only: Option<Only>) -> Option<bool> {
        if value.size() as i64 > settings::MAX_VALUE_BYTES.get() {
            counters::count(&counters::TOO_LARGE);
            if only != Some(Only::Absent) {
                write::delete(self.0, db, &[key]);
            }
            return Some(false);
        }
        write::store_value(self.0, db, key, value, only)
    }

    fn del(&mut self, db: i32, keys: &[&[u8]]) -> Option<i64> {
        write::delete(self.0, db, keys)
    }

    fn holds(&mut self, db: i32, key: &[u8]) -> bool {
        self.0.select_db(db) && probe(&self.0.context(), key, false).0 != Held::Nothing
    }
}

/// An in-memory cache for the engine's unit tests.
#[cfg(test)]
#[derive(Default)]
pub struct MemCache {
    pub values: std::collections::HashMap<(i32, Vec<u8>), Value>,
    pub replica: bool,
}

#[cfg(test)]
impl MemCache {
    pub fn put(&mut self, db: i32, key: &str, json: &str) {
        self.values
            .insert((db, key.into()), Value::String(json.into()));
    }

    /// The text of a string or JSON value.
    pub fn get(&self, db: i32, key: &str) -> Option<&str> {
        match self.values.get(&(db, key.as_bytes().to_vec()))? {
            Value::String(t) | Value::Json(t) => Some(t),
            Value::Hash(_) => Some("<hash>"),
        }
    }
}

#[cfg(test)]
impl Cache for MemCache {
    fn writable(&self) -> bool {
        !self.replica
    }

    fn set(&mut self, db: i32, key: &[u8], value: &Loaded, only: Option<Only>) -> Option<bool> {
        let k = (db, key.to_vec());
        let held = self.values.get(&k).map(Value::format);
        let write = match (only, held) {
            (Some(Only::Absent), held) => held.is_none(),
            (_, Some(f)) => f == value.format(),
            (Some(Only::Present), None) => false,
            (None, None) => true,
        };
        if write {
            self.values.insert(k, value.value.clone());
        }
        Some(write)
    }

    fn del(&mut self, db: i32, keys: &[&[u8]]) -> Option<i64> {
        let gone = keys
            .iter()
            .filter(|k| self.values.remove(&(db, k.to_vec())).is_some())
            .count();
        Some(gone as i64)
    }

    fn holds(&mut self, db: i32, key: &[u8]) -> bool {
        self.values.contains_key(&(db, key.to_vec()))
    }
}
