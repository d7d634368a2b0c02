//! `#[derive(IpcMessage)]`: the compile-fail and pass suites (trybuild, `tests/ui`), the
//! fingerprint's properties, and the behaviour of derived types.
//!
//! The `.stderr` snapshots are pinned to the toolchain of `rust-toolchain.toml`; refresh
//! them with `TRYBUILD=overwrite cargo test --test derive` after a toolchain bump.

use fastipc::IpcMessage;
use fastipc::message::fingerprint;

/// Every compile-fail case under `tests/ui/fail` matches its `.stderr`; every case under
/// `tests/ui/pass` compiles (warnings denied) and runs.
#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
    t.pass("tests/ui/pass/*.rs");
}

/// Declares, in module `$m`, a struct `$name` with the given fields.
macro_rules! message {
    ($m:ident :: $name:ident $(#[$attr:meta])* { $($field:ident : $ty:ty),* $(,)? }) => {
        mod $m {
            #[allow(unused_imports)]
            use super::*;
            #[derive(fastipc::IpcMessage, Clone, Copy, Debug, PartialEq)]
            #[repr(C)]
            $(#[$attr])*
            pub(crate) struct $name { $(pub(crate) $field: $ty),* }
        }
    };
}

// The reference layout, and one change of each kind.
message!(base::Tick {
    ts_ns: u64,
    price: f64,
    qty: u32,
    side: u32
});
message!(same::Tick {
    ts_ns: u64,
    price: f64,
    qty: u32,
    side: u32
});
message!(other_name::Trade {
    ts_ns: u64,
    price: f64,
    qty: u32,
    side: u32
});
message!(reordered::Tick {
    ts_ns: u64,
    price: f64,
    side: u32,
    qty: u32
});
message!(renamed_field::Tick {
    ts_ns: u64,
    price: f64,
    quantity: u32,
    side: u32
});
message!(retyped_signed::Tick {
    ts_ns: u64,
    price: f64,
    qty: i32,
    side: u32
});
message!(retyped_float::Tick {
    ts_ns: u64,
    price: f64,
    qty: f32,
    side: u32
});
message!(swapped_types::Tick {
    ts_ns: u64,
    price: u64,
    qty: u32,
    side: u32
});
message!(resized::Tick {
    ts_ns: u64,
    price: f64,
    qty: u64,
    side: u64
});
message!(extra_field::Tick {
    ts_ns: u64,
    price: f64,
    qty: u32,
    side: u32,
    venue: [u8; 8]
});
message!(pair::Pair { a: u64, b: u64 });
message!(pair_aligned::Pair #[repr(align(16))] { a: u64, b: u64 });

// Arrays: element type and length.
message!(bytes4::Name { text: [u8; 4] });
message!(bytes8::Name { text: [u8; 8] });
message!(signed4::Name { text: [i8; 4] });
message!(words1::Name { text: [u32; 1] });

// Nested messages: a change inside the inner struct changes the outer one.
message!(inner_a::Level {
    price: u64,
    qty: u32,
    orders: u32
});
message!(inner_b::Level {
    price: u64,
    qty: u32,
    orders: i32
});
message!(outer_a::Book {
    seq: u64,
    levels: [inner_a::Level; 2]
});
message!(outer_a2::Book {
    seq: u64,
    levels: [inner_a::Level; 2]
});
message!(outer_b::Book {
    seq: u64,
    levels: [inner_b::Level; 2]
});
message!(outer_short::Book {
    seq: u64,
    levels: [inner_a::Level; 1]
});

#[test]
fn identical_layouts_have_equal_fingerprints() {
    assert_eq!(base::Tick::FINGERPRINT, same::Tick::FINGERPRINT);
    assert_eq!(outer_a::Book::FINGERPRINT, outer_a2::Book::FINGERPRINT);
}

#[test]
fn the_struct_name_does_not_enter_the_fingerprint() {
    // Documented choice: the fingerprint describes the bytes, so a consumer crate may
    // mirror a producer's message under its own name. `NAME` still tells them apart.
    assert_eq!(base::Tick::FINGERPRINT, other_name::Trade::FINGERPRINT);
    assert_eq!(base::Tick::NAME, "Tick");
    assert_eq!(other_name::Trade::NAME, "Trade");
}

#[test]
fn every_layout_change_changes_the_fingerprint() {
    let changed = [
        ("reordered", reordered::Tick::FINGERPRINT),
        ("renamed field", renamed_field::Tick::FINGERPRINT),
        ("retyped u32 -> i32", retyped_signed::Tick::FINGERPRINT),
        ("retyped u32 -> f32", retyped_float::Tick::FINGERPRINT),
        ("retyped f64 -> u64", swapped_types::Tick::FINGERPRINT),
        ("resized u32 -> u64", resized::Tick::FINGERPRINT),
        ("field added", extra_field::Tick::FINGERPRINT),
    ];
    for (what, fp) in changed {
        assert_ne!(fp, base::Tick::FINGERPRINT, "{what} kept the fingerprint");
        assert_ne!(fp, 0, "{what}: a fingerprint is never 0");
    }
    // And the changed layouts differ from each other too.
    for (i, (a, fa)) in changed.iter().enumerate() {
        for (b, fb) in &changed[i + 1..] {
            assert_ne!(fa, fb, "{a} and {b} collide");
        }
    }
}

#[test]
fn raising_the_alignment_changes_the_fingerprint() {
    assert_eq!(size_of::<pair::Pair>(), size_of::<pair_aligned::Pair>());
    assert_ne!(pair::Pair::FINGERPRINT, pair_aligned::Pair::FINGERPRINT);
}

#[test]
fn array_fields_fingerprint_element_type_and_length() {
    assert_ne!(bytes4::Name::FINGERPRINT, bytes8::Name::FINGERPRINT);
    assert_ne!(bytes4::Name::FINGERPRINT, signed4::Name::FINGERPRINT);
    // Same size and name, other element type and length.
    assert_ne!(bytes4::Name::FINGERPRINT, words1::Name::FINGERPRINT);
}

#[test]
fn nested_changes_reach_the_outer_fingerprint() {
    assert_ne!(inner_a::Level::FINGERPRINT, inner_b::Level::FINGERPRINT);
    assert_ne!(outer_a::Book::FINGERPRINT, outer_b::Book::FINGERPRINT);
    assert_ne!(outer_a::Book::FINGERPRINT, outer_short::Book::FINGERPRINT);
}

#[test]
fn fingerprint_follows_the_documented_recipe() {
    use core::mem::offset_of;
    // Size, alignment and field count, then name, type fingerprint and offset per field.
    let h = fingerprint::message(24, 8, 4);
    let h = fingerprint::field(h, "ts_ns", u64::FINGERPRINT, offset_of!(base::Tick, ts_ns));
    let h = fingerprint::field(h, "price", f64::FINGERPRINT, offset_of!(base::Tick, price));
    let h = fingerprint::field(h, "qty", u32::FINGERPRINT, offset_of!(base::Tick, qty));
    let h = fingerprint::field(h, "side", u32::FINGERPRINT, offset_of!(base::Tick, side));
    assert_eq!(fingerprint::finish(h), base::Tick::FINGERPRINT);
}

#[test]
fn fingerprints_are_compile_time_constants() {
    const FP: u64 = base::Tick::FINGERPRINT;
    const ARRAY: u64 = <[base::Tick; 3]>::FINGERPRINT;
    assert_eq!(FP, base::Tick::FINGERPRINT);
    assert_eq!(ARRAY, fingerprint::array(FP, 3));
}

/// A message whose fields are all accepted kinds: nested, arrays, a newtype, padding.
#[derive(IpcMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
struct Order {
    id: u128,
    price: Price,
    legs: [inner_a::Level; 2],
    qty: u32,
    side: u8,
    _pad: [u8; 3],
}

/// A `repr(transparent)` newtype.
#[derive(IpcMessage, Clone, Copy, Debug, PartialEq)]
#[repr(transparent)]
struct Price(u64);

fn assert_message<T: IpcMessage>() -> (&'static str, u64) {
    (T::NAME, T::FINGERPRINT)
}

#[test]
fn derived_types_are_messages_and_pod() {
    assert_eq!(assert_message::<Order>().0, "Order");
    assert_eq!(assert_message::<Price>().0, "Price");
    assert_eq!(size_of::<Order>(), 16 + 8 + 2 * 16 + 4 + 1 + 3);
    assert_eq!(align_of::<Order>(), align_of::<u128>());

    let order = Order {
        id: 7,
        price: Price(101),
        legs: [inner_a::Level {
            price: 1,
            qty: 2,
            orders: 3,
        }; 2],
        qty: 5,
        side: 1,
        _pad: [0; 3],
    };
    // Through bytes and back, as another process would read it.
    let bytes: Vec<u8> = bytemuck::bytes_of(&order).to_vec();
    assert_eq!(bytes.len(), size_of::<Order>());
    assert_eq!(&bytes[16..24], &101u64.to_ne_bytes());
    assert_eq!(bytemuck::pod_read_unaligned::<Order>(&bytes), order);

    let zeroed: Order = bytemuck::Zeroable::zeroed();
    assert_eq!(zeroed.price, Price(0));
    assert!(bytemuck::bytes_of(&zeroed).iter().all(|&b| b == 0));
}

#[test]
fn transparent_newtype_keeps_its_field_layout() {
    assert_eq!(size_of::<Price>(), 8);
    assert_eq!(bytemuck::bytes_of(&Price(0x0102)), &0x0102u64.to_ne_bytes());
    // Its own fingerprint, not the bare `u64`'s: the field name is part of it.
    assert_ne!(Price::FINGERPRINT, u64::FINGERPRINT);
}

/// A stand-in for the runtime behind `#[ipc(queue = ..)]` and `#[ipc(shared = ..)]`, with
/// the signatures of the cross-team contract, reached through `#[ipc(crate = "...")]`.
/// It records exactly what the generated code asks for (names, capacity, the `?`
/// conversions); `tests/ui/pass/attributes.rs`, `tests/derive_processes.rs` and
/// `tests/shared_cell.rs` run the same attributes against the real runtime.
mod mock {
    pub(crate) mod __private {
        pub(crate) use fastipc::__private::*;
        use std::marker::PhantomData;

        /// What the generated code asked for: (constructor, name, capacity).
        pub(crate) type Call = (&'static str, String, usize);

        std::thread_local! {
            pub(crate) static CALLS: std::cell::RefCell<Vec<Call>> = const {
                std::cell::RefCell::new(Vec::new())
            };
        }

        fn record(what: &'static str, name: &str, capacity: usize) {
            CALLS.with(|calls| calls.borrow_mut().push((what, name.to_owned(), capacity)));
        }

        #[derive(Debug)]
        pub(crate) struct OpenError;
        pub(crate) enum Mode {
            Lossy,
            Lossless,
        }
        #[derive(Debug)]
        pub(crate) struct SharedCellError;
        pub(crate) struct SlickQueue<T>(PhantomData<T>);
        pub(crate) struct Producer<T>(PhantomData<T>);
        pub(crate) struct Consumer<T>(PhantomData<T>);
        pub(crate) struct SharedCell<T>(PhantomData<T>);

        impl<T: IpcMessage> SlickQueue<T> {
            pub(crate) fn open_or_create_with(
                name: &str,
                capacity: usize,
                mode: Mode,
            ) -> Result<Self, OpenError> {
                let what = match mode {
                    Mode::Lossy => "queue",
                    Mode::Lossless => "lossless queue",
                };
                record(what, name, capacity);
                if name == "refused" {
                    return Err(OpenError);
                }
                Ok(SlickQueue(PhantomData))
            }
            pub(crate) fn producer(&self) -> Result<Producer<T>, OpenError> {
                Ok(Producer(PhantomData))
            }
            pub(crate) fn consumer(&self) -> Result<Consumer<T>, OpenError> {
                Ok(Consumer(PhantomData))
            }
        }

        impl<T: IpcMessage> SharedCell<T> {
            pub(crate) fn open_or_create(name: &str) -> Result<Self, SharedCellError> {
                record("shared", name, 0);
                Ok(SharedCell(PhantomData))
            }
        }
    }
}

/// A message with a default queue and a named shared cell, against the stand-in runtime.
#[derive(IpcMessage, Clone, Copy)]
#[repr(C)]
#[ipc(crate = "crate::mock", queue = "ticks", capacity = 64)]
#[ipc(shared = "tick-state")]
struct MockTick {
    price: u64,
}

/// An endpoint whose queue cannot be opened: the error comes back through `?`.
#[derive(IpcMessage, Clone, Copy)]
#[repr(C)]
#[ipc(crate = "crate::mock", queue = "refused", capacity = 1)]
struct Refused {
    price: u64,
}

/// `lossless`: the generated `queue()` asks for a lossless queue.
#[derive(IpcMessage, Clone, Copy)]
#[repr(C)]
#[ipc(crate = "crate::mock", queue = "orders", capacity = 8, lossless)]
struct MockOrder {
    id: u64,
}

fn mock_calls() -> Vec<mock::__private::Call> {
    mock::__private::CALLS.with(|calls| calls.take())
}

#[test]
fn queue_attribute_opens_the_named_queue_with_its_capacity() {
    let _ = mock_calls();
    assert!(MockTick::queue().is_ok());
    assert!(MockTick::producer().is_ok());
    assert!(MockTick::consumer().is_ok());
    let queue = ("queue", "ticks".to_owned(), 64);
    assert_eq!(mock_calls(), vec![queue.clone(), queue.clone(), queue]);

    assert!(Refused::producer().is_err());
    assert!(Refused::consumer().is_err());
    assert_eq!(mock_calls().len(), 2);

    assert!(MockOrder::producer().is_ok());
    assert_eq!(
        mock_calls(),
        vec![("lossless queue", "orders".to_owned(), 8)]
    );
}

#[test]
fn shared_attribute_opens_the_named_cell() {
    let _ = mock_calls();
    assert!(MockTick::shared().is_ok());
    assert_eq!(mock_calls(), vec![("shared", "tick-state".to_owned(), 0)]);
}

/// Constants named like anything the generated code might bind do not disturb it.
mod next_to_constants {
    use fastipc::IpcMessage;

    #[allow(non_upper_case_globals, dead_code)]
    const fingerprint: u64 = 0;
    #[allow(non_upper_case_globals, dead_code)]
    const h: u64 = 0;
    #[allow(non_upper_case_globals, dead_code)]
    const hash: u64 = 0;

    #[derive(IpcMessage, Clone, Copy)]
    #[repr(C)]
    struct Value {
        value: u64,
    }

    #[test]
    fn user_constants_do_not_capture_generated_bindings() {
        assert_ne!(Value::FINGERPRINT, 0);
    }
}

/// The derive's limits on `#[ipc]` names (duplicated in the proc-macro crate, which cannot
/// depend on the runtime) are the runtime's: a name the derive accepts is never refused
/// when `T::queue()` or `T::shared()` runs. `tests/ui/fail/ipc_name_too_long.rs` shows the
/// derive refusing one byte more; `tests/ui/pass/attributes.rs` opens both at the limit.
mod derive_limits {
    include!("../fastipc-derive/src/limits.rs");

    #[test]
    fn name_limits_agree_with_the_runtime() {
        assert_eq!(MAX_QUEUE_NAME_LEN, fastipc::Segment::MAX_NAME_LEN);
        assert_eq!(MAX_SHARED_NAME_LEN, fastipc::named::cell::MAX_NAME_LEN);
    }
}
