use fastipc::IpcMessage;

// `Pod` needs `Copy`: derive `Clone, Copy` next to `IpcMessage`. One error per struct, on
// its name, and none from inside `bytemuck` or from the `#[ipc(...)]` functions.
#[derive(IpcMessage)]
#[repr(C)]
struct Tick {
    price: u64,
}

#[derive(IpcMessage, Clone)]
#[ipc(queue = "missing_copy_q", capacity = 8, shared = "missing_copy_s")]
#[repr(C)]
struct Quote {
    bid: u64,
    ask: u64,
}

fn main() {}
