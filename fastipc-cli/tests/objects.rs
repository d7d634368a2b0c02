//! `fastipc ls`, `inspect`, `rm` and `sweep` against real segments: the decoded fields
//! of a queue, a mutex, a semaphore and an event; the sweep of what a killed process
//! left; and every error path (unknown name, permission denied, foreign segment,
//! truncated object).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Finish, World};
use fastipc::named::registry::Registry;
use fastipc::named::{Kind, segment_name};
use fastipc::queue::{Ring, RingSpec};
use fastipc::{
    IpcMessage, NamedEvent, NamedMutex, NamedSemaphore, Segment, SharedCell, SlickQueue,
};
use fastipc_testkit::{ChildGuard, unique_name};
use serde_json::{Value, json};

fn me() -> u32 {
    std::process::id()
}

fn shm(name: &str) -> PathBuf {
    Path::new("/dev/shm").join(name)
}

#[derive(IpcMessage, Clone, Copy, Debug)]
#[repr(C)]
struct Quote {
    px: u64,
    qty: u32,
    venue: u32,
}

#[test]
fn inspect_decodes_a_typed_queue() {
    let mut w = World::new("insp-q");
    let name = w.segment("q");
    let q = SlickQueue::<Quote>::create(&name, 64).unwrap();
    let tx = q.producer().unwrap();
    for i in 0..3 {
        tx.send(&Quote {
            px: i,
            qty: 1,
            venue: 2,
        })
        .unwrap();
    }
    let v = w.run(&["inspect", &name, "--json"]).json();
    assert_eq!(v["kind"], "queue");
    assert_eq!(v["name"], name.as_str());
    assert_eq!(v["path"], format!("/dev/shm/{name}"));
    assert_eq!(v["mode"], "0600");
    assert_eq!(v["capacity"], 64);
    assert_eq!(v["element_size"], 16);
    assert_eq!(v["items_per_slot"], 1);
    assert_eq!(v["magic"], "0x534c5131");
    assert_eq!(v["magic_text"], "SLQ1");
    assert_eq!(v["init_state"], 3);
    assert_eq!(v["init_state_name"], "ready");
    assert_eq!(v["next_index"], 3);
    assert_eq!(v["last_reserve_count"], 1);
    assert_eq!(v["last_published"], 2);
    assert_eq!(v["fingerprint"], format!("{:#018x}", Quote::FINGERPRINT));
    assert_eq!(v["type_name"], "Quote");
    assert_eq!(v["sleepers"], 0);
    assert_eq!(v["valid"], true);
    assert_eq!(v["attached"], json!([]));
    assert_eq!(v["problems"], json!([]));
    assert_eq!(
        v["size"].as_u64(),
        Some(std::fs::metadata(shm(&name)).unwrap().len())
    );
    let text = w.run(&["inspect", &name]);
    let text = text.ok();
    assert!(
        text.contains("message type    Quote (fingerprint"),
        "{text}"
    );
    assert!(text.contains("last published  2"), "{text}");
}

#[test]
fn inspect_decodes_a_mutex_free_and_held() {
    let mut w = World::new("insp-m");
    let n = unique_name("m");
    let seg = segment_name(Kind::Mutex, &n).unwrap();
    w.cleanup(&seg);
    let m = NamedMutex::open_in(&Registry::at(&w.registry), &n).unwrap();
    let v = w.run(&["inspect", &seg, "--json"]).json();
    assert_eq!(v["kind"], "mutex");
    assert_eq!(v["magic"], "0x4d555458");
    assert_eq!(v["state"], 0);
    assert_eq!(v["state_name"], "unlocked");
    assert_eq!(v["locked"], false);
    assert_eq!(v["owner_pid"], Value::Null);
    assert_eq!(v["owner_alive"], Value::Null);
    assert_eq!(v["size"], 64);
    assert_eq!(v["attached"], json!([{"pid": me(), "alive": true}]));
    assert_eq!(v["problems"], json!([]));

    let guard = m.lock().unwrap();
    let v = w.run(&["inspect", &seg, "--json"]).json();
    assert_eq!(v["locked"], true);
    assert_eq!(v["state"], 1);
    assert_eq!(v["state_name"], "locked");
    assert_eq!(v["owner_pid"], me());
    assert_eq!(v["owner_alive"], true);
    assert_eq!(v["owner_identity"]["pid"], me());
    drop(guard);
}

#[test]
fn inspect_decodes_a_semaphore_and_an_event() {
    let mut w = World::new("insp-se");
    let registry = Registry::at(&w.registry);
    let n = unique_name("se");
    let sem_seg = segment_name(Kind::Semaphore, &n).unwrap();
    let ev_seg = segment_name(Kind::Event, &n).unwrap();
    w.cleanup(&sem_seg);
    w.cleanup(&ev_seg);
    let sem = NamedSemaphore::open_in(&registry, &n, 3).unwrap();
    sem.post(2).unwrap();
    let v = w.run(&["inspect", &sem_seg, "--json"]).json();
    assert_eq!(v["kind"], "semaphore");
    assert_eq!(v["magic"], "0x53454d41");
    assert_eq!(v["count"], 5);
    assert_eq!(v["sleepers"], 0);
    assert_eq!(v["attached"], json!([{"pid": me(), "alive": true}]));

    let ev = NamedEvent::open_in(&registry, &n).unwrap();
    let v = w.run(&["inspect", &ev_seg, "--json"]).json();
    assert_eq!(
        (v["kind"].as_str(), v["set"].as_bool()),
        (Some("event"), Some(false))
    );
    ev.set();
    let v = w.run(&["inspect", &ev_seg, "--json"]).json();
    assert_eq!(v["set"], true);
    assert_eq!(v["value"], 1);
    assert_eq!(v["size"], 4);
    let text = w.run(&["inspect", &ev_seg]);
    assert!(text.ok().contains("state     set (value 1)"), "{text:?}");
}

#[test]
fn inspect_decodes_a_shared_cell() {
    let mut w = World::new("insp-cell");
    let n = unique_name("cell");
    let seg = fastipc::named::cell::segment_name(&n).unwrap();
    w.cleanup(&seg);
    let cell = SharedCell::<Quote>::open_or_create_in(&Registry::at(&w.registry), &n).unwrap();
    let v = w.run(&["inspect", &seg, "--json"]).json();
    assert_eq!(v["kind"], "shared-cell");
    assert_eq!(v["type_name"], "Quote");
    assert_eq!(v["fingerprint"], format!("{:#018x}", Quote::FINGERPRINT));
    assert_eq!(v["value_size"], 16);
    assert_eq!(v["value_align"], 8);
    assert_eq!(v["value_offset"], 128);
    assert_eq!(v["magic"], "0x4c4c4543");
    assert_eq!(v["version"], 1);
    assert_eq!(v["valid"], true);
    assert_eq!(v["mutex"]["locked"], false);
    assert_eq!(v["attached"], json!([{"pid": me(), "alive": true}]));
    assert_eq!(v["problems"], json!([]));
    let guard = cell.lock().unwrap();
    let v = w.run(&["inspect", &seg, "--json"]).json();
    assert_eq!(v["mutex"]["locked"], true);
    assert_eq!(v["mutex"]["owner_pid"], me());
    drop(guard);
    let ls = w.run(&["ls", "--json"]).json();
    let e = ls["segments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == seg.as_str())
        .cloned()
        .expect("the cell is listed");
    assert_eq!(e["kind"], "shared-cell");
    assert_eq!(e["state"], "Quote (16 B), unlocked");
}

#[test]
fn ls_lists_each_kind_with_its_attached_processes() {
    let mut w = World::new("ls");
    let registry = Registry::at(&w.registry);
    let n = unique_name("ls");
    let q = w.segment("ls-q");
    let _ring = Ring::create(&q, &RingSpec::new(8, 32)).unwrap();
    let _m = NamedMutex::open_in(&registry, &n).unwrap();
    let _s = NamedSemaphore::open_in(&registry, &n, 7).unwrap();
    let _e = NamedEvent::open_in(&registry, &n).unwrap();
    for k in Kind::ALL {
        w.cleanup(&segment_name(k, &n).unwrap());
    }
    let v = w.run(&["ls", "--json"]).json();
    let find = |name: &str| -> Value {
        v["segments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} not listed in {v:#}"))
    };
    let e = find(&q);
    assert_eq!(
        (e["kind"].as_str(), e["size"].as_u64()),
        // Header, slots, data, then (after the largest type trailer) the endpoint table.
        (
            Some("queue"),
            Some(
                fastipc::queue::Geometry::new(8, 32)
                    .unwrap()
                    .len_with_endpoints() as u64
            )
        )
    );
    assert_eq!(e["state"], "8 x 32 B, lossy, next index 0");
    assert_eq!(e["attached"], json!([]));
    for (kind, state) in [
        ("mutex", "unlocked"),
        ("semaphore", "count 7"),
        ("event", "clear"),
    ] {
        let k = match kind {
            "mutex" => Kind::Mutex,
            "semaphore" => Kind::Semaphore,
            _ => Kind::Event,
        };
        let e = find(&segment_name(k, &n).unwrap());
        assert_eq!(e["kind"], kind);
        assert_eq!(e["state"], state);
        assert_eq!(e["attached"], json!([{"pid": me(), "alive": true}]));
    }
    // The table shows the same rows.
    let table = w.run(&["ls"]);
    let table = table.ok();
    assert!(table.starts_with("NAME"), "{table}");
    let row = table
        .lines()
        .find(|l| l.starts_with(&q))
        .expect("queue row");
    assert!(row.contains("queue") && row.ends_with('-'), "{row}");
    let seg = segment_name(Kind::Semaphore, &n).unwrap();
    let row = table
        .lines()
        .find(|l| l.starts_with(&seg))
        .expect("semaphore row");
    assert!(
        row.contains("count 7") && row.ends_with(&me().to_string()),
        "{row}"
    );
}

#[test]
fn sweep_removes_what_a_killed_process_left() {
    let mut w = World::new("sweep");
    let n = unique_name("sw");
    let seg = segment_name(Kind::Event, &n).unwrap();
    w.cleanup(&seg);
    // A segment and the registration of a process that then dies by SIGKILL (the
    // Python peer's registry format: an empty file named after the pid).
    let _created = Segment::create(&seg, 4, |_| {}).unwrap();
    let mut holder = ChildGuard::spawn({
        let mut c = Command::new("sleep");
        c.arg("60");
        c
    });
    let pid = holder.id();
    std::fs::create_dir_all(w.pids_dir(&seg)).unwrap();
    std::fs::write(w.pids_dir(&seg).join(pid.to_string()), "").unwrap();
    let v = w.run(&["inspect", &seg, "--json"]).json();
    assert_eq!(v["attached"], json!([{"pid": pid, "alive": true}]));
    let kept = w.run(&["sweep"]);
    assert!(
        kept.ok()
            .contains(&format!("kept {seg} (in use by [{pid}])")),
        "{kept:?}"
    );
    assert!(shm(&seg).exists());

    holder.kill();
    let v = w.run(&["inspect", &seg, "--json"]).json();
    assert_eq!(v["attached"], json!([{"pid": pid, "alive": false}]));
    let dry = w.run(&["sweep", "--dry-run"]);
    let dry = dry.ok();
    assert!(
        dry.contains(&format!(
            "would remove registration of dead process {pid} on {seg}"
        )),
        "{dry}"
    );
    assert!(
        dry.contains(&format!("would remove segment {seg} (nobody attached)")),
        "{dry}"
    );
    assert!(
        shm(&seg).exists() && w.pids_dir(&seg).exists(),
        "a dry run removes nothing"
    );

    let done = w.run(&["sweep"]);
    let done = done.ok();
    assert!(
        done.contains(&format!(
            "removed registration of dead process {pid} on {seg}"
        )),
        "{done}"
    );
    assert!(done.contains(&format!("removed segment {seg}")), "{done}");
    assert!(!shm(&seg).exists() && !w.pids_dir(&seg).exists());
    assert_eq!(w.run(&["sweep"]).ok().trim(), "nothing stale");
}

#[test]
fn rm_removes_our_segments_and_refuses_others() {
    let mut w = World::new("rm");
    let q = w.segment("q");
    let other = w.segment("other");
    Ring::create(&q, &RingSpec::new(4, 8)).unwrap();
    std::fs::write(shm(&other), "not ours: a text file of some other program").unwrap();
    let missing = unique_name("missing");
    let r = w.run(&["rm", &q, &missing, &other]);
    assert_eq!(r.status.code(), Some(1), "{r:?}");
    assert_eq!(r.stdout.trim(), format!("removed {q}"));
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{r:?}");
    assert!(lines[0].starts_with(&format!("fastipc: no segment named \"{missing}\"")));
    assert!(lines[1].contains("not a fastipc, slick-queue or pyfastipc object: not removed"));
    assert!(!shm(&q).exists() && shm(&other).exists());
    assert!(w.run(&["rm", "--force", &other]).ok().contains("removed"));
    assert!(!shm(&other).exists());
}

#[test]
fn unknown_names_are_one_clear_line() {
    let mut w = World::new("unknown");
    let n = unique_name("jobs");
    let seg = segment_name(Kind::Semaphore, &n).unwrap();
    w.cleanup(&seg);
    let _s = NamedSemaphore::open_in(&Registry::at(&w.registry), &n, 0).unwrap();
    w.run(&["inspect", &n]).fails_with(
        1,
        &[
            "no segment named",
            "in /dev/shm",
            &format!("did you mean \"{seg}\"?"),
        ],
    );
    w.run(&["rm", &unique_name("nothing")])
        .fails_with(1, &["no segment named"]);
    w.run(&["inspect", "a/b"])
        .fails_with(1, &["invalid shared-memory name", "`/`"]);
}

#[test]
fn foreign_and_truncated_segments_are_reported_not_decoded() {
    let mut w = World::new("foreign");
    let plain = w.segment("plain");
    std::fs::write(shm(&plain), vec![0xA5u8; 4096]).unwrap();
    w.run(&["inspect", &plain]).fails_with(
        1,
        &[
            &plain,
            "(4096 bytes) is not a fastipc, slick-queue or pyfastipc object",
        ],
    );
    let n = unique_name("cut");
    let cut = segment_name(Kind::Mutex, &n).unwrap();
    w.cleanup(&cut);
    std::fs::write(shm(&cut), [1u8, 2, 3]).unwrap();
    w.run(&["inspect", &cut, "--json"]).fails_with(
        1,
        &["has the name of a mutex but is 3 bytes", "at least 64"],
    );
    let v = w.run(&["ls", "--json"]).json();
    let listed = v["segments"].as_array().unwrap();
    assert!(
        listed.iter().all(|e| e["name"] != plain.as_str()),
        "foreign not listed"
    );
    let e = listed
        .iter()
        .find(|e| e["name"] == cut.as_str())
        .expect("listed by prefix");
    assert_eq!(e["state"], "truncated: 3 bytes, 64 needed");
}

/// Runs the CLI as a user the segment denies: `nobody` when this test runs as root
/// (whom permission bits do not stop; from a copy of the binary that user can execute),
/// else this user with the file's permissions removed.
struct Denied {
    exe: PathBuf,
    as_nobody: bool,
}

impl Denied {
    fn new(segment: &str) -> Denied {
        if rustix::process::geteuid().is_root() {
            let exe = std::env::temp_dir().join(unique_name("fastipc-exe"));
            std::fs::copy(env!("CARGO_BIN_EXE_fastipc"), &exe).unwrap();
            std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
            Denied {
                exe,
                as_nobody: true,
            }
        } else {
            std::fs::set_permissions(shm(segment), std::fs::Permissions::from_mode(0o000)).unwrap();
            Denied {
                exe: PathBuf::from(env!("CARGO_BIN_EXE_fastipc")),
                as_nobody: false,
            }
        }
    }

    fn run(&self, w: &World, args: &[&str]) -> common::Run {
        let mut cmd = Command::new(&self.exe);
        cmd.args(args).env("FASTIPC_PID_DIR", &w.registry);
        if self.as_nobody {
            cmd.uid(65534).gid(65534);
        }
        // The copy was written by this process: a child forked by another test thread
        // while the copy's file was open for writing keeps it "busy" (ETXTBSY) until that
        // child execs. Retry briefly (bounded) rather than fail on that window.
        const ETXTBSY: i32 = 26;
        for _ in 0..200 {
            match ChildGuard::try_spawn(&mut cmd) {
                Ok(child) => return child.run(),
                Err(e) if e.raw_os_error() == Some(ETXTBSY) => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(e) => panic!("cannot spawn {cmd:?}: {e}"),
            }
        }
        panic!("{:?} stayed busy (ETXTBSY) for 2 s", self.exe)
    }
}

impl Drop for Denied {
    fn drop(&mut self) {
        if self.as_nobody {
            let _ = std::fs::remove_file(&self.exe);
        }
    }
}

#[test]
fn permission_denied_is_one_clear_line() {
    let mut w = World::new("denied");
    let q = w.segment("q");
    Ring::create(&q, &RingSpec::new(4, 8)).unwrap(); // mode 0600, ours
    let denied = Denied::new(&q);
    denied
        .run(&w, &["inspect", &q])
        .fails_with(1, &["permission denied on", &q, "you are uid"]);
    denied
        .run(
            &w,
            &[
                "recv",
                &q,
                "--count",
                "1",
                "--elem-size",
                "8",
                "--timeout",
                "1",
            ],
        )
        .fails_with(1, &["permission denied", &q]);
    denied
        .run(&w, &["send", &q, "--count", "1", "--elem-size", "8"])
        .fails_with(1, &["permission denied", &q]);
    // Unreadable and without a known prefix: `rm` cannot tell what it is.
    denied
        .run(&w, &["rm", &q])
        .fails_with(1, &["permission denied", &q]);
    if denied.as_nobody {
        // Another user's file in the sticky /dev/shm cannot be removed at all.
        denied
            .run(&w, &["rm", "--force", &q])
            .fails_with(1, &["permission denied", "cannot remove it"]);
    }
    assert!(shm(&q).exists());
}
