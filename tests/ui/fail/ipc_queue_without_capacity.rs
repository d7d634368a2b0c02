use fastipc::IpcMessage;

#[derive(IpcMessage, Clone, Copy)]
#[repr(C)]
#[ipc(queue = "ticks")]
struct Tick {
    price: u64,
}

#[derive(IpcMessage, Clone, Copy)]
#[repr(C)]
#[ipc(capacity = 1024)]
struct Quote {
    bid: u64,
}

fn main() {}
