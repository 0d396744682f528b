//! A soak: 100,000 misses with clients that disconnect while blocked and loads that time out.
//! Redis's `used_memory` and the process RSS must come back to their baseline: nothing grows
//! per request.
mod common;

use common::*;
use std::io::Write;
use std::time::{Duration, Instant};

const ROUNDS: usize = 10;
const PER_ROUND: usize = 10_000;
const DOCS: usize = 10_000;

fn rss_kb(pid: u32) -> i64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// One round: PER_ROUND distinct keys (a sixth of them absent from MongoDB), 32 clients at once;
/// every tenth request is sent on a connection that is closed without waiting for the reply.
fn round(redis: &Redis) -> (usize, usize) {
    let threads = 32;
    let results: Vec<(usize, usize)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let mut c = redis.conn();
                    let (mut ok, mut errors) = (0, 0);
                    for i in (t..PER_ROUND).step_by(threads) {
                        let key = format!("todo:{}", i % (DOCS * 6 / 5) + 1);
                        if i % 10 == 0 {
                            let mut s =
                                std::net::TcpStream::connect(("127.0.0.1", redis.port)).unwrap();
                            let cmd = format!("*2\r\n$6\r\nRT.GET\r\n${}\r\n{key}\r\n", key.len());
                            s.write_all(cmd.as_bytes()).unwrap();
                            continue; // dropped: disconnects, maybe while blocked
                        }
                        match rt_get(&mut c, &key) {
                            Ok(_) => ok += 1,
                            Err(e) => {
                                let e = e.to_string();
                                assert!(e.contains("TIMEOUT") || e.contains("BUSY"), "{e}");
                                errors += 1;
                            }
                        }
                    }
                    (ok, errors)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    results.iter().fold((0, 0), |(a, b), (x, y)| (a + x, b + y))
}

fn settle(redis: &Redis) {
    wait_until("loads to finish", Duration::from_secs(60), || {
        redis.info()["inflight"] == 0 && redis.info_field("clients", "blocked_clients") == 0
    });
    wait_until(
        "the disconnected clients to go",
        Duration::from_secs(30),
        || redis.info_field("clients", "connected_clients") == 1, // the one asking
    );
    // SYNC: Valkey 8 flushes lazily by default (lazyfree-lazy-user-flush yes), so the memory
    // measured next would still hold the flushed values.
    let _: () = redis::cmd("FLUSHALL")
        .arg("SYNC")
        .query(&mut redis.conn())
        .unwrap();
    // The server lends a module a temporary client per blocked client's reply and keeps them in
    // a pool after use; its cron frees the unused ones above eight, at most 50 a pass, every
    // 100 ms (modulesCron). Right after a round that pool still holds up to ~600 KB, more or
    // less of it by timing alone, so memory is read once it has stayed put for five passes.
    let mut last = (redis.info_field("memory", "used_memory"), Instant::now());
    wait_until("used_memory to settle", Duration::from_secs(10), || {
        let now = redis.info_field("memory", "used_memory");
        if now != last.0 {
            last = (now, Instant::now());
        }
        last.1.elapsed() >= Duration::from_millis(500)
    });
}

#[test]
fn a_hundred_thousand_misses_with_disconnects_and_timeouts_leave_memory_at_baseline() {
    let Some(mongo) = Mongo::dedicated("soak") else {
        return;
    };
    let db = unique_db("soak");
    let docs: Vec<_> = (1..=DOCS)
        .map(|i| mongodb::bson::doc! {"id": i.to_string(), "name": format!("todo {i}"), "pad": "x".repeat(200)})
        .collect();
    mongo.insert(&db, "todos", docs);
    mongo.create_index(&db, "todos", "id");
    let proxy = HoldingProxy::start(mongo.port);
    let redis = Redis::with(&proxy.uri(), &mappings(&db))
        .config("timeout", "300")
        .config("negative-ttl", "0")
        .args(&["--maxclients", "10000"])
        .start();
    let pid = redis.pid();
    let (mut baseline, mut total_ok, mut total_err) = (None, 0, 0);
    let mut samples = Vec::new();
    for r in 1..=ROUNDS {
        // Two rounds stall MongoDB (its queries held) until a waiting client has timed out.
        let (ok, errors) = std::thread::scope(|s| {
            if r == 4 || r == 8 {
                s.spawn(|| {
                    let before = redis.info()["timeouts"];
                    proxy.hold();
                    wait_until("a client to time out", Duration::from_secs(60), || {
                        redis.info()["timeouts"] > before
                    });
                    proxy.release();
                });
            }
            round(&redis)
        });
        total_ok += ok;
        total_err += errors;
        settle(&redis);
        let sample = (redis.info_field("memory", "used_memory"), rss_kb(pid));
        eprintln!(
            "round {r}: {ok} answered, {errors} errors; used_memory {} B, RSS {} kB",
            sample.0, sample.1
        );
        samples.push(sample);
        if r == 2 {
            baseline = Some(sample); // after pools, threads and the _id index have filled
        }
    }
    let info = redis.info();
    eprintln!(
        "misses {}, loads {}, timeouts {}, answered {total_ok}, errors {total_err}",
        info["misses"], info["loads"], info["timeouts"]
    );
    assert!(
        info["misses"] >= (ROUNDS * PER_ROUND * 95 / 100) as i64,
        "{info:?}"
    );
    assert!(info["timeouts"] > 0, "some loads timed out");
    let (base_used, base_rss) = baseline.unwrap();
    let (used, rss) = *samples.last().unwrap();
    let requests = ((ROUNDS - 2) * PER_ROUND) as i64;
    eprintln!(
        "after {requests} more requests: used_memory {:+} B, RSS {:+} kB",
        used - base_used,
        rss - base_rss
    );
    // Once the server's pool has settled, a growth per request shows: 64 KB over 80,000
    // requests is under a byte a request. (The module's own heap is outside used_memory, under
    // the RSS check below.)
    assert!(
        used - base_used < 64 * 1024,
        "used_memory grew by {} B",
        used - base_used
    );
    assert!(
        (rss - base_rss) * 1024 / requests < 64,
        "RSS grew by {} kB over {requests} requests",
        rss - base_rss
    );
    let pong: String = redis::cmd("PING").query(&mut redis.conn()).unwrap();
    assert_eq!(pong, "PONG");
}
