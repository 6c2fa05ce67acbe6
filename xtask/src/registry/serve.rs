//! A registry server on this machine: Debian's `docker-registry` (distribution 2.8) on 127.0.0.1
//! at a free port, with its own storage directory, and the registry API calls its users make
//! (plain HTTP/1.1 on loopback, no client library: the engine itself pushes to 127.0.0.0/8 over
//! HTTP without configuration). [`LocalRegistry::stop`] (and drop) stops the server and removes
//! its directory. Nothing here stops it on a signal: the caller registers `stop` (the tool through
//! `process::daemon`).
//!
//! Used by `bench pull` (under a cleanup guard; its blob uploads are its own) and by the tests'
//! harness. By hand:
//! `docs/PUBLISHING.md` ("A registry on this machine") writes the same config.

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::process::{Child, Cmd};

/// A running registry. `stop` (or drop) ends it and removes its directory.
pub struct LocalRegistry {
    /// `127.0.0.1:PORT`, the host part of image references.
    pub host: String,
    dir: PathBuf,
    child: Mutex<Option<Child>>,
}

/// `sha256:<hex>` of what went into `hasher`.
pub fn digest(hasher: Sha256) -> String {
    let mut out = String::from("sha256:");
    for b in hasher.finalize() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// A free TCP port on 127.0.0.1, from the OS (bound, then released for a server to take).
pub fn free_port() -> io::Result<u16> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
}

/// The registry's config: loopback only, filesystem storage under `storage`, deletes allowed, no
/// access log.
pub(crate) fn config_yaml(addr: &str, storage: &Path) -> String {
    format!(
        "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n\
         storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
         http:\n  addr: {addr}\n",
        storage.display()
    )
}

impl LocalRegistry {
    /// Starts a registry whose config, log and storage live in `dir` (made afresh) and waits
    /// until `GET /v2/` answers 200. Another process may take the port between `free_port` and
    /// the server's bind: then it tries another.
    pub fn start(dir: &Path) -> Result<LocalRegistry> {
        for _ in 0..5 {
            let _ = std::fs::remove_dir_all(dir);
            std::fs::create_dir_all(dir.join("storage"))
                .with_context(|| format!("creating {}", crate::util::shown(dir)))?;
            let host = format!(
                "127.0.0.1:{}",
                free_port().context("asking the OS for a free loopback port")?
            );
            let config = dir.join("config.yml");
            std::fs::write(&config, config_yaml(&host, &dir.join("storage")))
                .with_context(|| format!("writing {}", crate::util::shown(&config)))?;
            let log = dir.join("registry.log");
            let child = Cmd::new("docker-registry")
                .arg("serve")
                .arg(&config)
                .spawn_daemon(&log)
                .map_err(|e| {
                    let _ = std::fs::remove_dir_all(dir);
                    e.context(
                        "starting a registry: install Debian's docker-registry package \
                         (`bash .ci/install-tools` does)",
                    )
                })?;
            // From here on an error drops the registry, which stops it and removes `dir`.
            let registry = LocalRegistry {
                host,
                dir: dir.to_path_buf(),
                child: Mutex::new(Some(child)),
            };
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if registry.get("/v2/", &[]).is_ok_and(|r| r.status == 200) {
                    return Ok(registry);
                }
                if registry.exited() {
                    let log = std::fs::read_to_string(&log).unwrap_or_default();
                    if log.contains("address already in use") {
                        break; // another port
                    }
                    bail!("docker-registry exited:\n{}", log.trim());
                }
                if Instant::now() > deadline {
                    let log = std::fs::read_to_string(&log).unwrap_or_default();
                    bail!(
                        "docker-registry did not answer on {} in 20 s:\n{}",
                        registry.host,
                        log.trim()
                    );
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        bail!("docker-registry found no free port in 5 tries")
    }

    fn exited(&self) -> bool {
        lock(&self.child).as_ref().is_none_or(Child::exited)
    }

    /// `127.0.0.1:PORT/<name>`: a repository in this registry.
    pub fn repo(&self, name: &str) -> String {
        format!("{}/{name}", self.host)
    }

    /// Stops the server and removes its directory (again: nothing).
    pub fn stop(&self) {
        if let Some(child) = lock(&self.child).take() {
            child.stop();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// A GET against the registry API.
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> io::Result<HttpResponse> {
        self.request("GET", path, headers, &[])
    }

    /// One HTTP/1.1 request with a body of known length (`Connection: close`, no redirects).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<HttpResponse> {
        request(&self.host, method, path, headers, body)
    }

    /// Puts a manifest (or index) under `reference` (a tag); returns its digest as the registry
    /// computed it.
    pub fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> Result<String> {
        let resp = self
            .request(
                "PUT",
                &format!("/v2/{repo}/manifests/{reference}"),
                &[("Content-Type", media_type)],
                body,
            )
            .with_context(|| format!("putting the manifest {}:{reference}", self.repo(repo)))?;
        if resp.status != 201 {
            bail!(
                "the registry refused the manifest {}:{reference} ({}): {}",
                self.repo(repo),
                resp.status,
                String::from_utf8_lossy(&resp.body).trim()
            );
        }
        resp.header("docker-content-digest")
            .map(str::to_owned)
            .context("the registry named no digest for the manifest")
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A connection to the registry at `host` (`127.0.0.1:PORT`), with a read timeout.
pub fn connect(host: &str) -> io::Result<TcpStream> {
    let addr = host
        .parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(300)))?;
    Ok(stream)
}

/// One HTTP/1.1 request to the registry at `host` (see [`LocalRegistry::request`]).
pub fn request(
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<HttpResponse> {
    let mut stream = connect(host)?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    read_response(&mut stream)
}

/// A response, read to the end of the connection.
pub struct HttpResponse {
    pub status: u16,
    headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The whole response on `stream`, read to the end of the connection.
pub fn read_response(stream: &mut TcpStream) -> io::Result<HttpResponse> {
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    HttpResponse::parse(&raw)
}

impl HttpResponse {
    /// Parses a whole response; a chunked body is decoded.
    pub(crate) fn parse(raw: &[u8]) -> io::Result<HttpResponse> {
        let bad = || io::Error::new(io::ErrorKind::InvalidData, "not an HTTP response");
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
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let mut response = HttpResponse {
            status,
            headers,
            body: raw[end + 4..].to_vec(),
        };
        if response
            .header("transfer-encoding")
            .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
        {
            response.body = dechunk(&response.body).ok_or_else(bad)?;
        }
        Ok(response)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The path (and query) of the `Location` of a response that must have `status`.
    pub fn location(&self, status: u16, what: &str) -> Result<String> {
        if self.status != status {
            bail!(
                "{what}: the registry answered {} instead of {status}: {}",
                self.status,
                String::from_utf8_lossy(&self.body).trim()
            );
        }
        let location = self
            .header("location")
            .with_context(|| format!("{what}: the registry sent no Location"))?;
        Ok(path_of(location).to_string())
    }
}

/// `http://host:port/v2/…?q` → `/v2/…?q`; a path stays as it is.
fn path_of(location: &str) -> &str {
    match location.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => location,
    }
}

fn dechunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&body[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(body.get(..size)?);
        body = body.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_become_paths_and_chunked_bodies_are_decoded() {
        assert_eq!(
            path_of("http://127.0.0.1:5000/v2/a/blobs/uploads/u?_state=x"),
            "/v2/a/blobs/uploads/u?_state=x"
        );
        assert_eq!(path_of("/v2/a/blobs/uploads/u"), "/v2/a/blobs/uploads/u");
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: b\r\n\r\n\
                    3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n";
        let resp = HttpResponse::parse(raw).unwrap();
        assert_eq!(resp.status, 200);
        assert_eq!(resp.header("x-a"), Some("b"));
        assert_eq!(resp.body, b"abcde");
        assert!(HttpResponse::parse(b"garbage").is_err());
        assert!(config_yaml("127.0.0.1:1", Path::new("/s")).contains("rootdirectory: /s\n"));
    }
}
