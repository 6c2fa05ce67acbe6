//! `cargo xtask verify <variant>…`: what a deployer checks before running an image. Resolves
//! `<registry>/<image>:<variant>` to the digest the registry serves now, then verifies with
//! cosign that this digest carries a signature and an SPDX SBOM attestation made by the key (or
//! the CI identity). Exit 1, naming the digest, when either is missing or does not match.
//!
//! Subjects (registry) → cosign verify, verify-attestation → judge (pure) → render.

use anyhow::{bail, Result};
use serde::Serialize;

use crate::cosign::{self, Verifier};
use crate::registry::{self, Pushed, Selection};
use crate::report::{self, Format, Kind, List, Table};
use crate::util::progress;
use crate::util::{CheckFailed, Ctx};

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

/// The outcome of one check: None when it passed, else why not.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Verdict {
    #[serde(flatten)]
    pub subject: Pushed,
    pub signature: Option<String>,
    pub attestation: Option<String>,
}

impl Verdict {
    pub fn ok(&self) -> bool {
        self.signature.is_none() && self.attestation.is_none()
    }
}

/// Types of the payload of an image signature (cosign 3, and cosign 2's simple signing).
const SIGNATURE_TYPES: &[&str] = &[
    "https://sigstore.dev/cosign/sign/v1",
    "cosign container image signature",
];

/// Judges `cosign verify --output json`: at least one verified *signature* payload (not an
/// attestation, which cosign 3 lists too) must name `digest`.
pub fn judge_signature(stdout: &str, digest: &str) -> Option<String> {
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

/// Judges `cosign verify-attestation --type spdxjson --output json`: one in-toto envelope per line.
pub fn judge_attestation(stdout: &str) -> Option<String> {
    let envelopes = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l.trim()).ok())
        .filter(|e| e["payloadType"] == "application/vnd.in-toto+json")
        .count();
    (envelopes == 0).then(|| "cosign printed no verified SPDX attestation".into())
}

/// cosign's reason for a failed verification, in the words a deployer needs.
pub fn explain(reason: &str) -> String {
    let r = reason.trim();
    if r.contains("no signatures found")
        || r.trim_end_matches(':')
            .ends_with("no matching attestations")
    {
        "none found".into()
    } else if r.contains("do not match threshold") || r.contains("invalid signature") {
        "present, but not made by this key or identity".into()
    } else {
        r.to_string()
    }
}

impl Args {
    fn verifier(&self) -> Result<Verifier> {
        match (
            &self.key,
            &self.certificate_identity_regexp,
            &self.certificate_oidc_issuer,
        ) {
            (Some(key), _, _) => {
                if !key.contains("://") && !camino::Utf8Path::new(key).is_file() {
                    bail!("the public key {key} does not exist (cosign generate-key-pair writes cosign.pub)");
                }
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

    pub fn run(self, ctx: &Ctx) -> Result<()> {
        let mut references = Vec::new();
        if let Some((registry, variants)) = self.select.variants(|| ctx.config(), "verify")? {
            for v in variants {
                references.push((v.name.clone(), registry.variant_ref(v)));
            }
        }
        let images = self.select.image.iter();
        references.extend(images.map(|i| (i.clone(), i.clone())));
        let verifier = self.verifier()?;
        cosign::ensure_installed()?;

        let mut verdicts = Vec::new();
        for (name, reference) in references {
            let subject = Pushed::resolve(&name, &reference)?;
            let pinned = subject.reference();
            let plain_http = registry::reference_is_loopback(&pinned);
            progress!("verify: {reference} is {}", subject.digest);
            let sig = cosign::run(&cosign::verify_argv(&pinned, &verifier, plain_http))?;
            let signature = if sig.ok {
                judge_signature(&sig.stdout, &subject.digest)
            } else {
                Some(explain(&sig.reason()))
            };
            let att = cosign::run(&cosign::verify_attestation_argv(
                &pinned, &verifier, plain_http,
            ))?;
            let attestation = if att.ok {
                judge_attestation(&att.stdout)
            } else {
                Some(explain(&att.reason()))
            };
            verdicts.push(Verdict {
                subject,
                signature,
                attestation,
            });
        }
        render(self.format, &verdicts)?;
        let failed: Vec<String> = verdicts
            .iter()
            .filter(|v| !v.ok())
            .map(|v| {
                let what = match (&v.signature, &v.attestation) {
                    (Some(s), Some(a)) if s == a => {
                        format!("signature and SBOM attestation: {s}")
                    }
                    (Some(s), Some(a)) => format!("signature: {s}; SBOM attestation: {a}"),
                    (Some(s), None) => format!("signature: {s}"),
                    (None, Some(a)) => format!("SBOM attestation: {a}"),
                    (None, None) => unreachable!(),
                };
                format!("{} ({}): {what}", v.subject.reference(), v.subject.name)
            })
            .collect();
        if !failed.is_empty() {
            return Err(
                CheckFailed(format!("verification failed for {}", failed.join("; "))).into(),
            );
        }
        Ok(())
    }
}

fn render(format: Format, verdicts: &[Verdict]) -> Result<()> {
    let mut table = Table::new(&["image", "digest", "signature", "SBOM attestation"]);
    let cell = |v: &Option<String>| match v {
        None => "verified".to_string(),
        Some(why) => format!("FAILED: {why}"),
    };
    for v in verdicts {
        table.row(vec![
            v.subject
                .tag
                .clone()
                .unwrap_or_else(|| v.subject.repository.clone()),
            v.subject.digest.clone(),
            cell(&v.signature),
            cell(&v.attestation),
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

    #[test]
    fn cosign_reasons_in_plain_words() {
        assert_eq!(explain("no signatures found"), "none found");
        assert_eq!(explain("no matching attestations: "), "none found");
        assert_eq!(
            explain("no matching attestations: failed to verify signature: could not verify envelope: accepted signatures do not match threshold, Found: 0, Expected 1"),
            "present, but not made by this key or identity"
        );
        assert_eq!(explain("something else"), "something else");
    }

    #[test]
    fn attestations_are_in_toto_envelopes() {
        assert_eq!(
            judge_attestation(
                "{\"payloadType\":\"application/vnd.in-toto+json\",\"payload\":\"e30=\"}\n"
            ),
            None
        );
        assert!(judge_attestation("").is_some());
    }
}
