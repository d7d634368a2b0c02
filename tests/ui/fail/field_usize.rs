use fastipc::IpcMessage;

#[derive(IpcMessage, Clone, Copy)]
#[repr(C)]
struct Cursor {
    index: usize,
    delta: core::primitive::isize,
}

fn main() {}
