use fastipc::IpcMessage;

#[derive(IpcMessage, Clone, Copy)]
#[repr(C)]
#[ipc(queue = ticks, capacity = "1024")]
struct Tick {
    price: u64,
}

#[derive(IpcMessage, Clone, Copy)]
#[repr(C)]
#[ipc(shared = 7)]
struct State {
    count: u64,
}

fn main() {}
