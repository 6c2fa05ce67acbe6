//! The fixture images the test binaries of one `cargo xtask test` run share. The run names
//! itself in the environment ([`xtask::test_cmd::RUN_ENV`], [`xtask::test_cmd::RUN_DIR_ENV`]);
//! the first binary that needs a fixture builds it under the run's owner labels (the
//! `cargo xtask test` process), the others wait for it and use the same image. The run removes
//! them when it ends; when it is killed, the next run's reclaim does. A binary run on its own
//! builds its own.

use std::path::PathBuf;

use super::lock::{file_name, lock};
use super::owner;

/// The `cargo xtask test` run this binary is part of, if any.
pub struct SharedRun {
    /// `<pid>-<nanos>` of the `cargo xtask test` process: the fixtures' test label value.
    pub id: String,
    /// Where the binaries note the tag of each fixture they built (`<key>.tag`, under `<key>.lock`).
    dir: PathBuf,
}

impl SharedRun {
    pub fn from_env() -> Option<SharedRun> {
        let id = std::env::var(xtask::test_cmd::RUN_ENV).ok()?;
        let dir = std::env::var_os(xtask::test_cmd::RUN_DIR_ENV)?;
        Some(SharedRun {
            id,
            dir: PathBuf::from(dir),
        })
    }

    /// The owner labels of the run's `cargo xtask test` process (its pid leads the run's ID).
    pub fn owner_labels(&self) -> Vec<String> {
        let pid: u32 = self
            .id
            .split('-')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{} = {}: no pid", xtask::test_cmd::RUN_ENV, self.id));
        let (host, pid, started) = owner::process(pid)
            .unwrap_or_else(|| panic!("the `cargo xtask test` run {} is gone", self.id));
        vec![
            format!("{}={host}", owner::OWNER_HOST),
            format!("{}={pid}", owner::OWNER_PID),
            format!("{}={started}", owner::OWNER_STARTED),
        ]
    }

    /// The tag of the fixture `key` of this run: the one a binary built before, or the one
    /// `build` makes now (it gets the tag to make). Binaries asking for one key wait for each
    /// other.
    pub fn fixture(&self, name: &str, key: &str, build: impl FnOnce(&str)) -> String {
        let file = file_name(key);
        let _lock = lock(self.dir.join(format!("{file}.lock")));
        let noted = self.dir.join(format!("{file}.tag"));
        if let Ok(tag) = std::fs::read_to_string(&noted) {
            if super::docker(&["image", "inspect", "--format", "{{.Id}}", &tag]).code == 0 {
                return tag;
            }
        }
        let tag = format!(
            "localhost/xtask-fixture-{name}:{}-{:08x}",
            self.id,
            fnv1a(key)
        );
        build(&tag);
        std::fs::write(&noted, &tag).unwrap();
        tag
    }
}

/// FNV-1a: a tag suffix that tells the fixture's builds (targets, build args) apart.
fn fnv1a(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}
