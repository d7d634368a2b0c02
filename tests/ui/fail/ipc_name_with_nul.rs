use fastipc::IpcMessage;

#[derive(IpcMessage, Clone, Copy)]
#[repr(C)]
#[ipc(queue = "ticks\0", capacity = 1024)]
struct Tick {
    price: u64,
}

#[derive(IpcMessage, Clone, Copy)]
#[repr(C)]
#[ipc(shared = "sta\x00te")]
struct State {
    count: u64,
}

fn main() {}
