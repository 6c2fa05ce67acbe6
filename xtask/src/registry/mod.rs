//! Where images are published: `HOST[:PORT][/NAMESPACE]` from `--registry`, `XTASK_REGISTRY` or
//! `[project].registry`, the repository a variant is pushed to, and whether the registry answers.
//!
//! Registries on 127.0.0.0/8 (and `localhost`) are spoken to over plain HTTP, as the Docker engine
//! does without configuration; every other host over HTTPS.

pub mod serve;

use anyhow::{bail, Context, Result};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

pub(crate) use crate::config::Registry;
use crate::config::{Config, Variant};

/// What to tell a user who configured nothing.
pub(crate) const HOW_TO_SET: &str =
    "set `registry = \"HOST[/NAMESPACE]\"` under [project] in images.toml, \
     pass --registry HOST[/NAMESPACE], or export XTASK_REGISTRY";

impl Registry {
    /// The registry from the command line (or `XTASK_REGISTRY`, which clap folds into the flag),
    /// else images.toml; None when neither sets one.
    pub(crate) fn configured(flag: Option<&str>, config: &Config) -> Result<Option<Registry>> {
        match flag {
            Some(flag) => Registry::parse(flag, "--registry").map(Some),
            // Checked when images.toml was loaded.
            None => Ok(config.project.registry.clone()),
        }
    }

    /// Like [`Registry::configured`], but none is an error that says what to set.
    pub(crate) fn required(flag: Option<&str>, config: &Config, command: &str) -> Result<Registry> {
        Registry::configured(flag, config)?.with_context(|| {
            format!("`{command}` needs a registry and none is configured: {HOW_TO_SET}")
        })
    }

    /// `host/namespace/<image>:<variant>`: the tag a variant is published and verified under.
    pub(crate) fn variant_ref(&self, variant: &Variant) -> String {
        format!("{}:{}", self.repository(&variant.image), variant.name)
    }

    /// Fails with one clear line when nothing accepts a connection at the registry's address,
    /// before a build spends minutes and then cannot push.
    pub(crate) fn ensure_reachable(&self) -> Result<()> {
        let address = self.socket_address();
        let addrs: Vec<_> = match address.to_socket_addrs() {
            Ok(addrs) => addrs.collect(),
            Err(err) => bail!(
                "the registry {} cannot be resolved ({err}): check --registry / [project].registry",
                self.host
            ),
        };
        let mut last = None;
        for addr in &addrs {
            match TcpStream::connect_timeout(addr, Duration::from_secs(5)) {
                Ok(_) => return Ok(()),
                Err(err) => last = Some(err),
            }
        }
        bail!(
            "the registry {} does not answer at {address} ({}): start it, or check --registry / \
             [project].registry",
            self.host,
            last.map_or("no address".to_string(), |e| e.to_string())
        )
    }
}

/// The registry host of an image reference (`127.0.0.1:5000/a/b:t` → `127.0.0.1:5000`), or None
/// for a Docker Hub reference without one.
pub(crate) fn host_of(reference: &str) -> Option<&str> {
    let (first, _) = reference.split_once('/')?;
    (first.contains('.') || first.contains(':') || first == "localhost").then_some(first)
}

/// True when the reference's registry is on loopback (plain HTTP, see [`Registry::is_loopback`]).
pub(crate) fn reference_is_loopback(reference: &str) -> bool {
    host_of(reference)
        .and_then(|h| Registry::parse(h, "the image reference").ok())
        .is_some_and(|r| r.is_loopback())
}

/// Splits `repo[:tag][@digest]` into the repository and the rest; the tag's colon is told apart
/// from a port's by coming after the last slash.
pub(crate) fn repository_of(reference: &str) -> &str {
    let without_digest = reference.split('@').next().unwrap_or(reference);
    let last_slash = without_digest.rfind('/').map_or(0, |i| i + 1);
    match without_digest[last_slash..].find(':') {
        Some(colon) => &without_digest[..last_slash + colon],
        None => without_digest,
    }
}

/// The published images a command acts on: variants, in the configured registry, and images
/// named by reference (`sign` and `verify` flatten this into their arguments).
#[derive(clap::Args)]
pub(crate) struct Selection {
    /// Variants, published as `<registry>/<image>:<variant>`.
    pub(crate) variants: Vec<String>,
    /// Every variant of images.toml.
    #[arg(long, conflicts_with = "variants")]
    pub(crate) all: bool,
    /// A published image instead (repeatable): `REGISTRY/IMAGE:TAG` (resolved to its digest) or
    /// `REGISTRY/IMAGE@sha256:…`.
    #[arg(long, value_name = "REF", conflicts_with = "all")]
    pub(crate) image: Vec<String>,
    /// Registry of the variants, `HOST[:PORT][/NAMESPACE]` (default: `[project].registry` of
    /// images.toml).
    #[arg(long, env = "XTASK_REGISTRY", value_name = "HOST[/NAMESPACE]")]
    pub(crate) registry: Option<String>,
}

impl Selection {
    /// The selected variants with the registry they are published in (none selected when only
    /// `--image` is given); the registry must be configured and answer.
    pub(crate) fn variants<'c>(
        &self,
        config: impl FnOnce() -> Result<&'c Config>,
        command: &str,
    ) -> Result<Option<(Registry, Vec<&'c Variant>)>> {
        if self.variants.is_empty() && !self.all && !self.image.is_empty() {
            return Ok(None);
        }
        let config = config()?;
        let registry = Registry::required(self.registry.as_deref(), config, command)?;
        let variants = config.select(&self.variants, self.all)?;
        registry.ensure_reachable()?;
        Ok(Some((registry, variants)))
    }
}

/// An image in a registry, pinned by digest: what is signed and verified.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Pushed {
    /// The variant, or the reference as given.
    pub(crate) name: String,
    /// `host/namespace/image`.
    pub(crate) repository: String,
    /// The tag it was found under, where it was found by tag.
    pub(crate) tag: Option<String>,
    /// `sha256:…` of the manifest or index.
    pub(crate) digest: String,
}

impl Pushed {
    /// `repository@digest`.
    pub(crate) fn reference(&self) -> String {
        format!("{}@{}", self.repository, self.digest)
    }

    /// Asks the registry what `repo:tag` points at, or whether it has `repo@digest`, before
    /// anything slow is done with it.
    pub(crate) fn resolve(name: &str, reference: &str) -> Result<Pushed> {
        let repository = repository_of(reference).to_string();
        if host_of(&repository).is_none() {
            bail!(
                "`{reference}` names no registry: give REGISTRY/IMAGE:TAG or REGISTRY/IMAGE@sha256:…"
            );
        }
        let digest = crate::docker::registry_digest(reference)?;
        let tag = (!reference.contains('@')).then(|| reference.to_string());
        Ok(Pushed {
            name: name.to_string(),
            repository,
            tag,
            digest,
        })
    }
}

/// The platforms an index (or a single manifest, given its own digest) lists: `(platform,
/// manifest digest)`, attestation manifests left out. None for a single image manifest.
pub(crate) fn index_platforms(index: &serde_json::Value) -> Option<Vec<(String, String)>> {
    let entries = index["manifests"].as_array()?;
    Some(
        entries
            .iter()
            .filter(|m| m["annotations"]["vnd.docker.reference.type"] != "attestation-manifest")
            .filter_map(|m| {
                let p = &m["platform"];
                let platform = platform_of(
                    p["os"].as_str().unwrap_or("?"),
                    p["architecture"].as_str().unwrap_or("?"),
                    p["variant"].as_str(),
                );
                Some((platform, m["digest"].as_str()?.to_string()))
            })
            .collect(),
    )
}

/// The platform of a config blob's facts as `os/arch[/variant]` (for matching the local copy).
pub(crate) fn platform_of(os: &str, architecture: &str, variant: Option<&str>) -> String {
    match variant {
        Some(v) if !v.is_empty() => format!("{os}/{architecture}/{v}"),
        _ => format!("{os}/{architecture}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_on_loopback_are_plain_http() {
        assert!(reference_is_loopback("127.0.0.1:5000/a/b:t"));
        assert!(!reference_is_loopback("voxserve:cpu"));
        assert!(!reference_is_loopback("ghcr.io/a/b:t"));
    }

    #[test]
    fn repository_of_a_reference() {
        assert_eq!(repository_of("127.0.0.1:5000/a/b:t"), "127.0.0.1:5000/a/b");
        assert_eq!(
            repository_of("127.0.0.1:5000/a/b@sha256:00"),
            "127.0.0.1:5000/a/b"
        );
        assert_eq!(
            repository_of("127.0.0.1:5000/a/b:t@sha256:00"),
            "127.0.0.1:5000/a/b"
        );
        assert_eq!(repository_of("voxserve"), "voxserve");
        assert_eq!(host_of("voxserve:cpu"), None);
        assert_eq!(host_of("ghcr.io/a/b"), Some("ghcr.io"));
    }

    #[test]
    fn nothing_reachable_is_one_clear_line() {
        // A port nothing listens on: bind, take the port, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let r = Registry::parse(&format!("127.0.0.1:{port}"), "x").unwrap();
        let msg = r.ensure_reachable().unwrap_err().to_string();
        assert!(
            msg.contains("does not answer") && msg.contains("start it"),
            "{msg}"
        );
        assert!(!msg.contains('\n'));
    }
}
