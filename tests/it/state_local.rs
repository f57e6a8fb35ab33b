//! The local state backend on a real filesystem: atomic writes and their
//! backups, the journal and its crash cases, and `flock` locks contended by
//! other backends and other processes.

use berth::state::local::LocalBackend;
use berth::state::{
    Backend, JournalEntry, LockInfo, OutputState, PendingCreate, ResourceState, State, StateError,
};
use berth::value::{Value, obj};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn resource(name: &str, n: usize) -> ResourceState {
    ResourceState {
        addr: format!("berth_data.{name}[{n}]").parse().unwrap(),
        deposed: None,
        provider: "berth".into(),
        attributes: obj([("id", Value::str(format!("{name}-{n}"))), ("size", (n as i64).into())]),
        sensitive: Vec::new(),
        dependencies: Vec::new(),
        tainted: false,
        create_before_destroy: false,
        generation: 1,
        imported: false,
        drain: None,
    }
}

fn pending(name: &str, n: usize) -> PendingCreate {
    PendingCreate { addr: format!("berth_data.{name}[{n}]").parse().unwrap(), provider: "berth".into(), generation: 2, token: format!("t{n}") }
}

fn outputs(v: &str) -> BTreeMap<String, OutputState> {
    BTreeMap::from([("ip".to_string(), OutputState { value: Value::str(v), sensitive: false })])
}

fn state_with(serial: u64, names: &[usize]) -> State {
    let mut s = State::new();
    s.serial = serial;
    for &n in names {
        s.put(resource("n", n));
    }
    s
}

fn begin(s: &State) -> JournalEntry {
    JournalEntry::Begin { lineage: s.lineage.clone(), serial: s.serial }
}

fn put(name: &str, n: usize) -> JournalEntry {
    JournalEntry::Put(Box::new(resource(name, n)))
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn setup() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("state");
    (tmp, dir)
}

#[tokio::test]
async fn write_then_load_round_trips() {
    let (_tmp, dir) = setup();
    let b = LocalBackend::new(dir.clone(), "default");
    assert_eq!(b.load().await.unwrap(), None);

    let mut s = state_with(4, &[1, 2, 3]);
    s.outputs = outputs("10.0.0.1");
    let p = pending("p", 0);
    s.pending.insert(p.addr.clone(), p);
    b.write(&s).await.unwrap();

    let fresh = LocalBackend::new(dir.clone(), "default");
    assert_eq!(fresh.load().await.unwrap(), Some(s));
    assert_eq!(mode(&dir) & 0o077, 0, "the state folder is private");
    assert_eq!(b.describe(), dir.join("default.json").display().to_string());
    assert_eq!(LocalBackend::new("state".into(), "prod").describe(), "state/prod.json");
}

#[tokio::test]
async fn files_are_private_and_backup_holds_previous_version() {
    let (_tmp, dir) = setup();
    let b = LocalBackend::new(dir.clone(), "default");
    let mut s = state_with(1, &[1]);
    b.write(&s).await.unwrap();
    assert!(!b.backup_path().exists(), "no backup before a second version");

    // A state left world-readable by an earlier tool: its backup must not be.
    std::fs::set_permissions(b.state_path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let first = std::fs::read_to_string(b.state_path()).unwrap();
    s.serial = 2;
    s.put(resource("n", 2));
    b.write(&s).await.unwrap();
    b.append(&[begin(&s), put("n", 3)]).await.unwrap();

    for p in [b.state_path(), b.backup_path(), b.journal_path()] {
        assert_eq!(mode(&p), 0o600, "{}", p.display());
    }
    assert_eq!(std::fs::read_to_string(b.backup_path()).unwrap(), first);
    let backup = State::from_json("backup", &first).unwrap();
    assert_eq!(backup.serial, 1);
    assert_eq!(backup.resources.len(), 1);

    s.serial = 3;
    let second = std::fs::read_to_string(b.state_path()).unwrap();
    b.write(&s).await.unwrap();
    assert_eq!(std::fs::read_to_string(b.backup_path()).unwrap(), second);
    assert_eq!(b.load().await.unwrap().unwrap().serial, 3);

    // Nothing but the state and its backup is left behind.
    let mut names: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["default.json", "default.json.backup"]);
}

#[tokio::test]
async fn journal_replays_in_a_fresh_backend() {
    let (_tmp, dir) = setup();
    let b = LocalBackend::new(dir.clone(), "default");
    let base = state_with(7, &[1, 2]);
    b.write(&base).await.unwrap();

    b.append(&[begin(&base), JournalEntry::Pending(pending("web", 0)), put("web", 1)]).await.unwrap();
    b.append(&[
        JournalEntry::Remove { addr: "berth_data.n[1]".parse().unwrap(), deposed: None },
        JournalEntry::Outputs { outputs: outputs("10.1.2.3") },
    ])
    .await
    .unwrap();

    assert!(!b.found_journal(), "nothing loaded yet");
    let replaying = LocalBackend::new(dir.clone(), "default");
    let loaded = replaying.load().await.unwrap().unwrap();
    assert!(replaying.found_journal(), "the load says it replayed a journal, so a run without changes writes it");
    assert_eq!(loaded.lineage, base.lineage);
    assert_eq!(loaded.serial, 7, "replay does not bump the serial; the engine does");
    let addrs: Vec<String> = loaded.resources.values().map(|r| r.addr.to_string()).collect();
    assert_eq!(addrs, ["berth_data.n[2]", "berth_data.web[1]"]);
    assert_eq!(loaded.pending.values().cloned().collect::<Vec<_>>(), vec![pending("web", 0)]);
    assert_eq!(loaded.outputs, outputs("10.1.2.3"));

    // Folding the journal into the state removes it.
    b.write(&State { serial: 8, ..loaded.clone() }).await.unwrap();
    assert!(!b.journal_path().exists());
    assert_eq!(b.load().await.unwrap().unwrap(), State { serial: 8, ..loaded });
    assert!(!b.found_journal());
}

#[test]
fn instances_of_a_block_are_its_live_instances_only() {
    let mut s = State::new();
    for r in [resource("a", 0), resource("a", 2), resource("ab", 1), resource("b", 0)] {
        s.put(r);
    }
    s.put(ResourceState { addr: "berth_data.a".parse().unwrap(), ..resource("a", 0) });
    s.put(ResourceState { addr: "berth_data.a[\"k\"]".parse().unwrap(), ..resource("a", 0) });
    s.put(ResourceState { deposed: Some("g1".into()), ..resource("a", 1) });
    s.put(ResourceState { addr: "module.m.berth_data.a[0]".parse().unwrap(), ..resource("a", 0) });
    let a: berth::addr::ResourceAddr = "berth_data.a".parse::<berth::addr::InstanceAddr>().unwrap().resource;
    let got: Vec<String> = s.instances_of(&a).map(|r| r.addr.to_string()).collect();
    assert_eq!(got, ["berth_data.a", "berth_data.a[0]", "berth_data.a[2]", "berth_data.a[\"k\"]"]);
}

/// Results of state-only resources are appended without forcing them to
/// disk, but they are in the journal all the same: a berth killed right after
/// (the next process reads what the kernel holds) loses none of them, and a
/// synced append after them keeps the order.
#[tokio::test]
async fn local_appends_are_in_the_journal_in_order() {
    let (_tmp, dir) = setup();
    let b = LocalBackend::new(dir.clone(), "default");
    let base = state_with(3, &[1]);
    b.write(&base).await.unwrap();
    b.append_local(&[begin(&base), put("a", 0)]).await.unwrap();
    b.append_local(&[put("b", 0)]).await.unwrap();
    b.append(&[JournalEntry::Remove { addr: "berth_data.n[1]".parse().unwrap(), deposed: None }])
        .await
        .unwrap();
    b.append_local(&[put("c", 0)]).await.unwrap();

    let loaded = LocalBackend::new(dir.clone(), "default").load().await.unwrap().unwrap();
    let addrs: Vec<String> = loaded.resources.values().map(|r| r.addr.to_string()).collect();
    assert_eq!(addrs, ["berth_data.a[0]", "berth_data.b[0]", "berth_data.c[0]"]);
}

#[tokio::test]
async fn first_apply_crash_is_recovered_from_journal_alone() {
    let (_tmp, dir) = setup();
    let b = LocalBackend::new(dir.clone(), "default");
    let fresh = State::new();
    b.append(&[begin(&fresh), put("a", 0)]).await.unwrap();
    assert!(!b.state_path().exists());

    let loaded = LocalBackend::new(dir, "default").load().await.unwrap().unwrap();
    assert_eq!(loaded.lineage, fresh.lineage);
    assert_eq!(loaded.serial, 0);
    assert_eq!(loaded.resources.len(), 1);
}

#[tokio::test]
async fn torn_last_line_is_ignored_and_trimmed_before_continuing() {
    let (_tmp, dir) = setup();
    let b = LocalBackend::new(dir.clone(), "default");
    let base = state_with(1, &[]);
    b.write(&base).await.unwrap();
    b.append(&[begin(&base), put("a", 0)]).await.unwrap();
    drop(b);
    // The crash came halfway through the next line.
    let mut f = std::fs::OpenOptions::new().append(true).open(dir.join("default.journal")).unwrap();
    std::io::Write::write_all(&mut f, br#"{"op":"put","addr":"berth_data.a[1]","prov"#).unwrap();
    drop(f);

    let b = LocalBackend::new(dir.clone(), "default");
    let loaded = b.load().await.unwrap().unwrap();
    assert_eq!(loaded.resources.len(), 1);

    // The next run continues the journal; the torn bytes must not end up
    // in the middle of it.
    b.append(&[begin(&base), put("a", 2)]).await.unwrap();
    let loaded = LocalBackend::new(dir.clone(), "default").load().await.unwrap().unwrap();
    let addrs: Vec<String> = loaded.resources.values().map(|r| r.addr.to_string()).collect();
    assert_eq!(addrs, ["berth_data.a[0]", "berth_data.a[2]"]);
    let text = std::fs::read_to_string(b.journal_path()).unwrap();
    assert!(!text.contains("prov\""), "torn tail kept:\n{text}");
}

#[tokio::test]
async fn corrupt_middle_line_is_an_error_naming_file_and_line() {
    let (_tmp, dir) = setup();
    let b = LocalBackend::new(dir.clone(), "default");
    let base = state_with(1, &[]);
    b.write(&base).await.unwrap();
    b.append(&[begin(&base), put("a", 0), put("a", 1), put("a", 2)]).await.unwrap();
    let path = b.journal_path();
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[2] = "{\"op\":\"put\",\"addr\":";
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();

    match LocalBackend::new(dir, "default").load().await {
        Err(StateError::Corrupt { path: p, reason }) => {
            assert!(p.ends_with("default.journal"), "{p}");
            assert!(reason.contains("line 3"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[tokio::test]
async fn stale_journal_is_ignored_then_replaced() {
    let (_tmp, dir) = setup();
    let b = LocalBackend::new(dir.clone(), "default");
    let old = state_with(1, &[]);
    b.append(&[begin(&old), put("stale", 0)]).await.unwrap();
    // The state moved on (a run whose journal removal never happened).
    let new = State { serial: 2, ..state_with(0, &[5]) };
    std::fs::write(b.state_path(), new.to_json()).unwrap();

    // A stale journal is not read past its `begin`, damaged or not.
    let mut f = std::fs::OpenOptions::new().append(true).open(b.journal_path()).unwrap();
    std::io::Write::write_all(&mut f, b"{damaged\n{\"op\":\"remove\"}\n").unwrap();
    drop(f);

    let fresh = LocalBackend::new(dir.clone(), "default");
    assert_eq!(fresh.load().await.unwrap(), Some(new.clone()));
    assert!(fresh.found_journal(), "a stale journal is garbage a write clears");

    fresh.append(&[begin(&new), put("a", 0)]).await.unwrap();
    let text = std::fs::read_to_string(fresh.journal_path()).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(!text.contains("stale"));
    let loaded = fresh.load().await.unwrap().unwrap();
    assert_eq!(loaded.resources.len(), 2);
}

#[tokio::test]
async fn second_run_on_same_base_continues_the_journal() {
    let (_tmp, dir) = setup();
    let base = state_with(3, &[]);
    let b = LocalBackend::new(dir.clone(), "default");
    b.write(&base).await.unwrap();
    b.append(&[begin(&base), put("x", 0)]).await.unwrap();
    drop(b);

    let b = LocalBackend::new(dir.clone(), "default");
    b.append(&[begin(&base), put("y", 0)]).await.unwrap();
    b.append(&[put("y", 1)]).await.unwrap();
    let text = std::fs::read_to_string(b.journal_path()).unwrap();
    assert_eq!(text.matches("\"begin\"").count(), 1, "{text}");
    assert_eq!(text.lines().count(), 4, "{text}");
    let addrs: Vec<String> =
        b.load().await.unwrap().unwrap().resources.values().map(|r| r.addr.to_string()).collect();
    assert_eq!(addrs, ["berth_data.x[0]", "berth_data.y[0]", "berth_data.y[1]"]);
}

#[tokio::test]
async fn append_without_begin_on_empty_journal_is_refused() {
    let (_tmp, dir) = setup();
    let b = LocalBackend::new(dir, "default");
    let err = b.append(&[put("a", 0)]).await.unwrap_err().to_string();
    assert!(err.contains("`begin`"), "{err}");
}

#[tokio::test]
async fn corrupt_state_is_an_error_and_left_untouched() {
    let (_tmp, dir) = setup();
    std::fs::create_dir_all(&dir).unwrap();
    let b = LocalBackend::new(dir.clone(), "default");
    let bytes = b"{\"version\": 1, \"lineage\": \"x\", \"serial\": \x00 oops".to_vec();
    std::fs::write(b.state_path(), &bytes).unwrap();

    match b.load().await {
        Err(StateError::Corrupt { path, .. }) => assert_eq!(path, b.describe()),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert_eq!(std::fs::read(b.state_path()).unwrap(), bytes);

    std::fs::write(b.state_path(), [0xff, 0xfe, b'{']).unwrap();
    assert!(matches!(b.load().await, Err(StateError::Corrupt { .. })));

    std::fs::write(b.state_path(), r#"{"version": 99, "lineage": "x"}"#).unwrap();
    assert!(matches!(b.load().await, Err(StateError::Version { found: 99, .. })));
}

#[tokio::test]
async fn workspaces_lists_states_and_always_default() {
    let (_tmp, dir) = setup();
    assert_eq!(LocalBackend::new(dir.clone(), "default").workspaces().await.unwrap(), ["default"]);
    let staging = LocalBackend::new(dir.clone(), "staging");
    staging.write(&state_with(1, &[])).await.unwrap();
    staging.write(&state_with(2, &[])).await.unwrap();
    LocalBackend::new(dir.clone(), "a-prod").write(&state_with(1, &[])).await.unwrap();
    std::fs::write(dir.join(".hidden.json"), "{}").unwrap();
    std::fs::write(dir.join("notes.txt"), "").unwrap();
    assert_eq!(staging.workspaces().await.unwrap(), ["a-prod", "default", "staging"]);
}

#[tokio::test]
async fn workspace_names_cannot_escape_the_folder() {
    let (_tmp, dir) = setup();
    let b = LocalBackend::new(dir, "../outside");
    let err = b.write(&State::new()).await.unwrap_err().to_string();
    assert!(err.contains("`../outside`"), "{err}");
    assert!(b.load().await.is_err());
}

#[tokio::test]
async fn lock_contention_between_backends() {
    let (_tmp, dir) = setup();
    let first = Arc::new(LocalBackend::new(dir.clone(), "default"));
    let second = LocalBackend::new(dir.clone(), "default");
    assert_eq!(second.lock_holder().await.unwrap(), None);

    let held = first.lock("apply", Duration::ZERO).await.unwrap();
    assert_eq!(held.pid, std::process::id());
    assert_eq!(held.operation, "apply");
    assert_eq!(mode(&first.lock_path()), 0o600);
    assert_eq!(second.lock_holder().await.unwrap(), Some(held.clone()));

    let err = second.lock("plan", Duration::ZERO).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StateError::Locked(_)));
    assert!(msg.contains(&format!("pid {}", held.pid)), "{msg}");
    assert!(msg.contains(&format!("`berth force-unlock {}`", held.id)), "{msg}");
    assert!(msg.contains("operation `apply`"), "{msg}");

    let start = Instant::now();
    let err = second.lock("plan", Duration::from_millis(500)).await.unwrap_err();
    assert!(matches!(err, StateError::Locked(_)));
    assert!(start.elapsed() >= Duration::from_millis(500));

    let releaser = {
        let first = first.clone();
        let held = held.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            first.unlock(&held).await.unwrap();
        })
    };
    let mine = second.lock("plan", Duration::from_secs(10)).await.unwrap();
    releaser.await.unwrap();
    assert_ne!(mine.id, held.id);
    assert_eq!(first.lock_holder().await.unwrap(), Some(mine.clone()));
    // Unlocking with someone else's lock is refused.
    assert!(second.unlock(&held).await.is_err());
    second.unlock(&mine).await.unwrap();
    assert!(!second.lock_path().exists());
    assert_eq!(first.lock_holder().await.unwrap(), None);
}

#[tokio::test]
async fn lock_of_a_killed_process_is_free() {
    use std::os::unix::process::CommandExt;
    let (_tmp, dir) = setup();
    std::fs::create_dir_all(&dir).unwrap();
    let b = LocalBackend::new(dir.clone(), "default");
    let lock_path = b.lock_path();
    // `flock` hands its descriptor to `sleep`, so both must die: give them a
    // process group of their own and kill that.
    let mut child = std::process::Command::new("flock")
        .arg(&lock_path)
        .args(["sleep", "60"])
        .process_group(0)
        .spawn()
        .expect("run `flock` from util-linux");
    let pgid = nix::unistd::Pid::from_raw(child.id() as i32);

    let deadline = Instant::now() + Duration::from_secs(10);
    while !held_by_someone(&lock_path) {
        assert!(Instant::now() < deadline, "`flock` never took the lock");
        std::thread::sleep(Duration::from_millis(20));
    }
    let err = b.lock("apply", Duration::ZERO).await.unwrap_err();
    assert!(err.to_string().contains("names no holder"), "{err}");

    nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL).unwrap();
    child.wait().unwrap();
    // `sleep` is not our child: wait until the kernel has closed its descriptor.
    let deadline = Instant::now() + Duration::from_secs(10);
    while held_by_someone(&lock_path) {
        assert!(Instant::now() < deadline, "the killed `sleep` still holds the lock");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(lock_path.exists(), "the dead holder's file stays behind");
    let info = b.lock("apply", Duration::ZERO).await.unwrap();
    b.unlock(&info).await.unwrap();
}

/// Probes the lock without touching the file, unlike the backend, which
/// tidies away a free lock file (racing `flock`, which creates it first and
/// locks it next).
fn held_by_someone(path: &Path) -> bool {
    let Ok(f) = std::fs::File::open(path) else { return false };
    nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock).is_err()
}

#[tokio::test]
async fn stale_lock_info_of_a_dead_holder_is_ignored() {
    let (_tmp, dir) = setup();
    std::fs::create_dir_all(&dir).unwrap();
    let b = LocalBackend::new(dir.clone(), "default");
    let dead = LockInfo::new("apply");
    std::fs::write(b.lock_path(), serde_json::to_string(&dead).unwrap()).unwrap();
    assert_eq!(b.lock_holder().await.unwrap(), None);
    let err = b.force_unlock(&dead.id).await.unwrap_err().to_string();
    assert!(err.contains("no lock held"), "{err}");
    let info = b.lock("apply", Duration::ZERO).await.unwrap();
    assert_ne!(info.id, dead.id);
}

#[tokio::test]
async fn force_unlock_needs_the_right_id() {
    let (_tmp, dir) = setup();
    let holder = LocalBackend::new(dir.clone(), "default");
    let other = LocalBackend::new(dir.clone(), "default");
    let err = other.force_unlock("nope").await.unwrap_err().to_string();
    assert!(err.contains("no lock held"), "{err}");

    let held = holder.lock("apply", Duration::ZERO).await.unwrap();
    let err = other.force_unlock("wrong-id").await.unwrap_err().to_string();
    assert!(err.contains("`wrong-id`") && err.contains(&format!("`{}`", held.id)), "{err}");
    assert!(other.lock("plan", Duration::ZERO).await.is_err());

    other.force_unlock(&held.id).await.unwrap();
    let mine = other.lock("plan", Duration::ZERO).await.unwrap();
    // The old holder's unlock must not remove the new holder's file.
    holder.unlock(&held).await.unwrap();
    assert_eq!(holder.lock_holder().await.unwrap(), Some(mine.clone()));
    other.unlock(&mine).await.unwrap();
}

#[tokio::test]
async fn journal_of_5000_puts_appends_and_loads_fast() {
    let (_tmp, dir) = setup();
    let b = LocalBackend::new(dir.clone(), "default");
    let base = state_with(1, &[]);
    b.write(&base).await.unwrap();
    let entries: Vec<JournalEntry> = (0..5000).map(|n| put("bulk", n)).collect();

    let start = Instant::now();
    b.append(&[begin(&base)]).await.unwrap();
    for group in entries.chunks(64) {
        b.append(group).await.unwrap();
    }
    let appended = start.elapsed();
    let loaded = LocalBackend::new(dir, "default").load().await.unwrap().unwrap();
    let total = start.elapsed();
    assert_eq!(loaded.resources.len(), 5000);
    println!(
        "5000 puts in {} groups: append {:?}, load {:?}, total {:?}",
        entries.chunks(64).count(),
        appended,
        total - appended,
        total
    );
}
