use fastipc::IpcMessage;

#[derive(IpcMessage, Clone, Copy)]
#[repr(C)]
#[ipc(queue, capacity = 1024)]
struct Tick {
    price: u64,
}

fn main() {}
