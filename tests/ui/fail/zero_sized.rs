use fastipc::IpcMessage;

// Every field is zero-sized: refused by the compile-time size check.
#[derive(IpcMessage, Clone, Copy)]
#[repr(C)]
struct Nothing {
    marker: [u64; 0],
}

fn main() {}
