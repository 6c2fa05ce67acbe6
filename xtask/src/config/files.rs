//! What a variant names on disk: its Dockerfile and build context, both inside the repository,
//! and what the Dockerfile declares (stages and ARGs). The one step of resolving a variant that
//! reads files; the validators use its result.

use anyhow::Result;
use camino::{Utf8Path, Utf8PathBuf};
use toml::Spanned;

use super::dockerfile::{self, Facts};
use super::located::{At, Str};
use crate::util;

/// A variant's Dockerfile and context, found and read.
pub(crate) struct Files {
    /// Absolute path of the Dockerfile.
    pub(crate) dockerfile: Utf8PathBuf,
    /// Absolute path of the build context.
    pub(crate) context: Utf8PathBuf,
    /// The Dockerfile's stages and ARGs.
    pub(crate) facts: Facts,
}

impl Files {
    /// The Dockerfile's file name, as errors about its content name it.
    pub(crate) fn dockerfile_name(&self) -> &str {
        self.dockerfile.file_name().unwrap_or("the Dockerfile")
    }
}

/// Finds the Dockerfile and the context below `dir` (the directory of images.toml), checks
/// that both stay inside `repository`, and reads the Dockerfile's stages and ARGs.
pub(crate) fn locate(
    at: &At,
    dir: &Utf8Path,
    repository: &Repository,
    dockerfile: &Str,
    context: Option<&Str>,
) -> Result<Files> {
    let dockerfile_path = dockerfile_path(at, dir, dockerfile)?;
    repository.holds(&dockerfile_path).map_err(|e| {
        at.bad(
            dockerfile,
            "dockerfile",
            format!("`{}` {e}", dockerfile.get_ref()),
        )
    })?;
    let context_path = match context {
        Some(c) => util::host_join(dir, c.get_ref()),
        None => dir.to_path_buf(),
    };
    if !context_path.is_dir() {
        return Err(at.err(
            context.map(Spanned::span),
            format!(
                "build context {} is not a directory",
                util::shown(&context_path)
            ),
        ));
    }
    if let Some(c) = context {
        repository
            .holds(&context_path)
            .map_err(|e| at.bad(c, "context", format!("`{}` {e}", c.get_ref())))?;
    }
    let text = std::fs::read_to_string(&dockerfile_path).map_err(|e| {
        let msg = format!("cannot read {}: {e}", util::shown(&dockerfile_path));
        at.bad(dockerfile, "dockerfile", msg)
    })?;
    Ok(Files {
        dockerfile: dockerfile_path,
        context: context_path,
        facts: dockerfile::facts(&text),
    })
}

/// The Dockerfile's path: a file that exists.
fn dockerfile_path(at: &At, dir: &Utf8Path, dockerfile: &Str) -> Result<Utf8PathBuf> {
    let written = dockerfile.get_ref();
    let path = util::host_join(dir, written);
    if path.is_dir() {
        // A path in images.toml, which every host reads: `/`-separated.
        let file = format!("{}/Dockerfile", written.trim_end_matches(['/', '\\']));
        let msg = format!("Dockerfile `{written}` is a directory; name the file, e.g. `{file}`");
        return Err(at.err(Some(dockerfile.span()), msg));
    }
    if !path.is_file() {
        let msg = format!(
            "Dockerfile `{written}` does not exist (looked for {})",
            util::shown(&path)
        );
        return Err(at.err(Some(dockerfile.span()), msg));
    }
    Ok(path)
}

/// What Dockerfiles and build contexts must stay inside: the git work tree that holds
/// images.toml, else (no `.git` above it) the directory of images.toml; symlinks resolved.
pub(crate) struct Repository {
    path: std::path::PathBuf,
    what: &'static str,
}

impl Repository {
    pub(crate) fn of(dir: &Utf8Path) -> std::result::Result<Repository, String> {
        // dunce: Windows' canonical form without the `\\?\` prefix, as the host writes paths.
        let real = dunce::canonicalize(dir)
            .map_err(|e| format!("cannot resolve {}: {e}", util::shown(dir)))?;
        Ok(match real.ancestors().find(|a| a.join(".git").exists()) {
            Some(top) => Repository {
                path: top.to_path_buf(),
                what: "the repository of images.toml",
            },
            None => Repository {
                path: real,
                what: "the directory of images.toml, which is in no git repository",
            },
        })
    }

    /// Ok when `path` (`..` and symlinks resolved) is inside; else says where it leads.
    fn holds(&self, path: &Utf8Path) -> std::result::Result<(), String> {
        let real = dunce::canonicalize(path).map_err(|e| format!("cannot be resolved: {e}"))?;
        if real.starts_with(&self.path) {
            return Ok(());
        }
        Err(format!(
            "leads to {}, outside {} ({}); keep Dockerfiles and build contexts inside it",
            util::shown(&real),
            util::shown(&self.path),
            self.what
        ))
    }
}
