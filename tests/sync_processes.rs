//! The named sync objects between real processes (the `peer-sync` binary): mutual
//! exclusion, token conservation, events, killed holders, and the attachment registry.

mod sync_support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use fastipc::named::{Kind, NamedEvent, NamedMutex, NamedSemaphore};
use fastipc::{LockError, Segment};
use fastipc_testkit::{ChildGuard, Lines, wait_until};
use sync_support::World;

/// Generous: the machine has two vCPUs shared with other builds.
const LONG: Duration = Duration::from_secs(60);

#[test]
fn three_processes_exclude_each_other_under_a_named_mutex() {
    let mut world = World::new("mx3");
    let name = world.name(Kind::Mutex, "mx3");
    let counter = world.segment("mx3-counter");
    let seg = Segment::create(&counter, 8, |_| {}).unwrap();
    const N: u64 = 5_000;
    let peers: Vec<ChildGuard> = (0..3)
        .map(|_| ChildGuard::spawn(world.peer(&["mutex-incr", &name, &counter, &N.to_string()])))
        .collect();
    for peer in peers {
        let out = peer.success(LONG);
        assert_eq!(out.trim(), "done owner-died=0");
    }
    let total = seg.mem().atomic_u64(0).unwrap().load(Ordering::Acquire);
    assert_eq!(total, 3 * N, "lost or duplicated updates");
    // Every peer left: nothing of the mutex remains.
    assert!(!Segment::exists(&World::segment_of(Kind::Mutex, &name)));
    assert!(
        !world
            .registry
            .pids_dir(&World::segment_of(Kind::Mutex, &name))
            .exists()
    );
}

#[test]
fn semaphore_tokens_are_conserved_across_processes() {
    let mut world = World::new("sem");
    let name = world.name(Kind::Semaphore, "sem");
    // Keep the semaphore alive between the peers.
    let sem = NamedSemaphore::open_in(&world.registry, &name, 0).unwrap();
    const PER_POSTER: u32 = 3_000;
    let takers: Vec<ChildGuard> = (0..2)
        .map(|_| {
            ChildGuard::spawn(world.peer(&["sema-take", &name, &PER_POSTER.to_string(), "30000"]))
        })
        .collect();
    let posters: Vec<ChildGuard> = (0..2)
        .map(|_| ChildGuard::spawn(world.peer(&["sema-post", &name, &PER_POSTER.to_string()])))
        .collect();
    for p in posters {
        assert_eq!(p.success(LONG).trim(), format!("posted {PER_POSTER}"));
    }
    for t in takers {
        assert_eq!(t.success(LONG).trim(), format!("took {PER_POSTER}"));
    }
    // As many taken as posted: none left over (duplicated) and none missing (lost).
    assert_eq!(sem.value(), 0);
    assert!(!sem.try_wait());
    assert_eq!(sem.info().sleepers, 0);
}

#[test]
fn an_event_wakes_every_waiting_process() {
    let mut world = World::new("evt");
    let name = world.name(Kind::Event, "evt");
    let event = NamedEvent::open_in(&world.registry, &name).unwrap();
    let mut waiters: Vec<(ChildGuard, Lines)> = (0..3)
        .map(|_| {
            let mut child = ChildGuard::spawn(world.peer(&["event-wait", &name, "30000"]));
            let lines = Lines::of(&mut child);
            (child, lines)
        })
        .collect();
    for (_, lines) in &waiters {
        lines.expect("waiting", LONG);
    }
    // Give them a moment to go to sleep on the futex (not needed for correctness).
    std::thread::sleep(Duration::from_millis(50));
    event.set();
    for (child, lines) in &mut waiters {
        lines.expect("set", LONG);
        assert!(child.wait_timeout(LONG).is_some_and(|s| s.success()));
    }
}

/// Spawns a peer that locks `name` and waits to be killed; returns it once it holds the
/// lock.
fn spawn_holder(world: &World, name: &str) -> (ChildGuard, Lines) {
    let mut holder = ChildGuard::spawn(world.peer(&["mutex-hold", name]));
    let lines = Lines::of(&mut holder);
    lines.expect("locked", LONG);
    (holder, lines)
}

#[test]
fn a_holder_killed_with_sigkill_is_recovered_with_owner_died() {
    let mut world = World::new("kill");
    let name = world.name(Kind::Mutex, "kill");
    let mutex = NamedMutex::open_in(&world.registry, &name).unwrap();
    let (mut holder, _lines) = spawn_holder(&world, &name);
    let holder_pid = holder.id();
    assert_eq!(mutex.owner_pid(), Some(holder_pid));
    assert!(mutex.try_lock().is_none());
    holder.kill(); // SIGKILL and reap

    // A lock with no deadline: only the periodic owner check can end this wait (a timed
    // lock would also check once when its deadline passes). The bound is on how long the
    // test waits, not a claim about speed: detection takes one check interval.
    let (tx, rx) = std::sync::mpsc::channel();
    let locker = std::thread::spawn(move || {
        let outcome = match mutex.lock() {
            Ok(_guard) => Err("locked without OwnerDied".to_owned()),
            Err(died) => Ok((died.dead_pid(), mutex.owner_pid())),
        };
        let _ = tx.send(outcome);
        mutex
    });
    let outcome = rx
        .recv_timeout(LONG)
        .expect("the killed holder's lock was never taken over (no periodic owner check?)");
    let mutex = locker.join().unwrap();
    assert_eq!(
        outcome,
        Ok((holder_pid, Some(std::process::id()))),
        "the takeover reports the dead holder and records this process"
    );
    // From here on the mutex works normally.
    assert!(!mutex.is_locked());
    drop(mutex.lock().expect("a plain lock after recovery"));
    let counter = world.segment("kill-counter");
    let seg = Segment::create(&counter, 8, |_| {}).unwrap();
    let peer = ChildGuard::spawn(world.peer(&["mutex-incr", &name, &counter, "100"]));
    assert_eq!(peer.success(LONG).trim(), "done owner-died=0");
    assert_eq!(
        seg.mem().atomic_u64(0).unwrap().load(Ordering::Acquire),
        100
    );
}

#[test]
fn a_killed_holder_left_as_a_zombie_counts_as_dead() {
    let mut world = World::new("zombie");
    let name = world.name(Kind::Mutex, "zombie");
    let mutex = NamedMutex::open_in(&world.registry, &name).unwrap();
    let (mut holder, _lines) = spawn_holder(&world, &name);
    // SIGKILL without reaping: the holder stays a zombie until the guard drops.
    holder.child_mut().kill().unwrap();
    let result = mutex.lock_timeout(Duration::from_secs(30));
    assert!(
        matches!(result, Err(LockError::OwnerDied(ref d)) if d.dead_pid() == holder.id()),
        "{result:?}"
    );
}

#[test]
fn exactly_one_of_several_waiting_processes_recovers_a_dead_holders_lock() {
    let mut world = World::new("race");
    let name = world.name(Kind::Mutex, "race");
    let (mut holder, _lines) = spawn_holder(&world, &name);
    let holder_pid = holder.id();
    let mut waiters: Vec<(ChildGuard, Lines)> = (0..3)
        .map(|_| {
            let mut child = ChildGuard::spawn(world.peer(&["mutex-lock", &name, "30000"]));
            let lines = Lines::of(&mut child);
            (child, lines)
        })
        .collect();
    for (_, lines) in &waiters {
        lines.expect("waiting", LONG);
    }
    std::thread::sleep(Duration::from_millis(50));
    holder.kill();
    let mut results = Vec::new();
    for (child, lines) in &mut waiters {
        let line = lines.next(LONG).expect("a waiter said nothing");
        assert!(child.wait_timeout(LONG).is_some_and(|s| s.success()));
        results.push(line);
    }
    results.sort();
    assert_eq!(
        results,
        [
            "ok".to_owned(),
            "ok".into(),
            format!("owner-died {holder_pid}")
        ],
        "exactly one takeover, the others lock normally afterwards"
    );
}

#[test]
fn the_registry_is_empty_after_every_process_closes() {
    let mut world = World::new("reg");
    let names: Vec<(Kind, String)> = [Kind::Mutex, Kind::Semaphore, Kind::Event]
        .into_iter()
        .map(|k| (k, world.name(k, "reg")))
        .collect();
    let release = world.name(Kind::Event, "reg-release");
    let release_event = NamedEvent::open_in(&world.registry, &release).unwrap();
    let mut peers = Vec::new();
    for (kind, name) in &names {
        let mut peer = ChildGuard::spawn(world.peer(&["hold", kind.as_str(), name, &release]));
        let lines = Lines::of(&mut peer);
        lines.expect("ready", LONG);
        peers.push((peer, lines));
    }
    // This process attaches too, then leaves first: the peers keep the objects alive.
    let m = NamedMutex::open_in(&world.registry, &names[0].1).unwrap();
    let s = NamedSemaphore::open_in(&world.registry, &names[1].1, 0).unwrap();
    let e = NamedEvent::open_in(&world.registry, &names[2].1).unwrap();
    for (kind, name) in &names {
        let seg = World::segment_of(*kind, name);
        let pids: Vec<u32> = world
            .registry
            .attached(&seg)
            .unwrap()
            .iter()
            .map(|a| a.pid)
            .collect();
        assert_eq!(pids.len(), 2, "{seg}: {pids:?}");
    }
    assert!(!m.close().unwrap().unlinked);
    assert!(!s.close().unwrap().unlinked);
    assert!(!e.close().unwrap().unlinked);
    for (kind, name) in &names {
        assert!(Segment::exists(&World::segment_of(*kind, name)));
    }
    release_event.set();
    for (peer, lines) in &mut peers {
        lines.expect("closed", LONG);
        assert!(peer.wait_timeout(LONG).is_some_and(|s| s.success()));
    }
    for (kind, name) in &names {
        let seg = World::segment_of(*kind, name);
        assert!(!Segment::exists(&seg), "{seg} left behind");
        assert!(
            !world.registry.pids_dir(&seg).exists(),
            "{seg}'s folder left behind"
        );
    }
    assert!(release_event.close().unwrap().unlinked);
    let report = world.registry.sweep(false).unwrap();
    assert!(report.is_clean(), "{report}");
}

#[test]
fn a_crashed_process_is_cleaned_up_by_sweep() {
    let mut world = World::new("sweep");
    let name = world.name(Kind::Mutex, "sweep");
    let live_name = world.name(Kind::Semaphore, "sweep-live");
    let seg = World::segment_of(Kind::Mutex, &name);
    let live_seg = World::segment_of(Kind::Semaphore, &live_name);
    let (mut holder, _lines) = spawn_holder(&world, &name);
    let dead_pid = holder.id();
    holder.kill();
    // An object still in use by this (live) process must survive the sweep.
    let live = NamedSemaphore::open_in(&world.registry, &live_name, 0).unwrap();
    assert!(Segment::exists(&seg));

    let dry = world.registry.sweep(true).unwrap();
    assert!(dry.dry_run);
    assert_eq!(dry.dead_entries.len(), 1);
    assert_eq!(
        (
            dry.dead_entries[0].segment.as_str(),
            dry.dead_entries[0].pid
        ),
        (seg.as_str(), dead_pid)
    );
    assert_eq!(dry.removed_segments, std::slice::from_ref(&seg));
    assert!(Segment::exists(&seg), "a dry run removes nothing");
    assert!(
        world
            .registry
            .pids_dir(&seg)
            .join(dead_pid.to_string())
            .exists()
    );

    let report = world.registry.sweep(false).unwrap();
    assert_eq!(
        report.removed_segments,
        std::slice::from_ref(&seg),
        "{report}"
    );
    assert_eq!(report.dead_entries.len(), 1);
    assert!(report.in_use.iter().any(|u| u.segment == live_seg));
    assert!(!Segment::exists(&seg));
    assert!(!world.registry.pids_dir(&seg).exists());
    assert!(Segment::exists(&live_seg));
    assert!(
        report
            .to_string()
            .contains(&format!("removed segment {seg}"))
    );

    assert!(world.registry.sweep(false).unwrap().dead_entries.is_empty());
    assert!(live.close().unwrap().unlinked);
    assert!(wait_until(LONG, || !Segment::exists(&live_seg)));
}
