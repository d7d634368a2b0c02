use fastipc::IpcMessage;

#[derive(IpcMessage, Clone, Copy)]
#[repr(C)]
struct Tick {
    #[ipc(queue = "ticks", capacity = 1024)]
    price: u64,
}

fn main() {}
