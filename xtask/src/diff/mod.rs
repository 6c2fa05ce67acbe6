//! `cargo xtask diff IMAGE_A IMAGE_B`: what differs between two images, to find the step of a
//! build that is not reproducible. Config fields by path; layers paired by position, and in each
//! pair that differs the files added, removed or changed (content, type, mode, owner, mtime, link,
//! xattrs). Exit 0 when the two are the same image (one manifest digest), 1 when they differ.
//!
//! The story: [`source`] (an archive, the engine or a registry → blobs, and the walk to one
//! platform's manifest) → [`compare::pair_layers`] (pure) → [`layer`] (the differing layers'
//! files, both images at once) → [`compare::judge`] (pure) → [`render`].

mod archive;
mod compare;
mod layer;
mod render;
mod source;

use anyhow::{Context, Result};

use crate::ctx::Ctx;
use crate::report::{self, Format, Kind};
use crate::sizes::layer_history;
use crate::util::{progress, CheckFailed};
pub(crate) use compare::Diff;
use compare::{Image, LayerSide, Side};
pub(crate) use render::summary;
use source::Opened;

#[derive(clap::Args)]
pub struct Args {
    /// The first image: a `docker save` / OCI archive file, an image of the engine, or a
    /// registry reference; `archive:`, `local:` or `registry:` in front says which.
    pub(crate) a: String,
    /// The second image, named the same ways.
    pub(crate) b: String,
    /// The platform to compare in images of several (default: this machine's).
    #[arg(long, value_parser = parse_platform)]
    pub platform: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

fn parse_platform(s: &str) -> std::result::Result<String, String> {
    crate::config::check_platform(s).map_err(|e| e.to_string())?;
    Ok(s.to_string())
}

impl Args {
    pub fn run(self, ctx: &Ctx) -> Result<()> {
        let diff = images(ctx, &self.a, &self.b, self.platform.as_deref())?;
        report::emit_sections(self.format, &render::sections(&diff), Kind::Diff, &diff)?;
        if diff.identical {
            return Ok(());
        }
        Err(CheckFailed(format!("the images differ:\n{}", summary(&diff))).into())
    }
}

/// Compares two images (named as on the command line) of one platform.
pub(crate) fn images(ctx: &Ctx, a: &str, b: &str, platform: Option<&str>) -> Result<Diff> {
    let opened_a =
        source::open(ctx, a).with_context(|| format!("opening {}", crate::util::shown(a)))?;
    let opened_b =
        source::open(ctx, b).with_context(|| format!("opening {}", crate::util::shown(b)))?;
    let image_a = read_image(&opened_a, platform)
        .with_context(|| format!("reading {}", crate::util::shown(a)))?;
    let image_b = read_image(&opened_b, platform)
        .with_context(|| format!("reading {}", crate::util::shown(b)))?;
    let mut layers = compare::pair_layers(&image_a, &image_b);
    for layer in layers.iter_mut().filter(|l| l.needs_files()) {
        progress!(
            "diff: reading layer {} of both images ({})",
            layer.index,
            layer.created_by.chars().take(60).collect::<String>()
        );
        let (files_a, files_b) = std::thread::scope(|s| {
            let read_a = s.spawn(|| read_files(&opened_a, layer.a.as_ref()));
            let files_b = read_files(&opened_b, layer.b.as_ref());
            (read_a.join().expect("a layer reader panicked"), files_b)
        });
        layer.files = compare::file_changes(&files_a?, &files_b?);
    }
    Ok(compare::judge(image_a, image_b, layers))
}

/// One platform's manifest and config, and the layers as the comparison sees them.
fn read_image(opened: &Opened, platform: Option<&str>) -> Result<Image> {
    let picked = source::pick(
        &opened.blobs,
        &opened.top,
        opened.top_digest.as_deref(),
        platform,
        0,
    )?;
    let config_digest = picked.manifest.config.digest.clone();
    let config: serde_json::Value = serde_json::from_slice(&opened.blobs.json(&config_digest)?)
        .context("parsing the image config")?;
    let diff_ids: Vec<String> =
        serde_json::from_value(config["rootfs"]["diff_ids"].clone()).unwrap_or_default();
    let history: Vec<crate::sizes::HistoryDoc> =
        serde_json::from_value(config["history"].clone()).unwrap_or_default();
    let layers = picked
        .manifest
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| LayerSide {
            digest: l.digest.clone(),
            diff_id: diff_ids.get(i).cloned(),
            size: l.size,
        })
        .collect::<Vec<_>>();
    let platform = source::Platform {
        os: config["os"].as_str().unwrap_or_default().to_string(),
        architecture: config["architecture"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        variant: config["variant"].as_str().map(str::to_owned),
    };
    Ok(Image {
        created_by: layer_history(&history, layers.len()),
        side: Side {
            name: opened.name.clone(),
            platform: platform.name(),
            index: picked.index,
            manifest: picked.manifest_digest,
            config: config_digest,
        },
        config,
        layers,
    })
}

fn read_files(opened: &Opened, layer: Option<&LayerSide>) -> Result<layer::Files> {
    let Some(layer) = layer else {
        return Ok(layer::Files::new());
    };
    let blob = opened.blobs.open(&layer.digest)?;
    layer::read(blob).with_context(|| format!("reading layer {} of {}", layer.digest, opened.name))
}
