use fastipc::IpcMessage;

#[derive(IpcMessage, Clone, Copy)]
#[repr(C)]
struct Tick {
    side: u8,
    price: u64,
}

fn main() {}
