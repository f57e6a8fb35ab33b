//! The AWS every AWS suite talks to: a real moto, and in front of it the
//! loopback proxy that injects faults ([`super::faultproxy`]) and enforces
//! AWS's documented behaviour where moto is lenient ([`super::strict`]).
//!
//! ```ignore
//! let aws = Aws::start();                      // every strict rule, test speed
//! let aws = Aws::builder()
//!     .rules(|r| r.without(Rule::PendingChanges))
//!     .faults(Faults::flaky(0.25))
//!     .start();
//! ```
//!
//! Give berth and the SDK clients under test [`Aws::endpoint`] (the layer).
//! Read what really exists from [`Aws::moto_endpoint`]: moto's own answers,
//! without the layer's rewriting, throttling or delays.

use super::cli::{Run, Work};
use super::faultproxy::{FaultProxy, Faults, Stats};
use super::moto::Moto;
use super::strict::Rules;

pub struct Aws {
    /// `http://127.0.0.1:PORT` of the layer: what berth talks to.
    pub endpoint: String,
    /// moto itself, for reading what exists.
    pub moto_endpoint: String,
    pub proxy: FaultProxy,
    pub moto: Moto,
}

pub struct AwsBuilder {
    rules: Rules,
    faults: Faults,
}

impl AwsBuilder {
    /// Changes the rules, starting from [`Rules::test`].
    pub fn rules(mut self, f: impl FnOnce(Rules) -> Rules) -> AwsBuilder {
        self.rules = f(self.rules);
        self
    }

    /// Injects these faults before the rules.
    pub fn faults(mut self, faults: Faults) -> AwsBuilder {
        self.faults = faults;
        self
    }

    pub fn start(self) -> Aws {
        let moto = Moto::start();
        let proxy = FaultProxy::start_layered(&moto.endpoint, self.faults, self.rules);
        Aws { endpoint: proxy.endpoint.clone(), moto_endpoint: moto.endpoint.clone(), proxy, moto }
    }
}

impl Aws {
    /// moto behind every strict rule at test speed, no faults.
    pub fn start() -> Aws {
        Aws::builder().start()
    }

    pub fn builder() -> AwsBuilder {
        AwsBuilder { rules: Rules::test(), faults: Faults::none() }
    }

    /// Every fault and every decision of the layer so far.
    pub fn stats(&self) -> Stats {
        self.proxy.stats()
    }

    /// The stats, one line, for failure messages.
    pub fn report(&self) -> String {
        let s = self.stats();
        format!("forwarded {}, faults {:?}, strict {:?}", s.forwarded, s.faults, s.strict_by_action)
    }

    /// An SDK configuration pointed at the layer.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        super::moto::sdk_config_at(&self.endpoint).await
    }

    /// An SDK configuration pointed at moto itself.
    pub async fn moto_sdk_config(&self) -> aws_config::SdkConfig {
        super::moto::sdk_config_at(&self.moto_endpoint).await
    }

    /// Runs `berth` in `w` (under `chdir` when given) against the layer.
    pub fn berth(&self, w: &Work, chdir: Option<&str>, args: &[&str]) -> Run {
        super::moto::berth_at(&self.endpoint, w, chdir, args)
    }

    /// Stops or resumes the faults; the strict rules stay.
    pub fn pause_faults(&self, paused: bool) {
        self.proxy.pause_faults(paused);
    }

    /// Empties moto and makes the layer forget everything it knew.
    pub fn reset(&self) {
        self.moto.reset();
        self.proxy.reset();
    }

    pub fn log(&self) -> String {
        self.moto.log()
    }

    /// Creates an IAM instance profile in moto, which checks that the
    /// profile a launch names exists. berth has no IAM types, so tests make
    /// what a configuration names by hand. One Query API request, without
    /// the SDK (moto routes by the credential scope and checks no
    /// signature).
    pub fn create_instance_profile(&self, name: &str) {
        moto_query(
            &self.moto_endpoint,
            "iam",
            &format!("Action=CreateInstanceProfile&InstanceProfileName={name}&Version=2010-05-08"),
        );
    }
}

impl Drop for Aws {
    fn drop(&mut self) {
        // Shown with the output of a failed test.
        eprintln!("strict AWS layer at the end: {}", self.report());
    }
}

/// Sends one AWS Query API request to moto and panics unless it answers 200.
fn moto_query(endpoint: &str, service: &str, body: &str) -> String {
    use std::io::{Read, Write};
    let addr = endpoint.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).expect("connect to moto");
    let req = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/{service}/aws4_request, \
         SignedHeaders=host, Signature=0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).expect("send to moto");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read moto's answer");
    assert!(out.starts_with("HTTP/1.1 200"), "moto refused {body}: {out}");
    out
}
