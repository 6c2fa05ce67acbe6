//! A real OCI registry for the tests: Debian's `docker-registry` (distribution 2.8) on 127.0.0.1
//! at a free port, with its own storage directory. The engine pushes to 127.0.0.0/8 over plain
//! HTTP without configuration. Dropping the `Registry` stops the server and removes its storage,
//! so no test leaves one running.
//!
//! ```ignore
//! let registry = Registry::start();
//! let image = registry.repo("xtask-push");          // "127.0.0.1:PORT/xtask-push"
//! // … push to it …
//! let (digest, manifest) = registry.manifest("xtask-push", "tag");
//! ```
//! By hand: `docs/PUBLISHING.md` ("A registry on this machine") writes the same config.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::run_id;

/// A running registry; stopped and its storage removed on drop.
pub struct Registry {
    /// `127.0.0.1:PORT`, the host part of image references.
    pub host: String,
    dir: PathBuf,
    child: Option<Child>,
}

/// A free TCP port on 127.0.0.1, from the OS (bound, then released for the server to take).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("asking the OS for a free loopback port")
}

/// The registry's config: loopback only, filesystem storage under `root`, deletes allowed.
pub fn registry_config(addr: &str, root: &std::path::Path) -> String {
    format!(
        "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n\
         storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
         http:\n  addr: {addr}\n",
        root.display()
    )
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
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("storage")).unwrap();
        // Another process may take the port between `free_port` and the server's bind: retry.
        for _ in 0..5 {
            let host = format!("127.0.0.1:{}", free_port());
            let config = dir.join("config.yml");
            std::fs::write(&config, registry_config(&host, &dir.join("storage"))).unwrap();
            let log = std::fs::File::create(dir.join("registry.log")).unwrap();
            let child = Command::new("docker-registry")
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| {
                    panic!(
                        "cannot start `docker-registry` ({e}): install Debian's docker-registry \
                         package (`bash .ci/install-tools` does)"
                    )
                });
            let mut registry = Registry {
                host,
                dir: dir.clone(),
                child: Some(child),
            };
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if registry.get("/v2/", &[]).is_ok_and(|r| r.status == 200) {
                    return registry;
                }
                let exited = registry.child.as_mut().unwrap().try_wait().unwrap();
                if exited.is_some() {
                    let log = std::fs::read_to_string(dir.join("registry.log")).unwrap_or_default();
                    if log.contains("address already in use") {
                        registry.child = None;
                        break; // try another port
                    }
                    panic!("docker-registry exited ({exited:?}):\n{log}");
                }
                if Instant::now() > deadline {
                    let log = std::fs::read_to_string(dir.join("registry.log")).unwrap_or_default();
                    panic!(
                        "docker-registry did not answer on {} in 20 s:\n{log}",
                        registry.host
                    );
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        panic!("docker-registry found no free port in 5 tries");
    }

    /// `127.0.0.1:PORT/<name>`: a repository in this registry.
    pub fn repo(&self, name: &str) -> String {
        format!("{}/{name}", self.host)
    }

    /// A plain HTTP/1.0 GET against the registry API (no client library, no redirects).
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> std::io::Result<HttpResponse> {
        let mut stream = TcpStream::connect_timeout(
            &self.host.parse().expect("a socket address"),
            Duration::from_secs(5),
        )?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut request = format!("GET {path} HTTP/1.0\r\nHost: {}\r\n", self.host);
        for (k, v) in headers {
            request.push_str(&format!("{k}: {v}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes())?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        HttpResponse::parse(&raw)
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
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub struct HttpResponse {
    pub status: u16,
    headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    fn parse(raw: &[u8]) -> std::io::Result<HttpResponse> {
        let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "not an HTTP response");
        let end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(bad)?;
        let head = String::from_utf8_lossy(&raw[..end]);
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .ok_or_else(bad)?;
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Ok(HttpResponse {
            status,
            headers,
            body: raw[end + 4..].to_vec(),
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}
