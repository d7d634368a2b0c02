//! `#[derive(IpcMessage)]` with `#[ipc(queue = .., capacity = ..)]` against the real
//! queue: the generated `queue()`, `producer()` and `consumer()`.

mod common;

use std::time::{Duration, Instant};

use common::ShmCleanup;
use fastipc::IpcMessage;

const QUEUE: &str = "fipct-queue-derive-ticks";

#[derive(IpcMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
#[ipc(queue = "fipct-queue-derive-ticks", capacity = 64)]
struct DerivedTick {
    ts: u64,
    price: f64,
}

#[test]
fn generated_endpoints_use_the_named_queue() {
    let _cleanup = ShmCleanup::new().segment(QUEUE);
    let q = DerivedTick::queue().unwrap();
    assert_eq!(q.capacity(), 64);
    assert_eq!(q.name(), Some(QUEUE));
    let trailer = q.ring().type_trailer().unwrap();
    assert_eq!(trailer.name, "DerivedTick");
    assert_eq!(trailer.fingerprint, DerivedTick::FINGERPRINT);

    let mut rx = DerivedTick::consumer().unwrap();
    // A value no other run of this test sends, in case one runs at the same time.
    let nonce = u64::from(std::process::id()) << 32
        | u64::from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos(),
        );
    DerivedTick::producer()
        .unwrap()
        .send(&DerivedTick {
            ts: nonce,
            price: 1.25,
        })
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let t = rx.recv_timeout(left).expect("the message arrives");
        if t.ts == nonce {
            assert_eq!(t.price, 1.25);
            break;
        }
    }
}
