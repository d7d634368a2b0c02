use fastipc::IpcMessage;

#[derive(IpcMessage, Clone, Copy)]
#[repr(C)]
#[ipc = "ticks"]
struct Tick {
    price: u64,
}

fn main() {}
