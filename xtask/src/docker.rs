//! The only place that spawns `docker`: probes, inspect, and the process handles other modules
//! stream. Results come back typed (serde from `--format '{{json .}}'`), never as raw strings.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use xshell::{cmd, Shell};

/// Fails with the fix when the `docker` CLI is not on PATH.
pub fn ensure_cli() -> Result<()> {
    if which::which("docker").is_err() {
        bail!(
            "the `docker` CLI is not on PATH: install Docker (Docker Desktop, or your distribution's \
             docker.io / docker-ce packages) and try again"
        );
    }
    Ok(())
}

/// Where the CLI will look for the engine, for error messages.
pub fn engine_address() -> String {
    match std::env::var("DOCKER_HOST") {
        Ok(host) if !host.is_empty() => format!("DOCKER_HOST={host}"),
        _ => match std::env::var("DOCKER_CONTEXT") {
            Ok(ctx) if !ctx.is_empty() => format!("the `{ctx}` docker context"),
            _ => "the default socket".to_string(),
        },
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct VersionDoc {
    client: Component,
    server: Option<Component>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Component {
    pub version: String,
    #[serde(default)]
    pub api_version: String,
}

#[derive(Debug, Clone)]
pub struct Versions {
    pub client: Component,
    pub server: Component,
}

/// Client and engine versions; an unreachable engine is an error that says how to fix it.
pub fn versions(sh: &Shell) -> Result<Versions> {
    ensure_cli()?;
    let format = "{{json .}}";
    let out = cmd!(sh, "docker version --format {format}")
        .quiet()
        .ignore_status()
        .output()
        .context("running `docker version`")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let doc: VersionDoc = serde_json::from_str(stdout.trim())
        .with_context(|| format!("parsing `docker version` output: {}", stdout.trim()))?;
    match doc.server {
        Some(server) => Ok(Versions {
            client: doc.client,
            server,
        }),
        None => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            bail!(
                "cannot reach the Docker engine at {}: start it (`sudo systemctl start docker`, Docker \
                 Desktop, or `bash .ci/start-docker` in this repo) or point DOCKER_HOST at a running \
                 engine. (docker said: {})",
                engine_address(),
                stderr.trim().lines().last().unwrap_or("nothing")
            )
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Info {
    pub server_version: String,
    /// `overlay2` (classic store) or `overlayfs` (containerd snapshotter) and others.
    pub driver: String,
    #[serde(default)]
    pub driver_status: Option<Vec<(String, String)>>,
    #[serde(default, rename = "OSType")]
    pub os_type: String,
    #[serde(default)]
    pub architecture: String,
}

impl Info {
    /// True when the engine keeps images in containerd's content store (the containerd snapshotter).
    pub fn containerd_store(&self) -> bool {
        self.driver_status
            .iter()
            .flatten()
            .any(|(k, v)| k == "driver-type" && v.starts_with("io.containerd.snapshotter"))
    }

    /// `containerd snapshotter (overlayfs)` or `classic (overlay2)`.
    pub fn store_name(&self) -> String {
        if self.containerd_store() {
            format!("containerd snapshotter ({})", self.driver)
        } else {
            format!("classic ({})", self.driver)
        }
    }
}

pub fn info(sh: &Shell) -> Result<Info> {
    versions(sh)?;
    let format = "{{json .}}";
    let out = cmd!(sh, "docker info --format {format}")
        .quiet()
        .read()
        .context("running `docker info`")?;
    serde_json::from_str(&out).context("parsing `docker info` output")
}

/// The buildx plugin's version, or None when it is not installed.
pub fn buildx_version(sh: &Shell) -> Option<String> {
    let out = cmd!(sh, "docker buildx version")
        .quiet()
        .ignore_stderr()
        .read()
        .ok()?;
    // "github.com/docker/buildx 0.29.1+ds1 <commit>"
    out.split_whitespace().nth(1).map(str::to_owned)
}

pub fn ensure_buildx(sh: &Shell) -> Result<String> {
    buildx_version(sh).ok_or_else(|| {
        anyhow::anyhow!(
            "docker buildx is not installed: install the buildx plugin (Debian/Ubuntu: `apt-get install \
             docker-buildx`; docker-ce: `docker-buildx-plugin`; Docker Desktop ships it)"
        )
    })
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Builder {
    pub name: String,
    pub driver: String,
    #[serde(default)]
    pub current: bool,
    #[serde(default)]
    pub nodes: Vec<BuilderNode>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BuilderNode {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub platforms: Vec<String>,
}

/// The builder `name`, or the active one.
pub fn builder(sh: &Shell, name: Option<&str>) -> Result<Builder> {
    let out = cmd!(sh, "docker buildx ls --format json")
        .quiet()
        .read()
        .context("running `docker buildx ls`")?;
    let builders: Vec<Builder> = out
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<std::result::Result<_, _>>()
        .context("parsing `docker buildx ls --format json`")?;
    let found = match name {
        Some(n) => builders.iter().find(|b| b.name == n),
        None => builders.iter().find(|b| b.current),
    };
    match found {
        Some(b) => Ok(b.clone()),
        None => bail!(
            "no buildx builder {}; known builders: {} (create one with `docker buildx create --name NAME`)",
            name.map_or("is active".to_string(), |n| format!("named `{n}`")),
            builders.iter().map(|b| b.name.as_str()).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// Whether a builder can export build cache (`--cache-to`). The `docker` driver can only with
/// the containerd image store; the container, kubernetes and remote drivers always can.
pub fn can_export_cache(builder: &Builder, info: &Info) -> bool {
    builder.driver != "docker" || info.containerd_store()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageInspect {
    pub id: String,
    #[serde(default)]
    pub repo_tags: Vec<String>,
    #[serde(default)]
    pub created: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub variant: Option<String>,
    pub config: ImageConfig,
    #[serde(rename = "RootFS")]
    pub root_fs: RootFs,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageConfig {
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub healthcheck: Option<Healthcheck>,
    #[serde(default)]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Healthcheck {
    #[serde(default)]
    pub test: Option<Vec<String>>,
    /// Nanoseconds.
    #[serde(default)]
    pub interval: Option<u64>,
    #[serde(default)]
    pub start_period: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RootFs {
    #[serde(default)]
    pub layers: Vec<String>,
}

/// Inspects several images with one engine call. Images that do not exist are absent from the map.
pub fn image_inspect(sh: &Shell, refs: &[String]) -> Result<BTreeMap<String, ImageInspect>> {
    if refs.is_empty() {
        return Ok(BTreeMap::new());
    }
    let out = cmd!(sh, "docker image inspect {refs...}")
        .quiet()
        .ignore_status()
        .ignore_stderr()
        .output()
        .context("running `docker image inspect`")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let found: Vec<ImageInspect> = if stdout.trim().is_empty() {
        Vec::new()
    } else {
        serde_json::from_str(&stdout).context("parsing `docker image inspect` output")?
    };
    // docker returns the found images in the order asked, skipping missing ones; match by tag or ID.
    let mut map = BTreeMap::new();
    for r in refs {
        if let Some(img) = found.iter().find(|i| ref_matches(r, i)) {
            map.insert(r.clone(), img.clone());
        }
    }
    Ok(map)
}

fn ref_matches(r: &str, img: &ImageInspect) -> bool {
    let with_latest = if r
        .rsplit('/')
        .next()
        .is_some_and(|last| last.contains(':') || last.contains('@'))
    {
        r.to_string()
    } else {
        format!("{r}:latest")
    };
    img.repo_tags
        .iter()
        .any(|t| t == r || t == &with_latest || t == &format!("docker.io/library/{r}"))
        || img.id == r
        || img
            .id
            .strip_prefix("sha256:")
            .is_some_and(|id| id.starts_with(r.trim_start_matches("sha256:")))
}

/// The image's ID, or None when it does not exist locally.
pub fn image_id(sh: &Shell, image: &str) -> Result<Option<String>> {
    Ok(image_inspect(sh, &[image.to_string()])?
        .remove(image)
        .map(|i| i.id))
}

/// The running `docker save REF…`: its stdout is an OCI image layout as a tar stream (blobs,
/// `index.json`, `manifest.json`). Read it to the end, then call [`SaveStream::finish`] for the
/// exit status; dropping it early kills `docker save`.
pub struct SaveStream {
    handle: duct::ReaderHandle,
    refs: Vec<String>,
}

/// Starts `docker save` for several images at once (shared blobs are written once).
pub fn save(refs: &[String]) -> Result<SaveStream> {
    ensure_cli()?;
    let mut args = vec!["save".to_string()];
    args.extend(refs.iter().cloned());
    let handle = duct::cmd("docker", &args)
        .stderr_capture()
        .unchecked()
        .reader()
        .with_context(|| format!("starting `docker save {}`", refs.join(" ")))?;
    Ok(SaveStream {
        handle,
        refs: refs.to_vec(),
    })
}

impl std::io::Read for SaveStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.handle.read(buf)
    }
}

impl SaveStream {
    /// Reads what is left and fails with docker's message when `docker save` did not succeed.
    pub fn finish(mut self) -> Result<()> {
        std::io::copy(&mut self.handle, &mut std::io::sink())
            .context("reading the rest of `docker save`")?;
        let output = self
            .handle
            .try_wait()
            .context("waiting for `docker save`")?
            .context("`docker save` closed its output but did not exit")?;
        if !output.status.success() {
            bail!(
                "`docker save {}` failed ({}): {}",
                self.refs.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    }
}

/// A `docker` process with these arguments, for callers that stream its output (builds, logs).
pub fn command(args: &[String]) -> duct::Expression {
    duct::cmd("docker", args)
}
