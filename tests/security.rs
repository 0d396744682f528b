//! Security: credentials stay secret everywhere Redis shows things; ACL key permissions and
//! command rights apply to every module command.
mod common;

use common::*;
use std::io::{BufRead, BufReader, Write};
use std::time::Duration;

const SECRET: &str = "hunter2secret";

#[test]
fn mongodb_credentials_never_show_in_info_log_errors_slowlog_or_monitor() {
    let mongo = Mongo::shared();
    let db = seed(mongo, "secret", 1);
    let dead = format!("mongodb://alice:{SECRET}@127.0.0.1:{}/", free_port());
    let redis = Redis::with(&mongo.uri, &mappings(&db))
        .config("timeout", "800")
        .args(&["--slowlog-log-slower-than", "0"])
        .start();
    let mut c = redis.conn();
    // A MONITOR client watches everything that follows.
    let mut monitor = std::net::TcpStream::connect(("127.0.0.1", redis.port)).unwrap();
    monitor.write_all(b"MONITOR\r\n").unwrap();
    monitor
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut seen = String::new();
    let mut lines = BufReader::new(monitor.try_clone().unwrap());
    lines.read_line(&mut seen).unwrap(); // +OK

    config_set(&mut c, "readthrough.mongo-uri", &dead);
    let e = err_of(rt_get(&mut c, "todo:1"));
    assert!(e.starts_with("BACKEND"), "{e}");
    assert!(!e.contains(SECRET), "error reply: {e}");
    let e = config_refused(
        &mut c,
        "readthrough.mongo-uri",
        &format!("mongodb://alice:{SECRET}@/"),
    );
    assert!(!e.contains(SECRET), "refused URI: {e}");
    let ok: String = redis::cmd("RT.WARM").arg("todo:").query(&mut c).unwrap();
    assert_eq!(ok, "OK");
    wait_until("the warm-up to fail", Duration::from_secs(10), || {
        redis
            .info_str("warm_0")
            .is_some_and(|w| w.contains("error="))
    });
    let w = redis.info_str("warm_0").unwrap();
    assert!(!w.contains(SECRET), "warm-up error in INFO: {w}");

    let info: String = redis::cmd("INFO").arg("everything").query(&mut c).unwrap();
    assert!(!info.contains(SECRET), "INFO");
    let slowlog = format!(
        "{:?}",
        redis::cmd("SLOWLOG")
            .arg("GET")
            .arg(1000)
            .query::<redis::Value>(&mut c)
            .unwrap()
    );
    assert!(
        slowlog.contains("readthrough.mongo-uri"),
        "the CONFIG SET is in the slowlog: {slowlog}"
    );
    assert!(!slowlog.contains(SECRET), "slowlog: {slowlog}");
    let clients: String = redis::cmd("CLIENT").arg("LIST").query(&mut c).unwrap();
    assert!(!clients.contains(SECRET), "CLIENT LIST");
    while lines.read_line(&mut seen).map(|n| n > 0).unwrap_or(false) {}
    assert!(seen.contains("RT.GET"), "MONITOR saw the commands: {seen}");
    assert!(!seen.contains(SECRET), "MONITOR: {seen}");
    assert!(!redis.log().contains(SECRET), "log: {}", redis.log());
    // CONFIG GET shows it to an administrator, as Redis does for `masterauth`.
    assert_eq!(config_get(&mut c, "readthrough.mongo-uri"), dead);
}

#[test]
fn acl_key_patterns_and_command_rights_apply_to_every_module_command() {
    let mongo = Mongo::shared();
    let db = seed(mongo, "acl", 3);
    let redis = Redis::with(
        &mongo.uri,
        &format!("{} secret:={db}.todos:id", mappings(&db)),
    )
    .start();
    let mut admin = redis.conn();
    let exists = |c: &mut redis::Connection, k: &str| -> i64 {
        redis::cmd("EXISTS").arg(k).query(c).unwrap()
    };

    // The example: read todo:* through RT.GET, nothing else.
    let mut reader = redis.acl_user("reader", &["~todo:*", "+@read", "+rt.get"]);
    assert_eq!(
        json(&rt_get(&mut reader, "todo:1").unwrap().unwrap())["id"],
        "1"
    );
    let e = err_of(rt_get(&mut reader, "secret:1"));
    assert!(e.starts_with("NOPERM"), "{e}");
    assert_eq!(
        exists(&mut admin, "secret:1"),
        0,
        "nothing loaded for a refused key"
    );
    // Where the server has ACL categories for modules (7.2+, Valkey), `+@read` also grants
    // RT.MGET (see the categories test below); on 7.0 it grants no module command.
    let (name, major, minor) = server_version();
    let mget = redis::cmd("RT.MGET")
        .arg("todo:1")
        .query::<redis::Value>(&mut reader);
    if name == "valkey" || (major, minor) >= (7, 2) {
        assert!(mget.is_ok(), "{mget:?}");
    } else {
        let e = err_of(mget);
        assert!(e.starts_with("NOPERM"), "RT.MGET not granted: {e}");
    }
    for cmd in ["RT.INVALIDATE", "RT.REFRESH"] {
        let e = err_of(
            redis::cmd(cmd)
                .arg("todo:1")
                .query::<redis::Value>(&mut reader),
        );
        assert!(e.starts_with("NOPERM"), "{cmd} not granted: {e}");
    }
    let e = err_of(
        redis::cmd("RT.WARM")
            .arg("todo:")
            .query::<String>(&mut reader),
    );
    assert!(e.starts_with("NOPERM"), "{e}");

    // A read-only key permission (%R~) is enough for the reading commands on what is cached
    // (a load would write the key: see tests/permissions.rs), not for the ones that change the
    // cache.
    assert!(rt_get(&mut admin, "todo:2").unwrap().is_some());
    assert!(rt_get(&mut admin, "todo:3").unwrap().is_some());
    let mut ro = redis.acl_user(
        "ro",
        &[
            "%R~todo:*",
            "+rt.get",
            "+rt.mget",
            "+rt.invalidate",
            "+rt.refresh",
        ],
    );
    assert!(rt_get(&mut ro, "todo:2").unwrap().is_some());
    let v: Vec<Option<String>> = redis::cmd("RT.MGET")
        .arg(&["todo:2", "todo:3"])
        .query(&mut ro)
        .unwrap();
    assert!(v.iter().all(Option::is_some));
    let e = err_of(
        redis::cmd("RT.MGET")
            .arg(&["todo:2", "secret:2"])
            .query::<redis::Value>(&mut ro),
    );
    assert!(e.starts_with("NOPERM"), "{e}");
    for cmd in ["RT.INVALIDATE", "RT.REFRESH"] {
        let e = err_of(redis::cmd(cmd).arg("todo:2").query::<redis::Value>(&mut ro));
        assert!(e.starts_with("NOPERM"), "{cmd} needs write permission: {e}");
    }
    assert_eq!(exists(&mut admin, "todo:2"), 1, "not invalidated");

    // Full key permission: the cache-changing commands work.
    let mut rw = redis.acl_user("rw", &["~todo:*", "+rt.invalidate", "+rt.refresh"]);
    let n: i64 = redis::cmd("RT.INVALIDATE")
        .arg("todo:2")
        .query(&mut rw)
        .unwrap();
    assert_eq!(n, 1);
    let e = err_of(
        redis::cmd("RT.INVALIDATE")
            .arg("secret:2")
            .query::<i64>(&mut rw),
    );
    assert!(e.starts_with("NOPERM"), "{e}");

    // The transparent GET is checked as the module command it becomes.
    let mut plain = redis.acl_user("plain", &["~todo:*", "+get", "+rt.tget"]);
    let v: Option<String> = redis::cmd("GET").arg("todo:3").query(&mut plain).unwrap();
    assert_eq!(json(&v.unwrap())["id"], "3");
    let e = err_of(
        redis::cmd("GET")
            .arg("secret:3")
            .query::<Option<String>>(&mut plain),
    );
    assert!(e.starts_with("NOPERM"), "{e}");
    assert_eq!(exists(&mut admin, "secret:3"), 0);
    let pong: String = redis::cmd("PING").query(&mut admin).unwrap();
    assert_eq!(pong, "PONG");
}

#[test]
fn tls_and_authentication_to_mongodb_through_the_uri() {
    let Some(mut mongo) = Mongo::dedicated("tls") else {
        return;
    };
    let db = seed(&mongo, "tls", 2);
    mongo.command(
        "admin",
        mongodb::bson::doc! {"createUser": "alice", "pwd": SECRET, "roles": ["root"]},
    );
    mongo.stop();
    // A CA of the test's own and a server certificate it signed (rustls refuses a self-signed
    // certificate that is its own CA).
    let d = mongo.dir.clone();
    let (ca, cert, key) = (d.join("ca.pem"), d.join("cert.pem"), d.join("key.pem"));
    let ext = d.join("ext.cnf");
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    let p = |p: &std::path::Path| p.to_string_lossy().into_owned();
    let (ca_key, csr) = (p(&d.join("ca.key")), p(&d.join("server.csr")));
    for args in [
        vec![
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=test CA",
            "-keyout",
            &ca_key,
            "-out",
            &p(&ca),
        ],
        vec![
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            &p(&key),
            "-out",
            &csr,
        ],
        vec![
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &p(&ca),
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            &p(&ext),
            "-out",
            &p(&cert),
        ],
    ] {
        let out = std::process::Command::new("openssl")
            .args(&args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    mongo.extra = vec![
        "--auth".into(),
        "--tls-cert-file".into(),
        cert.to_string_lossy().into_owned(),
        "--tls-key-file".into(),
        key.to_string_lossy().into_owned(),
    ];
    mongo.start();
    let uri = |user: &str, options: &str| {
        format!(
            "mongodb://{user}@127.0.0.1:{}/?directConnection=true&authSource=admin{options}",
            mongo.port
        )
    };
    let tls = format!("&tls=true&tlsCAFile={}", ca.display());
    let good = uri(&format!("alice:{SECRET}"), &tls);
    let redis = Redis::with(&good, &mappings(&db))
        .config("timeout", "3000")
        .start();
    let mut c = redis.conn();
    let v = rt_get(&mut c, "todo:1")
        .unwrap()
        .expect("loaded over TLS with auth");
    assert_eq!(json(&v)["id"], "1");
    // A lone miss on this URI runs the driver on Redis's main thread, once its client is made
    // (the first miss went through the loader thread meanwhile).
    let mut absent = 100..;
    wait_until(
        "a miss through the driver on the main thread",
        Duration::from_secs(10),
        || {
            let key = format!("todo:{}", absent.next().unwrap());
            assert_eq!(rt_get(&mut c, &key).unwrap(), None);
            redis.info()["main_thread_driver_loads"] > 0
        },
    );

    let set = |c: &mut redis::Connection, uri: &str| {
        config_set(c, "readthrough.mongo-uri", uri);
    };
    // A wrong password, a server certificate nobody vouches for: BACKEND, and no secret shown.
    for (what, bad) in [
        ("wrong password", uri("alice:wrong-pw-123", &tls)),
        (
            "untrusted certificate",
            uri(&format!("alice:{SECRET}"), "&tls=true"),
        ),
    ] {
        set(&mut c, &bad);
        let e = err_of(rt_get(&mut c, "todo:2"));
        assert!(e.starts_with("BACKEND"), "{what}: {e}");
        assert!(
            !e.contains(SECRET) && !e.contains("wrong-pw-123"),
            "{what}: {e}"
        );
    }
    set(&mut c, &good);
    let v = rt_get(&mut c, "todo:2")
        .unwrap()
        .expect("back to the good URI");
    assert_eq!(json(&v)["id"], "2");
    let log = redis.log();
    assert!(
        !log.contains(SECRET) && !log.contains("wrong-pw-123"),
        "{log}"
    );
}

/// ACL categories: Redis 7.2+ and Valkey have the API, so `+@read` grants the read commands
/// (including the internal ones a transparent GET becomes) and `+@write` the writers. Redis 7.0
/// has no such API: there a category grants none of them (grant them by name, as documented).
#[test]
fn acl_categories_grant_the_module_commands_where_the_server_has_the_api() {
    let (name, major, minor) = server_version();
    let has_api = name == "valkey" || (major, minor) >= (7, 2);
    let mongo = Mongo::shared();
    let db = seed(mongo, "aclcat", 3);
    let redis = Redis::with(&mongo.uri, &mappings(&db)).start();
    let mut reader = redis.acl_user("catreader", &["~*", "+@read"]);
    let mut writer = redis.acl_user("catwriter", &["~*", "+@write"]);
    let denied = |r: redis::RedisResult<redis::Value>| err_of(r).starts_with("NOPERM");
    let run = |c: &mut redis::Connection, args: &[&str]| {
        redis::cmd(args[0]).arg(&args[1..]).query::<redis::Value>(c)
    };
    let reads: [&[&str]; 3] = [
        &["RT.GET", "todo:1"],
        &["RT.MGET", "todo:1", "todo:2"],
        &["GET", "todo:3"],
    ];
    let writes: [&[&str]; 2] = [&["RT.REFRESH", "todo:1"], &["RT.INVALIDATE", "todo:1"]];
    for args in reads {
        if has_api {
            assert!(run(&mut reader, args).is_ok(), "+@read grants {args:?}");
            assert!(
                denied(run(&mut writer, args)),
                "+@write does not grant {args:?}"
            );
        } else if args[0] == "GET" {
            // 7.0: the plain GET stays native for a user who may not run RT.TGET: allowed.
            assert!(run(&mut reader, args).is_ok(), "7.0: GET is +@read's");
        } else {
            assert!(
                denied(run(&mut reader, args)),
                "7.0: no categories: {args:?}"
            );
        }
    }
    for args in writes {
        if has_api {
            assert!(run(&mut writer, args).is_ok(), "+@write grants {args:?}");
            assert!(
                denied(run(&mut reader, args)),
                "+@read does not grant {args:?}"
            );
        } else {
            assert!(
                denied(run(&mut writer, args)),
                "7.0: no categories: {args:?}"
            );
        }
    }
    let listed: Vec<String> = redis::cmd("COMMAND")
        .arg(&["LIST", "FILTERBY", "ACLCAT", "read"])
        .query(&mut redis.conn())
        .unwrap();
    for cmd in ["rt.get", "rt.mget", "rt.tget", "rt.tmget"] {
        assert_eq!(listed.iter().any(|c| c == cmd), has_api, "{cmd} in @read");
    }
}
