//! Installs the Python tools the tests run for real (moto, ansible) into the
//! repository's `.venv`, once, under a file lock so parallel tests don't race.
//! CI starts from a clean clone: nothing here may assume a prepared machine.

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The venv's `bin/` folder, with `moto_server` and `ansible-inventory` in it.
pub fn venv_bin() -> PathBuf {
    let root = repo_root();
    let venv = root.join(".venv");
    let bin = venv.join("bin");
    let ready = venv.join(".berth-tools-ready");
    if ready.exists() {
        return bin;
    }
    std::fs::create_dir_all(&venv).expect("create .venv");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(root.join(".venv.lock"))
        .expect("open .venv.lock");
    nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
        .map(|guard| {
            if !ready.exists() {
                install(&venv);
                std::fs::write(&ready, "").expect("mark venv ready");
            }
            drop(guard);
        })
        .map_err(|(_, e)| e)
        .expect("lock .venv.lock");
    bin
}

fn install(venv: &Path) {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    if !venv.join("bin/python").exists() {
        run(Command::new(&python).args(["-m", "venv"]).arg(venv));
    }
    run(Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .args(["moto[server]", "ansible-core"]));
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `check-jsonschema` in the venv (its own marker, as in
/// `scripts/install-tools`), installed under the same lock when missing.
pub fn check_jsonschema() -> PathBuf {
    let bin = venv_bin();
    let venv = repo_root().join(".venv");
    let ready = venv.join(".berth-jsonschema-ready");
    if !ready.exists() {
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(repo_root().join(".venv.lock"))
            .expect("open .venv.lock");
        let guard = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive).map_err(|(_, e)| e).expect("lock .venv.lock");
        if !ready.exists() {
            run(Command::new(bin.join("pip"))
                .args(["install", "--quiet", "--disable-pip-version-check", "check-jsonschema==0.39.0"]));
            std::fs::write(&ready, "").expect("mark check-jsonschema ready");
        }
        drop(guard);
    }
    bin.join("check-jsonschema")
}
