use fastipc::IpcMessage;

#[derive(IpcMessage, Clone, Copy)]
#[repr(u32)]
struct Tick {
    price: u64,
}

fn main() {}
