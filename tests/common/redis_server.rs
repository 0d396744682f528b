//! redis-server with the module: one per test, replicas and cluster nodes.

use super::{
    free_port, module_path, port_open, rt_get, server_program, temp_dir, wait_until, Proc,
};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- Redis

pub struct Redis {
    pub port: u16,
    pub dir: PathBuf,
    args: Vec<String>,
    /// Extra environment of the server process (e.g. `READTHROUGH_TEST_PANIC_AT`).
    env: Vec<(String, String)>,
    /// The hosts file the server resolves names by, if not the machine's (`hosts_file`).
    hosts: Option<PathBuf>,
    proc: Option<Proc>,
}

/// How a test asks for a redis-server: `Redis::with(uri, mappings)` (the module loaded) or
/// `Redis::bare()` (no module), then the options, then `start()` (or `start_failing()`,
/// `replica_of(&master)`).
#[must_use]
pub struct RedisBuilder {
    /// `--name value` arguments, in the order given; they precede the module's `--loadmodule`,
    /// so another module (RedisJSON) given here loads first.
    args: Vec<String>,
    /// The module's own arguments: `--loadmodule`, URI, mappings (none for `bare`).
    module: Vec<String>,
    env: Vec<(String, String)>,
    conf: Option<String>,
    hosts: Option<String>,
    cluster: bool,
    watching: bool,
}

impl Redis {
    /// redis-server with the module loaded, MongoDB at `mongo_uri` and these mappings.
    pub fn with(mongo_uri: &str, mappings: &str) -> RedisBuilder {
        let module = module_path().to_string_lossy().into_owned();
        RedisBuilder {
            module: [
                "--loadmodule",
                &module,
                "--readthrough.mongo-uri",
                mongo_uri,
                "--readthrough.mappings",
                mappings,
            ]
            .map(String::from)
            .to_vec(),
            ..Redis::bare()
        }
    }

    /// redis-server without the module (give it with `arg` if the test loads it its own way).
    pub fn bare() -> RedisBuilder {
        RedisBuilder {
            args: Vec::new(),
            module: Vec::new(),
            env: Vec::new(),
            conf: None,
            hosts: None,
            cluster: false,
            watching: false,
        }
    }
}

impl RedisBuilder {
    /// `--readthrough.<name> <value>`.
    pub fn config(self, name: &str, value: impl ToString) -> Self {
        self.args(&[&format!("--readthrough.{name}"), &value.to_string()])
    }

    /// Server arguments as given (`--replicaof`, `--loadmodule` of another module, ...).
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// An environment variable of the server process.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// A config file with this text (written into the server's directory and given first, so
    /// that `CONFIG REWRITE` has a file to rewrite).
    pub fn conf_file(mut self, text: &str) -> Self {
        self.conf = Some(text.into());
        self
    }

    /// The server resolves host names by a hosts file with this text, not the machine's: it
    /// runs in a mount namespace of its own where the file is bound over /etc/hosts (see
    /// `own_hosts_file`; the machine's file is not touched).
    pub fn hosts_file(mut self, text: &str) -> Self {
        self.hosts = Some(text.into());
        self
    }

    /// A Redis Cluster node: its port + 10000 (the cluster bus) is free too.
    pub fn cluster_node(mut self) -> Self {
        self.cluster = true;
        self
    }

    /// `start` also waits until every change-stream watcher is watching.
    pub fn watching(mut self) -> Self {
        self.watching = true;
        self
    }

    fn full_args(&self) -> Vec<String> {
        let mut args: Vec<String> = ["--save", "", "--appendonly", "no"]
            .map(String::from)
            .to_vec();
        if self.cluster {
            args.extend(
                [
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                ]
                .map(String::from),
            );
        }
        args.extend(self.args.iter().cloned());
        args.extend(self.module.iter().cloned());
        args
    }

    pub fn start(self) -> Redis {
        let dir = temp_dir("redis");
        let mut args = self.full_args();
        if let Some(text) = &self.conf {
            let path = dir.join("redis.conf");
            std::fs::write(&path, text).unwrap();
            args.insert(0, path.to_string_lossy().into_owned());
        }
        let hosts = self.hosts.as_ref().map(|text| {
            let path = dir.join("hosts");
            std::fs::write(&path, text).unwrap();
            path
        });
        let port = if self.cluster {
            cluster_port()
        } else {
            free_port()
        };
        let mut r = Redis {
            port,
            dir,
            args,
            env: self.env,
            hosts,
            proc: None,
        };
        r.launch();
        if self.watching {
            r.wait_watching();
        }
        r
    }

    /// Starts redis-server expecting it to refuse to start; returns its log.
    pub fn start_failing(self) -> String {
        let dir = temp_dir("redis-fail");
        let mut full = vec![
            "--port".to_string(),
            free_port().to_string(),
            "--dir".into(),
            dir.to_string_lossy().into_owned(),
        ];
        full.extend(self.full_args());
        let out = Command::new(server_program())
            .args(&full)
            .envs(self.env)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            !out.status.success(),
            "redis-server should have refused to start"
        );
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    }

    /// A replica of `master`, once its replication link is up.
    pub fn replica_of(self, master: &Redis) -> Redis {
        let port = master.port.to_string();
        let replica = self.args(&["--replicaof", "127.0.0.1", &port]).start();
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
}

/// A port for a cluster node whose bus port (+10000) is free too: below the ephemeral range,
/// each handed out once per process.
fn cluster_port() -> u16 {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let base = 10000 + (std::process::id() as usize % 50) * 100;
    std::iter::repeat_with(|| NEXT.fetch_add(1, Ordering::Relaxed))
        .take(5000)
        .map(|i| (base + i % 5000) as u16)
        .find(|&p| {
            TcpListener::bind(("127.0.0.1", p)).is_ok()
                && TcpListener::bind(("127.0.0.1", p + 10000)).is_ok()
        })
        .expect("a free port pair for a cluster node")
}

/// `program args` run in a mount namespace of their own with `hosts` bound over /etc/hosts:
/// `unshare` and `sh` exec in place, so the pid started is the program's.
fn with_hosts_file(hosts: &Path, program: &str, args: Vec<String>) -> (String, Vec<String>) {
    let mut full = [
        "-m",
        "sh",
        "-c",
        r#"mount --bind "$0" /etc/hosts && exec "$@""#,
    ]
    .map(String::from)
    .to_vec();
    full.push(hosts.to_string_lossy().into_owned());
    full.push(program.into());
    full.extend(args);
    ("unshare".into(), full)
}

/// How `name` resolves for a process given `hosts_file(text)`, by `getent ahosts` (the
/// addresses in the order getaddrinfo gives them); `Err` says why a process cannot be given
/// its own hosts file here (it takes root, or CAP_SYS_ADMIN, and `unshare`).
pub fn own_hosts_file(text: &str, name: &str) -> Result<Vec<String>, String> {
    let path = temp_dir("hosts").join("hosts");
    std::fs::write(&path, text).unwrap();
    let (program, args) = with_hosts_file(&path, "getent", vec!["ahosts".into(), name.into()]);
    let out = Command::new(&program)
        .args(&args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "a mount namespace with its own /etc/hosts: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let mut seen = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let addr = line
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned();
        if !addr.is_empty() && !seen.contains(&addr) {
            seen.push(addr);
        }
    }
    Ok(seen)
}

impl Redis {
    fn launch(&mut self) {
        // A config file, if any, must come first.
        let conf = self.args.first().filter(|a| a.ends_with(".conf")).cloned();
        let rest = usize::from(conf.is_some());
        let mut full: Vec<String> = conf.into_iter().collect();
        full.extend([
            "--port".to_string(),
            self.port.to_string(),
            "--dir".into(),
            self.dir.to_string_lossy().into_owned(),
        ]);
        full.extend(self.args.iter().skip(rest).cloned());
        let (program, full) = match &self.hosts {
            Some(hosts) => with_hosts_file(hosts, &server_program(), full),
            None => (server_program(), full),
        };
        let p = Proc::spawn_env(&self.dir, "redis", &program, &full, &self.env);
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

    /// A connection without a read timeout. With one (SO_RCVTIMEO), Linux never restarts a
    /// socket read interrupted by a signal handler, whatever SA_RESTART says (signal(7)), and
    /// the redis crate reports the EINTR as an error: the tests' occasional "Interrupted system
    /// call". A hang is bounded by the binary's watchdog instead (`super::watchdog`).
    pub fn conn(&self) -> redis::Connection {
        super::watchdog();
        redis::Client::open(self.url())
            .unwrap()
            .get_connection()
            .unwrap()
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

    /// Sends `sig` (`STOP`, `CONT`, `KILL`) to the server.
    pub fn signal(&self, sig: &str) {
        self.proc.as_ref().unwrap().signal(sig);
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

    /// A connection as ACL user `name` (password `pw`), made afresh with exactly `rules`.
    pub fn acl_user(&self, name: &str, rules: &[&str]) -> redis::Connection {
        let _: () = redis::cmd("ACL")
            .arg("SETUSER")
            .arg(name)
            .arg(&["reset", "on", ">pw"])
            .arg(rules)
            .query(&mut self.conn())
            .unwrap();
        let url = format!("redis://{name}:pw@127.0.0.1:{}/", self.port);
        redis::Client::open(url).unwrap().get_connection().unwrap()
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
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.stop();
        }
    }
}
