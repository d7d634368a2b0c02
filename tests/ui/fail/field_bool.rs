use fastipc::IpcMessage;

#[derive(IpcMessage, Clone, Copy)]
#[repr(C)]
struct Order {
    qty: u32,
    flags: [bool; 4],
}

fn main() {}
