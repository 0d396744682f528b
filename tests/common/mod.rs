//! Test harness: real servers on free ports, real clients.
//!
//! - MongoDB: SecantusDB from the project's virtualenv (`.venv/bin/secantusd-py`, or
//!   `$SECANTUSD`), or an external server when `READTHROUGH_TEST_MONGO_URI` is set. Most tests
//!   share one server per test binary and keep apart by using their own database; tests that
//!   stop or stall MongoDB start a dedicated one (skipped with an external URI).
//! - Redis: one `redis-server --loadmodule target/release/libreadthrough.so` per test (or
//!   `$READTHROUGH_MODULE`). The module is built once by `make test`, never here.
//!
//! Every server writes its output to a log file under `target/test-tmp`, runs under a small
//! shell watchdog that kills it when the test process goes away, and is stopped on drop.
#![allow(dead_code)]

use mongodb::bson::{doc, Document};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn module_path() -> PathBuf {
    let p = std::env::var_os("READTHROUGH_MODULE")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/release/libreadthrough.so"));
    assert!(
        p.exists(),
        "{} not found: build it first (`make test` does)",
        p.display()
    );
    p
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A fresh directory under target/test-tmp.
pub fn temp_dir(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let d = root()
        .join("target/test-tmp")
        .join(format!("{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A database name no other test uses.
pub fn unique_db(name: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{name}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// A server process under a watchdog shell; `pid` is the server itself (for SIGSTOP).
pub struct Proc {
    shell: Child,
    pub pid: u32,
    pub log: PathBuf,
}

const WATCHDOG: &str = r#"parent=$1; pidfile=$2; shift 2
"$@" & c=$!; echo $c > "$pidfile"
finish() {
  kill -CONT $c 2>/dev/null; kill $c 2>/dev/null
  for i in 1 2 3 4 5 6 7 8 9 10; do kill -0 $c 2>/dev/null || exit 0; sleep 1; done
  kill -9 $c 2>/dev/null; exit 0
}
trap finish TERM INT
while kill -0 "$parent" 2>/dev/null && kill -0 $c 2>/dev/null; do sleep 0.3; done
finish"#;

impl Proc {
    pub fn spawn(dir: &Path, name: &str, program: &str, args: &[String]) -> Proc {
        let log = dir.join(format!("{name}.log"));
        let pidfile = dir.join(format!("{name}.pid"));
        let _ = std::fs::remove_file(&pidfile);
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let shell = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg("watchdog")
            .arg(std::process::id().to_string())
            .arg(&pidfile)
            .arg(program)
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        let mut pid = 0;
        wait_until("a pid file", Duration::from_secs(10), || {
            pid = std::fs::read_to_string(&pidfile)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0);
            pid != 0
        });
        Proc { shell, pid, log }
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid.to_string())
            .status()
            .unwrap();
        assert!(ok.success(), "kill -{sig} {}", self.pid);
    }

    pub fn alive(&self) -> bool {
        Command::new("kill")
            .arg("-0")
            .arg(self.pid.to_string())
            .status()
            .unwrap()
            .success()
    }

    /// Stops the server: SIGTERM, then SIGKILL if it has not exited within 10 s (a server that
    /// waits for its clients must not hang the test run), then the watchdog.
    pub fn stop(&mut self) {
        let pid = self.pid.to_string();
        let kill = |args: &[&str]| {
            Command::new("kill")
                .args(args)
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        };
        kill(&["-CONT", &pid]);
        kill(&["-TERM", &pid]);
        let start = Instant::now();
        while kill(&["-0", &pid]) && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
        }
        kill(&["-KILL", &pid]);
        kill(&[&self.shell.id().to_string()]);
        let _ = self.shell.wait();
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------- MongoDB

pub fn rt() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

pub fn external_mongo() -> Option<String> {
    std::env::var("READTHROUGH_TEST_MONGO_URI")
        .ok()
        .filter(|s| !s.is_empty())
}

pub struct Mongo {
    pub uri: String,
    pub port: u16,
    pub dir: PathBuf,
    /// Extra server flags for the next `start` (TLS, auth).
    pub extra: Vec<String>,
    proc: Option<Proc>,
    client: OnceLock<mongodb::Client>,
}

impl Mongo {
    /// The server shared by the tests of this binary.
    pub fn shared() -> &'static Mongo {
        static M: OnceLock<Mongo> = OnceLock::new();
        M.get_or_init(|| match external_mongo() {
            Some(uri) => Mongo {
                uri,
                port: 0,
                dir: PathBuf::new(),
                extra: Vec::new(),
                proc: None,
                client: OnceLock::new(),
            },
            None => Mongo::embedded("mongo-shared"),
        })
    }

    /// A server of the test's own, which it may stop, stall and restart. `None` when the tests
    /// run against an external MongoDB (those tests are then skipped).
    pub fn dedicated(name: &str) -> Option<Mongo> {
        if external_mongo().is_some() {
            eprintln!("skipped: {name} needs the embedded MongoDB-compatible server");
            return None;
        }
        Some(Mongo::embedded(name))
    }

    fn embedded(name: &str) -> Mongo {
        let dir = temp_dir(name);
        let port = free_port();
        let mut m = Mongo {
            uri: format!("mongodb://127.0.0.1:{port}"),
            port,
            dir,
            extra: Vec::new(),
            proc: None,
            client: OnceLock::new(),
        };
        m.start();
        m
    }

    fn secantusd() -> String {
        std::env::var("SECANTUSD").unwrap_or_else(|_| {
            let p = root().join(".venv/bin/secantusd-py");
            assert!(
                p.exists(),
                "{} missing: run `make venv` (make test does)",
                p.display()
            );
            p.to_string_lossy().into_owned()
        })
    }

    /// Starts (or restarts) the embedded server on the same port and storage.
    pub fn start(&mut self) {
        let mut args = vec![
            "--port".into(),
            self.port.to_string(),
            "--storage-path".into(),
            self.dir.join("data").to_string_lossy().into_owned(),
            "--log-level".into(),
            "WARNING".into(),
        ];
        args.extend(self.extra.iter().cloned());
        self.proc = Some(Proc::spawn(&self.dir, "mongo", &Self::secantusd(), &args));
        let port = self.port;
        wait_until(
            "MongoDB to accept connections",
            Duration::from_secs(60),
            || port_open(port),
        );
    }

    pub fn stop(&mut self) {
        if let Some(client) = self.client.take() {
            rt().block_on(async move { client.shutdown().await });
        }
        if let Some(mut p) = self.proc.take() {
            p.stop();
        }
        let port = self.port;
        wait_until("MongoDB to stop", Duration::from_secs(30), || {
            !port_open(port)
        });
    }

    /// SIGSTOP: connections stay open, nothing answers.
    pub fn pause(&self) {
        self.proc.as_ref().expect("embedded").signal("STOP");
    }

    pub fn resume(&self) {
        self.proc.as_ref().expect("embedded").signal("CONT");
    }

    pub fn client(&self) -> mongodb::Client {
        self.client
            .get_or_init(|| {
                rt().block_on(mongodb::Client::with_uri_str(&self.uri))
                    .unwrap()
            })
            .clone()
    }

    pub fn insert(&self, db: &str, coll: &str, docs: Vec<Document>) {
        let c = self.client().database(db).collection::<Document>(coll);
        rt().block_on(async { c.insert_many(docs).await }).unwrap();
    }

    pub fn create_index(&self, db: &str, coll: &str, field: &str) {
        let c = self.client().database(db).collection::<Document>(coll);
        let model = mongodb::IndexModel::builder()
            .keys(doc! { field: 1 })
            .build();
        rt().block_on(async { c.create_index(model).await })
            .unwrap();
    }

    pub fn update_one(&self, db: &str, coll: &str, filter: Document, update: Document) {
        let c = self.client().database(db).collection::<Document>(coll);
        let r = rt()
            .block_on(async { c.update_one(filter, update).await })
            .unwrap();
        assert_eq!(r.matched_count, 1, "update matched nothing");
    }

    pub fn delete_one(&self, db: &str, coll: &str, filter: Document) {
        let c = self.client().database(db).collection::<Document>(coll);
        rt().block_on(async { c.delete_one(filter).await }).unwrap();
    }

    pub fn command(&self, db: &str, cmd: Document) -> Document {
        let db = self.client().database(db);
        rt().block_on(async { db.run_command(cmd).await }).unwrap()
    }

    pub fn drop_collection(&self, db: &str, coll: &str) {
        let c = self.client().database(db).collection::<Document>(coll);
        rt().block_on(async { c.drop().await }).unwrap();
    }

    /// `opcounters.query` from serverStatus.
    pub fn query_count(&self) -> i64 {
        let db = self.client().database("admin");
        let st = rt()
            .block_on(async {
                db.run_command(mongodb::bson::doc! {"serverStatus": 1})
                    .await
            })
            .unwrap();
        let q = st.get_document("opcounters").unwrap().get("query").unwrap();
        q.as_i64().or_else(|| q.as_i32().map(i64::from)).unwrap()
    }
}

impl Drop for Mongo {
    fn drop(&mut self) {
        // Close the test's own connections first: the server may wait for them on shutdown.
        if let Some(c) = self.client.take() {
            rt().block_on(async move { c.shutdown().await });
        }
        if let Some(mut p) = self.proc.take() {
            p.stop();
        }
    }
}

// ---------------------------------------------------------------- Redis

pub struct Redis {
    pub port: u16,
    pub dir: PathBuf,
    args: Vec<String>,
    proc: Option<Proc>,
}

impl Redis {
    /// redis-server with the module loaded, MongoDB at `mongo_uri`, the given mappings, and
    /// extra `--name value` arguments.
    pub fn start(mongo_uri: &str, mappings: &str, extra: &[&str]) -> Redis {
        let mut args: Vec<String> = vec![
            "--save".into(),
            "".into(),
            "--appendonly".into(),
            "no".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        args.extend([
            "--loadmodule".into(),
            module_path().to_string_lossy().into_owned(),
            "--readthrough.mongo-uri".into(),
            mongo_uri.into(),
            "--readthrough.mappings".into(),
            mappings.into(),
        ]);
        Redis::start_raw(args)
    }

    /// `start`, then waits until every change-stream watcher is watching.
    pub fn start_watching(mongo_uri: &str, mappings: &str, extra: &[&str]) -> Redis {
        let r = Redis::start(mongo_uri, mappings, extra);
        r.wait_watching();
        r
    }

    /// redis-server with exactly these arguments (a free `--port` and `--dir` are added).
    pub fn start_raw(args: Vec<String>) -> Redis {
        Redis::start_raw_on(free_port(), args)
    }

    /// A Redis Cluster node with the module: `port + 10000` (its cluster bus) must be free too.
    pub fn start_cluster_node(mongo_uri: &str, mappings: &str) -> Redis {
        // Ports (and bus ports) below the ephemeral range, each handed out once per process.
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let base = 10000 + (std::process::id() as usize % 50) * 100;
        let port = std::iter::repeat_with(|| NEXT.fetch_add(1, Ordering::Relaxed))
            .take(5000)
            .map(|i| (base + i % 5000) as u16)
            .find(|&p| {
                TcpListener::bind(("127.0.0.1", p)).is_ok()
                    && TcpListener::bind(("127.0.0.1", p + 10000)).is_ok()
            })
            .expect("a free port pair for a cluster node");
        let module = module_path().to_string_lossy().into_owned();
        let args = [
            "--save",
            "",
            "--appendonly",
            "no",
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--loadmodule",
            &module,
            "--readthrough.mongo-uri",
            mongo_uri,
            "--readthrough.mappings",
            mappings,
        ];
        Redis::start_raw_on(port, args.iter().map(|s| s.to_string()).collect())
    }

    fn start_raw_on(port: u16, args: Vec<String>) -> Redis {
        let mut r = Redis {
            port,
            dir: temp_dir("redis"),
            args,
            proc: None,
        };
        r.launch();
        r
    }

    /// Starts redis-server expecting it to fail; returns its log.
    pub fn start_failing(args: Vec<String>) -> String {
        let dir = temp_dir("redis-fail");
        let port = free_port();
        let mut full = vec![
            "--port".to_string(),
            port.to_string(),
            "--dir".into(),
            dir.to_string_lossy().into_owned(),
        ];
        full.extend(args);
        let out = Command::new("redis-server")
            .args(&full)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            !out.status.success(),
            "redis-server should have refused to start"
        );
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    }

    fn launch(&mut self) {
        let mut full = vec![
            "--port".to_string(),
            self.port.to_string(),
            "--dir".into(),
            self.dir.to_string_lossy().into_owned(),
        ];
        full.extend(self.args.iter().cloned());
        let p = Proc::spawn(&self.dir, "redis", "redis-server", &full);
        let port = self.port;
        let start = Instant::now();
        while !port_open(port) {
            if !p.alive() || start.elapsed() > Duration::from_secs(20) {
                panic!("redis-server did not start:\n{}", p.log_text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.proc = Some(p);
        // Wait until loaded (AOF) and answering.
        wait_until("redis PING", Duration::from_secs(30), || {
            self.try_conn()
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c).ok())
                .is_some()
        });
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn try_conn(&self) -> Option<redis::Connection> {
        redis::Client::open(self.url()).ok()?.get_connection().ok()
    }

    pub fn conn(&self) -> redis::Connection {
        let c = redis::Client::open(self.url())
            .unwrap()
            .get_connection()
            .unwrap();
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        c
    }

    /// Runs redis-cli with these arguments; its stdout, trimmed.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .arg("-p")
            .arg(self.port.to_string())
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim_end().to_owned()
    }

    /// Feeds `input` to redis-cli's standard input; its stdout.
    pub fn cli_stdin(&self, input: &str) -> String {
        use std::io::Write;
        let mut child = Command::new("redis-cli")
            .arg("-p")
            .arg(self.port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim_end().to_owned()
    }

    pub fn pid(&self) -> u32 {
        self.proc.as_ref().unwrap().pid
    }

    pub fn log(&self) -> String {
        self.proc.as_ref().map(|p| p.log_text()).unwrap_or_default()
    }

    /// Stops the server (SHUTDOWN as configured) and starts it again on the same port and dir.
    pub fn restart(&mut self) {
        self.shutdown();
        self.launch();
    }

    /// SHUTDOWN as configured (AOF/RDB written); `start_again` brings it back.
    pub fn shutdown(&mut self) {
        let _ = self.cli(&["SHUTDOWN"]);
        if let Some(mut p) = self.proc.take() {
            wait_until("redis to exit", Duration::from_secs(20), || !p.alive());
            p.stop();
        }
    }

    pub fn start_again(&mut self) {
        self.launch();
    }

    /// A text field of `INFO readthrough` (without the `readthrough_` prefix).
    pub fn info_str(&self, name: &str) -> Option<String> {
        let text: String = redis::cmd("INFO")
            .arg("readthrough")
            .query(&mut self.conn())
            .unwrap();
        let want = format!("readthrough_{name}:");
        text.lines()
            .find_map(|l| l.strip_prefix(&want))
            .map(|v| v.trim().to_owned())
    }

    /// The `watcher_N` lines of `INFO readthrough`, one per mapped collection.
    pub fn watchers(&self) -> Vec<String> {
        let text: String = redis::cmd("INFO")
            .arg("readthrough")
            .query(&mut self.conn())
            .unwrap();
        text.lines()
            .filter(|l| l.starts_with("readthrough_watcher_"))
            .map(|l| l.trim().to_owned())
            .collect()
    }

    /// Waits until every change-stream watcher is watching.
    pub fn wait_watching(&self) {
        wait_until(
            "the change-stream watchers",
            Duration::from_secs(30),
            || {
                let w = self.watchers();
                !w.is_empty() && w.iter().all(|w| w.contains("state=watching"))
            },
        );
    }

    /// A second server with the module, replica of `master`, once its replication link is up.
    pub fn start_replica(mongo_uri: &str, mappings: &str, master: &Redis) -> Redis {
        let port = master.port.to_string();
        let replica = Redis::start(mongo_uri, mappings, &["--replicaof", "127.0.0.1", &port]);
        let start = Instant::now();
        let mut last: String;
        loop {
            // A fresh connection each time: a sync may close clients; keep the last answer.
            let r = replica
                .try_conn()
                .ok_or_else(|| "no connection".to_owned())
                .and_then(|mut c| {
                    redis::cmd("INFO")
                        .arg("replication")
                        .query::<String>(&mut c)
                        .map_err(|e| e.to_string())
                });
            match r {
                Ok(s) if s.contains("master_link_status:up") => return replica,
                Ok(s) => last = s,
                Err(e) => last = e,
            }
            if start.elapsed() > Duration::from_secs(20) {
                panic!(
                    "replication link not up: {last}\nreplica log:\n{}",
                    replica.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until exactly `n` clients are blocked (on loads).
    pub fn wait_blocked(&self, n: usize) {
        let mut c = self.conn();
        let want = format!("blocked_clients:{n}\r");
        wait_until(
            &format!("{n} blocked clients"),
            Duration::from_secs(30),
            || {
                let s: String = redis::cmd("INFO").arg("clients").query(&mut c).unwrap();
                s.contains(&want)
            },
        );
    }

    /// `RT.GET key` on a connection of its own, in a thread.
    pub fn spawn_rt_get(
        &self,
        key: &str,
    ) -> std::thread::JoinHandle<redis::RedisResult<Option<String>>> {
        let (url, key) = (self.url(), key.to_owned());
        std::thread::spawn(move || {
            let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
            rt_get(&mut c, &key)
        })
    }

    /// A numeric field of any INFO section (`info_field("clients", "blocked_clients")`).
    pub fn info_field(&self, section: &str, name: &str) -> i64 {
        let text: String = redis::cmd("INFO")
            .arg(section)
            .query(&mut self.conn())
            .unwrap();
        let want = format!("{name}:");
        text.lines()
            .find_map(|l| l.strip_prefix(&want))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no numeric {name} in INFO {section}"))
    }

    /// The `readthrough_*` fields of INFO.
    pub fn info(&self) -> std::collections::HashMap<String, i64> {
        let text: String = redis::cmd("INFO")
            .arg("readthrough")
            .query(&mut self.conn())
            .unwrap();
        text.lines()
            .filter_map(|l| l.strip_prefix("readthrough_"))
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.to_owned(), v.trim().parse().unwrap_or(-1)))
            .collect()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.stop();
        }
    }
}

/// The Redis error of a reply: its code and its text.
pub fn err_of<T: std::fmt::Debug>(r: redis::RedisResult<T>) -> String {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => match (e.code(), e.detail()) {
            (Some(code), Some(detail)) => format!("{code} {detail}"),
            _ => format!("(not a server error) {e}"),
        },
    }
}

// ---------------------------------------------------------------- shared test data

/// A fresh database with todos `{id: "1".."n"}` and an `items` collection keyed by `_id`.
pub fn seed(mongo: &Mongo, name: &str, n: usize) -> String {
    let db = unique_db(name);
    let todos: Vec<Document> = (1..=n)
        .map(|i| doc! { "id": i.to_string(), "name": format!("todo {i}"), "description": "d" })
        .collect();
    mongo.insert(&db, "todos", todos);
    mongo.create_index(&db, "todos", "id");
    db
}

pub fn mappings(db: &str) -> String {
    format!("todo:={db}.todos:id item:={db}.items")
}

pub fn rt_get(c: &mut redis::Connection, key: &str) -> redis::RedisResult<Option<String>> {
    redis::cmd("RT.GET").arg(key).query(c)
}

pub fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

/// What Redis holds at `key`, read without triggering a load: EXISTS first (a plain GET of a
/// mapped key would read through).
pub fn stored(c: &mut redis::Connection, key: &str) -> Option<String> {
    let n: i64 = redis::cmd("EXISTS").arg(key).query(c).unwrap();
    if n == 0 {
        return None;
    }
    redis::cmd("GET").arg(key).query(c).unwrap()
}

// ---------------------------------------------------------------- a slow network

/// A TCP proxy on a free port that holds every chunk the client sends for `delay` before it
/// forwards it: a slow MongoDB, as Redis sees it, without touching the server.
pub struct SlowProxy {
    pub port: u16,
}

impl SlowProxy {
    pub fn start(upstream: u16, delay: Duration) -> SlowProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || pump(client, server, delay));
                std::thread::spawn(move || pump(s2, c2, Duration::ZERO));
            }
        });
        SlowProxy { port }
    }

    pub fn uri(&self) -> String {
        format!("mongodb://127.0.0.1:{}/?directConnection=true", self.port)
    }
}

fn pump(mut from: std::net::TcpStream, mut to: std::net::TcpStream, delay: Duration) {
    use std::io::{Read, Write};
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                std::thread::sleep(delay);
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
    let _ = from.shutdown(std::net::Shutdown::Both);
}
