use fastipc::IpcMessage;

#[derive(IpcMessage, Clone, Copy)]
struct Tick {
    price: u64,
}

fn main() {}
