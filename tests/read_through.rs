//! RT.GET end to end: a real redis-server with the module, a real MongoDB-compatible server,
//! real clients.

mod common;

use common::*;
use mongodb::bson::{doc, oid::ObjectId};
use redis::Value;
use std::time::{Duration, Instant};

#[test]
fn hit_is_served_from_redis_without_a_load() {
    let Fixture { redis, mut c, .. } = fixture("hit", 1);
    let _: () = redis::cmd("SET")
        .arg("todo:1")
        .arg("cached text")
        .query(&mut c)
        .unwrap();
    assert_eq!(
        rt_get(&mut c, "todo:1").unwrap().as_deref(),
        Some("cached text")
    );
    let info = redis.info();
    assert_eq!((info["hits"], info["misses"], info["loads"]), (1, 0, 0));
}

#[test]
fn miss_loads_the_document_stores_it_with_the_ttl_and_get_returns_the_same_text() {
    let Fixture { redis, mut c, .. } = fixture("miss", 3);

    let v = rt_get(&mut c, "todo:2").unwrap().expect("found");
    let doc = json(&v);
    assert_eq!(doc["id"], "2");
    assert_eq!(doc["name"], "todo 2");
    assert!(
        doc["_id"]["$oid"].is_string(),
        "ObjectId as relaxed extended JSON: {v}"
    );
    let stored = common::stored(&mut c, "todo:2");
    assert_eq!(stored.as_deref(), Some(v.as_str()));
    let pttl: i64 = redis::cmd("PTTL").arg("todo:2").query(&mut c).unwrap();
    assert!(
        pttl > 3_590_000 && pttl <= 3_960_000,
        "default ttl 3600 s + up to 10% jitter, got {pttl} ms"
    );

    config_set(&mut c, "readthrough.ttl", "100");
    rt_get(&mut c, "todo:1").unwrap().expect("found");
    let pttl: i64 = redis::cmd("PTTL").arg("todo:1").query(&mut c).unwrap();
    assert!(
        pttl > 90_000 && pttl <= 110_000,
        "ttl 100 s + up to 10% jitter, got {pttl} ms"
    );

    config_set(&mut c, "readthrough.ttl", "0");
    rt_get(&mut c, "todo:3").unwrap().expect("found");
    let pttl: i64 = redis::cmd("PTTL").arg("todo:3").query(&mut c).unwrap();
    assert_eq!(pttl, -1, "ttl 0 means no expiry");

    // The second read is a hit and does not load again. (MongoDB's own query counter cannot
    // tell: the shared server serves the tests running beside this one.)
    let loads = redis.info()["loads"];
    assert_eq!(
        rt_get(&mut c, "todo:2").unwrap().as_deref(),
        Some(v.as_str())
    );
    assert_eq!(redis.info()["loads"], loads);
    let info = redis.info();
    assert_eq!(
        (info["loads"], info["stores"], info["hits"]),
        (3, 3, 2),
        "the transparent GET above hit too"
    );
}

#[test]
fn the_value_lands_in_the_db_the_client_selected() {
    let Fixture { redis, mut c, .. } = fixture("selectdb", 2);
    let _: () = redis::cmd("SELECT").arg(5).query(&mut c).unwrap();
    let v = rt_get(&mut c, "todo:1").unwrap().expect("found");
    let in5 = common::stored(&mut c, "todo:1");
    assert_eq!(in5.as_deref(), Some(v.as_str()));
    let mut c0 = redis.conn();
    let in0: i64 = redis::cmd("EXISTS").arg("todo:1").query(&mut c0).unwrap();
    assert_eq!(in0, 0, "nothing written to DB 0");
    // Two DBs load independently.
    let v0 = rt_get(&mut c0, "todo:1").unwrap().expect("found");
    assert_eq!(v0, v);
    assert_eq!(redis.info()["loads"], 2);
}

#[test]
fn absent_document_is_nil_and_nothing_is_stored() {
    let Fixture { redis, mut c, .. } = fixture("absent", 1);
    assert_eq!(rt_get(&mut c, "todo:999").unwrap(), None);
    let n: i64 = redis::cmd("EXISTS").arg("todo:999").query(&mut c).unwrap();
    assert_eq!(n, 0);
    assert_eq!(redis.cli(&["RT.GET", "todo:999"]), "");
    let info = redis.info();
    assert_eq!(
        (info["not_found"], info["negative_hits"]),
        (1, 1),
        "the second read is a negative hit"
    );
}

#[test]
fn bad_requests_get_clear_errors() {
    let Fixture { redis, mut c, .. } = fixture("errors", 1);
    let e = err_of(redis::cmd("RT.GET").query::<Value>(&mut c));
    assert!(e.contains("wrong number of arguments"), "{e}");
    let e = err_of(
        redis::cmd("RT.GET")
            .arg("todo:1")
            .arg("todo:2")
            .query::<Value>(&mut c),
    );
    assert!(e.contains("wrong number of arguments"), "{e}");
    let e = err_of(rt_get(&mut c, "user:1"));
    assert!(e.starts_with("NOMAPPING") && e.contains("user:1"), "{e}");
    let e = err_of(rt_get(&mut c, "todo:"));
    assert!(e.starts_with("ERR") && e.contains("empty id"), "{e}");
    let e = err_of(
        redis::cmd("RT.GET")
            .arg(&b"todo:\xff\xfe"[..])
            .query::<Value>(&mut c),
    );
    assert!(e.starts_with("ERR") && e.contains("UTF-8"), "{e}");
    let _: () = redis::cmd("RPUSH")
        .arg("todo:1")
        .arg("x")
        .query(&mut c)
        .unwrap();
    let e = err_of(rt_get(&mut c, "todo:1"));
    assert!(e.starts_with("WRONGTYPE"), "{e}");
    // Same through redis-cli, as a user would type it.
    assert!(redis.cli(&["RT.GET", "nope"]).starts_with("NOMAPPING"));
    let pong: String = redis::cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
}

#[test]
fn string_integer_and_objectid_ids() {
    let mongo = Mongo::shared();
    let db = common::unique_db("idtypes");
    let oid = ObjectId::new();
    mongo.insert(
        &db,
        "todos",
        vec![
            doc! { "id": "s1", "kind": "string" },
            doc! { "id": 7_i32, "kind": "int32" },
            doc! { "id": 8_i64, "kind": "int64" },
            doc! { "id": "9", "kind": "string nine" },
        ],
    );
    mongo.insert(
        &db,
        "items",
        vec![
            doc! { "_id": oid, "kind": "oid" },
            doc! { "_id": "abc", "kind": "string id" },
            doc! { "_id": 42_i32, "kind": "int id" },
        ],
    );
    let redis = Redis::with(&mongo.uri, &mappings(&db)).start();
    let mut c = redis.conn();
    let kind = |c: &mut redis::Connection, key: &str| -> Option<String> {
        rt_get(c, key)
            .unwrap()
            .map(|v| json(&v)["kind"].as_str().unwrap().to_owned())
    };
    assert_eq!(kind(&mut c, "todo:s1").as_deref(), Some("string"));
    assert_eq!(kind(&mut c, "todo:7").as_deref(), Some("int32"));
    assert_eq!(kind(&mut c, "todo:8").as_deref(), Some("int64"));
    assert_eq!(kind(&mut c, "todo:9").as_deref(), Some("string nine"));
    assert_eq!(
        kind(&mut c, "todo:07"),
        None,
        "not a canonical integer: only the string matches"
    );
    assert_eq!(
        kind(&mut c, &format!("item:{}", oid.to_hex())).as_deref(),
        Some("oid")
    );
    assert_eq!(kind(&mut c, "item:abc").as_deref(), Some("string id"));
    assert_eq!(kind(&mut c, "item:42").as_deref(), Some("int id"));
    let v = rt_get(&mut c, &format!("item:{}", oid.to_hex()))
        .unwrap()
        .unwrap();
    assert_eq!(json(&v)["_id"]["$oid"], oid.to_hex());
    // A key that reads as a query is looked up literally.
    assert_eq!(rt_get(&mut c, r#"todo:{"$ne":null}"#).unwrap(), None);
}

#[test]
fn two_hundred_concurrent_distinct_misses_are_all_answered_correctly() {
    let mongo = Mongo::shared();
    let db = seed(mongo, "concurrent", 200);
    let redis = Redis::with(&mongo.uri, &mappings(&db))
        .config("timeout", "20000")
        .start();
    let url = redis.url();
    let handles: Vec<_> = (1..=200)
        .map(|i| {
            let url = url.clone();
            std::thread::spawn(move || {
                let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
                let v: Option<String> = redis::cmd("RT.GET")
                    .arg(format!("todo:{i}"))
                    .query(&mut c)
                    .unwrap();
                (i, v)
            })
        })
        .collect();
    for h in handles {
        let (i, v) = h.join().unwrap();
        let v = v.unwrap_or_else(|| panic!("todo:{i} not found"));
        assert_eq!(json(&v)["id"], i.to_string());
    }
    let info = redis.info();
    assert_eq!(
        (info["loads"], info["load_errors"], info["inflight"]),
        (200, 0, 0)
    );
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("todo:*")
        .query(&mut redis.conn())
        .unwrap();
    assert_eq!(keys.len(), 200);
}

/// CPU time (utime + stime, clock ticks) of the module's loader thread of server `pid`.
fn loader_cpu_ticks(pid: u32) -> u64 {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
    for task in tasks {
        let stat = std::fs::read_to_string(task.unwrap().path().join("stat")).unwrap_or_default();
        // `pid (comm) state ...`: the fields after the closing parenthesis, utime and stime are
        // the 12th and 13th of them.
        let Some((head, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        if head.ends_with("(readthrough-loa") {
            let f: Vec<&str> = rest.split_whitespace().collect();
            return f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
        }
    }
    panic!("no readthrough-loader thread in /proc/{pid}/task");
}

#[test]
fn the_loader_thread_sleeps_when_no_load_is_in_flight() {
    // The loader thread sleeps whenever it has nothing to do (src/mongo/runtime.rs): once the
    // loads are done it must not poll on.
    let Fixture { redis, mut c, .. } = fixture("idle_cpu", 30);
    for i in 1..=30 {
        assert!(rt_get(&mut c, &format!("todo:{i}")).unwrap().is_some());
    }
    let before = loader_cpu_ticks(redis.pid());
    // The measuring window itself: a thread left spinning would use all of it (~200 ticks).
    std::thread::sleep(Duration::from_secs(2));
    let used = loader_cpu_ticks(redis.pid()) - before;
    assert!(
        used <= 10,
        "the idle loader thread used {used} clock ticks in 2 s"
    );
}

#[test]
fn mongodb_down_gives_an_error_in_time_and_recovers_without_a_redis_restart() {
    let Some(mut mongo) = Mongo::dedicated("mongo-down") else {
        return;
    };
    let db = seed(&mongo, "down", 2);
    let redis = Redis::with(&mongo.uri, &mappings(&db))
        .config("timeout", "1000")
        .start();
    let mut c = redis.conn();
    assert!(rt_get(&mut c, "todo:1").unwrap().is_some());
    mongo.stop();

    let start = Instant::now();
    let e = err_of(rt_get(&mut c, "todo:2"));
    let took = start.elapsed();
    assert!(e.starts_with("BACKEND"), "{e}");
    assert!(
        took < Duration::from_millis(1500),
        "error after {took:?}, timeout is 1000 ms"
    );
    // Redis keeps serving: hits and PING answer at once while MongoDB is down.
    let pong: String = redis::cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
    assert!(
        rt_get(&mut c, "todo:1").unwrap().is_some(),
        "cached value still served"
    );

    mongo.start();
    wait_until(
        "a load after MongoDB is back",
        Duration::from_secs(60),
        || matches!(rt_get(&mut c, "todo:2"), Ok(Some(_))),
    );
    assert!(redis.info()["load_errors"] >= 1);
}

#[test]
fn a_stalled_mongodb_times_out_and_redis_keeps_answering() {
    let Some(mongo) = Mongo::dedicated("mongo-stall") else {
        return;
    };
    let db = seed(&mongo, "stall", 3);
    let proxy = HoldingProxy::start(mongo.port);
    let redis = Redis::with(&proxy.uri(), &mappings(&db))
        .config("timeout", "500")
        .start();
    let mut c = redis.conn();
    assert!(
        rt_get(&mut c, "todo:1").unwrap().is_some(),
        "warm the connection pool"
    );
    // MongoDB stalled, as the module sees it: its queries are held.
    proxy.hold();
    let start = Instant::now();
    let r = rt_get(&mut c, "todo:2");
    let took = start.elapsed();
    // PING answers while a load waits on the stalled MongoDB.
    let pong: String = redis::cmd("PING").query(&mut redis.conn()).unwrap();
    assert_eq!(pong, "PONG");
    proxy.release();
    let e = err_of(r);
    assert!(e.starts_with("TIMEOUT") && e.contains("500 ms"), "{e}");
    // Not before the deadline; the upper bound only catches a hang (speed is the bench's).
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_secs(10),
        "{took:?}"
    );
    assert_eq!(redis.info()["timeouts"], 1);
    wait_until("inflight back to 0", Duration::from_secs(10), || {
        redis.info()["inflight"] == 0
    });
    assert!(
        rt_get(&mut c, "todo:3").unwrap().is_some(),
        "works again after the stall"
    );
}

#[test]
fn a_client_killed_while_blocked_leaves_no_trace() {
    let Some(mongo) = Mongo::dedicated("mongo-kill") else {
        return;
    };
    let db = seed(&mongo, "kill", 2);
    let proxy = HoldingProxy::start(mongo.port);
    let redis = Redis::with(&proxy.uri(), &mappings(&db))
        .config("timeout", "30000")
        .start();
    let mut admin = redis.conn();
    assert!(
        rt_get(&mut admin, "todo:1").unwrap().is_some(),
        "warm the connection pool"
    );
    proxy.hold();
    let mut victim = Some(redis.spawn_rt_get("todo:2"));
    wait_until("the client to block", Duration::from_secs(10), || {
        if victim.as_ref().is_some_and(|v| v.is_finished()) {
            let r = victim.take().unwrap().join().unwrap();
            panic!(
                "RT.GET returned while MongoDB is stalled: {r:?}\n{}\n{}",
                mongo.describe(),
                redis.log()
            );
        }
        let clients: String = redis::cmd("INFO").arg("clients").query(&mut admin).unwrap();
        clients.contains("blocked_clients:1")
    });
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("normal")
        .arg("SKIPME")
        .arg("yes")
        .query(&mut admin)
        .unwrap();
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut admin).unwrap();
    assert_eq!(killed, 1, "clients after the kill:\n{list}");
    let r = victim.unwrap().join().unwrap();
    assert!(
        r.is_err(),
        "the killed client saw its connection close: {r:?}"
    );
    let pong: String = redis::cmd("PING").query(&mut admin).unwrap();
    assert_eq!(pong, "PONG");
    proxy.release();
    // The load finishes for nobody; the value is still cached and nothing leaks or crashes.
    let finished = common::wait_for(Duration::from_secs(20), || redis.info()["inflight"] == 0);
    assert!(
        finished,
        "the orphaned load did not finish in 20 s: {:?}\n{}\n{}",
        redis.info(),
        mongo.describe(),
        redis.log()
    );
    let v = common::stored(&mut admin, "todo:2");
    assert!(
        v.is_some(),
        "the load completed and was stored: {:?}\n{}",
        redis.info(),
        redis.log()
    );
    let clients: String = redis::cmd("INFO").arg("clients").query(&mut admin).unwrap();
    assert!(clients.contains("blocked_clients:0"), "{clients}");
    assert!(!redis.log().contains("crashed"), "{}", redis.log());
}

#[test]
fn a_loaded_value_reaches_a_replica() {
    let mongo = Mongo::shared();
    let db = seed(mongo, "replica", 2);
    let master = Redis::with(&mongo.uri, &mappings(&db)).start();
    let replica = Redis::with(&mongo.uri, &mappings(&db)).replica_of(&master);
    let mut r = replica.conn();
    let mut m = master.conn();
    let _: () = redis::cmd("SELECT").arg(2).query(&mut m).unwrap();
    let v = rt_get(&mut m, "todo:1").unwrap().expect("found");
    let _: () = redis::cmd("SELECT").arg(2).query(&mut r).unwrap();
    // EXISTS, not GET: a transparent GET on the replica would load the value itself.
    wait_until("the value on the replica", Duration::from_secs(10), || {
        redis::cmd("EXISTS")
            .arg("todo:1")
            .query::<i64>(&mut r)
            .unwrap()
            == 1
    });
    let got = common::stored(&mut r, "todo:1");
    assert_eq!(got.as_deref(), Some(v.as_str()));
    let pttl: i64 = redis::cmd("PTTL").arg("todo:1").query(&mut r).unwrap();
    assert!(pttl > 3_500_000, "the TTL is replicated: {pttl}");
    // A miss on the read-only replica is loaded and returned, not written there.
    let v2 = rt_get(&mut r, "todo:2")
        .unwrap()
        .expect("found on the replica");
    assert_eq!(json(&v2)["id"], "2");
    let exists: i64 = redis::cmd("EXISTS").arg("todo:2").query(&mut r).unwrap();
    assert_eq!(exists, 0, "a replica never writes");
    assert_eq!(replica.info()["store_skipped"], 1);
}

#[test]
fn a_loaded_value_survives_an_aof_restart() {
    let mongo = Mongo::shared();
    let db = seed(mongo, "aof", 1);
    let mut redis = Redis::with(&mongo.uri, &mappings(&db))
        .args(&["--appendonly", "yes"])
        .start();
    let mut c = redis.conn();
    let _: () = redis::cmd("SELECT").arg(3).query(&mut c).unwrap();
    let v = rt_get(&mut c, "todo:1").unwrap().expect("found");
    drop(c);
    redis.restart();
    let mut c = redis.conn();
    let _: () = redis::cmd("SELECT").arg(3).query(&mut c).unwrap();
    let got = common::stored(&mut c, "todo:1");
    assert_eq!(got.as_deref(), Some(v.as_str()));
    let pttl: i64 = redis::cmd("PTTL").arg("todo:1").query(&mut c).unwrap();
    assert!(pttl > 3_500_000, "TTL kept across the restart: {pttl}");
    assert_eq!(
        redis.info()["loads"],
        0,
        "served from the AOF, not reloaded"
    );
}

#[test]
fn inside_multi_and_lua_a_hit_returns_and_a_miss_errors_then_loads_in_background() {
    let Fixture { redis, mut c, .. } = fixture("multi", 3);
    let cached = rt_get(&mut c, "todo:1").unwrap().expect("found");

    // MULTI/EXEC typed into redis-cli, as a user would.
    let out = redis.cli_stdin("MULTI\nRT.GET todo:1\nRT.GET todo:2\nEXEC\n");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "OK", "{out}");
    assert_eq!(lines[lines.len() - 2], cached, "the hit inside EXEC: {out}");
    assert!(
        lines[lines.len() - 1].starts_with("NOBLOCK"),
        "the miss inside EXEC: {out}"
    );
    // `stored` looks without a lookup: an EXISTS would start a load of its own.
    wait_until("the background load", Duration::from_secs(10), || {
        stored(&mut c, "todo:2").is_some()
    });

    let script = "return redis.call('RT.GET', KEYS[1])";
    let got: String = redis::cmd("EVAL")
        .arg(script)
        .arg(1)
        .arg("todo:1")
        .query(&mut c)
        .unwrap();
    assert_eq!(got, cached);
    let e = err_of(
        redis::cmd("EVAL")
            .arg(script)
            .arg(1)
            .arg("todo:3")
            .query::<Value>(&mut c),
    );
    assert!(e.contains("NOBLOCK"), "{e}");
    wait_until("the background load", Duration::from_secs(10), || {
        stored(&mut c, "todo:3").is_some()
    });
    assert_eq!(redis.info()["prefetches"], 2);
}

/// The README's "the same holds for RT.MGET and RT.REFRESH": inside MULTI/EXEC and Lua, an
/// `RT.MGET` with a miss and any `RT.REFRESH` reply `NOBLOCK` at once and load in the
/// background; an all-hit `RT.MGET` answers.
#[test]
fn inside_multi_and_lua_mget_and_refresh_say_noblock_and_load_in_background() {
    // Change streams off: the update below must reach the cache by RT.REFRESH alone.
    let Fixture {
        mongo,
        db,
        redis,
        mut c,
    } = fixture_with("multimget", 6, |r| r.config("invalidation", "off"));
    assert!(rt_get(&mut c, "todo:1").unwrap().is_some());
    let noblock = |r: redis::RedisResult<Value>| {
        let e = err_of(r);
        assert!(e.starts_with("NOBLOCK"), "{e}");
    };
    // MULTI/EXEC: an all-hit RT.MGET answers; one with a miss says NOBLOCK.
    let out = redis.cli_stdin("MULTI\nRT.MGET todo:1\nRT.MGET todo:1 todo:2\nEXEC\n");
    let lines: Vec<&str> = out.lines().filter(|l| !l.is_empty()).collect();
    assert!(lines[lines.len() - 2].contains("todo 1"), "{out}");
    assert!(lines[lines.len() - 1].starts_with("NOBLOCK"), "{out}");
    let script = |cmd: &str, keys: &[&str]| {
        let mut e = redis::cmd("EVAL");
        e.arg(format!("return redis.call('{cmd}', unpack(KEYS))"))
            .arg(keys.len())
            .arg(keys);
        e
    };
    noblock(script("RT.MGET", &["todo:1", "todo:3"]).query(&mut c));
    let all: Vec<Option<String>> = script("RT.MGET", &["todo:1"]).query(&mut c).unwrap();
    assert!(all[0].is_some());
    // RT.REFRESH always reads MongoDB: NOBLOCK, and the new value lands in the background.
    mongo.update_one(
        &db,
        "todos",
        doc! {"id": "1"},
        doc! {"$set": {"name": "renamed"}},
    );
    noblock(script("RT.REFRESH", &["todo:1"]).query(&mut c));
    for k in ["todo:2", "todo:3"] {
        wait_until(&format!("{k} loaded"), Duration::from_secs(10), || {
            stored(&mut c, k).is_some()
        });
    }
    wait_until("todo:1 refreshed", Duration::from_secs(10), || {
        stored(&mut c, "todo:1").is_some_and(|v| json(&v)["name"] == "renamed")
    });
    // And inside MULTI: RT.REFRESH says NOBLOCK.
    let out = redis.cli_stdin("MULTI\nRT.REFRESH todo:4\nRT.MGET todo:5\nEXEC\n");
    // redis-cli puts a blank line after an error inside EXEC's reply.
    let lines: Vec<&str> = out.lines().filter(|l| !l.is_empty()).collect();
    assert!(
        lines[lines.len() - 2].starts_with("NOBLOCK")
            && lines[lines.len() - 1].starts_with("NOBLOCK"),
        "{out}"
    );
    for k in ["todo:4", "todo:5"] {
        wait_until(&format!("{k} loaded"), Duration::from_secs(10), || {
            stored(&mut c, k).is_some()
        });
    }
}

#[test]
fn changing_mongo_uri_at_runtime_switches_servers_without_a_restart() {
    let mongo = Mongo::shared();
    let db = seed(mongo, "switch", 1);
    let unused = format!(
        "mongodb://alice:hunter2secret@127.0.0.1:{}",
        common::free_port()
    );
    let redis = Redis::with(&unused, &mappings(&db))
        .config("timeout", "800")
        .start();
    let mut c = redis.conn();
    let e = err_of(rt_get(&mut c, "todo:1"));
    assert!(e.starts_with("BACKEND"), "{e}");
    assert!(!e.contains("hunter2secret"), "credentials leaked: {e}");
    assert!(
        !redis.log().contains("hunter2secret"),
        "credentials in the log"
    );
    config_set(&mut c, "readthrough.mongo-uri", &mongo.uri);
    assert!(rt_get(&mut c, "todo:1").unwrap().is_some());
}

#[test]
fn malformed_configs_are_refused_and_the_old_value_stays() {
    let mongo = Mongo::shared();
    let db = seed(mongo, "badconf", 1);
    let good = mappings(&db);
    let redis = Redis::with(&mongo.uri, &good).start();
    let mut c = redis.conn();
    let set = |c: &mut redis::Connection, name: &str, value: &str| {
        redis::cmd("CONFIG")
            .arg("SET")
            .arg(format!("readthrough.{name}"))
            .arg(value)
            .query::<()>(c)
    };
    let get = |c: &mut redis::Connection, name: &str| config_get(c, &format!("readthrough.{name}"));
    for (name, bad, why) in [
        ("mappings", "todo:", "expected PREFIX=DATABASE.COLLECTION"),
        ("mappings", "todo:=nodot", "no '.'"),
        ("mappings", "a=d.c a=d.e", "mapped twice"),
        ("mongo-uri", "http://example.com", "invalid MongoDB URI"),
        ("mongo-uri", "mongodb://", "invalid MongoDB URI"),
        ("ttl", "-1", ""),
        ("ttl", "abc", ""),
        ("timeout", "0", ""),
        ("max-inflight", "0", ""),
    ] {
        let before = get(&mut c, name);
        let e = err_of(set(&mut c, name, bad));
        assert!(e.contains(why), "{name}={bad}: {e}");
        assert_eq!(
            get(&mut c, name),
            before,
            "{name} unchanged after a refused value"
        );
    }
    assert!(
        rt_get(&mut c, "todo:1").unwrap().is_some(),
        "still works with the old mappings"
    );
    set(&mut c, "mappings", "").unwrap();
    assert!(err_of(rt_get(&mut c, "todo:1")).starts_with("NOMAPPING"));
    set(&mut c, "mappings", &good).unwrap();

    // At startup (command line / redis.conf) a bad value stops Redis with a clear log line.
    let module = common::module_path().to_string_lossy().into_owned();
    let log = Redis::bare()
        .args(&["--loadmodule", &module, "--readthrough.mappings", "broken"])
        .start_failing();
    assert!(log.contains("mapping 'broken'"), "{log}");
    // MODULE LOADEX with a bad config is refused; Redis keeps serving without the module.
    let plain = Redis::bare()
        .args(&["--enable-module-command", "yes"])
        .start();
    let mut p = plain.conn();
    let e = err_of(
        redis::cmd("MODULE")
            .arg("LOADEX")
            .arg(&module)
            .arg("CONFIG")
            .arg("readthrough.timeout")
            .arg("-5")
            .query::<()>(&mut p),
    );
    // Redis's words for a failed load; the reason is in its log.
    assert!(e.contains("Error loading the extension"), "{e}");
    assert!(
        plain.log().contains("readthrough.timeout"),
        "{}",
        plain.log()
    );
    let _: () = redis::cmd("MODULE")
        .arg("LOADEX")
        .arg(&module)
        .arg("CONFIG")
        .arg("readthrough.mappings")
        .arg(&good)
        .query(&mut p)
        .unwrap();
    assert_eq!(config_get(&mut p, "readthrough.mappings"), good);
    // MODULE UNLOAD is refused while background threads run.
    let e = err_of(
        redis::cmd("MODULE")
            .arg("UNLOAD")
            .arg("readthrough")
            .query::<()>(&mut p),
    );
    assert!(e.contains("Error unloading module"), "{e}");
    assert!(
        plain.log().contains("MODULE UNLOAD is not supported"),
        "{}",
        plain.log()
    );
    let pong: String = redis::cmd("PING").query(&mut p).unwrap();
    assert_eq!(pong, "PONG");
}

/// The module loads on whichever server the suite runs against (`READTHROUGH_TEST_SERVER`):
/// Redis names itself in `INFO server` with `redis_version`, Valkey with `valkey_version`.
#[test]
fn the_module_loads_and_reports_on_this_server() {
    let (name, major, minor) = server_version();
    let mongo = Mongo::shared();
    let db = seed(mongo, "server", 2);
    let redis = Redis::with(&mongo.uri, &mappings(&db)).start();
    let server = redis.info_section("server");
    let field = if name == "valkey" {
        "valkey_version"
    } else {
        "redis_version"
    };
    let version = server
        .get(field)
        .unwrap_or_else(|| panic!("no {field}: {server:?}"));
    assert!(
        version.starts_with(&format!("{major}.{minor}.")),
        "{version}"
    );
    let modules: redis::Value = redis::cmd("MODULE")
        .arg("LIST")
        .query(&mut redis.conn())
        .unwrap();
    assert!(
        format!("{modules:?}").contains("readthrough"),
        "{modules:?}"
    );
    let v = rt_get(&mut redis.conn(), "todo:2").unwrap().unwrap();
    assert_eq!(json(&v)["id"], "2");
    assert!(redis.info().contains_key("hits"));
}
