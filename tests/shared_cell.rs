//! `SharedCell<T>` between real processes (the `peer-cell` binary): updates under the
//! lock lose nothing, another message type is refused naming both types, a holder killed
//! with SIGKILL is reported with `OwnerDied`, the registry cleans up; and
//! `#[ipc(shared = "NAME")]`'s generated `T::shared()`.

mod cell_messages;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use cell_messages::{HALF_DONE, Tally};
use fastipc::named::Kind;
use fastipc::named::cell::segment_name;
use fastipc::named::registry::Registry;
use fastipc::{IpcMessage, NamedEvent, Segment, SharedCell, SharedCellError};
use fastipc_testkit::{ChildGuard, Lines, ShmCleanup, unique_name};

/// Generous: the machine has two vCPUs shared with other builds.
const LONG: Duration = Duration::from_secs(60);

/// One test's registry directory and cell names, removed when the test ends (even when
/// it fails).
struct World {
    registry: Registry,
    dir: PathBuf,
    cleanup: ShmCleanup,
}

impl World {
    fn new(tag: &str) -> World {
        let dir = std::env::temp_dir().join(unique_name(&format!("{tag}-reg")));
        let mut cleanup = ShmCleanup::new();
        cleanup.add_dir(&dir);
        World {
            registry: Registry::at(&dir),
            dir,
            cleanup,
        }
    }

    /// A fresh cell name (its segment is removed when the world ends) and its segment.
    fn cell(&mut self, tag: &str) -> (String, String) {
        let name = unique_name(tag);
        let segment = segment_name(&name).expect("valid name");
        self.cleanup.add_segment(&segment);
        (name, segment)
    }

    /// A fresh named event (removed when the world ends), opened here.
    fn event(&mut self, tag: &str) -> (String, NamedEvent) {
        let name = unique_name(tag);
        self.cleanup
            .add_segment(fastipc::named::segment_name(Kind::Event, &name).expect("valid name"));
        let event = NamedEvent::open_in(&self.registry, &name).unwrap();
        (name, event)
    }

    /// The peer with `args`, registering in this world's registry.
    fn peer(&self, args: &[&str]) -> ChildGuard {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_peer-cell"));
        cmd.args(args).env("FASTIPC_PID_DIR", &self.dir);
        ChildGuard::spawn(cmd)
    }

    /// A peer that holds the cell's lock (mid-update) until killed; returned once it does.
    fn holder(&self, name: &str) -> (ChildGuard, Lines) {
        let mut holder = self.peer(&["hold", name]);
        let lines = Lines::of(&mut holder);
        lines.expect("locked", LONG);
        (holder, lines)
    }
}

#[test]
fn three_processes_update_one_cell_without_losing_an_update() {
    let mut world = World::new("cell3");
    let (name, segment) = world.cell("cell3");
    let cell = SharedCell::<Tally>::open_or_create_in(&world.registry, &name).unwrap();
    assert!(cell.created());
    const N: u64 = 20_000;
    let go = world.event("cell3-go");
    let mut peers: Vec<(ChildGuard, Lines)> = (0..3)
        .map(|i| {
            let mut peer = world.peer(&["incr", &name, &i.to_string(), &N.to_string(), &go.0]);
            let lines = Lines::of(&mut peer);
            (peer, lines)
        })
        .collect();
    for (_, lines) in &peers {
        lines.expect("ready", LONG);
    }
    go.1.set();
    let pids: Vec<u32> = peers.iter().map(|(peer, _)| peer.id()).collect();
    for (peer, lines) in &mut peers {
        lines.expect("done owner-died=0", LONG);
        assert!(peer.wait_timeout(LONG).is_some_and(|s| s.success()));
    }
    let tally = cell.load().unwrap();
    assert_eq!(tally.total, 3 * N, "lost or duplicated updates: {tally:?}");
    assert_eq!(tally.per_peer, [N, N, N, 0]);
    assert_eq!(tally.double, 2 * tally.total, "a torn update: {tally:?}");
    assert!(pids.contains(&tally.last_pid), "{tally:?}");
    // The peers left; this process is the last one registered, and its close removes all.
    let attached: Vec<u32> = world
        .registry
        .attached(&segment)
        .unwrap()
        .iter()
        .map(|a| a.pid)
        .collect();
    assert_eq!(attached, [std::process::id()]);
    assert!(cell.close().unwrap().unlinked);
    assert!(!Segment::exists(&segment));
    assert!(!world.registry.pids_dir(&segment).exists());
}

#[test]
fn another_process_attaching_with_another_type_gets_an_error_naming_both() {
    let mut world = World::new("cell-type");
    let (name, segment) = world.cell("cell-type");
    let cell = SharedCell::<Tally>::open_or_create_in(&world.registry, &name).unwrap();
    let peer = world.peer(&["open-other", &name]);
    let message = peer.success(LONG);
    assert!(
        message.contains("`Tally`") && message.contains("`Other`"),
        "{message}"
    );
    assert!(message.contains(&format!("{:#018x}", Tally::FINGERPRINT)));
    // In this process too, as a typed error.
    let err = SharedCell::<u64>::open_in(&world.registry, &name).unwrap_err();
    assert!(
        matches!(
            &err,
            SharedCellError::TypeMismatch { expected: "u64", found, .. } if found == "Tally"
        ),
        "{err:?}"
    );
    // The refused attachments left the cell alone and registered nobody.
    assert_eq!(world.registry.attached(&segment).unwrap().len(), 1);
    cell.store(&Tally {
        total: 1,
        per_peer: [1, 0, 0, 0],
        double: 2,
        last_pid: 0,
        _pad: 0,
    })
    .unwrap();
    assert!(cell.close().unwrap().unlinked);
}

#[test]
fn a_holder_killed_with_sigkill_is_reported_to_the_next_locker() {
    let mut world = World::new("cell-kill");
    let (name, segment) = world.cell("cell-kill");
    let cell = SharedCell::<Tally>::open_or_create_in(&world.registry, &name).unwrap();
    let (mut holder, _lines) = world.holder(&name);
    let holder_pid = holder.id();
    assert!(cell.is_locked());
    assert_eq!(cell.mutex().owner_pid(), Some(holder_pid));
    assert!(cell.try_lock().is_none());
    holder.kill(); // SIGKILL and reap

    // A lock with no deadline, on a thread: only the periodic owner check can end this
    // wait (a timed lock would also check once when its deadline passes). The bound is on
    // how long the test waits, not a claim about speed.
    let (tx, rx) = std::sync::mpsc::channel();
    let locker = std::thread::spawn(move || {
        let outcome = match cell.lock() {
            Ok(_guard) => Err("locked without OwnerDied".to_owned()),
            Err(died) => {
                let dead_pid = died.dead_pid();
                // The guard shows the torn update the holder left, and repairs it.
                let mut guard = died.into_guard();
                let left = (guard.total, guard.double);
                *guard = Tally {
                    total: 0,
                    per_peer: [0; 4],
                    double: 0,
                    last_pid: 0,
                    _pad: 0,
                };
                Ok((dead_pid, left))
            }
        };
        let _ = tx.send(outcome);
        cell
    });
    let outcome = rx
        .recv_timeout(LONG)
        .expect("the killed holder's lock was never taken over (no periodic owner check?)");
    let cell = locker.join().unwrap();
    let (dead_pid, (total, double)) = outcome.unwrap();
    assert_eq!(dead_pid, holder_pid);
    assert_eq!(total, HALF_DONE);
    assert_ne!(double, 2 * total, "the holder was killed mid-update");
    // From here on the cell works normally, for this process and others.
    assert_eq!(cell.load().unwrap().total, 0);
    let go = world.event("cell-kill-go");
    go.1.set();
    let peer = world.peer(&["incr", &name, "1", "100", &go.0]);
    assert_eq!(peer.success(LONG), "ready\ndone owner-died=0\n");
    let tally = cell.load().unwrap();
    assert_eq!(
        (tally.total, tally.per_peer[1], tally.double),
        (100, 100, 200)
    );
    // The dead holder's registration does not keep the cell alive.
    assert!(cell.close().unwrap().unlinked);
    assert!(!Segment::exists(&segment));
}

#[test]
fn lock_deadline_accepts_an_instant() {
    let mut world = World::new("cell-instant");
    let (name, _) = world.cell("cell-instant");
    let a = SharedCell::<Tally>::open_or_create_in(&world.registry, &name).unwrap();
    let b = SharedCell::<Tally>::open_in(&world.registry, &name).unwrap();
    let guard = a
        .lock_deadline(std::time::Instant::now() + LONG)
        .expect("a free lock");
    assert!(matches!(
        b.lock_deadline(std::time::Instant::now()),
        Err(fastipc::LockError::TimedOut)
    ));
    drop(guard);
}

#[test]
fn a_cell_whose_processes_all_died_is_removed_by_sweep() {
    let mut world = World::new("cell-sweep");
    let (name, segment) = world.cell("cell-sweep");
    let (mut holder, _lines) = world.holder(&name);
    let pid = holder.id();
    holder.kill();
    assert!(Segment::exists(&segment));
    let report = world.registry.sweep(false).unwrap();
    assert_eq!(
        report.removed_segments,
        std::slice::from_ref(&segment),
        "{report}"
    );
    assert_eq!(report.dead_entries.len(), 1);
    assert_eq!(report.dead_entries[0].pid, pid);
    assert!(!Segment::exists(&segment));
    assert!(!world.registry.pids_dir(&segment).exists());
}

/// The name `#[ipc(shared = ..)]` gives below. Fixed at compile time, so another run of
/// this test (another checkout, at the same moment) may share the cell: the assertions
/// hold whatever such a run does, which is only ever to add to `seq` under the lock.
const DERIVED: &str = "fipct-shared-cell-derive";

#[derive(IpcMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
#[ipc(shared = "fipct-shared-cell-derive")]
struct Heartbeat {
    seq: u64,
    writer: u32,
    _pad: u32,
}

#[test]
fn the_shared_attribute_opens_the_named_cell() {
    let segment = segment_name(DERIVED).unwrap();
    let a = Heartbeat::shared().expect("T::shared() opens or creates the cell");
    let b = SharedCell::<Heartbeat>::open_or_create(DERIVED).unwrap();
    assert_eq!(a.name(), DERIVED);
    assert!(Segment::exists(&segment));
    let info = a.info();
    assert_eq!(info.value_type.fingerprint, Heartbeat::FINGERPRINT);
    assert_eq!(info.value_type.name, "Heartbeat");

    let me = std::process::id();
    let seq = {
        let mut guard = a.lock().unwrap_or_else(|died| died.into_guard());
        // Both handles are the same cell: its lock is held through `a`.
        assert!(b.try_lock().is_none());
        guard.seq += 1;
        guard.writer = me;
        guard.seq
    };
    let seen = b.load().unwrap_or_else(|died| *died.into_guard());
    assert!(seen.seq >= seq, "{seen:?} after writing {seq}");
    if seen.writer == me {
        assert_eq!(seen.seq, seq);
    }
    drop((a, b));
    // Another run may still hold it; when none does, the last handle removed it.
}
