//! The app's sources as the build context that stands in for the Dockerfiles' `app-src-build`
//! stage: what `.dockerignore` sends of `app/src/voxserve`, laid out as that stage lays it out
//! (`app-src/opt/voxserve/voxserve`), with the modes its `cp -r` leaves and every mtime 0. A
//! Dockerfile takes it when it declares `ARG APP_SRC` (`FROM ${APP_SRC} AS app-src`).
//!
//! Named by its content's hash: BuildKit syncs a named context incrementally under its name and
//! keeps a file whose size and mtime did not change, so one fixed name with every mtime 0 would
//! build the old code after an edit that keeps a file's size.

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use sha2::{Digest, Sha256};

use crate::dockerignore::{copy_tree, Ignore};
use crate::util::{host_join, shown};

/// The build argument that names the stage, or the context, the app is copied from.
pub(crate) const ARG: &str = "APP_SRC";
/// The app in the build context.
const SOURCE: &str = "app/src/voxserve";
/// Where the `app-src-build` stage puts it.
const AT: &str = "app-src/opt/voxserve/voxserve";

/// A prepared app context: its name (`APP_SRC`, `--build-context NAME=DIR`) and directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AppSrc {
    pub(crate) name: String,
    pub(crate) dir: Utf8PathBuf,
}

/// Lays out the app of `context` in `<tmp>/app-src`, every mtime 0, and names it.
pub(crate) fn prepare(context: &Utf8Path, tmp: &Utf8Path) -> Result<AppSrc> {
    let source = host_join(context, SOURCE);
    if !source.is_dir() {
        bail!(
            "the Dockerfile declares ARG {ARG}, the app's stage, but {} is no directory: build \
             from the repository's root",
            shown(&source)
        );
    }
    let copy = host_join(tmp, "app-src-copy");
    let copied = host_join(&copy, SOURCE);
    std::fs::create_dir_all(&copied).with_context(|| format!("creating {}", shown(&copied)))?;
    copy_tree(context, SOURCE, &Ignore::of(context)?, &copy)
        .with_context(|| format!("copying {}", shown(&source)))?;
    let dir = host_join(tmp, "app-src");
    let at = host_join(&dir, AT);
    let parent = at.parent().context("the app's place has a parent")?;
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", shown(parent)))?;
    std::fs::rename(&copied, &at).with_context(|| format!("moving the app to {}", shown(&at)))?;
    let entries = entries(&dir)?;
    for entry in &entries {
        normalize(entry)?;
    }
    Ok(AppSrc {
        name: name(&digest(&entries)?),
        dir,
    })
}

/// A file, directory or link of the prepared tree.
struct Entry {
    /// `/`-separated, relative to the tree's root ("" for the root).
    rel: String,
    path: Utf8PathBuf,
    kind: std::fs::FileType,
}

/// Every entry below `root` and the root itself, sorted by path.
fn entries(root: &Utf8Path) -> Result<Vec<Entry>> {
    let kind = std::fs::symlink_metadata(root)
        .with_context(|| format!("reading {}", shown(root)))?
        .file_type();
    let mut out = vec![Entry {
        rel: String::new(),
        path: root.to_owned(),
        kind,
    }];
    let mut i = 0;
    while i < out.len() {
        if out[i].kind.is_dir() {
            let below = children(&out[i])?;
            out.extend(below);
        }
        i += 1;
    }
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(out)
}

fn children(dir: &Entry) -> Result<Vec<Entry>> {
    let listing = dir
        .path
        .read_dir_utf8()
        .with_context(|| format!("listing {}", shown(&dir.path)))?;
    listing
        .map(|entry| {
            let entry = entry.with_context(|| format!("listing {}", shown(&dir.path)))?;
            let kind = entry
                .file_type()
                .with_context(|| format!("reading {}", shown(entry.path())))?;
            let rel = match dir.rel.as_str() {
                "" => entry.file_name().to_string(),
                up => format!("{up}/{}", entry.file_name()),
            };
            Ok(Entry {
                rel,
                path: entry.path().to_owned(),
                kind,
            })
        })
        .collect()
}

/// mtime 0, and the mode `cp -r` under umask 022 leaves (the checkout's umask does not count).
fn normalize(entry: &Entry) -> Result<()> {
    // Not FileTime::zero(): on Windows that is 1601, the platform's own epoch.
    let zero = filetime::FileTime::from_unix_time(0, 0);
    if entry.kind.is_symlink() {
        return filetime::set_symlink_file_times(&entry.path, zero, zero)
            .with_context(|| format!("setting the mtime of {}", shown(&entry.path)));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&entry.path)
            .with_context(|| format!("reading {}", shown(&entry.path)))?
            .permissions()
            .mode();
        std::fs::set_permissions(&entry.path, std::fs::Permissions::from_mode(mode & 0o755))
            .with_context(|| format!("setting the mode of {}", shown(&entry.path)))?;
    }
    filetime::set_file_mtime(&entry.path, zero)
        .with_context(|| format!("setting the mtime of {}", shown(&entry.path)))
}

/// `sha256:<hex>` over each entry's path, kind, mode and content (a link's target).
fn digest(entries: &[Entry]) -> Result<String> {
    let mut hash = Sha256::new();
    for entry in entries {
        let meta = std::fs::symlink_metadata(&entry.path)
            .with_context(|| format!("reading {}", shown(&entry.path)))?;
        hash.update(format!(
            "{}\0{}\0{}\0",
            entry.rel,
            kind_of(entry),
            mode_of(&meta)
        ));
        if entry.kind.is_file() {
            let bytes = std::fs::read(&entry.path)
                .with_context(|| format!("reading {}", shown(&entry.path)))?;
            hash.update(Sha256::digest(&bytes));
        } else if entry.kind.is_symlink() {
            let target = std::fs::read_link(&entry.path)
                .with_context(|| format!("reading {}", shown(&entry.path)))?;
            hash.update(target.to_string_lossy().as_bytes());
        }
    }
    Ok(crate::registry::serve::digest(hash))
}

fn kind_of(entry: &Entry) -> &'static str {
    match (entry.kind.is_dir(), entry.kind.is_symlink()) {
        (true, _) => "dir",
        (_, true) => "link",
        _ => "file",
    }
}

#[cfg(unix)]
fn mode_of(meta: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o7777
}

/// Windows keeps no Unix mode: buildx sends what it derives from the file's attributes.
#[cfg(not(unix))]
fn mode_of(meta: &std::fs::Metadata) -> u32 {
    u32::from(meta.permissions().readonly())
}

/// The context's name, from the content's `sha256:<hex>`: a valid stage and context name (pure).
pub(crate) fn name(digest: &str) -> String {
    let hex = digest.trim_start_matches("sha256:");
    format!("app-src-{}", &hex[..16.min(hex.len())])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctx::{Ctx, TempDir};

    fn context(ctx: &Ctx, files: &[(&str, &str)]) -> TempDir {
        let dir = TempDir::new(ctx, "app-src-test").unwrap();
        for (file, text) in files {
            let path = dir.path().join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }

    const DOCKERIGNORE: (&str, &str) = (
        ".dockerignore",
        "*\n!app/src/voxserve/\n**/__pycache__\n**/*.py[cod]\n",
    );

    #[test]
    fn the_app_is_laid_out_as_the_stage_lays_it_out_with_mtime_0() {
        let ctx = Ctx::new(None).unwrap();
        let src = context(
            &ctx,
            &[
                DOCKERIGNORE,
                ("app/src/voxserve/__init__.py", ""),
                ("app/src/voxserve/api/main.py", "app = 1\n"),
                ("app/src/voxserve/__pycache__/main.cpython-313.pyc", "x"),
                ("app/src/voxserve/stale.pyc", "x"),
                ("app/tests/test_main.py", "x"),
            ],
        );
        let tmp = TempDir::new(&ctx, "app-src-out").unwrap();
        let app = prepare(src.path(), tmp.path()).unwrap();
        let at = app.dir.join("app-src/opt/voxserve/voxserve");
        assert_eq!(
            std::fs::read_to_string(at.join("api/main.py")).unwrap(),
            "app = 1\n"
        );
        assert!(at.join("__init__.py").is_file());
        for left in ["__pycache__", "stale.pyc"] {
            assert!(!at.join(left).exists(), "{left}");
        }
        for path in [
            &app.dir,
            &app.dir.join("app-src/opt"),
            &at,
            &at.join("api/main.py"),
        ] {
            let meta = std::fs::metadata(path).unwrap();
            assert_eq!(
                filetime::FileTime::from_last_modification_time(&meta).unix_seconds(),
                0,
                "{path}"
            );
        }
        assert!(
            app.name.starts_with("app-src-") && app.name.len() == 24,
            "{}",
            app.name
        );
    }

    #[test]
    fn the_name_changes_with_the_content_and_only_with_it() {
        let ctx = Ctx::new(None).unwrap();
        let name = |text: &str| {
            let src = context(&ctx, &[DOCKERIGNORE, ("app/src/voxserve/a.py", text)]);
            let tmp = TempDir::new(&ctx, "app-src-out").unwrap();
            prepare(src.path(), tmp.path()).unwrap().name
        };
        // The same size and, after the copy, the same mtime: only the name tells BuildKit.
        assert_eq!(name("print(1)\n"), name("print(1)\n"));
        assert_ne!(name("print(1)\n"), name("print(2)\n"));
    }

    #[test]
    fn a_context_without_the_app_is_refused() {
        let ctx = Ctx::new(None).unwrap();
        let src = context(&ctx, &[DOCKERIGNORE]);
        let tmp = TempDir::new(&ctx, "app-src-out").unwrap();
        let err = prepare(src.path(), tmp.path()).unwrap_err().to_string();
        assert!(
            err.contains("ARG APP_SRC") && err.contains("no directory"),
            "{err}"
        );
    }

    #[test]
    fn names_are_valid_context_names() {
        assert_eq!(
            name("sha256:0123456789abcdef0123"),
            "app-src-0123456789abcdef"
        );
    }
}
