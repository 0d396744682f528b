//! Redis ACL users: loading the module never changes what a user may do.
//! - A plain read (GET, MGET, HGET, ...) of a mapped key is allowed exactly when the native
//!   command is, and a refusal names the command the client sent. It reads through where the
//!   user may also run the internal command (granted by name, or by `@read` on 7.2+); where it
//!   may not, it answers as without the module.
//! - A load stores a key only for a user who may write it; `RT.WARM` only for a user who may
//!   write every key under the prefix; `RT.REFRESH` and `RT.INVALIDATE` only with write access.
//! - Nothing is written after a refusal.

mod common;

use common::*;
use std::time::Duration;

fn run(c: &mut redis::Connection, args: &[&str]) -> redis::RedisResult<redis::Value> {
    redis::cmd(args[0]).arg(&args[1..]).query(c)
}

fn exists(admin: &mut redis::Connection, key: &str) -> bool {
    redis::cmd("EXISTS").arg(key).query::<i64>(admin).unwrap() == 1
}

/// The server tells the command filter which client sent a command (Redis 7.2+, Valkey 8).
fn per_client() -> bool {
    let (name, major, minor) = server_version();
    name == "valkey" || (major, minor) >= (7, 2)
}

/// The first row, for every transparent read of a string and a hash mapping: a user
/// granted only the native commands on `todo:*` gets what it would get without the module (no
/// error naming a command it never sent), and the key is loaded for the next read; a user
/// granted the internal commands too reads through at once.
#[test]
fn a_user_granted_only_the_native_reads_gets_them_as_without_the_module() {
    let mongo = Mongo::shared();
    let db = seed(mongo, "aclnative", 8);
    let redis = Redis::with(
        &mongo.uri,
        &format!("todo:={db}.todos:id h:={db}.todos:id;format=hash"),
    )
    .start();
    let mut admin = redis.conn();
    let natives = ["+get", "+mget", "+hget", "+hmget", "+hgetall"];
    let mut app = redis.acl_user("app", &[&["~todo:*", "~h:*"][..], &natives].concat());
    let reads: [&[&str]; 5] = [
        &["GET", "todo:1"],
        &["MGET", "todo:2", "todo:3"],
        &["HGET", "h:1", "name"],
        &["HMGET", "h:2", "name", "id"],
        &["HGETALL", "h:3"],
    ];
    for args in reads {
        // Not loaded yet: nil (as without the module) or, where the user may read through,
        // the value; never an error.
        let first = run(&mut app, args);
        assert!(first.is_ok(), "{args:?}: {first:?}");
        // Loaded in the background for the next read (the user may write the key).
        wait_until(&format!("{args:?} loaded"), Duration::from_secs(10), || {
            exists(&mut admin, args[1])
        });
        let v = run(&mut app, args).unwrap();
        assert_ne!(v, redis::Value::Nil, "{args:?}");
    }
    // ACL DRYRUN agrees with what the user sees.
    let dry: String = redis::cmd("ACL")
        .arg(&["DRYRUN", "app", "GET", "todo:4"])
        .query(&mut admin)
        .unwrap();
    assert_eq!(dry, "OK");
    // Granted the internal commands as well: the first read is the document.
    let mut both = redis.acl_user("both", &["~todo:*", "+get", "+rt.tget"]);
    let got: Option<String> = redis::cmd("GET").arg("todo:5").query(&mut both).unwrap();
    if per_client() {
        assert_eq!(json(&got.expect("read through"))["id"], "5");
    } else {
        // 7.0: the filter cannot tell users apart, and `app` may run GET but not RT.TGET, so
        // every GET stays native until `app` is granted it too (README: Permissions).
        assert!(got.is_none(), "{got:?}");
        // Granted inside MULTI/EXEC: the change takes effect at EXEC.
        let _: () = redis::pipe()
            .atomic()
            .cmd("ACL")
            .arg(&["SETUSER", "app", "+rt.tget", "+rt.tmget", "+rt.thget"])
            .arg(&["+rt.thmget", "+rt.thgetall"])
            .ignore()
            .query(&mut admin)
            .unwrap();
        let got: Option<String> = redis::cmd("GET").arg("todo:6").query(&mut both).unwrap();
        assert_eq!(json(&got.expect("read through once granted"))["id"], "6");
        let got: Option<String> = redis::cmd("GET").arg("todo:7").query(&mut app).unwrap();
        assert_eq!(json(&got.expect("read through once granted"))["id"], "7");
    }
    let kept = redis.info_field("readthrough", "readthrough_acl_kept_native");
    assert!(kept > 0, "acl_kept_native {kept}");
}

/// Refusals name the command the client sent, and nothing is loaded for them.
#[test]
fn a_refused_plain_read_names_the_command_sent_and_loads_nothing() {
    let mongo = Mongo::shared();
    let db = seed(mongo, "aclrefuse", 4);
    let redis = Redis::with(
        &mongo.uri,
        &format!("todo:={db}.todos:id secret:={db}.todos:id"),
    )
    .start();
    let mut admin = redis.conn();
    // May run everything but GET.
    let mut noget = redis.acl_user("noget", &["~*", "+@all", "-get"]);
    // May run the internal command, not GET.
    let mut inner = redis.acl_user("inner", &["~*", "+rt.tget"]);
    for c in [&mut noget, &mut inner] {
        let e = err_of(run(c, &["GET", "todo:1"]));
        assert!(e.starts_with("NOPERM"), "{e}");
        assert!(e.contains("'get'"), "names the command sent: {e}");
        assert!(!e.contains("rt.tget"), "{e}");
    }
    assert!(
        !exists(&mut admin, "todo:1"),
        "nothing loaded for a refusal"
    );
    // A key outside the user's patterns: Redis's own key refusal, nothing loaded.
    let mut app = redis.acl_user("app", &["~todo:*", "+get", "+rt.tget"]);
    let e = err_of(run(&mut app, &["GET", "secret:2"]));
    assert!(e.starts_with("NOPERM"), "{e}");
    assert!(!e.contains("rt.tget"), "{e}");
    assert!(!exists(&mut admin, "secret:2"));
    let dry: String = redis::cmd("ACL")
        .arg(&["DRYRUN", "noget", "GET", "todo:1"])
        .query(&mut admin)
        .unwrap();
    assert!(dry.contains("'get'"), "{dry}");
}

/// `%R~`: the user reads what is cached; a load (which writes the key) is not made for it.
/// `%W~`: the user may change the cache but not read it.
#[test]
fn a_read_only_key_permission_reads_the_cache_and_loads_nothing() {
    let mongo = Mongo::shared();
    let db = seed(mongo, "aclro", 4);
    let redis = Redis::with(&mongo.uri, &mappings(&db)).start();
    let mut admin = redis.conn();
    let read = [
        "+get",
        "+mget",
        "+rt.get",
        "+rt.mget",
        "+rt.tget",
        "+rt.tmget",
    ];
    let mut ro = redis.acl_user("ro", &[&["%R~todo:*"][..], &read].concat());
    // Cached by the admin: the read-only user reads it every way.
    assert!(rt_get(&mut admin, "todo:1").unwrap().is_some());
    assert!(rt_get(&mut ro, "todo:1").unwrap().is_some());
    let v: Option<String> = redis::cmd("GET").arg("todo:1").query(&mut ro).unwrap();
    assert!(v.is_some());
    // Not cached: RT.GET and RT.MGET are refused naming the key; nothing is stored.
    let e = err_of(rt_get(&mut ro, "todo:2"));
    assert!(e.starts_with("NOPERM") && e.contains("'todo:2'"), "{e}");
    let e = err_of(run(&mut ro, &["RT.MGET", "todo:1", "todo:3"]));
    assert!(e.starts_with("NOPERM") && e.contains("'todo:3'"), "{e}");
    // A plain GET answers as without the module: nil. Where the filter knows the user
    // (7.2+) or every user may run RT.TGET where it may run GET (here, on 7.0), it becomes RT.TGET,
    // which does not load for this user.
    let v: Option<String> = redis::cmd("GET").arg("todo:4").query(&mut ro).unwrap();
    assert_eq!(v, None);
    let v: Vec<Option<String>> = redis::cmd("MGET")
        .arg(&["todo:1", "todo:4"])
        .query(&mut ro)
        .unwrap();
    assert!(v[0].is_some() && v[1].is_none(), "{v:?}");
    // The refusals are in ACL LOG and INFO; a positive control shows the keys are loadable.
    let refusals = redis.info_field("readthrough", "readthrough_acl_no_write");
    assert!(refusals >= 4, "acl_no_write {refusals}");
    let log: Vec<redis::Value> = redis::cmd("ACL")
        .arg(&["LOG", "10"])
        .query(&mut admin)
        .unwrap();
    let log = format!("{log:?}");
    assert!(log.contains("todo:2") && log.contains("ro"), "{log}");
    for k in ["todo:2", "todo:3", "todo:4"] {
        assert!(
            !exists(&mut admin, k),
            "{k} was stored for a read-only user"
        );
    }
    assert!(rt_get(&mut admin, "todo:4").unwrap().is_some());
    let v: Option<String> = redis::cmd("GET").arg("todo:4").query(&mut ro).unwrap();
    assert!(
        v.is_some(),
        "cached by a user who may write it, then readable"
    );

    // Changing the cache needs write access: %R~ is refused, %W~ allowed.
    for cmd in ["RT.INVALIDATE", "RT.REFRESH"] {
        let mut c = redis.acl_user("ro2", &["%R~todo:*", &format!("+{cmd}")]);
        let e = err_of(run(&mut c, &[cmd, "todo:1"]));
        assert!(e.starts_with("NOPERM"), "{cmd}: {e}");
    }
    assert!(exists(&mut admin, "todo:1"), "not invalidated by a refusal");
    let mut wo = redis.acl_user("wo", &["%W~todo:*", "+rt.invalidate", "+rt.get"]);
    let n: i64 = redis::cmd("RT.INVALIDATE")
        .arg("todo:1")
        .query(&mut wo)
        .unwrap();
    assert_eq!(n, 1);
    let e = err_of(rt_get(&mut wo, "todo:1"));
    assert!(e.starts_with("NOPERM"), "%W~ may not read: {e}");
    // RT.REFRESH reads and writes: both needed.
    let mut rw = redis.acl_user("rw", &["%RW~todo:*", "+rt.refresh"]);
    assert!(run(&mut rw, &["RT.REFRESH", "todo:1"]).is_ok());
}

/// The second row: `RT.WARM` writes every key of a mapping, so it needs write access to
/// all of them. The check is conservative (see the README): only `*` or a plain prefix
/// followed by `*`, in a selector that may also run RT.WARM, grants it.
#[test]
fn rt_warm_is_refused_unless_the_user_may_write_the_whole_prefix() {
    let mongo = Mongo::shared();
    let db = seed(mongo, "aclwarm", 6);
    let redis = Redis::with(&mongo.uri, &mappings(&db)).start();
    let mut admin = redis.conn();
    let cases: [(&str, &[&str], bool); 8] = [
        ("other keys", &["~x:*", "+@all"], false),
        ("read-only", &["%R~todo:*", "+@all"], false),
        ("part of the prefix", &["~todo:1*", "+@all"], false),
        (
            "keys and command in different selectors",
            &["~todo:*", "-@all", "+get", "(~x:* +rt.warm)"],
            false,
        ),
        ("the prefix", &["~todo:*", "+rt.warm"], true),
        ("write-only", &["%W~todo:*", "+rt.warm"], true),
        ("every key", &["allkeys", "+@all"], true),
        ("a selector", &["~x:*", "+get", "(~todo:* +rt.warm)"], true),
    ];
    for (i, (what, rules, allowed)) in cases.into_iter().enumerate() {
        let mut c = redis.acl_user(&format!("warm{i}"), rules);
        let r = run(&mut c, &["RT.WARM", "todo:"]);
        if allowed {
            assert!(r.is_ok(), "{what}: {r:?}");
            wait_until("the warm-up", Duration::from_secs(20), || {
                let done = redis
                    .info_section("readthrough")
                    .iter()
                    .all(|(k, v)| !k.starts_with("readthrough_warm_") || v.contains("running=0"));
                done && redis::cmd("DBSIZE").query::<i64>(&mut admin).unwrap() == 6
            });
            let _: () = redis::cmd("FLUSHALL").query(&mut admin).unwrap();
        } else {
            let e = err_of(r);
            assert!(
                e.starts_with("NOPERM") && e.contains("'todo:'"),
                "{what}: {e}"
            );
            let n: i64 = redis::cmd("DBSIZE").query(&mut admin).unwrap();
            assert_eq!(n, 0, "{what}: nothing written after a refusal");
        }
    }
    let log: Vec<redis::Value> = redis::cmd("ACL")
        .arg(&["LOG", "50"])
        .query(&mut admin)
        .unwrap();
    assert!(format!("{log:?}").contains("todo:*"), "{log:?}");
}

/// Inside a script a plain read stays what the user may run; the module answers natively.
#[test]
fn scripts_read_as_the_user_may() {
    let mongo = Mongo::shared();
    let db = seed(mongo, "aclscript", 2);
    let redis = Redis::with(&mongo.uri, &mappings(&db)).start();
    let mut app = redis.acl_user("app", &["~todo:*", "+get", "+eval"]);
    let v: Option<String> = redis::cmd("EVAL")
        .arg("return redis.call('GET', KEYS[1])")
        .arg(1)
        .arg("todo:1")
        .query(&mut app)
        .unwrap();
    // A miss inside a script answers nil (a load cannot wait there); never an error.
    assert!(
        v.is_none() || json(v.as_deref().unwrap())["id"] == "1",
        "{v:?}"
    );
    let mut noget = redis.acl_user("noget2", &["~*", "+eval", "+rt.tget"]);
    let e = err_of(
        redis::cmd("EVAL")
            .arg("return redis.call('GET', KEYS[1])")
            .arg(1)
            .arg("todo:2")
            .query::<Option<String>>(&mut noget),
    );
    // Redis's own refusal of GET inside a script (its words differ by version), never one
    // naming the internal command.
    assert!(
        e.contains("NOPERM")
            || e.contains("no permissions")
            || e.contains("can't run this command"),
        "{e}"
    );
    assert!(!e.contains("rt.tget"), "{e}");
}
