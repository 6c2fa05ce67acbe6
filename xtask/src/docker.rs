//! The only place that spawns `docker`: probes, inspect, builds, `docker save` and containers.
//! Results come back typed (serde from `--format '{{json .}}'`), never as raw strings.
//!
//! Every call is a [`Cmd`] (`crate::process`), so cleanup guards and parallel checks may make
//! them from any thread.

use crate::output::warning;
use crate::process::Cmd;
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Fails with the fix when the `docker` CLI is not on PATH.
pub(crate) fn ensure_cli() -> Result<()> {
    if which::which("docker").is_err() {
        bail!(
            "the `docker` CLI is not on PATH: install Docker (Docker Desktop, or your distribution's \
             docker.io / docker-ce packages) and try again"
        );
    }
    Ok(())
}

/// Where the CLI will look for the engine, for error messages.
pub(crate) fn engine_address() -> String {
    match std::env::var("DOCKER_HOST") {
        Ok(host) if !host.is_empty() => format!("DOCKER_HOST={host}"),
        _ => match std::env::var("DOCKER_CONTEXT") {
            Ok(ctx) if !ctx.is_empty() => format!("the `{ctx}` docker context"),
            _ => "the default socket".to_string(),
        },
    }
}

/// The CLI's own version (`docker --version`), asked without the engine; None when the CLI
/// cannot be run or prints no version.
pub(crate) fn cli_version() -> Option<String> {
    let out = docker(["--version"]).output().ok()?;
    parse_cli_version(&String::from_utf8_lossy(&out.stdout))
}

/// The version in `Docker version 28.5.2, build ecc6942` (or a look-alike CLI's banner).
fn parse_cli_version(banner: &str) -> Option<String> {
    let mut words = banner.split(|c: char| c.is_whitespace() || c == ',');
    words.find(|w| w.eq_ignore_ascii_case("version"))?;
    words
        .find(|w| !w.is_empty())
        .filter(|w| w.starts_with(|c: char| c.is_ascii_digit()))
        .map(str::to_owned)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct VersionDoc {
    client: Component,
    server: Option<Component>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Component {
    pub(crate) version: String,
    #[serde(default)]
    pub(crate) api_version: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Versions {
    pub(crate) client: Component,
    pub(crate) server: Component,
}

/// Client and engine versions; an unreachable engine is an error that says how to fix it.
pub(crate) fn versions() -> Result<Versions> {
    ensure_cli()?;
    let format = "{{json .}}";
    let out = docker(["version", "--format"])
        .arg(format)
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
    pub(crate) server_version: String,
    /// `overlay2` (classic store) or `overlayfs` (containerd snapshotter) and others.
    pub(crate) driver: String,
    #[serde(default)]
    pub(crate) driver_status: Option<Vec<(String, String)>>,
    /// The engine's data directory (on the engine's machine), e.g. `/var/lib/docker`.
    #[serde(default)]
    pub docker_root_dir: String,
    /// `linux` (or `windows`).
    #[serde(default, rename = "OSType")]
    pub(crate) os_type: String,
    /// The engine's CPU as its kernel names it: `x86_64`, `aarch64`.
    #[serde(default)]
    pub(crate) architecture: String,
}

impl Info {
    /// True when the engine keeps images in containerd's content store (the containerd snapshotter).
    pub fn containerd_store(&self) -> bool {
        self.driver_status
            .iter()
            .flatten()
            .any(|(k, v)| k == "driver-type" && v.starts_with("io.containerd.snapshotter"))
    }

    /// The engine's native platform as buildx names it, e.g. `linux/amd64`.
    pub fn native_platform(&self) -> String {
        let arch = match self.architecture.as_str() {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "armv7l" => "arm/v7",
            "i686" | "i386" => "386",
            "ppc64le" => "ppc64le",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            other => other,
        };
        let os = if self.os_type.is_empty() {
            "linux"
        } else {
            &self.os_type
        };
        format!("{os}/{arch}")
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

/// The engine's facts; an unreachable engine is the same clear error as in [`versions`]. One
/// engine call when the engine answers (commands with a speed target call this first).
pub fn info() -> Result<Info> {
    ensure_cli()?;
    let format = "{{json .}}";
    let out = docker(["info", "--format"])
        .arg(format)
        .output()
        .context("running `docker info`")?;
    if !out.status.success() {
        // Let `versions` say why (no engine at DOCKER_HOST …) before the raw error.
        versions()?;
        bail!(
            "`docker info` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    serde_json::from_str(&String::from_utf8_lossy(&out.stdout))
        .context("parsing `docker info` output")
}

/// The buildx plugin's version, or None when it is not installed.
pub(crate) fn buildx_version() -> Option<String> {
    let out = docker(["buildx", "version"]).read().ok()?;
    // "github.com/docker/buildx 0.29.1+ds1 <commit>"
    out.split_whitespace().nth(1).map(str::to_owned)
}

pub(crate) fn ensure_buildx() -> Result<String> {
    buildx_version().ok_or_else(|| {
        anyhow::anyhow!(
            "docker buildx is not installed: install the buildx plugin (Debian/Ubuntu: `apt-get install \
             docker-buildx`; docker-ce: `docker-buildx-plugin`; Docker Desktop ships it)"
        )
    })
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Builder {
    pub(crate) name: String,
    pub(crate) driver: String,
    #[serde(default)]
    pub(crate) current: bool,
    #[serde(default)]
    pub(crate) nodes: Vec<BuilderNode>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct BuilderNode {
    /// What the node runs, natively or emulated (BuildKit finds the emulators itself).
    #[serde(default)]
    pub(crate) platforms: Vec<String>,
    /// Its BuildKit's version (the docker driver's is the engine's own, which may not know it).
    #[serde(default)]
    pub(crate) version: String,
}

impl Builder {
    /// Every platform a node of this builder runs.
    pub(crate) fn platforms(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .nodes
            .iter()
            .flat_map(|n| n.platforms.clone())
            .collect();
        all.dedup();
        all
    }
}

/// The platforms the engine itself runs, natively or through the emulators of its host (the
/// BuildKit inside it finds them the same way containers will use them): its `docker`-driver
/// builder, named after the current docker context. None when that builder is not listed.
pub(crate) fn engine_platforms() -> Result<Option<Vec<String>>> {
    let context = docker(["context", "show"])
        .read()
        .context("running `docker context show`")?;
    let Ok(b) = builder(Some(context.trim())) else {
        return Ok(None);
    };
    Ok((b.driver == "docker").then(|| b.platforms()))
}

/// The builder `name`, or the active one.
pub(crate) fn builder(name: Option<&str>) -> Result<Builder> {
    let out = docker(["buildx", "ls", "--format", "json"])
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

/// The `docker context` whose engine runs `builder`, when that is not the current context: buildx
/// lists every context as a `docker`-driver builder of the same name, but builds on it only with
/// `docker --context NAME`. None for the current engine's builder and for other drivers
/// (docker-container, kubernetes, remote), which `--builder NAME` reaches.
pub(crate) fn builder_context(builder: &Builder) -> Result<Option<String>> {
    if builder.driver != "docker" {
        return Ok(None);
    }
    let current = docker(["context", "show"])
        .read()
        .context("running `docker context show`")?;
    Ok((builder.name != current.trim()).then(|| builder.name.clone()))
}

/// Whether a builder can export build cache (`--cache-to`). The `docker` driver can only with
/// the containerd image store; the container, kubernetes and remote drivers always can.
pub(crate) fn can_export_cache(builder: &Builder, info: &Info) -> bool {
    builder.driver != "docker" || info.containerd_store()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageInspect {
    pub id: String,
    #[serde(default)]
    pub repo_tags: Vec<String>,
    #[serde(default)]
    pub(crate) architecture: String,
    #[serde(default)]
    pub(crate) os: String,
    #[serde(default)]
    pub(crate) variant: Option<String>,
    pub config: ImageConfig,
    #[serde(rename = "RootFS")]
    pub(crate) root_fs: RootFs,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageConfig {
    #[serde(default)]
    pub(crate) user: String,
    #[serde(default)]
    pub(crate) env: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub healthcheck: Option<Healthcheck>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Healthcheck {
    #[serde(default)]
    pub(crate) test: Option<Vec<String>>,
    /// Nanoseconds between probes (None: the engine's default, 30 s).
    #[serde(default)]
    pub interval: Option<u64>,
    /// Nanoseconds one probe may take (0 or absent: the engine's default, 30 s).
    #[serde(default)]
    pub(crate) timeout: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct RootFs {
    #[serde(default)]
    pub(crate) layers: Vec<String>,
}

impl ImageInspect {
    /// `os/arch[/variant]` of the image's config.
    pub(crate) fn platform(&self) -> String {
        let mut p = format!("{}/{}", self.os, self.architecture);
        if let Some(v) = self.variant.as_deref().filter(|v| !v.is_empty()) {
            p.push('/');
            p.push_str(v);
        }
        p
    }
}

/// Equal platforms after normalising (`linux/arm64/v8` = `linux/arm64`, `aarch64` = `arm64`,
/// `x86_64` = `amd64`).
pub(crate) fn same_platform(a: &str, b: &str) -> bool {
    fn norm(p: &str) -> (String, String, String) {
        let mut parts = p.trim().split('/').map(str::to_ascii_lowercase);
        let os = parts.next().unwrap_or_default();
        let arch = match parts.next().unwrap_or_default().as_str() {
            "aarch64" => "arm64".to_string(),
            "x86_64" | "x86-64" => "amd64".to_string(),
            other => other.to_string(),
        };
        let variant = match (arch.as_str(), parts.next().unwrap_or_default().as_str()) {
            ("arm64", "v8") | ("amd64", "v1") => String::new(),
            (_, v) => v.to_string(),
        };
        (os, arch, variant)
    }
    norm(a) == norm(b)
}

/// Inspects several images with one engine call. Images that do not exist are absent from the map.
pub fn image_inspect(refs: &[String]) -> Result<BTreeMap<String, ImageInspect>> {
    if refs.is_empty() {
        return Ok(BTreeMap::new());
    }
    let out = docker(["image", "inspect"])
        .args(refs)
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

/// What the engine knows of one platform's image in a local image (an index, or an image of
/// that platform): `docker image inspect --platform`. None when the image or the platform is not
/// there.
pub(crate) fn image_inspect_platform(image: &str, platform: &str) -> Result<Option<ImageInspect>> {
    let out = docker(["image", "inspect", "--platform"])
        .arg(platform)
        .arg(image)
        .output()
        .with_context(|| format!("running `docker image inspect --platform {platform} {image}`"))?;
    if !out.status.success() {
        return Ok(None);
    }
    let mut found: Vec<ImageInspect> = serde_json::from_slice(&out.stdout)
        .context("parsing `docker image inspect --platform` output")?;
    Ok((!found.is_empty()).then(|| found.remove(0)))
}

/// The image's ID, or None when it does not exist locally.
pub fn image_id(image: &str) -> Result<Option<String>> {
    Ok(image_inspect(&[image.to_string()])?
        .remove(image)
        .map(|i| i.id))
}

/// Whether a local image provides a platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LocalPlatform {
    Provided,
    /// It exists locally, but not for this platform; `default` is the one it has (or shows first).
    Missing {
        default: String,
    },
    /// No such image in the local store (a build would pull it).
    NotLocal,
}

/// Whether the local image `image` provides `platform` (`os/arch[/variant]`): `docker image
/// inspect --platform` (Docker ≥ 28), else the platform of its config.
pub(crate) fn local_platform(image: &str, platform: &str) -> Result<LocalPlatform> {
    let out = inspect_platform(image, platform)?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        return Ok(LocalPlatform::Provided);
    }
    let Some(found) = image_inspect(&[image.to_string()])?.remove(image) else {
        return Ok(LocalPlatform::NotLocal);
    };
    let default = found.platform();
    if stderr.contains("does not provide the specified platform") {
        return Ok(LocalPlatform::Missing { default });
    }
    // An engine or CLI without `--platform` here: the image's own platform decides.
    Ok(if same_platform(&default, platform) {
        LocalPlatform::Provided
    } else {
        LocalPlatform::Missing { default }
    })
}

/// `docker image inspect --platform PLATFORM --format {{.Id}} IMAGE`, its status unchecked: the
/// ID of that platform's image on stdout, or why not on stderr.
fn inspect_platform(image: &str, platform: &str) -> Result<std::process::Output> {
    let format = "{{.Id}}";
    docker(["image", "inspect", "--platform"])
        .arg(platform)
        .arg("--format")
        .arg(format)
        .arg(image)
        .output()
        .with_context(|| format!("running `docker image inspect --platform {platform} {image}`"))
}

/// `docker tag SOURCE TARGET` for each target.
pub(crate) fn tag_image(source: &str, targets: &[String]) -> Result<()> {
    for target in targets {
        docker(["tag"])
            .arg(source)
            .arg(target)
            .run()
            .with_context(|| format!("tagging {source} as {target}"))?;
    }
    Ok(())
}

/// `docker image rm NAME` for one tag, on the
/// engine of `context` (`DOCKER_CONTEXT`) or the default one; a tag that does not exist is not
/// an error.
pub(crate) fn untag_image(context: Option<&str>, name: &str) -> Result<()> {
    let mut cmd = docker(["image", "rm", name]);
    if let Some(context) = context {
        cmd = cmd.env("DOCKER_CONTEXT", context);
    }
    remove(cmd, &format!("the tag {name}"), "No such image")
}

/// Runs a `docker … rm`; docker's `gone` message (already removed) is no error.
fn remove(cmd: Cmd, what: &str, gone: &str) -> Result<()> {
    let out = cmd
        .output()
        .with_context(|| format!("running `{}`", cmd.display()))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && !stderr.contains(gone) {
        bail!("cannot remove {what}: {}", stderr.trim());
    }
    Ok(())
}

/// The ID of one platform's image in a local image (a multi-platform index, or a single image of
/// that platform): `docker image inspect --platform`. None when the image or that platform is
/// not there.
pub(crate) fn platform_image_id(image: &str, platform: &str) -> Result<Option<String>> {
    let out = inspect_platform(image, platform)?;
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Ok((out.status.success() && id.starts_with("sha256:")).then_some(id))
}

/// The disk usage the engine reports for each entry of an image's config history, oldest first
/// (`docker history`; 0 for entries without a layer). On the containerd store it is the usage of
/// each layer's snapshot, counted in file-system blocks.
pub(crate) fn history_usage(image: &str, platform: Option<&str>) -> Result<Vec<u64>> {
    let format = "{{.Size}}";
    let platform: Vec<String> = platform
        .map(|p| format!("--platform={p}"))
        .into_iter()
        .collect();
    let out = docker(["history", "--no-trunc", "--human=false", "--format"])
        .arg(format)
        .args(platform)
        .arg(image)
        .read()
        .with_context(|| format!("running `docker history {image}`"))?;
    let mut sizes = out
        .lines()
        .map(|line| {
            line.trim().parse::<u64>().with_context(|| {
                format!("`docker history {image}` printed `{line}` where a size in bytes belongs")
            })
        })
        .collect::<Result<Vec<u64>>>()?;
    sizes.reverse();
    Ok(sizes)
}

/// A running `docker` whose stdout is a tar stream (an OCI image layout: blobs, `index.json`).
/// Read it to the end, then call [`TarStream::finish`] for the exit status; dropping it early
/// kills `docker`.
pub(crate) struct TarStream {
    reader: crate::process::Reader,
    /// The command, for messages.
    what: String,
}

/// Starts `docker save` for several images at once (shared blobs are written once).
pub(crate) fn save(refs: &[String]) -> Result<TarStream> {
    ensure_cli()?;
    let what = format!("docker save {}", refs.join(" "));
    let reader = docker(["save"])
        .args(refs)
        .reader()
        .with_context(|| format!("starting `{what}`"))?;
    Ok(TarStream { reader, what })
}

/// `FROM image` (its `platform`) exported by BuildKit as an OCI layout on stdout, each layer
/// compressed anew with the buildx output options `compression`: the blobs a push with those
/// options sends. Nothing is stored or tagged.
pub(crate) fn export_recompressed(
    image: &str,
    platform: &str,
    compression: &str,
) -> Result<TarStream> {
    let what = format!("docker buildx build (FROM {image}, {compression})");
    let reader = recompress(image, platform)?
        .arg(format!("--output=type=oci,dest=-,{compression}"))
        .reader()
        .with_context(|| format!("starting `{what}`"))?;
    Ok(TarStream { reader, what })
}

/// [`export_recompressed`] into the image store instead, tagged `name` (the caller removes the
/// tag): what the engine then knows of that image.
pub(crate) fn store_recompressed(
    image: &str,
    platform: &str,
    compression: &str,
    name: &str,
) -> Result<ImageInspect> {
    let out = recompress(image, platform)?
        .arg(format!("--output=type=image,name={name},{compression}"))
        .output()
        .context("running `docker buildx build`")?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let why = crate::util::last_line(&stderr).trim_start_matches("ERROR: ");
        bail!("BuildKit could not compress the layers of {image} anew: {why}");
    }
    image_inspect(&[name.to_string()])?
        .remove(name)
        .with_context(|| format!("BuildKit stored no image {name}"))
}

/// `docker buildx build` of a Dockerfile that is `FROM image` alone, without attestations.
fn recompress(image: &str, platform: &str) -> Result<Cmd> {
    ensure_cli()?;
    ensure_buildx()?;
    Ok(
        docker(["buildx", "build", "--progress=quiet", "--provenance=false"])
            .args(["--sbom=false", "--platform", platform, "-"])
            .stdin(format!("FROM {image}\n")),
    )
}

impl std::io::Read for TarStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.reader.read(buf)
    }
}

impl TarStream {
    /// Reads what is left and fails with docker's message when it did not succeed.
    pub(crate) fn finish(self) -> Result<()> {
        let output = self.reader.finish()?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let why = crate::util::last_line(&stderr).trim_start_matches("ERROR: ");
            bail!("`{}` failed ({}): {why}", self.what, output.status);
        }
        Ok(())
    }
}

/// `docker load --input ARCHIVE` (an archive of `docker save`).
pub(crate) fn load(archive: &camino::Utf8Path) -> Result<()> {
    let args = [
        "load".to_string(),
        "--quiet".into(),
        "--input".into(),
        archive.to_string(),
    ];
    stdout_of(
        &args,
        "`docker load`",
        &format!("`docker load` of {} failed", crate::util::shown(archive)),
    )?;
    Ok(())
}

/// What `docker buildx build --call=check,format=json` reported: BuildKit's own Dockerfile checks.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct BuildCheck {
    #[serde(default)]
    pub(crate) warnings: Option<Vec<CheckWarning>>,
    /// Set when the Dockerfile could not be evaluated (a parse error, an unresolvable `FROM`).
    #[serde(default, rename = "buildError")]
    pub(crate) build_error: Option<CheckError>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CheckWarning {
    pub(crate) rule_name: String,
    #[serde(default)]
    pub(crate) description: String,
    #[serde(default)]
    pub(crate) url: Option<String>,
    #[serde(default)]
    pub(crate) detail: String,
    #[serde(default)]
    pub(crate) location: Option<CheckLocation>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct CheckError {
    pub(crate) message: String,
    #[serde(default)]
    pub(crate) location: Option<CheckLocation>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct CheckLocation {
    #[serde(default)]
    pub(crate) ranges: Vec<CheckRange>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct CheckRange {
    #[serde(default)]
    pub(crate) start: CheckPosition,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct CheckPosition {
    #[serde(default)]
    pub(crate) line: u32,
}

impl CheckLocation {
    /// The first line the location covers (1-based), if any.
    pub(crate) fn line(&self) -> Option<u32> {
        self.ranges.first().map(|r| r.start.line).filter(|&l| l > 0)
    }
}

/// Parses the JSON `--call=check,format=json` prints.
pub(crate) fn parse_build_check(json: &str) -> Result<BuildCheck> {
    serde_json::from_str(json).context("parsing the JSON of `docker buildx build --call=check`")
}

/// Runs `docker <args>` (a `buildx build --call=check,format=json …` argv) in `dir` and returns
/// its verdict. Exit 1 with a report means "the check found something"; anything else is an
/// error that quotes docker.
pub(crate) fn build_check_in(dir: &camino::Utf8Path, args: &[String]) -> Result<BuildCheck> {
    let out = docker(args)
        .dir(dir)
        .output()
        .context("running `docker buildx build --call=check`")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code();
    if matches!(code, Some(0 | 1)) && stdout.trim_start().starts_with('{') {
        return parse_build_check(&stdout);
    }
    bail!(
        "`docker {}` failed ({}): {}",
        args.join(" "),
        out.status,
        stderr.trim().lines().last().unwrap_or("no output")
    )
}

/// The engine every later docker call of this process goes to, when not the current context's.
#[derive(Clone, Debug)]
enum Target {
    /// Another `docker context` (a build on that context's builder).
    Context(String),
    /// An engine's address (`unix://…`): a private engine the tool started.
    Host(String),
}

static TARGET: std::sync::Mutex<Option<Target>> = std::sync::Mutex::new(None);

fn set_target(target: Option<Target>) -> Option<Target> {
    let mut guard = TARGET.lock().unwrap_or_else(|p| p.into_inner());
    std::mem::replace(&mut *guard, target)
}

/// Sends every later docker call of this process to the engine of `context` (a build on
/// another context's builder: its image store and build records are there).
pub(crate) fn use_context(context: &str) {
    set_target(Some(Target::Context(context.to_string())));
}

/// Sends every docker call of this process to the engine at `host` until the guard drops (then
/// they go where they went before).
pub(crate) fn use_host(host: &str) -> HostGuard {
    HostGuard {
        previous: set_target(Some(Target::Host(host.to_string()))),
    }
}

/// Restores the engine docker calls went to before [`use_host`].
pub(crate) struct HostGuard {
    previous: Option<Target>,
}

impl Drop for HostGuard {
    fn drop(&mut self) {
        set_target(self.previous.take());
    }
}

/// A `docker` process with these arguments.
fn docker<I: IntoIterator<Item = S>, S: AsRef<std::ffi::OsStr>>(args: I) -> Cmd {
    let cmd = Cmd::new("docker").args(args);
    let target = TARGET.lock().unwrap_or_else(|p| p.into_inner()).clone();
    match target {
        Some(Target::Context(context)) => cmd.env("DOCKER_CONTEXT", context),
        // The default context is the one that follows DOCKER_HOST.
        Some(Target::Host(host)) => cmd
            .env("DOCKER_HOST", host)
            .env("DOCKER_CONTEXT", "default"),
        None => cmd,
    }
}

/// Where a build's output goes.
pub(crate) enum BuildOutput<'a> {
    /// Straight to stderr: BuildKit draws its TTY progress there, and its error stays on screen.
    Stderr,
    /// stdout and stderr merged, handed over line by line (plain progress).
    Lines(&'a mut dyn FnMut(&str)),
}

/// Runs a prepared `docker buildx build …` argv (it starts with `buildx build`) to the end and
/// returns its exit status. The build is killed when this returns early (a read error) and on
/// Ctrl-C / SIGTERM. buildx is asked to put BuildKit's warnings into the metadata file
/// (`buildx.build.warnings`), where [`build_warnings`] reads them.
pub(crate) fn buildx_build(
    argv: &[String],
    output: BuildOutput,
) -> Result<std::process::ExitStatus> {
    buildx_build_in(None, argv, output)
}

/// [`buildx_build`] with the CLI pointed at another `docker context` (`docker --context NAME
/// buildx build …`): the only way buildx uses the `docker` driver of a context that is not the
/// current one (it refuses `--builder NAME` for those).
pub(crate) fn buildx_build_in(
    context: Option<&str>,
    argv: &[String],
    output: BuildOutput,
) -> Result<std::process::ExitStatus> {
    if argv.len() < 2 || argv[0] != "buildx" || argv[1] != "build" {
        bail!("not a `docker buildx build` argv: {argv:?}");
    }
    let mut full: Vec<String> = context
        .map(|c| format!("--context={c}"))
        .into_iter()
        .collect();
    full.extend(argv.iter().cloned());
    let build = docker(&full).env("BUILDX_METADATA_WARNINGS", "1");
    match output {
        BuildOutput::Stderr => build.stream().context("running docker buildx"),
        BuildOutput::Lines(on_line) => build.lines(on_line).context("running docker buildx"),
    }
}

/// One warning BuildKit reported for a build (`buildx.build.warnings` of the metadata file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BuildWarning {
    /// `InvalidBaseImagePlatform: Base image … was pulled with platform "linux/amd64", …`
    pub(crate) short: String,
    pub(crate) detail: Vec<String>,
}

/// The warnings in a buildx metadata document (base64 in the file, decoded here).
pub(crate) fn build_warnings(metadata: &serde_json::Value) -> Vec<BuildWarning> {
    let decode = |v: &serde_json::Value| {
        v.as_str()
            .and_then(crate::util::base64_decode)
            .map(|b| String::from_utf8_lossy(&b).trim().to_string())
    };
    metadata["buildx.build.warnings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|w| {
            Some(BuildWarning {
                short: decode(&w["short"])?,
                detail: w["detail"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(decode)
                    .collect(),
            })
        })
        .collect()
}

/// The plain progress log of a finished build (`docker buildx history logs`), for any progress
/// mode the build ran with. `build_ref` is `builder/node/id` as in buildx's metadata file.
pub(crate) fn build_log(builder: Option<&str>, build_ref: &str) -> Result<String> {
    let id = build_ref.rsplit('/').next().unwrap_or(build_ref);
    let builder_flag: Vec<String> = builder
        .map(|b| format!("--builder={b}"))
        .into_iter()
        .collect();
    let out = docker(["buildx", "history", "logs"])
        .args(builder_flag)
        .arg(id)
        .output_checked()
        .with_context(|| format!("running `docker buildx history logs {id}`"))?;
    // buildx writes the log to stderr.
    Ok(String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout))
}

// ---------------------------------------------------------------------------------------------
// Containers: run detached, inspect state and health, exec, logs, remove. These take no `Shell`
// so that cleanup guards (which run on another thread from the signal handler) can call them.

/// `docker <args>` (args start with `run --detach …`); returns the new container's ID.
pub(crate) fn run_detached(args: &[String]) -> Result<String> {
    let out = stdout_of(args, "`docker run`", "`docker run` failed")?;
    let stdout = String::from_utf8_lossy(&out);
    // The ID is the last line; warnings (e.g. "no swap limit support") go to stderr.
    match stdout.lines().map(str::trim).rfind(|l| !l.is_empty()) {
        Some(id) => Ok(id.to_owned()),
        None => bail!("`docker run` printed no container ID"),
    }
}

/// `.State` of `docker container inspect`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ContainerState {
    /// created, running, paused, restarting, removing, exited or dead.
    #[serde(default)]
    pub(crate) status: String,
    #[serde(default)]
    pub(crate) running: bool,
    #[serde(default, rename = "OOMKilled")]
    pub(crate) oom_killed: bool,
    #[serde(default)]
    pub(crate) exit_code: i64,
    /// The engine's error starting the container, if any.
    #[serde(default)]
    pub(crate) error: String,
    #[serde(default)]
    pub(crate) health: Option<Health>,
}

/// `.State.Health`: present when the container has a health check.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Health {
    /// starting, healthy or unhealthy.
    #[serde(default)]
    pub(crate) status: String,
    #[serde(default)]
    pub(crate) failing_streak: u32,
    /// The last probes (the engine keeps five), oldest first.
    #[serde(default)]
    pub(crate) log: Option<Vec<HealthProbe>>,
}

#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct HealthProbe {
    /// RFC 3339 timestamps from the engine.
    #[serde(default)]
    pub(crate) start: String,
    #[serde(default)]
    pub(crate) end: String,
    #[serde(default)]
    pub(crate) exit_code: i64,
    #[serde(default)]
    pub(crate) output: String,
}

/// The state of a container; an error when it does not exist.
pub(crate) fn container_state(name: &str) -> Result<ContainerState> {
    let args = [
        "container".to_string(),
        "inspect".into(),
        "--format".into(),
        "{{json .State}}".into(),
        name.into(),
    ];
    let out = stdout_of(
        &args,
        &format!("`docker container inspect {name}`"),
        &format!("cannot inspect container {name}"),
    )?;
    let stdout = String::from_utf8_lossy(&out);
    serde_json::from_str(stdout.trim())
        .with_context(|| format!("parsing the state of container {name}: {}", stdout.trim()))
}

/// What a command run in a container did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ExecOutput {
    /// Exit code; -1 when it timed out or was killed.
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    pub(crate) timed_out: bool,
}

impl ExecOutput {
    /// True when the command's program does not exist in the container (docker exec's 126/127
    /// with the runtime's "executable file not found").
    pub(crate) fn missing_executable(&self) -> bool {
        matches!(self.code, 126 | 127)
            && [&self.stdout, &self.stderr].iter().any(|s| {
                s.contains("executable file not found") || s.contains("no such file or directory")
            })
    }
}

/// `docker exec [--user USER] NAME CMD…`, killed after `timeout`.
pub(crate) fn exec(
    name: &str,
    user: Option<&str>,
    cmd: &[String],
    timeout: std::time::Duration,
) -> Result<ExecOutput> {
    let mut exec = docker(["exec"]);
    if let Some(user) = user {
        exec = exec.args(["--user", user]);
    }
    let out = exec
        .arg(name)
        .args(cmd)
        .grace(std::time::Duration::ZERO)
        .output_within(timeout)
        .with_context(|| format!("running `docker exec` in {name}"))?;
    Ok(match out {
        Some(out) => ExecOutput {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            timed_out: false,
        },
        None => ExecOutput {
            code: -1,
            timed_out: true,
            ..ExecOutput::default()
        },
    })
}

/// The last `lines` lines of a container's output, stdout and stderr interleaved.
pub(crate) fn logs_tail(name: &str, lines: usize) -> Result<String> {
    let out = docker(["logs", "--tail", &lines.to_string(), name])
        .output_merged()
        .with_context(|| format!("running `docker logs {name}`"))?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `docker image rm ID` of an image a command made and no longer needs; an image that is gone,
/// or still used by a container or another tag, is left as it is (not an error).
pub fn remove_image(id: &str) -> Result<()> {
    docker(["image", "rm", id])
        .output()
        .with_context(|| format!("running `docker image rm {id}`"))?;
    Ok(())
}

/// Removes every tag of a repository a command made (`docker image rm` of each).
pub fn remove_repository_tags(repository: &str) -> Result<()> {
    let out = docker([
        "image",
        "ls",
        "--format",
        "{{.Repository}}:{{.Tag}}",
        repository,
    ])
    .output()
    .with_context(|| format!("running `docker image ls {repository}`"))?;
    for tag in String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
    {
        remove_image(tag)?;
    }
    Ok(())
}

/// A container's ID, name and labels.
#[derive(Debug, Clone)]
pub(crate) struct ContainerFacts {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) labels: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ContainerDoc {
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    config: ContainerConfigDoc,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ContainerConfigDoc {
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

/// Every container (running or not) that has the label `key`, with its labels.
pub(crate) fn containers_labelled(key: &str) -> Result<Vec<ContainerFacts>> {
    let filter = format!("label={key}");
    let ids = docker(["ps", "--all", "--quiet", "--no-trunc", "--filter"])
        .arg(filter)
        .read()
        .context("running `docker ps`")?;
    let ids: Vec<&str> = ids.split_whitespace().collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    // A container may be removed between the two calls: inspect what is left.
    let out = docker(["container", "inspect"])
        .args(ids)
        .output()
        .context("running `docker container inspect`")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if stdout.trim().is_empty() {
        return Ok(Vec::new());
    }
    let docs: Vec<ContainerDoc> =
        serde_json::from_str(&stdout).context("parsing `docker container inspect` output")?;
    Ok(docs
        .into_iter()
        .map(|d| ContainerFacts {
            id: d.id,
            name: d.name.trim_start_matches('/').to_string(),
            labels: d.config.labels.unwrap_or_default(),
        })
        .collect())
}

/// Every image that has all the labels `keys`.
pub(crate) fn images_labelled(keys: &[&str]) -> Result<Vec<ImageInspect>> {
    let filters: Vec<String> = keys
        .iter()
        .flat_map(|k| ["--filter".to_string(), format!("label={k}")])
        .collect();
    let ids = docker(["image", "ls", "--quiet", "--no-trunc"])
        .args(filters)
        .read()
        .context("running `docker image ls`")?;
    let mut ids: Vec<String> = ids.split_whitespace().map(str::to_owned).collect();
    ids.sort();
    ids.dedup();
    Ok(image_inspect(&ids)?.into_values().collect())
}

/// `docker image rm REF…`: untags (and removes the image with its last tag). An image a
/// container still uses stays, with a warning.
pub(crate) fn remove_images(refs: &[String]) -> Result<()> {
    if refs.is_empty() {
        return Ok(());
    }
    let out = docker(["image", "rm"])
        .args(refs)
        .output()
        .context("running `docker image rm`")?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let problems: Vec<&str> = stderr
            .lines()
            // Gone already, another run removed it (the classic store's words, then containerd's).
            .filter(|l| !l.contains("No such image") && !l.contains("NotFound"))
            .collect();
        if !problems.is_empty() {
            warning!("cannot remove {}: {}", refs.join(", "), problems.join("; "));
        }
    }
    Ok(())
}

/// `docker rm --force --volumes NAME`; a container that does not exist is not an error.
pub(crate) fn remove_container(name: &str) -> Result<()> {
    remove(
        docker(["rm", "--force", "--volumes", name]),
        &format!("container {name}"),
        "No such container",
    )
}

// ---------------------------------------------------------------------------------------------
// Another engine, named by its DOCKER_HOST (`bench pull`'s private engine): pulls, and the layers
// they stored. No `Shell`: the engine is the one named, not the context's.

/// `docker -H HOST pull REFERENCE`, its progress handed over line by line (`<id>: Download
/// complete`, …); killed when this returns early and on Ctrl-C.
pub fn pull_on(
    host: &str,
    reference: &str,
    on_line: &mut dyn FnMut(&str),
) -> Result<std::process::ExitStatus> {
    docker(["-H", host, "pull", reference])
        .lines(on_line)
        .with_context(|| format!("running `docker pull {reference}`"))
}

/// The diff IDs of `reference` on the engine at `host` (`RootFS.Layers`), bottom first.
pub fn layers_on(host: &str, reference: &str) -> Result<Vec<String>> {
    let args = [
        "-H".to_string(),
        host.into(),
        "image".into(),
        "inspect".into(),
        "--format".into(),
        "{{json .RootFS.Layers}}".into(),
        reference.into(),
    ];
    let out = stdout_of(
        &args,
        &format!("`docker image inspect {reference}`"),
        &format!("`docker image inspect {reference}` on {host} failed"),
    )?;
    serde_json::from_slice(&out).with_context(|| format!("parsing the layers of {reference}"))
}

/// The stdout of `docker ARGS` (`what` names the command), or `failed: <its stderr>`.
fn stdout_of(args: &[String], what: &str, failed: &str) -> Result<Vec<u8>> {
    let out = docker(args)
        .output()
        .with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        bail!("{failed}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(out.stdout)
}

// ---------------------------------------------------------------------------------------------
// Registries: manifests read with `docker buildx imagetools`, which asks the registry directly
// (no pull, nothing stored locally) with the CLI's credentials; loopback registries over HTTP.

/// The digest of the manifest or index `reference` points at in its registry.
pub(crate) fn registry_digest(reference: &str) -> Result<String> {
    let format = "{{json .Manifest}}";
    let out = imagetools(&["--format", format, reference])?;
    let doc: serde_json::Value = serde_json::from_str(&out)
        .with_context(|| format!("parsing `imagetools inspect` of {reference}"))?;
    doc["digest"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("the registry named no digest for {reference}"))
}

/// The manifest or index `reference` points at, as the registry serves it (`--raw`).
pub(crate) fn registry_manifest(reference: &str) -> Result<serde_json::Value> {
    let out = imagetools(&["--raw", reference])?;
    serde_json::from_str(&out).with_context(|| format!("parsing the manifest of {reference}"))
}

/// The image config (`os`, `architecture`, …) of a single-platform `reference`.
pub(crate) fn registry_image_config(reference: &str) -> Result<serde_json::Value> {
    let format = "{{json .Image}}";
    let out = imagetools(&["--format", format, reference])?;
    serde_json::from_str(&out).with_context(|| format!("parsing the image config of {reference}"))
}

/// `docker buildx imagetools create …` (argv from `buildx`): writes an index in the registry
/// from manifests already there (no layer is copied through this machine).
pub(crate) fn imagetools_create(argv: &[String]) -> Result<()> {
    ensure_cli()?;
    if argv.len() < 3 || argv[..3] != ["buildx", "imagetools", "create"] {
        bail!("not a `docker buildx imagetools create` argv: {argv:?}");
    }
    let out = docker(argv)
        .output()
        .context("running `docker buildx imagetools create`")?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let why = crate::util::last_line(&stderr).trim_start_matches("ERROR: ");
        bail!("`docker buildx imagetools create` failed: {why}");
    }
    Ok(())
}

/// `docker buildx imagetools inspect ARGS… REFERENCE` (the reference last); its stdout.
fn imagetools(args: &[&str]) -> Result<String> {
    ensure_cli()?;
    let reference = args.last().copied().unwrap_or_default();
    let out = docker(["buildx", "imagetools", "inspect"])
        .args(args)
        .output()
        .with_context(|| format!("running `docker buildx imagetools inspect {reference}`"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let why = crate::util::last_line(&stderr).trim_start_matches("ERROR: ");
        bail!("cannot read {reference} from its registry: {why}");
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::{build_warnings, parse_cli_version, same_platform};

    #[test]
    fn platforms_compare_after_normalising() {
        assert!(same_platform("linux/amd64", "linux/amd64"));
        assert!(same_platform("linux/arm64/v8", "linux/arm64"));
        assert!(same_platform("linux/aarch64", "linux/arm64"));
        assert!(same_platform("linux/x86_64", "linux/amd64"));
        assert!(!same_platform("linux/amd64", "linux/arm64"));
        assert!(!same_platform("linux/arm/v7", "linux/arm/v6"));
        assert!(!same_platform("linux/amd64", "windows/amd64"));
    }

    #[test]
    fn build_warnings_are_decoded_from_the_metadata_file() {
        // As buildx 0.29 writes them with BUILDX_METADATA_WARNINGS=1.
        let doc: serde_json::Value = serde_json::from_str(
            r#"{"buildx.build.ref": "default/default/x", "buildx.build.warnings": [{
                "vertex": "sha256:35",
                "level": 1,
                "short": "SW52YWxpZEJhc2VJbWFnZVBsYXRmb3JtOiBCYXNlIGltYWdlIGxvY2FsaG9zdC9kZWJpYW46dHJpeGllLXNsaW0gd2FzIHB1bGxlZCB3aXRoIHBsYXRmb3JtICJsaW51eC9hbWQ2NCIsIGV4cGVjdGVkICJsaW51eC9hcm02NCIgZm9yIGN1cnJlbnQgYnVpbGQgKGxpbmUgMSk=",
                "detail": ["QmFzZSBpbWFnZSBwbGF0Zm9ybSBkb2VzIG5vdCBtYXRjaCBleHBlY3RlZCB0YXJnZXQgcGxhdGZvcm0="]
            }]}"#,
        )
        .unwrap();
        let warnings = build_warnings(&doc);
        assert_eq!(warnings.len(), 1);
        assert_eq!(
            warnings[0].short,
            "InvalidBaseImagePlatform: Base image localhost/debian:trixie-slim was pulled with \
             platform \"linux/amd64\", expected \"linux/arm64\" for current build (line 1)"
        );
        assert_eq!(
            warnings[0].detail,
            ["Base image platform does not match expected target platform"]
        );
        assert!(build_warnings(&serde_json::json!({})).is_empty());
    }

    #[test]
    fn cli_versions_are_read_from_the_banner() {
        assert_eq!(
            parse_cli_version("Docker version 26.1.5+dfsg1, build a72d7cd\n").as_deref(),
            Some("26.1.5+dfsg1")
        );
        assert_eq!(
            parse_cli_version("podman version 4.3.1").as_deref(),
            Some("4.3.1")
        );
        assert_eq!(parse_cli_version("Docker version , build x"), None);
        assert_eq!(parse_cli_version("command not found"), None);
    }
}
