use fastipc::IpcMessage;

#[derive(IpcMessage, Clone, Copy)]
#[repr(C)]
struct Handles {
    by_ref: &'static u64,
    raw: *const u64,
    callback: fn(u64) -> u64,
}

fn main() {}
