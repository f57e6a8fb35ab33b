//! Starts a real moto server (`moto_server` from the `moto[server]` PyPI
//! package, installed into `.venv` by [`super::venv`]) on 127.0.0.1 on a free
//! port, for the AWS provider tests. The server is killed when the handle
//! is dropped. Each test gets its own server, so tests never see each
//! other's objects.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Moto {
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("find a free port")
}

impl Moto {
    /// Starts a server and waits until it answers. Panics with the
    /// server's log when it does not come up.
    pub fn start() -> Moto {
        let bin = super::venv::venv_bin().join("moto_server");
        let mut last_log = String::new();
        // Another process may take the free port between the probe and
        // moto's bind: try a few ports.
        for _ in 0..3 {
            let dir = tempfile::tempdir().expect("temp dir for the moto log");
            let log = dir.path().join("moto.log");
            let out = std::fs::File::create(&log).expect("create moto.log");
            let port = free_port();
            let mut child = Command::new(&bin)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(out.try_clone().expect("dup log"))
                .stderr(out)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    return Moto { endpoint: format!("http://127.0.0.1:{port}"), child, log, _dir: dir };
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            last_log = std::fs::read_to_string(&log).unwrap_or_default();
        }
        panic!("moto_server did not start; its log:\n{last_log}");
    }

    /// The server's output so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    /// An SDK configuration pointed at this moto, with test credentials.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        sdk_config_at(&self.endpoint).await
    }

    /// Runs `berth` in `w` (under `chdir` when given) against this moto:
    /// `--var aws_endpoint=...` and test credentials.
    pub fn berth(&self, w: &super::cli::Work, chdir: Option<&str>, args: &[&str]) -> super::cli::Run {
        berth_at(&self.endpoint, w, chdir, args)
    }

    /// Empties moto (`POST /moto-api/reset`), without the seconds a fresh
    /// server takes to start.
    pub fn reset(&self) {
        use std::io::{Read, Write};
        let addr = self.endpoint.trim_start_matches("http://");
        let mut s = std::net::TcpStream::connect(addr).expect("connect to moto");
        write!(s, "POST /moto-api/reset HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .expect("send the reset");
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1.1 200"), "moto did not reset: {answer}\n{}", self.log());
    }
}

/// Runs `berth` in `w` (under `chdir` when given) against `endpoint`:
/// `--var aws_endpoint=...` and test credentials.
pub fn berth_at(endpoint: &str, w: &super::cli::Work, chdir: Option<&str>, args: &[&str]) -> super::cli::Run {
    let var = format!("aws_endpoint={endpoint}");
    let mut all: Vec<&str> = Vec::new();
    if let Some(d) = chdir {
        all.extend(["-C", d]);
    }
    all.extend(args);
    all.extend(["--var", &var]);
    w.cmd(&all)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env_remove("AWS_PROFILE")
        .output()
        .expect("run berth")
        .into()
}

/// An SDK configuration pointed at `endpoint`, with test credentials.
pub async fn sdk_config_at(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_credential_types::Credentials::new("testing", "testing", None, None, "test"))
        .load()
        .await
}
