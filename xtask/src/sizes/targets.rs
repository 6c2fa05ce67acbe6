//! The resolving stage of `sizes`: what to measure (each variant's image per platform, and the
//! local `--image`s), and what the engine knows of each.

use anyhow::{Context, Result};
use std::collections::BTreeMap;

use super::judge::Target;
use super::registry;
use super::Args;
use crate::config::Budget;
use crate::ctx::Ctx;
use crate::docker;

/// How a target's image is looked up: its reference, with ` @ <platform>` for one platform.
pub(super) fn key(t: &Target) -> String {
    match &t.platform {
        Some(p) => format!("{} @ {p}", t.image),
        None => t.image.clone(),
    }
}

impl Args {
    /// Each variant's image per platform, then the local `--image`s; bad platforms refused.
    pub(super) fn targets(&self, ctx: &Ctx) -> Result<Vec<Target>> {
        for p in &self.platform {
            crate::config::check_platform(p).with_context(|| format!("--platform {p}"))?;
        }
        let mut targets = Vec::new();
        if !self.variants.is_empty() || self.images.is_empty() {
            let config = ctx.config()?;
            let variants = if self.variants.is_empty() {
                config.variants.iter().collect()
            } else {
                config.select(&self.variants, false)?
            };
            for v in variants {
                let platforms: Vec<Option<String>> = match (&self.platform[..], &v.platforms[..]) {
                    ([], [_, _, ..]) => v.platforms.iter().cloned().map(Some).collect(),
                    ([], _) => vec![None],
                    (given, _) => given.iter().cloned().map(Some).collect(),
                };
                for platform in platforms {
                    targets.push(Target {
                        name: v.name.clone(),
                        variant: Some(v.name.clone()),
                        image: v.image_ref(),
                        budget: v.budget.for_platform(platform.as_deref()),
                        platform,
                        push_zstd: v.push_compression == Some(crate::config::Compression::Zstd),
                    });
                }
            }
        }
        for image in self
            .images
            .iter()
            .filter(|i| !registry::is_registry_reference(i))
        {
            let platforms: Vec<Option<String>> = if self.platform.is_empty() {
                vec![None]
            } else {
                self.platform.iter().cloned().map(Some).collect()
            };
            for platform in platforms {
                targets.push(Target {
                    name: image.clone(),
                    variant: None,
                    image: image.clone(),
                    platform,
                    budget: Budget::default(),
                    push_zstd: false,
                });
            }
        }
        Ok(targets)
    }

    /// What the engine knows of each target's image, keyed by [`key`]; a variant's platform
    /// that was not built is dropped from `targets` (its configured platforms are measured as far
    /// as they exist locally) unless `--platform` asked for it or none of them exists.
    pub(super) fn inspect(
        &self,
        targets: &mut Vec<Target>,
    ) -> Result<BTreeMap<String, docker::ImageInspect>> {
        let mut refs: Vec<String> = Vec::new();
        for t in targets.iter().filter(|t| t.platform.is_none()) {
            if !refs.contains(&t.image) {
                refs.push(t.image.clone());
            }
        }
        let mut found = docker::image_inspect(&refs)?;
        for t in targets.iter().filter(|t| t.platform.is_some()) {
            let platform = t.platform.as_deref().unwrap_or_default();
            if let Some(i) = docker::image_inspect_platform(&t.image, platform)? {
                found.insert(key(t), i);
            }
        }
        if self.platform.is_empty() {
            let present = |t: &Target| found.contains_key(&key(t));
            let mut keep = Vec::new();
            for t in targets.iter() {
                let siblings = || targets.iter().filter(|s| s.name == t.name);
                if t.platform.is_none() || present(t) || !siblings().any(present) {
                    // One "not built" row for an image none of whose platforms exists.
                    if !present(t) && keep.iter().any(|k: &Target| k.name == t.name) {
                        continue;
                    }
                    keep.push(t.clone());
                }
            }
            *targets = keep;
        }
        Ok(found)
    }
}
