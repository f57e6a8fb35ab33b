//! Starts a real BIND9 `named` on loopback for the RFC 2136 tests: a zone
//! `internal.` that accepts updates signed with a fresh TSIG key, on a free
//! port, in a temporary directory, stopped when the [`Bind`] is dropped.
//!
//! CI runs on clean Debian machines as root, so when `named`, `dig` or
//! `nsupdate` is missing the harness installs them with apt-get, once, under
//! a file lock so parallel tests don't race.

use std::io::Write;
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const NAMED: &str = "/usr/sbin/named";
pub const ZONE: &str = "internal.";
pub const KEY_NAME: &str = "berth-key";

pub struct Bind {
    pub port: u16,
    /// The zone's TSIG key secret, base64, as `named.conf` has it.
    pub key_secret: String,
    dir: tempfile::TempDir,
    child: Child,
}

fn tool(name: &str) -> Option<PathBuf> {
    ["/usr/bin", "/usr/sbin", "/bin", "/sbin"].iter().map(|d| Path::new(d).join(name)).find(|p| p.exists())
}

/// Installs bind9 (named), bind9-utils and bind9-dnsutils (dig, nsupdate)
/// when any of them is missing.
pub fn ensure_bind_installed() {
    let ready = || Path::new(NAMED).exists() && tool("dig").is_some() && tool("nsupdate").is_some();
    if ready() {
        return;
    }
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(std::env::temp_dir().join("berth-apt-bind9.lock"))
        .expect("open apt lock file");
    let guard = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .expect("lock apt lock file");
    if !ready() {
        let install = || {
            Command::new("apt-get")
                .args(["install", "-y", "--no-install-recommends", "bind9", "bind9-utils", "bind9-dnsutils"])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status()
                .is_ok_and(|s| s.success())
        };
        if !install() {
            let updated = Command::new("apt-get").arg("update").status().is_ok_and(|s| s.success());
            assert!(updated && install(), "cannot install bind9 with apt-get (the RFC 2136 tests need it)");
        }
        assert!(ready(), "bind9 installed but `{NAMED}`, `dig` or `nsupdate` is still missing");
    }
    drop(guard);
}

/// A port free for both UDP and TCP on 127.0.0.1 (never 53).
fn free_port() -> u16 {
    for _ in 0..50 {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("bind a TCP port");
        let port = tcp.local_addr().expect("local addr").port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both UDP and TCP on 127.0.0.1");
}

fn random_secret() -> String {
    use base64::Engine as _;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

impl Bind {
    /// Starts `named` and waits until it has finished starting and answers a
    /// SOA query for the zone.
    pub fn start() -> Bind {
        ensure_bind_installed();
        let mut last = String::new();
        // The port is free when chosen but another process may take it before
        // named binds it: try a few.
        for _ in 0..3 {
            match Self::try_start() {
                Ok(b) => return b,
                Err(e) => last = e,
            }
        }
        panic!("named did not start:\n{last}");
    }

    fn try_start() -> Result<Bind, String> {
        let dir = tempfile::Builder::new().prefix("berth-bind-").tempdir().map_err(|e| e.to_string())?;
        let d = dir.path();
        // named may drop to another user on some systems; let it write here.
        let _ = std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o777));
        let port = free_port();
        let key_secret = random_secret();
        let conf = format!(
            r#"options {{
    directory "{dir}";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    pid-file "{dir}/named.pid";
    session-keyfile "{dir}/session.key";
    managed-keys-directory "{dir}";
    recursion no;
    dnssec-validation no;
    allow-transfer {{ none; }};
}};
controls {{ }};
key "{KEY_NAME}" {{
    algorithm hmac-sha256;
    secret "{key_secret}";
}};
zone "internal" {{
    type master;
    file "{dir}/internal.zone";
    allow-update {{ key "{KEY_NAME}"; }};
}};
"#,
            dir = d.display()
        );
        let zone = "$TTL 300\n\
                    @ IN SOA ns.internal. hostmaster.internal. 1 3600 600 86400 60\n\
                    @ IN NS ns.internal.\n\
                    ns IN A 127.0.0.1\n";
        std::fs::write(d.join("named.conf"), conf).map_err(|e| e.to_string())?;
        std::fs::write(d.join("internal.zone"), zone).map_err(|e| e.to_string())?;
        for f in ["named.conf", "internal.zone"] {
            let _ = std::fs::set_permissions(d.join(f), std::os::unix::fs::PermissionsExt::from_mode(0o666));
        }
        let log = std::fs::File::create(d.join("named.log")).map_err(|e| e.to_string())?;
        let mut cmd = Command::new(NAMED);
        cmd.args(["-g", "-c"]).arg(d.join("named.conf")).args(["-p", &port.to_string()]);
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot run {NAMED}: {e}"))?;
        let mut bind = Bind { port, key_secret, dir, child };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = bind.child.try_wait() {
                return Err(format!("named exited with {status}:\n{}", bind.log()));
            }
            // named answers queries for a loaded zone before it has finished
            // starting, and answers updates in that window with SERVFAIL:
            // wait for its "running" line as well.
            if bind.log().lines().any(|l| l.ends_with(" running")) && !bind.dig("internal.", "SOA").is_empty() {
                return Ok(bind);
            }
            if Instant::now() > deadline {
                return Err(format!("named did not answer within 30 s:\n{}", bind.log()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("named.log")).unwrap_or_default()
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `dig +short` over TCP: the records' data, one per line, sorted.
    pub fn dig(&self, name: &str, rtype: &str) -> Vec<String> {
        let out = self.dig_raw(name, rtype, &["+short"]);
        let mut lines: Vec<String> = out.lines().map(str::to_string).filter(|l| !l.is_empty()).collect();
        lines.sort();
        lines
    }

    /// The status of the answer: `NOERROR`, `NXDOMAIN`, ...
    pub fn dig_status(&self, name: &str, rtype: &str) -> String {
        let out = self.dig_raw(name, rtype, &["+noall", "+comments"]);
        out.split("status: ")
            .nth(1)
            .and_then(|s| s.split(',').next())
            .unwrap_or_else(|| panic!("no status in dig output:\n{out}"))
            .to_string()
    }

    /// The TTL of the first answer record.
    pub fn dig_ttl(&self, name: &str, rtype: &str) -> u32 {
        let out = self.dig_raw(name, rtype, &["+noall", "+answer"]);
        out.split_whitespace()
            .nth(1)
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("no TTL in dig output:\n{out}"))
    }

    fn dig_raw(&self, name: &str, rtype: &str, extra: &[&str]) -> String {
        let out = Command::new("dig")
            .arg("@127.0.0.1")
            .args(["-p", &self.port.to_string(), name, rtype, "+tcp", "+time=2", "+tries=1"])
            .args(extra)
            .output()
            .expect("run dig");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `nsupdate` with the zone's key: another client changing the zone
    /// behind berth's back. `commands` are update lines (`update add ...`).
    pub fn nsupdate(&self, commands: &str) {
        let key_file = self.dir.path().join("nsupdate.key");
        std::fs::write(
            &key_file,
            format!("key \"{KEY_NAME}\" {{ algorithm hmac-sha256; secret \"{}\"; }};\n", self.key_secret),
        )
        .expect("write nsupdate key");
        let mut child = Command::new("nsupdate")
            .arg("-k")
            .arg(&key_file)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run nsupdate");
        let script = format!("server 127.0.0.1 {}\nzone {ZONE}\n{commands}\nsend\n", self.port);
        child.stdin.take().expect("stdin").write_all(script.as_bytes()).expect("write nsupdate script");
        let out = child.wait_with_output().expect("wait for nsupdate");
        assert!(
            out.status.success(),
            "nsupdate failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Bind {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
