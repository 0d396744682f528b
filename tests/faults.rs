//! Faults (issue 6, first part): FLUSHALL while loads are in flight, maxmemory reached,
//! SHUTDOWN with 1000 loads in flight. Real redis-server + MongoDB-compatible server.

mod common;

use common::*;

#[test]
fn flushall_during_loads_does_not_bring_flushed_data_back() {
    let Some(mongo) = Mongo::dedicated("flush-inflight") else {
        return;
    };
    let db = seed(&mongo, "flush", 10);
    let redis = Redis::start(
        &mongo.uri,
        &mappings(&db),
        &["--readthrough.timeout", "20000"],
    );
    let mut c = redis.conn();
    assert!(rt_get(&mut c, "todo:1").unwrap().is_some(), "warm the pool");
    mongo.pause();
    let single = redis.spawn_rt_get("todo:2");
    let url = redis.url();
    let batch = std::thread::spawn(move || {
        let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
        redis::cmd("RT.MGET")
            .arg(&["todo:3", "todo:4"])
            .query::<Vec<Option<String>>>(&mut c)
    });
    redis.wait_blocked(2);
    redis::cmd("FLUSHALL").query::<()>(&mut c).unwrap();
    mongo.resume();
    // The clients get what was loaded...
    assert_eq!(json(&single.join().unwrap().unwrap().unwrap())["id"], "2");
    let v = batch.join().unwrap().unwrap();
    assert!(v.iter().all(Option::is_some), "{v:?}");
    // ...but nothing loaded before the flush is stored after it.
    for k in ["todo:1", "todo:2", "todo:3", "todo:4"] {
        assert_eq!(stored(&mut c, k), None, "{k} came back after FLUSHALL");
    }
    assert!(redis.info()["store_skipped"] >= 3);
    // Loads started after the flush are stored as usual.
    rt_get(&mut c, "todo:2").unwrap().unwrap();
    assert!(stored(&mut c, "todo:2").is_some());
}

#[test]
fn at_maxmemory_the_value_is_returned_and_the_store_skipped() {
    let mongo = Mongo::shared();
    let db = seed(mongo, "oom", 10);
    let redis = Redis::start(
        &mongo.uri,
        &mappings(&db),
        &["--maxmemory", "4mb", "--maxmemory-policy", "noeviction"],
    );
    let mut c = redis.conn();
    let filler = "x".repeat(100_000);
    let mut i = 0;
    loop {
        let r = redis::cmd("SET")
            .arg(format!("filler:{i}"))
            .arg(&filler)
            .query::<()>(&mut c);
        if let Err(e) = r {
            assert!(e.to_string().contains("OOM"), "{e}");
            break;
        }
        i += 1;
        assert!(i < 1000, "never reached maxmemory");
    }
    let before = redis.info()["store_skipped"];
    let v = rt_get(&mut c, "todo:5").unwrap().expect("the document");
    assert_eq!(json(&v)["id"], "5");
    // INFO first: EXISTS on the missing key starts a key-miss prefetch, a second skipped store.
    assert_eq!(redis.info()["store_skipped"], before + 1);
    assert_eq!(stored(&mut c, "todo:5"), None, "not stored at maxmemory");
    let v: Vec<Option<String>> = redis::cmd("RT.MGET")
        .arg(&["todo:6", "todo:7"])
        .query(&mut c)
        .unwrap();
    assert!(v.iter().all(Option::is_some));
    assert_eq!(redis.cli(&["PING"]), "PONG");
    let log = redis.log();
    assert!(!log.contains("crashed") && !log.contains("panick"), "{log}");
}

#[test]
fn shutdown_with_1000_loads_in_flight_exits_cleanly() {
    let Some(mongo) = Mongo::dedicated("shutdown-inflight") else {
        return;
    };
    let db = seed(&mongo, "shutdown", 10);
    let mut redis = Redis::start(
        &mongo.uri,
        &mappings(&db),
        &["--readthrough.timeout", "30000", "--maxclients", "2000"],
    );
    assert!(rt_get(&mut redis.conn(), "todo:1").unwrap().is_some());
    mongo.pause();
    let readers: Vec<_> = (0..1000)
        .map(|i| redis.spawn_rt_get(&format!("todo:{}", 100 + i)))
        .collect();
    redis.wait_blocked(1000);
    assert!(redis.info()["inflight"] >= 1000);
    redis.shutdown();
    mongo.resume();
    for r in readers {
        assert!(
            r.join().unwrap().is_err(),
            "a blocked client gets its connection closed"
        );
    }
    // The process is gone; its log file stays.
    let log = std::fs::read_to_string(redis.dir.join("redis.log")).unwrap();
    assert!(log.contains("ready to exit, bye bye"), "{log}");
    for bad in ["crashed", "panick", "Segmentation", "Assertion"] {
        assert!(!log.contains(bad), "{bad} in the log:\n{log}");
    }
}
