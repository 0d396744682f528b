//! A server process under a watchdog shell, stopped on drop.
//!
//! Signals go to a pid only while it is still the process started here (same start time in
//! /proc): pids wrap at 32,768 on these machines and tests start thousands of threads, so the
//! pid of a server that already exited (a Redis told to SHUTDOWN) can belong to another test's
//! server by the time it is dropped. Signalling it by number once resumed and then killed
//! another test's SIGSTOPped MongoDB in the middle of its stall.

use super::wait_until;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server process under a watchdog shell; `pid` is the server itself (for SIGSTOP).
pub struct Proc {
    shell: Child,
    pub pid: u32,
    pub log: PathBuf,
    started: Option<String>,
}

const WATCHDOG: &str = r#"parent=$1; pidfile=$2; shift 2
"$@" & c=$!; echo $c > "$pidfile"
st() { s=$(cat /proc/$1/stat 2>/dev/null) || return 0; s=${s##*) }; set -- $s; shift 19; echo $1; }
start=$(st $c)
mine() { [ -n "$start" ] && [ "$(st $c)" = "$start" ]; }
finish() {
  if mine; then kill -CONT $c 2>/dev/null; kill $c 2>/dev/null; fi
  for i in 1 2 3 4 5 6 7 8 9 10; do mine || exit 0; sleep 1; done
  if mine; then kill -9 $c 2>/dev/null; fi; exit 0
}
trap finish TERM INT
while kill -0 "$parent" 2>/dev/null && mine; do sleep 0.3; done
finish"#;

/// The fields of /proc/PID/stat after the command name (which may hold spaces): the state
/// letter first (`T` once SIGSTOP has stopped the process), the start time 20th (field 22,
/// which tells the process apart from a later one given the same pid).
/// `stat` is `/proc/PID/stat` or, for one thread, `/proc/PID/task/TID/stat`.
fn stat_fields(stat: &Path) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(stat).ok()?;
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    Some(rest.split(' ').map(str::to_owned).collect())
}

fn proc_stat(pid: u32) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/stat"))
}

fn state_letter(fields: &[String]) -> Option<char> {
    fields.first()?.chars().next()
}

fn start_time(pid: u32) -> Option<String> {
    stat_fields(&proc_stat(pid))?.into_iter().nth(19)
}

impl Proc {
    pub fn spawn(dir: &Path, name: &str, program: &str, args: &[String]) -> Proc {
        Proc::spawn_env(dir, name, program, args, &[])
    }

    /// `spawn` with extra environment variables.
    pub fn spawn_env(
        dir: &Path,
        name: &str,
        program: &str,
        args: &[String],
        env: &[(String, String)],
    ) -> Proc {
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
            .envs(env.iter().map(|(k, v)| (k, v)))
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
        let started = start_time(pid);
        Proc {
            shell,
            pid,
            log,
            started,
        }
    }

    /// Whether `pid` is still the process started here.
    fn ours(&self) -> bool {
        self.started.is_some() && start_time(self.pid) == self.started
    }

    pub fn signal(&self, sig: &str) {
        assert!(self.ours(), "kill -{sig} {}: the process is gone", self.pid);
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid.to_string())
            .status()
            .unwrap();
        assert!(ok.success(), "kill -{sig} {}", self.pid);
    }

    /// The state letter of the process started here (`None` once it is gone).
    pub fn state(&self) -> Option<char> {
        let fields = stat_fields(&proc_stat(self.pid))?;
        let same = self.started.is_some() && fields.get(19) == self.started.as_ref();
        same.then(|| state_letter(&fields)).flatten()
    }

    /// The state letters of all its threads (empty once it is gone). A signal stops or
    /// resumes each thread on its own: the process's own letter says only its first thread's.
    pub fn thread_states(&self) -> Vec<char> {
        if !self.ours() {
            return Vec::new();
        }
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{}/task", self.pid)) else {
            return Vec::new();
        };
        tasks
            .flatten()
            .filter_map(|t| state_letter(&stat_fields(&t.path().join("stat"))?))
            .collect()
    }

    pub fn alive(&self) -> bool {
        self.ours()
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
        if self.ours() {
            kill(&["-CONT", &pid]);
            kill(&["-TERM", &pid]);
        }
        let start = Instant::now();
        while self.ours() && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
        }
        if self.ours() {
            kill(&["-KILL", &pid]);
        }
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
