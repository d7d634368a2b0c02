//! Unit tests of the mutex: the state machine, wake-ups, and dead-owner takeovers.

use super::*;
use crate::region::Region;
use crate::sys::process::test_util::Zombie;
use crate::sys::process::{self, ProcessId};
use std::sync::atomic::Ordering;
use std::time::Instant;

fn region() -> Region {
    let r = Region::heap(MUTEX_SIZE);
    Mutex::init(r.mem()).unwrap();
    r
}

#[test]
fn lock_unlock_records_and_clears_the_owner() {
    let r = region();
    let m = Mutex::attach(r.mem()).unwrap();
    assert_eq!(m.owner_pid(), None);
    let g = m.lock().unwrap();
    let info = m.info();
    assert_eq!(info.state, MUTEX_LOCKED);
    assert_eq!(info.owner_pid, std::process::id());
    assert_eq!(info.owner_identity.unwrap().pid, std::process::id());
    assert_eq!(info.magic, MUTEX_MAGIC);
    drop(g);
    let info = m.info();
    assert_eq!(info.state, MUTEX_UNLOCKED);
    assert_eq!(info.owner_pid, 0);
    assert_eq!(info.owner_identity, None);
}

#[test]
fn try_lock_and_timeouts_when_held() {
    let r = region();
    let m = Mutex::attach(r.mem()).unwrap();
    let g = m.try_lock().unwrap();
    assert!(m.try_lock().is_none());
    assert!(m.lock_timeout(Duration::ZERO).unwrap_err().is_timeout());
    let start = Instant::now();
    assert!(matches!(
        m.lock_timeout(Duration::from_millis(30)),
        Err(LockError::TimedOut)
    ));
    assert!(start.elapsed() >= Duration::from_millis(30));
    g.unlock();
    drop(m.lock_timeout(Duration::ZERO).unwrap());
    drop(m.lock_timeout(Duration::MAX).unwrap());
}

#[test]
fn attach_accepts_python_zero_magic_and_refuses_foreign_headers() {
    let r = Region::heap(MUTEX_SIZE);
    assert!(
        Mutex::attach(r.mem()).is_ok(),
        "zero-filled (Python-made) header"
    );
    r.mem()
        .atomic_u32(0)
        .unwrap()
        .store(0x1234_5678, Ordering::Relaxed);
    assert!(matches!(
        Mutex::attach(r.mem()),
        Err(SyncError::ForeignHeader {
            found: 0x1234_5678,
            ..
        })
    ));
    // init overwrites whatever was there.
    r.mem().atomic_u32(8).unwrap().store(2, Ordering::Relaxed);
    let m = Mutex::init(r.mem()).unwrap();
    assert!(!m.is_locked());
}

#[test]
fn short_and_misaligned_buffers_are_errors() {
    let mut buf = [0u64; 9];
    let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut buf);
    assert!(matches!(
        Mutex::init(MemRef::from_mut(&mut bytes[..63])),
        Err(SyncError::Buffer {
            object: "mutex",
            ..
        })
    ));
    assert!(matches!(
        Mutex::attach(MemRef::from_mut(&mut bytes[1..])),
        Err(SyncError::Buffer { .. })
    ));
    // 4-aligned, not 8-aligned: fine, the identity moves to offset 28.
    let m = Mutex::init(MemRef::from_mut(&mut bytes[4..68])).unwrap();
    let _g = m.lock().unwrap();
    assert_eq!(m.info().owner_identity.unwrap().pid, std::process::id());
}

/// Runs `f` on a thread of its own and returns its result; fails the test if `f`
/// has not returned within `limit`. Unit tests check owners only once an hour (see
/// `owner_check_interval`), so a lost wake-up leaves a waiter asleep and this turns
/// the hang into a failure. A bound on a wait, not a speed claim: the work itself
/// takes milliseconds.
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(v) => {
            thread.join().unwrap();
            v
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("not done within {limit:?}: a waiter was never woken (lost wake-up?)")
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => panic!("the test panicked"),
    }
}

/// Whether thread `tid` of this process is asleep (state `S`).
fn thread_sleeps(tid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/stat"))
        .ok()
        .and_then(|s| Some(s[s.rfind(')')? + 1..].trim_start().starts_with('S')))
        .unwrap_or(false)
}

#[test]
#[cfg_attr(miri, ignore = "reads /proc/self/task: not under Miri")]
fn unlock_wakes_a_sleeping_thread() {
    // Owned by the closure (not borrowed), so that the watchdog may outlive the test.
    let r = region();
    within(Duration::from_secs(60), move || {
        let m = Mutex::attach(r.mem()).unwrap();
        let g = m.lock().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::scope(|s| {
            let t = s.spawn(move || {
                tx.send(rustix::thread::gettid().as_raw_nonzero().get())
                    .unwrap();
                drop(m.lock().unwrap()); // no deadline: only a wake-up ends it
            });
            // Unlock only once the waiter sleeps in FUTEX_WAIT (state 2, thread
            // asleep), so that nothing but the unlock's wake can end its sleep.
            let tid = rx.recv().unwrap();
            let deadline = Instant::now() + Duration::from_secs(20);
            while !(m.info().state == MUTEX_CONTENDED && thread_sleeps(tid)) {
                assert!(Instant::now() < deadline, "the waiter never slept");
                std::thread::sleep(Duration::from_millis(1));
            }
            drop(g);
            t.join().unwrap();
        });
    });
}

#[test]
fn private_scope_works_between_threads() {
    // Owned by the closure (not borrowed), so that the watchdog may outlive the test.
    let r = region();
    let total = within(Duration::from_secs(120), move || {
        let m = Mutex::attach(r.mem()).unwrap().with_scope(Scope::Private);
        let cell = std::sync::atomic::AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    for i in 0..if cfg!(miri) { 40 } else { 2000 } {
                        let _g = m.lock().unwrap();
                        let v = cell.load(Ordering::Relaxed);
                        if i % 50 == 0 {
                            // Hold the lock across a yield now and then, so that the
                            // others spin out and sleep on the state word.
                            std::thread::yield_now();
                        }
                        cell.store(v + 1, Ordering::Relaxed);
                    }
                });
            }
        });
        cell.load(Ordering::Relaxed)
    });
    assert_eq!(total, if cfg!(miri) { 120 } else { 6000 });
}

/// This process's pid namespace (readable wherever these tests run).
fn my_ns() -> u32 {
    process::pid_namespace()
        .expect("/proc/self/ns/pid is readable")
        .get()
}

/// Makes `m` look held by a fastipc process: state 1, `owner_pid`, identity and pid
/// namespace as given.
fn fake_holder(m: &Mutex<'_>, owner_pid: u32, identity: OwnerIdentity, ns: u32) {
    test_util::fake_holder(m, owner_pid, identity, ns);
}

/// Makes `m` look held by no recorded fastipc holder (token unpublished).
fn unpublish(m: &Mutex<'_>) {
    let t = m.token().load(Ordering::Relaxed);
    m.token()
        .store(t & !MUTEX_TOKEN_PUBLISHED, Ordering::Relaxed);
}

/// The identity of an exited, unreaped child: dead, and its id not reusable while
/// `zombie` lives.
fn identity_of(zombie: &Zombie) -> OwnerIdentity {
    let id = ProcessId::of(zombie.pid()).unwrap();
    OwnerIdentity {
        pid: id.pid,
        start_time_low: id.start_time as u32,
    }
}

#[test]
#[cfg_attr(miri, ignore = "makes a zombie process: not under Miri")]
fn a_dead_fastipc_holder_is_recovered_by_exactly_one_of_several_waiters() {
    let r = region();
    let m = Mutex::attach(r.mem()).unwrap();
    let dead = Zombie::new();
    // A fastipc holder whose owner_pid a Python peer erased: only the identity names it.
    fake_holder(&m, 0, identity_of(&dead), my_ns());
    let results: Vec<bool> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    test_knob::short_owner_checks();
                    match m.lock_timeout(Duration::from_secs(20)) {
                        Ok(_guard) => false,
                        Err(LockError::OwnerDied(died)) => {
                            assert_eq!(died.dead_pid(), dead.pid());
                            // Hold it a little so the others really wait on us.
                            std::thread::sleep(Duration::from_millis(30));
                            true
                        }
                        Err(LockError::TimedOut) => panic!("timed out"),
                    }
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert_eq!(
        results.iter().filter(|&&died| died).count(),
        1,
        "{results:?}"
    );
    assert!(!m.is_locked());
    assert_eq!(m.info().owner_identity, None);
}

#[test]
#[cfg_attr(miri, ignore = "makes a zombie process: not under Miri")]
fn a_dead_owner_is_recovered_once_and_records_the_new_holder() {
    test_knob::short_owner_checks();
    let r = region();
    let m = Mutex::attach(r.mem()).unwrap();
    let dead = Zombie::new();
    fake_holder(&m, dead.pid(), identity_of(&dead), my_ns());
    let err = m.lock_timeout(Duration::from_secs(10)).unwrap_err();
    let LockError::OwnerDied(died) = err else {
        panic!("expected OwnerDied, got {err:?}")
    };
    assert_eq!(died.dead_pid(), dead.pid());
    let info = m.info();
    assert_eq!(info.owner_pid, std::process::id());
    assert_eq!(info.owner_identity.unwrap().pid, std::process::id());
    assert_eq!(info.owner_pid_namespace, my_ns());
    drop(died.into_guard());
    assert!(!m.is_locked());
    drop(m.lock().unwrap());
}

#[test]
#[cfg_attr(miri, ignore = "makes a zombie process: not under Miri")]
fn a_holder_known_only_by_its_process_id_is_never_taken_over() {
    // As a Python holder is: `owner_pid` alone, no namespace. Even a dead id (a
    // zombie here) may name a live process of another pid namespace.
    let r = region();
    let m = Mutex::attach(r.mem()).unwrap();
    let dead = Zombie::new();
    m.state().store(MUTEX_LOCKED, Ordering::Relaxed);
    m.owner().store(dead.pid(), Ordering::Relaxed);
    assert!(m.lock_timeout(Duration::ZERO).unwrap_err().is_timeout());
    assert_eq!(m.owner_pid(), Some(dead.pid()));
}

#[test]
#[cfg_attr(miri, ignore = "makes a zombie process: not under Miri")]
fn a_holder_of_another_or_an_unknown_pid_namespace_is_never_taken_over() {
    let r = region();
    let m = Mutex::attach(r.mem()).unwrap();
    let dead = Zombie::new();
    for ns in [0, my_ns() ^ 1] {
        // The id names an exited process *here*; in its own namespace it may run.
        fake_holder(&m, dead.pid(), identity_of(&dead), ns);
        assert!(
            m.lock_timeout(Duration::ZERO).unwrap_err().is_timeout(),
            "namespace {ns}"
        );
        // A stale identity of that namespace is not cleared either.
        m.owner()
            .store(std::os::unix::process::parent_id(), Ordering::Relaxed);
        assert!(m.lock_timeout(Duration::ZERO).unwrap_err().is_timeout());
        assert_eq!(m.info().owner_identity, Some(identity_of(&dead)));
    }
    // The same holder in our own namespace is dead.
    fake_holder(&m, dead.pid(), identity_of(&dead), my_ns());
    assert!(matches!(
        m.lock_timeout(Duration::ZERO),
        Err(LockError::OwnerDied(_))
    ));
}

/// Finding 4 of issue 10, interleaved deterministically. A live fastipc holder H of
/// another pid namespace holds the lock (its pid, here that of a zombie, names an
/// exited process in ours). A waiter W reads H's token and pid; H unlocks, and H2,
/// of W's namespace (its `owner_pid` erased by a Python peer), locks; W reads H2's
/// namespace and so judges H's pid in its own namespace: dead. Before W's
/// compare-and-swap, H2 unlocks and H relocks. The old takeover compared the identity
/// word, which H's relock wrote again, and took H's live lock; the token's generation
/// makes the relock a new value, so the takeover fails.
#[test]
#[cfg_attr(miri, ignore = "makes a zombie process: not under Miri")]
fn a_relock_by_the_same_live_holder_is_not_taken_over() {
    // 'static: the hook is a boxed closure that uses the mutex.
    let r: &'static Region = Box::leak(Box::new(region()));
    let m = Mutex::attach(r.mem()).unwrap();
    let zombie = Zombie::new();
    let h = identity_of(&zombie);
    let other_ns = my_ns() ^ 1;
    let parent = std::os::unix::process::parent_id();
    let h2 = OwnerIdentity {
        pid: parent,
        start_time_low: ProcessId::of(parent).unwrap().start_time as u32,
    };
    fake_holder(&m, h.pid, h, other_ns);
    let steps = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let seen = steps.clone();
    test_hook::HOOK.with(|hook| {
        *hook.borrow_mut() = Some(Box::new(move |step| {
            seen.borrow_mut().push(step);
            match step {
                test_hook::Step::SnapshotHalfRead => {
                    m.release(); // H unlocks
                    fake_holder(&m, 0, h2, my_ns()); // H2 locks
                }
                test_hook::Step::BeforeTakeover => {
                    m.release(); // H2 unlocks
                    fake_holder(&m, h.pid, h, other_ns); // H relocks
                }
            }
        }));
    });
    let result = m.lock_timeout(Duration::ZERO);
    test_hook::HOOK.with(|hook| hook.borrow_mut().take());
    assert_eq!(
        *steps.borrow(),
        [
            test_hook::Step::SnapshotHalfRead,
            test_hook::Step::BeforeTakeover
        ],
        "the waiter judged H dead, as the interleaving intends"
    );
    assert!(
        result.as_ref().is_err_and(LockError::is_timeout),
        "the live holder's lock was taken over: {result:?}"
    );
    let info = m.info();
    assert_eq!(info.owner_identity, Some(h));
    assert_eq!(info.owner_pid_namespace, other_ns);
    assert_eq!(info.owner_pid, h.pid);
}

/// A token left published by a holder that never ran a fastipc unlock (a Python
/// peer force-released its lock): the next fastipc locker claims it and records
/// itself; if a waiter cleared it meanwhile the lock is still the locker's; if a
/// waiter took it over first, the locker leaves the lock to that waiter.
#[test]
fn a_stale_token_is_claimed_or_left_to_the_waiter_that_took_it_over() {
    let r = region();
    let m = Mutex::attach(r.mem()).unwrap();
    let me = std::process::id();
    let gone = OwnerIdentity {
        pid: me.wrapping_add(1),
        start_time_low: 7,
    };
    let stale_lock = |m: &Mutex<'_>| {
        fake_holder(m, 0, gone, my_ns());
        m.state().store(MUTEX_UNLOCKED, Ordering::Relaxed);
        m.token().load(Ordering::Relaxed)
    };
    // No race: the locker claims the stale token and records itself.
    let stale = stale_lock(&m);
    let g = m.try_lock().expect("free");
    assert_eq!(m.info().owner_identity.map(|id| id.pid), Some(me));
    assert!(m.token().load(Ordering::Relaxed) > stale);
    drop(g);
    // A waiter cleared the stale token (same generation, unpublished) between the
    // locker's load and its compare-and-swap: the acquisition is still the locker's.
    let stale = stale_lock(&m);
    m.state().store(MUTEX_LOCKED, Ordering::Relaxed); // the locker won the state
    m.token()
        .store(stale & !MUTEX_TOKEN_PUBLISHED, Ordering::Relaxed);
    assert!(m.mark_owner_over_stale_token(stale));
    assert_eq!(m.info().owner_identity.map(|id| id.pid), Some(me));
    m.release();
    // A waiter took the stale token over first (next generation, then its own
    // publish): the locker must not use the lock, which stays held for the waiter.
    let stale = stale_lock(&m);
    m.state().store(MUTEX_LOCKED, Ordering::Relaxed);
    let waiter = OwnerIdentity {
        pid: me.wrapping_add(2),
        start_time_low: 9,
    };
    let taken = next_token(stale & !MUTEX_TOKEN_PUBLISHED) & !MUTEX_TOKEN_PUBLISHED;
    m.token().store(taken, Ordering::Relaxed);
    m.publish(taken, waiter.to_word(), my_ns());
    assert!(!m.mark_owner_over_stale_token(stale));
    assert!(m.is_locked());
    assert_eq!(m.info().owner_identity, Some(waiter));
    m.release();
}

#[test]
#[cfg_attr(miri, ignore = "reads /proc: not under Miri")]
fn a_reused_pid_with_another_start_time_is_dead() {
    test_knob::short_owner_checks();
    let r = region();
    let m = Mutex::attach(r.mem()).unwrap();
    // A holder whose pid is alive (our parent) but whose recorded start time differs.
    let parent = std::os::unix::process::parent_id();
    let real = ProcessId::of(parent).unwrap().start_time as u32;
    let recorded = OwnerIdentity {
        pid: parent,
        start_time_low: real.wrapping_add(1).max(1),
    };
    fake_holder(&m, parent, recorded, my_ns());
    let err = m.lock_timeout(Duration::from_secs(10)).unwrap_err();
    assert!(matches!(err, LockError::OwnerDied(ref d) if d.dead_pid() == parent));
}

#[test]
#[cfg_attr(miri, ignore = "reads /proc: not under Miri")]
fn a_live_owner_and_an_anonymous_holder_are_not_taken_over() {
    let r = region();
    let m = Mutex::attach(r.mem()).unwrap();
    let parent = std::os::unix::process::parent_id();
    let parent_id = OwnerIdentity {
        pid: parent,
        start_time_low: ProcessId::of(parent).unwrap().start_time as u32,
    };
    // Live fastipc holder (our parent): wait, then time out.
    fake_holder(&m, parent, parent_id, my_ns());
    assert!(matches!(
        m.lock_timeout(Duration::from_millis(60)),
        Err(LockError::TimedOut)
    ));
    // Anonymous holder (owner 0, no identity): assumed alive.
    m.owner().store(0, Ordering::Relaxed);
    unpublish(&m);
    assert!(matches!(
        m.lock_timeout(Duration::from_millis(60)),
        Err(LockError::TimedOut)
    ));
    // Owner erased by a Python peer, identity of a live process: alive.
    fake_holder(&m, 0, parent_id, my_ns());
    assert!(matches!(
        m.lock_timeout(Duration::ZERO),
        Err(LockError::TimedOut)
    ));
    // A stale identity (another pid than the owner) of a dead process is cleared by
    // the check.
    let dead = Zombie::new();
    fake_holder(&m, parent, identity_of(&dead), my_ns());
    assert!(m.lock_timeout(Duration::ZERO).unwrap_err().is_timeout());
    assert_eq!(m.info().owner_identity, None);
    // SAFETY: the fake holder never touches anything.
    unsafe { m.force_unlock() };
    assert!(m.try_lock().is_some());
}

/// A segment holding an unlocked mutex, unlinked on drop.
struct MutexSegment(crate::sys::shm::Segment);

impl MutexSegment {
    fn new(tag: &str) -> MutexSegment {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let name = format!(
            "fastipc-unit-mutex-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let seg = crate::sys::shm::Segment::create(&name, MUTEX_SIZE, |mem| {
            Mutex::init(mem).unwrap();
        })
        .unwrap();
        MutexSegment(seg)
    }
}

impl Drop for MutexSegment {
    fn drop(&mut self) {
        let _ = crate::sys::shm::Segment::unlink(self.0.name());
    }
}

#[test]
#[cfg_attr(miri, ignore = "runs Python: not under Miri")]
fn a_holder_whose_main_thread_exited_while_another_runs_keeps_the_lock() {
    let seg = MutexSegment::new("leader");
    let m = Mutex::attach(seg.0.mem()).unwrap();
    // A fastipc-style holder (owner pid and identity) whose main thread then exits
    // while its other thread, the one "holding" the lock, runs on.
    let holder = crate::sys::process::test_util::LeaderExited::spawn(&format!(
        "m = mmap.mmap(os.open('/dev/shm/{}', os.O_RDWR), 64)\n\
         start = int(open('/proc/self/stat').read().rsplit(')', 1)[1].split()[19])\n\
         struct.pack_into('<II', m, 8, 1, os.getpid())\n\
         struct.pack_into('<III', m, 36, os.getpid(), os.stat('/proc/self/ns/pid').st_ino, start & 0xFFFFFFFF)\n\
         struct.pack_into('<Q', m, 24, 3)",
        seg.0.name()
    ));
    assert_eq!(m.owner_pid(), Some(holder.pid()));
    assert_eq!(m.info().owner_identity.unwrap().pid, holder.pid());
    assert_eq!(m.info().owner_pid_namespace, my_ns());
    // The deadline's final check judges the holder: alive, so no takeover.
    let r = m.lock_timeout(Duration::from_secs(1));
    assert!(holder.still_runs());
    assert!(
        r.as_ref().is_err_and(|e| e.is_timeout()),
        "the lock of a live holder was taken over: {r:?}"
    );
}

/// Forks; the child runs `child` and exits with its result (0 when it returns true,
/// 1 when false, 2 when it panicked) without unwinding into the test harness. Returns
/// the child's pid and its exit status, waited for at most 20 s (then it is killed
/// and the test fails).
fn fork_and_wait(child: impl FnOnce() -> bool) -> (u32, i32) {
    // SAFETY: fork is sound to call; the child only runs `child` (fastipc calls:
    // atomics, futex, reading /proc with the allocator, which glibc makes fork-safe)
    // and leaves with `_exit`, never returning into the parent's code.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child));
        let code = match ok {
            Ok(true) => 0,
            Ok(false) => 1,
            Err(_) => 2,
        };
        // SAFETY: ends the child at once, running no atexit handler of the parent.
        unsafe { libc::_exit(code) };
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut status = 0;
    loop {
        // SAFETY: `pid` is our child; `status` is a valid out-pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            break;
        }
        if Instant::now() > deadline {
            // SAFETY: kills our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            // SAFETY: reaps it; `status` is a valid out-pointer.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            panic!("the forked child did not finish within 20 s");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(libc::WIFEXITED(status), "child status {status:#x}");
    (pid as u32, libc::WEXITSTATUS(status))
}

/// Finding 8 of issue 10: a child made by `fork()` records its own pid when it
/// locks, with no `refresh_pid` call (the parent's cache was filled before the fork).
#[test]
#[cfg_attr(miri, ignore = "forks: not under Miri")]
fn a_forked_child_locks_under_its_own_process_id() {
    let seg = MutexSegment::new("fork");
    let m = Mutex::attach(seg.0.mem()).unwrap();
    drop(m.lock().unwrap()); // fills this process's caches
    assert_eq!(process::current_pid(), std::process::id());
    let (child, code) = fork_and_wait(|| {
        let me = std::process::id();
        let g = m.lock().unwrap();
        let info = m.info();
        drop(g);
        info.owner_pid == me && info.owner_identity.is_some_and(|id| id.pid == me)
    });
    assert_ne!(child, std::process::id());
    assert_eq!(
        code, 0,
        "the child's lock recorded another pid than its own"
    );
}

/// A child of a waiter that locks and dies holding the lock is the dead holder, not
/// the parent: the parent (a waiter) takes the lock over from the child's pid. With
/// the parent's pid recorded, the parent would take the holder for itself, alive.
#[test]
#[cfg_attr(miri, ignore = "forks: not under Miri")]
fn a_forked_child_that_dies_holding_the_lock_is_recovered_from() {
    test_knob::short_owner_checks();
    let seg = MutexSegment::new("fork-dies");
    let m = Mutex::attach(seg.0.mem()).unwrap();
    drop(m.lock().unwrap());
    let (child, code) = fork_and_wait(|| {
        core::mem::forget(m.lock().unwrap()); // exits holding it
        true
    });
    assert_eq!(code, 0);
    assert_eq!(m.owner_pid(), Some(child));
    let r = m.lock_timeout(Duration::from_secs(10));
    match r {
        Err(LockError::OwnerDied(died)) => assert_eq!(died.dead_pid(), child),
        other => panic!("expected OwnerDied from the child {child}, got {other:?}"),
    }
}

#[test]
fn owner_died_and_lock_error_helpers() {
    let died = OwnerDied::new(5u8, 77);
    assert_eq!(died.dead_pid(), 77);
    assert_eq!(*died.guard(), 5);
    assert!(died.to_string().contains("77"));
    let e: LockError<u8> = died.into();
    let e = e.map(u16::from);
    assert!(!e.is_timeout());
    assert_eq!(e.into_guard(), Some(5u16));
    assert_eq!(LockError::<u8>::TimedOut.into_guard(), None);
    assert_eq!(
        LockError::<u8>::TimedOut.to_string(),
        "timed out waiting for the mutex"
    );
}
