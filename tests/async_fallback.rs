//! The waiter's fallback for kernels without `futex_waitv` (before 5.16), forced with
//! `waiter::force_fallback()`: the waiter threads poll their registrations every
//! millisecond instead, and messages and events are still delivered. (A test binary is a
//! process of its own, so forcing it here changes no other test.)

mod async_support;
mod sync_support;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::SeqCst;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use async_support::{LIMIT, block_on, paced_producer, poll_once, queue_for};
use fastipc::named::{Kind, NamedEvent};
use fastipc::waiter;
use fastipc_testkit::{ChildGuard, ShmCleanup, unique_name};
use sync_support::World;

#[test]
fn the_polling_fallback_still_delivers_messages_and_events() {
    waiter::force_fallback();
    const COUNT: u64 = 20_000;
    let name = unique_name("async-fallback");
    let _cleanup = ShmCleanup::new().segment(&name);
    // The consumer's own re-poll is an hour: only the fallback's polling wakes it.
    let (_q, mut rx) = queue_for(&name, COUNT);
    let producer = paced_producer(&name, COUNT, 64, 200);
    for expected in 0..COUNT {
        assert_eq!(block_on(rx.recv_async(), LIMIT), Ok(expected));
    }
    assert_eq!(producer.success(LIMIT).trim(), format!("sent {COUNT}"));
    assert!(waiter::stats().fallback);

    let mut world = World::new("async-fb-ev");
    let ev = world.name(Kind::Event, "async-fb-ev");
    let event = NamedEvent::open_in(&world.registry, &ev).unwrap();
    let mut wait = event.wait_async();
    assert_eq!(poll_once(&mut wait), Poll::Pending);
    let setter = ChildGuard::spawn(world.peer(&["event-set", &ev]));
    block_on(wait, LIMIT);
    assert_eq!(setter.success(LIMIT).trim(), "set");
    assert!(waiter::stats().fallback);
    assert_eq!(waiter::stats().registrations, 0);
}

/// A waker that counts its wake-ups and unparks the polling thread.
struct Counting(AtomicUsize, std::thread::Thread);

impl Wake for Counting {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
        self.1.unpark();
    }
}

#[test]
fn the_fallback_polls_a_pending_wait_at_most_once_a_millisecond() {
    waiter::force_fallback();
    let mut world = World::new("async-fb-rate");
    let ev = world.name(Kind::Event, "async-fb-rate");
    let event = NamedEvent::open_in(&world.registry, &ev).unwrap();
    let counting = Arc::new(Counting(AtomicUsize::new(0), std::thread::current()));
    let waker = Waker::from(Arc::clone(&counting));
    let mut cx = Context::from_waker(&waker);
    let mut wait = Box::pin(event.wait_async());
    // Poll whenever woken, for 50 ms, while nobody sets the event.
    let start = Instant::now();
    let span = Duration::from_millis(50);
    while start.elapsed() < span {
        assert_eq!(wait.as_mut().poll(&mut cx), Poll::Pending);
        std::thread::park_timeout(span.saturating_sub(start.elapsed()));
    }
    let elapsed = start.elapsed();
    let wakes = counting.0.load(SeqCst) as u128;
    // Each tick is scheduled FALLBACK_POLL after the previous gathering and sleeps never
    // end early: no more than one wake-up per FALLBACK_POLL (plus the first and the last).
    let bound = elapsed.as_micros() / waiter::FALLBACK_POLL.as_micros() + 2;
    assert!(wakes <= bound, "{wakes} wake-ups in {elapsed:?}");
}
