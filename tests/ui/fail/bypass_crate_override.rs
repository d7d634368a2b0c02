// `#[ipc(crate = "...")]` names where the derive finds the runtime. A stand-in that
// re-exports the real `bytemuck` and `IpcMessage` but turns every check into a no-op must
// not yield a real `Pod` for a struct with a `bool` field (hidden behind an alias, so only
// the compiler can see it), with padding, or aligned beyond 16, nor a real `IpcMessage`
// whose fields are `Pod` but not portable (`usize`, `()`): the backstop checks them
// through the `IpcMessage` trait the impl names.
mod fake {
    pub mod __private {
        pub use fastipc::__private::{
            IpcMessage, align_of, bytemuck, offset_of, size_of,
        };
        pub const fn field_fingerprint<T>() -> u64 {
            1
        }
        pub const fn assert_no_padding<T, const PAD: usize>() {}
        pub const fn assert_no_padding_after_field<T, const GAP: usize>() {}
        pub const fn assert_align_at_most_16<T, const A: usize>() {}
        pub const fn assert_not_zero_sized<T, const Z: bool>() {}
        pub const fn assert_copy<T>() {}
    }
}

type Flag = bool;
type Len = usize;
type Nothing = ();

#[derive(fastipc::IpcMessage, Clone, Copy)]
#[ipc(crate = "crate::fake")]
#[repr(C)]
struct Bad {
    flag: Flag,
    wide: u64,
}

#[derive(fastipc::IpcMessage, Clone, Copy)]
#[ipc(crate = "crate::fake")]
#[repr(C)]
struct Padded {
    small: u8,
    wide: u64,
}

#[derive(fastipc::IpcMessage, Clone, Copy)]
#[ipc(crate = "crate::fake")]
#[repr(C, align(32))]
struct Wide {
    value: [u64; 4],
}

#[derive(fastipc::IpcMessage, Clone, Copy)]
#[ipc(crate = "crate::fake")]
#[repr(C)]
struct NotPortable {
    len: Len,
    nothing: Nothing,
}

fn main() {
    fn is_message<T: fastipc::IpcMessage>() {}
    is_message::<NotPortable>();
    fn is_pod<T: bytemuck::Pod>() {}
    is_pod::<Bad>();
    is_pod::<Padded>();
    is_pod::<Wide>();
}
