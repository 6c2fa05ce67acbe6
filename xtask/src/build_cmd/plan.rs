//! Plan (pure): a variant, the project's facts and the command's options → the `docker buildx
//! build` argv as data (with the tags and build args it sets), and the cache it imports and exports.

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;
use std::collections::BTreeMap;

use super::app_src::{self, AppSrc};
use super::git::GitInfo;
use super::resolve::{local_cache_dir, CacheMode, Setting, VariantFacts};
use super::Options;
use crate::config::{Compression, Config, Variant};
use crate::docker;
use crate::registry::Registry;

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
    pub(crate) fn arg(self) -> &'static str {
        match self {
            Provenance::Max => "--provenance=mode=max",
            Provenance::Min => "--provenance=mode=min",
            Provenance::False => "--provenance=false",
        }
    }
}

/// BuildKit progress output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Progress {
    #[default]
    Auto,
    Plain,
    Tty,
}

/// Cache import/export for one variant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum CacheSpec {
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
pub(crate) struct PlanInput<'a> {
    pub(crate) variant: &'a Variant,
    pub(crate) title: &'a str,
    pub(crate) description: &'a str,
    pub(crate) licenses: &'a str,
    pub(crate) version: &'a str,
    pub(crate) git: &'a GitInfo,
    /// The image's times: BuildKit's SOURCE_DATE_EPOCH and the `created` label.
    pub(crate) source_date_epoch: u64,
    pub(crate) push: bool,
    /// Push to `repository` without tags (`push-by-digest`): one platform's image, for
    /// `cargo xtask merge` to join with the other platforms' into one tagged index.
    pub(crate) push_by_digest: bool,
    /// With `push_by_digest` on a builder that cannot push untagged (the `docker` driver:
    /// "push-by-digest is currently not implemented"): the one tag the push gets instead, of
    /// that platform alone (see [`platform_tag`]).
    pub(crate) platform_tag: Option<String>,
    /// The repository the standard tags are made in: `<registry>/<image>` when pushing, the
    /// variant's `image` otherwise.
    pub(crate) repository: String,
    /// The registry pushed to, `HOST[/NAMESPACE]` (for the report), with `push`.
    pub(crate) registry: Option<String>,
    pub(crate) compression: Option<Compression>,
    /// With `push`: the provenance attestation (loaded images carry none).
    pub(crate) provenance: Provenance,
    /// With `push`: BuildKit's SBOM attestation, by this generator image (None inside: BuildKit's
    /// default generator).
    pub(crate) sbom: Option<Option<String>>,
    pub(crate) platforms: Vec<String>,
    pub(crate) builder: Option<String>,
    /// The `docker context` the build runs in (`docker --context`), for a context's builder.
    pub(crate) context: Option<String>,
    pub(crate) no_cache: bool,
    pub(crate) pull: bool,
    /// The network of RUN steps (`--network`), when not the builder's default.
    pub(crate) network: Option<String>,
    /// Labels `KEY=VALUE` besides the OCI ones.
    pub(crate) labels: Vec<String>,
    pub(crate) build_arg_overrides: Vec<(String, String)>,
    /// Passed as BASE_IMAGE unless a build arg already sets it.
    pub(crate) base_image: Option<String>,
    /// Its digest in the local store.
    pub(crate) base_digest: Option<String>,
    pub(crate) extra_tags: Vec<String>,
    /// With --load: the only tag buildx sets; `run` moves the real tags to the image once the
    /// build is judged (BuildKit's platform warnings), so a bad build moves none.
    pub(crate) staging_tag: Option<String>,
    pub(crate) cache: CacheSpec,
    pub(crate) ca_bundle: Option<Utf8PathBuf>,
    pub(crate) progress: Progress,
    pub(crate) metadata_file: Utf8PathBuf,
    /// The app as a prepared build context, for a Dockerfile that declares `ARG APP_SRC`.
    pub(crate) app_src: Option<AppSrc>,
}

#[derive(Debug, Clone)]
pub(crate) struct BuildPlan {
    pub(crate) argv: Vec<String>,
    /// The tags the image gets (from buildx, or from `run` after the staging tag).
    pub(crate) tags: Vec<String>,
    pub(crate) staging_tag: Option<String>,
    pub(crate) build_args: BTreeMap<String, String>,
}

/// The plan's input for one variant: the run's facts, the options and the variant decided into
/// one value (pure). Errors: a push by digest of several platforms on the docker driver, and a
/// load of several platforms into the classic image store.
pub(crate) fn input<'a>(
    config: &'a Config,
    setting: &'a Setting,
    options: &'a Options,
    variant: &'a Variant,
    facts: &VariantFacts,
    app_src: Option<AppSrc>,
) -> Result<PlanInput<'a>> {
    let pushing = options.pushing();
    let registry = setting.registry.as_ref();
    let repository = match registry.filter(|_| pushing) {
        Some(registry) => registry.repository(&variant.image),
        None => variant.image.clone(),
    };
    let platforms = default_platforms(
        &options.platform,
        &variant.platforms,
        pushing,
        &setting.native,
    );
    let platform_tag = platform_tag_of(config, setting, options, variant, &repository, &platforms)?;
    if !pushing {
        check_load(&platforms, setting)?;
    }
    let cache_repository = registry.map(|r| r.repository(&variant.image));
    // A context's builder is reached through `docker --context`, not `--builder`.
    let builder = options
        .builder
        .clone()
        .filter(|_| setting.context.is_none());
    Ok(PlanInput {
        variant,
        title: &config.project.name,
        description: match variant.description.as_str() {
            "" => &config.project.description,
            own => own,
        },
        licenses: &config.project.licenses,
        version: config.version(),
        git: &setting.git,
        source_date_epoch: setting.source_date_epoch,
        push: options.push,
        push_by_digest: options.push_by_digest,
        platform_tag,
        registry: registry.filter(|_| pushing).map(Registry::to_string),
        compression: push_compression(pushing, options.compression, variant),
        provenance: options.provenance.unwrap_or(Provenance::Max),
        sbom: options.sbom.then(|| options.sbom_generator.clone()),
        platforms,
        builder,
        context: setting.context.clone(),
        no_cache: options.no_cache,
        pull: options.pull,
        network: options.network.clone(),
        labels: options.labels.clone(),
        build_arg_overrides: setting.build_arg_overrides.clone(),
        base_image: setting.base_image.clone(),
        base_digest: setting.base_digest.clone(),
        extra_tags: options.tags.clone(),
        staging_tag: staging_tag(pushing, variant, &facts.suffix),
        cache: cache_spec(
            setting.cache,
            variant,
            &setting.cache_dir,
            cache_repository.as_deref(),
            &facts.suffix,
            facts.has_local_cache,
        )?,
        ca_bundle: setting.ca.as_ref().map(|c| c.path.clone()),
        progress: options.progress,
        metadata_file: crate::util::host_join(facts.tmp.path(), "metadata.json"),
        app_src,
        repository,
    })
}

/// The one tag of a push by digest on the docker driver (which cannot push untagged).
fn platform_tag_of(
    config: &Config,
    setting: &Setting,
    options: &Options,
    variant: &Variant,
    repository: &str,
    platforms: &[String],
) -> Result<Option<String>> {
    if !(options.push_by_digest && setting.builder.driver == "docker") {
        return Ok(None);
    }
    Ok(Some(platform_tag(
        repository,
        &variant.name,
        config.version(),
        setting.git.revision.as_deref(),
        &one_platform(platforms, &setting.native)?,
    )))
}

/// A load of several platforms is an image index, which only the containerd image store holds.
fn check_load(platforms: &[String], setting: &Setting) -> Result<()> {
    if platforms.len() > 1 && !setting.containerd_store {
        bail!(
            "a load of {} platforms ({}) is an image index, which the engine's {} store \
             cannot hold: enable the containerd image store (`\"features\": \
             {{\"containerd-snapshotter\": true}}` in /etc/docker/daemon.json), load one \
             platform (`--platform {}`), or push them (`--push`)",
            platforms.len(),
            platforms.join(", "),
            setting.store_name,
            setting.native
        );
    }
    Ok(())
}

/// The platforms a build targets: `--platform` when given; the variant's when pushing; for a
/// load, the engine's own platform when the variant lists it among several (a contributor's
/// build stays native and fast), else the variant's. Empty: buildx's default, the builder's own.
pub(crate) fn default_platforms(
    given: &[String],
    variant: &[String],
    pushing: bool,
    native: &str,
) -> Vec<String> {
    if !given.is_empty() {
        return given.to_vec();
    }
    if !pushing && variant.len() > 1 {
        if let Some(p) = variant.iter().find(|p| docker::same_platform(p, native)) {
            return vec![p.clone()];
        }
    }
    variant.to_vec()
}

/// The one platform a push by digest on the docker driver builds (it pushes one tag, of that
/// platform alone).
fn one_platform(platforms: &[String], native: &str) -> Result<String> {
    match platforms {
        [one] => Ok(one.clone()),
        [] => Ok(native.to_string()),
        several => bail!(
            "`--push-by-digest` pushes one platform's image, for `merge`; got {}: run one build \
             per platform, or push them together with `--push`",
            several.join(", ")
        ),
    }
}

/// The first 7 digits of a commit, as tags carry it.
fn short_revision(revision: &str) -> String {
    revision.chars().take(7).collect()
}

/// The standard tags in `repository`: `:<variant>`, `:<version>-<variant>`, `:sha-<7>-<variant>`.
pub(crate) fn standard_tags(
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
        tags.push(format!(
            "{repository}:sha-{}-{variant}",
            short_revision(rev)
        ));
    }
    tags
}

/// The `docker buildx build` argv of one variant (pure).
pub(crate) fn plan(input: &PlanInput) -> BuildPlan {
    let v = input.variant;
    let build_args = build_args(input);
    let tags = tags(input);
    let mut argv: Vec<String> = vec!["buildx".into(), "build".into()];
    argv.extend(input.builder.iter().map(|b| format!("--builder={b}")));
    argv.push(format!("--file={}", v.dockerfile));
    argv.extend(v.target.iter().map(|t| format!("--target={t}")));
    if !input.platforms.is_empty() {
        argv.push(format!("--platform={}", input.platforms.join(",")));
    }
    argv.extend(
        build_args
            .iter()
            .map(|(k, val)| format!("--build-arg={k}={val}")),
    );
    argv.extend(app_context_arg(input, &build_args));
    argv.extend(label_args(input, &build_args));
    argv.extend(input.labels.iter().map(|l| format!("--label={l}")));
    argv.extend(tag_args(input, &tags));
    argv.extend(
        input
            .ca_bundle
            .iter()
            .map(|ca| format!("--secret=id=ca-bundle,src={ca}")),
    );
    argv.extend(cache_args(&input.cache));
    argv.extend(output_args(input));
    if input.no_cache {
        argv.push("--no-cache".into());
    }
    if input.pull {
        argv.push("--pull".into());
    }
    argv.extend(input.network.iter().map(|n| format!("--network={n}")));
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

/// The variant's build args, the `--build-arg` flags over them, the offline base as BASE_IMAGE,
/// the prepared app's context as APP_SRC and the source's time as SOURCE_DATE_EPOCH unless one
/// of them sets it.
fn build_args(input: &PlanInput) -> BTreeMap<String, String> {
    let mut args = input.variant.build_args.clone();
    args.extend(input.build_arg_overrides.iter().cloned());
    if let Some(base) = &input.base_image {
        args.entry("BASE_IMAGE".into())
            .or_insert_with(|| base.clone());
    }
    if let Some(app) = &input.app_src {
        args.entry(app_src::ARG.into())
            .or_insert_with(|| app.name.clone());
    }
    args.entry("SOURCE_DATE_EPOCH".into())
        .or_insert_with(|| input.source_date_epoch.to_string());
    args
}

/// `--build-context` of the prepared app, unless a `--build-arg APP_SRC` chose another source.
fn app_context_arg(input: &PlanInput, build_args: &BTreeMap<String, String>) -> Option<String> {
    let app = input.app_src.as_ref()?;
    (build_args.get(app_src::ARG) == Some(&app.name))
        .then(|| format!("--build-context={}={}", app.name, app.dir))
}

/// The OCI labels that have a value; `base.name` and `base.digest` say what a rebuild starts from.
fn label_args(input: &PlanInput, build_args: &BTreeMap<String, String>) -> Vec<String> {
    let created = crate::util::rfc3339(input.source_date_epoch);
    let (base_name, base_digest) = base_of(input, build_args);
    let labels = [
        ("base.digest", base_digest.as_deref()),
        ("base.name", base_name.as_deref()),
        ("created", Some(created.as_str())),
        ("description", Some(input.description)),
        ("licenses", Some(input.licenses)),
        ("revision", input.git.revision.as_deref()),
        ("source", input.git.source.as_deref()),
        ("title", Some(input.title)),
        ("version", Some(input.version)),
    ];
    labels
        .into_iter()
        .filter_map(|(k, val)| {
            let val = val.filter(|v| !v.is_empty())?;
            Some(format!("--label=org.opencontainers.image.{k}={val}"))
        })
        .collect()
}

/// The base image's name and digest: the offline base's digest in the local store, or the digest
/// BASE_IMAGE names itself (`name@sha256:…`).
fn base_of(
    input: &PlanInput,
    build_args: &BTreeMap<String, String>,
) -> (Option<String>, Option<String>) {
    let Some(base) = build_args.get("BASE_IMAGE") else {
        return (None, None);
    };
    if let Some((name, digest)) = base.split_once('@') {
        return (Some(name.to_string()), Some(digest.to_string()));
    }
    let digest = input
        .base_digest
        .clone()
        .filter(|_| input.base_image.as_ref() == Some(base));
    (Some(base.clone()), digest)
}

/// The tags the image gets: the standard ones, then the variant's and the command line's.
fn tags(input: &PlanInput) -> Vec<String> {
    let mut tags = standard_tags(
        &input.repository,
        &input.variant.name,
        input.version,
        input.git.revision.as_deref(),
    );
    for t in input.variant.tags.iter().chain(&input.extra_tags) {
        if !tags.contains(t) {
            tags.push(t.clone());
        }
    }
    tags
}

/// The tags buildx sets: a load's staging tag, a push by digest's platform tag (or none), else
/// every tag. By digest, no standard tag moves until `merge` tags the index.
fn tag_args(input: &PlanInput, tags: &[String]) -> Vec<String> {
    let set: Vec<&String> = match (
        &input.staging_tag,
        &input.platform_tag,
        input.push_by_digest,
    ) {
        (Some(staging), _, _) => vec![staging],
        (None, Some(tag), true) => vec![tag],
        (None, None, true) => vec![],
        (None, _, false) => tags.iter().collect(),
    };
    set.into_iter().map(|t| format!("--tag={t}")).collect()
}

fn cache_args(cache: &CacheSpec) -> Vec<String> {
    match cache {
        CacheSpec::None => vec![],
        CacheSpec::Local {
            current,
            import,
            to,
        } => {
            let from = import.then(|| format!("--cache-from=type=local,src={current}"));
            let to = format!("--cache-to=type=local,dest={to},mode=max");
            from.into_iter().chain([to]).collect()
        }
        CacheSpec::Gha { scope } => vec![
            format!("--cache-from=type=gha,scope={scope}"),
            format!("--cache-to=type=gha,scope={scope},mode=max"),
        ],
        // A plain OCI image manifest, which every registry stores; mode=max keeps every stage.
        CacheSpec::Registry { reference } => vec![
            format!("--cache-from=type=registry,ref={reference}"),
            format!(
                "--cache-to=type=registry,ref={reference},mode=max,image-manifest=true,oci-mediatypes=true"
            ),
        ],
    }
}

/// Where the image goes: the local store, a registry with its tags, or a registry by digest;
/// with a push, its compression and attestations.
fn output_args(input: &PlanInput) -> Vec<String> {
    if !(input.push || input.push_by_digest) {
        // Attestations make loaded images differ on every build (they embed the build time).
        return vec!["--load".into(), "--provenance=false".into()];
    }
    let forced = |c: Compression| {
        format!(
            "compression={},force-compression=true,oci-mediatypes=true",
            c.as_str()
        )
    };
    let mut argv = vec![];
    if input.push_by_digest && input.platform_tag.is_none() {
        let mut output = format!(
            "--output=type=image,name={},push-by-digest=true,name-canonical=true,push=true",
            input.repository
        );
        if let Some(c) = input.compression {
            output.push_str(&format!(",{}", forced(c)));
        }
        argv.push(output);
    } else {
        argv.push(match input.compression {
            Some(c) => format!("--output=type=registry,{}", forced(c)),
            None => "--push".into(),
        });
    }
    argv.push(input.provenance.arg().into());
    match &input.sbom {
        None => {}
        Some(None) => argv.push("--attest=type=sbom".into()),
        Some(Some(generator)) => argv.push(format!("--attest=type=sbom,generator={generator}")),
    }
    argv
}

/// The staging tag of a build that loads into the local store (`<image>:xtask-staging-…`).
pub(crate) fn staging_tag(push: bool, variant: &Variant, suffix: &str) -> Option<String> {
    (!push).then(|| format!("{}:xtask-staging-{}-{suffix}", variant.image, variant.name))
}

/// The tag a push by digest gets where the builder cannot push untagged: the commit's tag of the
/// variant for that platform alone, `<repository>:sha-<7>-<variant>-<os>-<arch>` (without git:
/// `<version>-<variant>-<os>-<arch>`), so that runs of other commits never move it.
pub(crate) fn platform_tag(
    repository: &str,
    variant: &str,
    version: &str,
    revision: Option<&str>,
    platform: &str,
) -> String {
    let slug = platform.replace('/', "-");
    match revision {
        Some(rev) => format!("{repository}:sha-{}-{variant}-{slug}", short_revision(rev)),
        None => format!("{repository}:{version}-{variant}-{slug}"),
    }
}

/// The cache for a variant under a mode; `cache_dir` is the root of local caches (`has_local`:
/// the variant's holds a cache), `repository` the variant's repository in the registry
/// (`--cache registry` needs one).
pub(crate) fn cache_spec(
    mode: CacheMode,
    variant: &Variant,
    cache_dir: &Utf8Path,
    repository: Option<&str>,
    suffix: &str,
    has_local: bool,
) -> Result<CacheSpec> {
    Ok(match mode {
        CacheMode::None => CacheSpec::None,
        CacheMode::Local => {
            let current = local_cache_dir(cache_dir, variant);
            CacheSpec::Local {
                import: has_local,
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
pub(crate) fn push_compression(
    push: bool,
    flag: Option<Compression>,
    variant: &Variant,
) -> Option<Compression> {
    if !push {
        return None;
    }
    flag.or(variant.push_compression)
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
            source_date_epoch: 1764288000,
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
            network: None,
            labels: vec![],
            build_arg_overrides: vec![],
            base_image: None,
            base_digest: None,
            extra_tags: vec![],
            staging_tag: None,
            cache: CacheSpec::None,
            ca_bundle: None,
            progress: Progress::Plain,
            metadata_file: "/t/meta.json".into(),
            app_src: None,
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
    fn the_prepared_app_is_a_named_context_that_app_src_names() {
        let (v, g) = (variant(), git());
        let mut i = input(&v, &g);
        i.app_src = Some(AppSrc {
            name: "app-src-0123456789abcdef".into(),
            dir: "/t/app-src".into(),
        });
        let p = plan(&i);
        for want in [
            "--build-arg=APP_SRC=app-src-0123456789abcdef",
            "--build-context=app-src-0123456789abcdef=/t/app-src",
        ] {
            assert!(has(&p.argv, want), "missing {want} in {:?}", p.argv);
        }
        // A --build-arg APP_SRC (the Dockerfile's own stage, say) wins, and no context is sent.
        i.build_arg_overrides = vec![("APP_SRC".into(), "app-src-build".into())];
        let p = plan(&i);
        assert!(
            has(&p.argv, "--build-arg=APP_SRC=app-src-build"),
            "{:?}",
            p.argv
        );
        assert!(
            !p.argv.iter().any(|a| a.starts_with("--build-context")),
            "{:?}",
            p.argv
        );
        // Without a prepared app (a Dockerfile without the ARG): neither.
        let p = plan(&input(&v, &g));
        assert!(!p
            .argv
            .iter()
            .any(|a| a.contains("APP_SRC") || a.starts_with("--build-context")));
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
            "--build-arg=SOURCE_DATE_EPOCH=1764288000",
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
        i.cache = cache_spec(CacheMode::Gha, &v, Utf8Path::new("/c"), None, "x", false).unwrap();
        let p = plan(&i);
        assert!(has(&p.argv, "--cache-from=type=gha,scope=cpu"));
        assert!(has(&p.argv, "--cache-to=type=gha,scope=cpu,mode=max"));

        let err = cache_spec(
            CacheMode::Registry,
            &v,
            Utf8Path::new("/c"),
            None,
            "x",
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("[project]") && err.contains("--registry"),
            "{err}"
        );
        let repo = Some("127.0.0.1:5000/team/voxserve");
        i.cache = cache_spec(
            CacheMode::Registry,
            &v,
            Utf8Path::new("/c"),
            repo,
            "x",
            false,
        )
        .unwrap();
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
            false,
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

        i.cache = cache_spec(CacheMode::None, &v, Utf8Path::new("/c"), None, "x", false).unwrap();
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
    fn the_base_is_named_with_its_digest_in_labels() {
        let (v, g) = (variant(), git());
        let mut i = input(&v, &g);
        i.base_image = Some("localhost/debian:trixie-slim".into());
        i.base_digest = Some("sha256:03b2".into());
        let p = plan(&i);
        for want in [
            "--label=org.opencontainers.image.base.name=localhost/debian:trixie-slim",
            "--label=org.opencontainers.image.base.digest=sha256:03b2",
        ] {
            assert!(has(&p.argv, want), "missing {want} in {:?}", p.argv);
        }
        // Another base given by digest: that one, and no digest where none is known.
        i.build_arg_overrides = vec![("BASE_IMAGE".into(), "debian:trixie-slim@sha256:abc".into())];
        let p = plan(&i);
        assert!(has(
            &p.argv,
            "--label=org.opencontainers.image.base.name=debian:trixie-slim"
        ));
        assert!(has(
            &p.argv,
            "--label=org.opencontainers.image.base.digest=sha256:abc"
        ));
        i.build_arg_overrides = vec![("BASE_IMAGE".into(), "debian:trixie-slim".into())];
        let p = plan(&i);
        assert!(
            !p.argv.iter().any(|a| a.contains("base.digest")),
            "{:?}",
            p.argv
        );
    }

    #[test]
    fn the_source_date_epoch_is_a_build_arg_and_the_created_label() {
        let (v, g) = (variant(), git());
        let mut i = input(&v, &g);
        i.source_date_epoch = 1796451911;
        let p = plan(&i);
        assert!(has(&p.argv, "--build-arg=SOURCE_DATE_EPOCH=1796451911"));
        assert!(has(
            &p.argv,
            "--label=org.opencontainers.image.created=2026-12-05T06:25:11Z"
        ));
        assert_eq!(p.build_args["SOURCE_DATE_EPOCH"], "1796451911");
        assert!(!p.argv.iter().any(|a| a.starts_with("--network")));
        i.network = Some("host".into());
        assert!(has(&plan(&i).argv, "--network=host"));
        i.labels = vec!["k=v".into()];
        assert!(has(&plan(&i).argv, "--label=k=v"));
        // `--build-arg SOURCE_DATE_EPOCH=…` wins, as for any build arg.
        i.build_arg_overrides = vec![("SOURCE_DATE_EPOCH".into(), "0".into())];
        let p = plan(&i);
        assert!(has(&p.argv, "--build-arg=SOURCE_DATE_EPOCH=0"));
        assert!(!has(&p.argv, "--build-arg=SOURCE_DATE_EPOCH=1796451911"));
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
    fn a_load_builds_the_native_platform_a_push_every_configured_one() {
        let both = ["linux/amd64".to_string(), "linux/arm64".into()];
        let native = "linux/amd64";
        assert_eq!(
            default_platforms(&[], &both, false, native),
            ["linux/amd64"]
        );
        assert_eq!(default_platforms(&[], &both, true, native), both);
        assert_eq!(
            default_platforms(&["linux/arm64".into()], &both, false, native),
            ["linux/arm64"]
        );
        // The engine's platform is not listed: the listed ones, emulated.
        let arm_only = ["linux/arm64".to_string()];
        assert_eq!(default_platforms(&[], &arm_only, false, native), arm_only);
        assert_eq!(
            default_platforms(&[], &both, false, "linux/arm64"),
            ["linux/arm64"]
        );
        assert!(default_platforms(&[], &[], false, native).is_empty());
    }
}
