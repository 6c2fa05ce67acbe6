//! What there is to lint in the project around images.toml: its Dockerfiles and variants, shell
//! scripts, workflows and actions, the Cargo workspace, and which variants are built (for dive).

use anyhow::{Context, Result};
use camino::{Utf8Path, Utf8PathBuf};

use super::plan::{CheckTarget, DiveTarget, Inputs, Tool};
use crate::config::Config;
use crate::docker;
use crate::util::progress;

/// Directories whose shell scripts shellcheck reads (recursively).
const SHELL_DIRS: [&str; 3] = ["scripts", ".ci", "app"];

/// Directories never descended into.
const SKIP_DIRS: [&str; 5] = ["target", "node_modules", ".venv", "__pycache__", ".git"];

/// `path` relative to the project directory, with `/` separators, as every tool is given it.
pub(crate) fn relative(dir: &Utf8Path, path: &Utf8Path) -> Utf8PathBuf {
    let rel = path.strip_prefix(dir).unwrap_or(path);
    let rel = if rel.as_str().is_empty() {
        Utf8Path::new(".")
    } else {
        rel
    };
    Utf8PathBuf::from(rel.as_str().replace('\\', "/"))
}

/// Gathers the inputs of the selected (and available) tools; `cargo` runs cargo subcommands.
pub(crate) fn gather(config: &Config, tools: &[Tool], cargo: &str) -> Result<Inputs> {
    let dir = &config.dir;
    let mut dockerfiles: Vec<Utf8PathBuf> = Vec::new();
    for v in &config.variants {
        let dockerfile = relative(dir, &v.dockerfile);
        if !dockerfiles.contains(&dockerfile) {
            dockerfiles.push(dockerfile);
        }
    }
    let github = dir.join(".github");
    Ok(Inputs {
        cargo: cargo.to_string(),
        rust_workspace: dir.join("Cargo.toml").is_file(),
        dockerfiles,
        hadolint_config: first_file(dir, &[".hadolint.yaml", ".hadolint.yml"]),
        checks: if tools.contains(&Tool::Buildkit) {
            checks(config)?
        } else {
            Vec::new()
        },
        shell_scripts: files(dir, &SHELL_DIRS.map(|d| dir.join(d)), is_shell_script)?,
        workflows: workflows(dir, &github.join("workflows"))?,
        actions: files(dir, &[github.join("actions")], |p| {
            matches!(p.file_name(), Some("action.yml" | "action.yaml"))
        })?,
        zizmor_config: first_file(dir, &[".github/zizmor.yml", "zizmor.yml"]),
        dive: if tools.contains(&Tool::Dive) {
            dive_targets(config)?
        } else {
            Vec::new()
        },
    })
}

/// One BuildKit check per variant, with the offline base as `BASE_IMAGE` where it is usable.
fn checks(config: &Config) -> Result<Vec<CheckTarget>> {
    let base = offline_base(config)?;
    let dir = &config.dir;
    Ok(config
        .variants
        .iter()
        .map(|v| {
            let mut build_args = v.build_args.clone();
            if let Some(base) = &base {
                build_args
                    .entry("BASE_IMAGE".into())
                    .or_insert_with(|| base.clone());
            }
            CheckTarget {
                variant: v.name.clone(),
                dockerfile: relative(dir, &v.dockerfile),
                context: relative(dir, &v.context),
                target: v.target.clone(),
                platforms: v.platforms.clone(),
                build_args,
            }
        })
        .collect())
}

/// Every file below `roots` that `wanted` takes, relative to `dir` and sorted.
fn files(
    dir: &Utf8Path,
    roots: &[Utf8PathBuf],
    wanted: impl Fn(&Utf8Path) -> bool,
) -> Result<Vec<Utf8PathBuf>> {
    let mut found = Vec::new();
    for root in roots {
        walk(root, &mut |path| {
            if wanted(path) {
                found.push(relative(dir, path));
            }
        })?;
    }
    found.sort();
    Ok(found)
}

/// `*.yml` / `*.yaml` directly in `workflows` (GitHub reads no subdirectories).
fn workflows(dir: &Utf8Path, workflows: &Utf8Path) -> Result<Vec<Utf8PathBuf>> {
    if !workflows.is_dir() {
        return Ok(Vec::new());
    }
    let mut found = Vec::new();
    for entry in workflows
        .read_dir_utf8()
        .with_context(|| format!("listing {}", crate::util::shown(workflows)))?
    {
        let path = entry
            .with_context(|| format!("listing {}", crate::util::shown(workflows)))?
            .into_path();
        if matches!(path.extension(), Some("yml" | "yaml")) && path.is_file() {
            found.push(relative(dir, &path));
        }
    }
    found.sort();
    Ok(found)
}

/// The built variants, for dive; those not built are named and left out.
fn dive_targets(config: &Config) -> Result<Vec<DiveTarget>> {
    let refs: Vec<String> = config.variants.iter().map(|v| v.image_ref()).collect();
    let built = docker::image_inspect(&refs)?;
    let mut targets = Vec::new();
    for v in &config.variants {
        if built.contains_key(&v.image_ref()) {
            targets.push(DiveTarget {
                variant: v.name.clone(),
                image: v.image_ref(),
                dockerfile: relative(&config.dir, &v.dockerfile),
                thresholds: v.dive.clone(),
            });
        } else {
            progress!(
                "dive: {} is not built (`cargo xtask build {}`): not checked",
                v.image_ref(),
                v.name
            );
        }
    }
    Ok(targets)
}

/// The offline base as `BASE_IMAGE`, as `cargo xtask build` passes it: when it exists and the
/// active builder sees the local image store.
fn offline_base(config: &Config) -> Result<Option<String>> {
    let builder = docker::builder(None)?;
    if builder.driver == "docker" && docker::image_id(&config.base.image)?.is_some() {
        Ok(Some(config.base.image.clone()))
    } else {
        progress!(
            "buildkit: offline base {} not in use (not built, or builder `{}` cannot see local \
             images): each Dockerfile's default base is resolved",
            config.base.image,
            builder.name
        );
        Ok(None)
    }
}

fn first_file(dir: &Utf8Path, names: &[&str]) -> Option<Utf8PathBuf> {
    names
        .iter()
        .map(Utf8PathBuf::from)
        .find(|name| dir.join(name).is_file())
}

fn walk(dir: &Utf8Path, visit: &mut dyn FnMut(&Utf8Path)) -> Result<()> {
    if !dir.is_dir() {
        return Ok(());
    }
    let mut entries: Vec<Utf8PathBuf> = dir
        .read_dir_utf8()
        .with_context(|| format!("listing {}", crate::util::shown(dir)))?
        .map(|e| e.map(|e| e.into_path()))
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("listing {}", crate::util::shown(dir)))?;
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap_or("");
        if path.is_dir() {
            if !SKIP_DIRS.contains(&name) {
                walk(&path, visit)?;
            }
        } else if path.is_file() {
            visit(&path);
        }
    }
    Ok(())
}

/// `*.sh` / `*.bash`, or an extension-less file whose `#!` line runs a POSIX shell or bash.
fn is_shell_script(path: &Utf8Path) -> bool {
    match path.extension() {
        Some("sh" | "bash") => true,
        Some(_) => false,
        None => {
            let Ok(mut file) = std::fs::File::open(path) else {
                return false;
            };
            let mut head = [0u8; 128];
            let n = std::io::Read::read(&mut file, &mut head).unwrap_or(0);
            shebang_is_shell(&String::from_utf8_lossy(&head[..n]))
        }
    }
}

fn shebang_is_shell(head: &str) -> bool {
    let Some(line) = head.lines().next().and_then(|l| l.strip_prefix("#!")) else {
        return false;
    };
    let mut words = line.split_whitespace();
    let mut program = words.next().unwrap_or("").rsplit('/').next().unwrap_or("");
    if program == "env" {
        program = words.find(|w| !w.starts_with('-')).unwrap_or("");
    }
    matches!(program, "sh" | "bash" | "dash" | "ksh")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebangs() {
        assert!(shebang_is_shell("#!/usr/bin/env bash\nset -e\n"));
        assert!(shebang_is_shell("#!/bin/sh\n"));
        assert!(shebang_is_shell("#!/usr/bin/env -S bash -eu\n"));
        assert!(!shebang_is_shell("#!/usr/bin/env python3\n"));
        assert!(!shebang_is_shell("# not a shebang\n"));
        assert!(!shebang_is_shell(""));
    }

    #[test]
    fn paths_are_relative_with_forward_slashes() {
        let dir = Utf8Path::new("/p");
        assert_eq!(
            relative(dir, Utf8Path::new("/p/scripts/a.sh")),
            "scripts/a.sh"
        );
        assert_eq!(relative(dir, Utf8Path::new("/p")), ".");
        assert_eq!(
            relative(dir, Utf8Path::new("/elsewhere/Dockerfile")),
            "/elsewhere/Dockerfile"
        );
    }
}
