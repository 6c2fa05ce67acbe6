//! The only place that runs `cosign`: argv prepared as data (pure, unit-tested), then run with
//! its output captured. Used by `sign` and `verify`.
//!
//! Two ways to sign, as cosign has them:
//! - **key** (`--key FILE|KMS-URI` or `COSIGN_KEY`, its password in `COSIGN_PASSWORD`): offline by
//!   default, with a signing config that names no services (no transparency log, no timestamp
//!   authority); verified with the public key and `--insecure-ignore-tlog`. `--tlog` uses cosign's
//!   default signing config instead (Rekor; needs its network).
//! - **keyless**: a short-lived Fulcio certificate for the CI's OIDC identity (GitHub Actions with
//!   `id-token: write`), logged in Rekor; verified by certificate identity and issuer.

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};

use crate::process::Cmd;
use crate::sbom::SbomFormat;
use crate::util::shown;

/// How signatures are made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Signer {
    Key {
        /// What cosign's `--key` gets: a path, a KMS URI or `env://COSIGN_KEY`.
        key: String,
        /// Upload to the transparency log (cosign's default signing config) instead of offline.
        tlog: bool,
    },
    Keyless,
}

/// How signatures are checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verifier {
    Key {
        /// Public key: a path or KMS URI.
        key: String,
        /// Require the transparency-log entry (signatures made with `sign --tlog` or keyless).
        tlog: bool,
    },
    Keyless {
        /// Regular expression the certificate's identity (SAN) must match.
        identity_regexp: String,
        /// The OIDC issuer the certificate must name.
        issuer: String,
    },
}

impl Signer {
    /// `--key` (clap folds `COSIGN_KEY` into it); a key given *as content* in `COSIGN_KEY` (PEM,
    /// as CI secrets hold it) is passed by reference, never on the command line.
    pub(crate) fn from_flags(key: Option<&str>, keyless: bool, tlog: bool) -> Result<Signer> {
        match (key, keyless) {
            (Some(_), true) => {
                bail!("--key and --keyless exclude each other: pick one way to sign")
            }
            (Some(key), false) => {
                let from_env = std::env::var("COSIGN_KEY").is_ok_and(|v| v == key);
                let key = if from_env && key.trim_start().starts_with("-----BEGIN") {
                    "env://COSIGN_KEY".to_string()
                } else {
                    key.to_string()
                };
                Ok(Signer::Key { key, tlog })
            }
            (None, true) => Ok(Signer::Keyless),
            (None, false) if in_github_actions_with_oidc() => Ok(Signer::Keyless),
            (None, false) => bail!(
                "no signing key: pass --key FILE (or set COSIGN_KEY; make a pair with `cosign \
                 generate-key-pair`, its password in COSIGN_PASSWORD), or --keyless where an OIDC \
                 identity exists (GitHub Actions with `permissions: id-token: write` signs keyless \
                 by default)"
            ),
        }
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            Signer::Key { key, tlog: false } => format!("key {} (offline, no tlog)", shown(key)),
            Signer::Key { key, tlog: true } => format!("key {} (tlog)", shown(key)),
            Signer::Keyless => "keyless (OIDC, tlog)".into(),
        }
    }
}

/// GitHub Actions exposes an OIDC token endpoint to jobs with `id-token: write`.
fn in_github_actions_with_oidc() -> bool {
    std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true")
        && std::env::var("ACTIONS_ID_TOKEN_REQUEST_URL").is_ok_and(|v| !v.is_empty())
}

/// `cosign signing-config create --out FILE`: a signing config without any service, which makes
/// key-based signing offline (cosign 3 refuses `--tlog-upload=false`).
pub(crate) fn offline_signing_config_argv(out: &Utf8Path) -> Vec<String> {
    vec![
        "signing-config".into(),
        "create".into(),
        format!("--out={out}"),
    ]
}

fn common(signer: &Signer, signing_config: Option<&Utf8Path>, plain_http: bool) -> Vec<String> {
    let mut argv = Vec::new();
    if let Signer::Key { key, tlog } = signer {
        argv.push(format!("--key={key}"));
        if !tlog {
            if let Some(sc) = signing_config {
                argv.push(format!("--signing-config={sc}"));
            }
        }
    }
    if plain_http {
        argv.push("--allow-http-registry".into());
    }
    argv.push("--yes".into());
    argv
}

/// `cosign sign … REPO@DIGEST`.
pub(crate) fn sign_argv(
    subject: &str,
    signer: &Signer,
    signing_config: Option<&Utf8Path>,
    plain_http: bool,
) -> Vec<String> {
    let mut argv = vec!["sign".to_string()];
    argv.extend(common(signer, signing_config, plain_http));
    argv.push(subject.into());
    argv
}

/// cosign's `--type` for an SBOM of `format`.
fn attestation_type(format: SbomFormat) -> &'static str {
    match format {
        SbomFormat::Spdx => "spdxjson",
        SbomFormat::Cyclonedx => "cyclonedx",
    }
}

/// The in-toto predicate type cosign writes for an SBOM of `format`.
pub(crate) fn predicate_type(format: SbomFormat) -> &'static str {
    match format {
        SbomFormat::Spdx => "https://spdx.dev/Document",
        SbomFormat::Cyclonedx => "https://cyclonedx.org/bom",
    }
}

/// `cosign attest --type spdxjson|cyclonedx --predicate SBOM … REPO@DIGEST`.
pub(crate) fn attest_argv(
    subject: &str,
    signer: &Signer,
    signing_config: Option<&Utf8Path>,
    plain_http: bool,
    sbom: (&Utf8Path, SbomFormat),
) -> Vec<String> {
    let mut argv = vec![
        "attest".to_string(),
        format!("--type={}", attestation_type(sbom.1)),
        format!("--predicate={}", sbom.0),
    ];
    argv.extend(common(signer, signing_config, plain_http));
    argv.push(subject.into());
    argv
}

fn verify_common(verifier: &Verifier, plain_http: bool) -> Vec<String> {
    let mut argv = Vec::new();
    match verifier {
        Verifier::Key { key, tlog } => {
            argv.push(format!("--key={key}"));
            if !tlog {
                argv.push("--insecure-ignore-tlog=true".into());
            }
        }
        Verifier::Keyless {
            identity_regexp,
            issuer,
        } => {
            argv.push(format!("--certificate-identity-regexp={identity_regexp}"));
            argv.push(format!("--certificate-oidc-issuer={issuer}"));
        }
    }
    if plain_http {
        argv.push("--allow-http-registry".into());
    }
    argv.push("--output=json".into());
    argv
}

/// `cosign verify … REPO@DIGEST`.
pub(crate) fn verify_argv(subject: &str, verifier: &Verifier, plain_http: bool) -> Vec<String> {
    let mut argv = vec!["verify".to_string()];
    argv.extend(verify_common(verifier, plain_http));
    argv.push(subject.into());
    argv
}

/// `cosign verify-attestation --type spdxjson|cyclonedx … REPO@DIGEST`.
pub(crate) fn verify_attestation_argv(
    subject: &str,
    verifier: &Verifier,
    plain_http: bool,
    format: SbomFormat,
) -> Vec<String> {
    let mut argv = vec![
        "verify-attestation".to_string(),
        format!("--type={}", attestation_type(format)),
    ];
    argv.extend(verify_common(verifier, plain_http));
    argv.push(subject.into());
    argv
}

/// What one cosign run did.
pub(crate) struct Output {
    pub(crate) ok: bool,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// What a `cosign verify…` run found out about an image.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Checked {
    /// Verified: cosign's JSON output.
    Verified(String),
    /// Not signed, or not by this key or identity, in a deployer's words.
    Refused(&'static str),
}

/// The verdict in a failed verification's reason; None when cosign could not check at all.
pub(crate) fn refusal(reason: &str) -> Option<&'static str> {
    const NOT_BY_THEM: &[&str] = &[
        "do not match threshold",
        "invalid signature",
        "failed to verify signature",
        "none of the expected identities matched",
    ];
    const NONE: &[&str] = &[
        "no signatures found",
        "no matching signatures",
        "none of the attestations matched the predicate type",
    ];
    let r = reason.trim();
    if NOT_BY_THEM.iter().any(|s| r.contains(s)) {
        Some("present, but not made by this key or identity")
    } else if NONE.iter().any(|s| r.contains(s))
        || r.trim_end_matches(':')
            .ends_with("no matching attestations")
    {
        Some("none found")
    } else {
        None
    }
}

impl Output {
    /// Verified or refused; an error (exit 2) when cosign could not check `subject`: its key,
    /// identity, trust root or network, which says nothing about the image.
    pub(crate) fn checked(&self, subject: &str) -> Result<Checked> {
        if self.ok {
            return Ok(Checked::Verified(self.stdout.clone()));
        }
        let reason = self.reason();
        match refusal(&reason) {
            Some(verdict) => Ok(Checked::Refused(verdict)),
            None => bail!(
                "cosign could not check {subject}: {reason}: fix the verification's key, identity \
                 or network (this is no verdict on the image)"
            ),
        }
    }

    /// cosign's own reason for a failure: its last `Error: …` line.
    pub(crate) fn reason(&self) -> String {
        self.stderr
            .lines()
            .rev()
            .find_map(|l| l.split_once("Error: ").map(|(_, reason)| reason))
            .unwrap_or_else(|| crate::util::last_line(&self.stderr))
            .trim()
            .to_string()
    }
}

pub(crate) fn ensure_installed() -> Result<()> {
    if which::which("cosign").is_err() {
        bail!(
            "cosign is not on PATH: install it (Debian trixie and later: `apt-get install cosign`; \
             `bash .ci/install-tools` here; or sigstore's release binary)"
        );
    }
    Ok(())
}

/// Runs cosign with stdin closed (a key whose password is not in COSIGN_PASSWORD fails instead
/// of waiting for a prompt); killed on Ctrl-C.
pub(crate) fn run(argv: &[String]) -> Result<Output> {
    let out = Cmd::new("cosign")
        .args(argv)
        .output()
        .with_context(|| format!("running `cosign {}`", argv[0]))?;
    Ok(Output {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// What is wrong with a `verify --key` file, from its text: a private key, or no PEM public key.
pub(crate) fn public_key_problem(pem: &str) -> Option<&'static str> {
    if pem.contains("PRIVATE KEY-----") {
        Some("is a private key: verify with its public key (the cosign.pub of `cosign generate-key-pair`)")
    } else if !(pem.contains("-----BEGIN ") && pem.contains("PUBLIC KEY-----")) {
        Some("is not a PEM public key: pass the cosign.pub of `cosign generate-key-pair`")
    } else {
        None
    }
}

/// Checks a `verify --key` before any image is looked at (KMS URIs are cosign's to check).
pub(crate) fn check_public_key(key: &str) -> Result<()> {
    if key.contains("://") {
        return Ok(());
    }
    let shown = shown(key);
    let pem = match std::fs::read(key) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => bail!(
            "cannot read the public key {shown} ({e}): cosign generate-key-pair writes cosign.pub"
        ),
    };
    match public_key_problem(&pem) {
        Some(problem) => bail!("the public key {shown} {problem}"),
        None => Ok(()),
    }
}

/// What to tell a signer whose key cosign could not open (`reason`).
pub(crate) fn signing_key_problem(key: &str, reason: &str, password_set: bool) -> String {
    let key = shown(key);
    if reason.contains("PUBLIC KEY") {
        format!("{key} is a public key: sign with its private key (the cosign.key of `cosign generate-key-pair`)")
    } else if !password_set {
        format!(
            "the signing key {key} needs its password in COSIGN_PASSWORD (cosign: {reason}): set \
             COSIGN_PASSWORD"
        )
    } else if reason.contains("decrypt") {
        format!(
            "the signing key {key} does not open with the password in COSIGN_PASSWORD (cosign: \
             {reason}): set COSIGN_PASSWORD to the password the key was made with"
        )
    } else {
        format!("cosign cannot open the signing key {key}: {reason}")
    }
}

/// Opens the signing key as `cosign sign` will (`cosign public-key`), so that a wrong key or
/// COSIGN_PASSWORD fails before any SBOM is made.
pub(crate) fn check_signing_key(signer: &Signer) -> Result<()> {
    let Signer::Key { key, .. } = signer else {
        return Ok(());
    };
    let out = run(&["public-key".to_string(), format!("--key={key}")])?;
    if out.ok {
        return Ok(());
    }
    let password_set = std::env::var_os("COSIGN_PASSWORD").is_some();
    bail!("{}", signing_key_problem(key, &out.reason(), password_set))
}

/// Writes an offline signing config into `dir` and returns its path.
pub(crate) fn offline_signing_config(dir: &Utf8Path) -> Result<Utf8PathBuf> {
    let path = dir.join("signing-config.json");
    let out = run(&offline_signing_config_argv(&path))?;
    if !out.ok {
        bail!("`cosign signing-config create` failed: {}", out.reason());
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Signer {
        Signer::Key {
            key: "/k/cosign.key".into(),
            tlog: false,
        }
    }

    #[test]
    fn key_signing_is_offline_with_the_serviceless_signing_config() {
        let sc = Utf8Path::new("/t/sc.json");
        assert_eq!(
            sign_argv("r/i@sha256:ab", &key(), Some(sc), true),
            [
                "sign",
                "--key=/k/cosign.key",
                "--signing-config=/t/sc.json",
                "--allow-http-registry",
                "--yes",
                "r/i@sha256:ab"
            ]
        );
        let tlog = Signer::Key {
            key: "/k/cosign.key".into(),
            tlog: true,
        };
        let argv = sign_argv("r/i@sha256:ab", &tlog, Some(sc), false);
        assert!(!argv.iter().any(|a| a.starts_with("--signing-config")));
        assert!(!argv.iter().any(|a| a == "--allow-http-registry"));
    }

    #[test]
    fn keyless_signing_names_no_key() {
        let argv = sign_argv("r/i@sha256:ab", &Signer::Keyless, None, false);
        assert_eq!(argv, ["sign", "--yes", "r/i@sha256:ab"]);
    }

    #[test]
    fn an_sbom_is_attested_with_the_type_of_its_format() {
        let sc = Some(Utf8Path::new("/t/sc.json"));
        let spdx = (Utf8Path::new("/t/sbom.spdx.json"), SbomFormat::Spdx);
        let argv = attest_argv("r/i@sha256:ab", &key(), sc, false, spdx);
        assert_eq!(
            &argv[..3],
            ["attest", "--type=spdxjson", "--predicate=/t/sbom.spdx.json"]
        );
        assert_eq!(argv.last().unwrap(), "r/i@sha256:ab");
        let cdx = (Utf8Path::new("/t/sbom.cdx.json"), SbomFormat::Cyclonedx);
        let argv = attest_argv("r/i@sha256:ab", &key(), sc, false, cdx);
        assert_eq!(argv[1], "--type=cyclonedx");
    }

    #[test]
    fn verify_with_a_key_or_an_identity() {
        let v = Verifier::Key {
            key: "/k/cosign.pub".into(),
            tlog: false,
        };
        assert_eq!(
            verify_argv("r/i@sha256:ab", &v, true),
            [
                "verify",
                "--key=/k/cosign.pub",
                "--insecure-ignore-tlog=true",
                "--allow-http-registry",
                "--output=json",
                "r/i@sha256:ab"
            ]
        );
        let k = Verifier::Keyless {
            identity_regexp: "^https://github.com/acme/voxserve/".into(),
            issuer: "https://token.actions.githubusercontent.com".into(),
        };
        let argv = verify_attestation_argv("r/i@sha256:ab", &k, false, SbomFormat::Spdx);
        assert_eq!(&argv[..2], ["verify-attestation", "--type=spdxjson"]);
        let argv = verify_attestation_argv("r/i@sha256:ab", &k, false, SbomFormat::Cyclonedx);
        assert_eq!(argv[1], "--type=cyclonedx");
        assert!(argv.contains(
            &"--certificate-oidc-issuer=https://token.actions.githubusercontent.com".to_string()
        ));
        assert!(!argv.iter().any(|a| a.contains("ignore-tlog")));
    }

    #[test]
    fn a_signer_is_required() {
        std::env::remove_var("ACTIONS_ID_TOKEN_REQUEST_URL");
        let err = Signer::from_flags(None, false, false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--key") && err.contains("COSIGN_KEY"), "{err}");
        assert!(Signer::from_flags(Some("k"), true, false).is_err());
        assert_eq!(
            Signer::from_flags(None, true, false).unwrap(),
            Signer::Keyless
        );
    }

    #[test]
    fn a_verdict_is_told_from_a_verification_that_could_not_run() {
        assert_eq!(refusal("no signatures found"), Some("none found"));
        assert_eq!(refusal("no matching attestations: "), Some("none found"));
        assert_eq!(
            refusal("none of the attestations matched the predicate type: spdxjson, found: https://sigstore.dev/cosign/sign/v1"),
            Some("none found")
        );
        let other_key = "no matching attestations: failed to verify signature: could not verify envelope: accepted signatures do not match threshold, Found: 0, Expected 1";
        assert_eq!(
            refusal(other_key),
            Some("present, but not made by this key or identity")
        );
        // cosign's own setup: no verdict on the image.
        for setup in [
            "loading verifier from key opts: loading public key: pem to public key: PEM decoding failed",
            "setting trusted material: getting trusted root from TUF for new bundle verification: error getting live trusted root",
            "GET http://127.0.0.1:5000/v2/x/manifests/sha256:00: MANIFEST_UNKNOWN: manifest unknown",
        ] {
            assert_eq!(refusal(setup), None, "{setup}");
        }
        let failed = |stderr: &str| Output {
            ok: false,
            stdout: String::new(),
            stderr: stderr.into(),
        };
        assert_eq!(
            failed("Error: no signatures found\n")
                .checked("r@d")
                .unwrap(),
            Checked::Refused("none found")
        );
        let e = failed("Error: loading public key: PEM decoding failed\n")
            .checked("r@d")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(
                "cosign could not check r@d: loading public key: PEM decoding failed: fix"
            ),
            "{e}"
        );
    }

    #[test]
    fn keys_of_the_wrong_kind_are_named() {
        let public = "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n";
        assert_eq!(public_key_problem(public), None);
        let private = "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nx\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n";
        assert!(public_key_problem(private)
            .unwrap()
            .starts_with("is a private key"));
        assert!(public_key_problem("garbage")
            .unwrap()
            .starts_with("is not a PEM public key"));

        let wrong = signing_key_problem("k.key", "decrypt: encrypted: decryption failed", true);
        assert!(
            wrong.contains("does not open with the password in COSIGN_PASSWORD")
                && wrong.ends_with("set COSIGN_PASSWORD to the password the key was made with"),
            "{wrong}"
        );
        let unset = signing_key_problem("k.key", "inappropriate ioctl for device", false);
        assert!(
            unset.contains("needs its password in COSIGN_PASSWORD"),
            "{unset}"
        );
        let public = signing_key_problem("k.pub", "unsupported pem type: PUBLIC KEY", true);
        assert!(public.starts_with("k.pub is a public key: sign with its private key"));
    }

    #[test]
    fn cosign_reason_is_its_error_line() {
        let out = Output {
            ok: false,
            stdout: String::new(),
            stderr: "WARNING: x\nError: no signatures found\nerror during command execution: no signatures found\n".into(),
        };
        assert_eq!(out.reason(), "no signatures found");
    }
}
