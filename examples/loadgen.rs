//! Load generator for `make bench` (tokio, the `redis` crate, the MongoDB Rust driver).
//!
//! Prints one JSON line per result (per second for `demo`), read by `bench/bench.py`.
//!
//! Modes (`--count` distinct ids from `--start`, `--concurrency` tasks, each with its own
//! connection, unless said otherwise):
//! - `rtget`: `RT.GET <prefix><id>`, ids cold: the module's read-through miss path;
//! - `direct`: `find_one({field: {$in: [id, n]}})` straight to MongoDB, the filter the module
//!   sends (the physical limit of a miss);
//! - `aside`: application cache-aside, the code users write today: `GET aside:<id>`, on nil
//!   `find_one`, encode JSON, `SET aside:<id> json EX 3600` (`aside:` must be unmapped);
//! - `pair`: one connection, `--count` ids: `RT.GET` and `direct` in turns (the even ids of
//!   `--start..` by `RT.GET`, the odd ones by `find_one`, which of a pair goes first
//!   alternating), so that whatever slows MongoDB or the machine for a moment slows both sides
//!   alike, and a `PING` after each turn (one Redis round trip, the yardstick of the module's
//!   own cost); prints one line for each of the three, and a fourth, `floor`: each turn's
//!   `find_one` plus its `PING`, the least any read through Redis can take (a round trip to
//!   Redis and the query), the physical limit that `RT.GET`'s tail is held against;
//! - `ping`: `--count` sequential `PING`s on one connection (latency of the main thread);
//! - `flood`: `--count` connections, each sends one `RT.GET` of its own cold id at once and
//!   waits for the reply (used with a stalled MongoDB: every load stays in flight);
//! - `demo`: for `--seconds`, `--concurrency` tasks read `RT.GET <prefix><random id in
//!   1..=ids>`; every second prints throughput and the hit ratio from `INFO readthrough`.
//!
//! Usage: loadgen MODE [--redis URL] [--mongo URI] [--mapping DB.COLL:FIELD] [--prefix P]
//!        [--start N] [--count N] [--concurrency N] [--seconds N] [--ids N]

use mongodb::bson::{doc, Bson, Document};
use redis::AsyncCommands;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Opts {
    mode: String,
    redis: String,
    mongo: String,
    db: String,
    coll: String,
    field: String,
    prefix: String,
    start: u64,
    count: u64,
    concurrency: usize,
    seconds: u64,
    ids: u64,
}

fn opts() -> Opts {
    let mut args = std::env::args().skip(1);
    let usage =
        "usage: loadgen rtget|direct|aside|pair|ping|flood|demo [--redis URL] [--mongo URI] \
                 [--mapping DB.COLL:FIELD] [--prefix P] [--start N] [--count N] \
                 [--concurrency N] [--seconds N] [--ids N]";
    let mode = args.next().unwrap_or_else(|| fail(usage));
    let mut kv = HashMap::new();
    while let Some(k) = args.next() {
        let Some(name) = k.strip_prefix("--") else {
            fail(usage)
        };
        let v = args
            .next()
            .unwrap_or_else(|| fail(&format!("{k} needs a value")));
        kv.insert(name.to_owned(), v);
    }
    let get = |k: &str, d: &str| kv.get(k).cloned().unwrap_or_else(|| d.to_owned());
    let num = |k: &str, d: &str| -> u64 {
        get(k, d)
            .parse()
            .unwrap_or_else(|_| fail(&format!("--{k} must be a number")))
    };
    let mapping = get("mapping", "test.todos:id");
    let (db, rest) = mapping
        .split_once('.')
        .unwrap_or_else(|| fail("--mapping DB.COLL:FIELD"));
    let (coll, field) = rest.rsplit_once(':').unwrap_or((rest, "_id"));
    Opts {
        mode,
        redis: get("redis", "redis://127.0.0.1:6379"),
        mongo: get("mongo", "mongodb://127.0.0.1:27017"),
        db: db.to_owned(),
        coll: coll.to_owned(),
        field: field.to_owned(),
        prefix: get("prefix", "todo:"),
        start: num("start", "1"),
        count: num("count", "1000"),
        concurrency: num("concurrency", "1") as usize,
        seconds: num("seconds", "30"),
        ids: num("ids", "200000"),
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("{msg}");
    std::process::exit(2)
}

fn pct(sorted: &[u64], p: usize) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[(sorted.len() * p).div_ceil(100).max(1) - 1]
}

fn report(mode: &str, concurrency: usize, mut lat: Vec<u64>, secs: f64, errors: u64) {
    lat.sort_unstable();
    println!(
        "{{\"mode\":\"{mode}\",\"concurrency\":{concurrency},\"n\":{},\"errors\":{errors},\
         \"secs\":{secs:.3},\"rps\":{:.1},\"p50_us\":{},\"p99_us\":{},\"max_us\":{}}}",
        lat.len(),
        lat.len() as f64 / secs,
        pct(&lat, 50),
        pct(&lat, 99),
        lat.last().copied().unwrap_or(0)
    );
}

async fn info_counter(conn: &mut redis::aio::MultiplexedConnection, name: &str) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("readthrough")
        .query_async(conn)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("readthrough_{name}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let o = opts();
    let redis = redis::Client::open(o.redis.as_str()).unwrap();
    match o.mode.as_str() {
        "ping" => return ping(&redis, o.count).await,
        "flood" => return flood(&redis, &o).await,
        "demo" => return demo(&redis, &o).await,
        "rtget" | "direct" | "aside" | "pair" => {}
        m => fail(&format!("unknown mode {m}")),
    }
    let mongo = mongodb::Client::with_uri_str(&o.mongo).await.unwrap();
    let coll = mongo.database(&o.db).collection::<Document>(&o.coll);
    // Warm the MongoDB pool so the first request measures no set-up.
    coll.find_one(doc! {}).await.unwrap();

    if o.mode == "pair" {
        return pair(&redis, &coll, &o).await;
    }
    let next = Arc::new(AtomicU64::new(o.start));
    let end = o.start + o.count;
    let mut conns = Vec::new();
    for _ in 0..o.concurrency {
        let mut c = redis.get_multiplexed_async_connection().await.unwrap();
        let _: String = redis::cmd("PING").query_async(&mut c).await.unwrap();
        conns.push(c);
    }
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for mut conn in conns {
        let next = Arc::clone(&next);
        let coll = coll.clone();
        let (mode, prefix, field) = (o.mode.clone(), o.prefix.clone(), o.field.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let id = next.fetch_add(1, Ordering::Relaxed);
                if id >= end {
                    break lat;
                }
                let filter = by_id(&field, id);
                let t = Instant::now();
                let found = match mode.as_str() {
                    "rtget" => rt_get_found(&mut conn, &format!("{prefix}{id}")).await,
                    "direct" => coll.find_one(filter).await.unwrap().is_some(),
                    _ => {
                        let key = format!("aside:{id}");
                        let v: Option<String> = conn.get(&key).await.unwrap();
                        match v {
                            Some(_) => true,
                            None => match coll.find_one(filter).await.unwrap() {
                                Some(d) => {
                                    let json = Bson::Document(d).into_relaxed_extjson().to_string();
                                    let _: () = conn.set_ex(&key, json, 3600).await.unwrap();
                                    true
                                }
                                None => false,
                            },
                        }
                    }
                };
                assert!(found, "id {id} not found");
                lat.push(t.elapsed().as_micros() as u64);
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    report(&o.mode, o.concurrency, all, t0.elapsed().as_secs_f64(), 0);
}

/// The filter the module sends for `id`: the id as a string or as a number.
fn by_id(field: &str, id: u64) -> Document {
    doc! { field: { "$in": [id.to_string(), id as i64] } }
}

/// `RT.GET key`: whether it found a document.
async fn rt_get_found(conn: &mut redis::aio::MultiplexedConnection, key: &str) -> bool {
    let v: Option<String> = redis::cmd("RT.GET")
        .arg(key)
        .query_async(conn)
        .await
        .unwrap();
    v.is_some()
}

async fn pair(redis: &redis::Client, coll: &mongodb::Collection<Document>, o: &Opts) {
    let mut conn = redis.get_multiplexed_async_connection().await.unwrap();
    let _: String = redis::cmd("PING").query_async(&mut conn).await.unwrap();
    let (mut rt, mut direct, mut pings) = (Vec::new(), Vec::new(), Vec::new());
    let mut floor = Vec::new();
    let t0 = Instant::now();
    for (turn, a) in (o.start..o.start + o.count).step_by(2).enumerate() {
        let b = a + 1;
        for rt_side in [turn % 2 == 0, turn % 2 == 1] {
            let t = Instant::now();
            let found = if rt_side {
                rt_get_found(&mut conn, &format!("{}{a}", o.prefix)).await
            } else {
                coll.find_one(by_id(&o.field, b)).await.unwrap().is_some()
            };
            assert!(found, "id {} not found", if rt_side { a } else { b });
            let us = t.elapsed().as_micros() as u64;
            if rt_side {
                rt.push(us)
            } else {
                direct.push(us)
            }
        }
        let t = Instant::now();
        let _: String = redis::cmd("PING").query_async(&mut conn).await.unwrap();
        pings.push(t.elapsed().as_micros() as u64);
        floor.push(direct[turn] + pings[turn]);
    }
    let secs = t0.elapsed().as_secs_f64();
    report("rtget", 1, rt, secs, 0);
    report("direct", 1, direct, secs, 0);
    report("ping", 1, pings, secs, 0);
    report("floor", 1, floor, secs, 0);
}

async fn ping(redis: &redis::Client, count: u64) {
    let mut conn = redis.get_multiplexed_async_connection().await.unwrap();
    let mut lat = Vec::with_capacity(count as usize);
    let t0 = Instant::now();
    for _ in 0..count {
        let t = Instant::now();
        let _: String = redis::cmd("PING").query_async(&mut conn).await.unwrap();
        lat.push(t.elapsed().as_micros() as u64);
    }
    report("ping", 1, lat, t0.elapsed().as_secs_f64(), 0);
}

async fn flood(redis: &redis::Client, o: &Opts) {
    let mut conns = Vec::with_capacity(o.count as usize);
    for _ in 0..o.count {
        conns.push(redis.get_multiplexed_async_connection().await.unwrap());
    }
    eprintln!("flood: {} connections open, sending", conns.len());
    let t0 = Instant::now();
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for (i, mut conn) in conns.into_iter().enumerate() {
        let key = format!("{}{}", o.prefix, o.start + i as u64);
        let errors = Arc::clone(&errors);
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let r: redis::RedisResult<Option<String>> =
                redis::cmd("RT.GET").arg(key).query_async(&mut conn).await;
            if r.is_err() {
                errors.fetch_add(1, Ordering::Relaxed);
            }
            t.elapsed().as_micros() as u64
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.push(t.await.unwrap());
    }
    let errors = errors.load(Ordering::Relaxed);
    report(
        "flood",
        o.count as usize,
        lat,
        t0.elapsed().as_secs_f64(),
        errors,
    );
}

async fn demo(redis: &redis::Client, o: &Opts) {
    let mut info = redis.get_multiplexed_async_connection().await.unwrap();
    let (mut last_hits, mut last_misses) = (
        info_counter(&mut info, "hits").await,
        info_counter(&mut info, "misses").await,
    );
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(o.seconds);
    let mut tasks = Vec::new();
    for t in 0..o.concurrency {
        let mut conn = redis.get_multiplexed_async_connection().await.unwrap();
        let (done, prefix, ids) = (Arc::clone(&done), o.prefix.clone(), o.ids);
        // xorshift64*, seeded per task: uniform ids without an extra dependency.
        let mut s = 0x9E37_79B9_7F4A_7C15u64 ^ ((t as u64 + 1) << 17);
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                s ^= s >> 12;
                s ^= s << 25;
                s ^= s >> 27;
                let id = s.wrapping_mul(0x2545_F491_4F6C_DD1D) % ids + 1;
                let v: Option<String> = redis::cmd("RT.GET")
                    .arg(format!("{prefix}{id}"))
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                assert!(v.is_some(), "id {id} not found");
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let t0 = Instant::now();
    let mut last_done = 0;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    for _ in 0..o.seconds {
        tick.tick().await;
        let d = done.load(Ordering::Relaxed);
        let hits = info_counter(&mut info, "hits").await;
        let misses = info_counter(&mut info, "misses").await;
        let (h, m) = (hits - last_hits, misses - last_misses);
        println!(
            "{{\"mode\":\"demo\",\"t\":{:.1},\"rps\":{},\"hits\":{h},\"misses\":{m},\"hit_ratio\":{:.4}}}",
            t0.elapsed().as_secs_f64(),
            d - last_done,
            h as f64 / (h + m).max(1) as f64
        );
        (last_done, last_hits, last_misses) = (d, hits, misses);
    }
    for t in tasks {
        t.await.unwrap();
    }
}
