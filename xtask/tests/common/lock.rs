//! Locks of the whole machine, for tests of different binaries that must not overlap.

use std::fs::File;
use std::path::PathBuf;

/// Held by every test that builds `voxserve:cpu-minimal` or reads what it built: images.rs builds
/// it for the engine's platform, platforms.rs for amd64 and arm64, scan.rs and lint.rs read it.
/// On release, the `sha-…` tags its builds added and the images they moved tags off are removed
/// (each revision's build is a new image, and its tag would stay for good).
pub fn cpu_minimal_tag() -> CpuMinimal {
    let lock = exclusive("voxserve:cpu-minimal");
    CpuMinimal {
        _revision_tags: RevisionTags::new("voxserve"),
        _replaced: super::Replaced::new("voxserve:cpu-minimal"),
        _lock: lock,
    }
}

/// [`cpu_minimal_tag`]'s hold; dropped in field order: the tags, the images, then the lock.
pub struct CpuMinimal {
    _revision_tags: RevisionTags,
    _replaced: super::Replaced,
    _lock: Exclusive,
}

/// The `sha-…` tags of a repository that did not exist when it was made; removed on drop.
struct RevisionTags {
    repo: String,
    before: Vec<String>,
}

impl RevisionTags {
    fn new(repo: &str) -> RevisionTags {
        RevisionTags {
            repo: repo.to_string(),
            before: revision_tags(repo),
        }
    }
}

impl Drop for RevisionTags {
    fn drop(&mut self) {
        for tag in revision_tags(&self.repo) {
            if !self.before.contains(&tag) {
                super::docker(&["image", "rm", &tag]);
            }
        }
    }
}

fn revision_tags(repo: &str) -> Vec<String> {
    let out = super::docker(&["image", "ls", "--format", "{{.Repository}}:{{.Tag}}", repo]);
    out.stdout
        .lines()
        .filter(|t| t.starts_with(&format!("{repo}:sha-")))
        .map(str::to_owned)
        .collect()
}

/// Held around builds that read what BuildKit's uv cache mount (`/root/.cache/uv`, shared by every
/// Dockerfile) holds, and around `--no-cache` builds of the Dockerfiles: those start that mount
/// anew, and the next build on the engine takes the new, empty one.
pub fn uv_cache() -> Exclusive {
    exclusive("buildkit cache mount /root/.cache/uv")
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
