//! The build context as the engine sees it, copied into a scratch directory: the benches change
//! files there and build from there, so that nothing they do — and no way they end, `kill -9`
//! included — can leave the user's files changed. What the copy holds is what `.dockerignore`
//! lets through (`xtask::dockerignore`).

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};

use xtask::ctx::{Ctx, TempDir};
use xtask::dockerignore::{copy_tree, Ignore};
use xtask::util::shown;

/// A copy of what the engine would receive as the build context.
pub struct Scratch {
    dir: TempDir,
    /// The context it copies.
    pub context: Utf8PathBuf,
}

impl Scratch {
    /// Copies the files of `context` that `.dockerignore` lets through into a directory under
    /// target/xtask/tmp, removed on drop and on Ctrl-C.
    pub fn copy(ctx: &Ctx, context: &Utf8Path) -> Result<Scratch> {
        let ignore = Ignore::of(context)?;
        let dir = TempDir::new(ctx, "bench-context")?;
        copy_tree(context, "", &ignore, dir.path())
            .with_context(|| format!("copying the build context {context}"))?;
        Ok(Scratch {
            dir,
            context: context.to_owned(),
        })
    }

    pub fn path(&self) -> &Utf8Path {
        self.dir.path()
    }

    /// Where a file of the context is in the copy; an error when `.dockerignore` leaves it out
    /// (a change to it cannot affect the build).
    pub fn file(&self, path: &Utf8Path) -> Result<Utf8PathBuf> {
        let Ok(rel) = path.strip_prefix(&self.context) else {
            bail!(
                "{} is outside the build context {}: changing it cannot affect the build; pick a \
                 file the build context holds",
                shown(path),
                shown(&self.context)
            );
        };
        let copied = self.path().join(rel);
        if !copied.is_file() {
            bail!(
                "{} is left out of the build context by {}: changing it cannot affect the \
                 build; pick a file the build context holds",
                shown(path),
                shown(self.context.join(".dockerignore"))
            );
        }
        Ok(copied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copy_holds_what_the_engine_would_receive() {
        let ctx = Ctx::new(None).unwrap();
        let context = TempDir::new(&ctx, "context-test").unwrap();
        let root = context.path();
        for (file, text) in [
            (".dockerignore", "*\n!app/\napp/*.tmp\n"),
            ("Dockerfile", "FROM scratch\n"),
            ("app/a.py", "a\n"),
            ("app/b.tmp", "b\n"),
            ("notes/c.md", "c\n"),
        ] {
            std::fs::create_dir_all(root.join(file).parent().unwrap()).unwrap();
            std::fs::write(root.join(file), text).unwrap();
        }
        let scratch = Scratch::copy(&ctx, root).unwrap();
        assert_eq!(
            std::fs::read_to_string(scratch.path().join("app/a.py")).unwrap(),
            "a\n"
        );
        for left in ["app/b.tmp", "Dockerfile", "notes", ".dockerignore"] {
            assert!(!scratch.path().join(left).exists(), "{left}");
        }
        assert_eq!(
            scratch.file(&root.join("app/a.py")).unwrap(),
            scratch.path().join("app/a.py")
        );
        let err = scratch
            .file(&root.join("app/b.tmp"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("left out of the build context"), "{err}");
        let err = scratch
            .file(Utf8Path::new("/elsewhere/a.py"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("outside the build context"), "{err}");
    }
}
