//! `cargo xtask sign <variant>…`: signs each variant's pushed digest (from its build report,
//! written by `cargo xtask build --push`) with cosign, and attaches its SBOM as a signed in-toto
//! attestation: an SPDX one syft makes from the registry by that digest, or the `--sbom` file,
//! attested with the predicate type of its format (SPDX or CycloneDX, told by its content).
//!
//! Checks (SBOM file, key and password, build reports, registry) → per subject: SBOM → cosign
//! sign → cosign attest → render.

use anyhow::{bail, Result};
use camino::{Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};

use crate::cosign::{self, Signer};
use crate::ctx::{Ctx, TempDir};
use crate::registry::{self, Pushed, Selection};
use crate::report::{self, Format, Kind, List, Table};
use crate::sbom::{self, SbomFormat};
use crate::util;
use crate::util::progress;

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
    /// Attest this SBOM (SPDX or CycloneDX JSON, told by its content) instead of making an SPDX
    /// one with syft (one subject only).
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

/// The variant's pushed digest from its build report, as `(repository@digest, tag)`.
fn from_build_report(
    variant: &str,
    repository: &str,
    report_dir: &Utf8Path,
) -> Result<(String, String)> {
    let path = util::host_join(report_dir, format!("build-{variant}.json"));
    let again = format!("run `cargo xtask build --push {variant}` first, or sign --image REF");
    if !path.is_file() {
        bail!("no build report {}: {again}", util::shown(&path));
    }
    let build: PushedBuild = report::read(&path, Kind::Build)?;
    let tag = build
        .tags
        .iter()
        .find(|t| registry::repository_of(t) == repository);
    match (build.pushed, build.digest, tag) {
        (true, Some(digest), Some(tag)) => Ok((format!("{repository}@{digest}"), tag.clone())),
        (true, Some(_), None) => bail!(
            "the last build of `{variant}` ({}) was pushed elsewhere, not to {repository}: {again}",
            util::shown(&path)
        ),
        _ => bail!(
            "the last build of `{variant}` ({}) was not pushed: {again}",
            util::shown(&path)
        ),
    }
}

/// What was signed.
#[derive(Serialize)]
struct Signed {
    #[serde(flatten)]
    subject: Pushed,
    signer: String,
    #[serde(serialize_with = "util::serialize_shown")]
    sbom: Utf8PathBuf,
    sbom_format: SbomFormat,
    sbom_packages: Option<usize>,
}

/// The variants selected, with the registry they are published in (none for --image only).
type Selected<'c> = Option<(registry::Registry, Vec<&'c crate::config::Variant>)>;

/// How every subject is signed.
struct How {
    signer: Signer,
    /// The serviceless signing config of offline key signing.
    signing_config: Option<Utf8PathBuf>,
    /// `--sbom` and its format; else syft makes an SPDX SBOM per subject.
    sbom: Option<(Utf8PathBuf, SbomFormat)>,
    report_dir: Utf8PathBuf,
}

impl Args {
    /// The `--sbom` file and its format, told by its content; else syft must be there to make one.
    fn given_sbom(&self) -> Result<Option<(Utf8PathBuf, SbomFormat)>> {
        let Some(path) = &self.sbom else {
            sbom::ensure_syft()?;
            return Ok(None);
        };
        if !path.is_file() {
            bail!(
                "the SBOM {} given with --sbom does not exist",
                util::shown(path)
            );
        }
        Ok(Some((path.clone(), SbomFormat::of_file(path)?)))
    }

    /// The signer, its key opened with COSIGN_PASSWORD as cosign will.
    fn signer(&self) -> Result<Signer> {
        let signer = Signer::from_flags(self.key.as_deref(), self.keyless, self.tlog)?;
        if let Signer::Key { key, .. } = &signer {
            let is_uri = key.contains("://");
            if !is_uri && !Utf8Path::new(key).is_file() {
                let key = util::shown(key);
                bail!("the signing key {key} does not exist: make one with `cosign generate-key-pair`");
            }
        }
        cosign::ensure_installed()?;
        cosign::check_signing_key(&signer)?;
        Ok(signer)
    }

    /// Every subject, each found in its registry: the variants' pushed digests, then --image.
    fn subjects(&self, selected: Selected, report_dir: &Utf8Path) -> Result<Vec<Pushed>> {
        let mut pinned = Vec::new();
        if let Some((registry, variants)) = selected {
            for v in variants {
                let repository = registry.repository(&v.image);
                let (reference, tag) = from_build_report(&v.name, &repository, report_dir)?;
                pinned.push((v.name.clone(), reference, Some(tag)));
            }
        }
        pinned.extend(
            self.select
                .image
                .iter()
                .map(|i| (i.clone(), i.clone(), None)),
        );
        if self.sbom.is_some() && pinned.len() != 1 {
            bail!("--sbom FILE attests one image: name exactly one variant or --image");
        }
        pinned.into_iter().map(resolve_pinned).collect()
    }

    pub fn run(self, ctx: &Ctx) -> Result<()> {
        let selected = self.select.variants(|| ctx.config(), "sign")?;
        let sbom = self.given_sbom()?;
        let signer = self.signer()?;
        let report_dir = self.report_dir.clone().unwrap_or_else(|| ctx.out_dir());
        report::ensure_dir("--report-dir", &report_dir)?;
        let subjects = self.subjects(selected, &report_dir)?;
        let tmp = TempDir::new(ctx, "sign")?;
        let signing_config = match &signer {
            Signer::Key { tlog: false, .. } => Some(cosign::offline_signing_config(tmp.path())?),
            _ => None,
        };
        let how = How {
            signer,
            signing_config,
            sbom,
            report_dir,
        };
        let signed = subjects
            .into_iter()
            .map(|subject| sign_one(subject, &how))
            .collect::<Result<Vec<_>>>()?;
        render(self.format, &signed)
    }
}

/// Finds `(name, reference, tag from a build report)` in its registry.
fn resolve_pinned((name, reference, tag): (String, String, Option<String>)) -> Result<Pushed> {
    match (Pushed::resolve(&name, &reference), tag) {
        (Ok(found), None) => Ok(found),
        (Ok(found), Some(tag)) => Ok(Pushed {
            tag: Some(tag),
            ..found
        }),
        (Err(e), Some(_)) => bail!(
            "the build report of `{name}` names an image its registry does not serve ({e:#}): \
             push it again (`cargo xtask build --push {name}`), or sign --image REF"
        ),
        (Err(e), None) => Err(e),
    }
}

/// The SBOM to attest for `subject`: the given one, else an SPDX one syft makes from the
/// registry; with its package count where syft made it.
fn sbom_for(subject: &Pushed, how: &How) -> Result<(Utf8PathBuf, SbomFormat, Option<usize>)> {
    if let Some((path, format)) = &how.sbom {
        return Ok((path.clone(), *format, None));
    }
    let plan = sbom::Plan::new(
        &sbom::name_for(&subject.name),
        &subject.reference(),
        sbom::Source::Registry,
        &how.report_dir,
    );
    let made = sbom::generate(&plan)?;
    Ok((made.spdx, SbomFormat::Spdx, Some(made.summary.packages)))
}

/// Signs one subject and attests its SBOM.
fn sign_one(subject: Pushed, how: &How) -> Result<Signed> {
    let reference = subject.reference();
    let plain_http = registry::reference_is_loopback(&reference);
    let (sbom, sbom_format, sbom_packages) = sbom_for(&subject, how)?;
    let config = how.signing_config.as_deref();
    progress!(
        "sign: cosign sign {reference} with {}",
        how.signer.describe()
    );
    let out = cosign::run(&cosign::sign_argv(
        &reference,
        &how.signer,
        config,
        plain_http,
    ))?;
    if !out.ok {
        bail!("cosign could not sign {reference}: {}", out.reason());
    }
    let what = format!("{} SBOM {}", sbom_format.name(), util::shown(&sbom));
    progress!("sign: cosign attest {reference} ({what})");
    let attest = (sbom.as_path(), sbom_format);
    let argv = cosign::attest_argv(&reference, &how.signer, config, plain_http, attest);
    let out = cosign::run(&argv)?;
    if !out.ok {
        bail!(
            "cosign could not attest the {what} of {reference}: {}",
            out.reason()
        );
    }
    Ok(Signed {
        subject,
        signer: how.signer.describe(),
        sbom,
        sbom_format,
        sbom_packages,
    })
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
        let (reference, tag) = from_build_report("cpu", "r:5000/v", &dir).unwrap();
        assert_eq!(reference, "r:5000/v@sha256:ab");
        assert_eq!(tag, "r:5000/v:cpu");

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
