//! Plan (pure): the image's facts, the variant's `[smoke]` section and the run options → the
//! hardened `docker run` argv and the checks to run once the container is healthy, or the reason
//! the image is refused. The in-container probes are the Python files in `probes/`.

use camino::Utf8PathBuf;
use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::{ExecCheck, HttpCheck, Smoke, Variant};
use crate::docker::ImageConfig;
use crate::util::ContainerPath;

/// The label every smoke container carries; its value is the variant.
pub(crate) const LABEL: &str = "voxserve.xtask.smoke";
/// Probe interval while the container is starting (the whole health timeout).
const START_INTERVAL: &str = "500ms";
/// Probe interval once healthy.
const HEALTH_INTERVAL: &str = "1s";
const HEALTH_RETRIES: &str = "3";
/// A check may take this long at least (the variant's health timeout when longer).
const MIN_CHECK_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends a request and prints the answer as one JSON line (HTTP checks and `http_probe`).
const HTTP_REQUEST_PROBE: &str = include_str!("probes/http_request.py");
/// Which of the paths in argv exist (run as root, so restricted directories are seen too).
const FORBIDDEN_PATHS_PROBE: &str = include_str!("probes/forbidden_paths.py");
/// Installed distributions matching the globs in argv (names normalised as in PEP 503).
const FORBIDDEN_PACKAGES_PROBE: &str = include_str!("probes/forbidden_packages.py");
/// Every ELF file's DT_NEEDED, resolved as the dynamic loader would, from the files alone.
const SHARED_LIBRARIES_PROBE: &str = include_str!("probes/shared_libraries.py");
/// `import torch`, then every library torch preloads or its libraries dlopen by name.
const TORCH_LIBRARIES_PROBE: &str = include_str!("probes/torch_libraries.py");
/// The user's ID where the image has no `id` (distroless): Python's view of it.
const UID_PROBE: &str = "import os; print(os.getuid())";
/// Runs a mounted pytest file with the image's Python, pytest from a mounted site directory.
const PYTEST_PROBE: &str = include_str!("probes/pytest_file.py");
/// Where `smoke.pytest` checks find their files in the container (read-only bind mounts).
const PYTEST_MOUNTS: &str = "/xtask-smoke/pytest";

/// How much slower a container runs under emulation (QEMU user mode) than natively, as far as
/// the smoke timeouts are concerned. Measured 2026-12-01 with `cargo xtask smoke cpu-minimal
/// --platform linux/arm64` on a 2-core amd64 machine: see docs/MULTI_PLATFORM.md.
pub(crate) const EMULATION_FACTOR: u32 = 5;

/// The run options that shape the plan.
#[derive(Debug, Clone, Default)]
pub(crate) struct Options {
    /// `--platform`: the platform of the image to run (None: the engine's).
    pub platform: Option<String>,
    /// The platform runs under emulation on this engine: timeouts are scaled by
    /// [`EMULATION_FACTOR`] (unless `timeout` is given).
    pub(crate) emulated: bool,
    pub(crate) allow_root: bool,
    pub(crate) gpus: bool,
    pub(crate) rocm: bool,
    /// `Some(0)`: a free host port.
    pub(crate) publish: Option<u16>,
    pub labels: Vec<String>,
    /// `crate::reclaim` owner labels (none for a kept container: it is the user's then).
    pub(crate) owner: Vec<String>,
    pub(crate) timeout: Option<Duration>,
    /// For `smoke.pytest` checks: the site directory holding pytest, per requirements file.
    pub(crate) pytest_sites: BTreeMap<Utf8PathBuf, Utf8PathBuf>,
}

/// How health is judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HealthMode {
    /// The image's HEALTHCHECK, with run-time timing overrides.
    Engine,
    /// No HEALTHCHECK: xtask GETs this path from inside the container until it answers 2xx.
    Probe(String),
}

/// One check run once the container is healthy.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Check {
    Exec(ExecCheck),
    Http(HttpCheck),
    NotRoot,
    /// Judged from the image config.
    Env(Vec<String>),
    /// Judged from the image config.
    Labels(Vec<String>),
    ForbiddenPaths(Vec<String>),
    ForbiddenPackages(Vec<String>),
    /// Every DT_NEEDED of every ELF file in the image resolves inside it; these sonames are the
    /// host's to provide.
    SharedLibraries {
        host: Vec<String>,
    },
    /// torch finds and loads every library it loads by name.
    TorchLibraries,
    /// A test file of the repository, at `file` in the container, pytest at `site`.
    Pytest {
        name: String,
        site: ContainerPath,
        file: ContainerPath,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) variant: String,
    pub(crate) image: String,
    pub(crate) container: String,
    /// `docker` arguments, from `run` to the image.
    pub(crate) run_args: Vec<String>,
    pub(crate) health: HealthMode,
    pub(crate) timeout: Duration,
    pub(crate) check_timeout: Duration,
    /// The factor the timeouts were scaled by (1: native).
    pub(crate) slowdown: u32,
    pub(crate) port: u16,
    pub(crate) checks: Vec<Check>,
}

/// True when an image's `User` means root (empty, `root`, `0`, with any group).
pub(crate) fn runs_as_root(user: &str) -> bool {
    let user = user.split(':').next().unwrap_or("").trim();
    user.is_empty() || user == "root" || user == "0"
}

/// True when the image config defines a health check (not absent, empty or `NONE`).
pub fn has_healthcheck(config: &ImageConfig) -> bool {
    config
        .healthcheck
        .as_ref()
        .and_then(|h| h.test.as_ref())
        .and_then(|t| t.first())
        .is_some_and(|first| first != "NONE")
}

/// The plan for one variant, or the reason the image is refused.
pub(crate) fn plan(
    variant: &Variant,
    image: &str,
    config: &ImageConfig,
    opts: &Options,
    suffix: &str,
) -> std::result::Result<Plan, String> {
    let smoke = &variant.smoke;
    let health = admit(variant, config, opts.allow_root)?;
    let (mounts, pytest_checks) = pytest_mounts(smoke, opts)?;
    let slowdown = if opts.emulated { EMULATION_FACTOR } else { 1 };
    // An explicit --timeout is taken as given; the configured one is scaled under emulation.
    let timeout = opts.timeout.unwrap_or(smoke.health_timeout * slowdown);
    let container = format!("xtask-smoke-{}-{suffix}", variant.name);
    let mut run_args = container_args(&container, variant, opts);
    run_args.extend(health_args(&health, config, timeout, slowdown));
    run_args.extend(device_args(opts, smoke.port));
    run_args.extend(mounts);
    run_args.push(image.to_string());
    let mut checks = configured_checks(smoke, opts.allow_root);
    checks.extend(pytest_checks);
    Ok(Plan {
        variant: variant.name.clone(),
        image: image.to_string(),
        container,
        run_args,
        health,
        timeout,
        check_timeout: timeout.max(MIN_CHECK_TIMEOUT * slowdown),
        slowdown,
        port: smoke.port,
        checks,
    })
}

/// How health will be judged, or why the image is refused (root, or no way to judge health).
fn admit(
    variant: &Variant,
    config: &ImageConfig,
    allow_root: bool,
) -> std::result::Result<HealthMode, String> {
    if runs_as_root(&config.user) && !allow_root {
        let user = if config.user.is_empty() {
            "no USER, so root".to_string()
        } else {
            format!("USER {}", config.user)
        };
        return Err(format!(
            "refused: the image runs as root ({user}); set a non-root USER in its Dockerfile, or \
             pass --allow-root"
        ));
    }
    match (has_healthcheck(config), &variant.smoke.http_probe) {
        (true, _) => Ok(HealthMode::Engine),
        (false, Some(path)) => Ok(HealthMode::Probe(path.clone())),
        (false, None) => Err(format!(
            "the image has no HEALTHCHECK: add one to its Dockerfile, or set `smoke.http_probe` \
             (a path to GET) for variant `{}` in images.toml",
            variant.name
        )),
    }
}

/// `run --detach …` up to the health flags: name, platform, labels, the hardened runtime (nothing
/// the service should need) and the configured resources.
fn container_args(container: &str, variant: &Variant, opts: &Options) -> Vec<String> {
    let mut args: Vec<String> = ["run", "--detach", "--pull", "never", "--name", container]
        .map(String::from)
        .into();
    if let Some(platform) = &opts.platform {
        args.extend(["--platform".into(), platform.clone()]);
    }
    let labels = std::iter::once(format!("{LABEL}={}", variant.name))
        .chain(opts.owner.iter().chain(&opts.labels).cloned());
    args.extend(labels.flat_map(|l| ["--label".to_string(), l]));
    args.extend(
        [
            "--read-only",
            "--tmpfs",
            "/tmp:rw,noexec,nosuid,size=64m",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges",
        ]
        .map(String::from),
    );
    let smoke = &variant.smoke;
    let resources = [("--memory", &smoke.memory), ("--cpus", &smoke.cpus)];
    for (flag, value) in resources {
        args.extend(value.iter().flat_map(|v| [flag.to_string(), v.clone()]));
    }
    args
}

/// The image's HEALTHCHECK kept, with its timing overridden: probed often while starting, for the
/// whole timeout. Nothing when xtask probes itself.
fn health_args(
    health: &HealthMode,
    config: &ImageConfig,
    timeout: Duration,
    slowdown: u32,
) -> Vec<String> {
    if *health != HealthMode::Engine {
        return Vec::new();
    }
    let mut args = vec![
        "--health-interval".into(),
        HEALTH_INTERVAL.into(),
        "--health-start-period".into(),
        format!("{}ms", timeout.as_millis().max(1)),
        "--health-start-interval".into(),
        START_INTERVAL.into(),
        "--health-retries".into(),
        HEALTH_RETRIES.into(),
    ];
    // Under emulation one probe is a slower process: its own timeout is scaled too.
    let probe = config.healthcheck.as_ref().and_then(|h| h.timeout);
    if let Some(probe) = probe.filter(|&p| p > 0 && slowdown > 1) {
        let ms = u64::try_from(probe / 1_000_000).unwrap_or(0) * u64::from(slowdown);
        args.extend(["--health-timeout".into(), format!("{}ms", ms.max(1))]);
    }
    args
}

/// GPUs, ROCm devices and the published port, as the options ask.
fn device_args(opts: &Options, port: u16) -> Vec<String> {
    let mut args: Vec<String> = Vec::new();
    if opts.gpus {
        args.extend(["--gpus", "all"].map(String::from));
    }
    if opts.rocm {
        let devices = ["--device", "/dev/kfd", "--device", "/dev/dri"];
        args.extend(
            devices
                .into_iter()
                .chain(["--group-add", "video"])
                .map(String::from),
        );
    }
    let publish = match opts.publish {
        Some(0) => Some(format!("127.0.0.1::{port}")),
        Some(host) => Some(format!("127.0.0.1:{host}:{port}")),
        None => None,
    };
    args.extend(
        publish
            .into_iter()
            .flat_map(|p| ["--publish".to_string(), p]),
    );
    args
}

/// For each pytest check: its test file's directory and pytest's site directory mounted
/// read-only, and the check that runs the file from there.
fn pytest_mounts(
    smoke: &Smoke,
    opts: &Options,
) -> std::result::Result<(Vec<String>, Vec<Check>), String> {
    let mut args = Vec::new();
    let mut checks = Vec::new();
    for (i, check) in smoke.pytest.iter().enumerate() {
        let (Some(dir), Some(file)) = (check.path.parent(), check.path.file_name()) else {
            return Err(format!("smoke.pytest check `{}` names no file", check.name));
        };
        let Some(site) = opts.pytest_sites.get(&check.requirements) else {
            return Err(format!(
                "smoke.pytest check `{}`: pytest from {} was not installed",
                check.name,
                crate::util::shown(&check.requirements)
            ));
        };
        let mounts = ContainerPath::new(PYTEST_MOUNTS);
        let (tests_at, site_at) = (
            mounts.join(format!("tests-{i}")),
            mounts.join(format!("site-{i}")),
        );
        for (source, target) in [(dir, &tests_at), (site.as_path(), &site_at)] {
            args.extend([
                "--mount".into(),
                format!("type=bind,source={source},target={target},readonly"),
            ]);
        }
        checks.push(Check::Pytest {
            name: check.name.clone(),
            site: site_at,
            file: tests_at.join(file),
        });
    }
    Ok((args, checks))
}

/// The checks of the variant's `[smoke]` section, in the order they run (pytest ones last).
fn configured_checks(smoke: &Smoke, allow_root: bool) -> Vec<Check> {
    let mut checks: Vec<Check> = smoke.exec.iter().cloned().map(Check::Exec).collect();
    checks.extend(smoke.http.iter().cloned().map(Check::Http));
    if !allow_root {
        checks.push(Check::NotRoot);
    }
    let lists = [
        (&smoke.env, Check::Env as fn(Vec<String>) -> Check),
        (&smoke.labels, Check::Labels),
        (&smoke.forbidden_paths, Check::ForbiddenPaths),
        (&smoke.forbidden_packages, Check::ForbiddenPackages),
    ];
    for (list, check) in lists {
        if !list.is_empty() {
            checks.push(check(list.clone()));
        }
    }
    checks.push(Check::SharedLibraries {
        host: smoke.host_libraries.clone(),
    });
    if smoke.torch_libraries {
        checks.push(Check::TorchLibraries);
    }
    checks
}

impl Check {
    pub(crate) fn name(&self) -> String {
        match self {
            Check::Exec(c) => c.name.clone(),
            Check::Http(c) => c.name.clone(),
            Check::NotRoot => "user is not root".into(),
            Check::Env(_) => "env vars".into(),
            Check::Labels(_) => "labels".into(),
            Check::ForbiddenPaths(_) => "forbidden paths absent".into(),
            Check::ForbiddenPackages(_) => "forbidden python packages absent".into(),
            Check::SharedLibraries { .. } => "shared libraries resolve".into(),
            Check::TorchLibraries => "torch loads its libraries".into(),
            Check::Pytest { name, .. } => name.clone(),
        }
    }

    /// The user to exec as (None: the image's). Root where a check must read every file.
    pub(crate) fn user(&self) -> Option<&'static str> {
        match self {
            Check::ForbiddenPaths(_) | Check::SharedLibraries { .. } => Some("0"),
            _ => None,
        }
    }

    /// The command to try when the first one's executable is not in the image.
    pub(crate) fn fallback_argv(&self) -> Option<Vec<String>> {
        match self {
            Check::NotRoot => Some(vec!["python3".into(), "-c".into(), UID_PROBE.into()]),
            _ => None,
        }
    }

    /// The command run in the container; None for checks judged from the image config.
    pub(crate) fn argv(&self, port: u16, timeout: Duration) -> Option<Vec<String>> {
        let python = |snippet: &str, args: Vec<String>| {
            let mut argv = vec!["python3".to_string(), "-c".into(), snippet.into()];
            argv.extend(args);
            argv
        };
        match self {
            Check::Exec(c) => Some(c.cmd.clone()),
            Check::Http(c) => Some(http_argv(
                &c.method,
                port,
                &c.path,
                c.wav_seconds.unwrap_or(0.0),
                timeout,
            )),
            Check::NotRoot => Some(vec!["id".into(), "-u".into()]),
            Check::Env(_) | Check::Labels(_) => None,
            Check::ForbiddenPaths(paths) => Some(python(FORBIDDEN_PATHS_PROBE, paths.clone())),
            Check::ForbiddenPackages(globs) => {
                Some(python(FORBIDDEN_PACKAGES_PROBE, globs.clone()))
            }
            Check::SharedLibraries { host } => {
                let mut args: Vec<String> = host
                    .iter()
                    .flat_map(|soname| ["--host".to_string(), soname.clone()])
                    .collect();
                args.push("/".into());
                Some(python(SHARED_LIBRARIES_PROBE, args))
            }
            Check::TorchLibraries => Some(python(TORCH_LIBRARIES_PROBE, vec![])),
            Check::Pytest { site, file, .. } => Some(python(
                PYTEST_PROBE,
                vec![site.to_string(), file.to_string()],
            )),
        }
    }
}

/// `python3 -c <the HTTP probe> METHOD URL WAV_SECONDS TIMEOUT`.
pub(crate) fn http_argv(
    method: &str,
    port: u16,
    path: &str,
    wav_seconds: f64,
    timeout: Duration,
) -> Vec<String> {
    vec![
        "python3".into(),
        "-c".into(),
        HTTP_REQUEST_PROBE.into(),
        method.into(),
        format!("http://127.0.0.1:{port}{path}"),
        wav_seconds.to_string(),
        format!("{:.1}", timeout.as_secs_f64()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::docker;

    fn variant(extra: &str) -> Variant {
        let dir = crate::util::project_root();
        let text = format!(
            "[project]\nname = \"t\"\ndescription = \"t\"\nlicenses = \"MIT\"\nversion = \"1\"\n\
             [base]\nimage = \"b\"\nsuite = \"trixie\"\nsource_date_epoch = 0\n\
             [variants.cpu]\ndockerfile = \"Cargo.toml\"\nimage = \"voxserve\"\n\
             [variants.cpu.smoke]\nmemory = \"1g\"\ncpus = \"1.5\"\nhealth_timeout = \"90s\"\n{extra}"
        );
        let config = Config::parse(&dir.join("images.toml"), &text).unwrap();
        config.variants[0].clone()
    }

    fn image(user: &str, healthcheck: bool) -> ImageConfig {
        ImageConfig {
            user: user.into(),
            healthcheck: healthcheck.then(|| docker::Healthcheck {
                test: Some(vec!["CMD".into(), "true".into()]),
                interval: None,
                timeout: Some(5_000_000_000),
            }),
            ..ImageConfig::default()
        }
    }

    /// The value after `flag` in argv.
    fn after<'a>(args: &'a [String], flag: &str) -> Vec<&'a str> {
        args.windows(2)
            .filter(|w| w[0] == flag)
            .map(|w| w[1].as_str())
            .collect()
    }

    #[test]
    fn run_args_are_hardened_labelled_and_override_health_timing() {
        let opts = Options {
            labels: vec!["voxserve.xtask.test=42".into()],
            owner: vec!["voxserve.xtask.owner.pid=7".into()],
            ..Options::default()
        };
        let plan = plan(
            &variant(""),
            "voxserve:cpu",
            &image("10001", true),
            &opts,
            "7-ab",
        )
        .unwrap();
        let a = &plan.run_args;
        assert_eq!(&a[..4], ["run", "--detach", "--pull", "never"]);
        assert_eq!(plan.container, "xtask-smoke-cpu-7-ab");
        assert_eq!(after(a, "--name"), ["xtask-smoke-cpu-7-ab"]);
        assert_eq!(
            after(a, "--label"),
            [
                "voxserve.xtask.smoke=cpu",
                "voxserve.xtask.owner.pid=7",
                "voxserve.xtask.test=42"
            ]
        );
        assert!(a.contains(&"--read-only".to_string()));
        assert_eq!(after(a, "--tmpfs"), ["/tmp:rw,noexec,nosuid,size=64m"]);
        assert_eq!(after(a, "--cap-drop"), ["ALL"]);
        assert_eq!(after(a, "--security-opt"), ["no-new-privileges"]);
        assert_eq!(after(a, "--memory"), ["1g"]);
        assert_eq!(after(a, "--cpus"), ["1.5"]);
        assert_eq!(after(a, "--health-interval"), ["1s"]);
        assert_eq!(after(a, "--health-start-period"), ["90000ms"]);
        assert_eq!(after(a, "--health-start-interval"), ["500ms"]);
        assert_eq!(after(a, "--health-retries"), ["3"]);
        assert!(
            !a.iter().any(|x| x == "--health-cmd"),
            "keeps the image's test"
        );
        for absent in [
            "--publish",
            "--gpus",
            "--device",
            "--group-add",
            "--privileged",
        ] {
            assert!(!a.contains(&absent.to_string()), "{absent} in {a:?}");
        }
        assert_eq!(a.last().unwrap(), "voxserve:cpu");
        assert_eq!(plan.health, HealthMode::Engine);
        assert_eq!(plan.timeout, Duration::from_secs(90));
    }

    #[test]
    fn gpus_rocm_publish_and_timeout_options() {
        let opts = Options {
            gpus: true,
            rocm: true,
            publish: Some(0),
            timeout: Some(Duration::from_secs(8)),
            ..Options::default()
        };
        let p = plan(&variant(""), "img", &image("app", true), &opts, "s").unwrap();
        let a = &p.run_args;
        assert_eq!(after(a, "--gpus"), ["all"]);
        assert_eq!(after(a, "--device"), ["/dev/kfd", "/dev/dri"]);
        assert_eq!(after(a, "--group-add"), ["video"]);
        assert_eq!(after(a, "--publish"), ["127.0.0.1::8000"]);
        assert_eq!(after(a, "--health-start-period"), ["8000ms"]);
        assert_eq!(p.timeout, Duration::from_secs(8));
        assert_eq!(p.check_timeout, MIN_CHECK_TIMEOUT);

        let opts = Options {
            publish: Some(8080),
            ..Options::default()
        };
        let p = plan(&variant(""), "img", &image("app", true), &opts, "s").unwrap();
        assert_eq!(after(&p.run_args, "--publish"), ["127.0.0.1:8080:8000"]);
    }

    #[test]
    fn an_emulated_platform_scales_the_timeouts_and_an_explicit_one_is_kept() {
        let opts = Options {
            platform: Some("linux/arm64".into()),
            emulated: true,
            ..Options::default()
        };
        let p = plan(&variant(""), "img", &image("app", true), &opts, "s").unwrap();
        let a = &p.run_args;
        assert_eq!(after(a, "--platform"), ["linux/arm64"]);
        assert_eq!(p.slowdown, EMULATION_FACTOR);
        assert_eq!(p.timeout, Duration::from_secs(90) * EMULATION_FACTOR);
        assert_eq!(p.check_timeout, p.timeout);
        assert_eq!(
            after(a, "--health-start-period"),
            [format!("{}ms", p.timeout.as_millis())]
        );
        assert_eq!(
            after(a, "--health-timeout"),
            [format!("{}ms", 5000 * EMULATION_FACTOR)]
        );
        let given = Options {
            timeout: Some(Duration::from_secs(7)),
            ..opts.clone()
        };
        let p = plan(&variant(""), "img", &image("app", true), &given, "s").unwrap();
        assert_eq!(p.timeout, Duration::from_secs(7));
        assert_eq!(p.check_timeout, MIN_CHECK_TIMEOUT * EMULATION_FACTOR);
        // Natively: no platform flag unless asked, no probe timeout override.
        let native = Options {
            platform: Some("linux/amd64".into()),
            ..Options::default()
        };
        let p = plan(&variant(""), "img", &image("app", true), &native, "s").unwrap();
        assert_eq!(after(&p.run_args, "--platform"), ["linux/amd64"]);
        assert!(after(&p.run_args, "--health-timeout").is_empty());
        assert_eq!((p.slowdown, p.timeout), (1, Duration::from_secs(90)));
    }

    #[test]
    fn root_images_are_refused_unless_allowed() {
        for user in ["", "root", "0", "0:0", "root:staff"] {
            let err = plan(
                &variant(""),
                "img",
                &image(user, true),
                &Options::default(),
                "s",
            )
            .unwrap_err();
            assert!(
                err.contains("runs as root") && err.contains("--allow-root"),
                "{err}"
            );
        }
        let opts = Options {
            allow_root: true,
            ..Options::default()
        };
        let p = plan(&variant(""), "img", &image("", true), &opts, "s").unwrap();
        assert!(!p.checks.contains(&Check::NotRoot));
        assert!(!runs_as_root("10001:10001") && !runs_as_root("app"));
    }

    #[test]
    fn no_healthcheck_is_refused_unless_an_http_probe_is_configured() {
        let err = plan(
            &variant(""),
            "img",
            &image("app", false),
            &Options::default(),
            "s",
        )
        .unwrap_err();
        assert!(
            err.contains("no HEALTHCHECK") && err.contains("http_probe"),
            "{err}"
        );
        let mut none = image("app", true);
        none.healthcheck.as_mut().unwrap().test = Some(vec!["NONE".into()]);
        assert!(!has_healthcheck(&none));

        let p = plan(
            &variant("http_probe = \"/health\"\n"),
            "img",
            &image("app", false),
            &Options::default(),
            "s",
        )
        .unwrap();
        assert_eq!(p.health, HealthMode::Probe("/health".into()));
        assert!(!p.run_args.iter().any(|a| a.starts_with("--health")));
    }

    #[test]
    fn a_pytest_check_mounts_its_directory_and_pytest_read_only() {
        let v = variant(
            "[[variants.cpu.smoke.pytest]]\nname = \"parity\"\npath = \"app/tests/test_parity.py\"\n\
             requirements = \"app/requirements-dev.lock\"\n",
        );
        let root = crate::util::project_root();
        let lock = root.join("app/requirements-dev.lock");
        let opts = Options {
            pytest_sites: BTreeMap::from([(lock, Utf8PathBuf::from("/t/site"))]),
            ..Options::default()
        };
        let p = plan(&v, "img", &image("app", true), &opts, "s").unwrap();
        assert_eq!(
            after(&p.run_args, "--mount"),
            [
                format!(
                    "type=bind,source={},target=/xtask-smoke/pytest/tests-0,readonly",
                    crate::util::host_join(&root, "app/tests")
                ),
                "type=bind,source=/t/site,target=/xtask-smoke/pytest/site-0,readonly".to_string()
            ]
        );
        assert_eq!(p.run_args.last().unwrap(), "img");
        let check = p.checks.last().unwrap();
        assert_eq!(check.name(), "parity");
        let argv = check.argv(8000, MIN_CHECK_TIMEOUT).unwrap();
        assert_eq!(
            argv[3..],
            [
                "/xtask-smoke/pytest/site-0",
                "/xtask-smoke/pytest/tests-0/test_parity.py"
            ]
        );
        // pytest must have been installed for it.
        let err = plan(&v, "img", &image("app", true), &Options::default(), "s").unwrap_err();
        assert!(err.contains("was not installed"), "{err}");
    }

    #[test]
    fn checks_come_from_the_config() {
        let v = variant(
            "env = [\"A=1\"]\nlabels = [\"l\"]\nforbidden_paths = [\"/x\"]\n\
             forbidden_packages = [\"nvidia-*\"]\n\
             host_libraries = [\"libcuda.so.1\"]\ntorch_libraries = true\n\
             [[variants.cpu.smoke.exec]]\nname = \"e\"\ncmd = [\"true\"]\n\
             [[variants.cpu.smoke.http]]\nname = \"h\"\npath = \"/health\"\n",
        );
        let p = plan(&v, "img", &image("app", true), &Options::default(), "s").unwrap();
        let names: Vec<String> = p.checks.iter().map(Check::name).collect();
        assert_eq!(
            names,
            [
                "e",
                "h",
                "user is not root",
                "env vars",
                "labels",
                "forbidden paths absent",
                "forbidden python packages absent",
                "shared libraries resolve",
                "torch loads its libraries"
            ]
        );
        let http = p.checks[1].argv(8000, Duration::from_secs(30)).unwrap();
        assert_eq!(&http[..2], ["python3", "-c"]);
        assert_eq!(
            &http[3..],
            ["GET", "http://127.0.0.1:8000/health", "0", "30.0"]
        );
        assert_eq!(p.checks[5].user(), Some("0"));
        assert_eq!(
            p.checks[5].argv(8000, MIN_CHECK_TIMEOUT).unwrap()[3..],
            ["/x"]
        );
        assert_eq!(p.checks[3].argv(8000, MIN_CHECK_TIMEOUT), None);
        // Every ELF file is read as root; the host's libraries are named to the probe.
        assert_eq!(p.checks[7].user(), Some("0"));
        assert_eq!(
            p.checks[7].argv(8000, MIN_CHECK_TIMEOUT).unwrap()[3..],
            ["--host", "libcuda.so.1", "/"]
        );
        // Without `id` in the image, the user's ID comes from Python.
        assert_eq!(p.checks[2].fallback_argv().unwrap()[..2], ["python3", "-c"]);
        assert_eq!(p.checks[0].fallback_argv(), None);
        // Without torch_libraries the torch check is not planned; the libraries check always is.
        let p = plan(
            &variant(""),
            "img",
            &image("app", true),
            &Options::default(),
            "s",
        )
        .unwrap();
        let names: Vec<String> = p.checks.iter().map(Check::name).collect();
        assert_eq!(names, ["user is not root", "shared libraries resolve"]);
    }
}
