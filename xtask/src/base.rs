//! `cargo xtask base`: the reproducible offline Debian base image the Dockerfiles start from
//! where no registry is reachable (air-gapped sites, CI without Docker Hub).
//!
//! mmdebstrap writes a root filesystem tar with every timestamp clamped to SOURCE_DATE_EPOCH; the
//! tar becomes an image through `FROM scratch` + `ADD` under buildx without provenance, which —
//! unlike `docker import`, which stamps the current time — gives the same image ID on every run.

use anyhow::{bail, Context, Result};
use camino::Utf8Path;
use xshell::cmd;

use crate::config::Base;
use crate::docker;
use crate::report;
use crate::util::{progress, Ctx, TempDir};

#[derive(clap::Args)]
pub struct Args {
    /// Print the mmdebstrap and build commands without running them.
    #[arg(long)]
    dry_run: bool,
}

/// The Debian mirrors the image's apt sources will name.
#[derive(Debug, PartialEq, Eq)]
pub struct Mirrors {
    pub main: String,
    pub security: String,
}

impl Args {
    pub fn run(self, ctx: &Ctx) -> Result<()> {
        let config = ctx.config()?;
        let base = &config.base;
        let mirrors = resolve_mirrors(base);
        let plan = mmdebstrap_args(base, mirrors.as_ref(), Utf8Path::new("rootfs.tar"));
        if self.dry_run {
            return report::print(&format!(
                "SOURCE_DATE_EPOCH={} mmdebstrap {}\n",
                base.source_date_epoch,
                plan.join(" ")
            ));
        }
        if which::which("mmdebstrap").is_err() {
            bail!(
                "mmdebstrap is not installed: install it (`apt-get install mmdebstrap` on Debian/Ubuntu) \
                 and run `cargo xtask base` again; on macOS/Windows run it in a Linux VM or build with a \
                 registry base image instead"
            );
        }
        if !is_root(ctx)? {
            bail!("`cargo xtask base` runs mmdebstrap, which needs root here: run it as root (e.g. `sudo -E cargo xtask base`)");
        }
        docker::versions(&ctx.sh)?;
        docker::ensure_buildx(&ctx.sh)?;

        let tmp = TempDir::new(ctx, "base")?;
        let tar = tmp.path().join("rootfs.tar");
        let args = mmdebstrap_args(base, mirrors.as_ref(), &tar);
        progress!(
            "mmdebstrap {} ({}) from {} — about 20 s",
            base.suite,
            base.variant,
            mirrors
                .as_ref()
                .map_or("mmdebstrap's default mirror", |m| m.main.as_str())
        );
        let mmdebstrap = duct::cmd("mmdebstrap", &args)
            .env("SOURCE_DATE_EPOCH", base.source_date_epoch.to_string())
            .stdout_to_stderr();
        crate::cleanup::run(&mmdebstrap).context("mmdebstrap failed (its output is above)")?;

        std::fs::write(
            tmp.path().join("Dockerfile"),
            "FROM scratch\nADD rootfs.tar /\nCMD [\"bash\"]\n",
        )
        .context("writing the base Dockerfile")?;
        let iidfile = tmp.path().join("iid");
        let build = import_args(base, tmp.path(), &iidfile);
        progress!("importing as {}", base.image);
        let status = docker::buildx_build(&build, docker::BuildOutput::Stderr)
            .context("building the base image from the rootfs tar")?;
        if !status.success() {
            bail!("building the base image from the rootfs tar failed ({status}; buildx's output is above)");
        }
        let id = std::fs::read_to_string(&iidfile).context("reading the base image ID")?;
        let id = docker::image_id(&ctx.sh, &base.image)?.unwrap_or_else(|| id.trim().to_string());
        report::print(&format!("{id}\n"))
    }
}

fn is_root(ctx: &Ctx) -> Result<bool> {
    if cfg!(unix) {
        let sh = &ctx.sh;
        let uid = cmd!(sh, "id -u")
            .quiet()
            .read()
            .context("running `id -u`")?;
        Ok(uid.trim() == "0")
    } else {
        Ok(false)
    }
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
pub fn mirrors_from_sources(text: &str) -> (Option<String>, Option<String>) {
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

/// mmdebstrap's argv: minbase, docs/man/locales excluded, apt sources with updates and security.
pub fn mmdebstrap_args(base: &Base, mirrors: Option<&Mirrors>, out: &Utf8Path) -> Vec<String> {
    let mut args = vec![
        format!("--variant={}", base.variant),
        "--mode=root".to_string(),
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

/// buildx argv that turns the rootfs tar into an image with a stable ID.
pub fn import_args(base: &Base, context: &Utf8Path, iidfile: &Utf8Path) -> Vec<String> {
    vec![
        "buildx".into(),
        "build".into(),
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
            mirror: None,
            security_mirror: None,
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
        let args = mmdebstrap_args(&base(), Some(&m), Utf8Path::new("/t/rootfs.tar"));
        let default = mmdebstrap_args(&base(), None, Utf8Path::new("/t/rootfs.tar"));
        assert_eq!(&default[default.len() - 2..], ["trixie", "/t/rootfs.tar"]);
        assert_eq!(&args[..2], ["--variant=minbase", "--mode=root"]);
        assert!(args.contains(&"--include=ca-certificates".to_string()));
        assert!(args.contains(&"--dpkgopt=path-exclude=/usr/share/doc/*".to_string()));
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
    fn import_is_reproducible_by_construction() {
        let args = import_args(&base(), Utf8Path::new("/t"), Utf8Path::new("/t/iid"));
        assert!(args.contains(&"--provenance=false".to_string()));
        assert!(args.contains(&"--build-arg=SOURCE_DATE_EPOCH=1764288000".to_string()));
        assert!(args.contains(&"--tag=localhost/debian:trixie-slim".to_string()));
    }
}
