//! Unit tests of the registry: registration, leaving, sweeping, hostile folders.

use super::*;
use crate::named::test_util::registry;
use crate::sys::process::test_util::Zombie;
use rustix::fs::{Mode, OFlags};

#[test]
fn pids_dir_is_spelled_like_the_python_peer() {
    assert_eq!(
        Registry::at("/dev/shm/fastipc/").pids_dir("seg"),
        PathBuf::from("/dev/shm/fastipc/seg.pids")
    );
    assert_eq!(Registry::at("/x").pids_dir("a"), PathBuf::from("/x/a.pids"));
}

#[test]
fn handles_of_one_process_register_once_and_leave_together() {
    let (reg, _clean) = registry("handles", &[]);
    let a = reg.attach("seg").unwrap();
    let b = reg.attach("seg").unwrap();
    let listed = reg.attached("seg").unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].pid, std::process::id());
    assert!(listed[0].alive);
    assert_eq!(listed[0].start_time, Some(ProcessId::current().start_time));
    assert_eq!(listed[0].pid_namespace, Some(my_ns()));
    assert!(listed[0].is_verifiable());
    assert_eq!(a.detach().unwrap(), Detached { unlinked: false });
    assert_eq!(reg.attached("seg").unwrap().len(), 1, "b still attached");
    drop(b);
    assert!(reg.attached("seg").unwrap().is_empty());
    assert!(
        !reg.pids_dir("seg").exists(),
        "last one out removes the folder"
    );
}

#[test]
fn registering_survives_a_python_peer_removing_the_folder_after_our_lock() {
    // A Python peer leaving last takes no lock: it can rmdir the folder between our
    // lock and our pid file. Registering must make the folder again, not fail.
    let (reg, _clean) = registry("rmdir", &[]);
    let mut lock = reg.lock_dir("seg").unwrap();
    stdfs::remove_dir_all(reg.pids_dir("seg")).unwrap();
    reg.register(&mut lock).unwrap();
    drop(lock);
    let listed = reg.attached("seg").unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].pid, std::process::id());
    let lock = reg.lock_dir("seg").unwrap();
    assert!(!reg.unregister(&lock).unwrap());
}

/// What a fastipc process of pid namespace `ns` writes into its pid file.
fn record(id: ProcessId, ns: u32) -> String {
    format!("{} {ns}\n", id.start_time)
}

fn my_ns() -> u32 {
    process::pid_namespace().unwrap().get()
}

#[test]
fn leaving_removes_only_certainly_dead_registrations_and_sweep_the_python_ones_too() {
    let (reg, _clean) = registry("dead", &[]);
    let a = reg.attach("seg").unwrap();
    let dir = reg.pids_dir("seg");
    // Exited, unreaped children (their ids cannot be reused meanwhile): one recorded
    // by a fastipc process of our namespace (dead), one of another namespace (never
    // judged), one in a Python-style empty file (dead by its id here); our parent,
    // alive.
    let (dead, foreign, python) = (Zombie::new(), Zombie::new(), Zombie::new());
    let id = |z: &Zombie| ProcessId::of(z.pid()).unwrap();
    stdfs::write(dir.join(dead.pid().to_string()), record(id(&dead), my_ns())).unwrap();
    stdfs::write(
        dir.join(foreign.pid().to_string()),
        record(id(&foreign), my_ns() ^ 1),
    )
    .unwrap();
    stdfs::write(dir.join(python.pid().to_string()), "").unwrap();
    let parent = std::os::unix::process::parent_id();
    let parent_id = ProcessId::of(parent).unwrap();
    stdfs::write(dir.join(parent.to_string()), record(parent_id, my_ns())).unwrap();
    stdfs::write(dir.join("not-a-pid"), "").unwrap();
    let listed = reg.attached("seg").unwrap();
    assert_eq!(listed.len(), 5, "{listed:?}");
    let find = |pid: u32| *listed.iter().find(|a| a.pid == pid).unwrap();
    assert!(find(dead.pid()).is_certainly_dead());
    assert!(find(foreign.pid()).alive && !find(foreign.pid()).is_verifiable());
    let py = find(python.pid());
    assert!(!py.alive && !py.is_verifiable() && !py.is_certainly_dead());
    assert_eq!((py.start_time, py.pid_namespace), (None, None));
    assert!(find(parent).alive && find(parent).is_verifiable());
    assert!(find(std::process::id()).alive);
    // Leaving removes only the certainly dead one; the Python file keeps the segment.
    assert_eq!(a.detach().unwrap(), Detached { unlinked: false });
    let mut left: Vec<u32> = reg.attached("seg").unwrap().iter().map(|a| a.pid).collect();
    left.sort_unstable();
    let mut want = vec![parent, foreign.pid(), python.pid()];
    want.sort_unstable();
    assert_eq!(left, want);
    // A sweep removes the Python file too (the Python peer's rule), keeps the other
    // namespace's, and says so.
    stdfs::remove_file(dir.join(parent.to_string())).unwrap();
    let report = reg.sweep(false).unwrap();
    let swept: Vec<u32> = report.dead_entries.iter().map(|d| d.pid).collect();
    assert_eq!(swept, [python.pid()], "{report}");
    assert_eq!(report.in_use.len(), 1);
    assert_eq!(report.in_use[0].unverifiable, [foreign.pid()]);
    assert!(report.to_string().contains("cannot be checked"), "{report}");
    let left: Vec<u32> = reg.attached("seg").unwrap().iter().map(|a| a.pid).collect();
    assert_eq!(left, [foreign.pid()]);
}

#[test]
fn a_process_whose_main_thread_exited_while_another_runs_stays_registered() {
    let (reg, _clean) = registry("leader", &[]);
    let a = reg.attach("seg").unwrap();
    let proc = crate::sys::process::test_util::LeaderExited::spawn("");
    let id = ProcessId::of(proc.pid()).unwrap();
    let file = reg.pids_dir("seg").join(proc.pid().to_string());
    stdfs::write(&file, record(id, my_ns())).unwrap();
    let listed = reg.attached("seg").unwrap();
    assert!(
        listed.iter().all(|a| a.alive && a.is_verifiable()),
        "{listed:?}"
    );
    // Leaving, we neither remove its registration nor the segment's folder.
    assert_eq!(a.detach().unwrap(), Detached { unlinked: false });
    assert!(proc.still_runs());
    assert!(file.exists());
    let report = reg.sweep(false).unwrap();
    assert!(report.dead_entries.is_empty(), "{report}");
    assert!(file.exists());
}

#[test]
fn a_reused_pid_is_not_alive() {
    let (reg, _clean) = registry("reuse", &[]);
    let dir = reg.pids_dir("seg");
    stdfs::create_dir_all(&dir).unwrap();
    let parent = std::os::unix::process::parent_id();
    let real = ProcessId::of(parent).unwrap();
    let reused = ProcessId {
        start_time: real.start_time + 1,
        ..real
    };
    stdfs::write(dir.join(parent.to_string()), record(reused, my_ns())).unwrap();
    let listed = reg.attached("seg").unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].is_certainly_dead());
}

#[test]
fn a_folder_removed_by_hand_does_not_end_other_handles() {
    let (reg, _clean) = registry("gone", &[]);
    let a = reg.attach("seg").unwrap();
    let b = reg.attach("seg").unwrap();
    stdfs::remove_dir_all(reg.pids_dir("seg")).unwrap();
    // `a` leaves; `b` is still this process's handle: nothing counts as last yet.
    assert_eq!(a.detach().unwrap(), Detached { unlinked: false });
    let c = reg.attach("seg").unwrap();
    assert_eq!(reg.attached("seg").unwrap().len(), 1);
    drop(b);
    assert_eq!(
        reg.attached("seg").unwrap().len(),
        1,
        "c keeps the registration"
    );
    drop(c);
    assert!(reg.attached("seg").unwrap().is_empty());
}

#[test]
fn a_relative_root_is_made_absolute_at_construction() {
    let reg = Registry::at("some/relative/pids");
    let cwd = std::env::current_dir().unwrap();
    assert!(reg.root().is_absolute());
    assert_eq!(reg.root(), cwd.join("some/relative/pids"));
    assert_eq!(reg.pids_dir("seg"), cwd.join("some/relative/pids/seg.pids"));
    assert_eq!(reg.lock_timeout(), DEFAULT_LOCK_TIMEOUT);
}

#[test]
fn a_folder_locked_by_a_stuck_process_fails_open_close_and_sweep_in_bounded_time() {
    use crate::named::NamedMutex;
    use crate::named::test_util::{registry, unique};
    use std::sync::mpsc;
    let name = unique("flock");
    let seg = format!("{}{name}", crate::named::MUTEX_PREFIX);
    let (reg, _clean) = registry("flock", &[&seg]);
    let reg = reg.with_lock_timeout(Duration::from_millis(300));
    let held = NamedMutex::open_in(&reg, &name).unwrap();
    let own_file = reg.pids_dir(&seg).join(std::process::id().to_string());
    // "Another process", stopped while it holds the folder's lock: flock locks belong
    // to an open file description, so this one excludes ours.
    let stuck = fs::open(
        reg.pids_dir(&seg),
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .unwrap();
    fs::flock(&stuck, FlockOperation::LockExclusive).unwrap();
    // Each operation runs on a thread; the bound below is on the wait (the timeout
    // is 300 ms), so a blocking implementation fails instead of hanging the test.
    let bounded = |f: Box<dyn FnOnce() -> Result<(), NamedError> + Send>| {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(Duration::from_secs(20))
            .expect("blocked on the registry folder's lock without a timeout")
    };
    let reg2 = reg.clone();
    let name2 = name.clone();
    let opened = bounded(Box::new(move || {
        NamedMutex::open_in(&reg2, &name2).map(|_| ())
    }));
    assert!(
        matches!(&opened, Err(NamedError::RegistryBusy { waited, .. }) if *waited == Duration::from_millis(300)),
        "{opened:?}"
    );
    assert!(opened.unwrap_err().to_string().contains("stayed locked"));
    // Closing (and dropping) gives up too, leaving our file for later.
    let closed = bounded(Box::new(move || held.close().map(|_| ())));
    assert!(
        matches!(closed, Err(NamedError::RegistryBusy { .. })),
        "{closed:?}"
    );
    assert!(own_file.exists());
    assert!(Segment::exists(&seg));
    let reg3 = reg.clone();
    let report = bounded(Box::new(move || {
        let report = reg3.sweep(false)?;
        assert_eq!(report.errors.len(), 1, "{report}");
        assert!(report.errors[0].contains("stayed locked"), "{report}");
        Ok(())
    }));
    report.unwrap();
    drop(stuck);
    // Free again: a new handle works, and as the last one out removes everything.
    let again = NamedMutex::open_in(&reg, &name).unwrap();
    assert!(again.close().unwrap().unlinked);
    assert!(!own_file.exists());
    assert!(!Segment::exists(&seg));
}

#[test]
fn share_modes_are_octal_and_owner_rw_is_always_kept() {
    assert_eq!(parse_share_mode("660"), Some(0o660));
    assert_eq!(parse_share_mode(" 0o666 "), Some(0o666));
    assert_eq!(parse_share_mode("0640"), Some(0o640));
    for bad in ["", "rw", "888", "1777", "-1"] {
        assert_eq!(parse_share_mode(bad), None, "{bad:?}");
    }
    let reg = Registry::at("/x").with_share_mode(Some(0o044));
    assert_eq!(reg.share_mode(), Some(0o644));
    let reg = reg.with_share_mode(Some(0o7777));
    assert_eq!(
        reg.share_mode(),
        Some(0o666),
        "no set-id, sticky or execute bits"
    );
    assert_eq!(Registry::at("/x").share_mode(), None);
}

#[test]
fn sweep_of_a_missing_root_is_clean() {
    let (reg, _clean) = registry("missing", &[]);
    let report = reg.sweep(false).unwrap();
    assert!(report.is_clean());
    assert!(report.to_string().contains("nothing stale"));
}
