//! Foreign, truncated and corrupted segments: each is refused on attach with its own
//! error, without panicking, reading out of bounds or hanging; `Ring::inspect` decodes
//! them without waiting.

use std::time::{Duration, Instant};

use fastipc::queue::{OpenError, Ring};
use fastipc::{ShmError, SlickQueue};
use fastipc_testkit::{ShmCleanup, unique_name};

/// A valid, ready SLQ1 queue image (header, slots, data), as a peer would make it.
fn image(capacity: u32, element_size: u32) -> Vec<u8> {
    let len = 64 + 16 * capacity as usize + element_size as usize * capacity as usize;
    let mut b = vec![0u8; len];
    b[8..12].copy_from_slice(&capacity.to_le_bytes());
    b[12..16].copy_from_slice(&element_size.to_le_bytes());
    b[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
    b[24..28].copy_from_slice(b"1QLS");
    b[28..32].copy_from_slice(&1u32.to_le_bytes());
    b[48..52].copy_from_slice(&3u32.to_le_bytes());
    for i in 0..capacity as usize {
        let s = 64 + 16 * i;
        b[s..s + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        b[s + 8..s + 12].copy_from_slice(&1u32.to_le_bytes());
    }
    b
}

fn put_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

/// Writes `bytes` as segment `/dev/shm/NAME` and returns its cleanup guard.
fn plant(name: &str, bytes: &[u8]) -> ShmCleanup {
    let guard = ShmCleanup::new().segment(name);
    std::fs::write(format!("/dev/shm/{name}"), bytes).unwrap();
    guard
}

fn open_u64(name: &str) -> OpenError {
    SlickQueue::<u64>::open(name).unwrap_err()
}

#[test]
fn a_valid_peer_image_is_accepted() {
    let name = unique_name("q-h-valid");
    let _g = plant(&name, &image(8, 8));
    let q = SlickQueue::<u64>::open(&name).unwrap();
    assert_eq!(q.capacity(), 8);
    let mut rx = q.consumer().unwrap();
    q.producer().unwrap().send(&5).unwrap();
    assert_eq!(rx.try_recv(), Ok(5));
}

#[test]
fn truncated_files_are_refused() {
    let name = unique_name("q-h-trunc");
    let _g = plant(&name, &image(8, 8)[..40]);
    match open_u64(&name) {
        OpenError::Truncated { size: 40, .. } => {}
        e => panic!("{e:?}"),
    }
    assert!(matches!(
        Ring::inspect(&name),
        Err(OpenError::Truncated { size: 40, .. })
    ));
    // An empty file (a creator that never sized it) after the bounded grow wait.
    let empty = unique_name("q-h-empty");
    let _g2 = plant(&empty, &[]);
    let start = Instant::now();
    assert!(matches!(
        open_u64(&empty),
        OpenError::Truncated { size: 0, .. }
    ));
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn wrong_magic_is_refused() {
    let name = unique_name("q-h-magic");
    let mut b = image(8, 8);
    put_u32(&mut b, 24, 0x1234_5678);
    let _g = plant(&name, &b);
    match open_u64(&name) {
        OpenError::BadMagic {
            found: 0x1234_5678, ..
        } => {}
        e => panic!("{e:?}"),
    }
    let i = Ring::inspect(&name).unwrap();
    assert_eq!(i.header.magic, 0x1234_5678);
    assert!(matches!(i.validation, Err(OpenError::BadMagic { .. })));
}

#[test]
fn unknown_feature_bits_are_refused() {
    let name = unique_name("q-h-feat");
    let mut b = image(8, 8);
    put_u32(&mut b, 24, 0x534C_5135); // bit 2
    let _g = plant(&name, &b);
    match open_u64(&name) {
        OpenError::UnknownFeatures { unknown: 4, .. } => {}
        e => panic!("{e:?}"),
    }
}

#[test]
fn a_queue_without_read_last_is_refused() {
    let name = unique_name("q-h-slq0");
    let mut b = image(8, 8);
    put_u32(&mut b, 24, 0x534C_5130);
    let _g = plant(&name, &b);
    assert!(matches!(
        open_u64(&name),
        OpenError::ReadLastDisabled { .. }
    ));
}

#[test]
fn items_per_slot_other_than_one_is_refused() {
    let name = unique_name("q-h-ips");
    let mut b = image(8, 8);
    put_u32(&mut b, 24, 0x534C_5133);
    put_u32(&mut b, 28, 2);
    let _g = plant(&name, &b);
    assert!(matches!(
        open_u64(&name),
        OpenError::UnsupportedItemsPerSlot {
            items_per_slot: 2,
            ..
        }
    ));
    // The marker says one thing, the field another.
    let name2 = unique_name("q-h-ips2");
    let mut b = image(8, 8);
    put_u32(&mut b, 28, 4);
    let _g2 = plant(&name2, &b);
    assert!(matches!(open_u64(&name2), OpenError::CorruptHeader { .. }));
}

#[test]
fn capacity_not_a_power_of_two_is_refused() {
    for capacity in [12u32, 0, 3] {
        let name = unique_name("q-h-cap");
        let mut b = image(16, 8);
        put_u32(&mut b, 8, capacity);
        let _g = plant(&name, &b);
        match open_u64(&name) {
            OpenError::CapacityNotPowerOfTwo { capacity: c, .. } if c == capacity => {}
            e => panic!("{capacity}: {e:?}"),
        }
    }
}

#[test]
fn element_size_mismatch_is_refused_naming_both() {
    let name = unique_name("q-h-es");
    let _g = plant(&name, &image(8, 16));
    let e = open_u64(&name);
    match &e {
        OpenError::ElementSizeMismatch {
            expected_size: 8,
            found_size: 16,
            ..
        } => {}
        e => panic!("{e:?}"),
    }
    let msg = e.to_string();
    assert!(
        msg.contains("`u64`") && msg.contains("unrecorded type"),
        "{msg}"
    );
    assert!(matches!(
        Ring::open(&name, Some(4)),
        Err(OpenError::ElementSizeMismatch { .. })
    ));
    assert_eq!(Ring::open(&name, None).unwrap().element_size(), 16);
}

#[test]
fn header_claiming_more_than_the_file_holds_is_refused() {
    let name = unique_name("q-h-short");
    let mut b = image(8, 8);
    put_u32(&mut b, 8, 1024);
    let _g = plant(&name, &b);
    match open_u64(&name) {
        OpenError::FileTooSmall {
            file_size,
            required,
            ..
        } => {
            assert_eq!(file_size, b.len() as u64);
            assert_eq!(required, 64 + 16 * 1024 + 8 * 1024);
        }
        e => panic!("{e:?}"),
    }
    // Sizes whose product overflows 64 bits are still just "too small".
    let name2 = unique_name("q-h-huge");
    let mut b = image(8, 8);
    put_u32(&mut b, 8, 1 << 31);
    put_u32(&mut b, 12, u32::MAX);
    let _g2 = plant(&name2, &b);
    assert!(matches!(
        Ring::open(&name2, None),
        Err(OpenError::FileTooSmall { .. })
    ));
}

#[test]
fn nonzero_init_state_padding_is_refused() {
    let name = unique_name("q-h-pad");
    let mut b = image(8, 8);
    put_u32(&mut b, 52, 1);
    let _g = plant(&name, &b);
    assert!(matches!(open_u64(&name), OpenError::CorruptHeader { .. }));
}

#[test]
fn a_queue_that_never_becomes_ready_is_refused_in_bounded_time() {
    let name = unique_name("q-h-ready");
    let mut b = image(8, 8);
    put_u32(&mut b, 48, 2); // a creator stuck initialising
    let _g = plant(&name, &b);
    let start = Instant::now();
    match open_u64(&name) {
        OpenError::NotReady { state: 2, .. } => {}
        e => panic!("{e:?}"),
    }
    assert!(start.elapsed() >= Duration::from_secs(2));
    assert!(start.elapsed() < Duration::from_secs(20));
    // Inspecting does not wait.
    let i = Ring::inspect(&name).unwrap();
    assert!(matches!(
        i.validation,
        Err(OpenError::NotReady { state: 2, .. })
    ));
    // A state no handshake writes is refused at once.
    let name2 = unique_name("q-h-state");
    let mut b = image(8, 8);
    put_u32(&mut b, 48, 7);
    let _g2 = plant(&name2, &b);
    assert!(matches!(open_u64(&name2), OpenError::CorruptHeader { .. }));
}

#[test]
fn missing_and_invalid_names() {
    let name = unique_name("q-h-missing");
    assert!(matches!(
        open_u64(&name),
        OpenError::Shm(ShmError::NotFound { .. })
    ));
    assert!(matches!(
        open_u64("a/b"),
        OpenError::Shm(ShmError::InvalidName { .. })
    ));
    assert!(!Ring::remove(&name).unwrap());
}

#[test]
fn inspect_decodes_a_good_queue() {
    let name = unique_name("q-h-inspect");
    let _g = ShmCleanup::new().segment(&name);
    let q = SlickQueue::<u64>::create(&name, 16).unwrap();
    q.producer().unwrap().send(&1).unwrap();
    let i = Ring::inspect(&name).unwrap();
    let g = i.validation.unwrap();
    assert_eq!((g.capacity, g.element_size), (16, 8));
    assert_eq!(i.header.next_index(), 1);
    assert_eq!(i.header.last_published_index(), Some(0));
    assert_eq!(i.trailer.unwrap().name, "u64");
    assert!(i.file_size > g.len as u64);
}
