//! `cargo xtask sign <variant>…`: signs each variant's pushed digest (from its build report,
//! written by `cargo xtask build --push`) with cosign, and attaches its SPDX SBOM (syft, read
//! from the registry by that digest) as a signed in-toto attestation (`--type spdxjson`).
//!
//! Subjects (pure) → SBOM per digest → cosign sign → cosign attest → render.

use anyhow::{bail, Result};
use camino::Utf8PathBuf;
use serde::{Deserialize, Serialize};

use crate::cosign::{self, Signer};
use crate::registry::{self, Pushed, Selection};
use crate::report::{self, Format, Kind, List, Table};
use crate::sbom;
use crate::util::progress;
use crate::util::{Ctx, TempDir};

#[derive(clap::Args)]
pub struct Args {
    /// Variants are signed at the digest their build report (`build-<variant>.json`, from
    /// `build --push`) names.
    #[command(flatten)]
    select: Selection,
    /// Private key: a file from `cosign generate-key-pair`, a KMS URI, or the key itself in
    /// COSIGN_KEY; its password comes from COSIGN_PASSWORD.
    #[arg(long, env = "COSIGN_KEY", hide_env_values = true, value_name = "KEY")]
    key: Option<String>,
    /// Sign keyless with the CI's OIDC identity (Fulcio certificate, Rekor entry); the default in
    /// GitHub Actions when no key is given and the job has `id-token: write`.
    #[arg(long)]
    keyless: bool,
    /// With --key: record the signatures in the transparency log of cosign's default signing
    /// config (needs its network) instead of signing offline.
    #[arg(long)]
    tlog: bool,
    /// Attest this SPDX JSON document instead of making one with syft (one subject only).
    #[arg(long, value_name = "FILE")]
    sbom: Option<Utf8PathBuf>,
    /// Where the build reports are, and the SBOMs go (default: target/xtask).
    #[arg(long, value_name = "DIR")]
    report_dir: Option<Utf8PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

/// The fields of a build report (`build-<variant>.json`) that say what was pushed.
#[derive(Deserialize)]
struct PushedBuild {
    #[serde(default)]
    pushed: bool,
    digest: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
}

/// The variant's pushed digest from its build report, as a `Pushed` in `repository`.
fn from_build_report(
    variant: &str,
    repository: &str,
    report_dir: &camino::Utf8Path,
) -> Result<Pushed> {
    let path = report_dir.join(format!("build-{variant}.json"));
    let again = format!("run `cargo xtask build --push {variant}` first, or sign --image REF");
    if !path.is_file() {
        bail!("no build report {path}: {again}");
    }
    let build: PushedBuild = report::read(&path, Kind::Build)?;
    let tag = build
        .tags
        .iter()
        .find(|t| registry::repository_of(t) == repository);
    match (build.pushed, build.digest, tag) {
        (true, Some(digest), Some(tag)) => Ok(Pushed {
            name: variant.to_string(),
            repository: repository.to_string(),
            tag: Some(tag.clone()),
            digest,
        }),
        (true, Some(_), None) => bail!(
            "the last build of `{variant}` ({path}) was pushed elsewhere, not to {repository}: {again}"
        ),
        _ => bail!("the last build of `{variant}` ({path}) was not pushed: {again}"),
    }
}

/// What was signed.
#[derive(Serialize)]
struct Signed {
    #[serde(flatten)]
    subject: Pushed,
    signer: String,
    sbom: Utf8PathBuf,
    sbom_packages: Option<usize>,
}

impl Args {
    pub fn run(self, ctx: &Ctx) -> Result<()> {
        let report_dir = self.report_dir.clone().unwrap_or_else(|| ctx.out_dir());
        let mut subjects = Vec::new();
        if let Some((registry, variants)) = self.select.variants(|| ctx.config(), "sign")? {
            for v in variants {
                let repository = registry.repository(&v.image);
                subjects.push(from_build_report(&v.name, &repository, &report_dir)?);
            }
        }
        if self.sbom.is_some() && subjects.len() + self.select.image.len() != 1 {
            bail!("--sbom FILE attests one image: name exactly one variant or --image");
        }
        if let Some(sbom) = &self.sbom {
            if !sbom.is_file() {
                bail!("the SBOM {sbom} given with --sbom does not exist");
            }
        }
        let signer = Signer::from_flags(self.key.as_deref(), self.keyless, self.tlog)?;
        if let Signer::Key { key, .. } = &signer {
            let is_uri = key.contains("://");
            if !is_uri && !camino::Utf8Path::new(key).is_file() {
                bail!("the signing key {key} does not exist: make one with `cosign generate-key-pair`");
            }
        }
        cosign::ensure_installed()?;
        for image in &self.select.image {
            subjects.push(Pushed::resolve(image, image)?);
        }

        let tmp = TempDir::new(ctx, "sign")?;
        let signing_config = match &signer {
            Signer::Key { tlog: false, .. } => Some(cosign::offline_signing_config(tmp.path())?),
            _ => None,
        };
        let mut signed = Vec::new();
        for subject in subjects {
            let reference = subject.reference();
            let plain_http = registry::reference_is_loopback(&reference);
            let (sbom_path, packages) = match &self.sbom {
                Some(path) => (path.clone(), None),
                None => {
                    let plan = sbom::Plan::new(
                        &sbom::name_for(&subject.name),
                        &reference,
                        sbom::Source::Registry,
                        &report_dir,
                    );
                    let made = sbom::generate(&plan)?;
                    (made.spdx, Some(made.summary.packages))
                }
            };
            progress!("sign: cosign sign {reference} with {}", signer.describe());
            let out = cosign::run(&cosign::sign_argv(
                &reference,
                &signer,
                signing_config.as_deref(),
                plain_http,
            ))?;
            if !out.ok {
                bail!("cosign could not sign {reference}: {}", out.reason());
            }
            progress!("sign: cosign attest {reference} (SPDX SBOM {sbom_path})");
            let out = cosign::run(&cosign::attest_argv(
                &reference,
                &signer,
                signing_config.as_deref(),
                plain_http,
                &sbom_path,
            ))?;
            if !out.ok {
                bail!(
                    "cosign could not attest the SBOM of {reference}: {}",
                    out.reason()
                );
            }
            signed.push(Signed {
                subject,
                signer: signer.describe(),
                sbom: sbom_path,
                sbom_packages: packages,
            });
        }
        render(self.format, &signed)
    }
}

fn render(format: Format, signed: &[Signed]) -> Result<()> {
    let mut table = Table::new(&[
        "image",
        "digest",
        "signed with",
        "SBOM attested",
        "packages",
    ])
    .right_align(&[4]);
    for s in signed {
        table.row(vec![
            s.subject
                .tag
                .clone()
                .unwrap_or_else(|| s.subject.repository.clone()),
            s.subject.digest.clone(),
            s.signer.clone(),
            s.sbom.file_name().unwrap_or_default().to_string(),
            s.sbom_packages.map_or("-".into(), |n| n.to_string()),
        ]);
    }
    report::emit(format, &table, Kind::Sign, &List("signed", signed))?;
    report::step_summary("cargo xtask sign", &table.render_markdown());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pushed_digest_comes_from_the_build_report() {
        let dir = std::env::temp_dir().join(format!("xtask-sign-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let dir = camino::Utf8PathBuf::try_from(dir).unwrap();
        let write = |json: &str| std::fs::write(dir.join("build-cpu.json"), json).unwrap();

        write(
            r#"{"variant":"cpu","pushed":true,"digest":"sha256:ab","tags":["r:5000/v:cpu","r:5000/v:0.1-cpu"]}"#,
        );
        let p = from_build_report("cpu", "r:5000/v", &dir).unwrap();
        assert_eq!(p.reference(), "r:5000/v@sha256:ab");
        assert_eq!(p.tag.as_deref(), Some("r:5000/v:cpu"));

        let err = from_build_report("cpu", "other:5000/v", &dir)
            .unwrap_err()
            .to_string();
        assert!(err.contains("pushed elsewhere"), "{err}");
        write(r#"{"variant":"cpu","pushed":false,"digest":null,"tags":["v:cpu"]}"#);
        let err = from_build_report("cpu", "r:5000/v", &dir)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("was not pushed") && err.contains("build --push cpu"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
        let err = from_build_report("cpu", "r:5000/v", &dir)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no build report"), "{err}");
    }
}
