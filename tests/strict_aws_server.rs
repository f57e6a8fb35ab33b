//! The strict AWS layer as a server of its own, for `bench/bench.py`: a
//! fresh moto with the layer (`support::strict`) in front, on loopback. It is
//! a test target (`harness = false`) so it never ships in the `berth` binary.
//!
//! ```text
//! strict_aws_server --serve [--latency-scale F] [--without RULE]... [--ec2-rates aws] [--seed N]
//! ```
//!
//! It prints `endpoint URL moto URL` on one line once it serves, then reads
//! commands from stdin: `stats` prints the layer's decisions as one JSON
//! line, `reset` empties moto and the layer; at the end of stdin it stops
//! (moto with it). Without `--serve` (as `cargo test` runs it) it says what
//! it is and exits.

mod support;

use std::io::{BufRead, Write};
use support::faultproxy::{FaultProxy, Faults};
use support::moto::Moto;
use support::strict::{Ec2Rates, Rule, Rules};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--serve") {
        println!("strict_aws_server: serves moto behind the strict AWS layer for bench/bench.py; run with --serve");
        return;
    }
    let mut rules = Rules::test();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{a} needs a value")).clone();
        match a.as_str() {
            "--serve" => {}
            "--latency-scale" => rules = rules.latency(value().parse().expect("--latency-scale takes a number")),
            "--seed" => rules = rules.with_seed(value().parse().expect("--seed takes a number")),
            "--ec2-rates" => {
                let v = value();
                assert_eq!(v, "aws", "--ec2-rates takes `aws`");
                rules = rules.ec2_rates(Ec2Rates::aws());
            }
            "--without" => {
                let name = value();
                let rule = Rule::ALL.iter().find(|r| r.name() == name).unwrap_or_else(|| panic!("no rule `{name}`"));
                rules = rules.without(*rule);
            }
            other => panic!("unknown argument `{other}`"),
        }
    }
    let moto = Moto::start();
    let proxy = FaultProxy::start_layered(&moto.endpoint, Faults::none(), rules);
    let mut out = std::io::stdout();
    writeln!(out, "endpoint {} moto {}", proxy.endpoint, moto.endpoint).expect("write to stdout");
    out.flush().expect("flush stdout");
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        match line.trim() {
            "stats" => {
                let s = proxy.stats();
                let decisions: serde_json::Map<String, serde_json::Value> =
                    s.strict.iter().map(|(k, v)| (format!("{k:?}"), (*v).into())).collect();
                let by_action: serde_json::Map<String, serde_json::Value> =
                    s.strict_by_action.iter().map(|(k, v)| (k.clone(), (*v).into())).collect();
                let doc =
                    serde_json::json!({ "forwarded": s.forwarded, "decisions": decisions, "by_action": by_action });
                writeln!(out, "{doc}").expect("write to stdout");
            }
            "reset" => {
                moto.reset();
                proxy.reset();
                writeln!(out, "ok").expect("write to stdout");
            }
            _ => writeln!(out, "unknown command").expect("write to stdout"),
        }
        out.flush().expect("flush stdout");
    }
}
