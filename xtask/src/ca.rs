//! Which CA bundle builds receive as the BuildKit secret `ca-bundle`.
//!
//! TLS-intercepting proxies (corporate ones, and this repository's CI) re-sign downloads; builds
//! then need the proxy's CA. It is passed as a secret, mounted only in the steps that download, so
//! it never lands in a layer, a label, a build arg or `docker history`.

use anyhow::{bail, Result};
use camino::Utf8PathBuf;

use crate::config::Config;

/// The environment variables that name a CA bundle, in the order they are looked at.
pub(crate) const ENV_VARS: [&str; 3] = ["SSL_CERT_FILE", "PIP_CERT", "REQUESTS_CA_BUNDLE"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CaBundle {
    pub(crate) path: Utf8PathBuf,
    /// Where the path came from, e.g. `SSL_CERT_FILE` or `images.toml [build].ca_bundle`.
    pub(crate) source: String,
}

/// The CA bundle from the environment, else from images.toml; an error when it names a missing file.
pub(crate) fn find(config: &Config) -> Result<Option<CaBundle>> {
    let from_env = ENV_VARS.iter().find_map(|var| match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(CaBundle {
            path: v.into(),
            source: (*var).into(),
        }),
        _ => None,
    });
    let found = from_env.or_else(|| {
        config.build.ca_bundle.as_ref().map(|p| CaBundle {
            path: crate::util::host_join(&config.dir, p),
            source: format!(
                "{} [build].ca_bundle",
                config.path.file_name().unwrap_or("images.toml")
            ),
        })
    });
    if let Some(ca) = &found {
        if !ca.path.is_file() {
            bail!(
                "the CA bundle {} (from {}) does not exist: fix or unset {}",
                crate::util::shown(&ca.path),
                ca.source,
                ca.source
            );
        }
    }
    Ok(found)
}
