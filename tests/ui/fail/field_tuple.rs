use fastipc::IpcMessage;

#[derive(IpcMessage, Clone, Copy)]
#[repr(C)]
struct Pair {
    both: (u32, u32),
    nothing: (),
}

fn main() {}
