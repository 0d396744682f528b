//! Bad input: odd keys, odd ids, odd configs and documents of every BSON type. Each gets a
//! clear answer, and the server keeps serving.
mod common;

use common::*;
use mongodb::bson::{
    doc, oid::ObjectId, spec::BinarySubtype, Binary, Bson, DateTime, Decimal128, Document, Regex,
    Timestamp,
};
use redis::Value;

fn still_serving(c: &mut redis::Connection) {
    let pong: String = redis::cmd("PING").query(c).unwrap();
    assert_eq!(pong, "PONG");
    let v = rt_get(c, "todo:1").unwrap().expect("todo:1 still loads");
    assert_eq!(json(&v)["id"], "1");
}

#[test]
fn odd_keys_and_ids_are_looked_up_literally_or_refused_clearly() {
    let mongo = Mongo::shared();
    let db = seed(mongo, "oddkeys", 1);
    let odd = [
        "$gt",
        "{\"$ne\":null}",
        "a.b",
        "a\0b",
        "zzzzzzzzzzzzzzzzzzzzzzzz", // 24 characters, not hex: a string, never an ObjectId
        "ünïcödé ✓",
        " spaced ",
    ];
    mongo.insert(
        &db,
        "todos",
        odd.iter()
            .map(|id| doc! {"id": *id, "name": format!("odd {id}")})
            .collect(),
    );
    let redis = Redis::with(&mongo.uri, &mappings(&db)).start();
    let mut c = redis.conn();
    for id in odd {
        let v = rt_get(&mut c, &format!("todo:{id}")).unwrap();
        let v = json(&v.unwrap_or_else(|| panic!("{id:?} not found")));
        assert_eq!(v["id"], id, "looked up literally");
    }
    // Ids that look like queries or ObjectIds but match nothing: nil, nothing stored.
    for id in [
        "{\"$gt\":\"\"}",
        "65a1b2c3d4e5f60718293a4b",
        "$where",
        "a\0",
    ] {
        let key = format!("todo:{id}");
        assert_eq!(rt_get(&mut c, &key).unwrap(), None, "{id:?}");
        assert_eq!(stored(&mut c, &key), None);
    }
    // Empty key and a key that is only the prefix.
    let e = err_of(rt_get(&mut c, ""));
    assert!(e.starts_with("NOMAPPING"), "{e}");
    let e = err_of(rt_get(&mut c, "todo:"));
    assert!(e.starts_with("ERR") && e.contains("empty id"), "{e}");
    // A 1 MB key: a valid lookup that finds nothing.
    let big = format!("todo:{}", "k".repeat(1 << 20));
    assert_eq!(rt_get(&mut c, &big).unwrap(), None);
    // Binary, non-UTF-8 keys: refused for a mapped prefix, NOMAPPING otherwise.
    let e = err_of(
        redis::cmd("RT.GET")
            .arg(&b"todo:\x80\xff"[..])
            .query::<Value>(&mut c),
    );
    assert!(e.starts_with("ERR") && e.contains("UTF-8"), "{e}");
    let e = err_of(
        redis::cmd("RT.GET")
            .arg(&b"\xff\x00bin"[..])
            .query::<Value>(&mut c),
    );
    assert!(e.starts_with("NOMAPPING"), "{e}");
    // The transparent GET leaves such keys to Redis.
    let v: Option<Vec<u8>> = redis::cmd("GET")
        .arg(&b"todo:\x80\xff"[..])
        .query(&mut c)
        .unwrap();
    assert_eq!(v, None);
    // Wrong arity for every command.
    for cmd in [
        "RT.GET",
        "RT.MGET",
        "RT.REFRESH",
        "RT.INVALIDATE",
        "RT.WARM",
    ] {
        let e = err_of(redis::cmd(cmd).query::<Value>(&mut c));
        assert!(e.contains("wrong number of arguments"), "{cmd}: {e}");
    }
    // RT.RELOAD-SECRETS takes no argument.
    let e = err_of(
        redis::cmd("RT.RELOAD-SECRETS")
            .arg("x")
            .query::<Value>(&mut c),
    );
    assert!(e.contains("wrong number of arguments"), "{e}");
    for args in [
        vec!["RT.REFRESH", "todo:1", "todo:2"],
        vec!["RT.WARM", "todo:", "LIMIT"],
        vec!["RT.WARM", "todo:", "LIMIT", "-1"],
        vec!["RT.WARM", "todo:", "LIMIT", "x"],
        vec!["RT.WARM", "todo:", "FOO", "1"],
    ] {
        let e = err_of(redis::cmd(args[0]).arg(&args[1..]).query::<Value>(&mut c));
        assert!(e.starts_with("ERR"), "{args:?}: {e}");
    }
    still_serving(&mut c);
}

#[test]
fn out_of_range_numbers_in_configs_are_refused() {
    let Fixture {
        redis: _redis,
        mut c,
        ..
    } = fixture("oddconf", 1);
    for (name, bad) in [
        ("ttl", "-1"),
        ("ttl", "315360001"),
        ("ttl", "99999999999999999999"),
        ("ttl", "1.5"),
        ("timeout", "-1"),
        ("timeout", "0"),
        ("timeout", "3600001"),
        ("timeout", "9223372036854775808"),
        ("negative-ttl", "-5"),
        ("grace", "-1"),
        ("ttl-jitter", "-1"),
        ("max-inflight", "-1"),
        ("transparent", "maybe"),
        ("invalidation", "sometimes"),
        ("mappings", "=db.coll;format=bogus"),
        ("mappings", "p:=.coll"),
        ("mappings", "p:=db."),
        ("mappings", "p:=db.coll:"),
        ("mongo-uri", ""),
        ("mongo-uri", "mongodb://host:99999"),
        ("mongo-uri", "mongodb://a:b@"),
    ] {
        let key = format!("readthrough.{name}");
        let before = config_get(&mut c, &key);
        let e = config_refused(&mut c, &key, bad);
        assert!(e.starts_with("ERR"), "{name}={bad}: {e}");
        assert!(!e.contains("b@"), "no credentials in the error: {e}");
        let after = config_get(&mut c, &key);
        assert_eq!(before, after, "{name} kept its value");
    }
    // The largest values are accepted and work: a huge TTL is stored as given.
    for (name, v) in [
        ("ttl", "315360000"),
        ("timeout", "3600000"),
        ("ttl-jitter", "0"),
    ] {
        config_set(&mut c, &format!("readthrough.{name}"), v);
    }
    still_serving(&mut c);
    let ttl: i64 = redis::cmd("TTL").arg("todo:1").query(&mut c).unwrap();
    assert!(ttl > 315_000_000, "ten years: {ttl}");
}

/// `RT.GET` on a fresh connection. (Connections have no read timeout, so a signal cannot
/// interrupt the read: `Redis::conn`.)
fn read(redis: &Redis, key: &str) -> Option<String> {
    rt_get(&mut redis.conn(), key).unwrap()
}

/// A document nested `depth` levels deep.
fn nested(depth: usize) -> Document {
    let mut d = doc! {"leaf": true};
    for _ in 0..depth {
        d = doc! {"n": d};
    }
    d
}

#[test]
fn documents_of_every_bson_type_become_valid_json() {
    let mongo = Mongo::shared();
    let db = unique_db("bsontypes");
    let oid = ObjectId::parse_str("65a1b2c3d4e5f60718293a4b").unwrap();
    let every = doc! {
        "id": "every",
        "oid": oid,
        "date": DateTime::from_millis(1_700_000_000_123),
        "dec": "12345.6789".parse::<Decimal128>().unwrap(),
        "bin": Binary { subtype: BinarySubtype::Generic, bytes: vec![0, 1, 2, 255] },
        "uuid": Binary { subtype: BinarySubtype::Uuid, bytes: vec![7; 16] },
        "re": Regex { pattern: "^a.*\"b".into(), options: "i".into() },
        "ts": Timestamp { time: 1_700_000_000, increment: 7 },
        "min": Bson::MinKey,
        "max": Bson::MaxKey,
        "nan": f64::NAN,
        "inf": f64::INFINITY,
        "ninf": f64::NEG_INFINITY,
        "negzero": -0.0f64,
        "i32": i32::MIN,
        "i64": i64::MAX,
        "null": Bson::Null,
        "js": Bson::JavaScriptCode("function() { return 1; }".into()),
        "text": "quote \" backslash \\ newline \n tab \t nul \0 emoji 🎉",
        "arr": [1, "two", [3, [4]], {"five": 5}],
    };
    let big = doc! {"id": "big", "blob": "x".repeat(16 * 1024 * 1024 - 200)};
    let mut deep = nested(90);
    deep.insert("id", "deep");
    mongo.insert(&db, "todos", vec![every, deep]);
    mongo.insert(&db, "todos", vec![big]);
    // 32 MB: the 16 MB document below is stored (the default, 8 MB, is checked after).
    let redis = Redis::with(&mongo.uri, &mappings(&db))
        .config("timeout", 10000)
        .config("max-value-bytes", 33554432)
        .start();
    let mut c = redis.conn();

    let v = json(&read(&redis, "todo:every").unwrap());
    assert_eq!(v["oid"]["$oid"], "65a1b2c3d4e5f60718293a4b");
    assert_eq!(v["date"]["$date"], "2023-11-14T22:13:20.123Z");
    assert_eq!(v["dec"]["$numberDecimal"], "12345.6789");
    assert_eq!(v["bin"]["$binary"]["base64"], "AAEC/w==");
    assert_eq!(v["bin"]["$binary"]["subType"], "00");
    assert_eq!(v["uuid"]["$uuid"], "07070707-0707-0707-0707-070707070707");
    assert_eq!(v["re"]["$regularExpression"]["pattern"], "^a.*\"b");
    assert_eq!(v["re"]["$regularExpression"]["options"], "i");
    assert_eq!(v["ts"]["$timestamp"]["t"], 1_700_000_000u32);
    assert_eq!(v["ts"]["$timestamp"]["i"], 7);
    assert_eq!(v["min"]["$minKey"], 1);
    assert_eq!(v["max"]["$maxKey"], 1);
    assert_eq!(v["nan"]["$numberDouble"], "NaN");
    assert_eq!(v["inf"]["$numberDouble"], "Infinity");
    assert_eq!(v["ninf"]["$numberDouble"], "-Infinity");
    assert_eq!(v["i32"], i32::MIN);
    assert_eq!(v["i64"], i64::MAX);
    assert_eq!(v["null"], serde_json::Value::Null);
    assert_eq!(v["js"]["$code"], "function() { return 1; }");
    assert_eq!(
        v["text"],
        "quote \" backslash \\ newline \n tab \t nul \0 emoji 🎉"
    );
    assert_eq!(v["arr"][2][1][0], 4);

    let v = json(&read(&redis, "todo:deep").unwrap());
    let mut at = &v;
    for _ in 0..90 {
        at = &at["n"];
    }
    assert_eq!(at["leaf"], true);

    let text = read(&redis, "todo:big").unwrap();
    assert!(text.len() > 16 * 1024 * 1024 - 200, "{}", text.len());
    assert_eq!(
        json(&text)["blob"].as_str().unwrap().len(),
        16 * 1024 * 1024 - 200
    );
    let len: usize = redis::cmd("STRLEN").arg("todo:big").query(&mut c).unwrap();
    assert_eq!(len, text.len(), "stored whole");
    // At the default max-value-bytes (8 MB) it is answered whole and not stored.
    config_set(&mut c, "readthrough.max-value-bytes", "8388608");
    let _: i64 = redis::cmd("RT.INVALIDATE")
        .arg("todo:big")
        .query(&mut c)
        .unwrap();
    assert_eq!(read(&redis, "todo:big").unwrap(), text);
    assert!(stored(&mut c, "todo:big").is_none(), "too large to store");
    assert_eq!(redis.info()["too_large"], 1);
    let pong: String = redis::cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
}
