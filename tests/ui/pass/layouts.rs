//! Layouts the derive accepts. Compiled with every warning denied, so the generated code
//! is warning-free, then run: the asserts check the layouts the derive saw.
#![deny(warnings)]

use fastipc::IpcMessage;

/// Plain fields, ordered from the largest alignment to the smallest: no padding.
#[derive(IpcMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct Quote {
    pub bid: f64,
    pub ask: f64,
    pub bid_qty: u32,
    pub ask_qty: u32,
}

/// Explicit padding fields fill the gaps the compiler would leave.
#[derive(IpcMessage, Clone, Copy)]
#[repr(C)]
pub struct Tick {
    pub ts_ns: u64,
    pub price: f64,
    pub qty: u32,
    pub side: u8,
    pub _pad: [u8; 3],
}

/// Nested messages, arrays of messages, nested arrays, every primitive width.
#[derive(IpcMessage, Clone, Copy)]
#[repr(C)]
pub struct Book {
    pub wide: u128,
    pub signed_wide: i128,
    pub top: Quote,
    pub levels: [Quote; 4],
    pub a: i64,
    pub b: u64,
    pub c: f32,
    pub d: i32,
    pub grid: [[i16; 3]; 2],
    pub e: u16,
    pub f: u8,
    pub g: i8,
}

/// `repr(transparent)` newtype, and a tuple struct.
#[derive(IpcMessage, Clone, Copy)]
#[repr(transparent)]
pub struct Price(pub u64);

/// A tuple struct of a newtype and paths to primitives.
#[derive(IpcMessage, Clone, Copy)]
#[repr(C)]
pub struct Fill(pub Price, pub core::primitive::u32, pub ::std::primitive::f32);

/// `align(16)` is accepted when it leaves no padding; a raw identifier as a field name.
#[derive(IpcMessage, Clone, Copy)]
#[repr(C, align(16))]
pub struct Aligned {
    pub r#type: u64,
    pub value: [u32; 2],
}

mod renamed {
    // The crate under another name: `#[ipc(crate = "...")]` tells the derive where it is.
    use ::fastipc as ipc;

    /// A message declared through the renamed path.
    #[derive(ipc::IpcMessage, Clone, Copy)]
    #[ipc(crate = "ipc")]
    #[repr(C)]
    pub(crate) struct Status {
        pub(crate) code: u32,
    }
}

/// A field whose type is reached through a type alias of a message.
pub type Levels = [Quote; 2];

/// Type aliases are checked like any other named type.
#[derive(IpcMessage, Clone, Copy)]
#[repr(C)]
pub struct Spread {
    pub legs: Levels,
}

/// `Clone` and `Copy` written by hand instead of derived: the derive asks for `Copy`, not
/// for the attribute.
#[derive(IpcMessage)]
#[repr(C)]
pub struct HandCopy {
    pub value: u64,
}

impl Clone for HandCopy {
    fn clone(&self) -> Self {
        *self
    }
}

impl Copy for HandCopy {}

fn main() {
    use core::mem::{align_of, offset_of, size_of};
    assert_eq!(size_of::<Tick>(), 24);
    assert_eq!(offset_of!(Tick, side), 20);
    assert_eq!(size_of::<Book>(), 16 + 16 + 24 + 4 * 24 + 8 + 8 + 4 + 4 + 12 + 2 + 1 + 1);
    assert_eq!(align_of::<Aligned>(), 16);
    assert_eq!(size_of::<Fill>(), 16);
    assert_eq!(Quote::NAME, "Quote");
    assert_eq!(Aligned::NAME, "Aligned");
    assert_eq!(<renamed::Status as IpcMessage>::NAME, "Status");
    assert_ne!(Spread::FINGERPRINT, 0);
    assert_eq!(HandCopy::NAME, "HandCopy");

    // The derived `Pod` round-trips through bytes.
    let q = Quote { bid: 1.5, ask: 2.5, bid_qty: 3, ask_qty: 4 };
    let bytes = bytemuck::bytes_of(&q).to_vec();
    assert_eq!(bytes.len(), 24);
    assert_eq!(bytemuck::pod_read_unaligned::<Quote>(&bytes), q);
    let zero: Book = bytemuck::Zeroable::zeroed();
    assert_eq!(zero.top.bid, 0.0);
}
