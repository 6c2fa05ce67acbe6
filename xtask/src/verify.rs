//! `cargo xtask verify <variant>…`: what a deployer checks before running an image. Resolves
//! `<registry>/<image>:<variant>` to the digest the registry serves now, then verifies with
//! cosign that this digest carries a signature and an SBOM attestation (SPDX, else CycloneDX)
//! made by the key (or the CI identity), whose document is of the format it is attested as.
//! Exit 1, naming the digest, when either is missing or does not match; exit 2 when the check
//! itself cannot run (a key that is no public key, no trust root or network for keyless).
//!
//! Subjects (registry) → checks per subject (cosign, judged pure) → render → judge.

use anyhow::{bail, Result};
use serde::Serialize;

use crate::cosign::{self, Checked, Verifier};
use crate::ctx::Ctx;
use crate::registry::{self, Pushed, Selection};
use crate::report::{self, Format, Kind, List, Table};
use crate::sbom::SbomFormat;
use crate::util::progress;
use crate::util::CheckFailed;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    select: Selection,
    /// Public key the signatures must verify against (a file or KMS URI).
    #[arg(
        long,
        env = "COSIGN_PUBLIC_KEY",
        value_name = "KEY",
        conflicts_with = "certificate_identity_regexp"
    )]
    key: Option<String>,
    /// Keyless: the signing certificate's identity must match this regular expression, e.g.
    /// `^https://github.com/OWNER/REPO/.github/workflows/` for this repository's workflows.
    #[arg(long, value_name = "REGEX", requires = "certificate_oidc_issuer")]
    certificate_identity_regexp: Option<String>,
    /// Keyless: the OIDC issuer of the signing certificate (GitHub Actions:
    /// https://token.actions.githubusercontent.com).
    #[arg(long, value_name = "URL", requires = "certificate_identity_regexp")]
    certificate_oidc_issuer: Option<String>,
    /// With --key: require transparency-log entries (signatures made with `sign --tlog`).
    #[arg(long)]
    tlog: bool,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

/// The outcome of one subject's checks: None when a check passed, else why not.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub(crate) struct Verdict {
    #[serde(flatten)]
    pub(crate) subject: Pushed,
    pub(crate) signature: Option<String>,
    pub(crate) attestation: Option<String>,
    /// The format of the SBOM attested, where one was found.
    pub(crate) sbom_format: Option<SbomFormat>,
}

impl Verdict {
    /// What failed, for the error line; None when nothing did.
    fn failure(&self) -> Option<String> {
        let what = match (&self.signature, &self.attestation) {
            (None, None) => return None,
            (Some(s), Some(a)) if s == a => format!("signature and SBOM attestation: {s}"),
            (Some(s), Some(a)) => format!("signature: {s}; SBOM attestation: {a}"),
            (Some(s), None) => format!("signature: {s}"),
            (None, Some(a)) => format!("SBOM attestation: {a}"),
        };
        Some(format!(
            "{} ({}): {what}",
            self.subject.reference(),
            self.subject.name
        ))
    }
}

/// Types of the payload of an image signature (cosign 3, and cosign 2's simple signing).
const SIGNATURE_TYPES: &[&str] = &[
    "https://sigstore.dev/cosign/sign/v1",
    "cosign container image signature",
];

/// Judges `cosign verify --output json`: at least one verified *signature* payload (not an
/// attestation, which cosign 3 lists too) must name `digest`.
pub(crate) fn judge_signature(stdout: &str, digest: &str) -> Option<String> {
    let payloads: Vec<serde_json::Value> = match serde_json::from_str(stdout.trim()) {
        Ok(serde_json::Value::Array(items)) => items,
        _ => return Some("cosign printed no verified payloads".into()),
    };
    let signed = payloads.iter().any(|p| {
        let critical = &p["critical"];
        critical["type"]
            .as_str()
            .is_some_and(|t| SIGNATURE_TYPES.contains(&t))
            && critical["image"]["docker-manifest-digest"].as_str() == Some(digest)
    });
    (!signed).then(|| format!("no signature payload for {digest} among the verified ones"))
}

/// The in-toto statement inside a DSSE envelope that cosign printed.
fn statement(envelope: &serde_json::Value) -> Option<serde_json::Value> {
    if envelope["payloadType"] != "application/vnd.in-toto+json" {
        return None;
    }
    let payload = crate::util::base64_decode(envelope["payload"].as_str()?)?;
    serde_json::from_slice(&payload).ok()
}

/// Judges `cosign verify-attestation --type <format> --output json` (an envelope per line): a
/// statement of that type, each holding a document of that format, which is what readers parse.
pub(crate) fn judge_attestation(stdout: &str, format: SbomFormat) -> Option<String> {
    let statements: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l.trim()).ok())
        .filter_map(|e| statement(&e))
        .filter(|s| s["predicateType"] == cosign::predicate_type(format))
        .collect();
    if statements.is_empty() {
        return Some(format!(
            "cosign printed no verified {} attestation",
            format.name()
        ));
    }
    let held = statements
        .iter()
        .map(|s| SbomFormat::of(&s["predicate"]))
        .find(|held| *held != Some(format))?;
    Some(format!(
        "the {} attestation holds {}, not an {} document",
        format.name(),
        held.map_or("no SBOM".into(), |f| format!("a {} document", f.name())),
        format.name()
    ))
}

impl Args {
    /// Who must have signed, checked before any image is looked at.
    fn verifier(&self) -> Result<Verifier> {
        match (
            &self.key,
            &self.certificate_identity_regexp,
            &self.certificate_oidc_issuer,
        ) {
            (Some(key), _, _) => {
                cosign::check_public_key(key)?;
                Ok(Verifier::Key {
                    key: key.clone(),
                    tlog: self.tlog,
                })
            }
            (None, Some(identity), Some(issuer)) => Ok(Verifier::Keyless {
                identity_regexp: identity.clone(),
                issuer: issuer.clone(),
            }),
            _ => bail!(
                "say who must have signed: --key cosign.pub (or COSIGN_PUBLIC_KEY), or keyless \
                 --certificate-identity-regexp REGEX --certificate-oidc-issuer URL"
            ),
        }
    }

    /// `(name, reference)` of every subject: the variants' tags in the registry, then --image.
    fn references(&self, ctx: &Ctx) -> Result<Vec<(String, String)>> {
        let mut references = Vec::new();
        if let Some((registry, variants)) = self.select.variants(|| ctx.config(), "verify")? {
            for v in variants {
                references.push((v.name.clone(), registry.variant_ref(v)));
            }
        }
        let images = self.select.image.iter();
        references.extend(images.map(|i| (i.clone(), i.clone())));
        Ok(references)
    }

    pub fn run(self, ctx: &Ctx) -> Result<()> {
        let references = self.references(ctx)?;
        let verifier = self.verifier()?;
        cosign::ensure_installed()?;
        let verdicts = references
            .iter()
            .map(|(name, reference)| check(name, reference, &verifier))
            .collect::<Result<Vec<_>>>()?;
        render(self.format, &verdicts)?;
        judge(&verdicts)
    }
}

/// Resolves one subject to the digest served now and checks its signature and SBOM.
fn check(name: &str, reference: &str, verifier: &Verifier) -> Result<Verdict> {
    let subject = Pushed::resolve(name, reference)?;
    let pinned = subject.reference();
    let plain_http = registry::reference_is_loopback(&pinned);
    progress!("verify: {reference} is {}", subject.digest);
    let signature = check_signature(&pinned, &subject.digest, verifier, plain_http)?;
    let (attestation, sbom_format) = check_sbom(&pinned, verifier, plain_http)?;
    Ok(Verdict {
        subject,
        signature,
        attestation,
        sbom_format,
    })
}

fn check_signature(
    pinned: &str,
    digest: &str,
    verifier: &Verifier,
    plain_http: bool,
) -> Result<Option<String>> {
    let out = cosign::run(&cosign::verify_argv(pinned, verifier, plain_http))?;
    Ok(match out.checked(pinned)? {
        Checked::Verified(stdout) => judge_signature(&stdout, digest),
        Checked::Refused(why) => Some(why.into()),
    })
}

/// The SBOM attestation: SPDX, else CycloneDX; the first verified one is judged, else the
/// refusal that says most (another key's over none at all).
fn check_sbom(
    pinned: &str,
    verifier: &Verifier,
    plain_http: bool,
) -> Result<(Option<String>, Option<SbomFormat>)> {
    let mut refused = "none found";
    for format in [SbomFormat::Spdx, SbomFormat::Cyclonedx] {
        let argv = cosign::verify_attestation_argv(pinned, verifier, plain_http, format);
        match cosign::run(&argv)?.checked(pinned)? {
            Checked::Verified(stdout) => {
                return Ok((judge_attestation(&stdout, format), Some(format)))
            }
            Checked::Refused("none found") => {}
            Checked::Refused(why) => refused = why,
        }
    }
    Ok((Some(refused.into()), None))
}

/// Exit 1 naming every subject that failed a check.
fn judge(verdicts: &[Verdict]) -> Result<()> {
    let failed: Vec<String> = verdicts.iter().filter_map(Verdict::failure).collect();
    if failed.is_empty() {
        return Ok(());
    }
    Err(CheckFailed(format!("verification failed for {}", failed.join("; "))).into())
}

fn render(format: Format, verdicts: &[Verdict]) -> Result<()> {
    let mut table = Table::new(&["image", "digest", "signature", "SBOM attestation"]);
    let cell = |v: &Option<String>| match v {
        None => "verified".to_string(),
        Some(why) => format!("FAILED: {why}"),
    };
    for v in verdicts {
        let sbom = match (&v.attestation, v.sbom_format) {
            (None, Some(SbomFormat::Cyclonedx)) => "verified (CycloneDX)".to_string(),
            (attestation, _) => cell(attestation),
        };
        table.row(vec![
            v.subject
                .tag
                .clone()
                .unwrap_or_else(|| v.subject.repository.clone()),
            v.subject.digest.clone(),
            cell(&v.signature),
            sbom,
        ]);
    }
    report::emit(format, &table, Kind::Verify, &List("verdicts", verdicts))?;
    report::step_summary("cargo xtask verify", &table.render_markdown());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:2ce1";

    #[test]
    fn a_signature_payload_must_name_the_digest() {
        let sig = format!(
            r#"[{{"critical":{{"image":{{"docker-manifest-digest":"{D}"}},"type":"https://sigstore.dev/cosign/sign/v1"}}}}]"#
        );
        assert_eq!(judge_signature(&sig, D), None);
        assert!(judge_signature(&sig, "sha256:other").is_some());
        // cosign 3 lists the attestation's payload too; alone it is no signature.
        let att_only = format!(
            r#"[{{"critical":{{"image":{{"docker-manifest-digest":"{D}"}},"type":"https://spdx.dev/Document"}}}}]"#
        );
        assert!(judge_signature(&att_only, D).is_some());
        assert!(judge_signature("not json", D).is_some());
    }

    /// A line of `cosign verify-attestation --output json`: an envelope of a base64 statement.
    fn envelope(statement: &str) -> String {
        format!(r#"{{"payloadType":"application/vnd.in-toto+json","payload":"{statement}"}}"#)
    }

    /// `{"predicateType":"https://spdx.dev/Document","predicate":{"spdxVersion":"SPDX-2.3"}}`
    const SPDX_AS_SPDX: &str = "eyJwcmVkaWNhdGVUeXBlIjoiaHR0cHM6Ly9zcGR4LmRldi9Eb2N1bWVudCIsInByZWRpY2F0ZSI6eyJzcGR4VmVyc2lvbiI6IlNQRFgtMi4zIn19";
    /// `{"predicateType":"https://cyclonedx.org/bom","predicate":{"bomFormat":"CycloneDX"}}`
    const CDX_AS_CDX: &str = "eyJwcmVkaWNhdGVUeXBlIjoiaHR0cHM6Ly9jeWNsb25lZHgub3JnL2JvbSIsInByZWRpY2F0ZSI6eyJib21Gb3JtYXQiOiJDeWNsb25lRFgifX0=";
    /// `{"predicateType":"https://spdx.dev/Document","predicate":{"bomFormat":"CycloneDX"}}`
    const CDX_AS_SPDX: &str = "eyJwcmVkaWNhdGVUeXBlIjoiaHR0cHM6Ly9zcGR4LmRldi9Eb2N1bWVudCIsInByZWRpY2F0ZSI6eyJib21Gb3JtYXQiOiJDeWNsb25lRFgifX0=";
    /// `{"predicateType":"https://spdx.dev/Document","predicate":{"hello":1}}`
    const JUNK_AS_SPDX: &str = "eyJwcmVkaWNhdGVUeXBlIjoiaHR0cHM6Ly9zcGR4LmRldi9Eb2N1bWVudCIsInByZWRpY2F0ZSI6eyJoZWxsbyI6MX19";

    #[test]
    fn an_attestation_must_hold_a_document_of_its_format() {
        let spdx = envelope(SPDX_AS_SPDX);
        assert_eq!(
            judge_attestation(&format!("{spdx}\n"), SbomFormat::Spdx),
            None
        );
        let cdx = envelope(CDX_AS_CDX);
        assert_eq!(judge_attestation(&cdx, SbomFormat::Cyclonedx), None);
        // A CycloneDX file attested as SPDX (what `sign --sbom x.cdx.json` did).
        let wrong = envelope(CDX_AS_SPDX);
        assert_eq!(
            judge_attestation(&format!("{spdx}\n{wrong}\n"), SbomFormat::Spdx).as_deref(),
            Some("the SPDX attestation holds a CycloneDX document, not an SPDX document")
        );
        let junk = envelope(JUNK_AS_SPDX);
        assert!(judge_attestation(&junk, SbomFormat::Spdx)
            .unwrap()
            .contains("holds no SBOM"));
        assert!(judge_attestation("", SbomFormat::Spdx).is_some());
        assert!(judge_attestation(&cdx, SbomFormat::Spdx).is_some());
    }

    #[test]
    fn the_failure_names_the_digest_and_what_failed() {
        let subject = Pushed {
            name: "cpu".into(),
            repository: "r/v".into(),
            tag: None,
            digest: D.into(),
        };
        let mut v = Verdict {
            subject,
            signature: None,
            attestation: None,
            sbom_format: Some(SbomFormat::Spdx),
        };
        assert_eq!(v.failure(), None);
        v.signature = Some("none found".into());
        v.attestation = Some("none found".into());
        assert_eq!(
            v.failure().as_deref(),
            Some("r/v@sha256:2ce1 (cpu): signature and SBOM attestation: none found")
        );
        v.signature = None;
        assert_eq!(
            v.failure().as_deref(),
            Some("r/v@sha256:2ce1 (cpu): SBOM attestation: none found")
        );
        assert!(judge(std::slice::from_ref(&v)).is_err());
    }
}
