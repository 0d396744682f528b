//! `readthrough.mongo-uri-file`: the MongoDB URI (and its password) read from a file, never
//! written into redis.conf, INFO, logs or replies; reread on `RT.RELOAD-SECRETS`; a file that
//! cannot be read is refused and the URI in force stays; a password rotated while loads are in
//! flight loses none of them.

mod common;

use common::*;
use mongodb::bson::doc;
use std::time::Duration;

const PW1: &str = "first-Secret-4711";
const PW2: &str = "second-Secret-0815";

/// A dedicated MongoDB with SCRAM auth and the test commands: users `admin` (the harness) and
/// `app` (the module, password `PW1`).
fn mongo_with_auth(name: &str) -> Option<(Mongo, String)> {
    let mut mongo = Mongo::with_test_commands(name)?;
    let db = seed(&mongo, name, 6);
    for (user, pwd) in [("admin", "admin-pw"), ("app", PW1)] {
        mongo.command(
            "admin",
            doc! {"createUser": user, "pwd": pwd, "roles": ["root"]},
        );
    }
    mongo.stop();
    mongo.extra.push("--auth".into());
    mongo.uri = format!(
        "mongodb://admin:admin-pw@127.0.0.1:{}/?authSource=admin",
        mongo.port
    );
    mongo.start();
    Some((mongo, db))
}

fn app_uri(mongo: &Mongo, pw: &str) -> String {
    user_uri(mongo, "app", pw)
}

fn user_uri(mongo: &Mongo, user: &str, pw: &str) -> String {
    format!(
        "mongodb://{user}:{pw}@127.0.0.1:{}/?authSource=admin&directConnection=true",
        mongo.port
    )
}

fn write(path: &std::path::Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

fn reload(c: &mut redis::Connection) -> redis::RedisResult<String> {
    redis::cmd("RT.RELOAD-SECRETS").query(c)
}

#[test]
fn the_uri_file_is_used_and_its_secret_shown_nowhere() {
    let Some((mongo, db)) = mongo_with_auth("secretfile") else {
        return;
    };
    let dir = temp_dir("secretfile-redis");
    let file = dir.join("mongo-uri");
    write(&file, &format!("{}\n", app_uri(&mongo, PW1)));
    let path = file.to_string_lossy().into_owned();
    // readthrough.mongo-uri points nowhere: the file's URI is the one in force.
    let redis = Redis::with("mongodb://127.0.0.1:1/", &mappings(&db))
        .conf_file("")
        .config("mongo-uri-file", &path)
        .start();
    let mut c = redis.conn();
    let v = rt_get(&mut c, "todo:1")
        .unwrap()
        .expect("loaded with the file's URI");
    assert_eq!(json(&v)["id"], "1");
    let got: Vec<String> = redis::cmd("CONFIG")
        .arg(&["GET", "readthrough.mongo-uri*"])
        .query(&mut c)
        .unwrap();
    assert!(got.contains(&path), "{got:?}");
    let _: () = redis::cmd("CONFIG").arg("REWRITE").query(&mut c).unwrap();
    let conf = std::fs::read_to_string(redis.dir.join("redis.conf")).unwrap();
    assert!(conf.contains(&path), "{conf}");
    let info: String = redis::cmd("INFO").arg("everything").query(&mut c).unwrap();
    // A miss with a bad file's URI: the error does not show the file's text either.
    write(&file, &app_uri(&mongo, "wrong-Secret-999"));
    assert_eq!(reload(&mut c).unwrap(), "OK");
    let e = err_of(rt_get(&mut c, "todo:2"));
    assert!(e.starts_with("BACKEND"), "{e}");
    let shown = [
        format!("{got:?}"),
        conf,
        info,
        e,
        redis.log(),
        std::fs::read_to_string(redis.dir.join("redis.conf")).unwrap(),
    ];
    for (i, text) in shown.iter().enumerate() {
        for secret in [PW1, "wrong-Secret-999"] {
            assert!(!text.contains(secret), "#{i} shows the password: {text}");
        }
    }
    assert!(
        redis.log().contains(&format!("(from {path})")),
        "{}",
        redis.log()
    );
}

#[test]
fn a_file_that_cannot_be_read_is_refused_and_the_uri_in_force_stays() {
    let mongo = Mongo::shared();
    let db = seed(mongo, "secretbad", 6);
    let dir = temp_dir("secretbad");
    let good = dir.join("good");
    write(&good, &mongo.uri);
    let redis = Redis::with("mongodb://127.0.0.1:1/", &mappings(&db))
        .config("mongo-uri-file", good.to_string_lossy())
        .start();
    let mut c = redis.conn();
    assert!(rt_get(&mut c, "todo:1").unwrap().is_some());
    let empty = dir.join("empty");
    write(&empty, "  \n");
    let invalid = dir.join("invalid");
    write(&invalid, "bogus://user:not-shown-77@x");
    let cases = [
        (dir.join("missing"), "No such file"),
        // A directory: not a readable file (root reads any file, so no chmod case here).
        (dir.clone(), "Is a directory"),
        (empty, "is empty"),
        (invalid, "invalid MongoDB URI"),
    ];
    for (path, why) in cases {
        let p = path.to_string_lossy().into_owned();
        let e = config_refused(&mut c, "readthrough.mongo-uri-file", &p);
        assert!(e.contains(why) && e.contains(&p), "{p}: {e}");
        assert!(!e.contains("not-shown-77"), "{e}");
        assert_eq!(
            config_get(&mut c, "readthrough.mongo-uri-file"),
            good.to_string_lossy(),
            "the old value stays"
        );
    }
    // The file in force becomes unreadable: RT.RELOAD-SECRETS says why, loads go on.
    std::fs::remove_file(&good).unwrap();
    let e = err_of(reload(&mut c));
    assert!(e.starts_with("ERR") && e.contains("No such file"), "{e}");
    assert!(
        rt_get(&mut c, "todo:2").unwrap().is_some(),
        "the URI in force stays"
    );
    // Changed: the new URI is in force for the next load.
    write(&good, "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300");
    assert_eq!(reload(&mut c).unwrap(), "OK");
    let e = err_of(rt_get(&mut c, "todo:3"));
    assert!(e.starts_with("BACKEND"), "{e}");
    write(&good, &mongo.uri);
    assert_eq!(reload(&mut c).unwrap(), "OK");
    assert!(rt_get(&mut c, "todo:3").unwrap().is_some());
    // Emptied: readthrough.mongo-uri (here: nowhere) is in force again; reload has no file.
    config_set(&mut c, "readthrough.mongo-uri-file", "");
    let e = err_of(rt_get(&mut c, "todo:4"));
    assert!(e.starts_with("BACKEND"), "{e}");
    let e = err_of(reload(&mut c));
    assert!(e.contains("not set"), "{e}");
    // A file missing at start: the server refuses to start and says why.
    let module = module_path().to_string_lossy().into_owned();
    let missing = dir.join("missing").to_string_lossy().into_owned();
    let log = Redis::bare()
        .args(&[
            "--loadmodule",
            &module,
            "--readthrough.mongo-uri-file",
            &missing,
        ])
        .start_failing();
    assert!(log.contains("No such file"), "{log}");
}

/// A password rotated while loads wait on MongoDB, the way that loses nothing (README:
/// Operating it): a second user with the new password, the file pointed at it and reloaded,
/// then the old user dropped. Both loads in flight answer the document and new loads use the
/// new user. (Changing one user's password instead fails any load that opens a connection in
/// between, in this module as in any client: a CI run saw it.)
#[test]
fn a_password_rotated_while_loads_are_in_flight_loses_none() {
    let Some((mongo, db)) = mongo_with_auth("secretrotate") else {
        return;
    };
    let dir = temp_dir("secretrotate-redis");
    let file = dir.join("mongo-uri");
    write(&file, &app_uri(&mongo, PW1));
    let redis = Redis::with("mongodb://127.0.0.1:1/", &mappings(&db))
        .config("mongo-uri-file", file.to_string_lossy())
        .config("timeout", "5000")
        .start();
    let mut c = redis.conn();
    assert!(rt_get(&mut c, "todo:1").unwrap().is_some());
    // Two loads held by MongoDB for a second.
    mongo.hold_finds(2, 1000);
    let waiting = [redis.spawn_rt_get("todo:2"), redis.spawn_rt_get("todo:3")];
    redis.wait_blocked(2);
    mongo.command(
        "admin",
        doc! {"createUser": "app2", "pwd": PW2, "roles": ["root"]},
    );
    write(&file, &user_uri(&mongo, "app2", PW2));
    assert_eq!(reload(&mut c).unwrap(), "OK");
    for (i, w) in waiting.into_iter().enumerate() {
        let v = w
            .join()
            .unwrap()
            .unwrap_or_else(|e| panic!("load {i}: {e}"));
        assert!(v.is_some(), "load {i} answered nil");
    }
    mongo.command("admin", doc! {"dropUser": "app"});
    // New loads authenticate as the new user.
    for k in ["todo:4", "todo:5"] {
        assert!(rt_get(&mut c, k).unwrap().is_some(), "{k}");
    }
    // The old password in the file again: refused by MongoDB, BACKEND without the password.
    write(&file, &app_uri(&mongo, PW1));
    assert_eq!(reload(&mut c).unwrap(), "OK");
    wait_until("a refused login", Duration::from_secs(20), || {
        let e = err_of(rt_get(&mut c, "todo:6"));
        assert!(!e.contains(PW1) && !e.contains(PW2), "{e}");
        e.starts_with("BACKEND")
    });
}
