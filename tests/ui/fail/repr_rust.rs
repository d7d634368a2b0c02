use fastipc::IpcMessage;

#[derive(IpcMessage, Clone, Copy)]
#[repr(Rust)]
struct Tick {
    price: u64,
}

fn main() {}
