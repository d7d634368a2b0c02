//! The async receives, sends and waits without any runtime: a hand-written executor of a dozen
//! lines (`async_support::block_on`, thread parking) runs them, showing that the futures
//! need nothing but `std::task::Waker`.

mod async_support;
mod sync_support;

use std::task::Poll;

use async_support::{LIMIT, block_on, paced_consumer, paced_producer, poll_once, queue_for};
use fastipc::SlickQueue;
use fastipc::named::{Kind, NamedEvent};
use fastipc::queue::{Mode, TryRecvError};
use fastipc_testkit::{ChildGuard, ShmCleanup, unique_name};
use sync_support::World;

#[test]
fn a_plain_executor_receives_every_message_of_a_producer_process() {
    const COUNT: u64 = 100_000;
    let name = unique_name("async-exec");
    let _cleanup = ShmCleanup::new().segment(&name);
    let (_q, mut rx) = queue_for(&name, COUNT);
    let producer = paced_producer(&name, COUNT, 64, 200);
    for expected in 0..COUNT {
        assert_eq!(block_on(rx.recv_async(), LIMIT), Ok(expected));
    }
    // Nothing after the last (the producer may have left: Disconnected).
    assert!(matches!(
        rx.try_recv(),
        Err(TryRecvError::Empty | TryRecvError::Disconnected)
    ));
    assert_eq!(producer.success(LIMIT).trim(), format!("sent {COUNT}"));
}

#[test]
fn a_plain_executor_sends_every_message_to_a_consumer_process_through_a_lossless_queue() {
    const COUNT: u64 = 100_000;
    let name = unique_name("async-exec-send");
    let _cleanup = ShmCleanup::new().segment(&name);
    let q = SlickQueue::<u64>::create_with(&name, 16, Mode::Lossless).unwrap();
    let tx = q.producer().unwrap();
    let consumer = paced_consumer(&name, COUNT, 64, 200);
    let mut waited = 0u64;
    for v in 0..COUNT {
        let mut send = tx.send_async(&v);
        let sent = match poll_once(&mut send) {
            Poll::Ready(r) => r,
            Poll::Pending => {
                waited += 1;
                block_on(send, LIMIT)
            }
        };
        assert_eq!(sent, Ok(v), "message {v}");
    }
    assert_eq!(consumer.success(LIMIT).trim(), format!("ok {COUNT}"));
    assert!(
        waited > 0,
        "16 slots and a pausing consumer: some sends waited"
    );
}

#[test]
fn a_plain_executor_waits_for_a_named_event_set_by_another_process() {
    let mut world = World::new("async-exec-ev");
    let name = world.name(Kind::Event, "async-exec-ev");
    let event = NamedEvent::open_in(&world.registry, &name).unwrap();
    let mut wait = event.wait_async();
    assert_eq!(poll_once(&mut wait), Poll::Pending);
    let setter = ChildGuard::spawn(world.peer(&["event-set", &name]));
    block_on(wait, LIMIT);
    assert_eq!(setter.success(LIMIT).trim(), "set");
}
