use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use fastipc::SlickQueue;
use fastipc::queue::TryRecvError;

use super::*;
use crate::queues::{Delivery, consume_lossy};

/// A name no other test (or run) uses; the ring's creator unlinks it.
fn unique(tag: &str) -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    format!(
        "xbench-floor-test-{tag}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

fn file_bytes(name: &str) -> Vec<u8> {
    std::fs::read(format!("/dev/shm/{name}")).expect("the ring's file")
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

#[test]
fn writes_the_layouts_bytes() {
    let name = unique("bytes");
    let ring = Arc::new(FloorRing::create(&name, 8, 8).unwrap());
    let b = file_bytes(&name);
    assert_eq!(b.len(), segment_len(8, 8));
    assert_eq!(&b[24..28], &[0x31, 0x51, 0x4C, 0x53], "SLQ1");
    assert_eq!(u64_at(&b, 0), 0, "reserved");
    assert_eq!(u32_at(&b, 8), 8, "size");
    assert_eq!(u32_at(&b, 12), 8, "element_size");
    assert_eq!(u64_at(&b, 16), u64::MAX, "last_published");
    assert_eq!(u32_at(&b, 28), 1, "items_per_slot");
    assert_eq!(u64_at(&b, 48), 3, "init_state ready, bytes 52..56 zero");
    for pos in 0..8 {
        assert_eq!(u64_at(&b, 64 + 16 * pos), u64::MAX);
        assert_eq!(u64_at(&b, 64 + 16 * pos + 8), 1, "size 1, padding 0");
    }

    let tx = FloorProducer::<[u64; 1]>::new(Arc::clone(&ring)).unwrap();
    for i in 0..10u64 {
        tx.push(&[100 + i]);
    }
    let b = file_bytes(&name);
    assert_eq!(
        u64_at(&b, 0),
        10 << 16 | 1,
        "next index 10, last claim of 1"
    );
    assert_eq!(u64_at(&b, 16), 9, "last_published");
    for i in 2..10u64 {
        let pos = (i % 8) as usize;
        assert_eq!(u64_at(&b, 64 + 16 * pos), i, "data_index");
        assert_eq!(u64_at(&b, 64 + 16 * 8 + 8 * pos), 100 + i, "element");
    }
}

#[test]
fn fastipc_reads_what_the_floor_writes_and_back() {
    // Floor producer, fastipc consumer (the floor's ring is a peer-made queue).
    let name = unique("interop");
    let ring = Arc::new(FloorRing::create(&name, 64, 64).unwrap());
    let q = SlickQueue::<[u64; 8]>::open(&name).unwrap();
    let mut rx = q.consumer().unwrap();
    let tx = FloorProducer::<[u64; 8]>::new(ring).unwrap();
    for i in 0..40u64 {
        tx.push(&[i; 8]);
    }
    for i in 0..40u64 {
        assert_eq!(rx.try_recv(), Ok([i; 8]));
    }
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    drop((rx, q));

    // fastipc producer, floor consumer.
    let name = unique("interop2");
    let q = SlickQueue::<[u64; 1]>::create(&name, 16).unwrap();
    let _rm = RemoveQueue(name.clone());
    let tx = q.producer().unwrap();
    let ring = Arc::new(FloorRing::open(&name, 16, 8).unwrap());
    let mut rx = FloorConsumer::<[u64; 1]>::new(ring).unwrap();
    for i in 0..12u64 {
        tx.send(&[i]).unwrap();
    }
    for i in 0..12u64 {
        assert_eq!(rx.poll().unwrap(), Got::Item([i]));
    }
    assert_eq!(rx.poll().unwrap(), Got::Empty);
}

struct RemoveQueue(String);
impl Drop for RemoveQueue {
    fn drop(&mut self) {
        let _ = fastipc::queue::remove(&self.0);
    }
}

#[test]
fn a_lapped_reader_reports_the_loss_and_goes_on() {
    let name = unique("lap");
    let ring = Arc::new(FloorRing::create(&name, 4, 8).unwrap());
    let tx = FloorProducer::<[u64; 1]>::new(Arc::clone(&ring)).unwrap();
    let mut rx = FloorConsumer::<[u64; 1]>::new(ring).unwrap();
    for i in 0..11u64 {
        tx.push(&[i]);
    }
    // Position 0 holds index 8: indices 0..8 are gone for this reader (7 is still in
    // the ring, but the layout's reader follows the slot at its cursor).
    assert_eq!(rx.poll().unwrap(), Got::Lagged(8));
    assert_eq!(rx.poll().unwrap(), Got::Item([8]));
    assert_eq!(rx.poll().unwrap(), Got::Item([9]));
    assert_eq!(rx.poll().unwrap(), Got::Item([10]));
    assert_eq!(rx.poll().unwrap(), Got::Empty);
    // Under a credit window a lag is an error, never a silent skip.
    for i in 11..20u64 {
        tx.push(&[i]);
    }
    assert!(Receiver::try_recv(&mut rx).is_err());
}

#[test]
fn consume_lossy_accounts_for_every_index() {
    let name = unique("lossy");
    let ring = Arc::new(FloorRing::create(&name, 4, 8).unwrap());
    let tx = FloorProducer::<[u64; 1]>::new(Arc::clone(&ring)).unwrap();
    let mut rx = FloorConsumer::<[u64; 1]>::new(ring).unwrap();
    for i in 0..11u64 {
        tx.push(&[i]);
    }
    let d = consume_lossy(&mut rx, 11, false).unwrap();
    assert_eq!(
        d,
        Delivery {
            delivered: 3,
            lost: 8,
            stale: 0
        }
    );
    assert!((d.loss() - 8.0 / 11.0).abs() < 1e-12);
}

/// A receiver that hands out a message whose contents are not its index (what a reader
/// without a check after its copy returns when it is lapped mid-copy).
struct Scripted<T>(Vec<Got<T>>);
impl<T: Item> LossyReceiver for Scripted<T> {
    type Item = T;
    fn poll(&mut self) -> std::io::Result<Got<T>> {
        Ok(if self.0.is_empty() {
            Got::Empty
        } else {
            self.0.remove(0)
        })
    }
}

#[test]
fn stale_copies_count_as_lost_or_fail() {
    let script = || {
        Scripted(vec![
            Got::Item([0]),
            Got::Item([1 + 4]),
            Got::Lagged(2),
            Got::Item([4]),
        ])
    };
    let d = consume_lossy(&mut script(), 5, true).unwrap();
    assert_eq!(
        d,
        Delivery {
            delivered: 2,
            lost: 2,
            stale: 1
        }
    );
    assert!(consume_lossy(&mut script(), 5, false).is_err());
}

#[test]
fn a_torn_copy_is_not_delivered() {
    // Index 1's copy has its tag right but one word of a message a lap newer.
    let mut torn = [1u64; 8];
    torn[5] = 1 + 1024;
    let script = || Scripted(vec![Got::Item([0; 8]), Got::Item(torn), Got::Item([2; 8])]);
    let d = consume_lossy(&mut script(), 3, true).unwrap();
    assert_eq!(
        d,
        Delivery {
            delivered: 2,
            lost: 0,
            stale: 1
        }
    );
    assert!(consume_lossy(&mut script(), 3, false).is_err());
}

#[test]
fn refuses_what_it_does_not_handle() {
    assert!(FloorRing::create(&unique("bad"), 1000, 8).is_err());
    assert!(FloorRing::create(&unique("bad"), 1024, 12).is_err());
    let name = unique("shape");
    let ring = Arc::new(FloorRing::create(&name, 16, 8).unwrap());
    assert!(FloorRing::open(&name, 16, 64).is_err(), "element size");
    assert!(FloorRing::open(&name, 32, 8).is_err(), "capacity");
    assert!(FloorProducer::<[u64; 8]>::new(Arc::clone(&ring)).is_err());
    assert!(FloorConsumer::<[u64; 8]>::new(ring).is_err());
    assert!(FloorRing::open(&unique("missing"), 16, 8).is_err());
}

#[test]
fn ping_pong_completes_in_threads() {
    let base = unique("pp");
    let mut ping = FloorPingPong::new(&base, true, 16).unwrap();
    let mut pong = FloorPingPong::new(&base, false, 16).unwrap();
    let t = std::thread::spawn(move || pong.pong(100));
    assert_eq!(ping.ping(10, 90).unwrap().len(), 90);
    t.join().unwrap().unwrap();
}
