//! The sync primitives between threads of one process, and their answers to bad input.

mod sync_support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fastipc::error::{MemError, NamedError, SyncError};
use fastipc::named::{Kind, NamedEvent, NamedMutex, NamedSemaphore};
use fastipc::sync::{Event, LockError, Mutex, Semaphore};
use fastipc::{MemRef, Region, Segment};
use sync_support::World;

const THREADS: usize = 4;
const INCREMENTS: u64 = 100_000;

/// Increments `cell` with a separate load and store, so that only the lock keeps the
/// total exact.
fn unprotected_increment(cell: &AtomicU64) {
    let v = cell.load(Ordering::Relaxed);
    cell.store(v + 1, Ordering::Relaxed);
}

#[test]
fn four_threads_times_100k_increments_under_a_mutex_are_exact() {
    let region = Region::heap(64 + 8);
    let mutex = Mutex::init(region.mem()).unwrap();
    let cell = region.mem().atomic_u64(64).unwrap();
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                for _ in 0..INCREMENTS {
                    let _g = mutex.lock().expect("no owner can die here");
                    unprotected_increment(cell);
                }
            });
        }
    });
    assert_eq!(cell.load(Ordering::Relaxed), THREADS as u64 * INCREMENTS);
    assert!(!mutex.is_locked());
    assert_eq!(mutex.owner_pid(), None);
}

#[test]
fn threads_with_their_own_handles_share_a_named_mutex() {
    // The Python peer keys ownership by process id, so its threads cannot share a
    // mutex; here every thread opens its own handle of one named mutex.
    let mut world = World::new("thr-named");
    let name = world.name(Kind::Mutex, "thr-named");
    let cell = AtomicU64::new(0);
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                let mutex = NamedMutex::open_in(&world.registry, &name).unwrap();
                for _ in 0..20_000 {
                    let _g = mutex.lock().expect("no owner can die here");
                    unprotected_increment(&cell);
                }
            });
        }
    });
    assert_eq!(cell.load(Ordering::Relaxed), THREADS as u64 * 20_000);
    assert!(!Segment::exists(&World::segment_of(Kind::Mutex, &name)));
}

#[test]
fn semaphore_tokens_are_conserved_between_threads() {
    let region = Region::heap(64);
    let sem = Semaphore::init(region.mem(), 0).unwrap();
    let taken = AtomicU64::new(0);
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                for _ in 0..5_000 {
                    sem.wait_timeout(Duration::from_secs(30))
                        .expect("a token was lost");
                    taken.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        for _ in 0..3 {
            s.spawn(|| {
                for i in 0..5_000 {
                    sem.post(1).unwrap();
                    if i % 100 == 0 {
                        std::thread::yield_now();
                    }
                }
            });
        }
    });
    assert_eq!(taken.load(Ordering::Relaxed), 15_000);
    assert_eq!(sem.value(), 0);
    assert!(!sem.try_wait());
}

#[test]
fn an_event_wakes_every_waiting_thread_and_stays_set() {
    let region = Region::heap(4);
    let event = Event::init(region.mem()).unwrap();
    std::thread::scope(|s| {
        let waiters: Vec<_> = (0..THREADS)
            .map(|_| s.spawn(|| event.wait_timeout(Duration::from_secs(30))))
            .collect();
        std::thread::sleep(Duration::from_millis(20));
        event.set();
        for w in waiters {
            assert!(w.join().unwrap().is_ok());
        }
    });
    // Set: every later wait returns at once, whatever its timeout.
    assert!(event.wait_timeout(Duration::ZERO).is_ok());
    event.wait();
}

#[test]
fn short_or_misaligned_buffers_are_typed_errors() {
    let mut buf = [0u64; 9];
    let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut buf);
    let short = |r: Result<(), SyncError>| {
        matches!(
            r,
            Err(SyncError::Buffer {
                source: MemError::TooShort { .. },
                ..
            })
        )
    };
    let misaligned = |r: Result<(), SyncError>| {
        matches!(
            r,
            Err(SyncError::Buffer {
                source: MemError::Misaligned { align: 4, .. },
                ..
            })
        )
    };
    assert!(short(
        Mutex::init(MemRef::from_mut(&mut bytes[..32])).map(drop)
    ));
    assert!(short(
        Mutex::attach(MemRef::from_mut(&mut bytes[..0])).map(drop)
    ));
    assert!(short(
        Semaphore::init(MemRef::from_mut(&mut bytes[..63]), 1).map(drop)
    ));
    assert!(short(
        Event::attach(MemRef::from_mut(&mut bytes[..2])).map(drop)
    ));
    assert!(misaligned(
        Mutex::init(MemRef::from_mut(&mut bytes[2..66])).map(drop)
    ));
    assert!(misaligned(
        Semaphore::attach(MemRef::from_mut(&mut bytes[1..65])).map(drop)
    ));
    assert!(misaligned(
        Event::init(MemRef::from_mut(&mut bytes[3..7])).map(drop)
    ));
    // The messages name the object.
    let e = Mutex::init(MemRef::from_mut(&mut bytes[..8])).unwrap_err();
    assert!(e.to_string().starts_with("mutex buffer unusable"), "{e}");
}

#[test]
fn zero_and_huge_timeouts_neither_hang_nor_panic() {
    let region = Region::heap(64 + 64 + 4);
    let mem = region.mem();
    let mutex = Mutex::init(mem.slice(0, 64).unwrap()).unwrap();
    let sem = Semaphore::init(mem.slice(64, 64).unwrap(), 0).unwrap();
    let event = Event::init(mem.slice(128, 4).unwrap()).unwrap();
    let start = Instant::now();
    let guard = mutex.lock().unwrap();
    assert!(matches!(
        mutex.lock_timeout(Duration::ZERO),
        Err(LockError::TimedOut)
    ));
    assert_eq!(
        sem.wait_timeout(Duration::ZERO).unwrap_err().to_string(),
        "timed out waiting for the semaphore"
    );
    assert!(event.wait_timeout(Duration::ZERO).is_err());
    assert!(start.elapsed() < Duration::from_secs(5));
    drop(guard);
    // Huge timeouts mean "forever" and must not overflow when the thing is available.
    assert!(mutex.lock_timeout(Duration::MAX).is_ok());
    sem.post(1).unwrap();
    assert!(sem.wait_timeout(Duration::MAX).is_ok());
    event.set();
    assert!(event.wait_timeout(Duration::from_secs(u64::MAX)).is_ok());
}

#[test]
fn deadlines_accept_an_instant() {
    // Every `*_deadline` method takes `Instant::now() + timeout` as well as a `Deadline`:
    // a passed instant times out at once on a held or empty object, a later one succeeds
    // on a free or ready one.
    let past = Instant::now();
    let later = || Instant::now() + Duration::from_secs(30);
    let region = Region::heap(64 + 64 + 4);
    let mem = region.mem();
    let mutex = Mutex::init(mem.slice(0, 64).unwrap()).unwrap();
    let sem = Semaphore::init(mem.slice(64, 64).unwrap(), 0).unwrap();
    let event = Event::init(mem.slice(128, 4).unwrap()).unwrap();
    let guard = mutex.lock_deadline(later()).unwrap();
    assert!(matches!(
        mutex.lock_deadline(past),
        Err(LockError::TimedOut)
    ));
    drop(guard);
    assert!(sem.wait_deadline(past).is_err());
    sem.post(1).unwrap();
    assert!(sem.wait_deadline(later()).is_ok());
    assert!(event.wait_deadline(past).is_err());
    event.set();
    assert!(event.wait_deadline(later()).is_ok());
    let word =
        fastipc::FutexWord::new(mem.slice(128, 4).unwrap(), fastipc::Scope::Private).unwrap();
    assert!(
        !word.wait_until(1, past),
        "the word is 1 and the instant passed"
    );

    let mut world = World::new("instant");
    let (m, s, e) = (
        world.name(Kind::Mutex, "instant-m"),
        world.name(Kind::Semaphore, "instant-s"),
        world.name(Kind::Event, "instant-e"),
    );
    let reg = &world.registry;
    let mutex = NamedMutex::open_in(reg, &m).unwrap();
    let guard = mutex.lock_deadline(later()).unwrap();
    let other = NamedMutex::open_existing_in(reg, &m).unwrap();
    assert!(matches!(
        other.lock_deadline(past),
        Err(LockError::TimedOut)
    ));
    drop(guard);
    let sem = NamedSemaphore::open_in(reg, &s, 1).unwrap();
    assert!(sem.wait_deadline(later()).is_ok());
    assert!(sem.wait_deadline(past).is_err());
    let event = NamedEvent::open_in(reg, &e).unwrap();
    assert!(event.wait_deadline(past).is_err());
    event.set();
    assert!(event.wait_deadline(later()).is_ok());
}

#[test]
fn named_objects_refuse_bad_names() {
    let world = World::new("bad-names");
    let reg = &world.registry;
    let long = "n".repeat(300);
    for name in ["", "a/b", "nul\0", long.as_str()] {
        assert!(matches!(
            NamedMutex::open_in(reg, name),
            Err(NamedError::InvalidName { kind: "mutex", .. })
        ));
        assert!(matches!(
            NamedSemaphore::open_in(reg, name, 0),
            Err(NamedError::InvalidName { .. })
        ));
        assert!(matches!(
            NamedEvent::open_in(reg, name),
            Err(NamedError::InvalidName { .. })
        ));
    }
    // Short enough alone, too long with the prefix and the registry's `.pids`.
    let almost = "n".repeat(240);
    let err = NamedMutex::open_in(reg, &almost).unwrap_err();
    assert!(err.to_string().contains("__pyfastipc_mutex_"), "{err}");
}

#[test]
fn named_objects_refuse_segments_of_the_wrong_size() {
    let mut world = World::new("wrong-size");
    let name = world.name(Kind::Semaphore, "wrong-size");
    let seg = World::segment_of(Kind::Semaphore, &name);
    let _small = Segment::create(&seg, 16, |_| {}).unwrap();
    match NamedSemaphore::open_in(&world.registry, &name, 1) {
        Err(NamedError::Shm(fastipc::ShmError::TooSmall {
            size: 16,
            required: 64,
            ..
        })) => {}
        other => panic!("expected TooSmall, got {other:?}"),
    }
    assert!(
        Segment::exists(&seg),
        "a segment we could not use is not removed"
    );
}
