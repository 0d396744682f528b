//! Load generator for `make bench` (tokio, the `redis` crate, the MongoDB Rust driver).
//!
//! Reads `count` distinct cold ids starting at `start` with `concurrency` tasks, each with its
//! own connection, and prints one JSON line: requests, seconds, rps, p50/p99 latency in µs.
//!
//! Modes:
//! - `rtget`: `RT.GET <prefix><id>` (the module's read-through miss path);
//! - `direct`: `find_one({field: {$in: [id, n]}})` straight to MongoDB, the filter the module
//!   sends (the physical limit of a miss);
//! - `aside`: application cache-aside: `GET aside:<id>`, on nil `find_one`, encode JSON, `SET
//!   aside:<id> json EX 3600` (the code users write today; `aside:` must be unmapped).
//!
//! Usage: loadgen MODE REDIS_URL MONGO_URI DB.COLL:FIELD PREFIX START COUNT CONCURRENCY

use mongodb::bson::{doc, Bson, Document};
use redis::AsyncCommands;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

#[tokio::main]
async fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() != 9 {
        eprintln!("usage: loadgen rtget|direct|aside REDIS_URL MONGO_URI DB.COLL:FIELD PREFIX START COUNT CONCURRENCY");
        std::process::exit(2);
    }
    let mode = a[1].clone();
    let (db, rest) = a[4].split_once('.').expect("DB.COLL:FIELD");
    let (coll, field) = rest.rsplit_once(':').expect("DB.COLL:FIELD");
    let prefix = a[5].clone();
    let start: u64 = a[6].parse().unwrap();
    let count: u64 = a[7].parse().unwrap();
    let concurrency: usize = a[8].parse().unwrap();

    let redis = redis::Client::open(a[2].as_str()).unwrap();
    let mongo = mongodb::Client::with_uri_str(&a[3]).await.unwrap();
    let coll = mongo.database(db).collection::<Document>(coll);
    // Warm the MongoDB pool and one Redis connection so the first request measures no set-up.
    coll.find_one(doc! {}).await.unwrap();

    let next = Arc::new(AtomicU64::new(start));
    let end = start + count;
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let next = Arc::clone(&next);
        let mut conn = redis.get_multiplexed_async_connection().await.unwrap();
        let coll = coll.clone();
        let (mode, prefix, field) = (mode.clone(), prefix.clone(), field.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let id = next.fetch_add(1, Ordering::Relaxed);
                if id >= end {
                    break lat;
                }
                let filter = doc! { &field: { "$in": [id.to_string(), id as i64] } };
                let t = Instant::now();
                let found = match mode.as_str() {
                    "rtget" => {
                        let v: Option<String> = redis::cmd("RT.GET")
                            .arg(format!("{prefix}{id}"))
                            .query_async(&mut conn)
                            .await
                            .unwrap();
                        v.is_some()
                    }
                    "direct" => coll.find_one(filter).await.unwrap().is_some(),
                    "aside" => {
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
                    m => panic!("unknown mode {m}"),
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
    let secs = t0.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: usize| all[((all.len() * p).div_ceil(100)).max(1) - 1];
    println!(
        "{{\"mode\":\"{mode}\",\"concurrency\":{concurrency},\"n\":{},\"secs\":{secs:.3},\"rps\":{:.1},\"p50_us\":{},\"p99_us\":{}}}",
        all.len(),
        all.len() as f64 / secs,
        pct(50),
        pct(99)
    );
}
