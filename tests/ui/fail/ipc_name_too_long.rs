use fastipc::IpcMessage;

// One byte over each limit: a queue's segment is the name itself (255 bytes at most), a
// cell's adds the prefix `__fastipc_cell_` and, in the registry, `.pids` (235 at most).
// (Each literal is one name, split over lines with `\` continuations.)
#[derive(IpcMessage, Clone, Copy)]
#[repr(C)]
#[ipc(
    queue = "qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq\
    qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq\
    qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq\
    qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq",
    capacity = 1024
)]
struct Tick {
    price: u64,
}

#[derive(IpcMessage, Clone, Copy)]
#[repr(C)]
#[ipc(
    shared = "ssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssss\
    ssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssss\
    ssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssss\
    ssssssssssssssssssssssssssssssssssssssssssss"
)]
struct State {
    count: u64,
}

fn main() {}
