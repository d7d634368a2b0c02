use fastipc::IpcMessage;

#[derive(IpcMessage, Clone, Copy)]
#[repr(C)]
#[ipc(queue = "ticks", capacity = 1024, size = 64)]
struct Tick {
    price: u64,
}

fn main() {}
