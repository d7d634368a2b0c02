//! How a blocking wait learns its pace (`wait::Pace`): the rule on its own, then with
//! a real hand-off between two threads on one CPU and on two CPUs; and the lossless
//! producer's wait for room (`flow`) with its consumer on its own CPU.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rustix::thread::{CpuSet, sched_getaffinity, sched_setaffinity};

use super::ring::{Ring, RingSpec};
use super::wait::{Before, Pace, WaitStrategy, wait_for};
use crate::error::TryRecvError;
use crate::sys::clock::Deadline;

#[test]
fn the_pace_follows_how_the_last_wait_ended() {
    let mut pace = Pace::default();
    assert!(!pace.yields_at_once());
    pace.learn(Before::Yield { switched: true });
    assert!(
        pace.yields_at_once(),
        "found right after a yield that ran another task"
    );
    pace.learn(Before::Start);
    assert!(
        pace.yields_at_once(),
        "found at once: no evidence either way"
    );
    pace.learn(Before::Idle);
    assert!(
        pace.yields_at_once(),
        "found while yielding or sleeping: the producer is slow"
    );
    pace.learn(Before::Yield { switched: false });
    assert!(
        !pace.yields_at_once(),
        "found after a yield that returned at once"
    );
    pace.learn(Before::Yield { switched: true });
    pace.learn(Before::Spin);
    assert!(!pace.yields_at_once(), "found by a spin round");
}

/// The CPUs this thread may run on.
fn allowed_cpus() -> Vec<usize> {
    let set = sched_getaffinity(None).expect("sched_getaffinity");
    (0..CpuSet::MAX_CPU).filter(|&c| set.is_set(c)).collect()
}

fn pin_to(cpu: usize) {
    let mut set = CpuSet::new();
    set.set(cpu);
    sched_setaffinity(None, &set).expect("sched_setaffinity");
}

/// A hand-off between a waiter on `waiter_cpu` and a publisher on `publisher_cpu`: for
/// each of `rounds` messages the waiter arms the publisher and waits (default strategy,
/// starting from `pace`); the publisher, a thread that only yields while it has nothing
/// to do, publishes once armed (after `delay` of busy work). Returns, per wait, the polls
/// it made and whether its pace then said "yield at once".
/// The tests that time yields run one at a time: two at once on one CPU would time each
/// other's yields.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn alone() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn hand_off(
    waiter_cpu: usize,
    publisher_cpu: usize,
    mut pace: Pace,
    rounds: u64,
    delay: Duration,
) -> Vec<(u32, bool)> {
    let ring = Ring::local(&RingSpec::new(16, 8)).unwrap();
    let armed = Arc::new(AtomicU64::new(0));
    let published = Arc::new(AtomicU64::new(0));
    let give_up = Instant::now() + Duration::from_secs(30);
    let publisher = {
        let (armed, published) = (armed.clone(), published.clone());
        std::thread::spawn(move || {
            pin_to(publisher_cpu);
            let mut done = 0;
            while done < rounds && Instant::now() < give_up {
                // Acquire pairs with the waiter's Release store of `armed`, as the
                // waiter's Acquire load of `published` with the Release store below;
                // the counters are all these threads share.
                let want = armed.load(Ordering::Acquire);
                if want > done {
                    let start = Instant::now();
                    while start.elapsed() < delay {
                        core::hint::spin_loop();
                    }
                    published.store(want, Ordering::Release);
                    done = want;
                }
                std::thread::yield_now();
            }
        })
    };
    let waiter = std::thread::spawn(move || {
        pin_to(waiter_cpu);
        let raw = *ring.raw();
        let mut seen = Vec::new();
        for i in 1..=rounds {
            armed.store(i, Ordering::Release);
            let mut polls = 0u32;
            wait_for(
                &raw,
                &WaitStrategy::default(),
                Deadline::after(Duration::from_secs(10)),
                &mut pace,
                |_| {
                    polls += 1;
                    if published.load(Ordering::Acquire) >= i {
                        Ok(())
                    } else {
                        Err(TryRecvError::Empty)
                    }
                },
            )
            .expect("the publisher answers within 10 s");
            seen.push((polls, pace.yields_at_once()));
        }
        seen
    });
    let seen = waiter.join().expect("waiter");
    publisher.join().expect("publisher");
    seen
}

fn median(mut v: Vec<u32>) -> u32 {
    v.sort_unstable();
    v[v.len() / 2]
}

/// A publisher on the waiter's own CPU runs only when the waiter gives the CPU away:
/// after the first hand-off (64 polls, then a yield that runs the publisher) the waits
/// yield at once, two polls each.
#[test]
#[cfg_attr(miri, ignore = "pins threads and times sched_yield")]
fn a_publisher_on_the_same_cpu_makes_the_wait_yield_at_once() {
    let _alone = alone();
    let cpu = allowed_cpus()[0];
    let seen = hand_off(cpu, cpu, Pace::default(), 40, Duration::ZERO);
    // Two polls each (poll, yield, find) on a quiet CPU; other runnable tasks there may
    // take a turn first. Without the pace every wait makes 65 or more.
    let later: Vec<u32> = seen[1..].iter().map(|s| s.0).collect();
    assert!(
        median(later) <= 8,
        "later waits poll, yield, find: {seen:?}"
    );
    let at_once = seen.iter().filter(|s| s.1).count();
    assert!(at_once >= 30, "the pace stays at once: {seen:?}");
}

/// A publisher on another CPU publishes while the waiter spins or makes a bare yield: a
/// waiter that starts out yielding at every poll (a wrong guess) goes back to spinning.
/// While other tasks are runnable on the waiter's CPU its yields run them, and a message
/// found after such a yield rightly keeps it yielding. So a try counts only when the
/// waiter's yields were bare: 20 µs of yields that return at once are many polls (about
/// 20 here), yields that run other tasks a few; the test makes up to five tries (a busy
/// test machine may run other tests' threads on that CPU meanwhile).
#[test]
#[cfg_attr(miri, ignore = "pins threads and times sched_yield")]
fn a_publisher_on_another_cpu_keeps_the_wait_spinning() {
    let _alone = alone();
    let cpus = allowed_cpus();
    if cpus.len() < 2 {
        eprintln!("skipped: one CPU allowed");
        return;
    }
    let mut failed = Vec::new();
    for _ in 0..5 {
        let seen = hand_off(
            cpus[0],
            cpus[1],
            Pace::at_once(),
            40,
            Duration::from_micros(20),
        );
        if seen.iter().any(|s| !s.1) {
            return;
        }
        if median(seen.iter().map(|s| s.0).collect()) >= 8 {
            failed.push(seen); // bare yields, and still no wait ended spinning
        } else {
            eprintln!(
                "a try not counted: the yields on CPU {} ran other tasks",
                cpus[0]
            );
        }
    }
    assert!(failed.is_empty(), "no wait ended spinning: {failed:?}");
}

/// Consumers keep what their blocking receives learn: a ping-pong through two queues
/// between two threads on one CPU (a `Consumer` one way, a `SharedConsumer` the other)
/// leaves both yielding at once.
#[test]
#[cfg_attr(miri, ignore = "pins threads and times sched_yield")]
fn consumers_keep_the_pace_between_receives() {
    use crate::queue::{SharedCursor, SlickQueue};
    let _alone = alone();
    let cpu = allowed_cpus()[0];
    let (ping, pong) = (
        SlickQueue::<u64>::local(16).unwrap(),
        SlickQueue::<u64>::local(16).unwrap(),
    );
    let (ping_tx, mut ping_rx) = (ping.producer().unwrap(), ping.consumer().unwrap());
    let pong_tx = pong.producer().unwrap();
    let mut pong_rx = pong.shared_consumer(SharedCursor::local(0)).unwrap();
    let echo = std::thread::spawn(move || {
        pin_to(cpu);
        for _ in 0..40 {
            let v = ping_rx.recv_timeout(Duration::from_secs(10)).expect("ping");
            pong_tx.send(&v).unwrap();
        }
        ping_rx.pace()
    });
    let asker = std::thread::spawn(move || {
        pin_to(cpu);
        for i in 0..40 {
            ping_tx.send(&i).unwrap();
            assert_eq!(pong_rx.recv_timeout(Duration::from_secs(10)), Ok(i));
        }
        pong_rx.pace()
    });
    let asker_pace = asker.join().expect("asker");
    let echo_pace = echo.join().expect("echo");
    assert!(
        echo_pace.yields_at_once(),
        "the Consumer learnt to yield at once"
    );
    assert!(
        asker_pace.yields_at_once(),
        "the SharedConsumer learnt to yield at once"
    );
}

/// A lossless producer held back by a consumer on its own CPU: the consumer can make room
/// only once the producer gives the CPU away, so a claim that waits must yield within its
/// first spin rounds (the first wait after 256, the later ones at once: the mapping learns
/// it as consumers do, `wait::Pace`), not after the whole spin phase (2000 rounds, each a
/// rescan of the table).
#[test]
#[cfg_attr(miri, ignore = "pins threads")]
fn a_lossless_producer_held_back_by_a_consumer_on_its_cpu_yields_while_it_spins() {
    use crate::queue::{Mode, SlickQueue};
    let _alone = alone();
    let cpu = allowed_cpus()[0];
    let q = SlickQueue::<u64>::local_with(8, Mode::Lossless).unwrap();
    let (tx, mut rx) = (q.producer().unwrap(), q.consumer().unwrap());
    const N: u64 = 2000;
    let consumer = std::thread::spawn(move || {
        pin_to(cpu);
        for i in 0..N {
            assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(i));
        }
    });
    let producer = std::thread::spawn(move || {
        pin_to(cpu);
        for i in 0..N {
            tx.send_timeout(&i, Duration::from_secs(10))
                .expect("room within 10 s");
        }
        super::flow::WAITED.with(|w| w.get())
    });
    let (waits, rounds) = producer.join().expect("producer");
    consumer.join().expect("consumer");
    assert!(waits > 0, "the ring of 8 held the producer back");
    // Each wait ends soon after a yield (one round once learnt, more when other tasks
    // take the CPU first); without the yields each spins its 2000 rounds, and without
    // the learning 256.
    assert!(
        rounds / waits < 64,
        "{rounds} spin rounds over {waits} waits"
    );
}
