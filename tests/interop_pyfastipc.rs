//! Interop with the real Python package `fastipc==0.1.5` (from PyPI, in the venv that
//! `scripts/test.sh` makes): the named mutex, semaphore and event, segments made by one
//! side and attached by the other, and the shared attachment registry.
//!
//! Skipped with a note when the peers are missing, except under `CI=true`, where that is
//! a failure.

mod sync_support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use fastipc::inspect::{MUTEX_MAGIC, SEMAPHORE_MAGIC};
use fastipc::named::{Kind, NamedEvent, NamedMutex, NamedSemaphore};
use fastipc::{LockError, Segment};
use fastipc_testkit::{ChildGuard, Lines, python};
use sync_support::World;

const LONG: Duration = Duration::from_secs(60);

/// Increments a u64 in a plain segment N times under a named mutex, with a separate read
/// and write (only the lock keeps the total exact).
const PY_MUTEX_INCR: &str = r#"
import mmap, os, struct, sys, time
from fastipc import NamedEvent, NamedMutex
name, counter, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
gate = NamedEvent(sys.argv[4]) if len(sys.argv) > 4 else None
fd = os.open("/dev/shm/" + counter, os.O_RDWR)
mm = mmap.mmap(fd, 8)
os.close(fd)
m = NamedMutex(name)
print("ready", flush=True)
# The event's wait() also returns False when the event was set before it slept (the
# futex word no longer 0), so look at the event, not at what wait() returns.
give_up = time.monotonic() + 60
while gate is not None and not gate.is_set():
    if time.monotonic() > give_up:
        sys.exit("the start gate never opened")
    gate.wait(100_000_000)
for _ in range(n):
    with m:
        v = struct.unpack_from("<Q", mm, 0)[0]
        struct.pack_into("<Q", mm, 0, v + 1)
print("done", flush=True)
"#;

#[test]
fn rust_and_python_increment_one_counter_under_one_named_mutex() {
    let Some(py) = python() else { return };
    let mut world = World::new("py-mx");
    let name = world.name(Kind::Mutex, "py-mx");
    let counter = world.segment("py-mx-counter");
    let seg = Segment::create(&counter, 8, |_| {}).unwrap();
    const N: u64 = 4_000;
    // This process takes part too; it attaches first, so that no peer finishing early
    // leaves the group empty (the last one out removes the mutex).
    let mutex = NamedMutex::open_in(&world.registry, &name).unwrap();
    // Python waits at a start gate after attaching, so its increments overlap the others'.
    let gate_name = world.name(Kind::Event, "py-mx-gate");
    let gate = NamedEvent::open_in(&world.registry, &gate_name).unwrap();
    let mut python = ChildGuard::spawn(world.python(
        &py,
        PY_MUTEX_INCR,
        &[&name, &counter, &N.to_string(), &gate_name],
    ));
    let lines = Lines::of(&mut python);
    lines.expect("ready", LONG);
    let rust = ChildGuard::spawn(world.peer(&["mutex-incr", &name, &counter, &N.to_string()]));
    gate.set();
    let cell = seg.mem().atomic_u64(0).unwrap();
    for _ in 0..N {
        // Bounded: should a peer die holding the lock (a Python holder is never taken
        // over), the test fails instead of hanging.
        let _g = mutex
            .lock_timeout(LONG)
            .expect("the lock within LONG, and nobody dies here");
        let v = cell.load(Ordering::Relaxed);
        cell.store(v + 1, Ordering::Relaxed);
    }
    assert_eq!(rust.success(LONG).trim(), "done owner-died=0");
    lines.expect("done", LONG);
    assert!(python.wait_timeout(LONG).is_some_and(|s| s.success()));
    assert_eq!(cell.load(Ordering::Acquire), 3 * N, "lost updates");
    assert!(!mutex.is_locked());
}

#[test]
fn a_rust_semaphore_posts_and_python_waits() {
    let Some(py) = python() else { return };
    let mut world = World::new("py-sem1");
    let name = world.name(Kind::Semaphore, "py-sem1");
    let sem = NamedSemaphore::open_in(&world.registry, &name, 0).unwrap();
    const N: u32 = 500;
    let script = r#"
import sys
from fastipc import NamedSemaphore
s = NamedSemaphore(sys.argv[1])
print("ready", flush=True)
got = sum(1 for _ in range(int(sys.argv[2])) if s.wait(timeout=20.0))
print("took", got, flush=True)
"#;
    let mut python = ChildGuard::spawn(world.python(&py, script, &[&name, &N.to_string()]));
    let lines = Lines::of(&mut python);
    lines.expect("ready", LONG);
    for i in 0..N {
        sem.post(1).unwrap();
        if i % 50 == 0 {
            std::thread::sleep(Duration::from_millis(1)); // let the waiter sleep sometimes
        }
    }
    lines.expect(&format!("took {N}"), LONG);
    assert!(python.wait_timeout(LONG).is_some_and(|s| s.success()));
    assert_eq!(sem.value(), 0);
}

#[test]
fn a_python_semaphore_posts_and_rust_waits() {
    let Some(py) = python() else { return };
    let mut world = World::new("py-sem2");
    let name = world.name(Kind::Semaphore, "py-sem2");
    let sem = NamedSemaphore::open_in(&world.registry, &name, 0).unwrap();
    const N: u32 = 500;
    // Two Rust waiters in other processes and one here, so that wake-ups a Python poster
    // skips (it wakes only when the count leaves 0) must be made up on the Rust side.
    let takers: Vec<ChildGuard> = (0..2)
        .map(|_| {
            ChildGuard::spawn(world.peer(&["sema-take", &name, &(N / 4).to_string(), "30000"]))
        })
        .collect();
    let script = r#"
import sys, time
from fastipc import NamedSemaphore
s = NamedSemaphore(sys.argv[1])
for i in range(int(sys.argv[2])):
    s.post(1)
    if i % 50 == 0:
        time.sleep(0.001)
print("posted", flush=True)
"#;
    let python = ChildGuard::spawn(world.python(&py, script, &[&name, &N.to_string()]));
    for _ in 0..N / 2 {
        sem.wait_timeout(Duration::from_secs(30))
            .expect("a token never arrived");
    }
    assert_eq!(python.success(LONG).trim(), "posted");
    for t in takers {
        assert_eq!(t.success(LONG).trim(), format!("took {}", N / 4));
    }
    assert_eq!(sem.value(), 0);
}

#[test]
fn a_python_event_set_wakes_a_rust_waiter() {
    let Some(py) = python() else { return };
    let mut world = World::new("py-ev1");
    let name = world.name(Kind::Event, "py-ev1");
    let event = NamedEvent::open_in(&world.registry, &name).unwrap();
    let mut waiter = ChildGuard::spawn(world.peer(&["event-wait", &name, "30000"]));
    let lines = Lines::of(&mut waiter);
    lines.expect("waiting", LONG);
    std::thread::sleep(Duration::from_millis(50));
    let script = "import sys\nfrom fastipc import NamedEvent\nNamedEvent(sys.argv[1]).set()\n";
    ChildGuard::spawn(world.python(&py, script, &[&name])).success(LONG);
    lines.expect("set", LONG);
    assert!(waiter.wait_timeout(LONG).is_some_and(|s| s.success()));
    assert!(event.is_set());
}

#[test]
fn a_rust_event_set_wakes_a_python_waiter() {
    let Some(py) = python() else { return };
    let mut world = World::new("py-ev2");
    let name = world.name(Kind::Event, "py-ev2");
    let event = NamedEvent::open_in(&world.registry, &name).unwrap();
    // The peer's wait returns False when the event is already set (its defect), hence
    // the is_set() check.
    let script = r#"
import sys
from fastipc import NamedEvent
e = NamedEvent(sys.argv[1])
print("waiting", flush=True)
woke = e.wait(30_000_000_000)
print("set" if (woke or e.is_set()) else "timeout", flush=True)
"#;
    let mut python = ChildGuard::spawn(world.python(&py, script, &[&name]));
    let lines = Lines::of(&mut python);
    lines.expect("waiting", LONG);
    std::thread::sleep(Duration::from_millis(50));
    event.set();
    lines.expect("set", LONG);
    assert!(python.wait_timeout(LONG).is_some_and(|s| s.success()));
}

#[test]
fn a_mutex_python_created_is_attached_by_rust() {
    let Some(py) = python() else { return };
    let mut world = World::new("py-mkmx");
    let name = world.name(Kind::Mutex, "py-mkmx");
    let release = world.name(Kind::Event, "py-mkmx-release");
    let release_event = NamedEvent::open_in(&world.registry, &release).unwrap();
    let script = r#"
import os, sys
from fastipc import NamedEvent, NamedMutex
m = NamedMutex(sys.argv[1])
assert m._shm.created
m.acquire()
print("locked", os.getpid(), flush=True)
NamedEvent(sys.argv[2]).wait(30_000_000_000)
m.release()
print("released", flush=True)
"#;
    let mut python = ChildGuard::spawn(world.python(&py, script, &[&name, &release]));
    let lines = Lines::of(&mut python);
    let locked = lines.next(LONG).expect("python said nothing");
    assert_eq!(locked, format!("locked {}", python.id()));

    let mutex = NamedMutex::open_existing_in(&world.registry, &name).unwrap();
    assert!(!mutex.created());
    let info = mutex.info();
    assert_eq!(info.magic, 0, "the Python creator zero-fills the header");
    assert!(info.is_locked());
    assert_eq!(info.owner_pid, python.id());
    assert!(matches!(
        mutex.lock_timeout(Duration::from_millis(50)),
        Err(LockError::TimedOut)
    ));
    release_event.set();
    let guard = mutex
        .lock_timeout(Duration::from_secs(30))
        .expect("python released it");
    lines.expect("released", LONG);
    drop(guard);
    assert!(python.wait_timeout(LONG).is_some_and(|s| s.success()));
    // Python left; this process is still registered, so the mutex is still there.
    let seg = World::segment_of(Kind::Mutex, &name);
    assert!(Segment::exists(&seg));
    assert!(mutex.close().unwrap().unlinked);
    assert!(!Segment::exists(&seg));
}

#[test]
fn objects_rust_created_are_attached_by_python() {
    let Some(py) = python() else { return };
    let mut world = World::new("py-att");
    let mx = world.name(Kind::Mutex, "py-att-mx");
    let sm = world.name(Kind::Semaphore, "py-att-sem");
    let mutex = NamedMutex::open_in(&world.registry, &mx).unwrap();
    let sem = NamedSemaphore::open_in(&world.registry, &sm, 3).unwrap();
    assert!(mutex.created() && sem.created());
    let guard = mutex.lock().unwrap();
    let script = r#"
import sys
from fastipc import NamedMutex, NamedSemaphore
m = NamedMutex(sys.argv[1])
s = NamedSemaphore(sys.argv[2], initial=99)
assert not m._shm.created and not s._shm.created
print(m._mutex.magic(), m.owner_pid(), m.try_acquire(), s._semaphore.magic(), s.value(), s.wait(timeout=5.0), s.value(), flush=True)
"#;
    let child = ChildGuard::spawn(world.python(&py, script, &[&mx, &sm]));
    let python_pid = child.id();
    let out = child.success(LONG);
    let want = format!(
        "{MUTEX_MAGIC} {} False {SEMAPHORE_MAGIC} 3 True 2",
        std::process::id()
    );
    assert_eq!(out.trim(), want);
    assert_eq!(sem.value(), 2, "the Python wait took one token");
    assert_eq!(sem.info().last_pid, python_pid);
    drop(guard);
    let script = r#"
import sys
from fastipc import NamedMutex
m = NamedMutex(sys.argv[1])
ok = m.try_acquire()
m.release()
print(ok, m.owner_pid(), flush=True)
"#;
    let out = ChildGuard::spawn(world.python(&py, script, &[&mx])).success(LONG);
    assert_eq!(out.trim(), "True 0");
    assert!(!mutex.is_locked());
    // Both Python processes left first: what Rust still uses is still there.
    assert!(Segment::exists(&World::segment_of(Kind::Mutex, &mx)));
    assert!(Segment::exists(&World::segment_of(Kind::Semaphore, &sm)));
}

#[test]
fn a_python_peer_leaving_last_does_not_unlink_what_rust_uses_and_vice_versa() {
    let Some(py) = python() else { return };
    let mut world = World::new("py-reg");
    let name = world.name(Kind::Event, "py-reg");
    let seg = World::segment_of(Kind::Event, &name);
    let release = world.name(Kind::Event, "py-reg-release");
    let release_event = NamedEvent::open_in(&world.registry, &release).unwrap();
    // Python creates and registers; Rust attaches; Python leaves first.
    let script = r#"
import os, sys
from fastipc import NamedEvent
e = NamedEvent(sys.argv[1])
print("ready", e._shm.created, flush=True)
NamedEvent(sys.argv[2]).wait(30_000_000_000)
"#;
    let mut python = ChildGuard::spawn(world.python(&py, script, &[&name, &release]));
    let lines = Lines::of(&mut python);
    lines.expect("ready True", LONG);
    let event = NamedEvent::open_existing_in(&world.registry, &name).unwrap();
    let mut pids: Vec<u32> = world
        .registry
        .attached(&seg)
        .unwrap()
        .iter()
        .map(|a| a.pid)
        .collect();
    pids.sort_unstable();
    let mut want = vec![std::process::id(), python.id()];
    want.sort_unstable();
    assert_eq!(pids, want, "both registered in the same folder");
    release_event.set();
    assert!(python.wait_timeout(LONG).is_some_and(|s| s.success()));
    // Python's close saw this process registered and left the segment alone.
    assert!(Segment::exists(&seg));
    let left: Vec<u32> = world
        .registry
        .attached(&seg)
        .unwrap()
        .iter()
        .map(|a| a.pid)
        .collect();
    assert_eq!(left, [std::process::id()]);
    event.set();
    assert!(event.is_set());

    // The other way round: Python attaches to what Rust uses, Rust leaves first, Python
    // leaves last and, being last, removes it.
    release_event.clear();
    let mut python = ChildGuard::spawn(world.python(&py, script, &[&name, &release]));
    let lines = Lines::of(&mut python);
    lines.expect("ready False", LONG);
    assert!(!event.close().unwrap().unlinked, "python is still attached");
    assert!(Segment::exists(&seg));
    release_event.set();
    assert!(python.wait_timeout(LONG).is_some_and(|s| s.success()));
    assert!(
        !Segment::exists(&seg),
        "the last one out (python) removed it"
    );
    assert!(!world.registry.pids_dir(&seg).exists());
}
