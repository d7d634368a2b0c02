//! `fastipc ls`, `inspect` and `sweep` when a registry folder holds what no registration
//! is: a FIFO with a process id's name (which a plain read would wait on forever), a link,
//! a huge file. Each run is bounded by the child guard: a blocking CLI fails the test.

mod common;

use common::World;
use fastipc::named::registry::Registry;
use fastipc::named::{Kind, NamedMutex, segment_name};
use fastipc_testkit::unique_name;

#[test]
fn ls_inspect_and_sweep_skip_and_report_fifos_links_and_huge_files() {
    let mut w = World::new("rel-fifo");
    let name = unique_name("rel-fifo");
    let seg = segment_name(Kind::Mutex, &name).unwrap();
    w.cleanup(&seg);
    let registry = Registry::at(&w.registry);
    let mutex = NamedMutex::open_in(&registry, &name).unwrap();
    let folder = w.pids_dir(&seg);
    let fifo = folder.join("4000001");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    std::os::unix::fs::symlink(&fifo, folder.join("4000002")).unwrap();
    std::fs::File::create(folder.join("4000003"))
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let inspected = w.run(&["inspect", &seg]);
    let text = inspected.ok();
    assert!(
        text.contains(&format!("{} (alive)", std::process::id())),
        "{text}"
    );
    assert!(
        text.contains("4000001 is no registration: not a regular file (FIFO)"),
        "{text}"
    );
    assert!(
        text.contains("4000002 is no registration: not a regular file (symbolic link)"),
        "{text}"
    );
    assert!(
        text.contains("4000003 is no registration: 1073741824 bytes"),
        "{text}"
    );
    let listed = w.run(&["ls"]);
    let line = listed
        .ok()
        .lines()
        .find(|l| l.contains(&seg))
        .unwrap()
        .to_owned();
    assert!(line.contains("3 problem(s)"), "{line}");
    let swept = w.run(&["sweep"]);
    let text = swept.ok();
    assert!(text.contains("kept"), "{text}");
    assert!(
        text.contains("4000001: not a regular file (FIFO)"),
        "{text}"
    );
    drop(mutex);
    assert!(!fastipc::Segment::exists(&seg));
}
