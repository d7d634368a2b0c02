//! The `#[ipc(...)]` attribute forms, compiled with every warning denied, then run
//! against the real runtime: the generated `queue()`, `producer()`, `consumer()` and
//! `shared()` open the named objects.
//!
//! The names are fixed at compile time, so another run of this suite at the same moment
//! (another checkout) would share them, and its removal of the queues at the end would
//! pull them from under this run. `main` holds the named mutex `RUN_LOCK` while it uses
//! them, so such runs take turns.
#![deny(warnings)]

use std::time::{Duration, Instant};

use fastipc::{IpcMessage, NamedMutex, SharedCell, SlickQueue};

/// Serialises the runs of this program.
const RUN_LOCK: &str = "fipct-ui-pass-attributes-run";

/// A default queue.
#[derive(IpcMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
#[ipc(queue = "fipct-ui-pass-orders", capacity = 64)]
pub struct Order {
    pub id: u64,
    pub qty: u32,
    pub side: u32,
}

/// A named shared cell.
#[derive(IpcMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
#[ipc(shared = "fipct-ui-pass-totals")]
pub struct Totals {
    pub orders: u64,
    pub qty: u64,
}

/// Both, in one attribute (a queue and a cell may share a name: their segments differ).
#[derive(IpcMessage, Clone, Copy)]
#[repr(C)]
#[ipc(queue = "fipct-ui-pass-state", capacity = 1, shared = "fipct-ui-pass-state")]
pub struct State {
    pub value: u64,
}

/// A lossless queue.
#[derive(IpcMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
#[ipc(queue = "fipct-ui-pass-fills", capacity = 4, lossless)]
pub struct Fill {
    pub id: u64,
}

mod private {
    /// Endpoints of a private type get its visibility; unused ones do not warn.
    #[derive(fastipc::IpcMessage, Clone, Copy)]
    #[repr(C)]
    #[ipc(queue = "fipct-ui-pass-unused", capacity = 2)]
    #[ipc(shared = "fipct-ui-pass-unused")]
    pub(crate) struct Unused {
        pub(crate) n: u32,
    }
}

/// Names at the runtime's limits: 255 bytes for a queue, 235 for a cell (each literal is
/// one name, split over lines with `\` continuations).
#[derive(IpcMessage, Clone, Copy)]
#[repr(C)]
#[ipc(
    queue = "fipct-ui-pass-long-queue-qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq\
    qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq\
    qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq\
    qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq",
    capacity = 2
)]
#[ipc(
    shared = "fipct-ui-pass-long-cell-cccccccccccccccccccccccccccccccccccccccc\
    cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc\
    cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc\
    ccccccccccccccccccccccccccccccccccccccccccc"
)]
pub struct LongNames {
    pub n: u64,
}
const LONG_QUEUE: &str = "fipct-ui-pass-long-queue-qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq\
    qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq\
    qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq\
    qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq";

fn main() {
    let lock = NamedMutex::open(RUN_LOCK).unwrap();
    let wait = Duration::from_secs(120);
    let _held = match lock.lock_timeout(wait) {
        Ok(guard) => guard,
        // A run that died holding it is over.
        Err(e) => e.into_guard().expect("another run kept the run lock for 2 minutes"),
    };

    // A value no other run sends (belt and braces: runs take turns).
    let nonce = u64::from(std::process::id()) << 32
        | u64::from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos(),
        );

    let queue: SlickQueue<Order> = Order::queue().unwrap();
    assert_eq!(queue.capacity(), 64);
    assert_eq!(queue.name(), Some("fipct-ui-pass-orders"));
    let mut rx = Order::consumer().unwrap();
    let sent = Order { id: nonce, qty: 3, side: 1 };
    Order::producer().unwrap().send(&sent).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let got = rx.recv_timeout(left).expect("the order arrives");
        if got.id == nonce {
            assert_eq!(got, sent);
            break;
        }
    }

    // The lossless queue: what is sent before the first consumer waits for it, and a
    // full ring hands the message back.
    let _ = fastipc::queue::remove("fipct-ui-pass-fills");
    let fills = Fill::queue().unwrap();
    assert_eq!(fills.mode(), fastipc::queue::Mode::Lossless);
    let tx = Fill::producer().unwrap();
    for id in 0..4 {
        tx.try_send(&Fill { id }).unwrap();
    }
    assert!(tx.try_send(&Fill { id: 4 }).is_err());
    let mut fill_rx = Fill::consumer().unwrap();
    for id in 0..4 {
        assert_eq!(fill_rx.try_recv(), Ok(Fill { id }));
    }
    drop((tx, fill_rx, fills));
    let _ = fastipc::queue::remove("fipct-ui-pass-fills");

    let totals: SharedCell<Totals> = Totals::shared().unwrap();
    let before = totals.update(|t| {
        t.orders += 1;
        t.qty += 3;
        *t
    });
    let before = before.unwrap_or_else(|died| *died.into_guard());
    let after = totals.load().unwrap_or_else(|died| *died.into_guard());
    assert!(after.orders >= before.orders && after.qty >= before.qty);

    let state_queue = State::queue().unwrap();
    let state_cell = State::shared().unwrap();
    state_cell.store(&State { value: 1 }).unwrap_or_else(|died| drop(died));
    assert_eq!(state_queue.capacity(), 1);
    assert_eq!(state_cell.name(), "fipct-ui-pass-state");

    // The longest names the derive accepts are accepted at run time too.
    let long_queue = LongNames::queue().unwrap();
    assert_eq!(long_queue.name().map(str::len), Some(255));
    let long_cell = LongNames::shared().unwrap();
    assert_eq!(long_cell.name().len(), 235);

    drop((rx, queue, state_queue, totals, state_cell, long_queue, long_cell));
    // Queues are removed explicitly, still under the run lock (cells go with their last
    // handle).
    let _ = fastipc::queue::remove("fipct-ui-pass-orders");
    let _ = fastipc::queue::remove("fipct-ui-pass-state");
    let _ = fastipc::queue::remove(LONG_QUEUE);
}
