//! Test harness: real servers on free ports, real clients. Split by concern:
//! - `process.rs`: a server process under a watchdog, stopped on drop;
//! - `mongo.rs`: MongoDB: SecantusDB from the project's virtualenv (`.venv/bin/secantusd-py`,
//!   or `$SECANTUSD`), or an external server when `READTHROUGH_TEST_MONGO_URI` is set. Most
//!   tests share one server per test binary and keep apart by using their own database; tests
//!   that stop or stall MongoDB start a dedicated one (skipped with an external URI). Also the
//!   shared test data (`seed`, `mappings`);
//! - `redis_server.rs`: one `redis-server --loadmodule target/release/libreadthrough.so` per
//!   test (or `$READTHROUGH_MODULE`; the module is built once by `make test`, never here);
//!   replicas and cluster nodes;
//! - `info.rs`: the one way tests read `INFO` (and what they wait on through it);
//! - `network.rs`: TCP proxies that make MongoDB slow or hold it still, and a silent server.
//!
//! Every server writes its output to a log file under `target/test-tmp`, runs under a small
//! shell watchdog that kills it when the test process goes away, and is stopped on drop.
#![allow(dead_code, unused_imports)]

mod info;
mod mongo;
mod network;
mod process;
mod redis_server;

pub use mongo::*;
pub use network::*;
pub use process::*;
pub use redis_server::*;

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn module_path() -> PathBuf {
    let p = std::env::var_os("READTHROUGH_MODULE")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/release/libreadthrough.so"));
    assert!(
        p.exists(),
        "{} not found: build it first (`make test` does)",
        p.display()
    );
    p
}

/// Aborts the test binary if it runs longer than 15 minutes (every binary takes under two
/// here): a test waiting for a reply that never comes fails instead of hanging CI. Started by
/// the first connection.
pub fn watchdog() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        std::thread::spawn(|| {
            std::thread::sleep(Duration::from_secs(15 * 60));
            eprintln!("watchdog: this test binary ran for 15 minutes; aborting (a hang)");
            std::process::abort();
        });
    });
}

/// Says the calling test is skipped, and why (the caller then returns). Under `CI=true` a skip
/// is a failure naming what is missing: CI must run every test. Each skip is also added to
/// `target/test-skips.txt`, which `make test` counts and lists.
pub fn skip(why: &str) {
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("CI=true: {test} would be skipped: {why}");
    }
    eprintln!("skipped: {why}");
    let line = format!("{test}: {why}\n");
    let path = root().join("target/test-skips.txt");
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        use std::io::Write;
        let _ = f.write_all(line.as_bytes());
    }
}

/// The JSON module for the `format=json` tests, the one users of the server under test load:
/// on Valkey, valkey-json (`$VALKEY_JSON_MODULE`, else the build of `make rejson` in
/// `target/valkey-json`); on Redis, RedisJSON (`$REJSON_MODULE`, a path, empty when the server
/// has JSON built in as Redis 8 does; else `target/rejson`). `None` (with the reason) when it is
/// not there: those tests say they are skipped.
pub fn json_module() -> Result<Option<PathBuf>, String> {
    let (env, built, make) = if server_version().0 == "valkey" {
        (
            "VALKEY_JSON_MODULE",
            "target/valkey-json/libjson.so",
            "../shared/vendor/valkey-json-1.0.2.tar.gz",
        )
    } else {
        (
            "REJSON_MODULE",
            "target/rejson/librejson.so",
            "../shared/vendor/RedisJSON-2.4.19.tar.gz",
        )
    };
    if let Some(p) = std::env::var_os(env) {
        return Ok((!p.is_empty()).then(|| PathBuf::from(p)));
    }
    let p = root().join(built);
    if p.exists() {
        Ok(Some(p))
    } else {
        Err(format!(
            "{} not built (`make rejson` builds it from {make})",
            p.display()
        ))
    }
}

/// Which JSON module `json_module` loads on the server under test.
pub fn json_module_name() -> &'static str {
    if server_version().0 == "valkey" {
        "valkey-json"
    } else {
        "RedisJSON"
    }
}

/// The server every test runs: `$READTHROUGH_TEST_SERVER` (a path to `redis-server` or
/// `valkey-server`), else Debian's `redis-server` from the PATH. `make test-matrix` sets it.
pub fn server_program() -> String {
    std::env::var("READTHROUGH_TEST_SERVER")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "redis-server".into())
}

/// The server's version as `(name, major, minor)`: `("redis", 7, 0)`, `("valkey", 8, 0)`.
pub fn server_version() -> (String, u32, u32) {
    static V: OnceLock<(String, u32, u32)> = OnceLock::new();
    V.get_or_init(|| {
        let out = std::process::Command::new(server_program())
            .arg("--version")
            .output()
            .expect("the server's --version");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        // "Redis server v=7.0.15 sha=..." or "Valkey server v=8.0.1 sha=..."
        let name = text.split_whitespace().next().unwrap_or("").to_lowercase();
        let v = text
            .split_whitespace()
            .find_map(|w| w.strip_prefix("v="))
            .unwrap_or("0.0");
        let mut parts = v.split('.').map(|p| p.parse().unwrap_or(0));
        (name, parts.next().unwrap_or(0), parts.next().unwrap_or(0))
    })
    .clone()
}

/// A port that is free now and that no other test of this process has been given. Linux hands a
/// just-released port to the next `bind(0)`, so without the record two tests running at once
/// could both get it: one server then fails to bind while its test talks to the other's (seen
/// as a "stalled" MongoDB that still answered).
pub fn free_port() -> u16 {
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// A fresh directory under target/test-tmp.
pub fn temp_dir(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let d = root()
        .join("target/test-tmp")
        .join(format!("{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A database name no other test uses.
pub fn unique_db(name: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{name}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Waits until `ok` is true (checked every 20 ms), or fails the test after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, ok: impl FnMut() -> bool) {
    assert!(wait_for(timeout, ok), "timed out waiting for {what}");
}

/// Whether `ok` became true within `timeout` (checked every 20 ms): for a failure message that
/// says more than `wait_until`'s.
pub fn wait_for(timeout: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while !ok() {
        if start.elapsed() >= timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// The Redis error of a reply: its code and its text.
pub fn err_of<T: std::fmt::Debug>(r: redis::RedisResult<T>) -> String {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => match (e.code(), e.detail()) {
            (Some(code), Some(detail)) => format!("{code} {detail}"),
            _ => format!("(not a server error) {e}"),
        },
    }
}

/// `CONFIG SET name value`, which must be accepted.
pub fn config_set(c: &mut redis::Connection, name: &str, value: &str) {
    redis::cmd("CONFIG")
        .arg("SET")
        .arg(name)
        .arg(value)
        .query::<()>(c)
        .unwrap_or_else(|e| panic!("CONFIG SET {name}: {e}"));
}

pub fn rt_get(c: &mut redis::Connection, key: &str) -> redis::RedisResult<Option<String>> {
    redis::cmd("RT.GET").arg(key).query(c)
}

/// The `name` field of a todo as `RT.GET` or `GET` returned it.
pub fn name_of(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(|s| json(s)["name"].as_str().unwrap_or_default().to_owned())
}

pub fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

/// What Redis holds at `key`, read without triggering a load: `KEYS` with the key as an exact
/// pattern first (it walks the keyspace without a lookup, so no key-miss prefetch starts, as it
/// would for `EXISTS`), then the value. Both in one script, so that nothing (a change event's
/// delete, say) lands between them.
pub fn stored(c: &mut redis::Connection, key: &str) -> Option<String> {
    const READ: &str = "if #redis.call('KEYS', ARGV[1]) == 1 then \
                        return redis.call('GET', KEYS[1]) end return false";
    let mut pattern = String::new();
    for ch in key.chars() {
        if matches!(ch, '*' | '?' | '[' | ']' | '\\') {
            pattern.push('\\');
        }
        pattern.push(ch);
    }
    redis::cmd("EVAL")
        .arg(READ)
        .arg(1)
        .arg(key)
        .arg(pattern)
        .query(c)
        .unwrap()
}

/// The opening most tests share: the shared MongoDB, a fresh database seeded with `docs` todos
/// (`seed`), a redis-server with the module on the standard mappings (`mappings`), and one
/// connection to it. Tests take the parts they use:
/// `let Fixture { redis, mut c, .. } = fixture("name", 3);`
/// Always bind `redis` (`redis: _redis` if unused): a field left to `..` is dropped at once,
/// and the server with it.
pub struct Fixture {
    pub mongo: &'static Mongo,
    pub db: String,
    pub redis: Redis,
    pub c: redis::Connection,
}

pub fn fixture(name: &str, docs: usize) -> Fixture {
    fixture_with(name, docs, |r| r)
}

/// `fixture` with the server's options: `fixture_with("name", 3, |r| r.config("ttl", 5))`.
pub fn fixture_with(
    name: &str,
    docs: usize,
    options: impl FnOnce(RedisBuilder) -> RedisBuilder,
) -> Fixture {
    let mongo = Mongo::shared();
    let db = seed(mongo, name, docs);
    let redis = options(Redis::with(&mongo.uri, &mappings(&db))).start();
    let c = redis.conn();
    Fixture {
        mongo,
        db,
        redis,
        c,
    }
}

/// `CONFIG GET name`: its value.
pub fn config_get(c: &mut redis::Connection, name: &str) -> String {
    let v: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg(name)
        .query(c)
        .unwrap_or_else(|e| panic!("CONFIG GET {name}: {e}"));
    v.get(1)
        .cloned()
        .unwrap_or_else(|| panic!("CONFIG GET {name}: no such config ({v:?})"))
}

/// `CONFIG SET name value`, which must be refused: the error.
pub fn config_refused(c: &mut redis::Connection, name: &str, value: &str) -> String {
    err_of(
        redis::cmd("CONFIG")
            .arg("SET")
            .arg(name)
            .arg(value)
            .query::<()>(c),
    )
}

/// The server with its JSON module (RedisJSON, or valkey-json on Valkey) loaded before the
/// module; `None` (the test says it is skipped) when it is not available.
pub fn json_redis(mongo_uri: &str, mappings: &str, extra: &[&str]) -> Option<Redis> {
    match json_module() {
        Ok(Some(path)) => {
            let path = path.to_string_lossy().into_owned();
            let mut args = vec!["--loadmodule", path.as_str()];
            args.extend_from_slice(extra);
            Some(Redis::with(mongo_uri, mappings).args(&args).start())
        }
        Ok(None) => Some(Redis::with(mongo_uri, mappings).args(extra).start()),
        Err(why) => {
            skip(&why);
            None
        }
    }
}
