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
}

impl Drop for Aws {
    fn drop(&mut self) {
        // Shown with the output of a failed test.
        eprintln!("strict AWS layer at the end: {}", self.report());
    }
}
