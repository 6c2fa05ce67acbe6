//! What every command receives ([`Ctx`]: the project root and the images config), and its
//! scratch directories ([`TempDir`]).

use anyhow::{Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use std::sync::OnceLock;

use crate::config::Config;
use crate::util::{absolute, host_join, project_root, shown, unique_suffix};

/// What every command receives: the project root and the images config.
pub struct Ctx {
    /// The workspace root (where `Cargo.toml` and `target/` live).
    pub root: Utf8PathBuf,
    /// The images config file; its directory is the base of the paths it names.
    pub(crate) config_path: Utf8PathBuf,
    config: OnceLock<Config>,
}

impl Ctx {
    pub fn new(config: Option<Utf8PathBuf>) -> Result<Ctx> {
        let root = project_root();
        let config_path = match config {
            Some(path) => absolute(&path)?,
            None => host_join(&root, "images.toml"),
        };
        Ok(Ctx {
            root,
            config_path,
            config: OnceLock::new(),
        })
    }

    /// The parsed and validated images config, loaded on first use.
    pub fn config(&self) -> Result<&Config> {
        if let Some(config) = self.config.get() {
            return Ok(config);
        }
        let config = Config::load(&self.config_path)?;
        Ok(self.config.get_or_init(|| config))
    }

    /// The same project in another checkout (a worktree at another commit), with its config.
    pub(crate) fn at(root: Utf8PathBuf, config_path: Utf8PathBuf) -> Ctx {
        Ctx {
            root,
            config_path,
            config: OnceLock::new(),
        }
    }

    /// `target/xtask`: reports and scratch space of the xtask.
    pub(crate) fn out_dir(&self) -> Utf8PathBuf {
        host_join(&self.root, "target/xtask")
    }
}

/// A directory under `target/xtask/tmp` removed on drop and on Ctrl-C.
pub struct TempDir {
    path: Utf8PathBuf,
    _guard: crate::cleanup::Guard,
}

impl TempDir {
    pub fn new(ctx: &Ctx, prefix: &str) -> Result<TempDir> {
        let path = host_join(&ctx.out_dir(), format!("tmp/{prefix}-{}", unique_suffix()));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", shown(&path)))?;
        let remove = path.clone();
        let guard = crate::cleanup::Guard::new(move || {
            let _ = std::fs::remove_dir_all(&remove);
        });
        Ok(TempDir {
            path,
            _guard: guard,
        })
    }

    pub fn path(&self) -> &Utf8Path {
        &self.path
    }
}
