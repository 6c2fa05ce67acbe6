//! `cargo xtask base`: the reproducible offline Debian base image the Dockerfiles start from
//! where no registry is reachable (air-gapped sites, CI without Docker Hub), for every platform
//! of `[base].platforms`, as one image index under the configured name.
//!
//! mmdebstrap writes one root filesystem tar per platform (`--architectures`), every timestamp
//! clamped to SOURCE_DATE_EPOCH; a foreign architecture's maintainer scripts run under the
//! kernel's binfmt_misc emulation (QEMU), checked before anything starts. The tars become one
//! index through `FROM scratch` + `ADD rootfs-$TARGETARCH$TARGETVARIANT.tar` under buildx without
//! provenance, which — unlike `docker import`, which stamps the current time — gives the same
//! digest on every run, per platform and for the index.

use anyhow::{bail, Context, Result};
use camino::Utf8Path;
use std::io::{BufRead, BufReader};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::Base;
use crate::ctx::{Ctx, TempDir};
use crate::docker;
use crate::emulation::{self, Support};
use crate::output::{self, progress};
use crate::process::{Cmd, Reader};
use crate::util;

#[derive(clap::Args)]
pub struct Args {
    /// Build only these platforms (comma-separated or repeated) instead of `[base].platforms`;
    /// the index then holds only them.
    #[arg(long, value_delimiter = ',', value_name = "PLATFORM")]
    platform: Vec<String>,
    /// Store the image under this name instead of `[base].image` (e.g. to try a base without
    /// replacing the one builds use).
    #[arg(long, value_name = "IMAGE:TAG")]
    image: Option<String>,
    /// Print the mmdebstrap and build commands without running them.
    #[arg(long)]
    dry_run: bool,
}

/// The Debian mirrors the image's apt sources will name.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Mirrors {
    pub(crate) main: String,
    pub(crate) security: String,
}

/// One platform of the index: its root filesystem and the mmdebstrap run that makes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PlatformPlan {
    pub(crate) platform: String,
    /// Debian's name of the architecture.
    pub(crate) arch: String,
    /// `rootfs-<TARGETARCH><TARGETVARIANT>.tar`: the name the Dockerfile's ADD resolves to.
    pub(crate) tar: String,
    pub(crate) mmdebstrap: Vec<String>,
}

/// The Dockerfile of the index: each platform adds its own tar.
pub(crate) const DOCKERFILE: &str = "FROM scratch\nARG TARGETARCH\nARG TARGETVARIANT\n\
                              ADD rootfs-${TARGETARCH}${TARGETVARIANT}.tar /\nCMD [\"bash\"]\n";

impl Args {
    pub fn run(self, ctx: &Ctx) -> Result<()> {
        let base = self.base(ctx.config()?)?;
        let platforms = self.platforms(&base)?;
        let mirrors = resolve_mirrors(&base);
        if self.dry_run {
            return output::result(&dry_run(&base, &platforms, mirrors.as_ref())?);
        }
        let emulated = preflight(&platforms)?;
        let tmp = TempDir::new(ctx, "base")?;
        let planned = plan(&base, &platforms, mirrors.as_ref(), tmp.path())?;
        for p in &planned {
            progress!("{}", starting(&base, p, mirrors.as_ref(), &emulated));
        }
        run_all(&planned, base.source_date_epoch)?;
        let id = import(&base, &platforms, tmp.path())?;
        output::result(&format!("{id}\n"))
    }

    /// `[base]` of images.toml, under `--image` when given.
    fn base(&self, config: &crate::config::Config) -> Result<Base> {
        let mut base = config.base.clone();
        if let Some(image) = &self.image {
            crate::config::check_reference(image, crate::config::Reference::Tagged)
                .with_context(|| format!("--image {image}"))?;
            base.image = image.clone();
        }
        Ok(base)
    }

    /// `--platform`, else `[base].platforms`; each checked as the config checks its own.
    fn platforms(&self, base: &Base) -> Result<Vec<String>> {
        if self.platform.is_empty() {
            return Ok(base.platforms.clone());
        }
        let mut out: Vec<String> = Vec::new();
        for p in &self.platform {
            crate::config::check_platform(p).with_context(|| format!("--platform {p}"))?;
            emulation::debian_arch(p).with_context(|| format!("--platform {p}"))?;
            if !out.contains(p) {
                out.push(p.clone());
            }
        }
        Ok(out)
    }
}

/// The commands a run would start (`--dry-run`), with the tars in the current directory.
fn dry_run(base: &Base, platforms: &[String], mirrors: Option<&Mirrors>) -> Result<String> {
    let dir = Utf8Path::new(".");
    let mut out = String::new();
    for p in plan(base, platforms, mirrors, dir)? {
        let epoch = base.source_date_epoch;
        let argv = p.mmdebstrap.join(" ");
        out.push_str(&format!("SOURCE_DATE_EPOCH={epoch} mmdebstrap {argv}\n"));
    }
    let iid = util::host_join(dir, "iid");
    let import = import_args(base, platforms, dir, &iid).join(" ");
    out.push_str(&format!("docker {import}\n"));
    Ok(out)
}

/// Everything a run needs, checked before the first mmdebstrap starts: Linux, mmdebstrap, root,
/// docker with buildx, an image store that holds an index, and emulation of every foreign
/// platform. Returns the emulated platforms with their binfmt_misc handler.
fn preflight(platforms: &[String]) -> Result<Vec<(String, String)>> {
    if !cfg!(target_os = "linux") {
        bail!(
            "`cargo xtask base` runs on Linux only (mmdebstrap, as root): build without it, from \
             the official base image the Dockerfiles name, or run it in a Linux VM"
        );
    }
    if which::which("mmdebstrap").is_err() {
        bail!(
            "mmdebstrap is not installed: install it (`apt-get install mmdebstrap` on Debian/Ubuntu) \
             and run `cargo xtask base` again"
        );
    }
    if !util::is_root() {
        bail!("`cargo xtask base` runs mmdebstrap, which needs root here: run it as root (e.g. `sudo -E cargo xtask base`)");
    }
    docker::versions()?;
    docker::ensure_buildx()?;
    if platforms.len() > 1 {
        let info = docker::info()?;
        if !info.containerd_store() {
            bail!(
                "a base for {} platforms ({}) is an image index, which the engine's {} store \
                 cannot hold: enable the containerd image store (`\"features\": \
                 {{\"containerd-snapshotter\": true}}` in /etc/docker/daemon.json, then restart \
                 the engine), or build one platform (`cargo xtask base --platform {}`)",
                platforms.len(),
                platforms.join(", "),
                info.store_name(),
                emulation::host_platform()
            );
        }
    }
    emulated(platforms)
}

/// The foreign platforms with the binfmt_misc handler that runs them; an error naming the fix
/// for one that nothing runs.
fn emulated(platforms: &[String]) -> Result<Vec<(String, String)>> {
    let mut emulated = Vec::new();
    for platform in platforms {
        match emulation::host_support(platform)? {
            Support::Native => {}
            Support::Emulated { handler, .. } => emulated.push((platform.clone(), handler)),
            Support::Missing(why) => bail!(
                "cannot build the base for {platform} on this {} machine: {why}. Fix: {}; or \
                 leave {platform} out (`cargo xtask base --platform {}`)",
                emulation::host_platform(),
                emulation::fix(platform),
                emulation::host_platform()
            ),
        }
    }
    Ok(emulated)
}

/// `mmdebstrap trixie (minbase) for linux/arm64 from http://…, under emulation (…)`.
fn starting(
    base: &Base,
    p: &PlatformPlan,
    mirrors: Option<&Mirrors>,
    emulated: &[(String, String)],
) -> String {
    let from = mirrors.map_or("mmdebstrap's default mirror", |m| m.main.as_str());
    let how = match emulated.iter().find(|(q, _)| *q == p.platform) {
        Some((_, handler)) => {
            format!("under emulation ({handler}): minutes, its maintainer scripts run emulated")
        }
        None => "natively: about a minute".to_string(),
    };
    format!(
        "mmdebstrap {} ({}) for {} from {from}, {how}",
        base.suite, base.variant, p.platform
    )
}

/// Every platform's mmdebstrap at once: an emulated run is mostly one busy core, the native one
/// fits beside it. The first to fail stops the others (SIGTERM, as on Ctrl-C), and its error is
/// the one reported (the others' are those of being stopped).
fn run_all(planned: &[PlatformPlan], epoch: u64) -> Result<()> {
    let running: Mutex<Vec<Arc<Reader>>> = Mutex::new(Vec::new());
    let first_failed: Mutex<Option<String>> = Mutex::new(None);
    let prefixed = planned.len() > 1;
    let mut results: Vec<(String, Result<()>)> = std::thread::scope(|scope| {
        let runs: Vec<_> = planned
            .iter()
            .map(|p| {
                let (running, first_failed) = (&running, &first_failed);
                let run = move || run_one(p, epoch, prefixed, running, first_failed);
                (p.platform.clone(), scope.spawn(run))
            })
            .collect();
        runs.into_iter()
            .map(|(platform, h)| {
                let panicked = || Err(anyhow::anyhow!("the mmdebstrap thread panicked"));
                (platform, h.join().unwrap_or_else(|_| panicked()))
            })
            .collect()
    });
    let first_failed = first_failed.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort_by_key(|(platform, _)| Some(platform) != first_failed.as_ref());
    for (platform, result) in results {
        result.with_context(|| format!("building the {platform} root filesystem"))?;
    }
    Ok(())
}

/// One platform's mmdebstrap; on failure it records itself as the first to fail (unless
/// another was) and stops the others.
fn run_one(
    p: &PlatformPlan,
    epoch: u64,
    prefixed: bool,
    running: &Mutex<Vec<Arc<Reader>>>,
    first_failed: &Mutex<Option<String>>,
) -> Result<()> {
    let prefix = match prefixed {
        true => format!("[{}] ", p.platform),
        false => String::new(),
    };
    let started = Instant::now();
    let result = run_mmdebstrap(&p.mmdebstrap, epoch, &prefix, running);
    match &result {
        Ok(()) => progress!(
            "{}: root filesystem in {:.0} s",
            p.platform,
            started.elapsed().as_secs_f64()
        ),
        Err(_) => {
            first_failed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_or_insert_with(|| p.platform.clone());
            for r in running.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                r.stop();
            }
        }
    }
    result
}

/// The rootfs tars of `dir` as one image under `[base].image`; returns its ID.
fn import(base: &Base, platforms: &[String], dir: &Utf8Path) -> Result<String> {
    std::fs::write(util::host_join(dir, "Dockerfile"), DOCKERFILE)
        .context("writing the base Dockerfile")?;
    let iidfile = util::host_join(dir, "iid");
    let build = import_args(base, platforms, dir, &iidfile);
    progress!("importing as {} ({})", base.image, platforms.join(", "));
    let status = docker::buildx_build(&build, docker::BuildOutput::Stderr)
        .context("building the base image from the rootfs tars")?;
    if !status.success() {
        bail!("building the base image from the rootfs tars failed ({status}; buildx's output is above)");
    }
    let id = std::fs::read_to_string(&iidfile).context("reading the base image ID")?;
    let id = docker::image_id(&base.image)?.unwrap_or_else(|| id.trim().to_string());
    if platforms.len() > 1 {
        for platform in platforms {
            if let Some(digest) = docker::platform_image_id(&base.image, platform)? {
                progress!("{platform}: {digest}");
            }
        }
    }
    Ok(id)
}

/// mmdebstrap, its output on stderr line by line behind `prefix`, started through the cleanup
/// gate in a process group of its own: on Ctrl-C / SIGTERM (and when a sibling failed, through
/// `running`) it gets SIGTERM and time to unmount what it mounted in its chroot (/dev, /proc,
/// /sys) and remove its temp dir; a SIGKILL would leave those mounted.
fn run_mmdebstrap(
    args: &[String],
    epoch: u64,
    prefix: &str,
    running: &Mutex<Vec<Arc<Reader>>>,
) -> Result<()> {
    let mmdebstrap = Cmd::new("mmdebstrap")
        .args(args)
        .env("SOURCE_DATE_EPOCH", epoch.to_string())
        .grace(Duration::from_secs(20));
    let reader = Arc::new(mmdebstrap.reader_merged()?);
    running
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Arc::clone(&reader));
    let mut last = String::new();
    for line in BufReader::new(&*reader).lines() {
        let line = line.context("reading mmdebstrap's output")?;
        output::message(format_args!("{prefix}{line}"));
        if line.starts_with("E:") {
            last = line;
        }
    }
    let status = reader.finish()?.status;
    match status {
        s if s.success() => Ok(()),
        s if last.is_empty() => bail!("mmdebstrap failed ({s}; its output is above)"),
        s => bail!("mmdebstrap failed ({s}): {last}"),
    }
}

/// The mmdebstrap run of each platform, its tar in `dir` (pure).
pub(crate) fn plan(
    base: &Base,
    platforms: &[String],
    mirrors: Option<&Mirrors>,
    dir: &Utf8Path,
) -> Result<Vec<PlatformPlan>> {
    platforms
        .iter()
        .map(|platform| {
            let arch = emulation::debian_arch(platform)?;
            let tar = tar_name(platform);
            Ok(PlatformPlan {
                platform: platform.clone(),
                arch: arch.debian.to_string(),
                mmdebstrap: mmdebstrap_args(
                    base,
                    arch.debian,
                    mirrors,
                    &util::host_join(dir, &tar),
                ),
                tar,
            })
        })
        .collect()
}

/// `rootfs-arm64.tar` for linux/arm64, `rootfs-armv7.tar` for linux/arm/v7: what
/// `rootfs-${TARGETARCH}${TARGETVARIANT}.tar` becomes in the Dockerfile.
pub(crate) fn tar_name(platform: &str) -> String {
    let mut parts = platform.split('/').skip(1);
    let arch = parts.next().unwrap_or_default();
    let variant = parts.next().unwrap_or_default();
    format!("rootfs-{arch}{variant}.tar")
}

/// Mirrors from images.toml, else from the host's apt sources; None on a host that is not
/// Debian: then mmdebstrap's own default applies (it adds updates and security for stable suites).
fn resolve_mirrors(base: &Base) -> Option<Mirrors> {
    let mut host = (None, None);
    if base.mirror.is_none() || base.security_mirror.is_none() {
        host = host_mirrors();
    }
    match (
        base.mirror.clone().or(host.0),
        base.security_mirror.clone().or(host.1),
    ) {
        (Some(main), Some(security)) => Some(Mirrors { main, security }),
        _ => None,
    }
}

fn host_mirrors() -> (Option<String>, Option<String>) {
    let mut text = String::new();
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut paths: Vec<_> = dir.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths {
            if p.extension().is_some_and(|e| e == "sources" || e == "list") {
                text.push_str(&std::fs::read_to_string(&p).unwrap_or_default());
                text.push('\n');
            }
        }
    }
    text.push_str(&std::fs::read_to_string("/etc/apt/sources.list").unwrap_or_default());
    mirrors_from_sources(&text)
}

/// The first Debian archive and security URIs named in apt sources, in deb822 or one-line style.
pub(crate) fn mirrors_from_sources(text: &str) -> (Option<String>, Option<String>) {
    let mut main = None;
    let mut security = None;
    let mut note = |uri: &str, suites: &str| {
        let uri = uri.trim_end_matches('/').to_string();
        if suites.split_whitespace().any(|s| s.ends_with("-security")) || uri.ends_with("-security")
        {
            security.get_or_insert(uri);
        } else if uri.contains("debian") {
            main.get_or_insert(uri);
        }
    };
    // deb822 stanzas, separated by blank lines.
    for stanza in text.split("\n\n") {
        let field = |name: &str| {
            stanza.lines().find_map(|l| {
                l.strip_prefix(name)
                    .and_then(|r| r.strip_prefix(':'))
                    .map(str::trim)
            })
        };
        if let (Some(types), Some(uris), Some(suites)) =
            (field("Types"), field("URIs"), field("Suites"))
        {
            if types.split_whitespace().any(|t| t == "deb") {
                for uri in uris.split_whitespace() {
                    note(uri, suites);
                }
            }
        }
    }
    // One-line style: deb [options] URI suite components…
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("deb") {
            continue;
        }
        let mut rest: Vec<&str> = words.collect();
        if rest.first().is_some_and(|w| w.starts_with('[')) {
            let end = rest.iter().position(|w| w.ends_with(']')).unwrap_or(0);
            rest.drain(..=end);
        }
        if let [uri, suite, ..] = rest.as_slice() {
            note(uri, suite);
        }
    }
    (main, security)
}

/// While packages install, update-ca-certificates is a no-op: run twice, its ~750 processes each
/// pay QEMU's start-up under emulation, most of a minute.
const CA_DEFER: &str = "p=/usr/sbin/update-ca-certificates; \
    chroot \"$1\" dpkg-divert --quiet --local --rename --divert \"$p.xtask\" --add \"$p\" \
    && printf '#!/bin/sh\\n' >\"$1$p\" && chmod 755 \"$1$p\"";

/// Then it runs once with the host's tools, its links pointed into the root: the same tar byte for
/// byte (docs/MULTI_PLATFORM.md). In the root when it has update hooks or the host no openssl.
const CA_LINK: &str = "set -e; p=/usr/sbin/update-ca-certificates; r=$1; d=$r/var/lib/dpkg; \
    rm \"$r$p\"; if [ -e \"$d/diversions-old\" ]; then cp \"$d/diversions-old\" \"$d/old.xtask\"; fi; \
    chroot \"$r\" dpkg-divert --quiet --local --rename --remove \"$p\"; \
    if [ -e \"$d/old.xtask\" ]; then awk -v p=\"$p\" 'NR % 3 == 1 \
    { a = $0; getline b; getline c; if (a != p) printf \"%s\\n%s\\n%s\\n\", a, b, c }' \
    \"$d/old.xtask\" >\"$d/diversions-old\"; rm \"$d/old.xtask\"; fi; \
    [ -e \"$r$p\" ] || exit 0; \
    if [ -n \"$(ls -A \"$r/etc/ca-certificates/update.d\" 2>/dev/null)\" ] \
    || ! command -v openssl >/dev/null; then chroot \"$r\" \"$p\"; exit 0; fi; \
    sh -e \"$r$p\" --hooksdir '' --certsconf \"$r/etc/ca-certificates.conf\" \
    --certsdir \"$r/usr/share/ca-certificates\" --localcertsdir \"$r/usr/local/share/ca-certificates\" \
    --etccertsdir \"$r/etc/ssl/certs\" >/dev/null; \
    for l in \"$r\"/etc/ssl/certs/*; do t=$(readlink \"$l\") || continue; \
    case $t in \"$r\"/*) ln -sfn \"${t#\"$r\"}\" \"$l\" ;; esac; done";

/// mmdebstrap's argv: minbase, docs/man/locales excluded, apt sources with updates and security.
pub(crate) fn mmdebstrap_args(
    base: &Base,
    arch: &str,
    mirrors: Option<&Mirrors>,
    out: &Utf8Path,
) -> Vec<String> {
    let mut args = vec![
        format!("--variant={}", base.variant),
        "--mode=root".to_string(),
        format!("--architectures={arch}"),
    ];
    if !base.include.is_empty() {
        args.push(format!("--include={}", base.include.join(",")));
    }
    for glob in &base.path_exclude {
        args.push(format!("--dpkgopt=path-exclude={glob}"));
    }
    for glob in &base.path_include {
        args.push(format!("--dpkgopt=path-include={glob}"));
    }
    // These two variants may have no dpkg to divert with.
    if !["extract", "custom"].contains(&base.variant.as_str()) {
        args.push(format!("--essential-hook={CA_DEFER}"));
        args.push(format!("--customize-hook={CA_LINK}"));
    }
    // After every package is configured, in the root filesystem ($1): each glob must match.
    for glob in &base.remove {
        args.push(format!(
            "--customize-hook=set -- \"$1\"{glob}; for p do [ -e \"$p\" ] || {{ echo \
             \"[base] remove: {glob} matches nothing\" >&2; exit 1; }}; rm -r \"$p\"; done"
        ));
    }
    let suite = &base.suite;
    args.push(suite.clone());
    args.push(out.to_string());
    if let Some(mirrors) = mirrors {
        args.push(format!("deb {} {suite} main", mirrors.main));
        args.push(format!("deb {} {suite}-updates main", mirrors.main));
        args.push(format!("deb {} {suite}-security main", mirrors.security));
    }
    args
}

/// buildx argv that turns the rootfs tars into one image (an index for several platforms) with a
/// stable digest.
pub(crate) fn import_args(
    base: &Base,
    platforms: &[String],
    context: &Utf8Path,
    iidfile: &Utf8Path,
) -> Vec<String> {
    vec![
        "buildx".into(),
        "build".into(),
        format!("--platform={}", platforms.join(",")),
        // Provenance attestations embed the build time and would change the ID on every run.
        "--provenance=false".into(),
        "--sbom=false".into(),
        format!("--build-arg=SOURCE_DATE_EPOCH={}", base.source_date_epoch),
        "--load".into(),
        format!("--tag={}", base.image),
        format!("--iidfile={iidfile}"),
        "--progress=plain".into(),
        context.to_string(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Base {
        Base {
            image: "localhost/debian:trixie-slim".into(),
            suite: "trixie".into(),
            variant: "minbase".into(),
            include: vec!["ca-certificates".into()],
            source_date_epoch: 1_764_288_000,
            path_exclude: vec!["/usr/share/doc/*".into()],
            path_include: vec!["/usr/share/doc/*/copyright".into()],
            remove: vec!["/usr/lib/python3.*/test".into()],
            mirror: None,
            security_mirror: None,
            platforms: vec!["linux/amd64".into()],
        }
    }

    #[test]
    fn reads_deb822_sources() {
        let text = "Types: deb\nURIs: http://m.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\n\
                    Types: deb\nURIs: http://m.example/debian-security\nSuites: bookworm-security\nComponents: main\n";
        assert_eq!(
            mirrors_from_sources(text),
            (
                Some("http://m.example/debian".into()),
                Some("http://m.example/debian-security".into())
            )
        );
    }

    #[test]
    fn reads_one_line_sources() {
        let text = "deb [arch=amd64] http://m.example/debian/ bookworm main\n\
                    deb http://s.example/debian-security bookworm-security main\n";
        assert_eq!(
            mirrors_from_sources(text),
            (
                Some("http://m.example/debian".into()),
                Some("http://s.example/debian-security".into())
            )
        );
    }

    #[test]
    fn mmdebstrap_argv_names_updates_and_security() {
        let m = Mirrors {
            main: "http://m/debian".into(),
            security: "http://m/debian-security".into(),
        };
        let args = mmdebstrap_args(&base(), "amd64", Some(&m), Utf8Path::new("/t/rootfs.tar"));
        let default = mmdebstrap_args(&base(), "amd64", None, Utf8Path::new("/t/rootfs.tar"));
        assert_eq!(&default[default.len() - 2..], ["trixie", "/t/rootfs.tar"]);
        assert_eq!(
            &args[..3],
            ["--variant=minbase", "--mode=root", "--architectures=amd64"]
        );
        assert!(args.contains(&"--include=ca-certificates".to_string()));
        assert!(args.contains(&"--dpkgopt=path-exclude=/usr/share/doc/*".to_string()));
        assert!(args.contains(
            &"--customize-hook=set -- \"$1\"/usr/lib/python3.*/test; for p do [ -e \"$p\" ] || \
              { echo \"[base] remove: /usr/lib/python3.*/test matches nothing\" >&2; exit 1; }; \
              rm -r \"$p\"; done"
                .to_string()
        ));
        assert!(args.contains(&format!("--essential-hook={CA_DEFER}")));
        assert!(args.contains(&format!("--customize-hook={CA_LINK}")));
        let extract = Base {
            variant: "extract".into(),
            ..base()
        };
        let plain = mmdebstrap_args(&extract, "amd64", None, Utf8Path::new("/t/rootfs.tar"));
        assert!(!plain.iter().any(|a| a.contains("update-ca-certificates")));
        let tail: Vec<&str> = args[args.len() - 5..].iter().map(String::as_str).collect();
        assert_eq!(
            tail,
            [
                "trixie",
                "/t/rootfs.tar",
                "deb http://m/debian trixie main",
                "deb http://m/debian trixie-updates main",
                "deb http://m/debian-security trixie-security main"
            ]
        );
    }

    #[test]
    fn every_platform_gets_its_architecture_and_the_tar_its_add_names() {
        let platforms = [
            "linux/amd64".to_string(),
            "linux/arm64".into(),
            "linux/arm/v7".into(),
        ];
        let plans = plan(&base(), &platforms, None, Utf8Path::new("/t")).unwrap();
        let got: Vec<(&str, &str)> = plans
            .iter()
            .map(|p| (p.arch.as_str(), p.tar.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("amd64", "rootfs-amd64.tar"),
                ("arm64", "rootfs-arm64.tar"),
                ("armhf", "rootfs-armv7.tar")
            ]
        );
        assert!(plans[1]
            .mmdebstrap
            .contains(&"--architectures=arm64".to_string()));
        assert!(plans[1]
            .mmdebstrap
            .contains(&"/t/rootfs-arm64.tar".to_string()));
        assert!(DOCKERFILE.contains("ADD rootfs-${TARGETARCH}${TARGETVARIANT}.tar /"));
        let err = plan(&base(), &["linux/wasm".into()], None, Utf8Path::new("/t")).unwrap_err();
        assert!(err.to_string().contains("no Debian architecture"), "{err}");
    }

    #[test]
    fn import_is_reproducible_by_construction() {
        let platforms = ["linux/amd64".to_string(), "linux/arm64".into()];
        let args = import_args(
            &base(),
            &platforms,
            Utf8Path::new("/t"),
            Utf8Path::new("/t/iid"),
        );
        assert!(args.contains(&"--platform=linux/amd64,linux/arm64".to_string()));
        assert!(args.contains(&"--provenance=false".to_string()));
        assert!(args.contains(&"--build-arg=SOURCE_DATE_EPOCH=1764288000".to_string()));
        assert!(args.contains(&"--tag=localhost/debian:trixie-slim".to_string()));
    }
}
