//! Every value shape end to end: `format=json` (the server's JSON module loaded beside ours:
//! RedisJSON on Redis, valkey-json on Valkey),
//! `format=hash` and `format=string`, projections (`fields=`), the empty prefix (the original
//! demo's bare ids), and the transparent reads of each format (`JSON.GET`, `JSON.MGET`, `HGET`,
//! `HMGET`, `HGETALL`), through every path: misses, single-flight, negative cache, refresh,
//! invalidation, change streams, warm-up, replication, wrong types.
//! The JSON tests say they are skipped when that module is not built (`make rejson`).

mod common;

use common::*;
use mongodb::bson::{doc, oid::ObjectId, DateTime};
use redis::Value;
use std::time::Duration;

fn cmd(c: &mut redis::Connection, args: &[&str]) -> redis::RedisResult<Value> {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(c)
}

fn text(c: &mut redis::Connection, args: &[&str]) -> Option<String> {
    match cmd(c, args).unwrap() {
        Value::Nil => None,
        Value::BulkString(b) => Some(String::from_utf8(b).unwrap()),
        Value::SimpleString(s) => Some(s),
        other => panic!("{args:?}: not a string: {other:?}"),
    }
}

/// A flat field/value array (RESP2 HGETALL) as pairs.
fn pairs(v: Value) -> Vec<(String, String)> {
    let Value::Array(items) = v else {
        panic!("not an array: {v:?}")
    };
    let s: Vec<String> = items
        .into_iter()
        .map(|i| match i {
            Value::BulkString(b) => String::from_utf8(b).unwrap(),
            other => panic!("not a bulk string: {other:?}"),
        })
        .collect();
    s.chunks(2).map(|c| (c[0].clone(), c[1].clone())).collect()
}

fn loads(redis: &Redis) -> i64 {
    redis.info()["loads"]
}

fn set_transparent(c: &mut redis::Connection, on: bool) {
    let v = if on { "yes" } else { "no" };
    config_set(c, "readthrough.transparent", v);
}

#[test]
fn json_get_of_a_bare_id_reads_through_as_the_original_demo_did() {
    let mongo = Mongo::shared();
    let db = seed(mongo, "jbare", 60);
    let mapping = format!("={db}.todos:id;format=json;fields=-_id");
    let Some(redis) = json_redis(&mongo.uri, &mapping, &[]) else {
        return;
    };
    let mut c = redis.conn();
    // The demo's read: JSON.GET of a bare id, cold; the document without _id.
    let v = text(&mut c, &["JSON.GET", "42"]).expect("loaded on the first read");
    assert_eq!(
        json(&v),
        json(r#"{"id":"42","name":"todo 42","description":"d"}"#)
    );
    assert_eq!(text(&mut c, &["TYPE", "42"]).unwrap(), "ReJSON-RL");
    let ttl: i64 = redis::cmd("TTL").arg("42").query(&mut c).unwrap();
    assert!((3000..=3960).contains(&ttl), "ttl {ttl}");
    // Paths and options on cold keys give what the native command gives on the stored key.
    let cold = [
        vec!["JSON.GET", "43", "$.name"],
        vec!["JSON.GET", "44", ".description"],
        vec![
            "JSON.GET", "45", "INDENT", "  ", "NEWLINE", "\n", "SPACE", " ", "$",
        ],
        vec!["JSON.GET", "46", "$.name", "$.id"],
        vec!["JSON.GET", "47", "$.nope"],
    ];
    let mut through = Vec::new();
    for args in &cold {
        through.push(cmd(&mut c, args).unwrap());
    }
    set_transparent(&mut c, false);
    for (args, got) in cold.iter().zip(&through) {
        let native = cmd(&mut c, args).unwrap();
        if args.len() == 4 {
            // Several paths: RedisJSON itself orders them differently from call to call.
            let as_json = |v: &Value| match v {
                Value::BulkString(b) => json(std::str::from_utf8(b).unwrap()),
                other => panic!("{other:?}"),
            };
            assert_eq!(as_json(&native), as_json(got), "{args:?}");
        } else {
            assert_eq!(&native, got, "{args:?}");
        }
    }
    assert_eq!(
        text(&mut c, &["JSON.GET", "43", "$.name"]).unwrap(),
        r#"["todo 43"]"#
    );
    // RT.GET answers what JSON.GET key answers.
    let native = text(&mut c, &["JSON.GET", "42"]).unwrap();
    assert_eq!(text(&mut c, &["RT.GET", "42"]).unwrap(), native);
    set_transparent(&mut c, true);
    let cold_rt = text(&mut c, &["RT.GET", "50"]).unwrap();
    assert_eq!(text(&mut c, &["JSON.GET", "50"]).unwrap(), cold_rt);
    // An id MongoDB does not have: nil, remembered.
    assert_eq!(text(&mut c, &["JSON.GET", "999999"]), None);
    assert_eq!(text(&mut c, &["JSON.GET", "999999", "$.name"]), None);
    assert!(redis.info()["negative_hits"] >= 1);
    // The module's own keys are never mapped, even by the empty prefix.
    assert_eq!(text(&mut c, &["GET", "__readthrough__:x"]), None);
}

/// Where RedisJSON and valkey-json answer differently, a transparent read of a cold mapped key
/// answers as the loaded module does (README, Compatibility): what each says is pinned here.
#[test]
fn the_two_json_modules_differ_only_where_the_readme_says() {
    let mongo = Mongo::shared();
    let db = seed(mongo, "jdiff", 10);
    let mapping = format!("j:={db}.todos:id;format=json;fields=name,id");
    let Some(redis) = json_redis(&mongo.uri, &mapping, &[]) else {
        return;
    };
    let mut c = redis.conn();
    let valkey = json_module_name() == "valkey-json";
    // The same compact text from RT.GET and a plain JSON.GET, cold, with both modules.
    let v = cmd(&mut c, &["RT.GET", "j:1"]).unwrap();
    assert_eq!(
        v,
        Value::BulkString(br#"{"id":"1","name":"todo 1"}"#.to_vec())
    );
    let v = cmd(&mut c, &["JSON.GET", "j:2"]).unwrap();
    assert_eq!(
        v,
        Value::BulkString(br#"{"id":"2","name":"todo 2"}"#.to_vec())
    );
    // A legacy path that matches nothing, on a cold key: the module's own error, after the load.
    let e = err_of(cmd(&mut c, &["JSON.GET", "j:3", "nothing"]));
    if valkey {
        assert!(e.starts_with("NONEXISTENT"), "{e}");
    } else {
        assert!(e.contains("Path '$.nothing' does not exist"), "{e}");
    }
    assert_eq!(
        stored_type(&mut c, "j:3"),
        "ReJSON-RL",
        "loaded all the same"
    );
    // JSON.MGET of a cold mapped key beside a mapped key holding another type: RedisJSON
    // answers nil for that key, valkey-json refuses the whole command; the cold key is loaded
    // either way, and the other is never overwritten.
    let _: () = redis::cmd("SET").arg("j:5").arg("x").query(&mut c).unwrap();
    let r = cmd(&mut c, &["JSON.MGET", "j:4", "j:5", "$.name"]);
    if valkey {
        assert!(err_of(r).starts_with("WRONGTYPE"));
    } else {
        assert_eq!(
            r.unwrap(),
            Value::Array(vec![
                Value::BulkString(br#"["todo 4"]"#.to_vec()),
                Value::Nil
            ])
        );
    }
    assert_eq!(stored_type(&mut c, "j:4"), "ReJSON-RL");
    assert_eq!(stored_type(&mut c, "j:5"), "string");
    // JSON.GET of a key of another type: each module's own words.
    let e = err_of(cmd(&mut c, &["JSON.GET", "j:5"]));
    if valkey {
        assert!(e.starts_with("WRONGTYPE"), "{e}");
    } else {
        assert!(e.contains("wrong Redis type"), "{e}");
    }
}

/// The type of what Redis holds at `key`, read without a load.
fn stored_type(c: &mut redis::Connection, key: &str) -> String {
    redis::cmd("EVAL")
        .arg("return redis.call('TYPE', KEYS[1])['ok']")
        .arg(1)
        .arg(key)
        .query(c)
        .unwrap()
}

#[test]
fn json_mget_and_rt_mget_across_formats_answer_each_key_in_its_format() {
    let mongo = Mongo::shared();
    let db = seed(mongo, "jmget", 20);
    let mapping = format!(
        "s:={db}.todos:id j:={db}.todos:id;format=json;fields=name h:={db}.todos:id;format=hash;fields=name,id"
    );
    let Some(redis) = json_redis(&mongo.uri, &mapping, &[]) else {
        return;
    };
    let mut c = redis.conn();
    let through = cmd(
        &mut c,
        &["JSON.MGET", "j:1", "j:2", "j:999", "j:1", "$.name"],
    )
    .unwrap();
    set_transparent(&mut c, false);
    let native = cmd(
        &mut c,
        &["JSON.MGET", "j:1", "j:2", "j:999", "j:1", "$.name"],
    )
    .unwrap();
    assert_eq!(through, native);
    let Value::Array(items) = native else {
        panic!()
    };
    assert_eq!(items[1], Value::BulkString(br#"["todo 2"]"#.to_vec()));
    assert_eq!(items[2], Value::Nil);
    set_transparent(&mut c, true);
    // RT.MGET: a string, a JSON document, a hash, a miss, each as its format is read.
    let v = cmd(&mut c, &["RT.MGET", "s:3", "j:3", "h:3", "h:999", "j:1"]).unwrap();
    let Value::Array(items) = v else { panic!() };
    let Value::BulkString(s) = &items[0] else {
        panic!()
    };
    assert_eq!(json(std::str::from_utf8(s).unwrap())["name"], "todo 3");
    assert_eq!(
        items[1],
        Value::BulkString(br#"{"name":"todo 3"}"#.to_vec())
    );
    assert_eq!(
        pairs(items[2].clone()),
        vec![("id".into(), "3".into()), ("name".into(), "todo 3".into())]
    );
    assert_eq!(items[3], Value::Nil);
    assert_eq!(
        items[4],
        Value::BulkString(br#"{"name":"todo 1"}"#.to_vec())
    );
    // The same again, from the cache.
    let again = cmd(&mut c, &["RT.MGET", "s:3", "j:3", "h:3", "h:999", "j:1"]).unwrap();
    assert_eq!(again, Value::Array(items));
}

#[test]
fn hash_reads_through_with_every_bson_type_as_documented() {
    let mongo = Mongo::shared();
    let db = unique_db("hash");
    let oid = ObjectId::parse_str("65a1b2c3d4e5f60718293a4b").unwrap();
    mongo.insert(
        &db,
        "things",
        vec![
            doc! { "_id": oid, "sku": "A1", "name": "say \"hi\"", "n": 42, "x": 2.5,
            "done": true, "none": null, "tags": ["a", 1], "meta": { "k": "v" },
            "at": DateTime::from_millis(0) },
            doc! { "sku": "B2", "name": "b" },
        ],
    );
    let redis = Redis::with(&mongo.uri, &format!("t:={db}.things:sku;format=hash")).start();
    let mut c = redis.conn();
    // HGET of a cold key: the field as stored.
    assert_eq!(text(&mut c, &["HGET", "t:A1", "n"]).unwrap(), "42");
    let all = pairs(cmd(&mut c, &["HGETALL", "t:A1"]).unwrap());
    assert_eq!(
        all,
        [
            ("_id", r#"{"$oid":"65a1b2c3d4e5f60718293a4b"}"#),
            ("sku", "A1"),
            ("name", "say \"hi\""),
            ("n", "42"),
            ("x", "2.5"),
            ("done", "true"),
            ("none", "null"),
            ("tags", r#"["a",1]"#),
            ("meta", r#"{"k":"v"}"#),
            ("at", r#"{"$date":"1970-01-01T00:00:00Z"}"#),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .to_vec()
    );
    assert_eq!(text(&mut c, &["TYPE", "t:A1"]).unwrap(), "hash");
    let ttl: i64 = redis::cmd("TTL").arg("t:A1").query(&mut c).unwrap();
    assert!(ttl > 3000, "ttl {ttl}");
    // HMGET cold; RT.GET answers as HGETALL; a missing document is an empty hash.
    let v = cmd(&mut c, &["HMGET", "t:B2", "name", "nope", "sku"]).unwrap();
    assert_eq!(
        v,
        Value::Array(vec![
            Value::BulkString(b"b".to_vec()),
            Value::Nil,
            Value::BulkString(b"B2".to_vec())
        ])
    );
    assert_eq!(
        cmd(&mut c, &["RT.GET", "t:A1"]).unwrap(),
        cmd(&mut c, &["HGETALL", "t:A1"]).unwrap()
    );
    assert_eq!(
        cmd(&mut c, &["HGETALL", "t:none"]).unwrap(),
        Value::Array(vec![])
    );
    assert_eq!(cmd(&mut c, &["HGET", "t:none", "x"]).unwrap(), Value::Nil);
    assert_eq!(cmd(&mut c, &["RT.GET", "t:none"]).unwrap(), Value::Nil);
    // RESP3: a map, as HGETALL gives it, for RT.GET and a cold HGETALL alike.
    let cold3 = redis.cli(&["--no-raw", "-3", "HGETALL", "t:B2"]);
    assert!(cold3.contains("=>"), "{cold3}");
    let rt3 = redis.cli(&["--no-raw", "-3", "RT.GET", "t:B2"]);
    assert_eq!(rt3, cold3);
    let _: () = redis::cmd("DEL").arg("t:B2").query(&mut c).unwrap();
    assert_eq!(
        redis.cli(&["--no-raw", "-3", "HGETALL", "t:B2"]),
        cold3,
        "cold, RESP3"
    );
}

#[test]
fn a_hash_key_goes_through_single_flight_negative_cache_refresh_and_invalidate() {
    let Some(mongo) = Mongo::dedicated("hashpaths") else {
        return;
    };
    let db = seed(&mongo, "hp", 5);
    let proxy = HoldingProxy::start(mongo.port);
    // No change streams: the update below would otherwise race RT.REFRESH, and when its
    // event came second it deleted the refreshed key before RT.INVALIDATE (seen once on
    // Redis 7.4.1). Change events on hashes are tested below.
    let redis = Redis::with(
        &proxy.uri(),
        &format!("h:={db}.todos:id;format=hash;fields=-_id"),
    )
    .config("timeout", 20000)
    .config("invalidation", "off")
    .start();
    // Single flight: 50 cold HGETALLs of one key, one load.
    proxy.hold();
    let readers: Vec<_> = (0..50)
        .map(|_| {
            let url = redis.url();
            std::thread::spawn(move || {
                let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
                pairs(cmd(&mut c, &["HGETALL", "h:1"]).unwrap())
            })
        })
        .collect();
    redis.wait_blocked(50);
    proxy.release();
    let got: Vec<_> = readers.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(got.iter().all(|g| g == &got[0]));
    assert_eq!(
        got[0],
        [("id", "1"), ("name", "todo 1"), ("description", "d")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .to_vec()
    );
    assert_eq!((loads(&redis), redis.info()["coalesced"]), (1, 49));
    let mut c = redis.conn();
    // Negative cache: the second read of a missing id asks MongoDB nothing.
    assert_eq!(
        cmd(&mut c, &["HGETALL", "h:404"]).unwrap(),
        Value::Array(vec![])
    );
    let q = mongo.query_count();
    assert_eq!(cmd(&mut c, &["HGET", "h:404", "name"]).unwrap(), Value::Nil);
    assert_eq!(mongo.query_count(), q, "remembered as absent");
    // RT.REFRESH writes the new document whole: a field gone from it goes from the hash.
    mongo.update_one(
        &db,
        "todos",
        doc! { "id": "1" },
        doc! { "$set": { "name": "renamed" }, "$unset": { "description": "" } },
    );
    let v = cmd(&mut c, &["RT.REFRESH", "h:1"]).unwrap();
    assert_eq!(
        pairs(v),
        vec![("id".into(), "1".into()), ("name".into(), "renamed".into())]
    );
    assert_eq!(text(&mut c, &["HGET", "h:1", "description"]), None);
    let ttl: i64 = redis::cmd("TTL").arg("h:1").query(&mut c).unwrap();
    assert!(ttl > 3000, "a refreshed hash has its TTL: {ttl}");
    // RT.INVALIDATE removes it; the next read loads it again.
    let n: i64 = redis::cmd("RT.INVALIDATE")
        .arg("h:1")
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 1);
    let before = loads(&redis);
    assert_eq!(text(&mut c, &["HGET", "h:1", "name"]).unwrap(), "renamed");
    assert_eq!(loads(&redis), before + 1);
}

#[test]
fn a_key_of_another_type_is_wrongtype_and_never_overwritten() {
    let mongo = Mongo::shared();
    let db = seed(mongo, "wrongtype", 5);
    let redis = Redis::with(
        &mongo.uri,
        &format!("h:={db}.todos:id;format=hash s:={db}.todos:id"),
    )
    .start();
    let mut c = redis.conn();
    let _: () = redis::cmd("SET")
        .arg("h:1")
        .arg("mine")
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("HSET")
        .arg("s:1")
        .arg("f")
        .arg("v")
        .query(&mut c)
        .unwrap();
    for args in [
        vec!["RT.GET", "h:1"],
        vec!["RT.REFRESH", "h:1"],
        vec!["HGETALL", "h:1"],
        vec!["RT.GET", "s:1"],
        vec!["RT.REFRESH", "s:1"],
        vec!["GET", "s:1"],
    ] {
        let e = err_of(cmd(&mut c, &args));
        assert!(e.starts_with("WRONGTYPE"), "{args:?}: {e}");
    }
    assert_eq!(text(&mut c, &["GET", "h:1"]).unwrap(), "mine");
    assert_eq!(text(&mut c, &["HGET", "s:1", "f"]).unwrap(), "v");
    // RT.MGET reads a key of another type as nil, as MGET does.
    let v = cmd(&mut c, &["RT.MGET", "h:1", "h:2"]).unwrap();
    let Value::Array(items) = v else { panic!() };
    assert_eq!(items[0], Value::Nil);
    assert!(matches!(items[1], Value::Array(_)), "{:?}", items[1]);
}

#[test]
fn change_streams_refresh_and_delete_in_the_mapping_s_format_and_projection() {
    let Some(mongo) = Mongo::dedicated("formatcdc") else {
        return;
    };
    let db = seed(&mongo, "fcdc", 5);
    let mapping =
        format!("h:={db}.todos:id;format=hash;fields=name ={db}.todos:id;format=json;fields=-_id");
    let Some(redis) = json_redis(
        &mongo.uri,
        &mapping,
        &["--readthrough.invalidation", "refresh"],
    ) else {
        return;
    };
    redis.wait_watching();
    let mut c = redis.conn();
    assert_eq!(text(&mut c, &["HGET", "h:2", "name"]).unwrap(), "todo 2");
    assert!(text(&mut c, &["JSON.GET", "2"]).is_some());
    mongo.update_one(
        &db,
        "todos",
        doc! { "id": "2" },
        doc! { "$set": { "name": "new" } },
    );
    wait_until("the hash refreshed", Duration::from_secs(10), || {
        text(&mut redis.conn(), &["HGET", "h:2", "name"]).as_deref() == Some("new")
    });
    assert_eq!(
        pairs(cmd(&mut c, &["HGETALL", "h:2"]).unwrap()),
        vec![("name".into(), "new".into())],
        "the projection holds on refresh"
    );
    wait_until(
        "the JSON document refreshed",
        Duration::from_secs(10),
        || text(&mut redis.conn(), &["JSON.GET", "2", "$.name"]).as_deref() == Some(r#"["new"]"#),
    );
    let doc = json(&text(&mut c, &["JSON.GET", "2"]).unwrap());
    assert!(doc.get("_id").is_none(), "{doc}");
    assert_eq!(text(&mut c, &["TYPE", "2"]).unwrap(), "ReJSON-RL");
    // A delete in MongoDB deletes the bare-id key and the prefixed one.
    mongo.delete_one(&db, "todos", doc! { "id": "2" });
    wait_until("both keys deleted", Duration::from_secs(10), || {
        let n: i64 = redis::cmd("EXISTS")
            .arg("2")
            .arg("h:2")
            .query(&mut redis.conn())
            .unwrap();
        n == 0
    });
}

#[test]
fn replicas_get_each_format_with_its_ttl_and_warm_up_stores_the_format() {
    let mongo = Mongo::shared();
    let db = seed(mongo, "freplica", 30);
    let mapping = format!("h:={db}.todos:id;format=hash;fields=-_id");
    let master = Redis::with(&mongo.uri, &mapping).start();
    let replica = Redis::with(&mongo.uri, &mapping).replica_of(&master);
    let mut c = master.conn();
    assert_eq!(text(&mut c, &["HGET", "h:1", "name"]).unwrap(), "todo 1");
    let mut r = replica.conn();
    wait_until("the hash on the replica", Duration::from_secs(10), || {
        text(&mut replica.conn(), &["HGET", "h:1", "name"]).as_deref() == Some("todo 1")
    });
    let ttl: i64 = redis::cmd("PTTL").arg("h:1").query(&mut r).unwrap();
    assert!(ttl > 3_000_000, "the TTL came with the value: {ttl}");
    // The warm-up writes hashes too.
    let ok: String = redis::cmd("RT.WARM").arg("h:").query(&mut c).unwrap();
    assert_eq!(ok, "OK");
    wait_until("warm-up done", Duration::from_secs(30), || {
        master
            .info_str("warm_0")
            .is_some_and(|w| w.contains("running=0"))
    });
    let w = master.info_str("warm_0").unwrap();
    assert!(w.contains("loaded=30,stored=29"), "{w}");
    assert_eq!(text(&mut c, &["TYPE", "h:17"]).unwrap(), "hash");
    assert_eq!(text(&mut c, &["HGET", "h:17", "name"]).unwrap(), "todo 17");
    wait_until(
        "warmed hashes on the replica",
        Duration::from_secs(10),
        || {
            let n: i64 = redis::cmd("DBSIZE").query(&mut replica.conn()).unwrap();
            n == 30
        },
    );
}

#[test]
fn inside_multi_a_cold_read_answers_as_native_and_loads_in_the_background() {
    let mongo = Mongo::shared();
    let db = seed(mongo, "fmulti", 5);
    let redis = Redis::with(&mongo.uri, &format!("h:={db}.todos:id;format=hash")).start();
    let mut c = redis.conn();
    let (all, one): (Value, Value) = redis::pipe()
        .atomic()
        .cmd("HGETALL")
        .arg("h:3")
        .cmd("HGET")
        .arg("h:4")
        .arg("name")
        .query(&mut c)
        .unwrap();
    assert_eq!((all, one), (Value::Array(vec![]), Value::Nil));
    wait_until("loaded in the background", Duration::from_secs(10), || {
        let n: i64 = redis::cmd("EXISTS")
            .arg("h:3")
            .arg("h:4")
            .query(&mut redis.conn())
            .unwrap();
        n == 2
    });
}

#[test]
fn a_transparent_read_keeps_the_native_command_s_acl() {
    let mongo = Mongo::shared();
    let db = seed(mongo, "facl", 5);
    let redis = Redis::with(&mongo.uri, &format!("h:={db}.todos:id;format=hash")).start();
    let mut admin = redis.conn();
    let _: () = redis::cmd("ACL")
        .arg(&[
            "SETUSER",
            "nohgetall",
            "on",
            ">pw",
            "~h:*",
            "+hget",
            "+rt.thget",
        ])
        .arg(&["+rt.thgetall", "-hgetall"])
        .query(&mut admin)
        .unwrap();
    let mut c = redis::Client::open(format!("redis://nohgetall:pw@127.0.0.1:{}/", redis.port))
        .unwrap()
        .get_connection()
        .unwrap();
    assert_eq!(text(&mut c, &["HGET", "h:1", "name"]).unwrap(), "todo 1");
    let e = err_of(cmd(&mut c, &["HGETALL", "h:1"]));
    assert!(e.starts_with("NOPERM") && e.contains("hgetall"), "{e}");
}

#[test]
fn format_json_is_refused_where_no_json_set_exists_and_bad_options_say_why() {
    let mongo = Mongo::shared();
    let redis = Redis::with(&mongo.uri, "").start();
    let mut c = redis.conn();
    let set = |c: &mut redis::Connection, v: &str| config_refused(c, "readthrough.mappings", v);
    let e = set(&mut c, "j:=d.c;format=json");
    assert!(e.contains("JSON.SET"), "{e}");
    for (v, why) in [
        ("j:=d.c;format=xml", "string, json or hash"),
        ("j:=d.c;fields=a,-b", "not both"),
        ("j:=d.c;fields=a..b", "not a field name"),
        ("j:=d.c;colour=red", "unknown option"),
    ] {
        let e = set(&mut c, v);
        assert!(e.contains(why), "{v}: {e}");
    }
    assert_eq!(
        config_get(&mut c, "readthrough.mappings"),
        "",
        "the old value stays in force"
    );
    // At startup, the log says why the module did not load.
    let module = common::module_path().to_string_lossy().into_owned();
    let out = Redis::bare()
        .args(&[
            "--loadmodule",
            &module,
            "--readthrough.mappings",
            "j:=d.c;format=json",
        ])
        .start_failing();
    assert!(out.contains("needs the JSON.SET command"), "{out}");
}

#[test]
fn the_empty_prefix_maps_bare_ids_and_longer_prefixes_still_win() {
    let mongo = Mongo::shared();
    let db = seed(mongo, "fempty", 5);
    let redis = Redis::with(
        &mongo.uri,
        &format!("={db}.todos:id;fields=-_id,-description todo:={db}.todos:id"),
    )
    .start();
    let mut c = redis.conn();
    assert_eq!(
        json(&text(&mut c, &["GET", "3"]).unwrap()),
        json(r#"{"id":"3","name":"todo 3"}"#)
    );
    let full = json(&text(&mut c, &["GET", "todo:3"]).unwrap());
    assert!(full.get("_id").is_some() && full.get("description").is_some());
    assert_eq!(text(&mut c, &["GET", "todo:999"]), None);
    let e = err_of(cmd(&mut c, &["RT.GET", "todo:"]));
    assert!(e.contains("empty id"), "{e}");
}

#[test]
fn a_loaded_value_that_could_not_be_stored_is_still_answered_as_native() {
    let Some(mongo) = Mongo::with_test_commands("unstored") else {
        return;
    };
    let db = seed(&mongo, "unstored", 3);
    let redis = Redis::with(
        &mongo.uri,
        &format!("h:={db}.todos:id;format=hash;fields=-_id"),
    )
    .config("timeout", "20000")
    .start();
    assert_eq!(
        text(&mut redis.conn(), &["HGET", "h:3", "name"]).unwrap(),
        "todo 3",
        "warm the pool"
    );
    // MongoDB holds the one (single-flight) query for 3 s.
    mongo.hold_finds(1, 3000);
    let reads = spawn_reads(
        &redis,
        vec![
            vec!["HGET", "h:1", "name"],
            vec!["HMGET", "h:1", "id", "nope"],
            vec!["HGETALL", "h:1"],
        ],
    );
    redis.wait_blocked(3);
    // A flush while the load is in flight: what it read is answered, not stored.
    let _: () = redis::cmd("FLUSHALL").query(&mut redis.conn()).unwrap();
    let got: Vec<Value> = reads
        .into_iter()
        .map(|h| h.join().unwrap().unwrap())
        .collect();
    assert_eq!(got[0], Value::BulkString(b"todo 1".to_vec()));
    assert_eq!(
        got[1],
        Value::Array(vec![Value::BulkString(b"1".to_vec()), Value::Nil])
    );
    assert_eq!(
        pairs(got[2].clone()),
        [("id", "1"), ("name", "todo 1"), ("description", "d")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .to_vec()
    );
    assert!(!held(&redis, "h:1"), "not stored after the flush");
}

/// The README's `TRYAGAIN`: a transparent `JSON.GET` with a path whose document was loaded but
/// could not be stored cannot be answered exactly, so the client is asked to retry; `JSON.GET`
/// of the whole document is answered from what was loaded. The retry then reads through.
#[test]
fn a_json_path_read_of_a_document_that_could_not_be_stored_says_tryagain() {
    let Some(mongo) = Mongo::with_test_commands("tryagain") else {
        return;
    };
    let db = seed(&mongo, "tryagain", 2);
    let Some(redis) = json_redis(
        &mongo.uri,
        &format!("j:={db}.todos:id;format=json;fields=-_id"),
        &["--readthrough.timeout", "20000"],
    ) else {
        return;
    };
    assert!(
        text(&mut redis.conn(), &["JSON.GET", "j:2"]).is_some(),
        "warm the pool"
    );
    mongo.hold_finds(1, 3000);
    let reads = spawn_reads(
        &redis,
        vec![vec!["JSON.GET", "j:1", "$.name"], vec!["JSON.GET", "j:1"]],
    );
    redis.wait_blocked(2);
    let _: () = redis::cmd("FLUSHALL").query(&mut redis.conn()).unwrap();
    let mut got = reads.into_iter().map(|h| h.join().unwrap());
    let e = err_of(got.next().unwrap());
    assert!(e.starts_with("TRYAGAIN"), "{e}");
    let whole = got.next().unwrap().unwrap();
    let Value::BulkString(b) = whole else {
        panic!("{whole:?}")
    };
    assert_eq!(json(&String::from_utf8(b).unwrap())["name"], "todo 1");
    assert!(!held(&redis, "j:1"), "not stored after the flush");
    // The retry reads through.
    assert_eq!(
        text(&mut redis.conn(), &["JSON.GET", "j:1", "$.name"]).as_deref(),
        Some("[\"todo 1\"]")
    );
}

/// Each command on a connection of its own, in a thread.
fn spawn_reads(
    redis: &Redis,
    reads: Vec<Vec<&'static str>>,
) -> Vec<std::thread::JoinHandle<redis::RedisResult<Value>>> {
    reads
        .into_iter()
        .map(|args| {
            let url = redis.url();
            std::thread::spawn(move || {
                let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
                cmd(&mut c, &args)
            })
        })
        .collect()
}

/// Whether Redis holds `key` (no glob characters in it), by `KEYS`: it walks the keyspace
/// without a lookup, so no key-miss prefetch starts (as one would for `EXISTS` or `TYPE`).
fn held(redis: &Redis, key: &str) -> bool {
    let found: Vec<String> = redis::cmd("KEYS")
        .arg(key)
        .query(&mut redis.conn())
        .unwrap();
    !found.is_empty()
}

/// `keyspace_hits` and `keyspace_misses` from `INFO stats`.
fn keyspace(redis: &Redis) -> (i64, i64) {
    let s = redis.info_section("stats");
    let n = |f: &str| s[f].parse::<i64>().unwrap();
    (n("keyspace_hits"), n("keyspace_misses"))
}

#[test]
fn a_hit_counts_in_the_keyspace_stats_as_the_native_read_does() {
    let mongo = Mongo::shared();
    let db = seed(mongo, "kstats", 5);
    let mapping =
        format!("s:={db}.todos:id j:={db}.todos:id;format=json h:={db}.todos:id;format=hash");
    let Some(redis) = json_redis(&mongo.uri, &mapping, &[]) else {
        return;
    };
    let mut c = redis.conn();
    // Cached first, and the same values under unmapped keys for the native reads.
    let s = text(&mut c, &["RT.GET", "s:1"]).unwrap();
    let j = text(&mut c, &["JSON.GET", "j:1"]).unwrap();
    cmd(&mut c, &["RT.GET", "h:1"]).unwrap();
    cmd(&mut c, &["SET", "plain:s", &s]).unwrap();
    cmd(&mut c, &["JSON.SET", "plain:j", "$", &j]).unwrap();
    cmd(&mut c, &["COPY", "h:1", "plain:h"]).unwrap();
    // What one read adds to the stats.
    let mut counted = |args: &[&str]| {
        let before = keyspace(&redis);
        cmd(&mut c, args).unwrap();
        let after = keyspace(&redis);
        (after.0 - before.0, after.1 - before.1)
    };
    // Redis 7.0 cannot look at a key without counting the look (no OPEN_KEY_NOSTATS): there a
    // hit that the module checks before the native read answers it counts twice (a string is
    // answered from the key the module opened, so it counts once everywhere).
    let old = server_version().0 == "redis" && server_version() < ("redis".into(), 7, 2);
    let checked = if old { (2, 0) } else { (1, 0) };
    for (read, native, expected) in [
        (&["RT.GET", "s:1"][..], &["GET", "plain:s"][..], (1, 0)),
        (&["RT.GET", "j:1"], &["JSON.GET", "plain:j"], checked),
        (&["RT.GET", "h:1"], &["HGETALL", "plain:h"], checked),
        (&["GET", "s:1"], &["GET", "plain:s"], (1, 0)),
        (&["JSON.GET", "j:1"], &["JSON.GET", "plain:j"], checked),
        (&["HGETALL", "h:1"], &["HGETALL", "plain:h"], checked),
    ] {
        assert_eq!(counted(native), (1, 0), "{native:?}");
        assert_eq!(counted(read), expected, "{read:?}");
    }
}
