// The derive's layout checks are trait bounds. Implementing those traits by hand to
// silence a check (here rule 4 for a padded struct, rule 3 for an enum field, rule 5 for
// a 32-aligned one) must not compile, with or without `unsafe`: the traits are sealed.
// And the backstop still refuses each struct.
use fastipc::IpcMessage;

#[derive(IpcMessage, Clone, Copy)]
#[repr(C)]
struct Padded {
    small: u8,
    wide: u64,
}
impl fastipc::message::rules::NoPadding<7> for Padded {}
impl fastipc::message::rules::NoPaddingAfterField<7> for Padded {}

#[derive(Clone, Copy)]
#[repr(u8)]
#[allow(dead_code)]
enum Side {
    Buy = 1,
    Sell = 2,
}
impl fastipc::message::rules::FieldIsMessage for Side {
    const FINGERPRINT: u64 = 1;
}

#[derive(IpcMessage, Clone, Copy)]
#[repr(C)]
struct WithEnum {
    side: Side,
}

#[derive(IpcMessage, Clone, Copy)]
#[repr(C, align(32))]
struct Wide {
    value: [u64; 4],
}
unsafe impl fastipc::message::rules::AlignAtMost16<32> for Wide {}

fn main() {}
