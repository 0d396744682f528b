//! Smoke tests of the example applications in `examples/`, run when their runtime is present
//! (`make test` installs FastAPI into the project virtualenv, and the Node example's packages
//! when `npm` exists). Each runs against a real redis-server with the module and MongoDB.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// A plain HTTP/1.1 GET: (status, body).
fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {raw}"));
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, body.to_owned())
}

#[test]
fn the_original_fastapi_demo_reads_bare_ids_with_json_get_and_no_cache_code() {
    let uvicorn = root().join(".venv/bin/uvicorn");
    let has_fastapi = Command::new(root().join(".venv/bin/python"))
        .args(["-c", "import fastapi, redis, pydantic"])
        .status()
        .is_ok_and(|s| s.success());
    if !uvicorn.exists() || !has_fastapi {
        skip("FastAPI is not in .venv (make venv installs it)");
        return;
    }
    let rejson = match json_module() {
        Ok(p) => p.map(|p| p.to_string_lossy().into_owned()),
        Err(why) => {
            skip(&why);
            return;
        }
    };
    let mongo = Mongo::shared();
    let db = seed(mongo, "fastapi", 20);
    // The original demo's shape: RedisJSON documents under bare ids, without _id.
    let mapping = format!("={db}.todos:id;format=json;fields=-_id");
    let extra: Vec<&str> = match &rejson {
        Some(p) => vec!["--loadmodule", p.as_str()],
        None => vec![],
    };
    let redis = Redis::with(&mongo.uri, &mapping).args(&extra).start();
    let port = free_port();
    let app_dir = root().join("examples/fastapi_todo");
    let dir = temp_dir("fastapi");
    let _app = Proc::spawn(
        &dir,
        "uvicorn",
        "env",
        &[
            format!("REDIS_URL={}", redis.url()),
            uvicorn.to_string_lossy().into_owned(),
            "app:app".into(),
            "--app-dir".into(),
            app_dir.to_string_lossy().into_owned(),
            "--port".into(),
            port.to_string(),
            "--log-level".into(),
            "warning".into(),
        ],
    );
    wait_until("the FastAPI app", Duration::from_secs(30), || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    // The first request for a cold todo: 200, validated as Todo{id, name, description}.
    let (status, body) = http_get(port, "/todos/3");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        json(&body),
        json(r#"{"id":"3","name":"todo 3","description":"d"}"#)
    );
    let info = redis.info();
    assert_eq!((info["misses"], info["loads"]), (1, 1), "loaded once");
    assert_eq!(redis.cli(&["TYPE", "3"]), "ReJSON-RL");
    let (status, again) = http_get(port, "/todos/3");
    assert_eq!((status, again.as_str()), (200, body.as_str()));
    assert_eq!(
        redis.info()["hits"],
        1,
        "the second request was a Redis hit"
    );
    let (status, body) = http_get(port, "/todos/999999");
    assert_eq!(status, 404, "{body}");
    // MongoDB errors become HTTP errors with the module's message.
    let closed = free_port();
    redis.cli(&[
        "CONFIG",
        "SET",
        "readthrough.mongo-uri",
        &format!("mongodb://127.0.0.1:{closed}"),
    ]);
    let (status, body) = http_get(port, "/todos/4");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("BACKEND"), "{body}");
}

#[test]
fn the_node_example_reads_todos_with_node_redis() {
    let dir: PathBuf = root().join("examples/node");
    let node_ok = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !node_ok || !dir.join("node_modules/redis").exists() {
        skip("node or examples/node/node_modules missing (make test runs npm ci when npm exists)");
        return;
    }
    let mongo = Mongo::shared();
    let db = seed(mongo, "node", 20);
    let redis = Redis::with(&mongo.uri, &mappings(&db)).start();
    let out = Command::new("node")
        .arg(dir.join("get_todo.js"))
        .args([redis.url().as_str(), "7", "999999", "7"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert_eq!(json(lines[0])["name"], "todo 7");
    assert_eq!(lines[1], "null");
    assert_eq!(lines[2], lines[0]);
    let info = redis.info();
    assert_eq!((info["hits"], info["loads"]), (1, 1));
}

/// `readthrough.*` lines of a config file: name -> value.
fn settings(path: &str) -> std::collections::BTreeMap<String, String> {
    std::fs::read_to_string(root().join(path))
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("readthrough."))
        .map(|l| {
            let (k, v) = l.split_once(' ').unwrap_or((l, ""));
            (k.to_owned(), v.trim().to_owned())
        })
        .collect()
}

#[test]
fn docker_config_matches_redis_conf_and_every_config_is_documented() {
    let local = settings("redis.conf");
    let docker = settings("docker/redis.conf");
    assert_eq!(local, docker, "docker/redis.conf drifted from redis.conf");
    let redis = Redis::with(&Mongo::shared().uri, "").start();
    let all: Vec<String> = redis::cmd("CONFIG")
        .arg(&["GET", "readthrough.*"])
        .query(&mut redis.conn())
        .unwrap();
    let names: Vec<&String> = all.iter().step_by(2).collect();
    assert!(names.len() >= 12, "{names:?}");
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    for name in names {
        assert!(local.contains_key(name), "{name} missing from redis.conf");
        assert!(
            readme.contains(&format!("`{name}`")),
            "{name} missing from README"
        );
    }
    // The image uses that file, and the entrypoint fills in the per-deployment settings.
    let dockerfile = std::fs::read_to_string(root().join("docker/Dockerfile")).unwrap();
    assert!(dockerfile.contains("COPY docker/redis.conf /usr/local/etc/redis/redis.conf"));
    let entry = std::fs::read_to_string(root().join("docker/entrypoint.sh")).unwrap();
    assert!(entry.contains("--readthrough.mongo-uri \"$MONGO_URI\""));
}
