//! Unit tests of the typed endpoints: hostile shared cursors.

use core::sync::atomic::Ordering::Relaxed;

use crate::error::RecvError;
use crate::queue::{SharedCursor, SlickQueue};

// Review finding 6, typed: a shared cursor near u64::MAX (a peer can write it).
#[test]
fn shared_consumer_survives_a_hostile_cursor() {
    let q = SlickQueue::<u64>::local(4).unwrap();
    let c = u64::MAX - 3; // position 0
    let slot = q.ring().raw().slot(0);
    slot.data_index.store(c, Relaxed);
    slot.size.store(4, Relaxed);
    let mut rx = q.shared_consumer(SharedCursor::local(c));
    let got = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rx.try_recv()));
    assert_eq!(
        got.expect("a hostile cursor value panicked"),
        Err(RecvError::Corrupt { index: c, size: 4 })
    );
    assert_eq!(rx.cursor().load(), 0);
}
