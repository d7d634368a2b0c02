use fastipc::IpcMessage;

#[derive(IpcMessage, Clone, Copy)]
#[repr(C, packed)]
struct Tick {
    price: u64,
    qty: u32,
}

fn main() {}
