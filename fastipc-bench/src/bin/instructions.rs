//! Instructions per message, counted by callgrind: the workload for
//! `scripts/instructions.sh`, which runs each case under `valgrind --tool=callgrind` and
//! divides the inclusive count of its send and receive functions by the messages moved.
//!
//! ```text
//! instructions CASE
//! ```
//!
//! One thread alternates between sending a round of messages and receiving it, so neither
//! side ever waits and every count is the cost of the call itself (cache misses and
//! coherence traffic, which set cross-core rates, are not instructions and are not
//! counted). Each case moves [`MESSAGES`] 8-byte messages through a capacity-4096 queue
//! (named, in /dev/shm, removed at the end). The send and receive functions are never
//! inlined, so that callgrind can attribute their cost: `send_one`, `recv_one`,
//! `send_16`, `recv_16`, and `send_one_single` (the single producer's `send`, case
//! `lossy-single`).

use std::process::ExitCode;

use crossbeam_queue::ArrayQueue;
use fastipc::IpcMessage;
use fastipc::queue::{Consumer, Mode, Producer, QueueOptions, SingleProducer, SlickQueue};

/// Messages per case.
const MESSAGES: u64 = 102_400;
/// Messages sent before they are received, per round (a multiple of [`BATCH`] that divides
/// [`MESSAGES`]).
const ROUND: u64 = 1024;
/// Messages per batch in the batch cases.
const BATCH: usize = 16;
/// The queue's capacity.
const CAPACITY: usize = 4096;

/// The message: 8 bytes, as in the throughput tables.
#[derive(IpcMessage, Clone, Copy, Debug, Default)]
#[repr(C)]
struct M8 {
    v: u64,
}

const CASES: &[&str] = &[
    "lossy",
    "lossy-single",
    "lossless",
    "lossy-batch16",
    "lossless-batch16",
    "arrayqueue",
];

fn main() -> ExitCode {
    let case = std::env::args().nth(1).unwrap_or_default();
    let result = match case.as_str() {
        "lossy" => singles(Mode::Lossy),
        "lossy-single" => single_producer(),
        "lossless" => singles(Mode::Lossless),
        "lossy-batch16" => batches(Mode::Lossy),
        "lossless-batch16" => batches(Mode::Lossless),
        "arrayqueue" => Ok(array_queue()),
        "list" => {
            println!("{}", CASES.join(" "));
            return ExitCode::SUCCESS;
        }
        _ => Err(format!("usage: instructions {{{}|list}}", CASES.join("|"))),
    };
    match result {
        Ok(sum) => {
            // The sum keeps the received values alive (and checks them).
            let want = MESSAGES * (MESSAGES - 1) / 2;
            if sum == want {
                println!("{case}: {MESSAGES} messages, sum checked");
                ExitCode::SUCCESS
            } else {
                eprintln!("instructions: {case}: sum {sum}, expected {want}");
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("instructions: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A queue of a unique name, removed when dropped.
struct Queue(SlickQueue<M8>, String);

impl Queue {
    fn new(options: impl Into<QueueOptions>) -> Result<Queue, String> {
        let name = format!("fastipc-instructions-{}", std::process::id());
        let _ = fastipc::queue::remove(&name);
        let q =
            SlickQueue::<M8>::create_with(&name, CAPACITY, options).map_err(|e| e.to_string())?;
        Ok(Queue(q, name))
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        let _ = fastipc::queue::remove(&self.1);
    }
}

#[inline(never)]
fn send_one(tx: &Producer<M8>, v: u64) {
    tx.send(&M8 { v }).expect("send");
}

/// `send_one` of the single-producer case (its own function, so that `instructions.sh`
/// finds it under the same name pattern: `send_one_single`).
#[inline(never)]
fn send_one_single(tx: &SingleProducer<M8>, v: u64) {
    tx.send(&M8 { v }).expect("send");
}

#[inline(never)]
fn recv_one(rx: &mut Consumer<M8>) -> u64 {
    rx.try_recv().expect("a message was sent").v
}

#[inline(never)]
fn send_16(tx: &Producer<M8>, batch: &[M8; BATCH]) {
    tx.send_batch(batch).expect("send_batch");
}

#[inline(never)]
fn recv_16(rx: &mut Consumer<M8>, buf: &mut [M8; BATCH]) -> usize {
    rx.try_recv_into(buf).expect("messages were sent")
}

fn singles(mode: Mode) -> Result<u64, String> {
    let q = Queue::new(mode)?;
    let tx = q.0.producer().map_err(|e| e.to_string())?;
    let rx = q.0.consumer().map_err(|e| e.to_string())?;
    Ok(rounds(rx, |v| send_one(&tx, v)))
}

/// [`singles`] on a lossy single-producer queue.
fn single_producer() -> Result<u64, String> {
    let q = Queue::new(QueueOptions::new().single_producer())?;
    let tx = q.0.single_producer().map_err(|e| e.to_string())?;
    let rx = q.0.consumer().map_err(|e| e.to_string())?;
    Ok(rounds(rx, |v| send_one_single(&tx, v)))
}

/// Rounds of [`ROUND`] messages, each sent one at a time by `send` and then received
/// one at a time; returns the sum of what was received.
fn rounds(mut rx: Consumer<M8>, send: impl Fn(u64)) -> u64 {
    let mut sum = 0u64;
    let mut next = 0u64;
    while next < MESSAGES {
        let end = (next + ROUND).min(MESSAGES);
        for v in next..end {
            send(v);
        }
        for _ in next..end {
            sum += recv_one(&mut rx);
        }
        next = end;
    }
    sum
}

fn batches(mode: Mode) -> Result<u64, String> {
    let q = Queue::new(mode)?;
    let tx = q.0.producer().map_err(|e| e.to_string())?;
    let mut rx = q.0.consumer().map_err(|e| e.to_string())?;
    let mut sum = 0u64;
    let mut next = 0u64;
    let mut buf = [M8::default(); BATCH];
    while next < MESSAGES {
        let end = next + ROUND;
        let mut v = next;
        while v < end {
            let batch: [M8; BATCH] = core::array::from_fn(|k| M8 { v: v + k as u64 });
            send_16(&tx, &batch);
            v += BATCH as u64;
        }
        let mut got = next;
        while got < v {
            let n = recv_16(&mut rx, &mut buf);
            sum += buf[..n].iter().map(|m| m.v).sum::<u64>();
            got += n as u64;
        }
        next = v;
    }
    Ok(sum)
}

#[inline(never)]
fn push_one(q: &ArrayQueue<u64>, v: u64) {
    q.push(v).expect("room");
}

#[inline(never)]
fn pop_one(q: &ArrayQueue<u64>) -> u64 {
    q.pop().expect("a value was pushed")
}

fn array_queue() -> u64 {
    let q = ArrayQueue::new(CAPACITY);
    let mut sum = 0u64;
    let mut next = 0u64;
    while next < MESSAGES {
        let end = (next + ROUND).min(MESSAGES);
        for v in next..end {
            push_one(&q, v);
        }
        for _ in next..end {
            sum += pop_one(&q);
        }
        next = end;
    }
    sum
}
