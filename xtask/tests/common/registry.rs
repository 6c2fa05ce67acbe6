//! A real OCI registry for the tests: Debian's `docker-registry` (distribution 2.8) on 127.0.0.1
//! at a free port, with its own storage directory — the tool's own `LocalRegistry`
//! (`src/registry/serve.rs`, which `bench pull` starts too), with assertions on top. The engine
//! pushes to 127.0.0.0/8 over plain HTTP without configuration. Dropping the `Registry` stops the
//! server and removes its storage, so no test leaves one running.
//!
//! ```ignore
//! let registry = Registry::start();
//! let image = registry.repo("xtask-push");          // "127.0.0.1:PORT/xtask-push"
//! // … push to it …
//! let (digest, manifest) = registry.manifest("xtask-push", "tag");
//! ```

use std::sync::atomic::{AtomicU32, Ordering};

use super::run_id;

pub use serve::HttpResponse;
use xtask::registry::serve;

/// A free TCP port on 127.0.0.1, from the OS.
pub fn free_port() -> u16 {
    serve::free_port().expect("asking the OS for a free loopback port")
}

/// A running registry; stopped and its storage removed on drop.
pub struct Registry {
    /// `127.0.0.1:PORT`, the host part of image references.
    pub host: String,
    server: serve::LocalRegistry,
}

impl Registry {
    /// Starts a registry and waits until `GET /v2/` answers 200 (panics with the fix when the
    /// `docker-registry` binary is missing, with the log when it does not come up).
    pub fn start() -> Registry {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "xtask-registry-{}-{}",
            run_id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let server = serve::LocalRegistry::start(&dir).unwrap_or_else(|e| panic!("{e:#}"));
        Registry {
            host: server.host.clone(),
            server,
        }
    }

    /// `127.0.0.1:PORT/<name>`: a repository in this registry.
    pub fn repo(&self, name: &str) -> String {
        self.server.repo(name)
    }

    /// A GET against the registry API (no redirects).
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> std::io::Result<HttpResponse> {
        self.server.get(path, headers)
    }

    /// The manifest (or index) `reference` (a tag or a digest) of `repo`, with its digest as the
    /// registry reports it (`Docker-Content-Digest`). Panics when the registry has none.
    pub fn manifest(&self, repo: &str, reference: &str) -> (String, serde_json::Value) {
        let accept = "application/vnd.oci.image.index.v1+json, \
                      application/vnd.oci.image.manifest.v1+json, \
                      application/vnd.docker.distribution.manifest.list.v2+json, \
                      application/vnd.docker.distribution.manifest.v2+json";
        let resp = self
            .get(
                &format!("/v2/{repo}/manifests/{reference}"),
                &[("Accept", accept)],
            )
            .unwrap_or_else(|e| panic!("GET manifest {repo}:{reference}: {e}"));
        assert_eq!(
            resp.status,
            200,
            "manifest {repo}:{reference} in {}: {}",
            self.host,
            String::from_utf8_lossy(&resp.body)
        );
        let digest = resp
            .header("docker-content-digest")
            .expect("the registry names the digest")
            .to_string();
        (digest, serde_json::from_slice(&resp.body).unwrap())
    }

    /// The tags of `repo` (empty when it does not exist).
    pub fn tags(&self, repo: &str) -> Vec<String> {
        let resp = self.get(&format!("/v2/{repo}/tags/list"), &[]).unwrap();
        if resp.status != 200 {
            return Vec::new();
        }
        let doc: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
        doc["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect()
    }

    /// Stops the server now (for tests of what happens when the registry is down).
    pub fn stop(&mut self) {
        self.server.stop();
    }
}
