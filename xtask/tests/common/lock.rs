//! Locks of the whole machine, for tests of different binaries that must not overlap.

use std::fs::File;
use std::path::PathBuf;

/// Held by every test that builds `voxserve:cpu-minimal` or reads what it built: images.rs builds
/// it for the engine's platform, platforms.rs for amd64 and arm64, scan.rs and lint.rs read it.
pub fn cpu_minimal_tag() -> Exclusive {
    exclusive("voxserve:cpu-minimal")
}

/// Held while a test changes engine state that tests of other binaries read: one holder at a
/// time on this machine. Released on drop.
pub struct Exclusive(#[allow(dead_code)] File);

/// Waits until no other test process holds `name`, then holds it.
pub fn exclusive(name: &str) -> Exclusive {
    let dir = std::env::temp_dir().join("voxserve-xtask-tests");
    std::fs::create_dir_all(&dir).unwrap();
    Exclusive(lock(dir.join(format!("{}.lock", file_name(name)))))
}

/// `path`, created if missing, locked: waits while another process holds it.
pub(super) fn lock(path: PathBuf) -> File {
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    file.lock()
        .unwrap_or_else(|e| panic!("locking {}: {e}", path.display()));
    file
}

/// `key` as a file name: what is not a letter, digit, `-` or `.` becomes `_`.
pub(super) fn file_name(key: &str) -> String {
    key.chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '.' => c,
            _ => '_',
        })
        .collect()
}
