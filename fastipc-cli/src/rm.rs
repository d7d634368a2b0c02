//! `fastipc rm NAME...`: removes segments by name, and their attachment-registry folders
//! when no live process is registered in them. Segments that are not ours are refused
//! unless `--force`: the tool should not delete another program's shared memory by a
//! slip of the keyboard.

use std::io;
use std::path::Path;

use fastipc::named::registry::Registry;

use crate::error::CliError;
use crate::inspect::HEAD_LEN;
use crate::segment::{Kind, SegmentFile, detect, ownership};

/// Removes segment `name` of `dir`; returns what to tell the user.
pub fn remove(
    dir: &Path,
    name: &str,
    force: bool,
    registry: &Registry,
) -> Result<String, CliError> {
    match SegmentFile::open(dir, name) {
        Ok(seg) => {
            let head = seg.read_at(0, HEAD_LEN)?;
            if detect(name, &head).is_none() && !force {
                return Err(CliError::RefuseForeign {
                    path: seg.path().to_owned(),
                    size: seg.size(),
                });
            }
        }
        // Unreadable: only a known prefix (or --force) vouches for what it is.
        Err(e @ CliError::PermissionDenied { .. })
            if !force && Kind::from_prefix(name).is_none() =>
        {
            return Err(e);
        }
        Err(CliError::PermissionDenied { .. }) => {}
        Err(e) => return Err(e),
    }
    let path = dir.join(name);
    std::fs::remove_file(&path).map_err(|source| match source.kind() {
        io::ErrorKind::PermissionDenied => CliError::PermissionDenied {
            detail: format!("cannot remove it: {}", ownership(&path)),
            path: path.clone(),
        },
        io::ErrorKind::NotFound => CliError::NotFound {
            name: name.to_owned(),
            dir: dir.to_owned(),
            hint: Vec::new(),
        },
        _ => CliError::Io {
            path: path.clone(),
            op: "remove",
            source,
        },
    })?;
    let live: Vec<u32> = registry
        .attached(name)
        .unwrap_or_default()
        .into_iter()
        .filter(|a| a.alive)
        .map(|a| a.pid)
        .collect();
    if !live.is_empty() {
        return Ok(format!(
            "removed {name} (processes {} are still attached and keep their mapping)",
            live.iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let folder = registry.pids_dir(name);
    match std::fs::remove_dir_all(&folder) {
        Ok(()) => Ok(format!(
            "removed {name} and its registry folder {}",
            folder.display()
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(format!("removed {name}")),
        Err(e) => Ok(format!(
            "removed {name} (its registry folder {} stays: {e})",
            folder.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    #[test]
    fn removes_ours_with_stale_registry_folders_and_refuses_foreign_ones() {
        let dir = TempDir::new("rm");
        let p = dir.path();
        let registry = Registry::at(p.join("registry"));
        std::fs::write(p.join("__pyfastipc_event_e"), [0u8; 4]).unwrap();
        let folder = registry.pids_dir("__pyfastipc_event_e");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("4000000"), "").unwrap(); // no such process
        let msg = remove(p, "__pyfastipc_event_e", false, &registry).unwrap();
        assert!(msg.contains("registry folder"), "{msg}");
        assert!(!p.join("__pyfastipc_event_e").exists() && !folder.exists());

        std::fs::write(p.join("notes"), b"hello").unwrap();
        let err = remove(p, "notes", false, &registry).unwrap_err();
        assert!(
            matches!(err, CliError::RefuseForeign { size: 5, .. }),
            "{err}"
        );
        assert!(p.join("notes").exists());
        assert_eq!(
            remove(p, "notes", true, &registry).unwrap(),
            "removed notes"
        );

        assert!(matches!(
            remove(p, "notes", false, &registry),
            Err(CliError::NotFound { .. })
        ));
    }

    #[test]
    fn live_attachments_keep_their_folder() {
        let dir = TempDir::new("rm-live");
        let p = dir.path();
        let registry = Registry::at(p.join("registry"));
        std::fs::write(p.join("__pyfastipc_sema_s"), [0u8; 64]).unwrap();
        let _me = registry.attach("__pyfastipc_sema_s").unwrap();
        let msg = remove(p, "__pyfastipc_sema_s", false, &registry).unwrap();
        assert!(msg.contains(&std::process::id().to_string()), "{msg}");
        assert!(registry.pids_dir("__pyfastipc_sema_s").exists());
    }
}
