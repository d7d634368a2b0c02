//! Async receives, sends and waits under tokio (multi-thread and current-thread runtimes):
//! every message of a producer process, every message sent to a consumer process through
//! a small lossless queue, `select!` against a timer, cancellation, a hundred tasks on a
//! hundred queues, and events and semaphores set from another process.
//!
//! The tests take turns (`SERIAL`): some count the process's live registrations.

mod async_support;
mod sync_support;

use std::task::Poll;
use std::time::Duration;

use async_support::{LIMIT, no_repoll, paced_consumer, paced_producer, poll_once, queue_for};
use fastipc::SlickQueue;
use fastipc::named::{Kind, NamedEvent, NamedSemaphore};
use fastipc::queue::{Mode, SharedCursor, TryRecvError};
use fastipc::waiter;
use fastipc_testkit::{ChildGuard, ShmCleanup, unique_name};
use sync_support::World;
use tokio::time::timeout;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const COUNT: u64 = 100_000;

/// Receives `COUNT` messages from a producer process in a spawned task, checking each.
async fn every_message_from_a_process() {
    let name = unique_name("async-100k");
    let _cleanup = ShmCleanup::new().segment(&name);
    let (_q, mut rx) = queue_for(&name, COUNT);
    // Bursts of 64 with a 200 µs pause: the consumer catches up and waits ~1,500 times.
    let producer = paced_producer(&name, COUNT, 64, 200);
    let task = tokio::spawn(async move {
        for expected in 0..COUNT {
            let got = rx.recv_async().await;
            assert_eq!(got, Ok(expected), "message {expected}");
        }
        rx.try_recv()
    });
    let rest = timeout(LIMIT, task).await.expect("in time").expect("task");
    assert!(
        matches!(rest, Err(TryRecvError::Empty | TryRecvError::Disconnected)),
        "a message after the last: {rest:?}"
    );
    assert_eq!(producer.success(LIMIT).trim(), format!("sent {COUNT}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_thread_runtime_receives_every_message_of_a_producer_process() {
    let _turn = SERIAL.lock().await;
    every_message_from_a_process().await;
}

#[tokio::test(flavor = "current_thread")]
async fn current_thread_runtime_receives_every_message_of_a_producer_process() {
    let _turn = SERIAL.lock().await;
    every_message_from_a_process().await;
}

/// Sends `COUNT` messages from a spawned task through a 16-message lossless queue to a
/// consumer process that checks each and pauses now and then: the sends wait for room.
async fn every_message_to_a_process() {
    let name = unique_name("async-send");
    let _cleanup = ShmCleanup::new().segment(&name);
    let q = SlickQueue::<u64>::create_with(&name, 16, Mode::Lossless).unwrap();
    let tx = q.producer().unwrap();
    let consumer = paced_consumer(&name, COUNT, 64, 200);
    let task = tokio::spawn(async move {
        let mut waited = 0u64;
        for v in 0..COUNT {
            let mut send = tx.send_async(&v);
            let sent = match poll_once(&mut send) {
                Poll::Ready(r) => r,
                Poll::Pending => {
                    waited += 1;
                    send.await
                }
            };
            assert_eq!(sent, Ok(v), "message {v}");
        }
        waited
    });
    let waited = timeout(LIMIT, task).await.expect("in time").expect("task");
    assert_eq!(consumer.success(LIMIT).trim(), format!("ok {COUNT}"));
    // 16 slots, and a consumer that starts late and pauses: some sends had to wait.
    assert!(waited > 0);
    assert_eq!(waiter::stats().registrations, 0, "{:?}", waiter::stats());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_thread_runtime_sends_every_message_to_a_consumer_process() {
    let _turn = SERIAL.lock().await;
    every_message_to_a_process().await;
}

#[tokio::test(flavor = "current_thread")]
async fn current_thread_runtime_sends_every_message_to_a_consumer_process() {
    let _turn = SERIAL.lock().await;
    every_message_to_a_process().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_send_dropped_mid_wait_sends_nothing_and_the_next_send_goes_through() {
    let _turn = SERIAL.lock().await;
    let q = SlickQueue::<u32>::local_with(4, Mode::Lossless).unwrap();
    let tx = q.producer().unwrap();
    let mut rx = q.consumer().unwrap();
    for v in 0..4 {
        tx.send(&v).unwrap();
    }
    // Full: the send waits, and the timeout drops it mid-wait.
    assert!(
        timeout(Duration::from_millis(20), tx.send_async(&99))
            .await
            .is_err()
    );
    assert_eq!(waiter::stats().registrations, 0);
    // A reader makes room while the next send waits.
    let reader = std::thread::spawn(move || {
        let got: Vec<u32> = (0..5).map(|_| rx.recv().unwrap()).collect();
        (got, rx.try_recv())
    });
    let sent = timeout(LIMIT, tx.send_async(&4)).await.expect("in time");
    assert_eq!(sent, Ok(4));
    let (got, rest) = reader.join().unwrap();
    // No 99, no duplicate, nothing lost.
    assert_eq!(got, vec![0, 1, 2, 3, 4]);
    assert_eq!(rest, Err(TryRecvError::Empty));
    assert_eq!(waiter::stats().registrations, 0);
}

#[tokio::test(flavor = "current_thread")]
async fn with_the_default_strategy_every_wait_on_an_all_fastipc_queue_ends_with_a_wake_up() {
    let _turn = SERIAL.lock().await;
    // Ping-pong with an echo process: each receive waits for the reply of a fastipc
    // producer (the echo's), registered in the endpoint table. With the consumer's
    // default strategy (1 ms poll), a pending receive then does not re-poll every
    // millisecond, only every ASYNC_IDLE_CHECK (1 s): each wait must end with the
    // producer's wake-up (a lost one costs a second, and N of them the test's deadline).
    const N: u64 = 1_000;
    let (ping, pong) = (unique_name("async-ping"), unique_name("async-pong"));
    let _cleanup = ShmCleanup::new().segment(&ping).segment(&pong);
    let q_ping = SlickQueue::<u64>::create(&ping, 2048).unwrap();
    let q_pong = SlickQueue::<u64>::create(&pong, 2048).unwrap();
    let tx = q_ping.producer().unwrap();
    let mut rx = q_pong.consumer().unwrap();
    let echo = ChildGuard::spawn({
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_peer-queue"));
        // Each reply 300 µs after the request: the receive is pending when it comes.
        cmd.args(["echo", &ping, &pong, &N.to_string(), "300"]);
        cmd
    });
    // Until the echo's producer registers, the queue may be fed by peers: receives
    // re-poll every millisecond then.
    let registered = timeout(LIMIT, async {
        while q_pong.producer_count() == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
    assert!(registered.is_ok(), "the echo never registered its producer");
    let repolls = waiter::stats().repolls;
    let waited = timeout(LIMIT, async {
        let mut waited = 0;
        for i in 0..N {
            tx.send(&i).unwrap();
            let mut fut = rx.recv_async();
            let got = match poll_once(&mut fut) {
                Poll::Ready(r) => r,
                Poll::Pending => {
                    waited += 1;
                    fut.await
                }
            };
            assert_eq!(got, Ok(i));
        }
        waited
    })
    .await
    .expect("in time");
    assert_eq!(echo.success(LIMIT).trim(), format!("echoed {N}"));
    let repolled = waiter::stats().repolls - repolls;
    // A wait that only its re-poll ended took a second: a few at most on a loaded
    // machine, not one per reply.
    assert!(
        repolled <= 10,
        "{repolled} of {waited} waits ended by a re-poll"
    );
    assert!(waited > 0, "no receive waited for its reply");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn select_between_a_receive_and_a_timer() {
    let _turn = SERIAL.lock().await;
    let q = SlickQueue::<u32>::local(64).unwrap();
    let mut rx = q.consumer().unwrap().with_wait_strategy(no_repoll());
    let tx = q.producer().unwrap();
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        tx.send(&5).unwrap();
    });
    let mut ticks = 0u32;
    let got = timeout(LIMIT, async {
        loop {
            tokio::select! {
                r = rx.recv_async() => break r,
                _ = tokio::time::sleep(Duration::from_millis(10)) => ticks += 1,
            }
        }
    })
    .await
    .expect("in time");
    assert_eq!(got, Ok(5));
    // The timer won while nothing was sent: each lost receive was dropped mid-wait.
    assert!(ticks >= 1, "the receive completed before anything was sent");
    assert_eq!(waiter::stats().registrations, 0, "{:?}", waiter::stats());
    sender.join().unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn a_receive_dropped_mid_wait_loses_nothing_and_leaves_no_registration() {
    let _turn = SERIAL.lock().await;
    let q = SlickQueue::<u32>::local(64).unwrap();
    let mut rx = q.consumer().unwrap().with_wait_strategy(no_repoll());
    // A live producer throughout: with none left, an empty queue reports `Disconnected`.
    let tx = q.producer().unwrap();
    // Registered, then dropped by the timeout.
    let mut fut = rx.recv_async();
    assert_eq!(poll_once(&mut fut), Poll::Pending);
    assert_eq!(waiter::stats().registrations, 1);
    drop(fut);
    assert_eq!(waiter::stats().registrations, 0);
    assert!(
        timeout(Duration::from_millis(20), rx.recv_async())
            .await
            .is_err()
    );
    assert_eq!(waiter::stats().registrations, 0);
    tx.send(&42).unwrap();
    let got = timeout(LIMIT, rx.recv_async()).await.expect("in time");
    assert_eq!(got, Ok(42));
    // The same for a consumer of a work-stealing group.
    let mut shared = q
        .shared_consumer(SharedCursor::local(q.next_index()))
        .unwrap()
        .with_wait_strategy(no_repoll());
    assert!(
        timeout(Duration::from_millis(20), shared.recv_async())
            .await
            .is_err()
    );
    assert_eq!(waiter::stats().registrations, 0);
    tx.send(&43).unwrap();
    let got = timeout(LIMIT, shared.recv_async()).await.expect("in time");
    assert_eq!(got, Ok(43));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_tasks_each_awaiting_its_own_queue_are_each_woken() {
    let _turn = SERIAL.lock().await;
    const TASKS: usize = 100;
    let queues: Vec<SlickQueue<u64>> = (0..TASKS)
        .map(|_| SlickQueue::<u64>::local(16).unwrap())
        .collect();
    let tasks: Vec<_> = queues
        .iter()
        .map(|q| {
            let mut rx = q.consumer().unwrap().with_wait_strategy(no_repoll());
            tokio::spawn(async move { rx.recv_async().await })
        })
        .collect();
    // Every task is pending before anything is sent.
    let all_pending = timeout(LIMIT, async {
        while waiter::stats().registrations < TASKS {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
    assert!(all_pending.is_ok(), "{:?}", waiter::stats());
    // Send in a scrambled order, a value that names the queue.
    for k in 0..TASKS {
        let i = (k * 37) % TASKS;
        queues[i]
            .producer()
            .unwrap()
            .send(&(1000 + i as u64))
            .unwrap();
    }
    for (i, task) in tasks.into_iter().enumerate() {
        let got = timeout(LIMIT, task).await.expect("in time").expect("task");
        assert_eq!(got, Ok(1000 + i as u64), "task {i}");
    }
    assert_eq!(waiter::stats().registrations, 0);
}

#[tokio::test(flavor = "current_thread")]
async fn a_named_event_and_semaphore_are_woken_by_another_process() {
    let _turn = SERIAL.lock().await;
    let mut world = World::new("async-ev");
    let name = world.name(Kind::Event, "async-ev");
    let event = NamedEvent::open_in(&world.registry, &name).unwrap();
    let mut wait = event.wait_async();
    assert_eq!(poll_once(&mut wait), Poll::Pending);
    let setter = ChildGuard::spawn(world.peer(&["event-set", &name]));
    timeout(LIMIT, wait).await.expect("woken in time");
    assert_eq!(setter.success(LIMIT).trim(), "set");

    let name = world.name(Kind::Semaphore, "async-sem");
    let sem = NamedSemaphore::open_in(&world.registry, &name, 0).unwrap();
    let mut take = sem.wait_async();
    assert_eq!(poll_once(&mut take), Poll::Pending);
    let poster = ChildGuard::spawn(world.peer(&["sema-post", &name, "1"]));
    timeout(LIMIT, take).await.expect("woken in time");
    assert_eq!(poster.success(LIMIT).trim(), "posted 1");
    assert_eq!(sem.value(), 0);
    assert_eq!(waiter::stats().registrations, 0);
}
