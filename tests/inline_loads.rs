//! Inline loads (README, Design): at low load Redis's main thread sends a miss's query on its
//! own connection and reads the answer itself. A real redis-server with the module, a real
//! MongoDB-compatible server, real clients: what a client sees must not depend on the path.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn inline(redis: &Redis) -> i64 {
    redis.info()["inline_loads"]
}

/// The next new key, `todo:<n>` with n from `next`, for a wait that reads one per try.
fn next_key(next: &mut impl Iterator<Item = u32>, awaited: &str) -> String {
    let n = next.next();
    format!(
        "todo:{}",
        n.unwrap_or_else(|| panic!("keys ran out before {awaited}"))
    )
}

/// Reads new keys (`todo:<n>`, n from `next`) until one was loaded inline: the connection is
/// opened at load, in the background.
fn until_inline(redis: &Redis, c: &mut redis::Connection, next: &mut impl Iterator<Item = u32>) {
    wait_until("a miss loaded inline", Duration::from_secs(30), || {
        let key = next_key(next, "a miss loaded inline");
        assert!(rt_get(c, &key).unwrap().is_some(), "{key} found");
        inline(redis) >= 1
    });
}

#[test]
fn misses_at_low_load_go_inline_and_answer_and_store_what_the_loader_thread_does() {
    let mongo = Mongo::shared();
    let db = seed(mongo, "inline", 40);
    let maps = format!(
        "{} p:={db}.todos:id;fields=name h:={db}.todos:id;format=hash",
        mappings(&db)
    );
    // On by default (README, configuration).
    let on = Redis::with(&mongo.uri, &maps).start();
    let off = Redis::with(&mongo.uri, &maps)
        .config("inline-loads", "no")
        .start();
    let (mut a, mut b) = (on.conn(), off.conn());
    assert_eq!(config_get(&mut a, "readthrough.inline-loads"), "yes");
    let bad = config_refused(&mut a, "readthrough.inline-loads", "maybe");
    assert!(bad.contains("'yes' or 'no'"), "{bad}");
    let mut next = 1..=20;
    until_inline(&on, &mut a, &mut next);

    for id in 21..=30 {
        let before = inline(&on);
        for key in [format!("todo:{id}"), format!("p:{id}")] {
            let got = rt_get(&mut a, &key).unwrap();
            assert!(got.is_some(), "{key}");
            assert_eq!(got, rt_get(&mut b, &key).unwrap(), "{key}: the same answer");
            let stored: Option<String> = redis::cmd("GET").arg(&key).query(&mut a).unwrap();
            assert_eq!(stored, got, "{key}: stored as answered");
            let ttl: i64 = redis::cmd("PTTL").arg(&key).query(&mut a).unwrap();
            assert!(ttl > 0, "{key}: stored with a TTL ({ttl})");
        }
        let h = format!("h:{id}");
        let replied: BTreeMap<String, String> = redis::cmd("RT.GET").arg(&h).query(&mut a).unwrap();
        let other: BTreeMap<String, String> = redis::cmd("RT.GET").arg(&h).query(&mut b).unwrap();
        assert_eq!(replied, other, "{h}");
        assert_eq!(
            replied.get("name").map(String::as_str),
            Some(format!("todo {id}").as_str())
        );
        assert_eq!(inline(&on), before + 3, "each miss went inline");
    }
    assert_eq!(
        rt_get(&mut a, "todo:999").unwrap(),
        None,
        "no such document"
    );
    assert_eq!(rt_get(&mut a, "todo:999").unwrap(), None);
    let info = on.info();
    assert_eq!(info["negative_hits"], 1, "the absence was remembered");
    assert_eq!(info["load_errors"], 0);
    assert_eq!(inline(&off), 0, "readthrough.inline-loads no");
    assert!(off.info()["loads"] >= 30);
}

#[test]
fn a_stall_during_an_inline_query_goes_to_the_driver_at_half_the_deadline_then_timeout() {
    let Some(mongo) = Mongo::dedicated("mongo-inline-stall") else {
        return;
    };
    let db = seed(&mongo, "istall", 400);
    // The proxy's URI names one host without options that rule inline loads out.
    let proxy = HoldingProxy::start(mongo.port);
    let redis = Redis::with(&proxy.uri(), &mappings(&db))
        .config("timeout", "500")
        .config("inline-loads", "yes")
        .start();
    let mut c = redis.conn();
    let mut next = 1..=40;
    until_inline(&redis, &mut c, &mut next);
    let before = inline(&redis);

    proxy.hold();
    let start = Instant::now();
    let r = rt_get(&mut c, "todo:399");
    let took = start.elapsed();
    proxy.release();
    let e = err_of(r);
    assert!(e.starts_with("TIMEOUT") && e.contains("500 ms"), "{e}");
    // Not before the deadline; the upper bound only catches a hang.
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_secs(10),
        "{took:?}"
    );
    assert!(
        redis.log().contains(
            "inline loads: connection dropped (no answer by half the deadline; the driver takes the load)"
        ),
        "the stalled query was the inline one, handed to the driver at half the deadline"
    );
    let info = redis.info();
    assert_eq!(info["timeouts"], 1);
    assert_eq!(info["inline_handoffs"], 1);
    assert_eq!(inline(&redis), before, "a timeout is not an inline load");
    let mut later = 41..=398;
    wait_until("inline loads again", Duration::from_secs(30), || {
        let key = format!("todo:{}", later.next().expect("keys left"));
        assert!(rt_get(&mut c, &key).unwrap().is_some(), "{key} loads");
        inline(&redis) > before
    });
    assert_eq!(redis.info()["inflight"], 0);
}

#[test]
fn the_inline_connection_follows_the_uri_and_is_not_made_where_only_the_driver_fits() {
    let Fixture {
        mongo,
        redis,
        mut c,
        ..
    } = fixture_with("iuri", 300, |r| r.config("inline-loads", "yes"));
    let mut next = 1..=20;
    until_inline(&redis, &mut c, &mut next);
    let set_uri =
        |c: &mut redis::Connection, uri: &str| config_set(c, "readthrough.mongo-uri", uri);

    // A read preference is for the driver's server selection: no inline connection.
    let sep = if mongo.uri.contains('?') { '&' } else { '?' };
    set_uri(
        &mut c,
        &format!("{}{sep}readPreference=primaryPreferred", mongo.uri),
    );
    let before = inline(&redis);
    // Lone misses run the driver on the main thread instead, once its client is made (the
    // loader thread serves them meanwhile).
    let mut ids = 21..=80;
    wait_until(
        "a lone miss through the driver on the main thread",
        Duration::from_secs(10),
        || {
            let key = format!("todo:{}", ids.next().expect("keys left"));
            assert!(rt_get(&mut c, &key).unwrap().is_some(), "{key} loads");
            redis.info()["main_thread_driver_loads"] > 0
        },
    );
    assert_eq!(
        inline(&redis),
        before,
        "no inline load with a read preference"
    );
    assert!(redis
        .log()
        .contains("inline loads: connection dropped (the MongoDB settings changed)"));
    wait_until("the log to say why", Duration::from_secs(10), || {
        redis
            .log()
            .contains("inline loads off for this MongoDB URI (a read preference or read concern)")
    });

    // Back to a plain URI: inline again.
    set_uri(&mut c, &format!("{}{sep}appName=inline-test", mongo.uri));
    let mut later = 81..=300;
    wait_until("inline loads again", Duration::from_secs(30), || {
        let key = format!("todo:{}", later.next().expect("keys left"));
        assert!(rt_get(&mut c, &key).unwrap().is_some(), "{key} loads");
        inline(&redis) > before
    });
}

/// How many times the log says the main thread's driver client could not be made.
fn client_failures(redis: &Redis) -> usize {
    redis
        .log()
        .matches("no driver client on the main thread")
        .count()
}

#[test]
fn a_driver_client_that_cannot_be_made_is_tried_again_once_a_second_not_at_every_miss() {
    let Fixture { redis, mut c, .. } =
        fixture_with("inofail", 10, |r| r.config("inline-loads", "yes"));
    // A `mongodb+srv` name that does not resolve: its options fail on every try (the DNS
    // lookup), and the URI is one only the driver serves.
    config_set(
        &mut c,
        "readthrough.mongo-uri",
        "mongodb+srv://readthrough-test.invalid/?serverSelectionTimeoutMS=200",
    );
    let start = Instant::now();
    let mut misses = 0;
    wait_until(
        "a second try at the main thread's client",
        Duration::from_secs(10),
        || {
            let err = rt_get(&mut c, &format!("todo:{misses}")).expect_err("nothing to load from");
            assert!(err.to_string().contains("BACKEND"), "{err}");
            misses += 1;
            let failures = client_failures(&redis);
            // At most one try per started second since the first miss.
            let allowed = start.elapsed().as_secs() as usize + 1;
            assert!(
                failures <= allowed,
                "{failures} tries in {:?} ({misses} misses)",
                start.elapsed()
            );
            failures >= 2
        },
    );
    assert!(misses > 2, "{misses} misses: too few to tell");
}

#[test]
fn a_large_document_and_a_replica_set_name_are_served_as_through_the_driver() {
    let mongo = Mongo::shared();
    let db = seed(mongo, "ilarge", 200);
    // 3 MB of text: many reads' worth of socket buffer, decoded off the main thread.
    let big = "x".repeat(3 << 20);
    mongo.insert(
        &db,
        "todos",
        vec![mongodb::bson::doc! { "id": "big", "name": "big", "description": big.clone() }],
    );
    let redis = Redis::with(&mongo.uri, &mappings(&db)).start();
    let off = Redis::with(&mongo.uri, &mappings(&db))
        .config("inline-loads", "no")
        .start();
    let mut c = redis.conn();
    let mut next = 1..=100;
    until_inline(&redis, &mut c, &mut next);
    let before = inline(&redis);
    let got = rt_get(&mut c, "todo:big").unwrap().expect("found");
    assert_eq!(inline(&redis), before + 1, "read inline");
    assert_eq!(
        common::json(&got)["description"].as_str(),
        Some(big.as_str())
    );
    assert_eq!(Some(got), rt_get(&mut off.conn(), "todo:big").unwrap());

    // The URI names a replica set this server is not a member of: the driver finds no server
    // to read from, and the inline path must not read from it either.
    let sep = if mongo.uri.contains('?') { '&' } else { '?' };
    let uri = format!("{}{sep}replicaSet=not-this-one", mongo.uri);
    config_set(&mut c, "readthrough.mongo-uri", &uri);
    config_set(&mut c, "readthrough.timeout", "700");
    let before = inline(&redis);
    for id in 101..=103 {
        let r = rt_get(&mut c, &format!("todo:{id}"));
        assert!(r.is_err(), "todo:{id}: {r:?} from a server of another set");
    }
    assert_eq!(inline(&redis), before, "nothing read inline");
}

/// Reads `key` (a todo that exists) and returns whether it loaded; the miss must end by its
/// deadline (1 s, with some slack), with the document, `TIMEOUT` or `BACKEND`, never nil.
fn loads_by_its_deadline(c: &mut redis::Connection, key: &str) -> bool {
    let start = Instant::now();
    let r = rt_get(c, key);
    let took = start.elapsed();
    // Never a hang.
    assert!(took < Duration::from_millis(1500), "{key}: {took:?}");
    match r {
        Ok(Some(v)) => {
            assert_eq!(json(&v)["id"], key.trim_start_matches("todo:"));
            true
        }
        Ok(None) => panic!("{key}: nil for a document that exists"),
        Err(e) => {
            let e = e.to_string();
            assert!(e.contains("TIMEOUT") || e.contains("BACKEND"), "{key}: {e}");
            false
        }
    }
}

#[test]
fn after_every_open_connection_dies_without_a_word_each_miss_ends_by_its_deadline_and_loads_recover(
) {
    let Some(mongo) = Mongo::dedicated("mongo-inline-drop") else {
        return;
    };
    let db = seed(&mongo, "idrop", 400);
    let proxy = HoldingProxy::start(mongo.port);
    let redis = Redis::with(&proxy.uri(), &mappings(&db))
        .config("timeout", "1000")
        .config("inline-loads", "yes")
        .start();
    let mut c = redis.conn();
    let mut next = 1..=398;
    until_inline(&redis, &mut c, &mut next);
    let before = inline(&redis);
    // The inline connection, the driver's pool and its monitor all go dead at once, as behind
    // a NAT that forgot them; MongoDB itself is fine and new connections work.
    proxy.drop_silently();
    let mut answers = Vec::new();
    wait_until(
        "misses to load again after the drop",
        Duration::from_secs(30),
        || {
            let key = next_key(&mut next, "misses loaded again after the drop");
            let ok = loads_by_its_deadline(&mut c, &key);
            answers.push(ok);
            ok
        },
    );
    // Until each dead connection has been found out (the inline one when a query on it goes
    // unanswered, the pool's when the driver's monitor fails), a miss may still meet one and end
    // at its deadline; the inline path comes back.
    wait_until("inline loads again", Duration::from_secs(30), || {
        let key = next_key(&mut next, "inline loads again");
        answers.push(loads_by_its_deadline(&mut c, &key));
        inline(&redis) > before
    });
    // Then loads keep succeeding.
    for _ in 0..20 {
        let key = next_key(&mut next, "loads after recovery");
        assert!(rt_get(&mut c, &key).unwrap().is_some(), "{key} loads");
    }
    assert!(
        redis.log().contains("inline loads: connection dropped"),
        "the dead inline connection was noticed\n{}",
        redis.log()
    );
    assert_eq!(
        redis.info()["inflight"],
        0,
        "answers after the drop: {answers:?}"
    );
}

const NAME: &str = "mongo.readthrough.test";

/// A hosts file naming [::1] first for `NAME`, then 127.0.0.1, where MongoDB listens; `None`
/// (skipped) where this server cannot have a hosts file of its own.
fn hosts_with_v6_first() -> Option<String> {
    let hosts = format!("::1 {NAME}\n127.0.0.1 {NAME}\n");
    if external_mongo().is_some() {
        skip("a host name of the embedded MongoDB-compatible server's own");
        return None;
    }
    match own_hosts_file(&hosts, NAME) {
        Ok(order) => {
            assert_eq!(order, ["::1", "127.0.0.1"], "the address tried first");
            Some(hosts)
        }
        Err(why) => {
            skip(&why);
            None
        }
    }
}

/// Both paths load from `mongo` by `NAME`, resolved by `hosts`: a server with inline loads until
/// one is made inline, then each key read on both must give the same document, with no load
/// error and no inline hand-off.
fn both_paths_reach(mongo: &Mongo, hosts: &str, db_name: &str) {
    // Keys enough for the inline connection to be made after a connect timeout (1.5 s) while
    // the wait reads a new key every 20 ms.
    let db = seed(mongo, db_name, 200);
    let uri = format!("mongodb://{NAME}:{}/?directConnection=true", mongo.port);
    let on = Redis::with(&uri, &mappings(&db))
        .hosts_file(hosts)
        .config("inline-loads", "yes")
        .start();
    let driver = Redis::with(&uri, &mappings(&db))
        .hosts_file(hosts)
        .config("inline-loads", "no")
        .start();
    let (mut a, mut b) = (on.conn(), driver.conn());
    let mut next = 1..=190;
    let started = Instant::now();
    until_inline(&on, &mut a, &mut next);
    eprintln!("first inline load after {:?}", started.elapsed());
    for id in 191..=195 {
        let key = format!("todo:{id}");
        let inline_answer = rt_get(&mut a, &key).unwrap();
        assert_eq!(
            name_of(&inline_answer).as_deref(),
            Some(format!("todo {id}").as_str()),
            "{key} inline"
        );
        assert_eq!(
            rt_get(&mut b, &key).unwrap(),
            inline_answer,
            "{key} on the driver"
        );
    }
    for r in [&on, &driver] {
        let info = r.info();
        assert_eq!(info["load_errors"], 0, "{}", r.log());
        assert_eq!(info["inline_handoffs"], 0, "{}", r.log());
    }
    assert!(inline(&on) >= 6);
    assert_eq!(inline(&driver), 0);
}

/// A host name whose first address refuses (as `localhost` does when it resolves to `::1`
/// first and MongoDB listens on 127.0.0.1 only) is reached at its next address, inline and on
/// the driver alike. The server resolves by a hosts file of its own (a mount namespace; the
/// machine's /etc/hosts is not touched).
#[test]
fn a_host_whose_first_address_refuses_is_reached_at_its_next_inline_and_on_the_driver() {
    let Some(hosts) = hosts_with_v6_first() else {
        return;
    };
    let mongo = Mongo::shared();
    let port = mongo.port;
    assert!(
        std::net::TcpStream::connect(("::1", port)).is_err(),
        "nothing may answer at [::1]:{port}"
    );
    both_paths_reach(mongo, &hosts, "first_address");
}

/// A host name whose first address drops packets (a host that is down, a firewall that drops)
/// is reached at its next address too: the driver tries it 250 ms after the first (its "happy
/// eyeballs"), the inline connection once its connect to the first has timed out; until then
/// misses go through the driver. The first address is a listener whose queue is full, where the
/// kernel drops every new connection's SYN, on a MongoDB of its own (the shared one's [::1] must
/// stay closed for the test above).
#[test]
fn a_host_whose_first_address_drops_packets_is_reached_at_its_next_inline_and_on_the_driver() {
    use socket2::{Domain, SockAddr, Socket, Type};
    let Some(hosts) = hosts_with_v6_first() else {
        return;
    };
    let Some(mongo) = Mongo::dedicated("first_address_drops") else {
        return;
    };
    let first: std::net::SocketAddr = format!("[::1]:{}", mongo.port).parse().unwrap();
    let listener = Socket::new(Domain::IPV6, Type::STREAM, None).unwrap();
    listener.bind(&SockAddr::from(first)).unwrap();
    listener.listen(0).unwrap();
    // Connections nobody accepts fill its queue; from then on a connect there hangs.
    let mut queued = Vec::new();
    let dropped = (0..8).any(|_| {
        match std::net::TcpStream::connect_timeout(&first, Duration::from_millis(300)) {
            Ok(c) => {
                queued.push(c);
                false
            }
            Err(e) => {
                assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
                true
            }
        }
    });
    assert!(dropped, "[::1]:{} must drop new connections", mongo.port);
    both_paths_reach(&mongo, &hosts, "first_address_drops");
    drop((queued, listener));
}
