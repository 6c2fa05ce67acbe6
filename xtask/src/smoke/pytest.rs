//! The pytest a `smoke.pytest` check mounts into the container: pytest and what it needs, taken
//! with their hashes from the check's lock (`requirements`), installed once by uv into
//! `target/xtask/smoke-pytest/<digest of those pins>/site` and reused while the pins stay.
//! pytest and its dependencies are pure Python, so one install serves any image's Python.

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use std::collections::BTreeSet;

use crate::cleanup;
use crate::ctx::Ctx;
use crate::process::Cmd;
use crate::util::{progress, shown};

/// The requirements of `root` and of everything it needs, by the `# via` notes of a lock that
/// `uv pip compile` (or pip-compile) wrote: each requirement with its hashes, nothing else.
pub(crate) fn closure(lock: &str, root: &str) -> Result<String> {
    struct Block {
        name: String,
        lines: Vec<String>,
        via: Vec<String>,
    }
    let mut blocks: Vec<Block> = Vec::new();
    let mut in_via = false;
    for line in lock.lines() {
        let trimmed = line.trim();
        if !line.starts_with([' ', '\t', '#']) && !trimmed.is_empty() {
            let name = trimmed
                .split(['=', '<', '>', '~', '!', ';', ' ', '['])
                .next()
                .unwrap_or_default();
            blocks.push(Block {
                name: normalized(name),
                lines: vec![line.to_string()],
                via: Vec::new(),
            });
            in_via = false;
            continue;
        }
        let Some(block) = blocks.last_mut() else {
            continue;
        };
        if trimmed.starts_with("--hash=") {
            block.lines.push(line.to_string());
        } else if let Some(note) = trimmed.strip_prefix('#') {
            let note = note.trim();
            if note == "via" {
                in_via = true;
            } else if let Some(who) = note.strip_prefix("via ") {
                block.via.push(normalized(who));
                in_via = false;
            } else if in_via && !note.is_empty() {
                block.via.push(normalized(note));
            }
        }
    }
    let root = normalized(root);
    if !blocks.iter().any(|b| b.name == root) {
        bail!("it does not pin `{root}`");
    }
    let mut wanted = BTreeSet::from([root]);
    loop {
        let more: Vec<String> = blocks
            .iter()
            .filter(|b| !wanted.contains(&b.name) && b.via.iter().any(|v| wanted.contains(v)))
            .map(|b| b.name.clone())
            .collect();
        if more.is_empty() {
            break;
        }
        wanted.extend(more);
    }
    Ok(blocks
        .iter()
        .filter(|b| wanted.contains(&b.name))
        .flat_map(|b| b.lines.iter().map(|l| format!("{l}\n")))
        .collect())
}

/// A distribution name as PEP 503 compares them (`# via` notes may add ` (pyproject.toml)`).
fn normalized(name: &str) -> String {
    crate::util::pep503_name(name.split(" (").next().unwrap_or(name).trim())
}

/// FNV-1a of the pins, naming the install directory.
fn digest(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The site directory holding pytest from `lock`, installed now unless a previous run did.
pub(crate) fn site(ctx: &Ctx, lock: &Utf8Path) -> Result<Utf8PathBuf> {
    let text = std::fs::read_to_string(lock).with_context(|| format!("reading {}", shown(lock)))?;
    let pins = closure(&text, "pytest").with_context(|| {
        format!(
            "taking pytest's pins from {} for a smoke.pytest check",
            shown(lock)
        )
    })?;
    let dir = ctx.out_dir().join("smoke-pytest").join(digest(&pins));
    let site = dir.join("site");
    if site.join("pytest").is_dir() {
        return Ok(site);
    }
    if which::which("uv").is_err() {
        bail!(
            "a smoke.pytest check needs uv on PATH to install pytest from {}: install it \
             (`pip install uv`)",
            shown(lock)
        );
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", shown(&dir)))?;
    let requirements = dir.join("requirements.txt");
    std::fs::write(&requirements, &pins)
        .with_context(|| format!("writing {}", shown(&requirements)))?;
    progress!(
        "smoke: installing pytest from {} into {}",
        shown(lock),
        shown(&site)
    );
    // Into a fresh directory, moved in place when complete: an interrupted install leaves no
    // half a pytest for the next run to trust.
    let partial = Utf8PathBuf::from(format!("{site}.partial-{}", crate::util::unique_suffix()));
    let remove = partial.clone();
    let guard = cleanup::Guard::new(move || drop(std::fs::remove_dir_all(&remove)));
    let install = Cmd::new("uv")
        .args([
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--require-hashes",
            "--target",
        ])
        .arg(&partial)
        .arg("-r")
        .arg(&requirements)
        .stream()
        .with_context(|| format!("installing pytest from {} with uv", shown(&requirements)))?;
    if !install.success() {
        bail!(
            "installing pytest from {} with uv failed ({install}; its output is above)",
            shown(&requirements)
        );
    }
    std::fs::rename(&partial, &site)
        .with_context(|| format!("moving {} to {}", shown(&partial), shown(&site)))?;
    drop(guard);
    Ok(site)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = "# This file was autogenerated by uv via the following command:
#    app/lock.sh
anyio==4.0 \\
    --hash=sha256:aa
    # via
    #   httpx2
    #   starlette
iniconfig==2.3.1 \\
    --hash=sha256:bb \\
    --hash=sha256:cc
    # via pytest
numpy==2.4.6 ; python_full_version < '3.12' \\
    --hash=sha256:dd
    # via voxserve (pyproject.toml)
Packaging==26.4 \\
    --hash=sha256:ee
    # via
    #   fastapi
    #   pytest
pytest==9.2.0 \\
    --hash=sha256:ff
    # via voxserve (pyproject.toml:dev)
tomli-w==1.0 \\
    --hash=sha256:11
    # via iniconfig
";

    #[test]
    fn the_closure_of_pytest_keeps_its_pins_and_hashes_only() {
        let pins = closure(LOCK, "pytest").unwrap();
        assert_eq!(
            pins,
            "iniconfig==2.3.1 \\\n    --hash=sha256:bb \\\n    --hash=sha256:cc\n\
             Packaging==26.4 \\\n    --hash=sha256:ee\n\
             pytest==9.2.0 \\\n    --hash=sha256:ff\n\
             tomli-w==1.0 \\\n    --hash=sha256:11\n"
        );
        assert!(closure(LOCK, "nose").is_err());
    }

    #[test]
    fn the_repository_lock_gives_pytest_and_its_dependencies() {
        let lock =
            std::fs::read_to_string(crate::util::project_root().join("app/requirements-dev.lock"))
                .unwrap();
        let pins = closure(&lock, "pytest").unwrap();
        let names: Vec<&str> = pins
            .lines()
            .filter(|l| !l.starts_with(' '))
            .map(|l| l.split("==").next().unwrap())
            .collect();
        assert!(
            names.contains(&"pytest") && names.contains(&"pluggy"),
            "{names:?}"
        );
        assert!(
            !names.contains(&"numpy") && !names.contains(&"fastapi"),
            "{names:?}"
        );
        assert!(pins.contains("--hash=sha256:"));
    }
}
