//! Files changed for one build of a bench and put back after it: the comment line appended
//! (new to every cache), the checks before any change, and [`Touch`], which restores the
//! original bytes when dropped, on Ctrl-C, and when asked (proving it did).

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};

use xtask::cleanup::Guard;
use xtask::util;

/// The app source file touched by default (relative to the project root).
pub const DEFAULT_APP_FILE: &str = "app/src/voxserve/__init__.py";
/// The dependency file touched by default: the lock the deps stage installs from.
pub const DEFAULT_DEP_FILE: &str = "app/requirements.lock";
/// What the appended comment line says; also how a file left modified by a killed run is found.
const MARKER: &str = "xtask bench touch";

/// The bytes a touched file gets: the original with one comment line appended (after a newline
/// if the original lacks a final one). `nonce` makes the content new to every cache.
pub fn touched_contents(path: &Utf8Path, original: &[u8], nonce: &str) -> Vec<u8> {
    let mut out = original.to_vec();
    if !out.is_empty() && !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    let line = format!("{} {MARKER} {nonce}\n", comment_prefix(path));
    out.extend_from_slice(line.as_bytes());
    out
}

/// The line-comment syntax of a file, by its name.
pub fn comment_prefix(path: &Utf8Path) -> &'static str {
    match path.extension().unwrap_or("") {
        "rs" | "js" | "ts" | "go" | "c" | "h" | "cc" | "cpp" | "java" => "//",
        "sql" | "lua" => "--",
        // Python, requirement files and locks, TOML, YAML, shell, Dockerfiles.
        _ => "#",
    }
}

/// Checks that a file to be touched exists, is inside the build context (else the change could
/// not affect the build) and carries no marker of an earlier, killed run.
pub fn validate_touch(path: &Utf8Path, context: &Utf8Path, contents: &[u8]) -> Result<()> {
    if !path.starts_with(context) {
        bail!(
            "{path} is outside the build context {context}: changing it cannot affect the build; \
             pick a file under the context"
        );
    }
    if contents
        .windows(MARKER.len())
        .any(|w| w == MARKER.as_bytes())
    {
        bail!(
            "{path} still holds a `{MARKER}` line from an earlier run that was killed: restore it \
             (`git checkout -- {path}`) and run again"
        );
    }
    Ok(())
}

/// A file changed for one build; its original bytes come back when this drops, or on Ctrl-C.
pub struct Touch {
    path: Utf8PathBuf,
    original: Vec<u8>,
    guard: Option<Guard>,
}

impl Touch {
    /// Appends a comment line (see [`touched_contents`]).
    pub fn apply(path: &Utf8Path, original: Vec<u8>) -> Result<Touch> {
        let modified = touched_contents(path, &original, &util::unique_suffix());
        Touch::write(path, original, &modified)
    }

    /// Writes `modified` in place of the file's `original` bytes.
    pub fn write(path: &Utf8Path, original: Vec<u8>, modified: &[u8]) -> Result<Touch> {
        // The guard exists before the first byte is written.
        let (restore_path, restore_bytes) = (path.to_owned(), original.clone());
        let guard = Guard::new(move || {
            if let Err(err) = std::fs::write(&restore_path, &restore_bytes) {
                xtask::output::notice(format_args!("error: could not restore {restore_path}: {err}; run `git checkout -- {restore_path}`"));
            }
        });
        std::fs::write(path, modified).with_context(|| format!("changing {path}"))?;
        Ok(Touch {
            path: path.to_owned(),
            original,
            guard: Some(guard),
        })
    }

    /// Restores the file now and proves it holds its original bytes again.
    pub fn restore(mut self) -> Result<()> {
        drop(self.guard.take());
        let now = std::fs::read(&self.path).with_context(|| format!("reading {}", self.path))?;
        if now != self.original {
            bail!(
                "{} was not restored to its original bytes: run `git checkout -- {}`",
                self.path,
                self.path
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touch_appends_one_comment_line() {
        let py = Utf8Path::new("/p/app/src/voxserve/__init__.py");
        assert_eq!(
            touched_contents(py, b"x = 1\n", "n1"),
            b"x = 1\n# xtask bench touch n1\n"
        );
        // A missing final newline is added first, so the original last line stays intact.
        assert_eq!(
            touched_contents(py, b"x = 1", "n1"),
            b"x = 1\n# xtask bench touch n1\n"
        );
        assert_eq!(touched_contents(py, b"", "n1"), b"# xtask bench touch n1\n");
        let rs = Utf8Path::new("/p/src/main.rs");
        assert!(touched_contents(rs, b"", "n").starts_with(b"// "));
        assert_eq!(comment_prefix(Utf8Path::new("app/requirements.lock")), "#");
        assert_eq!(comment_prefix(Utf8Path::new("Dockerfile")), "#");
        // Different nonces give different contents (no earlier run's cache can match).
        assert_ne!(
            touched_contents(py, b"x", "a"),
            touched_contents(py, b"x", "b")
        );
    }

    #[test]
    fn touch_planning_refuses_files_outside_the_context_or_left_modified() {
        let ctx = Utf8Path::new("/p");
        assert!(validate_touch(Utf8Path::new("/p/app/a.py"), ctx, b"x").is_ok());
        let err = validate_touch(Utf8Path::new("/elsewhere/a.py"), ctx, b"x").unwrap_err();
        assert!(
            err.to_string().contains("outside the build context"),
            "{err}"
        );
        // `/pp` is not inside `/p`.
        assert!(validate_touch(Utf8Path::new("/pp/a.py"), ctx, b"x").is_err());
        let left = touched_contents(Utf8Path::new("/p/a.py"), b"x\n", "old");
        let err = validate_touch(Utf8Path::new("/p/a.py"), ctx, &left).unwrap_err();
        assert!(err.to_string().contains("git checkout"), "{err}");
    }

    #[test]
    fn touch_restores_the_original_bytes() {
        let dir = std::env::temp_dir().join(format!("xtask-bench-{}", util::unique_suffix()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = Utf8PathBuf::try_from(dir.join("f.py")).unwrap();
        std::fs::write(&path, b"a = 1").unwrap();
        let touch = Touch::apply(&path, b"a = 1".to_vec()).unwrap();
        assert_ne!(std::fs::read(&path).unwrap(), b"a = 1");
        touch.restore().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"a = 1");
        // Dropped without `restore` (an error path): restored too.
        let touch = Touch::apply(&path, b"a = 1".to_vec()).unwrap();
        drop(touch);
        assert_eq!(std::fs::read(&path).unwrap(), b"a = 1");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
