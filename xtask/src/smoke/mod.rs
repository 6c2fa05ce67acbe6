//! `cargo xtask smoke <variant>… | --all`: starts each image under a hardened runtime, waits for
//! its HEALTHCHECK, runs the variant's checks from images.toml, and always removes the container.
//!
//! The story, one file per stage: inspect the image ([`pytest`]: install pytest for the
//! `smoke.pytest` checks) → [`plan`] (pure: refusal, or the `docker run` argv and the checks; the
//! in-container probes are `probes/*.py`) → [`run`] (detached under a cleanup guard, wait until
//! healthy, run the checks) → [`judge`] (pure verdicts on what the container said) → [`render`]
//! (summary table, diagnostics, step summary).
//!
//! Health: the image's HEALTHCHECK command is kept but its timing is overridden at run time: the
//! whole `health_timeout` is a start period (failures do not count) probed every 500 ms, so the
//! first healthy answer is seen within ~0.75 s whatever the image's interval. An image without a
//! HEALTHCHECK is a failed check unless the variant sets `smoke.http_probe`: then xtask probes that
//! path itself from inside the container.
//!
//! Containers carry their owner (`crate::reclaim`): a smoke first removes the containers of
//! xtask processes that were killed before they could clean up, and says how many.
//!
//! Platforms: `--platform linux/arm64` runs that platform's image of a multi-platform index (or
//! an image of that platform). On an engine of another CPU it runs under emulation (the host's
//! binfmt_misc handler, QEMU): the configured timeouts are scaled by `plan::EMULATION_FACTOR` and
//! the progress says so; a platform the engine cannot run is an error naming the fix.
//!
//! Exit codes: 1 when a variant fails, including policy refusals (the image runs as root without
//! `--allow-root`, or has no HEALTHCHECK and no `http_probe`); 2 for usage and tool errors (e.g.
//! the image was never built).

mod judge;
mod plan;
mod pytest;
mod render;
mod run;

use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::Variant;
use crate::ctx::Ctx;
use crate::docker::{self, ImageInspect};
use crate::output;
use crate::reclaim;
use crate::report::{self, Format};
use crate::util::{progress, CheckFailed};
pub use plan::has_healthcheck;
use plan::Options;
pub use run::Outcome;

#[derive(clap::Args, Default)]
pub struct Args {
    /// Variants to smoke-test (`cargo xtask config` lists them).
    pub variants: Vec<String>,
    /// Smoke-test every variant.
    #[arg(long, conflicts_with = "variants")]
    pub all: bool,
    /// Test this image instead of the variant's `<image>:<variant>` (one variant only).
    #[arg(long, value_name = "REF")]
    pub image: Option<String>,
    /// Run the image of this platform (`os/arch[/variant]`, e.g. linux/arm64) from a
    /// multi-platform image; one of another CPU runs under emulation, with timeouts scaled.
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
    /// Run an image whose user is root; without it such an image is refused (exit 1).
    #[arg(long)]
    pub allow_root: bool,
    /// Leave the container running after the verdict and print how to remove it.
    #[arg(long)]
    pub keep: bool,
    /// Give the container every NVIDIA GPU (`--gpus all`; CUDA images).
    #[arg(long)]
    pub gpus: bool,
    /// Give the container the AMD GPU devices (/dev/kfd, /dev/dri, group video; ROCm images).
    #[arg(long)]
    pub rocm: bool,
    /// Publish the service port on 127.0.0.1, at HOST_PORT or a free port (default: none).
    #[arg(long, value_name = "HOST_PORT", num_args = 0..=1, default_missing_value = "0")]
    pub publish: Option<u16>,
    /// An extra label KEY=VALUE on the container (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    pub label: Vec<String>,
    /// How long the container may take to become healthy (default: smoke.health_timeout).
    #[arg(long, value_parser = parse_timeout, value_name = "DURATION", allow_hyphen_values = true)]
    pub timeout: Option<Duration>,
    /// How to print the summary (progress and failure details go to stderr).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// A hyphen value (`-5s`) reaches it, so the error says what is wrong with the duration.
fn parse_timeout(s: &str) -> std::result::Result<Duration, String> {
    crate::config::parse_health_timeout(s).map_err(|e| e.to_string())
}

impl Args {
    pub fn run(self, ctx: &Ctx) -> Result<()> {
        let outcomes = self.outcomes(ctx)?;
        let table = render::summary_table(&outcomes);
        report::emit(
            self.format,
            &table,
            report::Kind::Smoke,
            &report::List("outcomes", &outcomes),
        )?;
        report::step_summary("Smoke tests", &render::summary_markdown(&table, &outcomes));

        match failure_message(&outcomes) {
            Some(message) => Err(CheckFailed(message).into()),
            None => Ok(()),
        }
    }

    /// Resolve, smoke-test and judge each variant, diagnostics of a failed one on stderr: the
    /// outcomes without the summary (the benches' entry point). A failed smoke is an outcome,
    /// not an error.
    pub fn outcomes(&self, ctx: &Ctx) -> Result<Vec<Outcome>> {
        let config = ctx.config()?;
        let variants = config.select(&self.variants, self.all)?;
        if self.image.is_some() && variants.len() != 1 {
            bail!("--image names one image: pass exactly one variant with it");
        }
        if let Some(p) = &self.platform {
            crate::config::check_platform(p).with_context(|| format!("--platform {p}"))?;
        }
        docker::versions()?;
        let emulated = match &self.platform {
            Some(p) => self.check_emulation(p)?,
            None => false,
        };
        let (refs, images) = self.inspect(&variants)?;
        reclaim::stale_containers()?;
        let mut pytest_sites = BTreeMap::new();
        for check in variants.iter().flat_map(|v| &v.smoke.pytest) {
            if !pytest_sites.contains_key(&check.requirements) {
                let site = pytest::site(ctx, &check.requirements)?;
                pytest_sites.insert(check.requirements.clone(), site);
            }
        }
        let opts = Options {
            platform: self.platform.clone(),
            emulated,
            allow_root: self.allow_root,
            gpus: self.gpus,
            rocm: self.rocm,
            publish: self.publish,
            labels: self.label.clone(),
            // A kept container is the user's: no owner, so no later run reclaims it.
            owner: if self.keep {
                Vec::new()
            } else {
                reclaim::Owner::current().labels()
            },
            timeout: self.timeout,
            pytest_sites,
        };

        let mut outcomes = Vec::new();
        for (variant, image) in variants.iter().zip(&refs) {
            let config = &images[image].config;
            let outcome = run::smoke_one(variant, image, config, &opts, self.keep)
                .with_context(|| format!("smoke-testing variant `{}`", variant.name))?;
            if !outcome.passed {
                output::message(format_args!(
                    "{}",
                    render::render_diagnostics(&outcome).trim_end()
                ));
            }
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }

    /// True when `platform` runs under emulation on the engine; an error naming the fix when
    /// the engine cannot run it at all.
    fn check_emulation(&self, platform: &str) -> Result<bool> {
        let info = docker::info()?;
        let native = info.native_platform();
        if docker::same_platform(platform, &native) {
            return Ok(false);
        }
        match docker::engine_platforms()? {
            Some(runs) if !runs.iter().any(|p| docker::same_platform(p, platform)) => bail!(
                "the engine ({native}) cannot run {platform} containers: its builder lists only \
                 {}. Fix: {} (on the engine's machine), then run the smoke test again",
                runs.join(", "),
                crate::emulation::fix(platform)
            ),
            _ => {}
        }
        progress!(
            "smoke: {platform} runs under emulation on this {native} engine; timeouts are {}x \
             the configured ones",
            plan::EMULATION_FACTOR
        );
        Ok(true)
    }

    /// The image reference of each variant, and what the engine knows of them; an image that was
    /// never built is an error that says how to build it.
    fn inspect(
        &self,
        variants: &[&Variant],
    ) -> Result<(Vec<String>, BTreeMap<String, ImageInspect>)> {
        let refs: Vec<String> = variants
            .iter()
            .map(|v| self.image.clone().unwrap_or_else(|| v.image_ref()))
            .collect();
        let mut images = docker::image_inspect(&refs).context("inspecting the images")?;
        if let Some(platform) = &self.platform {
            let mut lacking = Vec::new();
            for (variant, r) in variants.iter().zip(&refs) {
                if !images.contains_key(r) {
                    continue;
                }
                match docker::image_inspect_platform(r, platform)? {
                    Some(found) => {
                        images.insert(r.clone(), found);
                    }
                    None => lacking.push(format!(
                        "{r} has no {platform} image (it is {}): build one with `cargo xtask \
                         build {} --platform {platform}`",
                        images[r].platform(),
                        variant.name
                    )),
                }
            }
            if !lacking.is_empty() {
                bail!("{}", lacking.join("; "));
            }
        }
        let missing: Vec<String> = variants
            .iter()
            .zip(&refs)
            .filter(|(_, r)| !images.contains_key(*r))
            .map(|(v, r)| match &self.image {
                Some(_) => format!(
                    "{r} (--image) does not exist locally: build or pull it, or check the name \
                     (`docker image ls`)"
                ),
                None => format!(
                    "{r} does not exist locally: run `cargo xtask build {}` first",
                    v.name
                ),
            })
            .collect();
        if !missing.is_empty() {
            bail!("{}", missing.join("; "));
        }
        Ok((refs, images))
    }
}

/// `smoke failed for cpu-minimal: <why>`: the error line says why each failed variant failed,
/// not only that it did (the details are in the diagnostics above it).
fn failure_message(outcomes: &[run::Outcome]) -> Option<String> {
    let failed: Vec<String> = outcomes
        .iter()
        .filter(|o| !o.passed)
        .map(|o| match &o.failure {
            Some(why) => format!("{}: {why}", o.variant),
            None => o.variant.clone(),
        })
        .collect();
    (!failed.is_empty()).then(|| format!("smoke failed for {}", failed.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(variant: &str, failure: Option<&str>) -> run::Outcome {
        run::Outcome {
            variant: variant.into(),
            image: format!("voxserve:{variant}"),
            platform: None,
            slowdown: 1,
            container: None,
            passed: failure.is_none(),
            healthy_after_ms: None,
            verdict_ms: None,
            verdict_after_probe_ms: None,
            checks_passed: 0,
            checks_total: 0,
            checks: vec![],
            failure: failure.map(str::to_owned),
            health_log: vec![],
            logs: None,
            kept: false,
        }
    }

    #[test]
    fn the_error_line_says_why_each_variant_failed() {
        assert_eq!(failure_message(&[outcome("cpu", None)]), None);
        assert_eq!(
            failure_message(&[
                outcome("cpu", None),
                outcome("cpu-minimal", Some("the image has no HEALTHCHECK: add one")),
                outcome(
                    "cuda",
                    Some("check `torch computes` failed: expected exit 0, got exit 1")
                ),
            ])
            .unwrap(),
            "smoke failed for cpu-minimal: the image has no HEALTHCHECK: add one; \
             cuda: check `torch computes` failed: expected exit 0, got exit 1"
        );
    }
}
