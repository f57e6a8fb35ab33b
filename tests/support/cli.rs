//! Runs the real `berth` binary in a scratch directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Work {
    pub dir: tempfile::TempDir,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn assert_ok(&self) -> &Self {
        assert_eq!(self.code, 0, "expected success\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "expected exit {code}\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// The `berth` binary under test: `BERTH_BIN` when set, else Cargo's.
/// Cargo's path is the copy in the target directory's `debug/`, which the
/// last build of any checkout sharing that directory overwrites;
/// `BERTH_BIN=target/debug/deps/berth-<hash>` pins this checkout's own.
pub fn bin() -> PathBuf {
    std::env::var_os("BERTH_BIN").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_berth")))
}

impl Work {
    pub fn new() -> Work {
        Work { dir: tempfile::tempdir().expect("tempdir") }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, name: &str, text: &str) -> &Self {
        let p = self.dir.path().join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(p, text).expect("write");
        self
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.current_dir(self.dir.path()).args(args).env("NO_COLOR", "1").env_remove("BERTH_WORKSPACE");
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.cmd(args).output().expect("run berth").into()
    }

    /// The state file as JSON.
    pub fn state(&self) -> serde_json::Value {
        let text = self.read("state/default.json");
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
    }

    pub fn state_addresses(&self) -> Vec<String> {
        self.state()["resources"]
            .as_array()
            .map(|a| a.iter().map(|r| r["addr"].as_str().unwrap_or_default().to_string()).collect())
            .unwrap_or_default()
    }
}
