use fastipc::IpcMessage;

// `Pod` needs `Copy`: derive `Clone, Copy` next to `IpcMessage`.
#[derive(IpcMessage)]
#[repr(C)]
struct Tick {
    price: u64,
}

fn main() {}
