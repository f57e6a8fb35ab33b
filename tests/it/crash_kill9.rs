//! "Kill -9 anywhere" (issue #8): berth is SIGKILLed while it applies,
//! replaces or destroys a fleet of 30 hosts and their 30 private DNS records
//! on moto behind the strict AWS layer (`support::aws`: client tokens that
//! outlive their instances, caller references that are never reusable, new
//! objects not visible at once, instances that boot; `tests/fixtures/fleet`). After each kill the state must load; the
//! next `berth apply` must converge to the configuration with exactly one
//! instance per `berth:address` tag, no orphan record, the state and the
//! inventory naming the live hosts and no journal left; a plan must then
//! find nothing to do; and `berth destroy` must leave nothing of berth's.
//!
//! A kill point is a phase and a moment. The phase is the first apply
//! (`create`), an apply that changes the AMI and so replaces every host and
//! moves every record (`replace`), or `destroy`. The moment is one of:
//! - right after the N-th AWS API call has landed, before berth reads the
//!   answer (`BERTH_TEST_KILL_AFTER_CALLS`, see `src/crashpoint.rs`), or the
//!   N-th call of one operation;
//! - right after the N-th durable state write: a journal append, or the new
//!   state file before its journal is removed (`BERTH_TEST_KILL_AFTER_WRITES`);
//! - a plain `kill -9` from this test after a delay.
//!
//! Points are named ([`NAMED`]: moments that once broke recovery) or seeded:
//! drawn from a splitmix64 PRNG as fractions of what a clean run of the
//! phase costs, measured first on a calibration run (itself checked like a
//! point without a kill). Each point starts from an empty moto (reset, not
//! restarted), a strict layer that forgot everything, and a fresh working
//! directory.
//!
//! Two variants:
//! - `cargo test --test it crash_kill9::`: the quick one (under a minute): the
//!   named points and one seeded point, a fixed seed.
//! - `cargo test --test it crash_kill9::kill9_full -- --ignored --nocapture`: the full one:
//!   the named points and 24 seeded points (`BERTH_CRASH_POINTS`), a fresh
//!   seed each run (about four minutes).
//!
//! Both print the seed and every point. `BERTH_CRASH_SEED=S` replays a seed,
//! `BERTH_CRASH_ONLY=K` runs only its K-th point, and
//! `BERTH_CRASH_AT=replace:calls:ec2:RunInstances:1` runs one point given by
//! hand (`PHASE:calls:SPEC`, `PHASE:writes:SPEC`, `PHASE:delay:MS`). A replay
//! kills at the same fraction of the phase; calls run in parallel and
//! results are journaled in groups, so the operation behind "the N-th call"
//! and the count of writes can differ a little between runs: the killed run
//! names what it died after. A failed point keeps its directory, with every
//! run's output in `runs.log`.

use crate::support;

use aws_sdk_ec2::types::Filter;
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::aws::Aws;
use support::cli::{Run, Work};

const HOSTS: usize = 30;
/// The fixture's default `ami_name`.
const BASE_AMI: &str = "amzn2-ami-hvm-*-x86_64-gp2";
/// Another image moto has: switching to it replaces every host.
const OTHER_AMI: &str = "amzn-ami-hvm-2017.09.1.20171103-x86_64-gp2";
const QUICK_SEED: u64 = 0x6b69_6c6c_2d39;
const QUICK_POINTS: usize = 1;
const FULL_POINTS: usize = 24;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Create,
    Replace,
    Destroy,
}

impl Phase {
    const ALL: [Phase; 3] = [Phase::Create, Phase::Replace, Phase::Destroy];

    fn name(self) -> &'static str {
        match self {
            Phase::Create => "create",
            Phase::Replace => "replace",
            Phase::Destroy => "destroy",
        }
    }

    /// The command the point kills.
    fn args(self) -> Vec<String> {
        match self {
            Phase::Create => apply_args(BASE_AMI),
            Phase::Replace => apply_args(OTHER_AMI),
            Phase::Destroy => vec!["destroy".into(), "--auto-approve".into()],
        }
    }

    /// The configuration the apply after the kill converges to.
    fn target_ami(self) -> &'static str {
        match self {
            Phase::Replace => OTHER_AMI,
            Phase::Create | Phase::Destroy => BASE_AMI,
        }
    }
}

fn apply_args(ami: &str) -> Vec<String> {
    let mut a = vec!["apply".to_string(), "--auto-approve".to_string()];
    if ami != BASE_AMI {
        a.extend(["--var".to_string(), format!("ami_name={ami}")]);
    }
    a
}

#[derive(Clone, Debug)]
#[allow(clippy::enum_variant_names)] // each reads as "kill after ..."
enum Kill {
    /// Right after the N-th API call landed: `N`, or `ec2:RunInstances:N`
    /// for the N-th call of one operation (`BERTH_TEST_KILL_AFTER_CALLS`).
    AfterCall(String),
    /// Right after the N-th durable state write: `N`, `journal:N` or
    /// `state:N` (`BERTH_TEST_KILL_AFTER_WRITES`).
    AfterWrite(String),
    /// `kill -9` from outside after this long.
    AfterDelay(Duration),
}

#[derive(Clone, Debug)]
struct Point {
    phase: Phase,
    kill: Kill,
}

impl Point {
    /// `PHASE:calls:SPEC`, `PHASE:writes:SPEC` or `PHASE:delay:MS`, as
    /// `BERTH_CRASH_AT` takes it: `replace:calls:ec2:RunInstances:1`.
    fn parse(text: &str) -> Point {
        let bad = || panic!("BERTH_CRASH_AT={text}: expected PHASE:calls:SPEC, PHASE:writes:SPEC or PHASE:delay:MS");
        let mut parts = text.splitn(3, ':');
        let (Some(phase), Some(kind), Some(spec)) = (parts.next(), parts.next(), parts.next()) else { bad() };
        let phase = Phase::ALL.into_iter().find(|p| p.name() == phase).unwrap_or_else(|| bad());
        let kill = match kind {
            "calls" => Kill::AfterCall(spec.into()),
            "writes" => Kill::AfterWrite(spec.into()),
            "delay" => Kill::AfterDelay(Duration::from_millis(spec.parse().unwrap_or_else(|_| bad()))),
            _ => bad(),
        };
        Point { phase, kill }
    }
}

/// Moments picked by hand, run by both variants before the seeded points:
/// each once left a duplicate, an orphan or a failed recovery behind.
const NAMED: &[&str] = &[
    // The zone exists, berth never learned its id: adopted by caller reference.
    "create:calls:route 53:CreateHostedZone:1",
    // A create-before-destroy replacement launched the new host: both carry
    // the host's address; the generation tag tells them apart.
    "replace:calls:ec2:RunInstances:1",
    // Every host launched, none recorded: the records must see the adopted hosts.
    "create:calls:ec2:RunInstances:30",
    // The records moved to the new hosts unrecorded: the apply must start
    // from the refreshed records, or the inventory loses its DNS names.
    "replace:calls:route 53:ChangeResourceRecordSets:1",
    // Only the old hosts' termination was left: nothing to change, but the
    // journal must still be folded and the gone objects dropped.
    "replace:calls:ec2:TerminateInstances:1",
];

/// What a clean run of each phase costs: API calls, state writes, time.
#[derive(Clone, Copy, Debug, Default)]
struct Cost {
    calls: u64,
    writes: u64,
    time: Duration,
}

/// splitmix64: small, seedable, good enough to spread kill points.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A fraction in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The i-th seeded point: phases and kinds cycle so any 12 consecutive
/// points cover every combination; the moment within the phase is a
/// fraction of the clean run, drawn from the seed.
fn point(i: usize, rng: &mut Rng, costs: &BTreeMap<Phase, Cost>) -> Point {
    let phase = Phase::ALL[i % 3];
    let cost = costs[&phase];
    let u = rng.unit();
    let nth = |n: u64| (1 + (u * n as f64) as u64).to_string();
    let kill = match i % 4 {
        0 => Kill::AfterWrite(nth(cost.writes)),
        1 => Kill::AfterDelay(cost.time.mul_f64(0.9 * u)),
        _ => Kill::AfterCall(nth(cost.calls)),
    };
    Point { phase, kill }
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    let parsed = match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={v} is not a number")))
}

/// A fleet working directory against one moto behind the strict layer.
struct Fleet<'m> {
    moto: &'m Aws,
    work: Work,
}

impl<'m> Fleet<'m> {
    fn new(moto: &'m Aws) -> Fleet<'m> {
        let work = Work::new();
        let src = support::venv::repo_root().join("tests/fixtures/fleet/main.hcl");
        work.write("main.hcl", &std::fs::read_to_string(src).expect("read the fleet fixture"));
        Fleet { moto, work }
    }

    fn cmd<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Command {
        let mut c = Command::new(support::cli::bin());
        c.current_dir(self.work.path())
            .args(args)
            .env("NO_COLOR", "1")
            .env("AWS_ENDPOINT_URL", &self.moto.endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env_remove("AWS_PROFILE")
            .env_remove("BERTH_WORKSPACE")
            .env_remove("BERTH_API_STATS")
            .env_remove("BERTH_TEST_KILL_AFTER_CALLS")
            .env_remove("BERTH_TEST_KILL_AFTER_WRITES");
        c
    }

    fn run<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Run {
        let r: Run = self.cmd(args).output().expect("run berth").into();
        let shown: Vec<String> = args.iter().map(|a| a.as_ref().to_string_lossy().into_owned()).collect();
        self.log(&format!("{shown:?}"), &r.code.to_string(), &r.stdout, &r.stderr);
        r
    }

    /// Every run's output goes to `runs.log`, kept with the directory when
    /// a point fails.
    fn log(&self, what: &str, status: &str, stdout: &str, stderr: &str) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.work.path().join("runs.log"))
            .expect("open runs.log");
        let _ = writeln!(f, "=== berth {what}: {status}\n--- stdout\n{stdout}\n--- stderr\n{stderr}");
    }

    /// Runs a phase cleanly and measures it.
    fn measured(&self, phase: Phase) -> Cost {
        let stats = self.work.path().join("api-stats.json");
        let t = Instant::now();
        let r: Run = self.cmd(&phase.args()).env("BERTH_API_STATS", &stats).output().expect("run berth").into();
        let time = t.elapsed();
        r.assert_ok();
        let counts: BTreeMap<String, u64> =
            serde_json::from_str(&std::fs::read_to_string(&stats).expect("read api stats")).expect("api stats json");
        let calls = counts.iter().filter(|(k, _)| !k.starts_with("local:")).map(|(_, v)| v).sum();
        let writes = counts.iter().filter(|(k, _)| k.starts_with("local:")).map(|(_, v)| v).sum();
        Cost { calls, writes, time }
    }

    /// Runs a phase and kills it at `kill`. Returns whether it died, and how.
    fn killed(&self, phase: Phase, kill: &Kill) -> (bool, String) {
        let out = self.work.path().join("killed.stdout");
        let err = self.work.path().join("killed.stderr");
        let mut cmd = self.cmd(&phase.args());
        cmd.stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).expect("create killed.stdout"))
            .stderr(std::fs::File::create(&err).expect("create killed.stderr"));
        match kill {
            Kill::AfterCall(spec) => {
                cmd.env("BERTH_TEST_KILL_AFTER_CALLS", spec);
            }
            Kill::AfterWrite(spec) => {
                cmd.env("BERTH_TEST_KILL_AFTER_WRITES", spec);
            }
            Kill::AfterDelay(_) => {}
        }
        let mut child = cmd.spawn().expect("start berth");
        if let Kill::AfterDelay(d) = kill {
            std::thread::sleep(*d);
            // Child::kill sends SIGKILL; a child that already exited is reaped below.
            let _ = child.kill();
        }
        let status = child.wait().expect("wait for berth");
        let stderr = std::fs::read_to_string(&err).unwrap_or_default();
        self.log(&format!("{:?} (killed at {kill:?})", phase.args()), &status.to_string(), &std::fs::read_to_string(&out).unwrap_or_default(), &stderr);
        let hook = stderr.lines().find_map(|l| l.strip_prefix("berth: test hook: SIGKILL after ")).map(str::to_string);
        match (status.signal(), kill) {
            (Some(9), Kill::AfterDelay(_)) => {
                let last = stderr.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("(no output)");
                (true, format!("killed; its last line: {last}"))
            }
            (Some(9), _) => (true, format!("killed after {}", hook.unwrap_or_else(|| "(the hook said nothing)".into()))),
            (None, _) if status.success() => {
                // Results are journaled in groups, and polls repeat, so a
                // run can make fewer writes or calls than the calibration.
                (false, "not killed: the run finished before the kill point".into())
            }
            _ => panic!(
                "the killed run failed on its own ({status})\nstdout:\n{}\nstderr:\n{stderr}",
                std::fs::read_to_string(&out).unwrap_or_default()
            ),
        }
    }

    fn state(&self) -> serde_json::Value {
        self.work.state()
    }
}

impl Drop for Fleet<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.work.dir.disable_cleanup(true);
            println!("  kept {} (runs.log holds every run's output)", self.work.path().display());
        }
    }
}

fn tag<'a>(tags: &'a [aws_sdk_ec2::types::Tag], key: &str) -> Option<&'a str> {
    tags.iter().find(|t| t.key() == Some(key)).and_then(|t| t.value())
}

fn host(i: usize) -> String {
    format!("aws_instance.host[{i}]")
}

struct Live {
    id: String,
    address: Option<String>,
    lineage: Option<String>,
    image: String,
    private_ip: String,
}

/// Every instance moto has that is not terminated (or terminating).
async fn live_instances(ec2: &aws_sdk_ec2::Client) -> Vec<Live> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = ec2.describe_instances().set_next_token(token).send().await.expect("DescribeInstances");
        for i in page.reservations().iter().flat_map(|r| r.instances()) {
            let state = i.state().and_then(|s| s.name()).map(|n| n.as_str().to_string()).unwrap_or_default();
            if state == "terminated" || state == "shutting-down" {
                continue;
            }
            out.push(Live {
                id: i.instance_id().unwrap_or_default().to_string(),
                address: tag(i.tags(), "berth:address").map(str::to_string),
                lineage: tag(i.tags(), "berth:lineage").map(str::to_string),
                image: i.image_id().unwrap_or_default().to_string(),
                private_ip: i.private_ip_address().unwrap_or_default().to_string(),
            });
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            return out;
        }
    }
}

/// The berth-tagged VPCs, subnets and security groups, as `(kind, address)`.
async fn tagged_network(ec2: &aws_sdk_ec2::Client) -> Vec<(&'static str, String)> {
    let mine = || Filter::builder().name("tag-key").values("berth:address").build();
    let mut out = Vec::new();
    for v in ec2.describe_vpcs().filters(mine()).send().await.expect("DescribeVpcs").vpcs() {
        out.push(("vpc", tag(v.tags(), "berth:address").unwrap_or_default().to_string()));
    }
    for s in ec2.describe_subnets().filters(mine()).send().await.expect("DescribeSubnets").subnets() {
        out.push(("subnet", tag(s.tags(), "berth:address").unwrap_or_default().to_string()));
    }
    let groups = ec2.describe_security_groups().send().await.expect("DescribeSecurityGroups");
    for g in groups.security_groups() {
        // By name as well: a group created without its tags would still be berth's.
        if tag(g.tags(), "berth:address").is_some() || g.group_name() == Some("fleet-hosts") {
            out.push(("security group", tag(g.tags(), "berth:address").unwrap_or("(untagged)").to_string()));
        }
    }
    out.sort();
    out
}

async fn image_id(ec2: &aws_sdk_ec2::Client, name: &str) -> String {
    let out = ec2
        .describe_images()
        .owners("amazon")
        .filters(Filter::builder().name("name").values(name).build())
        .send()
        .await
        .expect("DescribeImages");
    let mut images: Vec<_> = out.images().iter().collect();
    images.sort_by_key(|i| i.creation_date().unwrap_or_default().to_string());
    images.last().and_then(|i| i.image_id()).unwrap_or_else(|| panic!("moto has no image named `{name}`")).to_string()
}

/// Every hosted zone: `(id, name)`.
async fn zones(r53: &aws_sdk_route53::Client) -> Vec<(String, String)> {
    let out = r53.list_hosted_zones().send().await.expect("ListHostedZones");
    assert!(!out.is_truncated(), "more hosted zones than one page");
    out.hosted_zones().iter().map(|z| (z.id().to_string(), z.name().to_string())).collect()
}

/// Every record set of a zone but the apex SOA and NS: `(name, type, values)`.
async fn records(r53: &aws_sdk_route53::Client, zone: &str) -> BTreeSet<(String, String, Vec<String>)> {
    let mut out = BTreeSet::new();
    let mut start: Option<(String, aws_sdk_route53::types::RrType)> = None;
    loop {
        let mut call = r53.list_resource_record_sets().hosted_zone_id(zone);
        if let Some((name, t)) = start.take() {
            call = call.start_record_name(name).start_record_type(t);
        }
        let page = call.send().await.expect("ListResourceRecordSets");
        for r in page.resource_record_sets() {
            let t = r.r#type().as_str().to_string();
            if r.name() == "fleet.internal." && (t == "SOA" || t == "NS") {
                continue;
            }
            let mut values: Vec<String> = r.resource_records().iter().map(|v| v.value().to_string()).collect();
            values.sort();
            assert!(
                out.insert((r.name().to_string(), t.clone(), values)),
                "record set `{} {t}` listed twice",
                r.name()
            );
        }
        if !page.is_truncated() {
            return out;
        }
        start = Some((
            page.next_record_name().expect("next record name").to_string(),
            page.next_record_type().expect("next record type").clone(),
        ));
    }
}

/// The fleet on moto is exactly the configuration with hosts on `ami`, and
/// the state and the inventory say so.
async fn assert_converged(f: &Fleet<'_>, ami: &str) {
    let conf = f.moto.moto_sdk_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&conf);
    let r53 = aws_sdk_route53::Client::new(&conf);
    let state = f.state();
    let lineage = state["lineage"].as_str().expect("state lineage").to_string();
    let resources = state["resources"].as_array().expect("state resources");
    let in_state = |addr: &str| -> Vec<&serde_json::Value> {
        resources.iter().filter(|r| r["addr"] == addr).collect()
    };
    assert!(state["pending"].as_array().is_none_or(|p| p.is_empty()), "creates still pending: {}", state["pending"]);
    let deposed: Vec<_> = resources.iter().filter(|r| !r["deposed"].is_null()).map(|r| r["addr"].clone()).collect();
    assert!(deposed.is_empty(), "deposed objects left in the state: {deposed:?}");

    // Instances: one per address, on the right image, the ones the state knows.
    let want_image = image_id(&ec2, ami).await;
    let live = live_instances(&ec2).await;
    let mut by_addr: BTreeMap<String, Vec<&Live>> = BTreeMap::new();
    for i in &live {
        let addr = i.address.clone().unwrap_or_else(|| panic!("instance `{}` has no `berth:address` tag", i.id));
        assert_eq!(i.lineage.as_deref(), Some(lineage.as_str()), "instance `{}` ({addr}) of another lineage", i.id);
        by_addr.entry(addr).or_default().push(i);
    }
    let dups: Vec<String> = by_addr
        .iter()
        .filter(|(_, v)| v.len() > 1)
        .map(|(a, v)| format!("{a}: {}", v.iter().map(|i| i.id.as_str()).collect::<Vec<_>>().join(", ")))
        .collect();
    assert!(dups.is_empty(), "duplicate instances:\n  {}", dups.join("\n  "));
    let want: BTreeSet<String> = (0..HOSTS).map(host).collect();
    let have: BTreeSet<String> = by_addr.keys().cloned().collect();
    assert_eq!(have, want, "live instances by `berth:address`");
    let mut ip_of = BTreeMap::new();
    for (i, addr) in (0..HOSTS).map(|i| (i, host(i))) {
        let inst = by_addr[&addr][0];
        assert_eq!(inst.image, want_image, "`{addr}` runs `{}`, not `{ami}`", inst.image);
        let rs = in_state(&addr);
        assert_eq!(rs.len(), 1, "`{addr}` in the state: {rs:?}");
        assert_eq!(rs[0]["attributes"]["id"], inst.id.as_str(), "the state's `{addr}` is not the live instance");
        ip_of.insert(i, inst.private_ip.clone());
    }

    // The network: one of each.
    let net = tagged_network(&ec2).await;
    let want_net = vec![
        ("security group", "aws_security_group.hosts".to_string()),
        ("subnet", "aws_subnet.hosts".to_string()),
        ("vpc", "aws_vpc.main".to_string()),
    ];
    assert_eq!(net, want_net, "berth's network objects on moto");

    // DNS: one zone; exactly the 30 A records on the current addresses and
    // their owners.
    let zs = zones(&r53).await;
    assert_eq!(zs.len(), 1, "hosted zones: {zs:?}");
    assert_eq!(zs[0].1, "fleet.internal.");
    let short = &lineage[..8];
    let mut want_records = BTreeSet::new();
    for i in 0..HOSTS {
        let name = format!("host-{i}.fleet.internal.");
        want_records.insert((name.clone(), "A".to_string(), vec![ip_of[&i].clone()]));
        want_records.insert((
            format!("_berth-owner-a.{name}"),
            "TXT".to_string(),
            vec![format!("\"berth:{short}:aws_route53_record.host[{i}]\"")],
        ));
    }
    let have_records = records(&r53, &zs[0].0).await;
    let orphans: Vec<_> = have_records.difference(&want_records).collect();
    let missing: Vec<_> = want_records.difference(&have_records).collect();
    assert!(orphans.is_empty() && missing.is_empty(), "records in the zone:\n  orphan: {orphans:?}\n  missing: {missing:?}");

    // The inventory lists the live hosts.
    let inv: serde_json::Value =
        serde_json::from_str(&f.work.read("inventory/hosts.json")).expect("inventory/hosts.json is JSON");
    let mut listed: Vec<(String, String)> = inv["hosts"]
        .as_array()
        .expect("inventory hosts")
        .iter()
        .map(|h| (h["resource"].as_str().unwrap_or_default().to_string(), h["instance_id"].as_str().unwrap_or_default().to_string()))
        .collect();
    listed.sort();
    let mut want_listed: Vec<(String, String)> = (0..HOSTS).map(|i| (host(i), by_addr[&host(i)][0].id.clone())).collect();
    want_listed.sort();
    assert_eq!(listed, want_listed, "inventory/hosts.json");
}

/// Nothing of berth's is left on moto.
async fn assert_gone(f: &Fleet<'_>) {
    let conf = f.moto.moto_sdk_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&conf);
    let r53 = aws_sdk_route53::Client::new(&conf);
    let live: Vec<String> = live_instances(&ec2).await.into_iter().map(|i| format!("{} {:?}", i.id, i.address)).collect();
    assert!(live.is_empty(), "instances left after destroy: {live:?}");
    let net = tagged_network(&ec2).await;
    assert!(net.is_empty(), "network objects left after destroy: {net:?}");
    let zs = zones(&r53).await;
    assert!(zs.is_empty(), "hosted zones left after destroy: {zs:?}");
    let addrs = f.work.state_addresses();
    assert!(addrs.is_empty(), "the state still lists {addrs:?}");
}

/// The state (with whatever journal the kill left) loads.
fn assert_state_loads(f: &Fleet<'_>) {
    f.run(&["state", "list"]).assert_ok();
    f.run(&["show"]).assert_ok();
}

/// After whatever happened: apply converges, a plan finds nothing to do,
/// destroy leaves nothing.
async fn recover_and_check(f: &Fleet<'_>, ami: &str) {
    f.run(&apply_args(ami)).assert_ok();
    assert!(!f.work.path().join("state/default.journal").exists(), "the apply left the journal unfolded");
    let mut plan = apply_args(ami);
    plan[0] = "plan".into();
    plan[1] = "--detailed-exitcode".into();
    f.run(&plan).assert_code(0);
    assert_converged(f, ami).await;
    f.run(&["destroy", "--auto-approve"]).assert_ok();
    assert_gone(f).await;
}

/// Empties moto (`POST /moto-api/reset`) and the strict layer's memory:
/// every point starts from nothing, without the seconds a fresh server takes
/// to start.
fn reset(moto: &Aws) {
    moto.reset();
}

/// Runs one point on an empty moto: set-up, the killed run, the checks.
async fn run_point(moto: &Aws, p: Point) -> (bool, String) {
    reset(moto);
    let f = Fleet::new(moto);
    if p.phase != Phase::Create {
        f.run(&apply_args(BASE_AMI)).assert_ok();
    }
    let how = f.killed(p.phase, &p.kill);
    assert_state_loads(&f);
    recover_and_check(&f, p.phase.target_ami()).await;
    how
}

/// Clean runs of every phase on one moto: their costs, and the checks of a
/// point without a kill.
async fn calibrate(moto: &Aws) -> BTreeMap<Phase, Cost> {
    reset(moto);
    let f = Fleet::new(moto);
    let mut costs = BTreeMap::new();
    costs.insert(Phase::Create, f.measured(Phase::Create));
    assert_converged(&f, BASE_AMI).await;
    costs.insert(Phase::Replace, f.measured(Phase::Replace));
    assert_converged(&f, OTHER_AMI).await;
    costs.insert(Phase::Destroy, f.measured(Phase::Destroy));
    assert_gone(&f).await;
    costs
}

fn describe(p: &Point, costs: &BTreeMap<Phase, Cost>) -> String {
    let c = costs.get(&p.phase).copied().unwrap_or_default();
    let of = |n: u64| if n > 0 { format!(" of {n}") } else { String::new() };
    let kill = match &p.kill {
        Kill::AfterCall(spec) => match spec.rsplit_once(':') {
            Some((op, n)) => format!("SIGKILL after {op} call {n}"),
            None => format!("SIGKILL after API call {spec}{}", of(c.calls)),
        },
        Kill::AfterWrite(spec) => match spec.rsplit_once(':') {
            Some((kind, n)) => format!("SIGKILL after {kind} write {n}"),
            None => format!("SIGKILL after state write {spec}{}", of(c.writes)),
        },
        Kill::AfterDelay(d) => format!("kill -9 after {} ms{}", d.as_millis(), of(c.time.as_millis() as u64)),
    };
    format!("{} phase, {kill}", p.phase.name())
}

fn panic_text(e: &(dyn std::any::Any + Send)) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(no message)".into())
}

/// Runs one point, catching its failure. Returns whether it was killed.
fn run_caught(moto: &Aws, label: &str, p: &Point, costs: &BTreeMap<Phase, Cost>, failures: &mut Vec<String>) -> bool {
    let what = describe(p, costs);
    println!("{label}: {what}");
    let started = Instant::now();
    let p = p.clone();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || rt.block_on(run_point(moto, p)))) {
        Ok((died, how)) => {
            println!("  {how}; recovered, converged, destroyed ({} ms)", started.elapsed().as_millis());
            died
        }
        Err(e) => {
            let msg = panic_text(e.as_ref());
            println!("  FAILED: {msg}");
            failures.push(format!("{label} ({what}): {msg}"));
            false
        }
    }
}

fn suite(default_seed: u64, default_points: usize) {
    let seed = env_u64("BERTH_CRASH_SEED").unwrap_or(default_seed);
    let points = env_u64("BERTH_CRASH_POINTS").map(|n| n as usize).unwrap_or(default_points);
    let only = env_u64("BERTH_CRASH_ONLY").map(|k| k as usize);
    let at = std::env::var("BERTH_CRASH_AT").ok().filter(|a| !a.is_empty());
    let t = Instant::now();
    let moto = Aws::start();
    let mut failures = Vec::new();
    let (mut run, mut killed) = (0, 0);
    let mut one = |label: &str, p: &Point, costs: &BTreeMap<Phase, Cost>, failures: &mut Vec<String>| {
        run += 1;
        killed += usize::from(run_caught(&moto, label, p, costs, failures));
    };
    if let Some(at) = &at {
        one(&format!("BERTH_CRASH_AT={at}"), &Point::parse(at), &BTreeMap::new(), &mut failures);
    } else {
        if only.is_none() {
            for (i, at) in NAMED.iter().enumerate() {
                one(&format!("named {}/{} (BERTH_CRASH_AT='{at}')", i + 1, NAMED.len()), &Point::parse(at), &BTreeMap::new(), &mut failures);
            }
        }
        println!("seeded points: BERTH_CRASH_SEED={seed:#x} BERTH_CRASH_POINTS={points}");
        let costs = tokio::runtime::Runtime::new().expect("tokio runtime").block_on(calibrate(&moto));
        for (phase, c) in &costs {
            println!("  clean {}: {} API calls, {} state writes, {} ms", phase.name(), c.calls, c.writes, c.time.as_millis());
        }
        let mut rng = Rng(seed);
        let all: Vec<Point> = (0..points).map(|i| point(i, &mut rng, &costs)).collect();
        for (i, p) in all.iter().enumerate() {
            if only.is_none_or(|k| k == i + 1) {
                one(&format!("point {}/{points} (BERTH_CRASH_ONLY={})", i + 1, i + 1), p, &costs, &mut failures);
            }
        }
    }
    println!("crash suite: {run} point(s) run, {killed} killed, {} failed, {} s", failures.len(), t.elapsed().as_secs());
    assert!(
        failures.is_empty(),
        "{} of {run} kill points failed (BERTH_CRASH_SEED={seed:#x}):\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    // A hook that stopped firing would turn the suite into clean runs.
    assert!(killed * 2 >= run, "only {killed} of {run} runs were actually killed");
}

#[test]
fn kill9_quick() {
    suite(QUICK_SEED, QUICK_POINTS);
}

#[test]
#[ignore = "the full run: 24 kill points, a few minutes; cargo test --test it crash_kill9::kill9_full -- --ignored"]
fn kill9_full() {
    let fresh = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1);
    suite(fresh, FULL_POINTS);
}
