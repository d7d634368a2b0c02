use fastipc::IpcMessage;

#[derive(IpcMessage, Clone, Copy)]
#[repr(C)]
#[ipc(queue = "ticks", capacity = 4294967296)]
struct Tick {
    price: u64,
}

fn main() {}
