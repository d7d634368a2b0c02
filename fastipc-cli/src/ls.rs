//! `fastipc ls`: every fastipc, slick-queue and pyfastipc segment of a directory
//! (normally `/dev/shm`), with its kind, size, a word on its state, and the processes
//! the attachment registry lists for it.

use std::fmt::Write as _;
use std::path::Path;

use fastipc::named::registry::Registry;
use serde::Serialize;

use crate::error::CliError;
use crate::inspect::{self, Attached, HEAD_LEN};
use crate::segment::{Kind, SegmentFile, detect};

/// One listed segment.
#[derive(Clone, Debug, Serialize)]
pub struct Entry {
    /// The segment name (what `inspect` and `rm` take).
    pub name: String,
    /// What it holds.
    pub kind: Kind,
    /// Its size in bytes.
    pub size: u64,
    /// A few words on its state (`"unlocked"`, `"count 3"`, ...).
    pub state: String,
    /// Processes registered as attached, with their liveness.
    pub attached: Vec<Attached>,
}

/// What `ls` found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Listing {
    /// The directory listed.
    pub dir: String,
    /// Our segments, sorted by name.
    pub segments: Vec<Entry>,
    /// Segments without a known name prefix that this user cannot read, so whose kind
    /// is unknown.
    pub unreadable: Vec<String>,
}

/// Lists the segments of `dir` that this tool knows.
pub fn list(dir: &Path, registry: &Registry) -> Result<Listing, CliError> {
    let entries = std::fs::read_dir(dir).map_err(|source| CliError::Io {
        path: dir.to_owned(),
        op: "list",
        source,
    })?;
    let mut listing = Listing {
        dir: dir.display().to_string(),
        ..Listing::default()
    };
    for entry in entries.filter_map(Result::ok) {
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        match probe(dir, &name, registry) {
            Probe::Ours(e) => listing.segments.push(e),
            Probe::Unreadable => listing.unreadable.push(name),
            Probe::NotOurs => {}
        }
    }
    listing.segments.sort_by(|a, b| a.name.cmp(&b.name));
    listing.unreadable.sort();
    Ok(listing)
}

enum Probe {
    Ours(Entry),
    Unreadable,
    NotOurs,
}

fn probe(dir: &Path, name: &str, registry: &Registry) -> Probe {
    let attached = || {
        registry
            .attached(name)
            .unwrap_or_default()
            .into_iter()
            .map(|a| Attached {
                pid: a.pid,
                alive: a.alive,
            })
            .collect()
    };
    let seg = match SegmentFile::open(dir, name) {
        Ok(seg) => seg,
        Err(CliError::PermissionDenied { .. }) => {
            return match Kind::from_prefix(name) {
                Some(kind) => Probe::Ours(Entry {
                    name: name.to_owned(),
                    kind,
                    size: std::fs::symlink_metadata(dir.join(name)).map_or(0, |m| m.len()),
                    state: "unreadable (permission denied)".into(),
                    attached: attached(),
                }),
                None => Probe::Unreadable,
            };
        }
        // Removed meanwhile, not a regular file, ...: nothing to list.
        Err(_) => return Probe::NotOurs,
    };
    let Ok(head) = seg.read_at(0, HEAD_LEN) else {
        return Probe::NotOurs;
    };
    let Some(kind) = detect(name, &head) else {
        return Probe::NotOurs;
    };
    let (state, attached) = match inspect::decode(&seg, kind, &head, registry) {
        Ok(report) => (report.summary(), report.attached),
        Err(e) => (short_error(&e), attached()),
    };
    Probe::Ours(Entry {
        name: name.to_owned(),
        kind,
        size: seg.size(),
        state,
        attached,
    })
}

fn short_error(e: &CliError) -> String {
    match e {
        CliError::Truncated { size, needed, .. } => {
            format!("truncated: {size} bytes, {needed} needed")
        }
        e => e.to_string(),
    }
}

/// The processes column: `1234, 5678 (dead)`, or `-`.
pub fn attached_text(list: &[Attached]) -> String {
    if list.is_empty() {
        return "-".into();
    }
    list.iter()
        .map(|a| {
            if a.alive {
                a.pid.to_string()
            } else {
                format!("{} (dead)", a.pid)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The listing as an aligned table, with a note on unreadable segments.
pub fn render(listing: &Listing) -> String {
    let mut out = String::new();
    if listing.segments.is_empty() {
        let _ = writeln!(
            out,
            "no fastipc, slick-queue or pyfastipc segments in {}",
            listing.dir
        );
    } else {
        let rows: Vec<[String; 5]> = listing
            .segments
            .iter()
            .map(|e| {
                [
                    e.name.clone(),
                    e.kind.as_str().to_owned(),
                    e.size.to_string(),
                    e.state.clone(),
                    attached_text(&e.attached),
                ]
            })
            .collect();
        let header = ["NAME", "KIND", "SIZE", "STATE", "ATTACHED"].map(String::from);
        let mut width = [0usize; 5];
        for row in std::iter::once(&header).chain(&rows) {
            for (w, cell) in width.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        for row in std::iter::once(&header).chain(&rows) {
            let line = format!(
                "{:<w0$}  {:<w1$}  {:>w2$}  {:<w3$}  {}",
                row[0],
                row[1],
                row[2],
                row[3],
                row[4],
                w0 = width[0],
                w1 = width[1],
                w2 = width[2],
                w3 = width[3]
            );
            let _ = writeln!(out, "{}", line.trim_end());
        }
    }
    if !listing.unreadable.is_empty() {
        let _ = writeln!(
            out,
            "({} more segment(s) could not be read, so their kind is unknown: {})",
            listing.unreadable.len(),
            listing.unreadable.join(", ")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    #[test]
    fn lists_ours_and_skips_the_rest() {
        let dir = TempDir::new("ls");
        let p = dir.path();
        let mut queue = vec![0u8; 64 + 16 * 2 + 8 * 2];
        queue[8..12].copy_from_slice(&2u32.to_le_bytes());
        queue[12..16].copy_from_slice(&8u32.to_le_bytes());
        queue[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        queue[24..28].copy_from_slice(b"1QLS");
        queue[48..52].copy_from_slice(&3u32.to_le_bytes());
        std::fs::write(p.join("q1"), &queue).unwrap();
        std::fs::write(p.join("__pyfastipc_event_go"), 1u32.to_le_bytes()).unwrap();
        std::fs::write(p.join("__pyfastipc_mutex_short"), [0u8; 3]).unwrap();
        std::fs::write(p.join("other-app"), [0u8; 4096]).unwrap();
        std::fs::create_dir(p.join("fastipc")).unwrap();
        let registry = Registry::at(p.join("fastipc"));
        std::fs::create_dir(registry.pids_dir("__pyfastipc_event_go")).unwrap();
        std::fs::write(
            registry
                .pids_dir("__pyfastipc_event_go")
                .join(std::process::id().to_string()),
            "",
        )
        .unwrap();

        let l = list(p, &registry).unwrap();
        let names: Vec<&str> = l.segments.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            ["__pyfastipc_event_go", "__pyfastipc_mutex_short", "q1"]
        );
        assert_eq!(l.segments[0].state, "set");
        assert_eq!(
            l.segments[0].attached,
            [Attached {
                pid: std::process::id(),
                alive: true
            }]
        );
        assert_eq!(l.segments[1].state, "truncated: 3 bytes, 64 needed");
        assert_eq!(l.segments[2].kind, Kind::Queue);
        assert_eq!(l.segments[2].state, "2 x 8 B, lossy, next index 0");
        let table = render(&l);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("NAME"), "{table}");
        assert!(
            lines[1].contains("event") && lines[1].ends_with(&std::process::id().to_string()),
            "{table}"
        );
        assert!(!table.contains("other-app"));
        let json = serde_json::to_value(&l).unwrap();
        assert_eq!(json["segments"][2]["kind"], "queue");
        assert_eq!(json["segments"][2]["size"], queue.len());
    }

    #[test]
    fn an_empty_directory_says_so() {
        let dir = TempDir::new("ls-empty");
        let l = list(dir.path(), &Registry::at(dir.path().join("r"))).unwrap();
        assert!(render(&l).starts_with("no fastipc"));
        assert_eq!(attached_text(&[]), "-");
        assert_eq!(
            attached_text(&[
                Attached {
                    pid: 1,
                    alive: true
                },
                Attached {
                    pid: 2,
                    alive: false
                }
            ]),
            "1, 2 (dead)"
        );
    }
}
