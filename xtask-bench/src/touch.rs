//! What the rebuild and update benches build: the variant from a scratch copy of its build
//! context ([`crate::context`]), tagged in a repository of the bench's own, so that neither the
//! user's files nor the variant's tags change, whichever way a bench ends; and the files they
//! change in that copy, one comment line appended (new to every cache) or new bytes, put back
//! after each build.

use anyhow::{Context, Result};
use camino::{Utf8Path, Utf8PathBuf};

use crate::context::Scratch;
use std::sync::{Arc, Mutex};

use xtask::build_cmd::BuildReport;
use xtask::cleanup::Guard;
use xtask::config::Variant;
use xtask::ctx::Ctx;
use xtask::docker;
use xtask::output::warning;
use xtask::util;

/// The app source file touched by default (relative to the project root).
pub const DEFAULT_APP_FILE: &str = "app/src/voxserve/__init__.py";
/// The dependency file touched by default: the lock the deps stage installs from.
pub const DEFAULT_DEP_FILE: &str = "app/requirements.lock";
/// What the appended comment line says.
const MARKER: &str = "xtask bench touch";

/// The variant as the bench builds it: from the scratch copy of its context, tagged
/// `<image>-bench:…` (the variant's own tags stay where they are).
pub fn bench_variant(variant: &Variant, scratch: &Scratch) -> Variant {
    let mut ours = variant.clone();
    ours.context = scratch.path().to_owned();
    ours.image = bench_repository(variant);
    ours.tags = vec![];
    ours
}

/// The repository the bench's builds of `variant` are tagged in.
pub fn bench_repository(variant: &Variant) -> String {
    format!("{}-bench", variant.image)
}

/// The images a bench builds, removed when it ends, on every path: the tags of its
/// repositories, then each image it built that no tag holds any more (a later build of the bench
/// took its tag); an image a user's tag holds stays. A bench killed before leaves them, labelled
/// with its owner (`xtask::reclaim::bench_image_labels`): the next bench removes them.
pub struct Built {
    ids: Arc<Mutex<Vec<String>>>,
    _guard: Guard,
}

impl Built {
    pub fn new(repositories: Vec<String>) -> Built {
        let ids = Arc::new(Mutex::new(Vec::new()));
        let built = Arc::clone(&ids);
        let guard = Guard::new(move || {
            let ids = std::mem::take(&mut *built.lock().unwrap_or_else(|p| p.into_inner()));
            if let Err(err) = remove(&repositories, &ids) {
                warning!(
                    "could not remove the bench's images ({}): {err:#}",
                    repositories.join(", ")
                );
            }
        });
        Built { ids, _guard: guard }
    }

    /// Records the image of a build, to be removed at the end.
    pub fn add(&self, report: &BuildReport) {
        if let Some(id) = &report.image_id {
            self.ids
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(id.clone());
        }
    }
}

fn remove(repositories: &[String], ids: &[String]) -> Result<()> {
    for repository in repositories {
        docker::remove_repository_tags(repository)?;
    }
    for (id, image) in docker::image_inspect(ids)? {
        if image.repo_tags.is_empty() {
            docker::remove_image(&id)?;
        }
    }
    Ok(())
}

/// A file of the context the bench changes, and its copy in the scratch context.
#[derive(Debug, Clone)]
pub struct File {
    /// As the user names it: relative to the repository when inside it.
    pub shown: Utf8PathBuf,
    /// Its place in the scratch copy, which the builds read.
    pub copy: Utf8PathBuf,
    pub original: Vec<u8>,
}

impl File {
    /// `given` (relative to the current directory), else `default` (relative to the project
    /// root); refused when it does not exist, is outside the build context, or is left out of
    /// it by `.dockerignore`: a change to it could not affect the build.
    pub fn resolve(
        ctx: &Ctx,
        scratch: &Scratch,
        given: Option<&Utf8PathBuf>,
        default: &str,
    ) -> Result<File> {
        let path = match given {
            Some(p) => util::absolute(p)?,
            None => ctx.root.join(default),
        };
        let original =
            std::fs::read(&path).with_context(|| format!("reading {}", util::shown(&path)))?;
        Ok(File {
            copy: scratch.file(&path)?,
            shown: util::shown(&path).into(),
            original,
        })
    }

    /// The file with one comment line appended, of a value no earlier run's cache can know.
    pub fn commented(&self) -> Vec<u8> {
        touched_contents(&self.copy, &self.original, &util::unique_suffix())
    }

    /// Runs `build` with `bytes` in the copy's place, then puts the original bytes back, so
    /// that the next build starts from the files as they are.
    pub fn changed<T>(&self, bytes: &[u8], build: impl FnOnce() -> T) -> Result<T> {
        std::fs::write(&self.copy, bytes).with_context(|| format!("changing {}", self.copy))?;
        let built = build();
        std::fs::write(&self.copy, &self.original)
            .with_context(|| format!("restoring {}", self.copy))?;
        Ok(built)
    }
}

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
    fn a_change_lasts_one_build_and_touches_only_the_copy() {
        let ctx = Ctx::new(None).unwrap();
        let context = xtask::ctx::TempDir::new(&ctx, "touch-test").unwrap();
        std::fs::write(context.path().join("a.py"), "a = 1").unwrap();
        let scratch = Scratch::copy(&ctx, context.path()).unwrap();
        let given = context.path().join("a.py");
        let file = File::resolve(&ctx, &scratch, Some(&given), DEFAULT_APP_FILE).unwrap();
        let seen = file
            .changed(&file.commented(), || std::fs::read(&file.copy).unwrap())
            .unwrap();
        assert!(seen.starts_with(b"a = 1\n# xtask bench touch "), "{seen:?}");
        assert_eq!(std::fs::read(&file.copy).unwrap(), b"a = 1");
        assert_eq!(std::fs::read(&given).unwrap(), b"a = 1");
        // Under the project root, it is shown relative to it.
        assert!(
            file.shown.is_relative() && file.shown.ends_with("a.py"),
            "{}",
            file.shown
        );
        let missing = context.path().join("gone.py");
        let err = File::resolve(&ctx, &scratch, Some(&missing), DEFAULT_APP_FILE).unwrap_err();
        assert!(err.to_string().contains("reading"), "{err}");
    }
}
