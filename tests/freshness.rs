//! Issue 5: change streams keep the cache true; warm-up fills it before traffic. Against a real
//! redis-server with the module and the MongoDB-compatible server.

mod common;

use common::*;
use mongodb::bson::{doc, Document};
use std::time::{Duration, Instant};

/// A generous bound on an event reaching the cache (the bench measures how fast it is: a few ms).
const VISIBLE: Duration = Duration::from_secs(15);

/// Waits at most `VISIBLE` for `check`; returns how long it took. On a timeout it says what
/// `redis` had seen: whether the event came late, never, or was undone by a later load.
fn eventually(redis: &Redis, what: &str, check: impl FnMut() -> bool) -> Duration {
    let t = Instant::now();
    if !wait_for(VISIBLE, check) {
        let log = redis.log();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        panic!(
            "timed out waiting for {what} ({VISIBLE:?}); module INFO: {:?}; watchers: {:?}; \
             last log lines (newest first): {tail:#?}",
            redis.info(),
            redis.watchers()
        );
    }
    t.elapsed()
}

#[test]
fn an_update_in_mongodb_reaches_rt_get_delete_mode() {
    let mongo = Mongo::shared();
    let db = seed(mongo, "cdc-delete", 20);
    let redis = Redis::with(&mongo.uri, &mappings(&db)).start();
    assert_eq!(redis.info_str("invalidation").as_deref(), Some("delete"));
    redis.wait_watching();
    let mut c = redis.conn();
    assert_eq!(
        name_of(&rt_get(&mut c, "todo:3").unwrap()).unwrap(),
        "todo 3"
    );
    mongo.update_one(
        &db,
        "todos",
        doc! {"id": "3"},
        doc! {"$set": {"name": "renamed"}},
    );
    let took = eventually(&redis, "the update to reach RT.GET", || {
        name_of(&rt_get(&mut c, "todo:3").unwrap()).as_deref() == Some("renamed")
    });
    eprintln!("update visible after {took:?}");
    let info = redis.info();
    assert!(info["invalidations"] >= 1, "{info:?}");
    assert!(info["cdc_events"] >= 1, "{info:?}");
    let w = redis.watchers();
    assert_eq!(w.len(), 2, "one per mapped collection: {w:?}");
    let todos = w
        .iter()
        .find(|w| w.contains(&format!("ns={db}.todos,")))
        .unwrap();
    assert!(
        todos.contains("prefixes=todo:,state=watching,events="),
        "{todos}"
    );
    assert!(!todos.contains("events=0,"), "{todos}");
}

#[test]
fn refresh_mode_rewrites_cached_keys_only() {
    let Fixture {
        mongo,
        db,
        redis,
        mut c,
    } = fixture_with("cdc-refresh", 20, |r| {
        r.config("invalidation", "refresh").watching()
    });
    rt_get(&mut c, "todo:3").unwrap().unwrap();
    rt_get(&mut c, "todo:5").unwrap().unwrap();
    for (id, name) in [("3", "fresh"), ("4", "never read"), ("5", "after 4")] {
        mongo.update_one(&db, "todos", doc! {"id": id}, doc! {"$set": {"name": name}});
    }
    // Without reading through: the stored value itself is rewritten, with a TTL.
    eventually(&redis, "the stored value to be rewritten", || {
        name_of(&stored(&mut c, "todo:3")).as_deref() == Some("fresh")
    });
    let pttl: i64 = redis::cmd("PTTL").arg("todo:3").query(&mut c).unwrap();
    assert!(pttl > 3_000_000, "refreshed value keeps a TTL: {pttl}");
    // Events are applied in order: once todo:5's (made after todo:4's) is, todo:4's was.
    eventually(&redis, "the event after todo:4's", || {
        name_of(&stored(&mut c, "todo:5")).as_deref() == Some("after 4")
    });
    assert_eq!(
        stored(&mut c, "todo:4"),
        None,
        "uncached keys are not filled"
    );
}

#[test]
fn a_delete_in_mongodb_makes_the_key_nil() {
    let mongo = Mongo::shared();
    let db = seed(mongo, "cdc-del", 20);
    mongo.insert(
        &db,
        "items",
        vec![
            doc! {"_id": "a1", "name": "item a1"},
            doc! {"_id": "a2", "name": "item a2"},
        ],
    );
    // Negative entries last long here: only the change stream can make a key reappear.
    let redis = Redis::with(&mongo.uri, &mappings(&db))
        .config("negative-ttl", "600")
        .watching()
        .start();
    let mut c = redis.conn();
    // By field `id` (placed through the _id -> id index of loaded documents), loaded by RT.GET
    // and by RT.MGET, and by `_id`.
    rt_get(&mut c, "todo:5").unwrap().unwrap();
    let v: Vec<Option<String>> = redis::cmd("RT.MGET")
        .arg(&["todo:6", "item:a1"])
        .query(&mut c)
        .unwrap();
    assert!(v.iter().all(Option::is_some));
    mongo.delete_one(&db, "todos", doc! {"id": "5"});
    mongo.delete_one(&db, "todos", doc! {"id": "6"});
    mongo.delete_one(&db, "items", doc! {"_id": "a1"});
    eventually(&redis, "the deleted documents to leave the cache", || {
        ["todo:5", "todo:6", "item:a1"]
            .iter()
            .all(|k| stored(&mut c, k).is_none())
    });
    for k in ["todo:5", "todo:6", "item:a1"] {
        assert_eq!(rt_get(&mut c, k).unwrap(), None, "{k}");
    }
    assert_eq!(redis.info()["cdc_unplaced_deletes"], 0);
    assert!(rt_get(&mut c, "item:a2").unwrap().is_some());
}

#[test]
fn an_insert_clears_the_negative_entry() {
    let Fixture {
        mongo,
        db,
        redis,
        mut c,
    } = fixture_with("cdc-insert", 5, |r| {
        r.config("negative-ttl", "600").watching()
    });
    assert_eq!(rt_get(&mut c, "todo:77").unwrap(), None);
    assert_eq!(rt_get(&mut c, "todo:77").unwrap(), None);
    assert_eq!(redis.info()["negative_hits"], 1, "remembered as absent");
    mongo.insert(&db, "todos", vec![doc! {"id": "77", "name": "new"}]);
    eventually(&redis, "the inserted document to be found", || {
        name_of(&rt_get(&mut c, "todo:77").unwrap()).as_deref() == Some("new")
    });
}

#[test]
fn dropping_the_collection_empties_the_prefix_in_every_db() {
    let Fixture {
        mongo,
        db,
        redis,
        mut c,
    } = fixture_with("cdc-drop", 300, |r| r.watching());
    let keys: Vec<String> = (1..=300).map(|i| format!("todo:{i}")).collect();
    let _: Vec<Option<String>> = redis::cmd("RT.MGET").arg(&keys).query(&mut c).unwrap();
    let mut c2 = redis.conn();
    redis::cmd("SELECT").arg(2).query::<()>(&mut c2).unwrap();
    let _: Vec<Option<String>> = redis::cmd("RT.MGET")
        .arg(&keys[..10])
        .query(&mut c2)
        .unwrap();
    redis::cmd("SET")
        .arg(&["other:1", "kept"])
        .query::<()>(&mut c)
        .unwrap();
    redis::cmd("SET")
        .arg(&["todo", "kept"])
        .query::<()>(&mut c)
        .unwrap();
    mongo.drop_collection(&db, "todos");
    let count = |c: &mut redis::Connection| -> usize {
        let k: Vec<String> = redis::cmd("KEYS").arg("todo:*").query(c).unwrap();
        k.len()
    };
    eventually(&redis, "the prefix to be emptied", || {
        count(&mut c) == 0 && count(&mut c2) == 0
    });
    assert_eq!(stored(&mut c, "other:1").as_deref(), Some("kept"));
    assert_eq!(stored(&mut c, "todo").as_deref(), Some("kept"));
    assert!(redis.info()["cdc_purges"] >= 1);
    // The watcher goes on: a new collection of that name is watched again.
    redis.wait_watching();
    mongo.insert(&db, "todos", vec![doc! {"id": "1", "name": "again"}]);
    assert_eq!(
        name_of(&rt_get(&mut c, "todo:1").unwrap()).as_deref(),
        Some("again")
    );
    mongo.update_one(
        &db,
        "todos",
        doc! {"id": "1"},
        doc! {"$set": {"name": "after drop"}},
    );
    eventually(&redis, "an update after the drop to be seen", || {
        name_of(&rt_get(&mut c, "todo:1").unwrap()).as_deref() == Some("after drop")
    });
}

#[test]
fn events_made_while_redis_was_down_are_applied_after_an_aof_restart() {
    let mongo = Mongo::shared();
    let db = seed(mongo, "cdc-resume", 20);
    // Pre-images let a delete be placed by the `id` field after a restart too.
    mongo.command(
        &db,
        doc! {"collMod": "todos", "changeStreamPreAndPostImages": {"enabled": true}},
    );
    let mut redis = Redis::with(&mongo.uri, &mappings(&db))
        .args(&["--appendonly", "yes"])
        .watching()
        .start();
    let mut c = redis.conn();
    rt_get(&mut c, "todo:1").unwrap().unwrap();
    // One event, so a resume token is saved.
    mongo.update_one(
        &db,
        "todos",
        doc! {"id": "1"},
        doc! {"$set": {"name": "one"}},
    );
    eventually(&redis, "the first event", || {
        stored(&mut c, "todo:1").is_none()
    });
    for k in ["todo:1", "todo:2", "todo:3"] {
        rt_get(&mut c, k).unwrap().unwrap();
    }
    drop(c);
    redis.shutdown();
    mongo.update_one(
        &db,
        "todos",
        doc! {"id": "2"},
        doc! {"$set": {"name": "while down"}},
    );
    mongo.delete_one(&db, "todos", doc! {"id": "3"});
    redis.start_again();
    let mut c = redis.conn();
    assert_eq!(
        name_of(&stored(&mut c, "todo:1")).as_deref(),
        Some("one"),
        "the AOF kept the cache"
    );
    // Polling with EXISTS prefetches a missing todo:2 (the key-miss hook), so once the event
    // is applied todo:2 is either gone or already the new document: never the old one.
    eventually(&redis, "the missed events to be applied", || {
        name_of(&stored(&mut c, "todo:2")).as_deref() != Some("todo 2")
            && stored(&mut c, "todo:3").is_none()
    });
    assert_eq!(
        name_of(&rt_get(&mut c, "todo:2").unwrap()).as_deref(),
        Some("while down")
    );
    assert_eq!(rt_get(&mut c, "todo:3").unwrap(), None);
    assert_eq!(stored(&mut c, "todo:1").map(|_| ()), Some(()), "untouched");
    let info = redis.info();
    assert_eq!(info["cdc_resume_failures"], 0);
    assert_eq!(info["cdc_purges"], 0);
}

#[test]
fn a_token_mongodb_cannot_resume_purges_the_prefix() {
    let mongo = Mongo::shared();
    let db = seed(mongo, "cdc-badtoken", 10);
    let mut redis = Redis::with(&mongo.uri, &mappings(&db))
        .args(&["--appendonly", "yes"])
        .watching()
        .start();
    let mut c = redis.conn();
    rt_get(&mut c, "todo:1").unwrap().unwrap();
    rt_get(&mut c, "todo:2").unwrap().unwrap();
    let token_key = format!("__readthrough__:resume:{db}.todos");
    redis::cmd("SET")
        .arg(&[token_key.as_str(), r#"{"_data":"00"}"#])
        .query::<()>(&mut c)
        .unwrap();
    drop(c);
    redis.restart();
    let mut c = redis.conn();
    wait_until("the purge", Duration::from_secs(10), || {
        stored(&mut c, "todo:1").is_none() && stored(&mut c, "todo:2").is_none()
    });
    redis.wait_watching();
    assert_eq!(redis.info()["cdc_resume_failures"], 1);
    assert!(redis.log().contains("cannot resume the change stream"));
    assert!(rt_get(&mut c, "todo:1").unwrap().is_some());
}

#[test]
fn the_watcher_reconnects_after_mongodb_restarts() {
    let Some(mut mongo) = Mongo::dedicated("cdc-reconnect") else {
        return;
    };
    let db = seed(&mongo, "cdc-reconnect", 10);
    let redis = Redis::with(&mongo.uri, &mappings(&db)).watching().start();
    let mut c = redis.conn();
    rt_get(&mut c, "todo:3").unwrap().unwrap();
    mongo.stop();
    wait_until("the watcher to notice", Duration::from_secs(20), || {
        redis
            .watchers()
            .iter()
            .all(|w| !w.contains("state=watching"))
    });
    // Redis serves on meanwhile.
    assert!(rt_get(&mut c, "todo:3").unwrap().is_some());
    assert_eq!(redis.cli(&["PING"]), "PONG");
    mongo.start();
    redis.wait_watching();
    mongo.update_one(
        &db,
        "todos",
        doc! {"id": "3"},
        doc! {"$set": {"name": "after restart"}},
    );
    eventually(&redis, "an update after the MongoDB restart", || {
        name_of(&rt_get(&mut c, "todo:3").unwrap()).as_deref() == Some("after restart")
    });
    assert!(redis.log().contains("connected again"), "{}", redis.log());
}

#[test]
fn watchers_run_on_the_master_only_and_start_on_promotion() {
    let mongo = Mongo::shared();
    let db = seed(mongo, "cdc-role", 10);
    let master = Redis::with(&mongo.uri, &mappings(&db)).watching().start();
    let replica = Redis::with(&mongo.uri, &mappings(&db)).replica_of(&master);
    let mut m = master.conn();
    rt_get(&mut m, "todo:4").unwrap().unwrap();
    let mut r = replica.conn();
    wait_until("the value on the replica", VISIBLE, || {
        stored(&mut r, "todo:4").is_some()
    });
    mongo.update_one(&db, "todos", doc! {"id": "4"}, doc! {"$set": {"name": "x"}});
    eventually(&master, "the master's delete to replicate", || {
        stored(&mut r, "todo:4").is_none()
    });
    // By now the master has applied an event: a watcher on the replica would have had it too.
    assert_eq!(
        replica.info()["cdc_events"],
        0,
        "the replica does not watch"
    );
    let w = replica.watchers();
    assert!(
        !w.is_empty() && w.iter().all(|w| w.contains("state=replica")),
        "{w:?}"
    );
    replica.cli(&["REPLICAOF", "NO", "ONE"]);
    replica.wait_watching();
}

#[test]
fn invalidation_config_is_checked_and_off_stops_the_watchers() {
    let Fixture {
        mongo,
        db,
        redis,
        mut c,
    } = fixture_with("cdc-config", 5, |r| r.watching());
    let e = config_refused(&mut c, "readthrough.invalidation", "sometimes");
    assert!(e.contains("off, delete or refresh"), "{e}");
    assert_eq!(config_get(&mut c, "readthrough.invalidation"), "delete");
    config_set(&mut c, "readthrough.invalidation", "off");
    wait_until("the watcher to stop", Duration::from_secs(5), || {
        redis.watchers().iter().all(|w| w.contains("state=off"))
    });
    rt_get(&mut c, "todo:2").unwrap().unwrap();
    // A second server, watching (delete mode), is the control: once it has dropped todo:2,
    // the event was delivered, and a watcher of this server would have seen it too.
    let control = Redis::with(&mongo.uri, &mappings(&db)).watching().start();
    let mut k = control.conn();
    rt_get(&mut k, "todo:2").unwrap().unwrap();
    mongo.update_one(
        &db,
        "todos",
        doc! {"id": "2"},
        doc! {"$set": {"name": "unseen"}},
    );
    eventually(&control, "the control to apply the event", || {
        stored(&mut k, "todo:2").is_none()
    });
    assert_eq!(
        name_of(&stored(&mut c, "todo:2")).as_deref(),
        Some("todo 2"),
        "off: the cache is left alone"
    );
    let module = module_path().to_string_lossy().into_owned();
    let e = Redis::bare()
        .args(&[
            "--loadmodule",
            &module,
            "--readthrough.invalidation",
            "maybe",
        ])
        .start_failing();
    assert!(e.contains("off, delete or refresh"), "{e}");
}

fn seed_many(mongo: &Mongo, name: &str, n: usize) -> String {
    let db = unique_db(name);
    let mut next = 1;
    while next <= n {
        let end = (next + 20_000).min(n + 1);
        let docs: Vec<Document> = (next..end)
            .map(|i| {
                doc! {
                    "id": i.to_string(),
                    "name": format!("Todo {i}"),
                    "description": format!("Description of todo number {i}: read through from MongoDB."),
                }
            })
            .collect();
        mongo.insert(&db, "todos", docs);
        next = end;
    }
    db
}

#[test]
fn warm_up_of_the_200k_demo_documents_while_ping_answers() {
    // A server of its own: 200,000 inserts on the shared one would slow every other test's
    // change stream (each reads the same oplog).
    let own = external_mongo()
        .is_none()
        .then(|| Mongo::dedicated("warm-demo"))
        .flatten();
    let mongo = own.as_ref().unwrap_or_else(|| Mongo::shared());
    let n = 200_000;
    let db = seed_many(mongo, "warm-demo", n);
    let redis = Redis::with(&mongo.uri, &mappings(&db)).start();
    let mut c = redis.conn();
    redis::cmd("SELECT").arg(1).query::<()>(&mut c).unwrap();
    let t = Instant::now();
    let ok: String = redis::cmd("RT.WARM").arg("todo:").query(&mut c).unwrap();
    assert_eq!(ok, "OK");
    assert!(t.elapsed() < Duration::from_secs(1), "returns at once");
    let e = err_of(redis::cmd("RT.WARM").arg("todo:").query::<String>(&mut c));
    assert!(e.starts_with("BUSY"), "{e}");
    let mut ping = redis.conn();
    let (mut pings, mut worst) = (0u64, Duration::ZERO);
    let started = Instant::now();
    loop {
        let t = Instant::now();
        let p: String = redis::cmd("PING").query(&mut ping).unwrap();
        assert_eq!(p, "PONG");
        worst = worst.max(t.elapsed());
        pings += 1;
        let w = redis.info_str("warm_0").unwrap();
        if w.contains("running=0") {
            eprintln!("{w}; {pings} PINGs answered, slowest {worst:?}");
            assert!(
                w.contains(&format!("loaded={n},stored={n},total={n},skipped=0")),
                "{w}"
            );
            assert!(!w.contains("error="), "{w}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "warm-up hangs: {w}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // A liveness bound, not a speed claim: the main thread never stalled for long.
    assert!(worst < Duration::from_secs(1), "PING stalled {worst:?}");
    let size: usize = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(size, n, "every document is cached in the client's DB");
    let v = stored(&mut c, "todo:199999").unwrap();
    assert_eq!(json(&v)["name"], "Todo 199999");
    let pttl: i64 = redis::cmd("PTTL").arg("todo:5").query(&mut c).unwrap();
    assert!(pttl > 3_000_000, "warmed values have the TTL: {pttl}");
    // Hits now: no MongoDB query for a warmed key.
    let before = redis.info()["misses"];
    rt_get(&mut c, "todo:12345").unwrap().unwrap();
    assert_eq!(redis.info()["misses"], before);
}

#[test]
fn warm_limits_errors_and_warm_on_load() {
    let Fixture { redis, mut c, .. } =
        fixture_with("warm-small", 50, |r| r.config("warm-on-load", "todo:"));
    wait_until("warm-on-load", Duration::from_secs(20), || {
        redis
            .info_str("warm_0")
            .is_some_and(|w| w.contains("running=0"))
    });
    let size: usize = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert!(size >= 50, "{size}");
    assert!(stored(&mut c, "todo:50").is_some());

    redis::cmd("SELECT").arg(3).query::<()>(&mut c).unwrap();
    let ok: String = redis::cmd("RT.WARM")
        .arg(&["todo:", "limit", "10"])
        .query(&mut c)
        .unwrap();
    assert_eq!(ok, "OK");
    wait_until("the limited warm-up", Duration::from_secs(20), || {
        redis
            .info_str("warm_0")
            .is_some_and(|w| w.contains("running=0"))
    });
    let w = redis.info_str("warm_0").unwrap();
    assert!(
        w.contains("db=3") && w.contains("loaded=10,stored=10,total=10"),
        "{w}"
    );
    let size: usize = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(size, 10);

    for (args, want) in [
        (vec!["nope:"], "NOMAPPING no mapping has the prefix 'nope:'"),
        (
            vec!["todo:", "LIMIT", "0"],
            "ERR LIMIT must be a positive integer",
        ),
        (
            vec!["todo:", "LIMIT", "x"],
            "ERR LIMIT must be a positive integer",
        ),
        (vec!["todo:", "TOP", "5"], "ERR syntax error"),
    ] {
        let e = err_of(redis::cmd("RT.WARM").arg(&args).query::<String>(&mut c));
        assert!(e.starts_with(want), "{args:?}: {e}");
    }
    let e = err_of(redis::cmd("RT.WARM").query::<String>(&mut c));
    assert!(e.contains("wrong number of arguments"), "{e}");
    let e = config_refused(&mut c, "readthrough.warm-on-load", "* todo:");
    assert!(e.contains("either * or a list"), "{e}");
}

/// `readthrough.warm-on-load *` warms every mapping when the module loads.
#[test]
fn warm_on_load_star_warms_every_mapping() {
    let mongo = Mongo::shared();
    let db = seed(mongo, "warm-star", 7);
    let redis = Redis::with(
        &mongo.uri,
        &format!("todo:={db}.todos:id other:={db}.todos:id"),
    )
    .config("warm-on-load", "*")
    .start();
    let mut c = redis.conn();
    wait_until("both warm-ups", Duration::from_secs(20), || {
        let lines: Vec<String> = (0..2)
            .filter_map(|i| redis.info_str(&format!("warm_{i}")))
            .collect();
        lines.len() == 2 && lines.iter().all(|w| w.contains("running=0"))
    });
    let mut prefixes: Vec<String> = (0..2)
        .map(|i| {
            let w = redis.info_str(&format!("warm_{i}")).unwrap();
            assert!(w.contains("stored=7,") && !w.contains("error="), "{w}");
            w.split(',').next().unwrap().to_owned()
        })
        .collect();
    prefixes.sort();
    assert_eq!(prefixes, ["prefix=other:", "prefix=todo:"]);
    let size: i64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(size, 14);
    assert!(stored(&mut c, "other:7").is_some() && stored(&mut c, "todo:7").is_some());
}

/// FLUSHDB (not only FLUSHALL) stops a running warm-up, which then stores nothing more and says
/// why, and forgets the negative entries. The warm-up is held by MongoDB's `failCommand` so that
/// it is running when the flush comes.
#[test]
fn flushdb_stops_a_warm_up_and_forgets_negative_entries() {
    let Some(mongo) = Mongo::with_test_commands("warm-flushdb") else {
        return;
    };
    let db = seed(&mongo, "warm-flushdb", 20);
    let redis = Redis::with(&mongo.uri, &mappings(&db))
        .config("invalidation", "off")
        .start();
    let mut c = redis.conn();
    // A negative entry: todo:99 is not in MongoDB; then it is, but the entry answers nil.
    assert_eq!(rt_get(&mut c, "todo:99").unwrap(), None);
    mongo.insert(&db, "todos", vec![doc! {"id": "99", "name": "late"}]);
    assert_eq!(
        rt_get(&mut c, "todo:99").unwrap(),
        None,
        "the negative entry"
    );
    mongo.hold_finds(1, 1500);
    let ok: String = redis::cmd("RT.WARM").arg("todo:").query(&mut c).unwrap();
    assert_eq!(ok, "OK");
    assert!(
        redis
            .info_str("warm_0")
            .is_some_and(|w| w.contains("running=1")),
        "the warm-up is held by MongoDB"
    );
    let _: () = redis::cmd("FLUSHDB").query(&mut c).unwrap();
    wait_until("the warm-up to end", Duration::from_secs(20), || {
        redis
            .info_str("warm_0")
            .is_some_and(|w| w.contains("running=0"))
    });
    let w = redis.info_str("warm_0").unwrap();
    assert!(
        w.contains("stopped by FLUSHALL/FLUSHDB") && w.contains("stored=0,"),
        "{w}"
    );
    let size: i64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(size, 0, "nothing stored after the flush");
    // The negative entry went with the flush: the document is found now.
    let v = rt_get(&mut c, "todo:99").unwrap();
    assert_eq!(name_of(&v).as_deref(), Some("late"));
}

/// `RT.WARM` is a write command: a replica refuses it with `READONLY`, and stores nothing.
#[test]
fn rt_warm_on_a_replica_is_readonly() {
    let mongo = Mongo::shared();
    let db = seed(mongo, "warm-replica", 5);
    let master = Redis::with(&mongo.uri, &mappings(&db)).start();
    let replica = Redis::with(&mongo.uri, &mappings(&db)).replica_of(&master);
    let mut r = replica.conn();
    let e = err_of(redis::cmd("RT.WARM").arg("todo:").query::<String>(&mut r));
    assert!(e.starts_with("READONLY"), "{e}");
    assert!(replica.info_str("warm_0").is_none(), "no warm-up started");
    // On the master it runs, and the replica gets the keys by replication.
    let ok: String = redis::cmd("RT.WARM")
        .arg("todo:")
        .query(&mut master.conn())
        .unwrap();
    assert_eq!(ok, "OK");
    wait_until("replicated warm-up", Duration::from_secs(20), || {
        redis::cmd("DBSIZE").query::<i64>(&mut r).unwrap() == 5
    });
}

/// Rename and dropDatabase events (and the invalidate that follows them) remove every key of
/// the mapped prefix, as a drop does.
#[test]
fn rename_and_drop_database_empty_the_prefix() {
    let mongo = Mongo::shared();
    for how in ["rename", "dropDatabase"] {
        let db = seed(mongo, &format!("cdc-{how}"), 5);
        let redis = Redis::with(&mongo.uri, &mappings(&db)).watching().start();
        let mut c = redis.conn();
        let keys: Vec<String> = (1..=5).map(|i| format!("todo:{i}")).collect();
        let _: Vec<Option<String>> = redis::cmd("RT.MGET").arg(&keys).query(&mut c).unwrap();
        redis::cmd("SET")
            .arg(&["other:1", "kept"])
            .query::<()>(&mut c)
            .unwrap();
        let purges = redis.info()["cdc_purges"];
        if how == "rename" {
            mongo.command(
                "admin",
                doc! {"renameCollection": format!("{db}.todos"), "to": format!("{db}.moved")},
            );
        } else {
            mongo.command(&db, doc! {"dropDatabase": 1});
        }
        eventually(&redis, &format!("{how} to empty the prefix"), || {
            let k: Vec<String> = redis::cmd("KEYS").arg("todo:*").query(&mut c).unwrap();
            k.is_empty()
        });
        assert_eq!(stored(&mut c, "other:1").as_deref(), Some("kept"), "{how}");
        assert!(redis.info()["cdc_purges"] > purges, "{how}");
    }
}

/// When an update changes the mapped field, the key of the old value is deleted too (the
/// `_id → id` index of loaded documents says which it was).
#[test]
fn an_update_of_the_mapped_field_deletes_the_old_key() {
    let Fixture {
        mongo,
        db,
        redis,
        mut c,
    } = fixture_with("cdc-idchange", 5, |r| r.watching());
    rt_get(&mut c, "todo:3").unwrap().unwrap();
    mongo.update_one(&db, "todos", doc! {"id": "3"}, doc! {"$set": {"id": "33"}});
    eventually(&redis, "the old key to go", || {
        stored(&mut c, "todo:3").is_none()
    });
    assert_eq!(
        rt_get(&mut c, "todo:3").unwrap(),
        None,
        "no document has id 3 now"
    );
    assert_eq!(
        name_of(&rt_get(&mut c, "todo:33").unwrap()).as_deref(),
        Some("todo 3")
    );
}

/// A load in flight when its document changes is answered but not stored. MongoDB holds the
/// load's `find` (failCommand) while the change event reaches the watcher.
#[test]
fn a_load_in_flight_when_its_document_changes_is_answered_but_not_stored() {
    let Some(mongo) = Mongo::with_test_commands("cdc-inflight") else {
        return;
    };
    let db = seed(&mongo, "cdc-inflight", 3);
    let redis = Redis::with(&mongo.uri, &mappings(&db))
        .config("timeout", "20000")
        .watching()
        .start();
    let mut c = redis.conn();
    assert!(rt_get(&mut c, "todo:1").unwrap().is_some(), "warm the pool");
    mongo.hold_finds(1, 3000);
    let reader = redis.spawn_rt_get("todo:2");
    redis.wait_blocked(1);
    let events = redis.info()["cdc_events"];
    mongo.update_one(
        &db,
        "todos",
        doc! {"id": "2"},
        doc! {"$set": {"name": "changed"}},
    );
    eventually(&redis, "the event during the load", || {
        redis.info()["cdc_events"] > events
    });
    let answered = reader.join().unwrap().unwrap();
    assert!(answered.is_some(), "answered");
    assert!(
        redis.info_field("clients", "blocked_clients") == 0 && redis.info()["inflight"] == 0,
        "the load ended"
    );
    assert_eq!(stored(&mut c, "todo:2"), None, "not stored");
    assert_eq!(
        name_of(&rt_get(&mut c, "todo:2").unwrap()).as_deref(),
        Some("changed"),
        "the next read loads the changed document"
    );
}

/// A delete event of a mapping on a field other than `_id`, for a document this node did not
/// load (a key set by hand: not in the `_id → id` index) and without pre-images, cannot be
/// placed: it is counted, and the key lives until its TTL. On a quiet MongoDB
/// (`Mongo::quiet`), so that the watcher cannot have seen the seeding's inserts.
#[test]
fn a_delete_that_cannot_be_placed_is_counted_and_the_key_kept() {
    let mongo = Mongo::quiet("cdc-unplaced");
    let db = seed(&mongo, "cdc-unplaced", 5);
    let redis = Redis::with(&mongo.uri, &mappings(&db)).watching().start();
    let mut c = redis.conn();
    redis::cmd("SET")
        .arg(&["todo:5", "set by hand"])
        .query::<()>(&mut c)
        .unwrap();
    rt_get(&mut c, "todo:4").unwrap().unwrap();
    mongo.delete_one(&db, "todos", doc! {"id": "5"});
    mongo.delete_one(&db, "todos", doc! {"id": "4"});
    // todo:4 was loaded here, so its delete is placed; events apply in order, so by then
    // todo:5's was handled.
    eventually(&redis, "the placed delete", || {
        stored(&mut c, "todo:4").is_none()
    });
    assert_eq!(redis.info()["cdc_unplaced_deletes"], 1);
    assert_eq!(stored(&mut c, "todo:5").as_deref(), Some("set by hand"));
}
