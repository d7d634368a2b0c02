use fastipc::IpcMessage;

#[derive(IpcMessage, Clone, Copy)]
#[repr(C)]
#[ipc(single_producer)]
struct Orphan {
    id: u64,
}

#[derive(IpcMessage, Clone, Copy)]
#[repr(C)]
#[ipc(queue = "q", capacity = 8, single_producer = true)]
struct Valued {
    id: u64,
}

#[derive(IpcMessage, Clone, Copy)]
#[repr(C)]
#[ipc(queue = "q", capacity = 8, single_producer, single_producer)]
struct Twice {
    id: u64,
}

fn main() {}
