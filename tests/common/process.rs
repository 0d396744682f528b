//! A server process under a watchdog shell, stopped on drop.

use super::wait_until;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
