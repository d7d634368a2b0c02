use fastipc::IpcMessage;

#[derive(IpcMessage, Clone, Copy)]
#[repr(C)]
struct Tick
where
    u64: Copy,
{
    price: u64,
}

fn main() {}
