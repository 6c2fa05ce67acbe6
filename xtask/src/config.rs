//! images.toml: the one place image variants are declared. Schema, defaults inheritance,
//! validation, and errors that name file:line:col and the variant.
//!
//! Inheritance: every field of `[defaults]` applies to each `[variants.NAME]`. Scalars and
//! lists are replaced by the variant's value; tables (`build_args`, `budget`, `smoke`, `scan`, `dive`)
//! are merged key by key; smoke checks (`smoke.exec`, `smoke.http`) are appended, and a variant
//! check with the same `name` as a default check replaces it.
//!
//! One resolver per table: `[project]` and `[base]` (base.rs), `[defaults]` and `[variants.NAME]`
//! (variant.rs, with smoke.rs and scan.rs for their tables), `[scan]` (scan.rs). A variant's
//! Dockerfile is found and read before its values are resolved (files.rs); the validators use
//! what it declares.

mod base;
mod dockerfile;
mod files;
mod located;
mod names;
mod registry;
mod scan;
mod smoke;
mod values;
mod variant;

use anyhow::{bail, Result};
use camino::{Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use toml::Spanned;

use base::{RawBase, RawProject};
use files::Repository;
use located::Located;
use variant::RawVariant;

pub(crate) use base::Base;

pub(crate) use base::Project;
pub use names::check_platform;
pub(crate) use names::{check_reference, Reference};
pub(crate) use registry::Registry;
pub(crate) use scan::{Date, Ignore, Scan, ScanSettings, Severity};
pub(crate) use smoke::{ExecCheck, HttpCheck, Smoke};
pub use values::{human_size, parse_size};
pub(crate) use values::{parse_duration, parse_health_timeout};

/// The resolved, validated config.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// The file it was read from.
    #[serde(serialize_with = "crate::util::serialize_shown")]
    pub(crate) path: Utf8PathBuf,
    /// The directory relative paths in it are based on.
    #[serde(serialize_with = "crate::util::serialize_shown")]
    pub(crate) dir: Utf8PathBuf,
    pub(crate) project: Project,
    pub base: Base,
    pub(crate) build: BuildSettings,
    /// The top-level `[scan]` table: Trivy DB settings for every variant.
    pub(crate) scan: ScanSettings,
    pub(crate) variants: Vec<Variant>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = r#"a table like { ca_bundle = "ca.crt", cache_dir = "target/cache" }"#
)]
pub(crate) struct BuildSettings {
    /// A CA bundle to pass to builds as the `ca-bundle` secret (besides SSL_CERT_FILE & co.).
    #[serde(default)]
    pub(crate) ca_bundle: Option<Utf8PathBuf>,
    /// Where `--cache local` keeps BuildKit's cache, one directory per variant.
    #[serde(default)]
    pub(crate) cache_dir: Option<Utf8PathBuf>,
}

/// One image variant with defaults applied.
#[derive(Debug, Clone, Serialize)]
pub struct Variant {
    pub name: String,
    pub description: String,
    /// Absolute path of the Dockerfile.
    #[serde(serialize_with = "crate::util::serialize_shown")]
    pub dockerfile: Utf8PathBuf,
    /// Absolute path of the build context.
    #[serde(serialize_with = "crate::util::serialize_shown")]
    pub context: Utf8PathBuf,
    pub target: Option<String>,
    /// Repository name the image is tagged under (`<image>:<variant>`).
    pub image: String,
    /// Extra tags besides the standard ones.
    pub tags: Vec<String>,
    pub build_args: BTreeMap<String, String>,
    pub(crate) platforms: Vec<String>,
    /// Layer compression for `cargo xtask build --push` when `--compression` is not given
    /// (None: buildx's default, gzip).
    pub push_compression: Option<Compression>,
    pub(crate) budget: Budget,
    pub(crate) smoke: Smoke,
    pub(crate) scan: Scan,
    pub(crate) dive: Dive,
}

/// Layer compression of pushed images.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    Gzip,
    Zstd,
}

impl Compression {
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }

    fn parse(s: &str) -> Result<Compression> {
        match s {
            "gzip" => Ok(Compression::Gzip),
            "zstd" => Ok(Compression::Zstd),
            other => bail!("unknown compression `{other}`; use gzip or zstd"),
        }
    }
}

impl Variant {
    /// The tag every command refers to the local image by.
    pub fn image_ref(&self) -> String {
        format!("{}:{}", self.image, self.name)
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Budget {
    /// Bytes.
    pub(crate) compressed: Option<u64>,
    /// Bytes.
    pub(crate) unpacked: Option<u64>,
    /// `budget.platforms."linux/arm64" = { unpacked = "…" }`: what differs for one platform's
    /// image (unset kinds keep the variant's).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) platforms: BTreeMap<String, Budget>,
}

impl Budget {
    /// The budget of one platform's image: the variant's, with that platform's kinds over it.
    pub(crate) fn for_platform(&self, platform: Option<&str>) -> Budget {
        let own = platform.and_then(|p| self.platforms.get(p));
        Budget {
            compressed: own.and_then(|b| b.compressed).or(self.compressed),
            unpacked: own.and_then(|b| b.unpacked).or(self.unpacked),
            platforms: BTreeMap::new(),
        }
    }
}

/// Thresholds of `cargo xtask lint --dive` (`dive --ci`); unset ones keep dive's defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct Dive {
    /// Lowest image efficiency (0–1): the share of bytes not overwritten or deleted later.
    pub(crate) lowest_efficiency: Option<f64>,
    /// Most bytes wasted (written, then replaced or deleted by a later layer).
    pub(crate) highest_wasted_bytes: Option<u64>,
    /// Highest share (0–1) of the bytes the image's own layers add that are wasted.
    pub(crate) highest_user_wasted_percent: Option<f64>,
}

/// images.toml as written.
#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a TOML document with [project], [base] and [variants.NAME] tables"
)]
struct RawFile {
    project: RawProject,
    base: RawBase,
    #[serde(default)]
    build: BuildSettings,
    #[serde(default)]
    scan: Option<scan::RawScanSettings>,
    #[serde(default)]
    defaults: RawVariant,
    #[serde(default)]
    variants: Option<Spanned<BTreeMap<String, Spanned<RawVariant>>>>,
}

impl Config {
    pub(crate) fn load(path: &Utf8Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!(
                "cannot read the images config {} ({e}): pass an existing file with --config",
                crate::util::shown(path)
            )
        })?;
        Config::parse(path, &text)
    }

    pub(crate) fn parse(path: &Utf8Path, text: &str) -> Result<Config> {
        let loc = Located { path, text };
        let raw: RawFile = toml::from_str(text).map_err(|e| loc.toml_error(&e))?;
        let dir = path
            .parent()
            .map(Utf8Path::to_path_buf)
            .unwrap_or_else(|| ".".into());
        let dir = if dir.as_str().is_empty() {
            Utf8PathBuf::from(".")
        } else {
            dir
        };

        let project = base::resolve_project(&loc, &dir, raw.project)?;
        let base = base::resolve_base(&loc, raw.base)?;
        let Some(variants) = raw.variants.filter(|v| !v.get_ref().is_empty()) else {
            bail!(
                "{}: no variants declared: add at least one `[variants.NAME]` table",
                crate::util::shown(path)
            );
        };
        let repository = Repository::of(&dir).map_err(|e| loc.at(None, None, e))?;
        let mut out = Vec::new();
        for (name, v) in variants.into_inner() {
            let span = v.span();
            out.push(variant::resolve_variant(
                &loc,
                &dir,
                &repository,
                &raw.defaults,
                &name,
                v.into_inner(),
                span,
            )?);
        }
        let scan = scan::resolve_settings(&loc, &dir, raw.scan)?;
        let config = Config {
            path: path.to_owned(),
            dir,
            project: project.project,
            base,
            build: raw.build,
            scan,
            variants: out,
        };
        // `<image>:<version>-<variant>` is one of the standard tags.
        for v in &config.variants {
            let tag = format!("{}-{}", config.version(), v.name);
            if let Err(e) = names::check_tag(&tag) {
                return Err(loc.at(
                    project.version_span.clone(),
                    None,
                    format!(
                        "project version `{}` cannot make the tag `{tag}` of variant `{}`: {e}",
                        config.version(),
                        v.name
                    ),
                ));
            }
        }
        Ok(config)
    }

    pub fn variant(&self, name: &str) -> Result<&Variant> {
        self.variants
            .iter()
            .find(|v| v.name == name)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "unknown variant `{name}`; known variants: {} (declared in {})",
                    self.variant_names().join(", "),
                    crate::util::shown(&self.path)
                )
            })
    }

    /// The variants named on the command line, or all of them with `all`.
    pub fn select(&self, names: &[String], all: bool) -> Result<Vec<&Variant>> {
        if all {
            return Ok(self.variants.iter().collect());
        }
        if names.is_empty() {
            bail!(
                "name at least one variant or pass --all; known variants: {}",
                self.variant_names().join(", ")
            );
        }
        names.iter().map(|n| self.variant(n)).collect()
    }

    pub(crate) fn variant_names(&self) -> Vec<&str> {
        self.variants.iter().map(|v| v.name.as_str()).collect()
    }

    pub(crate) fn version(&self) -> &str {
        self.project.version.as_deref().unwrap_or("0.0.0")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The project and base tables every test config starts with (11 lines).
    const HEAD: &str =
        "[project]\nname = \"p\"\ndescription = \"d\"\nlicenses = \"MIT\"\nversion = \"1\"\n\n\
                        [base]\nimage = \"b\"\nsuite = \"trixie\"\nsource_date_epoch = 0\n\n";

    /// Parses `text` as `images.toml` in a fresh directory that has a `Dockerfile` (stage
    /// `app`, `ARG WITH_TORCH`) and a symlink `escape` to `/etc`.
    fn parse_text(text: &str) -> Result<Config> {
        let dir =
            std::env::temp_dir().join(format!("xtask-config-{}", crate::util::unique_suffix()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("Dockerfile"),
            "FROM scratch AS app\nARG WITH_TORCH=0\n",
        )
        .unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("/etc", dir.join("escape")).unwrap();
        let path = Utf8PathBuf::try_from(dir.join("images.toml")).unwrap();
        let result = Config::parse(&path, text);
        std::fs::remove_dir_all(&dir).unwrap();
        result
    }

    /// Parses `body` after [`HEAD`].
    fn parse_with(body: &str) -> Result<Config> {
        parse_text(&format!("{HEAD}{body}"))
    }

    /// One variant `a` (lines 12–14), then `extra` from line 15 on.
    const VARIANT: &str = "[variants.a]\ndockerfile = \"Dockerfile\"\nimage = \"i\"\n";

    /// The error of a config whose variant `a` has `extra`, after `images.toml:`.
    fn error_of(extra: &str) -> String {
        let err = parse_with(&format!("{VARIANT}{extra}\n"))
            .expect_err(extra)
            .to_string();
        let at = err.find("images.toml:").expect("the error names the file");
        err[at + "images.toml:".len()..].to_string()
    }

    #[test]
    fn every_bad_value_is_an_error_at_its_place_that_says_the_fix() {
        let mut wrong = Vec::new();
        let cases = [
            ("[variants.b]\ndockerfile = \"Dockerfile\"\nimage = \"Vox Serve!\"", "17:9: variant `b`: image: `Vox Serve!` is not a valid image name: `V` is uppercase"),
            ("tags = [\"ok\", \"Vox Serve!\"]", "15:15: variant `a`: tags: `Vox Serve!` is not a valid image name"),
            ("tags = [\"x:-y\"]", "15:9: variant `a`: tags: `x:-y`: `-y` is not a valid tag"),
            ("smoke = { cpus = \"-3\" }", "15:18: variant `a`: smoke.cpus: `-3` is not a number of CPUs; write a positive number"),
            ("smoke = { cpus = 2 }", "15:18: variant `a`: `cpus` must be a string like \"1.5\", not integer `2`"),
            ("smoke = { memory = \"2 gigs\" }", "15:20: variant `a`: smoke.memory: `2 gigs` is not a memory size"),
            ("smoke = { port = 0 }", "15:18: variant `a`: smoke.port: 0 is no port"),
            ("smoke = { port = 70000 }", "15:18: variant `a`: `port` must be a port number from 1 to 65535, not integer `70000`"),
            ("smoke = { health_timeout = \"90\" }", "15:28: variant `a`: smoke.health_timeout: `90` has no unit; write e.g. `90s`"),
            ("smoke = { health_timeout = \"9999999h\" }", "15:28: variant `a`: smoke.health_timeout: `9999999h` is too long: docker takes at most 2562047h"),
            ("smoke = { health_timeout = \"99999999999999999999h\" }", "too long"),
            ("smoke = { http_probe = \"health\" }", "15:24: variant `a`: smoke.http_probe: `health` is not a URL path"),
            ("smoke = { env = [\"1X=2\"] }", "15:18: variant `a`: smoke.env: `1X=2` is not `NAME` or `NAME=VALUE`"),
            ("smoke = { labels = [\"\"] }", "15:21: variant `a`: smoke.labels: `` is not a label key"),
            ("smoke = { forbidden_paths = [\"usr/bin\"] }", "15:30: variant `a`: smoke.forbidden_paths: `usr/bin` is not an absolute path"),
            ("smoke = { forbidden_packages = [\"torch cpu\"] }", "15:33: variant `a`: smoke.forbidden_packages: `torch cpu` is not a Python distribution name"),
            ("platforms = [\"linux/amd46\"]", "15:14: variant `a`: platforms: `linux/amd46`: unknown architecture `amd46`"),
            ("platforms = [\"linux/amd64\", \"linux/amd64\"]", "15:29: variant `a`: platforms: `linux/amd64` is listed twice"),
            ("platforms = \"linux/amd64\"", "15:13: variant `a`: `platforms` must be an array of strings"),
            ("budget = { compressed = \"0 MB\" }", "15:25: variant `a`: budget.compressed: `0 MB` leaves no room at all; give a size above 0, or remove `compressed`"),
            ("budget = { unpacked = \"3 GX\" }", "15:23: variant `a`: budget.unpacked: unknown unit `GX`"),
            ("budget = \"3 GB\"", "15:10: variant `a`: `budget` must be a table like { compressed = \"2.5 GB\", unpacked = \"4 GB\" }, not string \"3 GB\""),
            ("budget = { size = \"3 GB\" }", "15:12: variant `a`: unknown key `size`; the keys here are `compressed`, `unpacked`, `platforms`"),
            ("target = \"ap\"", "15:10: variant `a`: target: Dockerfile has no stage `ap`; its stages are app"),
            ("build_args = { WITH_TORCHH = \"1\" }", "15:16: variant `a`: build_args: Dockerfile declares no `ARG WITH_TORCHH`, so BuildKit would ignore it; its ARGs: WITH_TORCH"),
            ("build_args = { WITH_TORCH = 1 }", "15:29: variant `a`: `WITH_TORCH` must be a string, not integer `1`"),
            ("context = \"..\"", "15:11: variant `a`: context: `..` leads to"),
            ("[variants.b]\ndockerfile = \".\"\nimage = \"i\"", "16:14: variant `b`: Dockerfile `.` is a directory; name the file, e.g. `./Dockerfile`"),
            ("push_compression = 3", "15:20: variant `a`: `push_compression` must be \"gzip\" or \"zstd\", not integer `3`"),
            ("image = \"x\"", "15:1: variant `a`: `image` is set twice in this table; keep one"),
            ("[[variants.a.smoke.http]]\nname = \"h\"\npath = \"/\"\nstatus = 9999", "18:10: variant `a`: smoke.http: check `h` expects status 9999, which is no HTTP status; use 100 to 599"),
            ("[[variants.a.smoke.http]]\nname = \"h\"\npath = \"/\"\nmethod = \"post\"", "18:10: variant `a`: smoke.http: check `h`: `post` is not an HTTP method; write `POST`"),
            ("[[variants.a.smoke.http]]\nname = \"h\"\npath = \"/\"\nwav_seconds = -1.0", "18:15: variant `a`: smoke.http: check `h`: wav_seconds = -1 is no WAV length"),
            ("[[variants.a.smoke.http]]\nname = \"h\"\npath = \"/\"\nwav_seconds = nan", "no WAV length"),
            ("[[variants.a.smoke.http]]\nname = \"\"\npath = \"/\"", "16:8: variant `a`: smoke.http: a check needs a `name`"),
            ("[[variants.a.smoke.http]]\npath = \"/\"", "15:1: variant `a`: missing key `name`: add it to this table"),
            ("[[variants.a.smoke.exec]]\nname = \"e\"\ncmd = []", "17:7: variant `a`: smoke.exec: check `e` has an empty `cmd`"),
            ("[[variants.a.smoke.exec]]\nname = \"e\"\ncmd = [\"x\"]\nexit_code = 300", "18:13: variant `a`: smoke.exec: check `e` expects exit code 300, which no process returns"),
            ("[[variants.a.smoke.exec]]\nname = \"e\"\ncmd = [\"x\"]\n[[variants.a.smoke.exec]]\nname = \"e\"\ncmd = [\"y\"]", "19:8: variant `a`: smoke.exec: two checks are named `e`"),
            ("smoke = { exec = \"x\" }", "15:18: variant `a`: `exec` must be an array of tables"),
            ("[[variants.a.smoke.pytest]]\nname = \"t\"\npath = \"test_x.py\"\nrequirements = \"Dockerfile\"", "17:8: variant `a`: smoke.pytest: check `t`: `test_x.py` is not a Python test file"),
            ("[[variants.a.smoke.pytest]]\nname = \"t\"\npath = \"Dockerfile\"\nrequirements = \"Dockerfile\"", "17:8: variant `a`: smoke.pytest: check `t`: `Dockerfile` is not a Python test file"),
            ("[[variants.a.smoke.pytest]]\nname = \"t\"\npath = \"test_x.py\"", "15:1: variant `a`: missing key `requirements`"),
            ("[variants.\"Vox Serve!\"]\ndockerfile = \"Dockerfile\"\nimage = \"i\"", "15:1: variant `Vox Serve!`: the variant name becomes an image tag, and `Vox Serve!` is not a valid tag"),
            ("[variants.b]\ndockerfile = \"Dockerfile\"\nimage = \"i:latest\"", "17:9: variant `b`: image: `i:latest` has a tag (`:latest`): give the repository name alone, e.g. `i`"),
        ];
        // /etc and a symlink to it: Unix only (Windows makes symlinks only with a privilege);
        // `a_path_that_leaves_the_repository_names_where_it_leads` covers every host.
        let unix_only = [
            (
                "context = \"escape\"",
                "15:11: variant `a`: context: `escape` leads to /etc, outside",
            ),
            (
                "[variants.b]\ndockerfile = \"/etc/hostname\"\nimage = \"i\"",
                "16:14: variant `b`: dockerfile: `/etc/hostname` leads to /etc/hostname, outside",
            ),
            (
                "[variants.b]\ndockerfile = \"escape/hostname\"\nimage = \"i\"",
                "16:14: variant `b`: dockerfile: `escape/hostname` leads to /etc/hostname, outside",
            ),
        ];
        let unix_only = if cfg!(unix) { &unix_only[..] } else { &[] };
        for &(extra, want) in cases.iter().chain(unix_only) {
            let err = error_of(extra);
            let matches = err.starts_with(want) || (!want.contains(": ") && err.contains(want));
            if !matches || err.contains("Raw") || err.contains("u16") || err.contains("struct") {
                wrong.push(format!("{extra}\n  got:  {err}\n  want: {want}"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn a_path_that_leaves_the_repository_names_where_it_leads() {
        let dir =
            std::env::temp_dir().join(format!("xtask-config-{}", crate::util::unique_suffix()));
        let outside = Utf8PathBuf::try_from(dir.with_extension("outside")).unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("Dockerfile"), "FROM scratch\n").unwrap();
        let rel = format!("../{}", outside.file_name().unwrap());
        let path = Utf8PathBuf::try_from(dir.join("images.toml")).unwrap();
        let result = Config::parse(
            &path,
            &format!("{HEAD}[variants.a]\ndockerfile = \"{rel}/Dockerfile\"\nimage = \"i\"\n"),
        );
        let shown = |p: &std::path::Path| dunce::canonicalize(p).unwrap().display().to_string();
        let (real_dockerfile, real_dir) =
            (shown(outside.join("Dockerfile").as_std_path()), shown(&dir));
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::remove_dir_all(&outside).unwrap();
        let err = result.unwrap_err().to_string();
        let want = format!(
            "images.toml:13:14: variant `a`: dockerfile: `{rel}/Dockerfile` leads to {real_dockerfile}, \
             outside {real_dir} (the directory of images.toml"
        );
        assert!(err.contains(&want), "{err}\nwant: {want}");
    }

    #[test]
    fn a_bad_value_in_defaults_names_the_variant_it_reached() {
        let err = parse_with(&format!(
            "[defaults]\nsmoke = {{ cpus = \"0\" }}\n\n{VARIANT}"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.ends_with("images.toml:13:18: variant `a` (from [defaults]): smoke.cpus: `0` is below 0.01, the smallest CPU limit docker accepts"),
            "{err}"
        );
    }

    #[test]
    fn project_and_base_values_are_checked() {
        let base = "[base]\nimage = \"b\"\nsuite = \"trixie\"\nsource_date_epoch = 0\n";
        let project = "[project]\nname = \"p\"\ndescription = \"d\"\nlicenses = \"MIT\"\n";
        for (text, want) in [
            (format!("{project}version = \"1.0+local\"\n{base}{VARIANT}"), "5:11: project version `1.0+local` cannot make the tag `1.0+local-a` of variant `a`"),
            (format!("{project}version_from = \"nope.toml\"\n{base}{VARIANT}"), "5:16: version_from: cannot read"),
            (format!("{project}{}{VARIANT}", base.replace("\"b\"", "\"Debian:trixie\"")), "6:9: image: `Debian:trixie` is not a valid image name"),
            (format!("{project}{}{VARIANT}", base.replace("\"trixie\"", "\"Trixie Slim\"")), "7:9: suite: `Trixie Slim` is not a Debian suite"),
            (format!("{project}{base}variant = \"tiny\"\n{VARIANT}"), "9:11: variant: `tiny` is not an mmdebstrap variant"),
            (format!("{project}{base}include = [\"Ca Certs\"]\n{VARIANT}"), "9:12: include: `Ca Certs` is not a Debian package name"),
            (format!("{project}{}{VARIANT}", base.replace("= 0", "= -1")), "8:21: `source_date_epoch` must be seconds since 1970-01-01 as a whole number"),
            (format!("{project}{}{VARIANT}", base.replace("= 0", "= 99999999999999")), "8:21: source_date_epoch: 99999999999999 is after the year 9999"),
            (format!("{project}{base}path_exclude = [\"usr/share/doc/*\"]\n{VARIANT}"), "9:17: path_exclude: `usr/share/doc/*` is not an absolute path glob"),
            (format!("{project}{base}mirror = \"deb.example/debian\"\n{VARIANT}"), "9:10: mirror: `deb.example/debian` is not a URI"),
            (format!("project = 3\n{base}{VARIANT}"), "1:11: `project` must be a table like { name = \"voxserve\""),
            (format!("{base}{VARIANT}"), "1:1: missing key `project`"),
        ] {
            let err = parse_text(&text).expect_err(&text).to_string();
            let at = err.find("images.toml:").unwrap() + "images.toml:".len();
            assert!(err[at..].starts_with(want), "{text}\n  got:  {err}\n  want: {want}");
        }
    }

    #[test]
    fn the_repository_config_passes_every_check() {
        let path = crate::util::project_root().join("images.toml");
        let config = Config::load(&path).unwrap();
        assert_eq!(
            config.variant_names(),
            [
                "cpu",
                "cpu-minimal",
                "cpu-minimal-distroless",
                "cuda",
                "rocm"
            ]
        );
    }

    #[test]
    fn push_compression_is_inherited_overridden_and_validated() {
        let config = parse_with(
            "[defaults]\nimage = \"i\"\ndockerfile = \"Dockerfile\"\npush_compression = \"gzip\"\n\n\
             [variants.a]\n\n[variants.b]\npush_compression = \"zstd\"\n",
        )
        .unwrap();
        assert_eq!(
            config.variant("a").unwrap().push_compression,
            Some(Compression::Gzip)
        );
        assert_eq!(
            config.variant("b").unwrap().push_compression,
            Some(Compression::Zstd)
        );

        let config =
            parse_with("[defaults]\nimage = \"i\"\ndockerfile = \"Dockerfile\"\n\n[variants.a]\n")
                .unwrap();
        assert_eq!(config.variant("a").unwrap().push_compression, None);

        let err = parse_with(
            "[defaults]\nimage = \"i\"\ndockerfile = \"Dockerfile\"\n\n\
             [variants.a]\npush_compression = \"lz4\"\n",
        )
        .unwrap_err()
        .to_string();
        // Line 17 (11 head lines + 6), column 20: the value, not the key.
        assert!(err.ends_with("images.toml:17:20: variant `a`: push_compression: unknown compression `lz4`; use gzip or zstd"), "{err}");
    }

    #[test]
    fn scan_ignore_is_inherited_and_replaced() {
        let config = parse_with(
            "[defaults]\nimage = \"i\"\ndockerfile = \"Dockerfile\"\n\
             [defaults.scan]\nignore = [\"CVE-1\"]\n\n\
             [variants.a]\n\n[variants.b]\nscan = { ignore = [\"CVE-2\"], fail_on = [\"low\"] }\n",
        )
        .unwrap();
        let a = &config.variant("a").unwrap().scan;
        assert_eq!(a.ignore.len(), 1);
        assert_eq!(a.ignore[0].id, "CVE-1");
        assert_eq!(a.fail_on, [Severity::Critical, Severity::High]);
        assert!(a.ignore_unfixed);
        let b = &config.variant("b").unwrap().scan;
        assert_eq!(b.ignore[0].id, "CVE-2");
        assert_eq!(b.fail_on, [Severity::Low]);
    }

    #[test]
    fn dive_thresholds_merge_key_by_key_and_are_validated() {
        let config = parse_with(
            "[defaults]\nimage = \"i\"\ndockerfile = \"Dockerfile\"\n\
             [defaults.dive]\nlowest_efficiency = 0.95\nhighest_wasted_bytes = \"20 MB\"\n\n\
             [variants.a]\n\n[variants.b]\ndive = { lowest_efficiency = 0.9, highest_user_wasted_percent = 0.1 }\n",
        )
        .unwrap();
        let a = &config.variant("a").unwrap().dive;
        assert_eq!(
            *a,
            Dive {
                lowest_efficiency: Some(0.95),
                highest_wasted_bytes: Some(20_000_000),
                highest_user_wasted_percent: None,
            }
        );
        let b = &config.variant("b").unwrap().dive;
        assert_eq!(b.lowest_efficiency, Some(0.9));
        assert_eq!(b.highest_wasted_bytes, Some(20_000_000));
        assert_eq!(b.highest_user_wasted_percent, Some(0.1));

        let err = parse_with(
            "[defaults]\nimage = \"i\"\ndockerfile = \"Dockerfile\"\n\n\
             [variants.a]\ndive = { lowest_efficiency = 95.0 }\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.ends_with("variant `a`: dive.lowest_efficiency: 95 is not a ratio between 0 and 1"),
            "{err}"
        );
    }

    #[test]
    fn scan_settings_ignores_and_lockfiles_resolve() {
        let config = parse_with(
            "[scan]\ncache_dir = \"cache/trivy\"\ndb_repository = [\"mirror.example/trivy-db:2\", \"b.example/db:2\"]\n\
             offline = true\ntimeout = \"2m\"\n\n\
             [defaults]\nimage = \"i\"\ndockerfile = \"Dockerfile\"\n\n\
             [variants.a]\nscan = { lockfiles = [\"Dockerfile\"], ignore = [\"CVE-1\", \
             { id = \"CVE-2\", reason = \"r\", expires = \"2026-03-31\" }] }\n",
        )
        .unwrap();
        assert!(config
            .scan
            .cache_dir
            .as_ref()
            .unwrap()
            .ends_with("cache/trivy"));
        assert!(config.scan.cache_dir.as_ref().unwrap().is_absolute() || config.dir.is_relative());
        assert_eq!(
            config.scan.db_repository,
            ["mirror.example/trivy-db:2", "b.example/db:2"]
        );
        assert!(config.scan.offline);
        assert_eq!(
            config.scan.timeout,
            Some(std::time::Duration::from_secs(120))
        );
        let a = &config.variant("a").unwrap().scan;
        assert_eq!(a.ignore[1].reason.as_deref(), Some("r"));
        assert_eq!(a.ignore[1].expires.unwrap().to_string(), "2026-03-31");
        assert!(a.lockfiles[0].ends_with("Dockerfile"));

        let defaults =
            parse_with("[defaults]\nimage = \"i\"\ndockerfile = \"Dockerfile\"\n\n[variants.a]\n")
                .unwrap();
        assert!(!defaults.scan.offline && defaults.scan.cache_dir.is_none());

        let err = |body: &str| parse_with(body).unwrap_err().to_string();
        let head = "[defaults]\nimage = \"i\"\ndockerfile = \"Dockerfile\"\n\n[variants.a]\n";
        let e = err(&format!(
            "{head}scan = {{ ignore = [{{ id = \"CVE-1\", expires = \"soon\" }}] }}\n"
        ));
        // Line 17, column 20: the entry itself.
        assert!(
            e.contains("images.toml:17:20:")
                && e.contains("variant `a`")
                && e.contains("YYYY-MM-DD"),
            "{e}"
        );
        let e = err(&format!(
            "{head}scan = {{ lockfiles = [\"missing.lock\"] }}\n"
        ));
        assert!(
            e.contains("scan.lockfiles: `missing.lock` does not exist"),
            "{e}"
        );
        let e = err(&format!(
            "{head}scan = {{ ignore = [\"CVE-1\", \"cve-1\"] }}\n"
        ));
        assert!(e.contains("lists `cve-1` twice"), "{e}");
        let e = err(&format!("[scan]\ntimeout = \"soon\"\n\n{head}"));
        assert!(e.contains("images.toml:13:11: scan.timeout"), "{e}");
        let e = err(&format!(
            "[scan]\ndb_repository = [\"https://x/y\"]\n\n{head}"
        ));
        assert!(e.contains("not an OCI repository"), "{e}");
        let e = err(&format!("[scan]\nmirror = \"x\"\n\n{head}"));
        assert!(
            e.contains("unknown key `mirror`; the keys here are `cache_dir`"),
            "{e}"
        );
    }

    #[test]
    fn a_platform_may_have_budgets_of_its_own() {
        let c = parse_with(&format!(
            "{VARIANT}platforms = [\"linux/amd64\", \"linux/arm64\"]\n\
             budget = {{ unpacked = \"200 MB\", compressed = \"90 MB\", \
             platforms.\"linux/arm64\" = {{ unpacked = \"225 MB\" }} }}\n"
        ))
        .unwrap();
        let b = &c.variants[0].budget;
        let arm = b.for_platform(Some("linux/arm64"));
        assert_eq!(
            (arm.unpacked, arm.compressed),
            (Some(225_000_000), Some(90_000_000))
        );
        let amd = b.for_platform(Some("linux/amd64"));
        assert_eq!(amd.unpacked, Some(200_000_000));
        assert_eq!(b.for_platform(None).unpacked, Some(200_000_000));
        let e = error_of(
            "budget = { unpacked = \"1 GB\", platforms.\"linux/arm64\" = { unpacked = \"2 GB\" } }",
        );
        assert!(
            e.contains("budget.platforms: `linux/arm64` is not one of the variant's platforms"),
            "{e}"
        );
    }
}
