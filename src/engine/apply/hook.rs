//! `hook "on_replace"`: after an apply replaced a host (a manual `berth
//! apply --replace`, or a heal of `berth watch`, which applies the same
//! way), bring the application back on it.
//!
//! ```hcl
//! hook "on_replace" {
//!   command     = "kamal setup -d $BERTH_KAMAL_DESTINATION -h $BERTH_NEW_HOST"  # or ["argv", "form"]
//!   timeout     = "10m"
//!   known_hosts = "~/.ssh/known_hosts"   # optional
//! }
//! ```
//!
//! It runs once per replaced host, last: after the new host passed its
//! health check, the DNS record moved to it, the inventories were
//! rewritten and the state was written, so a failing hook never loses what
//! was built — it only makes the apply report a failure. Before the
//! command, the `known_hosts` file loses its lines for the host's old and
//! new addresses and DNS names (hashed `|1|` lines too), so SSH does not
//! stop at "REMOTE HOST IDENTIFICATION HAS CHANGED". The command sees the
//! host through `BERTH_*` environment variables ([`HookEnv`]); its output
//! goes to berth's standard error.

use crate::addr::InstanceAddr;
use crate::config::{Config, HookCommand, HookDecl};
use crate::engine::inventory::{Built, build_all};
use crate::engine::progress::{Event, Progress, Subject};
use crate::engine::scope::World;
use crate::inventory::{Format, Inventory};
use crate::plan::{Action, Plan};
use crate::state::State;
use crate::value::Value;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tokio_util::sync::CancellationToken;

use super::ApplyReport;

/// What a hook is told about one replaced host, as `BERTH_*` variables.
/// Unknown values are set to the empty string, so a `set -u` script still
/// runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HookEnv {
    /// `module.search.aws_instance.this`.
    pub address: String,
    pub old_id: String,
    pub new_id: String,
    /// What the deploy tool connects to: the address the Kamal inventory
    /// uses for the host (its private IP unless `address` says otherwise).
    pub old_host: String,
    pub new_host: String,
    pub old_private_ip: String,
    pub new_private_ip: String,
    pub old_public_ip: String,
    pub new_public_ip: String,
    /// The first DNS name berth manages that points at the new host.
    pub dns_name: String,
    pub kamal_role: String,
    /// `production` for an inventory written to `config/deploy.production.yml`.
    pub kamal_destination: String,
    /// That inventory's path.
    pub kamal_config: String,
}

impl HookEnv {
    pub fn vars(&self, hook: &str) -> Vec<(&'static str, String)> {
        vec![
            ("BERTH_HOOK", hook.to_string()),
            ("BERTH_ADDRESS", self.address.clone()),
            ("BERTH_OLD_ID", self.old_id.clone()),
            ("BERTH_NEW_ID", self.new_id.clone()),
            ("BERTH_OLD_HOST", self.old_host.clone()),
            ("BERTH_NEW_HOST", self.new_host.clone()),
            ("BERTH_OLD_PRIVATE_IP", self.old_private_ip.clone()),
            ("BERTH_NEW_PRIVATE_IP", self.new_private_ip.clone()),
            ("BERTH_OLD_PUBLIC_IP", self.old_public_ip.clone()),
            ("BERTH_NEW_PUBLIC_IP", self.new_public_ip.clone()),
            ("BERTH_DNS_NAME", self.dns_name.clone()),
            ("BERTH_KAMAL_ROLE", self.kamal_role.clone()),
            ("BERTH_KAMAL_DESTINATION", self.kamal_destination.clone()),
            ("BERTH_KAMAL_CONFIG", self.kamal_config.clone()),
        ]
    }

    /// Every name SSH may know the old or the new machine by: both are
    /// strangers now (a new host may even have an address a retired one
    /// had).
    fn ssh_names(&self) -> Vec<String> {
        let mut names: Vec<String> = [&self.old_private_ip, &self.new_private_ip, &self.old_public_ip, &self.new_public_ip, &self.dns_name]
            .into_iter()
            .filter(|s| !s.is_empty())
            .map(|s| s.trim_end_matches('.').to_string())
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

fn attr(v: &Value, name: &str) -> String {
    v.get_str(name).unwrap_or_default().to_string()
}

/// A host: an object with an address to connect to.
fn is_host(v: &Value) -> bool {
    ["private_ip", "public_ip"].iter().any(|a| v.get_str(a).is_some_and(|s| !s.is_empty()))
}

/// `production` from `config/deploy.production.yml`.
pub fn kamal_destination(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let stem = name.strip_suffix(".yml").or_else(|| name.strip_suffix(".yaml"))?;
    stem.strip_prefix("deploy.").filter(|d| !d.is_empty() && !d.contains('.')).map(str::to_string)
}

/// The hosts this apply replaced, with what hooks are told about them:
/// replacements whose new object exists, is not tainted, and whose create
/// neither failed nor was skipped.
pub fn replaced_hosts(plan: &Plan, state: &State, report: &ApplyReport, inventories: &[Inventory]) -> Vec<HookEnv> {
    let mut out = Vec::new();
    for c in &plan.changes {
        // A replacement, or the create of a host found deleted outside
        // berth (a watcher's heal of a terminated host): both leave a new
        // host where an old one was.
        let old = match c.action {
            Action::CreateThenDelete | Action::DeleteThenCreate => c.before.as_ref(),
            Action::Create => c.gone.as_ref(),
            _ => None,
        };
        if old.is_none() || c.deposed.is_some() {
            continue;
        }
        let broke = |s: &crate::engine::progress::StepRef| s.addr == c.addr && !s.destroy;
        if report.failures.iter().any(|f| matches!(&f.subject, Subject::Step(s) if broke(s))) || report.skipped.iter().any(broke) {
            continue;
        }
        let (Some(old), Some(new)) = (old, state.get(&c.addr).filter(|r| !r.tainted)) else { continue };
        let new = &new.attributes;
        if !is_host(new) {
            continue;
        }
        out.push(host_env(&c.addr, old, new, inventories));
    }
    out
}

fn host_env(addr: &InstanceAddr, old: &Value, new: &Value, inventories: &[Inventory]) -> HookEnv {
    let mut env = HookEnv {
        address: addr.to_string(),
        old_id: attr(old, "id"),
        new_id: attr(new, "id"),
        old_private_ip: attr(old, "private_ip"),
        new_private_ip: attr(new, "private_ip"),
        old_public_ip: attr(old, "public_ip"),
        new_public_ip: attr(new, "public_ip"),
        ..HookEnv::default()
    };
    let address = addr.to_string();
    // The Kamal inventories first: they name the role and the destination.
    let mut invs: Vec<&Inventory> = inventories.iter().collect();
    invs.sort_by_key(|i| i.format != Format::Kamal);
    let mut kamal_address = None;
    for inv in invs {
        let hosts = inv.roles.iter().flat_map(|r| r.hosts.iter().map(move |h| (Some(r.name.as_str()), h)));
        let accessories = inv.accessories.iter().map(|a| (None, &a.host));
        for (role, h) in hosts.chain(accessories) {
            let same = h.resource == address || (!env.new_id.is_empty() && h.instance_id.as_deref() == Some(env.new_id.as_str()));
            if !same {
                continue;
            }
            if env.dns_name.is_empty()
                && let Some(n) = h.dns_names.first()
            {
                env.dns_name = n.clone();
            }
            if inv.format == Format::Kamal && env.kamal_config.is_empty() {
                env.kamal_role = role.unwrap_or_default().to_string();
                env.kamal_destination = kamal_destination(&inv.path).unwrap_or_default();
                env.kamal_config = crate::inventory::display_path(&inv.path);
                kamal_address = Some(h.address.clone());
            }
        }
    }
    // The old host by the same kind of address the inventory gives the new one.
    (env.old_host, env.new_host) = match kamal_address {
        Some(a) if a == env.new_private_ip => (env.old_private_ip.clone(), a),
        Some(a) if a == env.new_public_ip => (env.old_public_ip.clone(), a),
        Some(a) => (a.clone(), a),
        None if !env.new_private_ip.is_empty() => (env.old_private_ip.clone(), env.new_private_ip.clone()),
        None => (env.old_public_ip.clone(), env.new_public_ip.clone()),
    };
    env
}

/// Runs the configuration's `on_replace` hooks for every host the apply
/// replaced; failures go to the report.
#[allow(clippy::too_many_arguments)]
pub async fn run_after_apply(
    config: &Config,
    world: &World<'_>,
    plan: &Plan,
    state: &State,
    report: &mut ApplyReport,
    progress: &dyn Progress,
    cancel: &CancellationToken,
) {
    let hooks: Vec<&HookDecl> = config.root().hooks.iter().filter(|h| h.event == "on_replace").collect();
    if hooks.is_empty() || plan.destroy {
        return;
    }
    let inventories: Vec<Inventory> = world
        .existing_only(|| build_all(world, config))
        .into_iter()
        .filter_map(|b| match b {
            Ok(Built::Ready(inv)) => Some(inv),
            _ => None,
        })
        .collect();
    for host in replaced_hosts(plan, state, report, &inventories) {
        for hook in &hooks {
            let subject = Subject::Hook { event: hook.event.clone(), addr: host.address.clone() };
            if cancel.is_cancelled() {
                report.fail(subject, "not run: the apply was interrupted");
                continue;
            }
            if let Some(path) = &hook.known_hosts {
                let path = expand_home(path);
                match forget_hosts(&path, &host.ssh_names()) {
                    Ok(0) => {}
                    Ok(removed) => progress.event(Event::KnownHostsUpdated { path: &path.display().to_string(), removed }),
                    // The hook still runs: bringing the app back matters more.
                    Err(e) => report.fail(subject.clone(), format!("cannot update `{}`: {e}", path.display())),
                }
            }
            progress.event(Event::HookStarted { event: &hook.event, addr: &host.address });
            let started = Instant::now();
            match run(hook, &host, &config.dir, cancel).await {
                Ok(()) => progress.event(Event::HookFinished { event: &hook.event, addr: &host.address, elapsed: started.elapsed() }),
                Err(e) => report.fail(subject, e),
            }
        }
    }
}

/// `~/x` under `$HOME`.
fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// Runs one hook for one host: its own process group, killed whole when
/// the time limit passes or the run is interrupted.
async fn run(hook: &HookDecl, host: &HookEnv, dir: &Path, cancel: &CancellationToken) -> Result<(), String> {
    let mut cmd = match &hook.command {
        HookCommand::Shell(s) => {
            let mut c = tokio::process::Command::new("sh");
            c.arg("-c").arg(s);
            c
        }
        HookCommand::Argv(argv) => {
            let mut c = tokio::process::Command::new(&argv[0]);
            c.args(&argv[1..]);
            c
        }
    };
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    cmd.current_dir(dir).envs(host.vars(&hook.event)).stdin(std::process::Stdio::null()).process_group(0).kill_on_drop(true);
    // Its output is a log, not berth's data: both streams go to stderr.
    if let Ok(fd) = std::os::fd::AsFd::as_fd(&io::stderr()).try_clone_to_owned() {
        if let Ok(fd2) = fd.try_clone() {
            cmd.stdout(std::process::Stdio::from(fd2));
        }
        cmd.stderr(std::process::Stdio::from(fd));
    }
    let what = match &hook.command {
        HookCommand::Shell(_) => "`sh -c` command".to_string(),
        HookCommand::Argv(argv) => format!("`{}`", argv[0]),
    };
    let mut child = cmd.spawn().map_err(|e| format!("cannot start the {what}: {e}"))?;
    let pid = child.id();
    let kill_group = || {
        if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
            let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
    };
    let status = tokio::select! {
        s = tokio::time::timeout(hook.timeout, child.wait()) => match s {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(format!("cannot wait for the {what}: {e}")),
            Err(_) => {
                kill_group();
                let _ = child.wait().await;
                return Err(format!("the {what} did not finish within {}: killed", humantime::format_duration(hook.timeout)));
            }
        },
        _ = cancel.cancelled() => {
            kill_group();
            let _ = child.wait().await;
            return Err(format!("the {what} was stopped: the apply was interrupted"));
        }
    };
    if status.success() {
        Ok(())
    } else {
        use std::os::unix::process::ExitStatusExt;
        Err(match (status.code(), status.signal()) {
            (Some(code), _) => format!("the {what} failed with exit status {code}"),
            (None, Some(sig)) => format!("the {what} was killed by signal {sig}"),
            _ => format!("the {what} failed"),
        })
    }
}

// ---- known_hosts ---------------------------------------------------------

/// Whether `pattern` (one entry of a line's host list) names `host`:
/// `host`, `[host]:port`, or a hashed `|1|salt|hash` of `host`.
fn pattern_names(pattern: &str, host: &str) -> bool {
    if let Some(hashed) = pattern.strip_prefix("|1|") {
        let Some((salt, hash)) = hashed.split_once('|') else { return false };
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let (Ok(salt), Ok(hash)) = (b64.decode(salt), b64.decode(hash)) else { return false };
        return hashed_host(&salt, host) == hash;
    }
    let p = pattern.strip_prefix('[').and_then(|p| p.split_once("]:")).map(|(h, _)| h).unwrap_or(pattern);
    p.eq_ignore_ascii_case(host)
}

/// HMAC-SHA1 of `host` keyed with `salt`: how OpenSSH hashes a known host.
pub fn hashed_host(salt: &[u8], host: &str) -> Vec<u8> {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(salt).expect("HMAC takes a key of any length");
    mac.update(host.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// `text` without the lines for any of `hosts`, and how many went.
/// Comments, blank lines, `@cert-authority`/`@revoked` lines and every
/// other line are kept byte for byte.
pub fn without_hosts(text: &str, hosts: &[String]) -> (String, usize) {
    let mut out = String::with_capacity(text.len());
    let mut removed = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        let drop = !t.is_empty()
            && !t.starts_with('#')
            && !t.starts_with('@')
            && t.split_whitespace().next().is_some_and(|list| {
                list.split(',').any(|p| !p.starts_with('!') && hosts.iter().any(|h| pattern_names(p, h)))
            });
        if drop {
            removed += 1;
        } else {
            out.push_str(line);
        }
    }
    (out, removed)
}

/// Removes the lines for `hosts` from the known_hosts file at `path`:
/// written to a temporary file beside it with the same mode, then renamed
/// over it (a symlink is followed, and its target replaced). A missing file
/// is nothing to do. Returns how many lines went.
pub fn forget_hosts(path: &Path, hosts: &[String]) -> io::Result<usize> {
    if hosts.is_empty() {
        return Ok(0);
    }
    let real = match std::fs::canonicalize(path) {
        Ok(p) => p,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let text = std::fs::read_to_string(&real)?;
    let (kept, removed) = without_hosts(&text, hosts);
    if removed == 0 {
        return Ok(0);
    }
    let meta = std::fs::metadata(&real)?;
    let dir = real.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new().prefix(".known_hosts.berth-").tempfile_in(dir)?;
    tmp.as_file().set_permissions(meta.permissions())?;
    io::Write::write_all(&mut tmp, kept.as_bytes())?;
    tmp.as_file().sync_all()?;
    tmp.persist(&real).map_err(|e| e.error)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn hashed_line(host: &str, salt: &[u8]) -> String {
        let b64 = base64::engine::general_purpose::STANDARD;
        format!("|1|{}|{} ssh-ed25519 AAAAC3hashed\n", b64.encode(salt), b64.encode(hashed_host(salt, host)))
    }

    #[test]
    fn removes_plain_bracketed_and_hashed_lines_only() {
        let text = format!(
            "# my hosts\n10.0.1.5 ssh-ed25519 AAAAold\nother.example,10.0.9.9 ssh-rsa AAAAother\n[10.0.1.5]:2222 ssh-ed25519 AAAAport\nsearch.internal,10.0.1.77 ecdsa-sha2-nistp256 AAAAname\n{}{}\n@cert-authority 10.0.1.5 ssh-ed25519 AAAAca\n10.0.1.50 ssh-ed25519 AAAAnear\n",
            hashed_line("10.0.1.5", b"salt-one-20-bytes!!!"),
            hashed_line("10.0.2.2", b"salt-two-20-bytes!!!"),
        );
        let (kept, removed) = without_hosts(&text, &["10.0.1.5".into(), "search.internal".into()]);
        assert_eq!(removed, 4, "{kept}");
        assert_eq!(
            kept,
            format!(
                "# my hosts\nother.example,10.0.9.9 ssh-rsa AAAAother\n{}\n@cert-authority 10.0.1.5 ssh-ed25519 AAAAca\n10.0.1.50 ssh-ed25519 AAAAnear\n",
                hashed_line("10.0.2.2", b"salt-two-20-bytes!!!")
            )
        );
    }

    #[test]
    fn a_file_keeps_its_mode_and_an_untouched_file_its_inode() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("known_hosts");
        std::fs::write(&p, "10.0.0.1 ssh-ed25519 AAAA\n10.0.0.2 ssh-ed25519 BBBB\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        let ino = std::fs::metadata(&p).unwrap().ino();
        assert_eq!(forget_hosts(&p, &["10.9.9.9".into()]).unwrap(), 0);
        assert_eq!(std::fs::metadata(&p).unwrap().ino(), ino);
        assert_eq!(forget_hosts(&p, &["10.0.0.1".into()]).unwrap(), 1);
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "10.0.0.2 ssh-ed25519 BBBB\n");
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(forget_hosts(&dir.path().join("missing"), &["10.0.0.1".into()]).unwrap(), 0);
    }

    fn hook(command: HookCommand, timeout: std::time::Duration) -> HookDecl {
        HookDecl { event: "on_replace".into(), span: None, command, timeout, known_hosts: None }
    }

    #[tokio::test]
    async fn the_command_sees_the_host_and_its_status_counts() {
        let env = HookEnv { new_host: "10.0.0.2".into(), kamal_destination: "production".into(), ..HookEnv::default() };
        let dir = tempfile::tempdir().unwrap();
        let never = CancellationToken::new();
        let minute = std::time::Duration::from_secs(60);
        let check = r#"test "$BERTH_NEW_HOST" = 10.0.0.2 && test "$BERTH_KAMAL_DESTINATION" = production && test -z "$BERTH_OLD_ID" && pwd > where"#;
        run(&hook(HookCommand::Shell(check.into()), minute), &env, dir.path(), &never).await.unwrap();
        let ran_in = std::fs::read_to_string(dir.path().join("where")).unwrap();
        assert_eq!(std::fs::canonicalize(ran_in.trim()).unwrap(), std::fs::canonicalize(dir.path()).unwrap());
        let argv = HookCommand::Argv(vec!["sh".into(), "-c".into(), "exit 7".into()]);
        let e = run(&hook(argv, minute), &env, dir.path(), &never).await.unwrap_err();
        assert_eq!(e, "the `sh` failed with exit status 7");
        let missing = HookCommand::Argv(vec!["./no-such-program".into()]);
        let e = run(&hook(missing, minute), &env, dir.path(), &never).await.unwrap_err();
        assert!(e.starts_with("cannot start the `./no-such-program`"), "{e}");
    }

    /// Past its time limit the whole process group goes: the background
    /// `sleep` too, which would otherwise keep the pipe it writes open.
    #[tokio::test]
    async fn a_hook_past_its_time_limit_is_killed_with_its_children() {
        let dir = tempfile::tempdir().unwrap();
        let cmd = HookCommand::Shell("sleep 600 & echo $! > child; wait".into());
        // Long enough for a loaded machine to start `sh` and note the child.
        let e = run(&hook(cmd, std::time::Duration::from_secs(5)), &HookEnv::default(), dir.path(), &CancellationToken::new())
            .await
            .unwrap_err();
        assert!(e.contains("did not finish within 5s: killed"), "{e}");
        let child: i32 = std::fs::read_to_string(dir.path().join("child")).unwrap().trim().parse().unwrap();
        // SIGKILL lands asynchronously: wait for the child to be gone or a
        // zombie (the guard only turns a survivor into a failure).
        let started = std::time::Instant::now();
        loop {
            let state = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
            let running = state.rsplit(')').next().and_then(|rest| rest.split_whitespace().next()).is_some_and(|s| s != "Z" && s != "X");
            if !running {
                break;
            }
            assert!(started.elapsed() < std::time::Duration::from_secs(60), "the background child lives on: {state}");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    #[test]
    fn a_destination_comes_from_the_file_name() {
        assert_eq!(kamal_destination(Path::new("config/deploy.production.yml")).as_deref(), Some("production"));
        assert_eq!(kamal_destination(Path::new("deploy.staging.yaml")).as_deref(), Some("staging"));
        assert_eq!(kamal_destination(Path::new("config/deploy.yml")), None);
        assert_eq!(kamal_destination(Path::new("hosts.yml")), None);
    }
}
