use fastipc::IpcMessage;

#[derive(IpcMessage)]
#[repr(C)]
struct Tail {
    len: u64,
    bytes: [u8],
}

#[derive(IpcMessage)]
#[repr(C)]
struct Text {
    len: u64,
    text: str,
}

#[derive(IpcMessage)]
#[repr(C)]
struct Object {
    len: u64,
    object: dyn Send,
}

fn main() {}
