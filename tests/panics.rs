//! No panic aborts Redis: with `READTHROUGH_TEST_PANIC_AT` each named entry from Redis into Rust
//! panics once (see `src/core/fault.rs`); the client gets an error reply or the module logs the
//! panic, and Redis keeps serving. Also the two background tasks that used to get stuck: a
//! change-stream watcher and a warm-up.
mod common;

use common::*;
use mongodb::bson::doc;
use std::time::Duration;

fn caught(redis: &Redis, what: &str) {
    wait_until(
        &format!("the log to name {what}"),
        Duration::from_secs(10),
        || redis.log().contains(&format!("caught a panic in {what}")),
    );
}

fn still_serving(redis: &Redis, key: &str, id: &str) {
    let mut c = redis.conn();
    let pong: String = redis::cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
    let v = rt_get(&mut c, key).unwrap().expect("the document");
    assert_eq!(json(&v)["id"], id);
    // Rust's panic hook still prints "panicked at" for a caught panic: that is expected.
    for bad in ["BUG REPORT", "Segmentation", "crashed by signal"] {
        assert!(
            !redis.log().contains(bad),
            "{bad} in the log:\n{}",
            redis.log()
        );
    }
}

#[test]
fn a_panic_in_any_callback_becomes_an_error_reply_or_a_log_line() {
    let mongo = Mongo::shared();
    let db = seed(mongo, "panics", 20);
    let points = "command,reply,filter,key-miss,flush-event,info";
    let redis = Redis::with(&mongo.uri, &mappings(&db))
        .env("READTHROUGH_TEST_PANIC_AT", points)
        .start();
    let mut c = redis.conn();
    // A command handler: the error reply names the internal error.
    let e = err_of(rt_get(&mut c, "todo:1"));
    assert!(e.starts_with("ERR internal error"), "{e}");
    // The command filter (the first GET): it runs as a plain GET (nil), nothing rewritten.
    let v: Option<String> = redis::cmd("GET").arg("todo:3").query(&mut c).unwrap();
    assert_eq!(v, None);
    caught(&redis, "the command filter");
    // The reply callback of a blocked client: that client gets an error, the value is stored.
    let e = err_of(rt_get(&mut c, "todo:2"));
    assert!(e.starts_with("ERR internal error"), "{e}");
    caught(&redis, "a blocked client's reply");
    assert!(
        stored(&mut c, "todo:2").is_some(),
        "the load itself completed"
    );
    // The key-miss hook: no prefetch this time, the next read still loads.
    let _: i64 = redis::cmd("EXISTS").arg("todo:4").query(&mut c).unwrap();
    caught(&redis, "the key-miss hook");
    // The flush event and the INFO section.
    let _: () = redis::cmd("FLUSHALL").query(&mut c).unwrap();
    caught(&redis, "the flush event");
    let info: String = redis::cmd("INFO").arg("readthrough").query(&mut c).unwrap();
    caught(&redis, "the INFO section");
    assert!(
        !info.contains("readthrough_hits"),
        "an empty section: {info}"
    );
    assert!(redis.info().contains_key("hits"), "the next INFO is whole");
    still_serving(&redis, "todo:5", "5");
    let v: String = redis::cmd("GET").arg("todo:6").query(&mut c).unwrap();
    assert_eq!(json(&v)["id"], "6", "transparent GET works again");
}

#[test]
fn a_panic_in_redis_s_timeout_callback_still_answers_timeout() {
    // A MongoDB that accepts connections and never answers: the load waits for ever (no
    // SIGSTOP, whose timing a busy machine can blur).
    let silent = SilentServer::start();
    let db = unique_db("ptimeout");
    // The module's own deadline is far away, so Redis's safety-net timeout fires first.
    let redis = Redis::with(&silent.uri(), &mappings(&db))
        .config("timeout", "3600000")
        .env("READTHROUGH_TEST_PANIC_AT", "timeout")
        .start();
    // Not waiting 5 s + 1 h: block a client with CLIENT UNBLOCK ... TIMEOUT instead.
    let h = redis.spawn_rt_get("todo:2");
    redis.wait_blocked(1);
    let mut c = redis.conn();
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut c).unwrap();
    let id = list
        .lines()
        .find(|l| l.contains("cmd=rt.get"))
        .and_then(|l| l.split(' ').find_map(|f| f.strip_prefix("id=")))
        .expect("the blocked client")
        .to_owned();
    let n: i64 = redis::cmd("CLIENT")
        .arg(&["UNBLOCK", &id, "TIMEOUT"])
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 1);
    let e = err_of(h.join().unwrap());
    assert!(e.starts_with("TIMEOUT"), "{e}");
    caught(&redis, "a blocked client's timeout");
    // Still serving: PING, and MongoDB again behind the same module.
    let mongo = Mongo::shared();
    let db = seed(mongo, "ptimeout", 3);
    let mut c = redis.conn();
    for (name, value) in [
        ("readthrough.mappings", mappings(&db)),
        ("readthrough.mongo-uri", mongo.uri.clone()),
        ("readthrough.timeout", "5000".into()),
    ] {
        config_set(&mut c, name, &value);
    }
    still_serving(&redis, "todo:3", "3");
}

#[test]
fn a_panic_while_applying_a_change_event_does_not_end_the_watcher() {
    let mongo = Mongo::shared();
    let db = seed(mongo, "panic-cdc", 5);
    let redis = Redis::with(&mongo.uri, &mappings(&db))
        .env("READTHROUGH_TEST_PANIC_AT", "change-event")
        .start();
    redis.wait_watching();
    let mut c = redis.conn();
    rt_get(&mut c, "todo:1").unwrap().unwrap();
    mongo.update_one(&db, "todos", doc! {"id": "1"}, doc! {"$set": {"name": "x"}});
    wait_until("the panic to be logged", Duration::from_secs(10), || {
        redis
            .log()
            .contains("caught a panic while applying an event; removing")
    });
    // The event may be lost: the watcher removed the cached keys of its prefixes instead.
    wait_until("the key to be removed", Duration::from_secs(10), || {
        stored(&mut c, "todo:1").is_none()
    });
    redis.wait_watching();
    rt_get(&mut c, "todo:2").unwrap().unwrap();
    // The reopened stream has no saved token, so it starts from "now": an update made just
    // as it opens may fall before that on a busy machine. Update until one is applied.
    let mut n = 0;
    wait_until(
        "the watcher to apply events again",
        Duration::from_secs(20),
        || {
            n += 1;
            mongo.update_one(&db, "todos", doc! {"id": "2"}, doc! {"$set": {"name": n}});
            (0..10).any(|_| {
                std::thread::sleep(Duration::from_millis(50));
                stored(&mut c, "todo:2").is_none()
            })
        },
    );
}

#[test]
fn a_panic_in_a_warm_up_ends_it_and_the_prefix_can_be_warmed_again() {
    let Fixture { redis, mut c, .. } = fixture_with("panic-warm", 50, |r| {
        r.env("READTHROUGH_TEST_PANIC_AT", "warm-up")
    });
    let ok: String = redis::cmd("RT.WARM").arg("todo:").query(&mut c).unwrap();
    assert_eq!(ok, "OK");
    wait_until("the warm-up to end", Duration::from_secs(10), || {
        redis
            .info_str("warm_0")
            .is_some_and(|w| w.contains("running=0"))
    });
    let w = redis.info_str("warm_0").unwrap();
    assert!(w.contains("error=") && w.contains("panic"), "{w}");
    let ok: String = redis::cmd("RT.WARM").arg("todo:").query(&mut c).unwrap();
    assert_eq!(ok, "OK", "not BUSY");
    wait_until("the second warm-up", Duration::from_secs(20), || {
        redis
            .info_str("warm_0")
            .is_some_and(|w| w.contains("running=0") && w.contains("loaded=50"))
    });
    still_serving(&redis, "todo:7", "7");
}

/// A panic while the main thread handles an inline load's answer: the socket callback catches
/// it, the load's guard answers its waiter with an internal error (no client left blocked, the
/// key not left in flight), and the next misses load inline again.
#[test]
fn a_panic_in_an_inline_answer_answers_the_waiter_and_inline_loads_go_on() {
    let Fixture { redis, mut c, .. } = fixture_with("ipanic", 200, |r| {
        r.config("inline-loads", "yes")
            .env("READTHROUGH_TEST_PANIC_AT", "inline-answer")
    });
    let mut ids = 1..=150;
    // Misses load through the loader thread until the inline connection is up; the first inline
    // answer panics.
    let failed = loop {
        let id = ids.next().expect("an inline load within 150 misses");
        match rt_get(&mut c, &format!("todo:{id}")) {
            Ok(v) => assert!(v.is_some()),
            Err(e) => break (id, err_of::<()>(Err(e))),
        }
    };
    assert!(failed.1.starts_with("ERR internal error"), "{failed:?}");
    caught(&redis, "a MongoDB socket's callback");
    wait_until("the load to end", Duration::from_secs(10), || {
        redis.info()["inflight"] == 0
    });
    let before = redis.info()["inline_loads"];
    for id in ids.take(5) {
        assert!(rt_get(&mut c, &format!("todo:{id}")).unwrap().is_some());
    }
    assert!(redis.info()["inline_loads"] > before, "inline loads go on");
    let retry = rt_get(&mut c, &format!("todo:{}", failed.0)).unwrap();
    assert!(retry.is_some(), "the failed key loads when read again");
    still_serving(&redis, "todo:199", "199");
}

/// A panic while the main thread stores what the driver found on its runtime (a URI the inline
/// connection does not serve: a read preference): the callback that turned the runtime catches
/// it, the load's guard answers its waiter with an internal error, and the next lone misses run
/// on the main thread again.
#[test]
fn a_panic_in_a_main_thread_driver_answer_answers_the_waiter_and_those_loads_go_on() {
    let Fixture {
        mongo,
        redis,
        mut c,
        ..
    } = fixture_with("mpanic", 200, |r| {
        r.config("inline-loads", "yes")
            .env("READTHROUGH_TEST_PANIC_AT", "main-driver-answer")
    });
    let sep = if mongo.uri.contains('?') { '&' } else { '?' };
    let uri = format!("{}{sep}readPreference=primary", mongo.uri);
    config_set(&mut c, "readthrough.mongo-uri", &uri);
    let mut ids = 1..=150;
    // The first misses go through the loader thread while the main thread's client is made; the
    // first answer on the main thread panics.
    let failed = loop {
        let id = ids.next().expect("a main-thread load within 150 misses");
        match rt_get(&mut c, &format!("todo:{id}")) {
            // Paced, so the 150 misses span 3 s at least however fast they load.
            Ok(v) => assert!(v.is_some()),
            Err(e) => break (id, err_of::<()>(Err(e))),
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(failed.1.starts_with("ERR internal error"), "{failed:?}");
    wait_until("the log to name the panic", Duration::from_secs(10), || {
        redis.log().contains("injected fault at main-driver-answer")
    });
    wait_until("the load to end", Duration::from_secs(10), || {
        redis.info()["inflight"] == 0
    });
    let before = redis.info()["main_thread_driver_loads"];
    for id in ids.take(5) {
        assert!(rt_get(&mut c, &format!("todo:{id}")).unwrap().is_some());
    }
    assert!(
        redis.info()["main_thread_driver_loads"] > before,
        "main-thread loads go on"
    );
    let retry = rt_get(&mut c, &format!("todo:{}", failed.0)).unwrap();
    assert!(retry.is_some(), "the failed key loads when read again");
    still_serving(&redis, "todo:199", "199");
}
