//! Plan (pure): a variant, the project's facts and the command's options → the `docker buildx
//! build` argv as data (with the tags and build args it sets), and the cache it imports and exports.

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;
use std::collections::BTreeMap;

use super::git::GitInfo;
use crate::config::{Compression, Variant};

/// Where BuildKit's cache goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheMode {
    /// `type=local` under target/docker-cache/<variant>, rotated on every build: to carry the
    /// cache to another machine or builder.
    Local,
    /// GitHub Actions cache, one scope per variant.
    Gha,
    /// `<image>:buildcache-<variant>` in the image's registry.
    Registry,
    /// No cache import or export: the builder's own build cache still serves (the default
    /// outside GitHub Actions).
    None,
}

/// Provenance attestation of a pushed image (buildx `--provenance`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Provenance {
    /// The full build definition: every build arg, the Dockerfile, the sources (`mode=max`).
    #[value(alias = "mode=max")]
    Max,
    /// Only the builder, the materials and the build's ID (`mode=min`).
    #[value(alias = "mode=min")]
    Min,
    /// None: a plain image manifest, no index.
    #[value(alias = "0")]
    False,
}

impl Provenance {
    /// The `--provenance` argument buildx gets.
    pub fn arg(self) -> &'static str {
        match self {
            Provenance::Max => "--provenance=mode=max",
            Provenance::Min => "--provenance=mode=min",
            Provenance::False => "--provenance=false",
        }
    }
}

/// BuildKit progress output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Progress {
    Auto,
    Plain,
    Tty,
}

/// Cache import/export for one variant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheSpec {
    None,
    /// The variant's cache lives in `current` (imported when `import`, i.e. when it holds a
    /// cache); the build exports to `to`, a fresh directory swapped in for `current` afterwards.
    Local {
        current: Utf8PathBuf,
        import: bool,
        to: Utf8PathBuf,
    },
    Gha {
        scope: String,
    },
    Registry {
        reference: String,
    },
}

/// Everything `plan` needs; no I/O happens in planning.
pub struct PlanInput<'a> {
    pub variant: &'a Variant,
    pub title: &'a str,
    pub description: &'a str,
    pub licenses: &'a str,
    pub version: &'a str,
    pub git: &'a GitInfo,
    pub created: String,
    pub push: bool,
    /// Push to `repository` without tags (`push-by-digest`): one platform's image, for
    /// `cargo xtask merge` to join with the other platforms' into one tagged index.
    pub push_by_digest: bool,
    /// With `push_by_digest` on a builder that cannot push untagged (the `docker` driver:
    /// "push-by-digest is currently not implemented"): the one tag the push gets instead, of
    /// that platform alone (see [`platform_tag`]).
    pub platform_tag: Option<String>,
    /// The repository the standard tags are made in: `<registry>/<image>` when pushing, the
    /// variant's `image` otherwise.
    pub repository: String,
    /// The registry pushed to, `HOST[/NAMESPACE]` (for the report), with `push`.
    pub registry: Option<String>,
    pub compression: Option<Compression>,
    /// With `push`: the provenance attestation (loaded images carry none).
    pub provenance: Provenance,
    /// With `push`: BuildKit's SBOM attestation, by this generator image (None inside: BuildKit's
    /// default generator).
    pub sbom: Option<Option<String>>,
    pub platforms: Vec<String>,
    pub builder: Option<String>,
    /// The `docker context` the build runs in (`docker --context`), for a context's builder.
    pub context: Option<String>,
    pub no_cache: bool,
    pub pull: bool,
    pub build_arg_overrides: Vec<(String, String)>,
    /// Passed as BASE_IMAGE unless a build arg already sets it.
    pub base_image: Option<String>,
    pub extra_tags: Vec<String>,
    /// With --load: the only tag buildx sets; `run` moves the real tags to the image once the
    /// build is judged (BuildKit's platform warnings), so a bad build moves none.
    pub staging_tag: Option<String>,
    pub cache: CacheSpec,
    pub ca_bundle: Option<Utf8PathBuf>,
    pub progress: Progress,
    pub metadata_file: Utf8PathBuf,
}

#[derive(Debug, Clone)]
pub struct BuildPlan {
    pub argv: Vec<String>,
    /// The tags the image gets (from buildx, or from `run` after the staging tag).
    pub tags: Vec<String>,
    pub staging_tag: Option<String>,
    pub build_args: BTreeMap<String, String>,
}

/// The standard tags in `repository`: `:<variant>`, `:<version>-<variant>`, `:sha-<7>-<variant>`.
pub fn standard_tags(
    repository: &str,
    variant: &str,
    version: &str,
    revision: Option<&str>,
) -> Vec<String> {
    let mut tags = vec![
        format!("{repository}:{variant}"),
        format!("{repository}:{version}-{variant}"),
    ];
    if let Some(rev) = revision {
        let short: String = rev.chars().take(7).collect();
        tags.push(format!("{repository}:sha-{short}-{variant}"));
    }
    tags
}

pub fn plan(input: &PlanInput) -> BuildPlan {
    let v = input.variant;
    let mut argv: Vec<String> = vec!["buildx".into(), "build".into()];
    if let Some(builder) = &input.builder {
        argv.push(format!("--builder={builder}"));
    }
    argv.push(format!("--file={}", v.dockerfile));
    if let Some(target) = &v.target {
        argv.push(format!("--target={target}"));
    }
    if !input.platforms.is_empty() {
        argv.push(format!("--platform={}", input.platforms.join(",")));
    }

    let mut build_args = v.build_args.clone();
    for (k, val) in &input.build_arg_overrides {
        build_args.insert(k.clone(), val.clone());
    }
    if let Some(base) = &input.base_image {
        build_args
            .entry("BASE_IMAGE".into())
            .or_insert_with(|| base.clone());
    }
    for (k, val) in &build_args {
        argv.push(format!("--build-arg={k}={val}"));
    }

    let mut labels = BTreeMap::new();
    labels.insert("title", input.title.to_string());
    labels.insert("description", input.description.to_string());
    labels.insert("licenses", input.licenses.to_string());
    labels.insert("version", input.version.to_string());
    labels.insert("created", input.created.clone());
    if let Some(rev) = &input.git.revision {
        labels.insert("revision", rev.clone());
    }
    if let Some(src) = &input.git.source {
        labels.insert("source", src.clone());
    }
    for (k, val) in labels {
        if !val.is_empty() {
            argv.push(format!("--label=org.opencontainers.image.{k}={val}"));
        }
    }

    let mut tags = standard_tags(
        &input.repository,
        &v.name,
        input.version,
        input.git.revision.as_deref(),
    );
    for t in v.tags.iter().chain(&input.extra_tags) {
        if !tags.contains(t) {
            tags.push(t.clone());
        }
    }
    // By digest: no standard tag moves until `merge` tags the index.
    match (
        &input.staging_tag,
        &input.platform_tag,
        input.push_by_digest,
    ) {
        (Some(staging), _, _) => argv.push(format!("--tag={staging}")),
        (None, Some(tag), true) => argv.push(format!("--tag={tag}")),
        (None, None, true) => {}
        (None, _, false) => argv.extend(tags.iter().map(|t| format!("--tag={t}"))),
    }

    if let Some(ca) = &input.ca_bundle {
        argv.push(format!("--secret=id=ca-bundle,src={ca}"));
    }

    match &input.cache {
        CacheSpec::None => {}
        CacheSpec::Local {
            current,
            import,
            to,
        } => {
            if *import {
                argv.push(format!("--cache-from=type=local,src={current}"));
            }
            argv.push(format!("--cache-to=type=local,dest={to},mode=max"));
        }
        CacheSpec::Gha { scope } => {
            argv.push(format!("--cache-from=type=gha,scope={scope}"));
            argv.push(format!("--cache-to=type=gha,scope={scope},mode=max"));
        }
        CacheSpec::Registry { reference } => {
            argv.push(format!("--cache-from=type=registry,ref={reference}"));
            // An OCI image manifest (not an index with a cache config) is what every registry
            // stores; mode=max keeps the intermediate stages' layers too.
            argv.push(format!(
                "--cache-to=type=registry,ref={reference},mode=max,image-manifest=true,oci-mediatypes=true"
            ));
        }
    }

    if input.push_by_digest && input.platform_tag.is_none() {
        let mut output = format!(
            "--output=type=image,name={},push-by-digest=true,name-canonical=true,push=true",
            input.repository
        );
        if let Some(c) = input.compression {
            output.push_str(&format!(
                ",compression={},force-compression=true,oci-mediatypes=true",
                c.as_str()
            ));
        }
        argv.push(output);
    }
    if input.push || input.push_by_digest {
        match input.compression {
            _ if input.push_by_digest && input.platform_tag.is_none() => {}
            Some(c) => {
                let c = c.as_str();
                argv.push(format!(
                    "--output=type=registry,compression={c},force-compression=true,oci-mediatypes=true"
                ));
            }
            None => argv.push("--push".into()),
        }
        argv.push(input.provenance.arg().into());
        match &input.sbom {
            None => {}
            Some(None) => argv.push("--attest=type=sbom".into()),
            Some(Some(generator)) => {
                argv.push(format!("--attest=type=sbom,generator={generator}"));
            }
        }
    } else {
        argv.push("--load".into());
        // Attestations make loaded images differ on every build (they embed the build time).
        argv.push("--provenance=false".into());
    }
    if input.no_cache {
        argv.push("--no-cache".into());
    }
    if input.pull {
        argv.push("--pull".into());
    }
    let progress = match input.progress {
        Progress::Auto => "auto",
        Progress::Plain => "plain",
        Progress::Tty => "tty",
    };
    argv.push(format!("--progress={progress}"));
    argv.push(format!("--metadata-file={}", input.metadata_file));
    argv.push(v.context.to_string());
    BuildPlan {
        argv,
        tags,
        staging_tag: input.staging_tag.clone(),
        build_args,
    }
}

/// The staging tag of a build that loads into the local store (`<image>:xtask-staging-…`).
pub fn staging_tag(push: bool, variant: &Variant, suffix: &str) -> Option<String> {
    (!push).then(|| format!("{}:xtask-staging-{}-{suffix}", variant.image, variant.name))
}

/// The tag a push by digest gets where the builder cannot push untagged: the commit's tag of the
/// variant for that platform alone, `<repository>:sha-<7>-<variant>-<os>-<arch>` (without git:
/// `<version>-<variant>-<os>-<arch>`), so that runs of other commits never move it.
pub fn platform_tag(
    repository: &str,
    variant: &str,
    version: &str,
    revision: Option<&str>,
    platform: &str,
) -> String {
    let slug = platform.replace('/', "-");
    match revision {
        Some(rev) => {
            let short: String = rev.chars().take(7).collect();
            format!("{repository}:sha-{short}-{variant}-{slug}")
        }
        None => format!("{repository}:{version}-{variant}-{slug}"),
    }
}

/// The cache for a variant under a mode; `cache_dir` is the root of local caches, `repository`
/// the variant's repository in the registry (`--cache registry` needs one).
pub fn cache_spec(
    mode: CacheMode,
    variant: &Variant,
    cache_dir: &Utf8Path,
    repository: Option<&str>,
    suffix: &str,
) -> Result<CacheSpec> {
    Ok(match mode {
        CacheMode::None => CacheSpec::None,
        CacheMode::Local => {
            let current = crate::util::host_join(cache_dir, &variant.name);
            CacheSpec::Local {
                import: crate::util::host_join(&current, "index.json").is_file(),
                to: Utf8PathBuf::from(format!("{current}.new-{suffix}")),
                current,
            }
        }
        CacheMode::Gha => CacheSpec::Gha {
            scope: variant.name.clone(),
        },
        CacheMode::Registry => CacheSpec::Registry {
            reference: format!(
                "{}:buildcache-{}",
                repository.with_context(|| format!(
                    "`--cache registry` keeps the cache in a registry and none is configured: {}",
                    crate::registry::HOW_TO_SET
                ))?,
                variant.name
            ),
        },
    })
}

/// The layer compression of a push: `--compression`, else the variant's `push_compression`.
/// Loads are never recompressed.
pub fn push_compression(
    push: bool,
    flag: Option<Compression>,
    variant: &Variant,
) -> Option<Compression> {
    if !push {
        return None;
    }
    flag.or(variant.push_compression)
}

/// `--build-arg KEY=VALUE` flags as pairs.
pub fn parse_build_args(args: &[String]) -> Result<Vec<(String, String)>> {
    args.iter()
        .map(|a| match a.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => bail!("--build-arg `{a}` is not KEY=VALUE"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Budget, Scan, Smoke};
    use std::time::Duration;

    fn variant() -> Variant {
        Variant {
            name: "cpu".into(),
            description: "CPU".into(),
            dockerfile: "/p/Dockerfile.cpu".into(),
            context: "/p".into(),
            target: Some("app".into()),
            image: "voxserve".into(),
            tags: vec![],
            build_args: BTreeMap::from([("WITH_TORCH".to_string(), "1".to_string())]),
            platforms: vec!["linux/amd64".into()],
            push_compression: None,
            budget: Budget::default(),
            smoke: Smoke {
                health_timeout: Duration::from_secs(1),
                memory: None,
                cpus: None,
                port: 8000,
                http_probe: None,
                env: vec![],
                labels: vec![],
                forbidden_paths: vec![],
                forbidden_packages: vec![],
                host_libraries: vec![],
                torch_libraries: false,
                exec: vec![],
                http: vec![],
                pytest: vec![],
            },
            scan: Scan {
                fail_on: vec![],
                ignore_unfixed: true,
                ignore: vec![],
                lockfiles: vec![],
            },
            dive: Default::default(),
        }
    }

    fn input<'a>(v: &'a Variant, git: &'a GitInfo) -> PlanInput<'a> {
        PlanInput {
            variant: v,
            title: "voxserve",
            description: "CPU",
            licenses: "Apache-2.0",
            version: "0.1.0",
            git,
            created: "2025-11-28T00:00:00Z".into(),
            push: false,
            push_by_digest: false,
            platform_tag: None,
            repository: v.image.clone(),
            registry: None,
            compression: None,
            provenance: Provenance::Max,
            sbom: None,
            platforms: v.platforms.clone(),
            builder: None,
            context: None,
            no_cache: false,
            pull: false,
            build_arg_overrides: vec![],
            base_image: None,
            extra_tags: vec![],
            staging_tag: None,
            cache: CacheSpec::None,
            ca_bundle: None,
            progress: Progress::Plain,
            metadata_file: "/t/meta.json".into(),
        }
    }

    fn git() -> GitInfo {
        GitInfo {
            revision: Some("0123456789abcdef".into()),
            source: Some("https://example.org/voxserve".into()),
            commit_time: None,
        }
    }

    fn has(argv: &[String], arg: &str) -> bool {
        argv.iter().any(|a| a == arg)
    }

    #[test]
    fn load_build_has_file_target_args_labels_and_tags() {
        let (v, g) = (variant(), git());
        let p = plan(&input(&v, &g));
        assert_eq!(&p.argv[..2], ["buildx", "build"]);
        for want in [
            "--file=/p/Dockerfile.cpu",
            "--target=app",
            "--platform=linux/amd64",
            "--build-arg=WITH_TORCH=1",
            "--label=org.opencontainers.image.title=voxserve",
            "--label=org.opencontainers.image.revision=0123456789abcdef",
            "--label=org.opencontainers.image.source=https://example.org/voxserve",
            "--label=org.opencontainers.image.created=2025-11-28T00:00:00Z",
            "--label=org.opencontainers.image.version=0.1.0",
            "--label=org.opencontainers.image.licenses=Apache-2.0",
            "--tag=voxserve:cpu",
            "--tag=voxserve:0.1.0-cpu",
            "--tag=voxserve:sha-0123456-cpu",
            "--load",
            "--provenance=false",
            "--progress=plain",
            "--metadata-file=/t/meta.json",
        ] {
            assert!(has(&p.argv, want), "missing {want} in {:?}", p.argv);
        }
        assert_eq!(p.argv.last().unwrap(), "/p");
        assert!(!p
            .argv
            .iter()
            .any(|a| a.starts_with("--cache") || a.starts_with("--secret")));
    }

    #[test]
    fn a_load_tags_only_the_staging_tag_and_a_push_every_tag() {
        let (v, g) = (variant(), git());
        let mut i = input(&v, &g);
        i.staging_tag = staging_tag(false, &v, "7-ab");
        let p = plan(&i);
        let tags: Vec<&String> = p.argv.iter().filter(|a| a.starts_with("--tag=")).collect();
        assert_eq!(tags, ["--tag=voxserve:xtask-staging-cpu-7-ab"]);
        assert_eq!(
            p.staging_tag.as_deref(),
            Some("voxserve:xtask-staging-cpu-7-ab")
        );
        assert_eq!(p.tags[0], "voxserve:cpu");
        assert_eq!(staging_tag(true, &v, "7-ab"), None);
    }

    #[test]
    fn push_with_and_without_compression() {
        let (v, g) = (variant(), git());
        let mut i = input(&v, &g);
        i.push = true;
        let p = plan(&i);
        assert!(has(&p.argv, "--push") && !has(&p.argv, "--load"));
        i.compression = Some(Compression::Zstd);
        let p = plan(&i);
        assert!(has(
            &p.argv,
            "--output=type=registry,compression=zstd,force-compression=true,oci-mediatypes=true"
        ));
        assert!(!has(&p.argv, "--push"));
    }

    #[test]
    fn push_by_digest_pushes_the_repository_untagged() {
        let (v, g) = (variant(), git());
        let mut i = input(&v, &g);
        i.push_by_digest = true;
        i.repository = "127.0.0.1:5000/voxserve".into();
        i.platforms = vec!["linux/arm64".into()];
        let p = plan(&i);
        assert!(has(
            &p.argv,
            "--output=type=image,name=127.0.0.1:5000/voxserve,push-by-digest=true,name-canonical=true,push=true"
        ));
        assert!(
            !p.argv.iter().any(|a| a.starts_with("--tag=")),
            "{:?}",
            p.argv
        );
        assert!(!has(&p.argv, "--push") && !has(&p.argv, "--load"));
        assert!(has(&p.argv, "--provenance=mode=max"));
        // The tags `merge` will give the index are still planned (and reported).
        assert_eq!(p.tags[0], "127.0.0.1:5000/voxserve:cpu");
        i.compression = Some(Compression::Zstd);
        let out = plan(&i)
            .argv
            .into_iter()
            .find(|a| a.starts_with("--output="))
            .unwrap();
        assert!(
            out.ends_with(",push=true,compression=zstd,force-compression=true,oci-mediatypes=true"),
            "{out}"
        );
    }

    #[test]
    fn push_tags_the_registry_and_attests_provenance() {
        let (v, g) = (variant(), git());
        let mut i = input(&v, &g);
        i.push = true;
        i.repository = "127.0.0.1:5000/team/voxserve".into();
        let p = plan(&i);
        assert_eq!(
            p.tags,
            [
                "127.0.0.1:5000/team/voxserve:cpu",
                "127.0.0.1:5000/team/voxserve:0.1.0-cpu",
                "127.0.0.1:5000/team/voxserve:sha-0123456-cpu"
            ]
        );
        assert!(has(&p.argv, "--provenance=mode=max"));
        assert!(!has(&p.argv, "--provenance=false"));
        i.provenance = Provenance::False;
        assert!(has(&plan(&i).argv, "--provenance=false"));
        i.provenance = Provenance::Min;
        assert!(has(&plan(&i).argv, "--provenance=mode=min"));
        assert!(!plan(&i).argv.iter().any(|a| a.starts_with("--attest")));
        i.sbom = Some(None);
        assert!(has(&plan(&i).argv, "--attest=type=sbom"));
        i.sbom = Some(Some("localhost/gen:1".into()));
        assert!(has(
            &plan(&i).argv,
            "--attest=type=sbom,generator=localhost/gen:1"
        ));
        // A load never attests: the image ID would change with every build.
        i.push = false;
        i.provenance = Provenance::Max;
        let p = plan(&i);
        assert!(has(&p.argv, "--provenance=false") && !has(&p.argv, "--provenance=mode=max"));
    }

    #[test]
    fn push_compression_comes_from_the_flag_then_the_variant() {
        let mut v = variant();
        assert_eq!(push_compression(true, None, &v), None);
        v.push_compression = Some(Compression::Zstd);
        assert_eq!(push_compression(true, None, &v), Some(Compression::Zstd));
        assert_eq!(
            push_compression(true, Some(Compression::Gzip), &v),
            Some(Compression::Gzip)
        );
        // --load never recompresses.
        assert_eq!(push_compression(false, None, &v), None);

        let g = git();
        let mut i = input(&v, &g);
        i.push = true;
        i.compression = push_compression(true, None, &v);
        assert!(has(
            &plan(&i).argv,
            "--output=type=registry,compression=zstd,force-compression=true,oci-mediatypes=true"
        ));
    }

    #[test]
    fn cache_modes() {
        let (v, g) = (variant(), git());
        let mut i = input(&v, &g);
        i.cache = cache_spec(CacheMode::Gha, &v, Utf8Path::new("/c"), None, "x").unwrap();
        let p = plan(&i);
        assert!(has(&p.argv, "--cache-from=type=gha,scope=cpu"));
        assert!(has(&p.argv, "--cache-to=type=gha,scope=cpu,mode=max"));

        let err = cache_spec(CacheMode::Registry, &v, Utf8Path::new("/c"), None, "x")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("[project]") && err.contains("--registry"),
            "{err}"
        );
        let repo = Some("127.0.0.1:5000/team/voxserve");
        i.cache = cache_spec(CacheMode::Registry, &v, Utf8Path::new("/c"), repo, "x").unwrap();
        let p = plan(&i);
        assert!(has(
            &p.argv,
            "--cache-from=type=registry,ref=127.0.0.1:5000/team/voxserve:buildcache-cpu"
        ));
        assert!(has(
            &p.argv,
            "--cache-to=type=registry,ref=127.0.0.1:5000/team/voxserve:buildcache-cpu,mode=max,image-manifest=true,oci-mediatypes=true"
        ));

        // No cache yet: export only, to a fresh directory that is swapped in afterwards.
        i.cache = cache_spec(
            CacheMode::Local,
            &v,
            Utf8Path::new("/nonexistent/c"),
            None,
            "x",
        )
        .unwrap();
        let p = plan(&i);
        assert!(has(
            &p.argv,
            "--cache-to=type=local,dest=/nonexistent/c/cpu.new-x,mode=max"
        ));
        assert!(!p.argv.iter().any(|a| a.starts_with("--cache-from")));

        i.cache = CacheSpec::Local {
            current: "/c/cpu".into(),
            import: true,
            to: "/c/cpu.new-x".into(),
        };
        assert!(has(&plan(&i).argv, "--cache-from=type=local,src=/c/cpu"));

        i.cache = cache_spec(CacheMode::None, &v, Utf8Path::new("/c"), None, "x").unwrap();
        assert!(!plan(&i).argv.iter().any(|a| a.starts_with("--cache")));
    }

    #[test]
    fn platform_builder_flags_and_overrides() {
        let (v, g) = (variant(), git());
        let mut i = input(&v, &g);
        i.platforms = vec!["linux/amd64".into(), "linux/arm64".into()];
        i.builder = Some("k8s".into());
        i.no_cache = true;
        i.pull = true;
        i.build_arg_overrides = vec![
            ("WITH_TORCH".into(), "0".into()),
            ("EXTRA".into(), "y".into()),
        ];
        i.base_image = Some("localhost/debian:trixie-slim".into());
        i.extra_tags = vec!["registry.example/voxserve:edge".into()];
        let p = plan(&i);
        assert_eq!(p.argv[2], "--builder=k8s");
        for want in [
            "--platform=linux/amd64,linux/arm64",
            "--no-cache",
            "--pull",
            "--build-arg=WITH_TORCH=0",
            "--build-arg=EXTRA=y",
            "--build-arg=BASE_IMAGE=localhost/debian:trixie-slim",
            "--tag=registry.example/voxserve:edge",
        ] {
            assert!(has(&p.argv, want), "missing {want} in {:?}", p.argv);
        }
        assert!(!has(&p.argv, "--build-arg=WITH_TORCH=1"));

        // An explicit BASE_IMAGE wins over the offline base.
        i.build_arg_overrides = vec![("BASE_IMAGE".into(), "debian:trixie-slim@sha256:abc".into())];
        let p = plan(&i);
        assert!(has(
            &p.argv,
            "--build-arg=BASE_IMAGE=debian:trixie-slim@sha256:abc"
        ));
        assert!(!has(
            &p.argv,
            "--build-arg=BASE_IMAGE=localhost/debian:trixie-slim"
        ));
    }

    #[test]
    fn ca_bundle_is_a_secret_and_nothing_else() {
        let (v, g) = (variant(), git());
        let mut i = input(&v, &g);
        i.ca_bundle = Some("/etc/ssl/certs/ca-certificates.crt".into());
        let p = plan(&i);
        let mentions: Vec<&String> = p
            .argv
            .iter()
            .filter(|a| a.contains("ca-certificates.crt"))
            .collect();
        assert_eq!(
            mentions,
            ["--secret=id=ca-bundle,src=/etc/ssl/certs/ca-certificates.crt"]
        );
    }

    #[test]
    fn without_git_there_is_no_sha_tag() {
        let v = variant();
        let g = GitInfo::default();
        let p = plan(&input(&v, &g));
        assert_eq!(p.tags, ["voxserve:cpu", "voxserve:0.1.0-cpu"]);
        assert!(!p.argv.iter().any(|a| a.contains("image.revision")));
    }

    #[test]
    fn build_args_must_be_key_value() {
        assert_eq!(
            parse_build_args(&["A=b=c".into()]).unwrap(),
            vec![("A".into(), "b=c".into())]
        );
        assert!(parse_build_args(&["novalue".into()]).is_err());
    }
}
