//! `fastipc bridge ...`: a forward to the `fastipc-bridge` binary (crate
//! `fastipc-zenoh`), so that this tool does not build Zenoh. The binary is looked for
//! next to `fastipc`, then on `PATH`, and replaces this process (signals reach it
//! directly).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::error::CliError;

/// The bridge binary's file name.
pub const BRIDGE: &str = "fastipc-bridge";

/// Where the bridge binary is: in `beside` (the directory of the running `fastipc`),
/// else in a directory of `path` (a `PATH` value). The error lists where it looked.
pub fn find(beside: Option<&Path>, path: Option<&OsStr>) -> Result<PathBuf, CliError> {
    let mut dirs: Vec<PathBuf> = beside.map(Path::to_path_buf).into_iter().collect();
    if let Some(path) = path {
        dirs.extend(std::env::split_paths(path).filter(|d| !d.as_os_str().is_empty()));
    }
    dirs.iter()
        .map(|d| d.join(BRIDGE))
        .find(|candidate| is_executable(candidate))
        .ok_or(CliError::BridgeMissing { searched: dirs })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Replaces this process with `fastipc-bridge ARGS`; returns only on failure.
pub fn exec(args: &[String]) -> CliError {
    use std::os::unix::process::CommandExt;
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf));
    let path = std::env::var_os("PATH");
    match find(beside.as_deref(), path.as_deref()) {
        Ok(binary) => {
            let source = std::process::Command::new(&binary).args(args).exec();
            CliError::Io {
                path: binary,
                op: "execute",
                source,
            }
        }
        Err(e) => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn found_beside_first_then_on_path_else_an_error_listing_where() {
        let root = std::env::temp_dir().join(format!("fastipc-bridge-find-{}", std::process::id()));
        let (beside, on_path) = (root.join("bin"), root.join("path"));
        std::fs::create_dir_all(&beside).unwrap();
        std::fs::create_dir_all(&on_path).unwrap();
        let path = std::env::join_paths([root.join("nowhere"), on_path.clone()]).unwrap();

        let missing = find(Some(&beside), Some(&path)).unwrap_err();
        let text = missing.to_string();
        assert!(
            text.contains("fastipc-bridge") && text.contains("cargo install --path fastipc-zenoh"),
            "{text}"
        );
        assert!(text.contains(&beside.display().to_string()), "{text}");

        use std::os::unix::fs::PermissionsExt;
        let make = |dir: &Path, mode: u32| {
            let f = dir.join(BRIDGE);
            std::fs::write(&f, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).unwrap();
            f
        };
        make(&beside, 0o644); // not executable: skipped
        let via_path = make(&on_path, 0o755);
        assert_eq!(find(Some(&beside), Some(&path)).unwrap(), via_path);
        let next_to = make(&beside, 0o755);
        assert_eq!(find(Some(&beside), Some(&path)).unwrap(), next_to);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
