use fastipc::IpcMessage;

#[derive(IpcMessage, Clone, Copy)]
#[repr(C)]
#[ipc(queue = "ticks", capacity = 1024)]
#[ipc(queue = "quotes")]
struct Tick {
    price: u64,
}

fn main() {}
