use fastipc::IpcMessage;

#[derive(IpcMessage, Clone, Copy)]
#[repr(simd)]
struct Lanes {
    lanes: [u32; 4],
}

fn main() {}
