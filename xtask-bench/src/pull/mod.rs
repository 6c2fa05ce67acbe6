//! `cargo xtask bench pull <variant>`: how long a host that has nothing of the image takes to
//! pull it — with its layers as built and with the venv in one layer as before issue 13, each
//! with gzip and with zstd layers, in one run.
//!
//! The four images are made from the built image's own layer blobs (containerd's content store):
//! the layers as built are the same blobs (gzip) or the same tars compressed with zstd; "one venv
//! layer" replaces the venv's layers (`--venv`, default: those of the instructions that copy the
//! venv's trees or mount `/opt/venv`) by one layer holding exactly the files an overlay of them
//! shows — so the images differ in layout and compression and in nothing else. Each image goes into
//! a registry of its own on 127.0.0.1 (Debian's `docker-registry`, `registry::serve`), and is
//! pulled `--runs` times, each time by a private engine started for that pull alone (`engine.rs`):
//! the shared engine already holds every layer of a built image, and a pull there measures nothing.
//! Registries, engines and their files are removed after each image, and on every path (error,
//! Ctrl-C). Needs root (the private engines) and the containerd image store.
//!
//! Target (issue 13): the image as `cargo xtask build --push` sends it (layers as built, the
//! variant's `push_compression`) pulls in ≤ 0.5× the time of the venv in one gzip layer. When the
//! venv is one layer and the push is gzip, the two are the same image and nothing is judged but
//! the pulls themselves.
//!
//! Story: `plan` (the layers, the four images, their configs, pure) → `push` (blobs into the
//! registry; `merge` writes the one venv layer) → `run` (the pulls) → `judge` → `render`,
//! published through `bench::publish`.

mod judge;
mod ledger;
mod link;
mod merge;
mod network;
mod plan;
mod proxy;
mod push;
mod render;
pub use render::times_chart;
mod run;
mod upload;

pub use ledger::repair;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::report::{publish, Check, Machine, Rendered};
use judge::Row;
use ledger::Ledger;
use link::Link;
use network::Network;
use plan::{ImagePlan, SourceLayer};
use xtask::build_cmd::Compression;
use xtask::config::Variant;
use xtask::ctx::{Ctx, TempDir};
use xtask::docker;
use xtask::output::progress;
use xtask::registry::serve::LocalRegistry;
use xtask::report::Format;
use xtask::sizes::{image_documents, layer_history, ContentStore, HistoryDoc};

#[derive(clap::Args)]
pub struct PullArgs {
    /// The variant whose built image is measured (see `cargo xtask config`; build it first).
    variant: String,
    /// Measure this local image instead of the variant's tag.
    #[arg(long, value_name = "REF")]
    image: Option<String>,
    /// The venv's layers: those made by an instruction containing one of these TEXTs
    /// (repeatable; they must follow one another). Default: the Dockerfiles' trees of the venv
    /// (`/layers/…`, `/image/`) and the import proof that mounts `/opt/venv`.
    #[arg(long, value_name = "TEXT", default_values_t = ["/layers/".to_string(), "/image/".into(), "/opt/venv".into()])]
    venv: Vec<String>,
    /// Pulls of each image, each by a fresh engine; the table shows the median.
    #[arg(long, default_value_t = 1, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=20), allow_hyphen_values = true)]
    runs: u32,
    /// Target: the image as pushed pulls in at most this ratio of the time of the venv in one
    /// gzip layer.
    #[arg(long, default_value_t = 0.5, value_name = "RATIO",
          value_parser = crate::report::target, allow_hyphen_values = true)]
    max_vs_reference: f64,
    /// Pull through a shaped link instead of loopback: LATENCY is a round trip (`40ms`), paid
    /// before every request and once more by every new connection; RATE the link's (`200mbit`);
    /// PER_CONNECTION the most one connection gets (`25mbit`).
    #[arg(long, value_name = "LATENCY,RATE[,PER_CONNECTION]", value_parser = Network::parse,
          allow_hyphen_values = true)]
    network: Option<Network>,
    /// Report format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Debug, Serialize)]
pub struct PullReport {
    pub variant: String,
    pub image: String,
    pub image_id: String,
    pub machine: Machine,
    pub layers: usize,
    /// `4–8`: the source layers the one venv layer holds.
    pub venv_layers: String,
    /// The engine that pulls.
    pub puller: String,
    pub runs: u32,
    /// The shaped link the pulls went through (none: the registry on 127.0.0.1).
    pub network: Option<Network>,
    pub rows: Vec<Row>,
    pub checks: Vec<Check>,
    pub pass: bool,
}

impl PullArgs {
    /// The pulls table, with the rows of the layers as built (an image whose venv is one layer
    /// has no other), and the targets.
    pub fn report_shape(&self) -> xtask::report::Shape {
        let rows: Vec<String> = plan::images(1, &(0..1)).iter().map(|i| i.label()).collect();
        xtask::report::Shape {
            chart: true,
            ..crate::report::shape(&render::columns(self.network.is_some()), &rows)
        }
    }

    pub fn run(self, ctx: &Ctx) -> Result<()> {
        let variant = ctx.config()?.variant(&self.variant)?;
        // Everything that can be checked is checked before a registry or an engine starts.
        preflight(self.network.is_some())?;
        let source = self.source(variant)?;
        let plans = plan::images(source.layers.len(), &source.venv);
        let measured = self.measure(ctx, &variant.name, &source, plans)?;
        let compression = variant.push_compression.unwrap_or(Compression::Gzip);
        let report = self.report(variant, &source, judge::rows(measured, compression));
        publish(
            self.format,
            &format!("bench pull {}", variant.name),
            &Rendered {
                sections: render::render(&report),
                charts: vec![render::chart(&report)],
            },
            xtask::report::Kind::BenchPull,
            &report,
            &report.checks,
        )
    }

    /// The image to measure, read from the content store: its layers, its config and which of
    /// its layers are the venv's.
    fn source(&self, variant: &Variant) -> Result<Source> {
        let image = self.image.clone().unwrap_or_else(|| variant.image_ref());
        let info = docker::info()?;
        if !info.containerd_store() {
            bail!(
                "bench pull reads the image's layers from containerd's content store, and this \
                 engine uses the {} store: enable the containerd image store",
                info.store_name()
            );
        }
        let inspect = docker::image_inspect(std::slice::from_ref(&image))?
            .remove(&image)
            .with_context(|| {
                format!(
                    "{image} is not in the local image store: build it first (`cargo xtask \
                     build {}`)",
                    variant.name
                )
            })?;
        let store = ContentStore::locate(&info.docker_root_dir, &[&inspect.id])
            .map_err(|why| anyhow::anyhow!("reading the layers of {image}: {why}"))?;
        let (manifest, config) = image_documents(&store, &inspect)?;
        let layers = source_layers(&manifest, &config)
            .with_context(|| format!("reading the layers of {image}"))?;
        let venv = plan::venv_layers(&layers, &self.venv)
            .with_context(|| format!("the layers of {image}"))?;
        Ok(Source {
            info,
            image,
            image_id: inspect.id,
            store,
            layers,
            config,
            venv,
        })
    }

    /// Each planned image pushed into a registry of its own, then pulled `--runs` times, each
    /// time by a fresh engine (through the shaped link and a proxy in front of the registry,
    /// when asked); everything written down in the run's ledger before it is made, and removed on
    /// every path.
    fn measure(
        &self,
        ctx: &Ctx,
        name: &str,
        source: &Source,
        plans: Vec<ImagePlan>,
    ) -> Result<Vec<(ImagePlan, push::Pushed, Vec<run::PullRun>)>> {
        let blobs = push::Source {
            store: &source.store,
            layers: source.layers.clone(),
            config: source.config.clone(),
        };
        let ledger = Ledger::open()?;
        let link = match &self.network {
            Some(network) => Some(Link::make(&ledger, network)?),
            None => None,
        };
        let scratch = TempDir::new(ctx, "bench-pull")?;
        ledger.dir(scratch.path().as_std_path())?;
        let mut engines = run::Engines {
            data: scratch.path(),
            count: 0,
            ledger: &ledger,
            shaped: link
                .as_ref()
                .zip(self.network.as_ref())
                .map(|(link, network)| run::Shaped { link, network }),
        };
        let repo = format!("xtask-bench-pull/{name}");
        let mut measured = Vec::new();
        for (k, plan) in plans.into_iter().enumerate() {
            progress!(
                "bench pull {name}: {} — into a registry of its own",
                plan.label()
            );
            let dir = scratch.path().join(format!("registry-{k}"));
            let (registry, _stop) = xtask::process::daemon(
                || LocalRegistry::start(dir.as_std_path()),
                LocalRegistry::stop,
            )
            .context("starting a registry on 127.0.0.1")?;
            let pushed = push::push(&registry, &repo, &blobs, &plan)
                .with_context(|| format!("pushing {}", plan.label()))?;
            let proxy = engines
                .shaped
                .as_ref()
                .map(|s| s.proxy(&registry))
                .transpose()?;
            let pulls = (1..=self.runs)
                .map(|r| {
                    let what = format!("{}, pull {r}/{}", plan.label(), self.runs);
                    engines.pull(&pushed.reference, proxy.as_ref(), &what)
                })
                .collect::<Result<Vec<_>>>()?;
            measured.push((plan, pushed, pulls));
        }
        Ok(measured)
    }

    fn report(&self, variant: &Variant, source: &Source, rows: Vec<Row>) -> PullReport {
        let checks = judge::checks(&rows, self.max_vs_reference, self.network.as_ref());
        let venv = &source.venv;
        PullReport {
            variant: variant.name.clone(),
            image: source.image.clone(),
            image_id: source.image_id.clone(),
            machine: Machine::of(&source.info),
            layers: source.layers.len(),
            venv_layers: match venv.len() {
                1 => format!("{}", venv.start + 1),
                _ => format!("{}–{}", venv.start + 1, venv.end),
            },
            puller: format!(
                "containerd store, gzip unpacked by {}",
                match which::which("unpigz") {
                    Ok(_) => "unpigz",
                    Err(_) => "containerd's Go code (no unpigz on PATH)",
                }
            ),
            runs: self.runs,
            network: self.network.clone(),
            pass: checks.iter().all(|c| c.pass),
            rows,
            checks,
        }
    }
}

/// The image a pull bench measures, as the engine and its content store hold it.
struct Source {
    info: docker::Info,
    image: String,
    image_id: String,
    store: ContentStore,
    layers: Vec<SourceLayer>,
    /// Its config as stored.
    config: Vec<u8>,
    /// The venv's layers.
    venv: std::ops::Range<usize>,
}

/// Root and the programs the bench starts (`tc` for a shaped link), before anything starts.
fn preflight(shaped: bool) -> Result<()> {
    let programs = [
        ("dockerd", "install docker.io"),
        (
            "docker-registry",
            "install Debian's docker-registry package (`bash .ci/install-tools` does)",
        ),
        ("ip", "install iproute2"),
        ("tc", "install iproute2"),
    ];
    for (program, fix) in &programs[..if shaped { 4 } else { 3 }] {
        if which::which(program).is_err() {
            bail!("bench pull starts `{program}`, which is not on PATH: {fix}");
        }
    }
    if !xtask::util::is_root() {
        bail!(
            "bench pull starts private Docker engines (dockerd, a bridge interface each) and reads \
             containerd's content store: run it as root"
        );
    }
    Ok(())
}

/// The image's layers: the manifest's blobs with the config's diff IDs and history.
fn source_layers(manifest: &xtask::sizes::ManifestDoc, config: &[u8]) -> Result<Vec<SourceLayer>> {
    let doc: serde_json::Value = serde_json::from_slice(config).context("parsing the config")?;
    let diff_ids: Vec<String> = serde_json::from_value(doc["rootfs"]["diff_ids"].clone())
        .context("reading the config's diff IDs")?;
    let history: Vec<HistoryDoc> =
        serde_json::from_value(doc["history"].clone()).unwrap_or_default();
    if diff_ids.len() != manifest.layers.len() {
        bail!(
            "the manifest lists {} layers but the config {} diff IDs",
            manifest.layers.len(),
            diff_ids.len()
        );
    }
    let created_by = layer_history(&history, manifest.layers.len());
    Ok(manifest
        .layers
        .iter()
        .zip(diff_ids)
        .zip(created_by)
        .map(|((desc, diff_id), created_by)| SourceLayer {
            digest: desc.digest.clone(),
            media_type: desc.media_type.clone(),
            size: desc.size,
            diff_id,
            created_by,
        })
        .collect())
}
