use fastipc::IpcMessage;
use std::marker::PhantomData;

#[derive(IpcMessage)]
#[repr(C)]
struct Owned {
    maybe: Option<u64>,
    boxed: Box<u64>,
    text: String,
    items: Vec<u8>,
    marker: PhantomData<u64>,
}

fn main() {}
