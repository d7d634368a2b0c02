use fastipc::IpcMessage;

#[derive(IpcMessage, Clone, Copy)]
#[repr(C)]
#[ipc(crate = "not a path")]
struct Tick {
    price: u64,
}

fn main() {}
