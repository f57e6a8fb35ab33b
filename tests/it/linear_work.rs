//! The regression guard that keeps the engine linear, by counting work, not
//! seconds: the reference shapes real configurations use are applied,
//! re-planned and destroyed at two sizes, and the work (instance values
//! copied into expressions, elements copied out of memoized locals and
//! outputs, memoized values evaluated, step graph edges: `telemetry::work`)
//! must grow no faster than the size. A quadratic path (every record copying every
//! host, a local re-evaluated for each instance) multiplies the work by the
//! size ratio once more and fails here, whatever the machine's speed.
//! `bench/` measures the seconds.

use crate::support;

use std::collections::BTreeMap;
use support::cli::Work;

/// One shape: a configuration of `n` of something, and what an apply and a
/// no-op plan of it must leave.
struct Shape {
    name: &'static str,
    config: fn(usize) -> String,
}

/// `b[i]` reads `a[i]`: one record per host.
fn count_indexed(n: usize) -> String {
    format!(
        r#"
resource "berth_data" "host" {{
  count = {n}
  input = "10.0.${{floor(count.index / 250)}}.${{count.index % 250}}"
}}
resource "berth_data" "record" {{
  count = {n}
  input = berth_data.host[count.index].output
}}
"#
    )
}

/// Through a local over every host: `local.ips[count.index]`.
fn through_local(n: usize) -> String {
    format!(
        r#"
resource "berth_data" "host" {{
  count = {n}
  input = "host-${{count.index}}"
}}
locals {{
  ips = berth_data.host[*].output
}}
resource "berth_data" "record" {{
  count = {n}
  input = local.ips[count.index]
}}
output "first" {{
  value = local.ips[0]
}}
"#
    )
}

/// `for_each` chaining: a map of the same keys, `each.value`, and an
/// instance read by key.
fn for_each_chain(n: usize) -> String {
    format!(
        r#"
locals {{
  names = {{ for i in range({n}) : "svc-${{i}}" => i }}
}}
resource "berth_data" "host" {{
  for_each = local.names
  input    = "10.1.0.${{each.value % 250}}"
}}
resource "berth_data" "record" {{
  for_each = local.names
  input    = berth_data.host[each.key].output
}}
"#
    )
}

/// One module call with `for_each` over n keys, three resources each; an
/// output reads every instance, and a resource per key reads its own
/// instance's output (`module.svc[each.key].host`), which must cost one
/// output, not the map of all of them.
fn modules(n: usize) -> String {
    format!(
        r#"
locals {{
  keys = {{ for i in range({n}) : "svc-${{i}}" => i }}
}}
module "svc" {{
  source   = "./svc"
  for_each = local.keys
  index    = each.value
}}
resource "berth_data" "probe" {{
  for_each = local.keys
  input    = module.svc[each.key].host.private_ip
}}
output "hosts" {{
  value = [for k, m in module.svc : m.host]
}}
"#
    )
}

const SVC_MODULE: &str = r#"
variable "index" {}
resource "berth_data" "host" {
  input = "10.2.0.${var.index % 250}"
}
resource "berth_data" "record" {
  input = berth_data.host.output
}
resource "berth_data" "check" {
  input = "${berth_data.record.output}:${var.index}"
}
output "host" {
  value = { id = berth_data.host.id, private_ip = berth_data.host.output }
}
"#;

/// One inventory over n hosts.
fn inventory(n: usize) -> String {
    format!(
        r#"
resource "berth_data" "host" {{
  count = {n}
  input = "10.3.${{floor(count.index / 250)}}.${{count.index % 250}}"
}}
inventory "all" {{
  format = "ansible"
  path   = "inventory.yml"
  role "web" {{
    hosts = [for h in berth_data.host : {{ id = h.id, private_ip = h.output }}]
  }}
}}
"#
    )
}

const SHAPES: &[Shape] = &[
    Shape { name: "count-indexed", config: count_indexed },
    Shape { name: "through a local", config: through_local },
    Shape { name: "for_each chaining", config: for_each_chain },
    Shape { name: "modules", config: modules },
    Shape { name: "inventory", config: inventory },
];

/// Runs berth with the work counters written to a file; returns them.
fn counted(w: &Work, args: &[&str]) -> BTreeMap<String, u64> {
    let stats = w.path().join("work.json");
    let _ = std::fs::remove_file(&stats);
    let run: support::cli::Run = w.cmd(args).env("BERTH_WORK_STATS", &stats).output().expect("run berth").into();
    run.assert_ok();
    let text = std::fs::read_to_string(&stats).unwrap_or_default();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("berth wrote no work counts ({e}): {text}"))
}

/// The work of an apply, of the no-op plan after it and of a destroy, at
/// size `n`.
fn work(shape: &Shape, n: usize) -> [(String, u64); 8] {
    let w = Work::new();
    w.write("main.hcl", &(shape.config)(n));
    w.write("svc/main.hcl", SVC_MODULE);
    let apply = counted(&w, &["apply", "--auto-approve"]);
    let plan = counted(&w, &["plan", "--detailed-exitcode"]);
    let destroy = counted(&w, &["destroy", "--auto-approve"]);
    let get = |m: &BTreeMap<String, u64>, k: &str| m.get(k).copied().unwrap_or(0);
    [
        ("apply: instance values copied".into(), get(&apply, "engine:InstanceCopies")),
        ("apply: memoized evaluations".into(), get(&apply, "engine:Evaluations")),
        ("apply: values copied".into(), get(&apply, "engine:ValuesCopied")),
        ("no-op plan: values copied".into(), get(&plan, "engine:ValuesCopied")),
        ("no-op plan: instance values copied".into(), get(&plan, "engine:InstanceCopies")),
        ("no-op plan: memoized evaluations".into(), get(&plan, "engine:Evaluations")),
        ("apply: step graph edges".into(), get(&apply, "engine:StepEdges")),
        ("destroy: step graph edges".into(), get(&destroy, "engine:StepEdges")),
    ]
}

#[test]
fn evaluation_work_grows_linearly_with_the_configuration() {
    const SMALL: usize = 60;
    const LARGE: usize = 240; // 4×: linear work grows 4×, quadratic 16×.
    let mut report = Vec::new();
    for shape in SHAPES {
        let small = work(shape, SMALL);
        let large = work(shape, LARGE);
        for ((what, s), (_, l)) in small.iter().zip(&large) {
            // A constant part (a few outputs) is allowed on top of 5× the
            // small run's work, well under the 16× of a quadratic path.
            let ok = *l <= 5 * s + 50;
            report.push(format!("{:<18} {what:<36} n={SMALL}: {s:>7}  n={LARGE}: {l:>7}{}", shape.name, if ok { "" } else { "  ← super-linear" }));
        }
    }
    let report = report.join("\n");
    eprintln!("{report}");
    assert!(!report.contains("super-linear"), "evaluation work grows faster than the configuration:\n{report}");
    // The guard must see the work it guards: every shape copies instances.
    assert!(!report.lines().any(|l| l.contains("instance values copied") && l.contains("n=60:       0")), "{report}");
}
