//! The `automations` binary as a user runs it: a real process on a free port, with its own data
//! dir. `infra/test.sh` builds the binary first (`cargo build --workspace --bins`).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct LocalProcess {
    pub child: Child,
    pub base: String,
    pub admin_token: String,
    pub data_dir: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

/// `target/<profile>/automations`, next to this test binary's `deps/` folder.
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(|deps| deps.parent()).expect("target dir");
    let bin = dir.join("automations");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build --workspace --bins` (infra/test.sh does)",
        bin.display()
    );
    bin
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

impl LocalProcess {
    /// Starts the binary with `args` and `envs` on a fresh data dir and waits for /healthz.
    pub fn start(args: &[&str], envs: &[(&str, String)]) -> LocalProcess {
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = dir.path().to_owned();
        Self::start_in(data_dir, Some(dir), args, envs)
    }

    /// Starts (or restarts) on an existing data dir.
    pub fn start_in(
        data_dir: PathBuf,
        dir: Option<tempfile::TempDir>,
        args: &[&str],
        envs: &[(&str, String)],
    ) -> LocalProcess {
        Self::start_logging(data_dir, dir, args, envs, None)
    }

    /// The same, with the process's log (stderr) appended to `log` instead of the test's.
    pub fn start_logging(
        data_dir: PathBuf,
        dir: Option<tempfile::TempDir>,
        args: &[&str],
        envs: &[(&str, String)],
        log: Option<&std::path::Path>,
    ) -> LocalProcess {
        let port = free_port();
        let admin_token = "e2e-admin-token-0123456789".to_owned();
        let mut cmd = Command::new(binary());
        cmd.args(["--listen", &format!("127.0.0.1:{port}")])
            .args(args)
            .env("AUTOMATIONS_DATA_DIR", &data_dir)
            .env("AUTOMATIONS_ADMIN_TOKEN", &admin_token)
            .env("RETRY_SCHEDULE", "1s,1s")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        if let Some(log) = log {
            let file = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("log file");
            cmd.stderr(Stdio::from(file));
        }
        let child = cmd.spawn().expect("spawn automations");
        let process =
            LocalProcess { child, base: format!("http://127.0.0.1:{port}"), admin_token, data_dir, _dir: dir };
        process.wait_healthy();
        process
    }

    fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(self.base.trim_start_matches("http://")).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("automations did not listen within 60 s");
    }

    /// Sends SIGTERM and returns the exit status and how long the process took to exit.
    pub fn terminate(&mut self) -> (std::process::ExitStatus, Duration) {
        let start = Instant::now();
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return (status, start.elapsed());
            }
            if start.elapsed() > Duration::from_secs(40) {
                let _ = self.child.kill();
                panic!("automations did not exit within 40 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// kill -9: no chance to clean up.
    pub fn kill_hard(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for LocalProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
