use fastipc::IpcMessage;

#[derive(IpcMessage, Clone, Copy)]
#[repr(C)]
#[ipc(lossless)]
struct Orphan {
    id: u64,
}

#[derive(IpcMessage, Clone, Copy)]
#[repr(C)]
#[ipc(queue = "q", capacity = 8, lossless = true)]
struct Valued {
    id: u64,
}

fn main() {}
