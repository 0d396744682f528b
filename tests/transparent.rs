//! Transparent read-through: plain GET/MGET from unmodified clients on mapped prefixes, through
//! the command filter, and the key-miss prefetch for other read commands.

mod common;

use common::*;
use std::time::Duration;

/// A plain GET.
fn get(c: &mut redis::Connection, key: &str) -> Option<String> {
    redis::cmd("GET").arg(key).query(c).unwrap()
}

fn exists(c: &mut redis::Connection, key: &str) -> bool {
    redis::cmd("EXISTS").arg(key).query::<i64>(c).unwrap() == 1
}

#[test]
fn plain_get_reads_through_and_other_keys_are_untouched() {
    let Fixture { redis, mut c, .. } = fixture("tget", 3);
    let v = get(&mut c, "todo:1").expect("the first GET of a cold mapped key returns the document");
    assert_eq!(json(&v)["id"], "1");
    let pttl: i64 = redis::cmd("PTTL").arg("todo:1").query(&mut c).unwrap();
    assert!(pttl > 3_500_000, "stored with the TTL: {pttl}");
    assert_eq!(
        get(&mut c, "todo:1").as_deref(),
        Some(v.as_str()),
        "then a hit"
    );
    assert_eq!(
        get(&mut c, "todo:404"),
        None,
        "absent document: nil, as GET"
    );
    // Unmapped keys and malformed GETs behave exactly as without the module.
    assert_eq!(get(&mut c, "user:1"), None);
    let _: () = redis::cmd("SET")
        .arg("user:1")
        .arg("plain")
        .query(&mut c)
        .unwrap();
    assert_eq!(get(&mut c, "user:1").as_deref(), Some("plain"));
    assert_eq!(
        get(&mut c, "todo:"),
        None,
        "an empty id is not mapped: plain GET"
    );
    let e = err_of(redis::cmd("GET").query::<Option<String>>(&mut c));
    assert!(e.contains("wrong number of arguments for 'get'"), "{e}");
    let _: () = redis::cmd("RPUSH")
        .arg("todo:list")
        .arg("x")
        .query(&mut c)
        .unwrap();
    assert!(err_of(
        redis::cmd("GET")
            .arg("todo:list")
            .query::<Option<String>>(&mut c)
    )
    .starts_with("WRONGTYPE"));
    // Through redis-cli, RESP2 and RESP3.
    assert_eq!(json(&redis.cli(&["GET", "todo:2"]))["id"], "2");
    assert_eq!(json(&redis.cli(&["-3", "GET", "todo:3"]))["id"], "3");
    assert_eq!(redis.cli(&["-3", "GET", "todo:405"]), "");
    let info = redis.info();
    assert_eq!((info["loads"], info["not_found"], info["hits"]), (3, 2, 1));
}

#[test]
fn mget_reads_through_when_all_keys_are_mapped_and_mixed_mget_prefetches() {
    let Fixture { redis, mut c, .. } = fixture("tmget", 5);
    let v: Vec<Option<String>> = redis::cmd("MGET")
        .arg("todo:1")
        .arg("todo:2")
        .arg("todo:99")
        .query(&mut c)
        .unwrap();
    assert_eq!(json(v[0].as_ref().unwrap())["id"], "1");
    assert_eq!(json(v[1].as_ref().unwrap())["id"], "2");
    assert_eq!(v[2], None);
    // Mixed: plain MGET semantics; the cold mapped key is prefetched for the next read.
    let _: () = redis::cmd("SET")
        .arg("user:1")
        .arg("u")
        .query(&mut c)
        .unwrap();
    let v: Vec<Option<String>> = redis::cmd("MGET")
        .arg("user:1")
        .arg("todo:3")
        .query(&mut c)
        .unwrap();
    assert_eq!(v, vec![Some("u".to_string()), None]);
    wait_until("the prefetch of todo:3", Duration::from_secs(10), || {
        exists(&mut c, "todo:3")
    });
    assert!(redis.info()["prefetches"] >= 1);
}

#[test]
fn a_miss_of_any_read_command_prefetches_so_the_next_get_hits() {
    let Fixture { redis, mut c, .. } = fixture("prefetch", 5);
    for (cmd, key) in [
        ("EXISTS", "todo:1"),
        ("STRLEN", "todo:2"),
        ("TYPE", "todo:3"),
    ] {
        let _: redis::Value = redis::cmd(cmd).arg(key).query(&mut c).unwrap();
        wait_until("the prefetch", Duration::from_secs(10), || {
            exists(&mut c, key)
        });
    }
    let _: redis::Value = redis::cmd("GETRANGE")
        .arg("todo:4")
        .arg(0)
        .arg(3)
        .query(&mut c)
        .unwrap();
    wait_until("the prefetch", Duration::from_secs(10), || {
        exists(&mut c, "todo:4")
    });
    let info = redis.info();
    assert_eq!((info["prefetches"], info["loads"]), (4, 4));
    assert!(get(&mut c, "todo:1").is_some());
    let info = redis.info();
    assert_eq!(
        (info["loads"], info["hits"]),
        (4, 1),
        "the GET after EXISTS is a hit, no new load"
    );
    // Unmapped misses and absent ids do not load; the negative cache is respected.
    let _: i64 = redis::cmd("EXISTS").arg("user:9").query(&mut c).unwrap();
    let _: i64 = redis::cmd("EXISTS").arg("todo:999").query(&mut c).unwrap();
    wait_until("the absent prefetch", Duration::from_secs(10), || {
        redis.info()["not_found"] == 1
    });
    let _: i64 = redis::cmd("EXISTS").arg("todo:999").query(&mut c).unwrap();
    // The key-miss hook decides on the main thread before EXISTS replies: `prefetches` and
    // `inflight` are final when it returns, so no wait is needed to see that nothing started.
    let info = redis.info();
    assert_eq!(
        (info["prefetches"], info["inflight"], info["not_found"]),
        (5, 0, 1),
        "negative entry: no second load"
    );
}

#[test]
fn inside_multi_and_lua_get_behaves_like_get_and_prefetches() {
    let Fixture {
        redis: _redis,
        mut c,
        ..
    } = fixture("tmulti", 3);
    let cached = get(&mut c, "todo:1").unwrap();
    let (a, b): (Option<String>, Option<String>) = redis::pipe()
        .atomic()
        .cmd("GET")
        .arg("todo:1")
        .cmd("GET")
        .arg("todo:2")
        .query(&mut c)
        .unwrap();
    assert_eq!(a.as_deref(), Some(cached.as_str()));
    assert_eq!(b, None, "a miss inside EXEC is nil, as GET");
    wait_until("the prefetch from EXEC", Duration::from_secs(10), || {
        exists(&mut c, "todo:2")
    });
    let script = "return redis.call('GET', KEYS[1])";
    let v: Option<String> = redis::cmd("EVAL")
        .arg(script)
        .arg(1)
        .arg("todo:3")
        .query(&mut c)
        .unwrap();
    assert_eq!(v, None, "a miss inside a script is nil");
    wait_until("the prefetch from Lua", Duration::from_secs(10), || {
        exists(&mut c, "todo:3")
    });
    let v: Option<String> = redis::cmd("EVAL")
        .arg(script)
        .arg(1)
        .arg("todo:3")
        .query(&mut c)
        .unwrap();
    assert_eq!(json(&v.unwrap())["id"], "3");
    let v: Vec<Option<String>> = redis::cmd("EVAL")
        .arg("return redis.call('MGET', KEYS[1], KEYS[2])")
        .arg(2)
        .arg("todo:1")
        .arg("todo:9")
        .query(&mut c)
        .unwrap();
    assert_eq!(
        (v[0].as_deref(), v[1].as_deref()),
        (Some(cached.as_str()), None)
    );
}

#[test]
fn master_and_replica_both_read_through_and_replication_is_not_rewritten() {
    let mongo = Mongo::shared();
    let db = seed(mongo, "trepl", 3);
    let master = Redis::with(&mongo.uri, &mappings(&db)).start();
    let replica = Redis::with(&mongo.uri, &mappings(&db)).replica_of(&master);
    let mut m = master.conn();
    let mut r = replica.conn();
    let v = get(&mut m, "todo:1").unwrap();
    wait_until("the value on the replica", Duration::from_secs(10), || {
        redis::cmd("EXISTS")
            .arg("todo:1")
            .query::<i64>(&mut r)
            .unwrap()
            == 1
    });
    assert_eq!(
        get(&mut r, "todo:1").as_deref(),
        Some(v.as_str()),
        "replica GET is a hit"
    );
    assert_eq!(
        replica.info()["loads"],
        0,
        "the replicated SET was applied as is, nothing loaded"
    );
    // A miss of another read command on a replica prefetches nothing (it could not be stored).
    let _: i64 = redis::cmd("EXISTS").arg("todo:3").query(&mut r).unwrap();
    // Decided before EXISTS replies (see above): final now.
    let info = replica.info();
    assert_eq!((info["prefetches"], info["inflight"]), (0, 0));
    // A cold key read on the replica is loaded and returned there, not written.
    assert_eq!(json(&get(&mut r, "todo:2").unwrap())["id"], "2");
    assert!(!exists(&mut r, "todo:2"));
    assert!(
        !exists(&mut m, "todo:2"),
        "nothing flows back to the master"
    );
}

#[test]
fn transparent_off_turns_it_all_off_at_runtime() {
    let Fixture { redis, mut c, .. } = fixture("toff", 3);
    config_set(&mut c, "readthrough.transparent", "no");
    assert_eq!(get(&mut c, "todo:1"), None, "plain GET again");
    let _: i64 = redis::cmd("EXISTS").arg("todo:2").query(&mut c).unwrap();
    // Decided before EXISTS replies: nothing started means nothing will load.
    let info = redis.info();
    assert_eq!(
        (info["prefetches"], info["inflight"], info["loads"]),
        (0, 0, 0),
        "no prefetch either"
    );
    assert_eq!(
        json(&common::rt_get(&mut c, "todo:1").unwrap().unwrap())["id"],
        "1",
        "RT.GET still works"
    );
    config_set(&mut c, "readthrough.transparent", "yes");
    assert_eq!(json(&get(&mut c, "todo:3").unwrap())["id"], "3");
}

#[test]
fn acl_key_permissions_apply_to_the_transparent_get() {
    let mongo = Mongo::shared();
    let db = seed(mongo, "tacl", 2);
    let redis = Redis::with(
        &mongo.uri,
        &format!("{} secret:={db}.todos:id", mappings(&db)),
    )
    .start();
    let mut admin = redis.conn();
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("reader")
        .arg("on")
        .arg(">pw")
        .arg("~todo:*")
        .arg("+@read")
        .arg("+rt.tget")
        .arg("+rt.tmget")
        .query(&mut admin)
        .unwrap();
    let url = format!("redis://reader:pw@127.0.0.1:{}/", redis.port);
    let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
    assert_eq!(json(&get(&mut c, "todo:1").unwrap())["id"], "1");
    let e = err_of(
        redis::cmd("GET")
            .arg("secret:1")
            .query::<Option<String>>(&mut c),
    );
    assert!(e.starts_with("NOPERM"), "key permissions still apply: {e}");
    assert!(
        !exists(&mut admin, "secret:1"),
        "nothing loaded for a refused key"
    );
}

/// `INFO commandstats` calls of `command` (lowercase, as Redis names it there).
fn calls(redis: &Redis, command: &str) -> i64 {
    redis
        .info_section("commandstats")
        .get(&format!("cmdstat_{command}"))
        .and_then(|v| v.split(',').find_map(|f| f.strip_prefix("calls=")))
        .map_or(0, |n| n.parse().unwrap())
}

#[test]
fn a_read_of_cached_keys_runs_as_the_native_command_where_the_server_names_the_client() {
    let Fixture { redis, mut c, .. } = fixture("tnative", 3);
    // Cold: rewritten and loaded.
    assert_eq!(json(&get(&mut c, "todo:1").unwrap())["id"], "1");
    assert_eq!(calls(&redis, "rt.tget"), 1);
    let (gets, hits) = (calls(&redis, "get"), redis.info()["hits"]);
    // Cached: the same answer, a hit; on 7.2+ and Valkey the native GET answers it (cheaper),
    // on 7.0 (its filter does not say which client, so not which DB) the rewritten read.
    let v: Vec<Option<String>> = redis::cmd("MGET")
        .arg(&["todo:1", "todo:1"])
        .query(&mut c)
        .unwrap();
    assert!(v.iter().all(|v| json(v.as_deref().unwrap())["id"] == "1"));
    assert_eq!(json(&get(&mut c, "todo:1").unwrap())["id"], "1");
    assert_eq!(redis.info()["hits"], hits + 3);
    let native = server_version() >= ("redis".into(), 7, 2) || server_version().0 == "valkey";
    if native {
        assert_eq!(
            (calls(&redis, "get") - gets, calls(&redis, "rt.tget")),
            (1, 1)
        );
        assert_eq!(calls(&redis, "rt.tmget"), 0);
    } else {
        assert_eq!(calls(&redis, "get"), gets);
        assert_eq!(calls(&redis, "rt.tget"), 2);
    }
    // In another DB the key is not cached: rewritten, loaded there.
    let _: () = redis::cmd("SELECT").arg(3).query(&mut c).unwrap();
    assert_eq!(json(&get(&mut c, "todo:1").unwrap())["id"], "1");
    assert_eq!(calls(&redis, "rt.tget"), if native { 2 } else { 3 });
    // A mapped key of another type: the native error, as ever, and not a hit.
    let _: () = redis::cmd("RPUSH")
        .arg("todo:9")
        .arg("x")
        .query(&mut c)
        .unwrap();
    let hits = redis.info()["hits"];
    assert!(err_of(
        redis::cmd("GET")
            .arg("todo:9")
            .query::<Option<String>>(&mut c)
    )
    .starts_with("WRONGTYPE"));
    assert_eq!(redis.info()["hits"], hits);
}

/// `HGETALL key` on `c`: the fields and values, sorted.
fn hgetall(c: &mut redis::Connection, key: &str) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = redis::cmd("HGETALL").arg(key).query(c).unwrap();
    fields.sort();
    fields
}

#[test]
fn a_read_of_a_cached_hash_runs_as_the_native_command_on_every_server_while_it_knows_the_db() {
    let mongo = Mongo::shared();
    let db = seed(mongo, "tnativedb", 3);
    let redis = Redis::with(&mongo.uri, &format!("h:={db}.todos:id;format=hash")).start();
    let (mut c, mut d) = (redis.conn(), redis.conn());
    let loaded = hgetall(&mut c, "h:1");
    assert!(
        loaded.contains(&("name".into(), "todo 1".into())),
        "{loaded:?}"
    );
    assert_eq!(calls(&redis, "rt.thgetall"), 1);
    // Cached: the native HGETALL answers, also on Redis 7.0, whose filter does not name the
    // client: every client reads DB 0 until one selects another.
    assert_eq!(hgetall(&mut c, "h:1"), loaded);
    assert_eq!(calls(&redis, "rt.thgetall"), 1);
    // A client in DB 1 does not see DB 0's value: its read is rewritten and loads into DB 1.
    let _: () = redis::cmd("SELECT").arg(1).query(&mut d).unwrap();
    assert_eq!(hgetall(&mut d, "h:1"), loaded);
    assert_eq!(calls(&redis, "rt.thgetall"), 2);
    let in_db1: i64 = redis::cmd("EXISTS").arg("h:1").query(&mut d).unwrap();
    assert_eq!(in_db1, 1, "loaded into the client's own DB");
    // Cached in both DBs now. On 7.2+ and Valkey each client's DB is known: native. On 7.0,
    // once a client has selected another DB the filter cannot tell whose DB a read is in: the
    // rewritten read answers it, from the right DB.
    assert_eq!(hgetall(&mut c, "h:1"), loaded);
    assert_eq!(hgetall(&mut d, "h:1"), loaded);
    let named = server_version() >= ("redis".into(), 7, 2) || server_version().0 == "valkey";
    assert_eq!(calls(&redis, "rt.thgetall"), if named { 2 } else { 4 });
    // What a DB holds is its own: deleted in DB 1, a read there loads again, DB 0 keeps its own.
    let _: () = redis::cmd("DEL").arg("h:1").query(&mut d).unwrap();
    assert_eq!(hgetall(&mut d, "h:1"), loaded);
    assert_eq!(calls(&redis, "rt.thgetall"), if named { 3 } else { 5 });
}

#[test]
fn with_a_grace_window_a_plain_get_in_it_serves_stale_and_refreshes() {
    let Fixture {
        mongo,
        db,
        redis,
        mut c,
    } = fixture_with("tgrace", 2, |r| {
        r.config("invalidation", "off")
            .config("ttl", "2")
            .config("ttl-jitter", "0")
            .config("grace", "30")
    });
    let old = get(&mut c, "todo:1").unwrap();
    mongo.update_one(
        &db,
        "todos",
        mongodb::bson::doc! {"id": "1"},
        mongodb::bson::doc! {"$set": {"name": "new"}},
    );
    let fresh = |c: &mut redis::Connection| {
        redis::cmd("PTTL").arg("todo:1").query::<i64>(c).unwrap() > 30_000
    };
    wait_until("the grace window", Duration::from_secs(10), || {
        !fresh(&mut c)
    });
    assert_eq!(get(&mut c, "todo:1").unwrap(), old, "stale at once");
    wait_until("the background refresh", Duration::from_secs(10), || {
        json(&common::stored(&mut c, "todo:1").unwrap())["name"] == "new"
    });
    assert_eq!(redis.info()["refreshes"], 1);
}

#[test]
fn a_mapping_set_at_runtime_is_read_through_at_once_and_a_removed_one_no_longer() {
    let Fixture {
        db,
        redis: _redis,
        mut c,
        ..
    } = fixture("truntime", 3);
    // A prefix whose first byte no mapping had: the filter's screen must let it through.
    assert_eq!(get(&mut c, "zz:1"), None);
    let before = config_get(&mut c, "readthrough.mappings");
    config_set(
        &mut c,
        "readthrough.mappings",
        &format!("{before} zz:={db}.todos:id"),
    );
    assert_eq!(json(&get(&mut c, "zz:1").unwrap())["id"], "1");
    let mget: Vec<Option<String>> = redis::cmd("MGET")
        .arg(&["zz:2", "todo:3"])
        .query(&mut c)
        .unwrap();
    assert!(mget.iter().all(Option::is_some), "{mget:?}");
    // Removed: zz:3 is not loaded; todo: still is.
    config_set(&mut c, "readthrough.mappings", &before);
    assert_eq!(get(&mut c, "zz:3"), None);
    assert_eq!(json(&get(&mut c, "todo:2").unwrap())["id"], "2");
}
