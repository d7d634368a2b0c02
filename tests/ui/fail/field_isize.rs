use fastipc::IpcMessage;

#[derive(IpcMessage, Clone, Copy)]
#[repr(C)]
struct Offsets {
    delta: isize,
    history: [isize; 4],
}

fn main() {}
