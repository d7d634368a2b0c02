//! The inspection API's tests: every kind decoded from real bytes, cut short, or read by
//! name.

use super::*;
use crate::queue::{Ring, RingSpec};
use crate::sync::layout::OwnerIdentity;
use crate::sync::{Event, Mutex, Semaphore};

fn bytes_of(buf: &[u64]) -> Vec<u8> {
    bytemuck::cast_slice(buf).to_vec()
}

#[test]
fn every_kind_needs_its_whole_header() {
    for kind in [
        Kind::Queue,
        Kind::Mutex,
        Kind::Semaphore,
        Kind::Event,
        Kind::SharedCell,
        Kind::PyfastipcQueue,
        Kind::PyfastipcHistoryBuffer,
    ] {
        let needed = kind.header_len();
        assert!(needed <= HEAD_LEN);
        let zeros = vec![0u8; needed];
        let short = decode(
            kind,
            "x",
            needed as u64 - 1,
            &zeros[..needed - 1],
            |_, _| None,
        );
        assert_eq!(
            short.unwrap_err(),
            Truncated {
                kind,
                size: needed as u64 - 1,
                needed
            }
        );
        // Zeroed bytes of the right length decode (as an object not initialised).
        assert!(decode(kind, "x", needed as u64, &zeros, |_, _| None).is_ok());
    }
}

#[test]
fn a_queue_is_decoded_with_its_attach_checks_and_trailer() {
    let name = crate::queue::test_util::TempName::new("inspect");
    let spec = RingSpec::new(8, 16).with_type("Tick", 0x1234);
    let ring = Ring::create(&name.0, &spec).unwrap();
    ring.send_bytes(&[7u8; 16]).unwrap();
    // The segment's bytes, as a tool copies them.
    let bytes = std::fs::read(format!("{}/{}", crate::sys::shm::SHM_DIR, name.0)).unwrap();
    let size = bytes.len() as u64;
    assert_eq!(Kind::detect(&name.0, &bytes[..HEAD_LEN]), Some(Kind::Queue));
    let read_at = |offset: u64, len: usize| {
        let from = usize::try_from(offset).ok()?.min(bytes.len());
        Some(bytes[from..(from + len).min(bytes.len())].to_vec())
    };
    let Object::Queue(q) = decode(Kind::Queue, &name.0, size, &bytes, read_at).unwrap() else {
        panic!()
    };
    assert_eq!(q.inspection.validation.as_ref().unwrap().capacity, 8);
    assert_eq!(q.inspection.header.fingerprint, 0x1234);
    assert_eq!(q.inspection.header.last_published_index(), Some(0));
    assert_eq!(q.type_name.as_deref(), Some("Tick"));
    // Cut short: decoded, the attach error names the size, no trailer is asked for.
    let Object::Queue(q) = decode(Kind::Queue, &name.0, 100, &bytes, |_, _| {
        panic!("a queue that fails its checks has no trailer to read")
    })
    .unwrap() else {
        panic!()
    };
    assert!(q.type_name.is_none());
    assert!(
        q.inspection
            .validation
            .unwrap_err()
            .to_string()
            .contains("100 bytes")
    );
}

#[test]
fn a_held_mutex_names_its_live_holder_and_a_dead_identity_is_dead() {
    let mut buf = [0u64; 8];
    let m = Mutex::init(MemRef::from_mut(bytemuck::cast_slice_mut(&mut buf))).unwrap();
    std::mem::forget(m.lock().unwrap());
    let Object::Mutex(state) = decode(Kind::Mutex, "m", 64, &bytes_of(&buf), |_, _| None).unwrap()
    else {
        panic!()
    };
    assert_eq!(state.owner_pid, Some(std::process::id()));
    assert_eq!(state.owner_alive, Some(true));
    assert!(state.fastipc_holder);
    // The same holder with another start time: a reused id, so dead.
    let mut info = state.info;
    let id = info.owner_identity.unwrap();
    info.owner_identity = Some(OwnerIdentity::new(
        id.pid,
        id.start_time_low.wrapping_add(1).max(1),
    ));
    info.owner_pid = 0; // erased by a Python peer's late store
    let dead = MutexState::of(info);
    assert_eq!(dead.owner_pid, Some(id.pid));
    assert_eq!(dead.owner_alive, Some(false));
    // Unlocked: no holder to judge.
    info.state = MUTEX_UNLOCKED;
    assert_eq!(MutexState::of(info).owner_alive, None);
    assert_eq!(MutexState::of(info).owner_pid, None);
}

#[test]
fn semaphores_events_cells_and_python_objects_are_decoded() {
    let mut buf = [0u64; 8];
    Semaphore::init(MemRef::from_mut(bytemuck::cast_slice_mut(&mut buf)), 5).unwrap();
    let Object::Semaphore(s) =
        decode(Kind::Semaphore, "s", 64, &bytes_of(&buf), |_, _| None).unwrap()
    else {
        panic!()
    };
    assert_eq!(s.count, 5);

    let mut word = [0u64; 1];
    Event::init(MemRef::from_mut(
        &mut bytemuck::cast_slice_mut(&mut word)[..4],
    ))
    .unwrap()
    .set();
    let Object::Event(e) = decode(Kind::Event, "e", 4, &bytes_of(&word)[..4], |_, _| None).unwrap()
    else {
        panic!()
    };
    assert!(e.is_set());

    let mut buf = [0u64; 18];
    let mem = MemRef::from_mut(bytemuck::cast_slice_mut(&mut buf));
    // SAFETY: the test's own buffer; no cell uses it.
    unsafe { crate::named::cell::layout::write_header::<[u32; 4]>(mem) }.unwrap();
    let bytes = bytes_of(&buf);
    for (size, holds) in [(144, true), (130, false)] {
        let Object::SharedCell(c) =
            decode(Kind::SharedCell, "c", size, &bytes[..128], |_, _| None).unwrap()
        else {
            panic!()
        };
        assert!(c.info.is_valid());
        assert_eq!((c.value_end, c.holds_value), (144, holds));
        assert_eq!(c.mutex.owner_alive, None);
    }

    let mut h = vec![0u8; 128];
    h[0..8].copy_from_slice(&PY_QUEUE_MAGIC.to_le_bytes());
    h[16..24].copy_from_slice(&16u64.to_le_bytes());
    h[40..48].copy_from_slice(&5i64.to_le_bytes());
    let Object::PyfastipcQueue(p) =
        decode(Kind::PyfastipcQueue, "p", 128, &h, |_, _| None).unwrap()
    else {
        panic!()
    };
    assert_eq!(
        (p.magic, p.num_slots, p.tail, p.head),
        (PY_QUEUE_MAGIC, 16, 5, Some(0))
    );
    let Object::PyfastipcHistoryBuffer(p) =
        decode(Kind::PyfastipcHistoryBuffer, "p", 128, &h, |_, _| None).unwrap()
    else {
        panic!()
    };
    assert_eq!((p.head, p.mode, p.tail), (None, None, 0));
}

#[test]
fn segments_are_read_by_name_and_refused_with_a_typed_error() {
    let dir = std::env::temp_dir().join(crate::test_util::unique("inspect-dir"));
    std::fs::create_dir(&dir).unwrap();
    let write = |name: &str, bytes: &[u8]| std::fs::write(dir.join(name), bytes).unwrap();
    let mut buf = [0u64; 8];
    Semaphore::init(MemRef::from_mut(bytemuck::cast_slice_mut(&mut buf)), 3).unwrap();
    write("__pyfastipc_sema_s", &bytes_of(&buf));
    write("__pyfastipc_mutex_short", &[0u8; 10]);
    write("plain", &[0u8; 200]);
    std::os::unix::fs::symlink(dir.join("plain"), dir.join("link")).unwrap();
    std::fs::create_dir(dir.join("__pyfastipc_event_d")).unwrap();
    let result = std::panic::catch_unwind(|| {
        let (kind, object) = segment_in(&dir, "__pyfastipc_sema_s").unwrap();
        assert_eq!(kind, Kind::Semaphore);
        assert!(matches!(object, Object::Semaphore(s) if s.count == 3));
        assert!(matches!(
            segment_in(&dir, "__pyfastipc_mutex_short"),
            Err(InspectError::Truncated {
                source: Truncated {
                    size: 10,
                    needed: 64,
                    ..
                },
                ..
            })
        ));
        assert!(matches!(
            segment_in(&dir, "plain"),
            Err(InspectError::Foreign { size: 200, .. })
        ));
        for name in ["missing", "a/b", "link", "__pyfastipc_event_d"] {
            assert!(
                matches!(segment_in(&dir, name), Err(InspectError::Shm(_))),
                "{name}"
            );
        }
    });
    std::fs::remove_dir_all(&dir).unwrap();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn prefixes_win_over_content_and_queues_need_the_marker() {
    let mut q = [0u8; 64];
    q[24..28].copy_from_slice(&0x534C_5133u32.to_le_bytes());
    assert_eq!(Kind::detect("__pyfastipc_mutex_m", &q), Some(Kind::Mutex));
    assert_eq!(
        Kind::detect("q", &q),
        Some(Kind::Queue),
        "any feature digit"
    );
    assert_eq!(Kind::detect("q", &q[..63]), None, "shorter than a header");
    q[27] = 0x54;
    assert_eq!(Kind::detect("q", &q), None);
    assert_eq!(
        Kind::detect("__pyfastipc_mutex_", &[]),
        None,
        "a bare prefix"
    );
    assert_eq!(
        Kind::detect("__pyfastipc_history_buffer_h", &[]),
        Some(Kind::PyfastipcHistoryBuffer)
    );
    assert_eq!(
        Kind::detect("__fastipc_cell_c", &[]),
        Some(Kind::SharedCell)
    );
    for prefix in PREFIXES {
        assert!(
            Kind::from_prefix(&format!("{prefix}x")).is_some(),
            "{prefix}"
        );
    }
}
