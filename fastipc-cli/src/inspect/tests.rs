//! Unit tests of `fastipc inspect`: every kind decoded from real segments, and hostile bytes.

use super::*;
use crate::testutil::TempDir;
use fastipc::MemRef;
use fastipc::queue::{Ring, RingSpec};
use fastipc::sync::{Event, Mutex, Semaphore};

fn registry(dir: &TempDir) -> Registry {
    Registry::at(dir.path().join("registry"))
}

/// Writes `bytes` as segment `name` of `dir` and inspects it.
fn inspect_bytes(dir: &TempDir, name: &str, bytes: &[u8]) -> Result<Report, CliError> {
    std::fs::write(dir.path().join(name), bytes).unwrap();
    inspect(dir.path(), name, &registry(dir))
}

fn queue_bytes(capacity: usize, element_size: usize) -> Vec<u8> {
    let ring = Ring::local(&RingSpec::new(capacity, element_size)).unwrap();
    ring.send_bytes(&vec![7u8; element_size * 2]).unwrap();
    let h = ring.header();
    let mut bytes = vec![0u8; ring.geometry().len];
    bytes[0..8].copy_from_slice(&h.reserved.to_le_bytes());
    bytes[8..12].copy_from_slice(&h.capacity.to_le_bytes());
    bytes[12..16].copy_from_slice(&h.element_size.to_le_bytes());
    bytes[16..24].copy_from_slice(&h.last_published.to_le_bytes());
    bytes[24..28].copy_from_slice(&h.magic.to_le_bytes());
    bytes[28..32].copy_from_slice(&h.items_per_slot.to_le_bytes());
    bytes[48..52].copy_from_slice(&h.init_state.to_le_bytes());
    bytes
}

#[test]
fn a_queue_header_is_decoded_and_checked() {
    let dir = TempDir::new("insp-queue");
    let bytes = queue_bytes(16, 24);
    let r = inspect_bytes(&dir, "q", &bytes).unwrap();
    let Details::Queue(q) = &r.details else {
        panic!("{r:?}")
    };
    assert_eq!((q.capacity, q.element_size, q.items_per_slot), (16, 24, 1));
    assert_eq!((q.next_index, q.last_reserve_count), (2, 2));
    assert_eq!(q.last_published, Some(0));
    assert_eq!(q.magic_text, "SLQ1");
    assert_eq!(q.init_state_name, "ready");
    assert!(q.valid && r.problems.is_empty(), "{r}");
    assert_eq!(r.summary(), "16 x 24 B, lossy, next index 2");
    // The same header in a file cut short: decoded, with the attach error listed.
    let r = inspect_bytes(&dir, "short", &bytes[..200]).unwrap();
    let Details::Queue(q) = &r.details else {
        panic!()
    };
    assert!(!q.valid);
    assert!(r.problems[0].contains("200 bytes"), "{:?}", r.problems);
    // Shorter than a header: no marker to see, so not ours.
    assert!(matches!(
        inspect_bytes(&dir, "tiny", &bytes[..40]),
        Err(CliError::Foreign { size: 40, .. })
    ));
}

#[test]
fn sync_headers_are_decoded() {
    let dir = TempDir::new("insp-sync");
    let mut buf = [0u64; 8];
    let mem = MemRef::from_mut(bytemuck::cast_slice_mut(&mut buf));
    let m = Mutex::init(mem).unwrap();
    // Keep it locked in the buffer: the copy below shows a held mutex.
    std::mem::forget(m.lock().unwrap());
    let bytes: Vec<u8> = bytemuck::cast_slice(&buf).to_vec();
    let r = inspect_bytes(&dir, "__pyfastipc_mutex_m", &bytes).unwrap();
    let Details::Mutex(d) = &r.details else {
        panic!()
    };
    assert!(d.locked);
    assert_eq!(d.owner_pid, Some(std::process::id()));
    assert_eq!(d.owner_alive, Some(true));
    assert_eq!(d.magic, "0x4d555458");
    assert!(r.problems.is_empty(), "{:?}", r.problems);

    let mut buf = [0u64; 8];
    let mem = MemRef::from_mut(bytemuck::cast_slice_mut(&mut buf));
    Semaphore::init(mem, 5).unwrap();
    let bytes: Vec<u8> = bytemuck::cast_slice(&buf).to_vec();
    let r = inspect_bytes(&dir, "__pyfastipc_sema_s", &bytes).unwrap();
    assert!(matches!(&r.details, Details::Semaphore(s) if s.count == 5));
    assert_eq!(r.summary(), "count 5");

    let mut word = [0u32; 1];
    let mem = MemRef::from_mut(bytemuck::cast_slice_mut(&mut word));
    Event::init(mem).unwrap().set();
    let r = inspect_bytes(&dir, "__pyfastipc_event_e", bytemuck::cast_slice(&word)).unwrap();
    assert!(matches!(&r.details, Details::Event(e) if e.set && e.value == 1));
}

#[test]
fn garbage_and_truncation_are_reported_never_a_panic() {
    let dir = TempDir::new("insp-garbage");
    // Garbage under every prefix, at every length up to a full header.
    let mut noise = Vec::new();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..200 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        noise.push(x as u8);
    }
    for prefix in crate::segment::PREFIXES {
        for len in [0, 1, 3, 4, 63, 64, 127, 128, 200] {
            let name = format!("{prefix}g{len}");
            match inspect_bytes(&dir, &name, &noise[..len]) {
                Ok(r) => {
                    assert!(!r.problems.is_empty() || r.kind() == Kind::Event, "{r}");
                    let _ = r.to_string();
                    let _ = serde_json::to_string(&r).unwrap();
                }
                Err(CliError::Truncated { size, needed, .. }) => {
                    assert_eq!(size, len as u64);
                    assert!(len < needed);
                }
                Err(e) => panic!("{name}: {e}"),
            }
        }
    }
    // A queue marker over garbage: decoded, reported invalid.
    let mut q = noise[..200].to_vec();
    q[24..28].copy_from_slice(b"1QLS");
    q[48..52].copy_from_slice(&3u32.to_le_bytes());
    let r = inspect_bytes(&dir, "garbage-queue", &q).unwrap();
    assert!(matches!(&r.details, Details::Queue(d) if !d.valid));
    assert!(!r.problems.is_empty());
    // No prefix, no marker.
    assert!(matches!(
        inspect_bytes(&dir, "plain", &noise),
        Err(CliError::Foreign { .. })
    ));
}

#[test]
fn a_shared_cell_header_is_decoded() {
    let dir = TempDir::new("insp-cell");
    let mut buf = [0u64; 18];
    let mem = MemRef::from_mut(bytemuck::cast_slice_mut(&mut buf));
    // SAFETY: the test's own buffer; no cell uses it.
    unsafe { fastipc::named::cell::layout::write_header::<[u32; 4]>(mem) }.unwrap();
    let bytes: Vec<u8> = bytemuck::cast_slice(&buf).to_vec();
    let r = inspect_bytes(&dir, "__fastipc_cell_c", &bytes[..144]).unwrap();
    let Details::SharedCell(c) = &r.details else {
        panic!("{r:?}")
    };
    assert!(c.valid && r.problems.is_empty(), "{r}");
    assert_eq!((c.value_size, c.value_align, c.value_offset), (16, 4, 128));
    assert!(!c.mutex.locked);
    assert_eq!(r.summary(), format!("{} (16 B), unlocked", c.type_name));
    // Cut before the end of the value.
    let r = inspect_bytes(&dir, "__fastipc_cell_short", &bytes[..130]).unwrap();
    assert!(r.problems[0].contains("value ends at byte 144"), "{r}");
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["kind"], "shared-cell");
    assert_eq!(json["valid"], false);
    assert_eq!(json["mutex"]["state_name"], "unlocked");
}

#[test]
fn python_data_objects_are_recognised() {
    let dir = TempDir::new("insp-py");
    let mut h = vec![0u8; 128];
    h[0..8].copy_from_slice(&PY_QUEUE_MAGIC.to_le_bytes());
    h[16..24].copy_from_slice(&16u64.to_le_bytes());
    h[24..32].copy_from_slice(&256u64.to_le_bytes());
    h[40..48].copy_from_slice(&5i64.to_le_bytes());
    let r = inspect_bytes(&dir, "__pyfastipc_queue_pq", &h).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(r.summary(), "16 slots x 256 B");
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["kind"], "pyfastipc-queue");
    assert_eq!(json["tail"], 5);
    let r = inspect_bytes(&dir, "__pyfastipc_history_buffer_h", &h).unwrap();
    assert_eq!(r.problems.len(), 1, "wrong magic for a history buffer");
}

#[test]
fn json_is_flat_with_a_kind_tag() {
    let dir = TempDir::new("insp-json");
    let r = inspect_bytes(&dir, "q", &queue_bytes(8, 8)).unwrap();
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["kind"], "queue");
    assert_eq!(v["name"], "q");
    assert_eq!(v["capacity"], 8);
    assert_eq!(v["last_published"], 0);
    assert_eq!(v["fingerprint"], "0x0000000000000000");
    assert_eq!(v["type_name"], serde_json::Value::Null);
    assert_eq!(v["attached"], serde_json::json!([]));
    assert_eq!(v["problems"], serde_json::json!([]));
}

#[test]
fn marker_text_is_printable() {
    assert_eq!(marker_text(0x534C_5131), "SLQ1");
    assert_eq!(marker_text(0x0000_4142), "..AB");
}
