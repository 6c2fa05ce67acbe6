//! `[project].registry` of images.toml (and `--registry`): `HOST[:PORT][/NAMESPACE]`, checked
//! the way Docker will read it, and the repository a variant is published to. Pure; the I/O
//! (is it reachable, what does it hold) is in `crate::registry`.

use anyhow::{bail, Result};

/// A registry host with an optional namespace (`ghcr.io/acme`, `127.0.0.1:5000`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Registry {
    /// `host[:port]`.
    pub(crate) host: String,
    /// Path below the host, without slashes at either end; may be empty.
    pub(crate) namespace: String,
}

impl std::fmt::Display for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.namespace.is_empty() {
            f.write_str(&self.host)
        } else {
            write!(f, "{}/{}", self.host, self.namespace)
        }
    }
}

impl Registry {
    /// Parses `HOST[:PORT][/NAMESPACE]`; `what` names where it came from, for the error.
    pub(crate) fn parse(text: &str, what: &str) -> Result<Registry> {
        let text = text.trim().trim_end_matches('/');
        if text.contains("://") {
            bail!(
                "{what} `{text}` has a scheme: give the registry as HOST[:PORT][/NAMESPACE] \
                 (127.0.0.1:5000/team, ghcr.io/acme), without http:// or https://"
            );
        }
        let (host, namespace) = text.split_once('/').unwrap_or((text, ""));
        if host.is_empty() {
            bail!("{what} is empty: give the registry as HOST[:PORT][/NAMESPACE]");
        }
        // Docker reads anything else as a Docker Hub user.
        if !(host.contains('.') || host.contains(':') || host == "localhost") {
            bail!(
                "{what} `{text}` does not start with a registry host (a name with a dot or a port, \
                 or localhost): for Docker Hub write docker.io/{text}"
            );
        }
        let valid_host = host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c));
        if !valid_host {
            bail!("{what}: `{host}` is not a registry host name");
        }
        let valid_path = namespace.split('/').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
        });
        if !namespace.is_empty() && !valid_path {
            bail!(
                "{what}: the namespace `{namespace}` must be lowercase letters, digits, `.`, `_`, \
                 `-`, separated by single slashes"
            );
        }
        Ok(Registry {
            host: host.to_string(),
            namespace: namespace.to_string(),
        })
    }

    /// `host/namespace/image`: the repository `image` (a variant's `image`) is published to.
    pub(crate) fn repository(&self, image: &str) -> String {
        if self.namespace.is_empty() {
            format!("{}/{image}", self.host)
        } else {
            format!("{}/{}/{image}", self.host, self.namespace)
        }
    }

    /// The host without its port.
    fn hostname(&self) -> &str {
        if let Some(rest) = self.host.strip_prefix('[') {
            return rest.split(']').next().unwrap_or(rest);
        }
        self.host.rsplit_once(':').map_or(&self.host, |(h, _)| h)
    }

    /// True for `localhost`, 127.0.0.0/8 and ::1: registries every client here speaks plain
    /// HTTP to without configuration (Docker's built-in insecure range).
    pub(crate) fn is_loopback(&self) -> bool {
        let name = self.hostname();
        name == "localhost"
            || name
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// `host:port` to connect to (443 unless given; 80 is not assumed even for loopback).
    pub(crate) fn socket_address(&self) -> String {
        let has_port = if self.host.starts_with('[') {
            self.host.contains("]:")
        } else {
            self.host.contains(':')
        };
        if has_port {
            self.host.clone()
        } else if self.is_loopback() {
            format!("{}:80", self.host)
        } else {
            format!("{}:443", self.host)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts_ports_and_namespaces() {
        let r = Registry::parse("127.0.0.1:5000/team/ml/", "--registry").unwrap();
        assert_eq!(r.host, "127.0.0.1:5000");
        assert_eq!(r.namespace, "team/ml");
        assert_eq!(r.repository("voxserve"), "127.0.0.1:5000/team/ml/voxserve");
        let r = Registry::parse("ghcr.io", "--registry").unwrap();
        assert_eq!(r.repository("voxserve"), "ghcr.io/voxserve");
        assert!(Registry::parse("localhost/x", "--registry").is_ok());
    }

    #[test]
    fn rejects_what_docker_would_read_differently() {
        let err = |s| Registry::parse(s, "--registry").unwrap_err().to_string();
        assert!(err("http://127.0.0.1:5000").contains("without http://"));
        assert!(err("acme").contains("docker.io/acme"));
        assert!(err("ghcr.io/Acme").contains("lowercase"));
        assert!(err("ghcr.io//a").contains("single slashes"));
        assert!(err("").contains("empty"));
    }

    #[test]
    fn loopback_registries_are_plain_http() {
        let lo = |s| Registry::parse(s, "x").unwrap().is_loopback();
        assert!(lo("127.0.0.1:5000"));
        assert!(lo("127.1.2.3:5000/ns"));
        assert!(lo("localhost:5000"));
        assert!(lo("[::1]:5000"));
        assert!(!lo("registry.example:5000"));
        assert!(!lo("10.0.0.1:5000"));
        assert_eq!(
            Registry::parse("127.0.0.1", "x").unwrap().socket_address(),
            "127.0.0.1:80"
        );
        assert_eq!(
            Registry::parse("ghcr.io/a", "x").unwrap().socket_address(),
            "ghcr.io:443"
        );
    }
}
