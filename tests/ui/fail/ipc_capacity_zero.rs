use fastipc::IpcMessage;

#[derive(IpcMessage, Clone, Copy)]
#[repr(C)]
#[ipc(queue = "ticks", capacity = 0)]
struct Tick {
    price: u64,
}

fn main() {}
