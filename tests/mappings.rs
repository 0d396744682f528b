//! Mappings for the schemas users have: per-mapping expiry policies (`ttl=`, `negative-ttl=`,
//! `grace=`, `jitter=`, `expire-at=`), UUID ids, and dotted paths in `fields=`, each read back
//! as a user would: the value, its type and its TTL in Redis.

mod common;

use common::*;
use mongodb::bson::{doc, spec::BinarySubtype, Binary, Bson, DateTime};
use std::time::Duration;

fn pttl(c: &mut redis::Connection, key: &str) -> i64 {
    redis::cmd("PTTL").arg(key).query(c).unwrap()
}

#[test]
fn each_mapping_may_override_ttl_jitter_and_negative_ttl() {
    let mongo = Mongo::shared();
    let db = seed(mongo, "per-mapping-ttl", 3);
    let mappings = format!(
        "todo:={db}.todos:id short:={db}.todos:id;ttl=60;jitter=0 \
         forever:={db}.todos:id;ttl=0 spread:={db}.todos:id;ttl=100;jitter=1000 \
         unremembered:={db}.todos:id;negative-ttl=0"
    );
    let redis = Redis::with(&mongo.uri, &mappings)
        .config("invalidation", "off")
        .start();
    let mut c = redis.conn();
    for key in ["todo:1", "short:1", "forever:1", "spread:1"] {
        assert!(rt_get(&mut c, key).unwrap().is_some(), "{key}");
    }
    let server_wide = pttl(&mut c, "todo:1");
    assert!(
        (3_590_000..=3_960_000).contains(&server_wide),
        "readthrough.ttl 3600 with its 10 % jitter: {server_wide}"
    );
    let short = pttl(&mut c, "short:1");
    assert!(
        (55_000..=60_000).contains(&short),
        "ttl=60;jitter=0: {short}"
    );
    assert_eq!(pttl(&mut c, "forever:1"), -1, "ttl=0: no expiry");
    let spread = pttl(&mut c, "spread:1");
    assert!(
        (95_000..=1_100_000).contains(&spread),
        "ttl=100;jitter=1000: up to 11x: {spread}"
    );

    // Absent, then inserted: the server-wide negative TTL (30 s) remembers the absence, the
    // mapping's negative-ttl=0 does not.
    assert_eq!(rt_get(&mut c, "todo:77").unwrap(), None);
    assert_eq!(rt_get(&mut c, "unremembered:77").unwrap(), None);
    mongo.insert(&db, "todos", vec![doc! { "id": "77", "name": "late" }]);
    assert_eq!(
        rt_get(&mut c, "todo:77").unwrap(),
        None,
        "remembered absent"
    );
    let v = rt_get(&mut c, "unremembered:77").unwrap().expect("loaded");
    assert_eq!(json(&v)["name"], "late");
}

#[test]
fn a_mappings_grace_window_serves_stale_and_refreshes_where_the_server_has_none() {
    let mongo = Mongo::shared();
    let db = seed(mongo, "per-mapping-grace", 2);
    let mappings = format!("g:={db}.todos:id;ttl=1;grace=60;jitter=0 todo:={db}.todos:id");
    let redis = Redis::with(&mongo.uri, &mappings)
        .config("invalidation", "off")
        .start();
    let mut c = redis.conn();
    assert_eq!(config_get(&mut c, "readthrough.grace"), "0");
    let old: Option<String> = redis::cmd("GET").arg("g:1").query(&mut c).unwrap();
    let old = old.expect("loaded by a plain GET");
    let life = pttl(&mut c, "g:1");
    assert!((59_000..=61_000).contains(&life), "ttl + grace: {life}");
    mongo.update_one(
        &db,
        "todos",
        doc! {"id": "1"},
        doc! {"$set": {"name": "new"}},
    );
    wait_until("g:1's grace window", Duration::from_secs(10), || {
        pttl(&mut c, "g:1") <= 60_000
    });
    let stale: Option<String> = redis::cmd("GET").arg("g:1").query(&mut c).unwrap();
    assert_eq!(stale.as_deref(), Some(old.as_str()), "served stale at once");
    wait_until("the background refresh", Duration::from_secs(10), || {
        json(&stored(&mut c, "g:1").unwrap())["name"] == "new"
    });
    assert_eq!(redis.info()["refreshes"], 1);
}

#[test]
fn expire_at_caps_a_keys_life_at_the_documents_date() {
    let mongo = Mongo::shared();
    let db = unique_db("expire-at");
    let now = DateTime::now().timestamp_millis();
    let at = |ms: i64| DateTime::from_millis(now + ms);
    mongo.insert(
        &db,
        "sessions",
        vec![
            doc! { "id": "soon", "user": "a", "exp": at(30_000) },
            doc! { "id": "later", "user": "b", "exp": at(10 * 86_400_000) },
            doc! { "id": "past", "user": "c", "exp": at(-1_000) },
            doc! { "id": "none", "user": "d" },
            doc! { "id": "text", "user": "e", "exp": "tomorrow" },
        ],
    );
    let mappings = format!(
        "s:={db}.sessions:id;expire-at=exp;fields=user;jitter=0 \
         h:={db}.sessions:id;expire-at=exp;ttl=0;format=hash;fields=user"
    );
    let redis = Redis::with(&mongo.uri, &mappings).start();
    let mut c = redis.conn();
    for id in ["soon", "later", "past", "none", "text"] {
        let v = rt_get(&mut c, &format!("s:{id}")).unwrap().expect(id);
        assert_eq!(
            json(&v).as_object().unwrap().keys().collect::<Vec<_>>(),
            ["user"],
            "the date was fetched for the expiry, not cached: {v}"
        );
    }
    let soon = pttl(&mut c, "s:soon");
    assert!(
        (20_000..=30_000).contains(&soon),
        "the document's date: {soon}"
    );
    for id in ["later", "none", "text"] {
        let ms = pttl(&mut c, &format!("s:{id}"));
        assert!(
            (3_590_000..=3_600_000).contains(&ms),
            "{id}: capped by the TTL: {ms}"
        );
    }
    assert_eq!(stored(&mut c, "s:past"), None, "answered, not stored");

    // ttl=0: the date alone; no date, no expiry. A hash gets the same.
    let fields: Vec<String> = redis::cmd("RT.GET").arg("h:soon").query(&mut c).unwrap();
    assert_eq!(fields, ["user", "a"]);
    let soon = pttl(&mut c, "h:soon");
    assert!((20_000..=30_000).contains(&soon), "hash: {soon}");
    let _: Vec<String> = redis::cmd("RT.GET").arg("h:later").query(&mut c).unwrap();
    let later = pttl(&mut c, "h:later");
    assert!(later > 9 * 86_400_000, "ttl=0: the date alone: {later}");
    let _: Vec<String> = redis::cmd("RT.GET").arg("h:none").query(&mut c).unwrap();
    assert_eq!(pttl(&mut c, "h:none"), -1);
}

#[test]
fn bad_mapping_options_are_refused_with_the_reason_and_the_old_value_stays() {
    let Fixture {
        redis: _redis,
        mut c,
        db,
        ..
    } = fixture("bad-options", 1);
    let before = config_get(&mut c, "readthrough.mappings");
    for (spec, why) in [
        ("ttl=-1", "from 0 to"),
        ("ttl=1.5", "whole number"),
        ("jitter=5000", "from 0 to 1000"),
        ("negative-ttl=x", "whole number"),
        ("grace=315360001", "from 0 to 315360000"),
        ("ttl=5;ttl=6", "given twice"),
        ("expire-at=$x", "field name"),
        ("colour=red", "unknown option"),
        ("fields=a..b", "not a field name"),
        ("fields=meta,meta.sku", "overlap"),
    ] {
        let err = config_refused(
            &mut c,
            "readthrough.mappings",
            &format!("t:={db}.todos:id;{spec}"),
        );
        assert!(err.contains(why), "{spec}: {err}");
        assert_eq!(config_get(&mut c, "readthrough.mappings"), before);
    }
    assert!(
        rt_get(&mut c, "todo:1").unwrap().is_some(),
        "the old mappings serve"
    );
}

#[test]
fn a_uuid_id_matches_the_bson_uuid_on_every_path() {
    let mongo = Mongo::shared();
    let db = unique_db("uuid");
    let ids = [
        "3f2504e0-4f89-11d3-9a0c-0305e82c3301",
        "6fa459ea-ee8a-3ca4-894e-db77e160355e",
    ];
    let uuid = |text: &str| {
        let hex: String = text.chars().filter(|c| *c != '-').collect();
        let bytes = (0..16)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        Bson::Binary(Binary {
            subtype: BinarySubtype::Uuid,
            bytes,
        })
    };
    mongo.insert(
        &db,
        "users",
        ids.iter()
            .map(|id| doc! { "_id": uuid(id), "name": format!("user {id}") })
            .collect(),
    );
    let mappings = format!("u:={db}.users uh:={db}.users;format=hash");
    let redis = Redis::with(&mongo.uri, &mappings).watching().start();
    let mut c = redis.conn();
    // Upper case in the key: the same UUID.
    let key = format!("u:{}", ids[0].to_ascii_uppercase());
    let v = rt_get(&mut c, &key).unwrap().expect("found by UUID");
    assert_eq!(json(&v)["_id"], serde_json::json!({ "$uuid": ids[0] }));
    let h: Vec<String> = redis::cmd("RT.GET")
        .arg(format!("uh:{}", ids[1]))
        .query(&mut c)
        .unwrap();
    assert_eq!(
        h[..2],
        ["_id".to_string(), format!(r#"{{"$uuid":"{}"}}"#, ids[1])]
    );

    // A batch matches each document back to its key.
    let keys = [
        format!("u:{}", ids[1]),
        "u:00000000-0000-4000-8000-000000000000".into(),
    ];
    let got: Vec<Option<String>> = redis::cmd("RT.MGET").arg(&keys).query(&mut c).unwrap();
    assert_eq!(
        json(got[0].as_deref().unwrap())["name"],
        format!("user {}", ids[1])
    );
    assert_eq!(got[1], None);

    // A change event names the document by its UUID: the cached key goes.
    let lower = format!("u:{}", ids[1]);
    mongo.update_one(
        &db,
        "users",
        doc! { "_id": uuid(ids[1]) },
        doc! { "$set": { "name": "renamed" } },
    );
    wait_until("the change event", Duration::from_secs(10), || {
        stored(&mut c, &lower).is_none()
    });
    let v = rt_get(&mut c, &lower).unwrap().unwrap();
    assert_eq!(json(&v)["name"], "renamed");
}

#[test]
fn dotted_fields_keep_and_drop_nested_values_in_every_format() {
    let mongo = Mongo::shared();
    let db = unique_db("dotted");
    mongo.insert(
        &db,
        "products",
        vec![doc! {
            "sku": "A1", "name": "lamp",
            "meta": { "color": "red", "secret": "s", "size": { "w": 3, "h": 4 } },
            "lines": [ { "part": "bulb", "cost": 2 }, { "part": "shade", "cost": 5 } ],
        }],
    );
    let mappings = format!(
        "keep:={db}.products:sku;fields=name,meta.color,meta.size.w,lines.part,-_id \
         drop:={db}.products:sku;fields=-_id,-meta.secret,-lines.cost \
         hash:={db}.products:sku;format=hash;fields=name,meta.color,meta.size"
    );
    let redis = Redis::with(&mongo.uri, &mappings).start();
    let mut c = redis.conn();
    let kept = rt_get(&mut c, "keep:A1").unwrap().unwrap();
    assert_eq!(
        json(&kept),
        serde_json::json!({
            "name": "lamp",
            "meta": { "color": "red", "size": { "w": 3 } },
            "lines": [ { "part": "bulb" }, { "part": "shade" } ],
        })
    );
    let dropped = rt_get(&mut c, "drop:A1").unwrap().unwrap();
    assert_eq!(
        json(&dropped),
        serde_json::json!({
            "sku": "A1", "name": "lamp",
            "meta": { "color": "red", "size": { "w": 3, "h": 4 } },
            "lines": [ { "part": "bulb" }, { "part": "shade" } ],
        })
    );
    let h: Vec<String> = redis::cmd("RT.GET").arg("hash:A1").query(&mut c).unwrap();
    assert_eq!(
        h,
        [
            "name",
            "lamp",
            "meta.color",
            "red",
            "meta.size",
            r#"{"w":3,"h":4}"#
        ],
        "a kept nested field under its dotted name"
    );
    let color: Option<String> = redis::cmd("HGET")
        .arg("hash:A1")
        .arg("meta.color")
        .query(&mut c)
        .unwrap();
    assert_eq!(color.as_deref(), Some("red"));
}

/// Orders of two tenants, keyed by `{tenant, id}`: `id` a number or a string, as applications
/// store them.
fn orders(mongo: &Mongo, name: &str) -> String {
    let db = unique_db(name);
    mongo.insert(
        &db,
        "orders",
        vec![
            doc! { "tenant": "acme", "id": 42, "total": 1 },
            doc! { "tenant": "acme", "id": "43", "total": 2 },
            doc! { "tenant": "globex", "id": 42, "total": 3 },
            doc! { "tenant": "acme", "id": "a:b", "total": 4 },
        ],
    );
    db
}

fn total(v: Option<String>) -> serde_json::Value {
    json(&v.expect("found"))["total"].clone()
}

#[test]
fn a_compound_key_reads_through_as_its_parts_on_every_read_path() {
    let Some(mongo) = Mongo::dedicated("compound") else {
        return;
    };
    let db = orders(&mongo, "compound");
    let mappings = format!(
        "order:={db}.orders:tenant,id ord/={db}.orders:tenant,id;sep=/;format=hash;fields=total"
    );
    let redis = Redis::with(&mongo.uri, &mappings).start();
    let mut c = redis.conn();
    assert_eq!(total(rt_get(&mut c, "order:acme:42").unwrap()), 1);
    assert_eq!(total(rt_get(&mut c, "order:globex:42").unwrap()), 3);
    assert_eq!(
        total(rt_get(&mut c, "order:acme:a:b").unwrap()),
        4,
        "the last part takes the rest"
    );
    let tagged: Option<String> = redis::cmd("GET")
        .arg("order:{acme}:43")
        .query(&mut c)
        .unwrap();
    assert_eq!(total(tagged), 2, "a plain GET of a hash-tagged key");
    assert!(
        stored(&mut c, "order:{acme}:43").is_some(),
        "stored as asked"
    );
    let h: Vec<String> = redis::cmd("RT.GET")
        .arg("ord/acme/43")
        .query(&mut c)
        .unwrap();
    assert_eq!(h, ["total", "2"], "sep=/ and format=hash");

    // RT.REFRESH reloads a compound key; RT.INVALIDATE removes it.
    let refreshed: Option<String> = redis::cmd("RT.REFRESH")
        .arg("order:{acme}:43")
        .query(&mut c)
        .unwrap();
    assert_eq!(total(refreshed), 2);
    let gone: i64 = redis::cmd("RT.INVALIDATE")
        .arg("order:{acme}:43")
        .query(&mut c)
        .unwrap();
    assert_eq!(gone, 1);

    // Too few parts: the reason, nothing asked of MongoDB, nothing stored.
    let q0 = mongo.query_count();
    for key in ["order:acme", "order::42", "order:acme:"] {
        let err = err_of(rt_get(&mut c, key));
        assert!(
            err.starts_with("ERR")
                && err.contains("mapping 'order:'")
                && err.contains("(tenant:id)"),
            "{key}: {err}"
        );
    }
    let plain: Option<String> = redis::cmd("GET").arg("order:acme").query(&mut c).unwrap();
    assert_eq!(plain, None, "a plain GET answers as without the module");
    assert_eq!(mongo.query_count(), q0);

    // RT.MGET: one query per tenant (three acme keys share one), each document back to its
    // key, absent as nil and remembered.
    let keys = [
        "order:{acme}:42",
        "order:globex:42",
        "order:acme:99",
        "order:acme:43",
    ];
    redis::cmd("DEL").arg(&keys).query::<i64>(&mut c).unwrap();
    let q0 = mongo.query_count();
    let got: Vec<Option<String>> = redis::cmd("RT.MGET").arg(&keys).query(&mut c).unwrap();
    assert_eq!(mongo.query_count() - q0, 2, "acme's and globex's");
    let totals: Vec<serde_json::Value> = got
        .into_iter()
        .map(|v| v.map_or(serde_json::Value::Null, |v| json(&v)["total"].clone()))
        .collect();
    assert_eq!(
        totals,
        [1.into(), 3.into(), serde_json::Value::Null, 2.into()]
    );
    assert_eq!(rt_get(&mut c, "order:acme:99").unwrap(), None);
    assert_eq!(mongo.query_count() - q0, 2, "the absent key is remembered");

    // RT.WARM writes each order under its plain key.
    redis::cmd("RT.WARM")
        .arg("order:")
        .query::<String>(&mut c)
        .unwrap();
    wait_until("the warm-up", Duration::from_secs(10), || {
        stored(&mut c, "order:globex:42").is_some() && stored(&mut c, "order:acme:a:b").is_some()
    });
}

#[test]
fn change_events_find_a_compound_key_in_each_spelling_and_follow_a_moved_document() {
    let mongo = Mongo::shared();
    let db = orders(mongo, "compound-cdc");
    let mappings = format!("order:={db}.orders:tenant,id");
    let redis = Redis::with(&mongo.uri, &mappings).watching().start();
    let mut c = redis.conn();
    for key in ["order:acme:42", "order:{acme}:43", "order:globex:{42}"] {
        assert!(rt_get(&mut c, key).unwrap().is_some(), "{key}");
    }
    // An update finds the plain key and the hash-tagged one.
    mongo.update_one(
        &db,
        "orders",
        doc! { "tenant": "acme", "id": "43" },
        doc! { "$inc": { "total": 10 } },
    );
    wait_until("the tagged key's update", Duration::from_secs(10), || {
        stored(&mut c, "order:{acme}:43").is_none()
    });
    assert_eq!(total(rt_get(&mut c, "order:{acme}:43").unwrap()), 12);
    // A key field changes: the document moves from acme:42 to initech:42.
    assert_eq!(rt_get(&mut c, "order:initech:42").unwrap(), None);
    mongo.update_one(
        &db,
        "orders",
        doc! { "tenant": "acme", "id": 42 },
        doc! { "$set": { "tenant": "initech" } },
    );
    wait_until("the move", Duration::from_secs(10), || {
        stored(&mut c, "order:acme:42").is_none()
    });
    assert_eq!(rt_get(&mut c, "order:acme:42").unwrap(), None);
    assert_eq!(
        total(rt_get(&mut c, "order:initech:42").unwrap()),
        1,
        "the negative entry of the new key was forgotten"
    );
    // A delete event carries only _id: the key this node loaded goes, whatever its spelling.
    mongo.delete_one(&db, "orders", doc! { "tenant": "globex" });
    wait_until("the delete", Duration::from_secs(10), || {
        stored(&mut c, "order:globex:{42}").is_none()
    });
    assert_eq!(rt_get(&mut c, "order:globex:42").unwrap(), None);
}

#[test]
fn a_replica_gets_compound_keys_with_their_mappings_ttl() {
    let mongo = Mongo::shared();
    let db = orders(mongo, "compound-replica");
    let mappings = format!("order:={db}.orders:tenant,id;ttl=60;jitter=0");
    let master = Redis::with(&mongo.uri, &mappings).start();
    let replica = Redis::with(&mongo.uri, &mappings).replica_of(&master);
    let mut m = master.conn();
    assert_eq!(total(rt_get(&mut m, "order:{acme}:42").unwrap()), 1);
    let mut r = replica.conn();
    wait_until("the replica", Duration::from_secs(10), || {
        stored(&mut r, "order:{acme}:42").is_some()
    });
    let ms = pttl(&mut r, "order:{acme}:42");
    assert!(
        (50_000..=60_000).contains(&ms),
        "the mapping's ttl=60: {ms}"
    );
}
