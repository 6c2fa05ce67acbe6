//! `cargo xtask build` against the real engine, with fixture Dockerfiles built from the offline base.

#![allow(clippy::disallowed_methods, clippy::disallowed_macros)] // tests run programs and print as a user would

mod common;

use common::*;
use std::io::Read;
use std::path::Path;
use std::process::Command;

/// A test config with one variant built from a fixture; images are removed on drop.
struct Setup {
    dir: Scratch,
    config: String,
    image: String,
    tags: RemoveTags,
}

impl Setup {
    /// For tests that build: the offline base must exist.
    fn new(variant: &str, fixture: &str) -> Setup {
        ensure_base();
        Setup::config_only(variant, fixture)
    }

    /// For usage and tool errors, which must come before anything is built: no base needed.
    fn config_only(variant: &str, fixture: &str) -> Setup {
        Setup::with_head(variant, fixture, &config_head())
    }

    /// Its `[base].image` (the offline base) is `base`, an image of linux/amd64 alone.
    fn amd64_base(variant: &str, fixture: &str, base: &str) -> Setup {
        let head = config_head().replace(
            &format!("image = \"{BASE_IMAGE}\""),
            &format!("image = \"{base}\""),
        );
        assert!(head.contains(base), "{head}");
        Setup::with_head(variant, fixture, &head)
    }

    fn with_head(variant: &str, fixture: &str, head: &str) -> Setup {
        let dir = Scratch::new(&format!("build-{variant}"));
        let fixture_dir = fixtures().join(fixture);
        let image = format!("localhost/xtask-build-{variant}-{}", run_id());
        let config = dir.write(
            "images.toml",
            &format!(
                "{head}[build]\ncache_dir = \"cache\"\n\n{}",
                fixture_variant(variant, &fixture_dir, &image)
            ),
        );
        Setup {
            dir,
            config: config.to_string_lossy().into_owned(),
            tags: RemoveTags::new(image.clone()),
            image,
        }
    }

    fn build(&self, args: &[&str]) -> Run {
        let reports = self.dir.path().join("reports");
        let mut cmd = xtask();
        cmd.args([
            "--config",
            &self.config,
            "build",
            "--progress",
            "plain",
            "--report-dir",
        ])
        .arg(&reports)
        .args(args);
        let run = Run::of(&mut cmd);
        self.tags.note();
        run
    }

    /// Names in the local cache directory (none when it does not exist).
    fn cache_entries(&self) -> Vec<String> {
        std::fs::read_dir(self.dir.path().join("cache"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn report(&self, variant: &str) -> serde_json::Value {
        let path = self
            .dir
            .path()
            .join("reports")
            .join(format!("build-{variant}.json"));
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }
}

/// True when `needle` occurs in any file of `docker save IMAGE`, gzip layers decompressed.
fn saved_image_contains(image: &str, needle: &[u8]) -> bool {
    // One directory per image: tests that run together save into directories of their own.
    let dir = Scratch::new(&format!("save-{}", image.replace(['/', ':'], "-")));
    let tar = dir.path().join("image.tar");
    docker(&["save", "-o", tar.to_str().unwrap(), image]).assert_ok();
    let out = dir.path().join("x");
    std::fs::create_dir_all(&out).unwrap();
    let run = Run::of(Command::new("tar").arg("-xf").arg(&tar).arg("-C").arg(&out));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut found = false;
    visit(&out, &mut |bytes| {
        let plain = if bytes.starts_with(&[0x1f, 0x8b]) {
            let mut v = Vec::new();
            flate2::read::MultiGzDecoder::new(bytes)
                .read_to_end(&mut v)
                .unwrap();
            v
        } else {
            bytes.to_vec()
        };
        found |= plain.windows(needle.len()).any(|w| w == needle);
    });
    found
}

fn visit(dir: &Path, f: &mut dyn FnMut(&[u8])) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            visit(&path, f);
        } else if path.is_file() {
            f(&std::fs::read(&path).unwrap());
        }
    }
}

#[test]
fn builds_with_cache_and_secret_mounts_tags_labels_and_no_trace_of_the_ca() {
    let setup = Setup::new("ok", "build-ok");
    let marker = format!("XTASK-CA-MARKER-{}", run_id());
    let ca = setup.dir.write(
        "ca.pem",
        &format!("-----BEGIN CERTIFICATE-----\n{marker}\n-----END CERTIFICATE-----\n"),
    );
    let nonce = format!("NONCE={}", run_id());
    let build_ok = || {
        setup
            .build(&[
                "ok",
                "--cache",
                "local",
                "--ca-bundle",
                ca.to_str().unwrap(),
                "--build-arg",
                &nonce,
            ])
            .assert_ok()
    };
    // By default nothing is exported: the engine's build cache serves the next build.
    setup
        .build(&["ok", "--ca-bundle", ca.to_str().unwrap()])
        .assert_ok();
    assert_eq!(setup.report("ok")["cache"], "none");
    assert!(setup.cache_entries().is_empty());
    build_ok();

    let image = format!("{}:ok", setup.image);
    let inspect = docker(&["image", "inspect", &image, "--format", "{{json .}}"]).assert_ok();
    let doc: serde_json::Value = serde_json::from_str(&inspect.stdout).unwrap();
    let tags: Vec<&str> = doc["RepoTags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(tags.contains(&image.as_str()), "{tags:?}");
    assert!(
        tags.contains(&format!("{}:0.0.1-ok", setup.image).as_str()),
        "{tags:?}"
    );
    assert!(
        tags.iter()
            .any(|t| t.starts_with(&format!("{}:sha-", setup.image)) && t.ends_with("-ok")),
        "{tags:?}"
    );
    let labels = &doc["Config"]["Labels"];
    for key in [
        "title",
        "description",
        "revision",
        "version",
        "created",
        "licenses",
    ] {
        let value = labels[format!("org.opencontainers.image.{key}")]
            .as_str()
            .unwrap_or("");
        assert!(!value.is_empty(), "label {key} missing: {labels}");
    }
    assert_eq!(labels["org.opencontainers.image.version"], "0.0.1");
    assert_eq!(labels["org.opencontainers.image.licenses"], "Apache-2.0");

    // The secret was mounted during the build…
    let lines = docker(&[
        "run",
        "--rm",
        "--label",
        &format!("{LABEL}={}", run_id()),
        &image,
        "cat",
        "/ca-lines",
    ])
    .assert_ok();
    assert_eq!(
        lines.stdout.trim(),
        "1",
        "the CA bundle was not mounted in the build"
    );
    // …and left no trace in layers, config, labels, build args or history.
    assert!(
        !inspect.stdout.contains(&marker) && !inspect.stdout.contains("ca.pem"),
        "CA found in image config"
    );
    let history = docker(&["history", "--no-trunc", &image]).assert_ok();
    assert!(
        !history.stdout.contains(&marker) && !history.stdout.contains("ca.pem"),
        "{}",
        history.stdout
    );
    assert!(
        !saved_image_contains(&image, marker.as_bytes()),
        "the CA content is in `docker save` of the image"
    );
    assert!(
        saved_image_contains(&image, b"payload\n"),
        "the save scan is blind: the fixture payload was not found"
    );

    // A second build with no change takes every step from the cache.
    build_ok();
    let report = setup.report("ok");
    let total = report["steps_total"].as_u64().unwrap();
    assert!(total >= 3, "{report}");
    assert_eq!(report["steps_cached"].as_u64().unwrap(), total, "{report}");
    assert_eq!(report["ca_bundle_from"], "--ca-bundle");

    // The local cache was rotated: one directory per variant, nothing half-written beside it.
    let entries = setup.cache_entries();
    assert_eq!(entries, ["ok"]);
    assert!(labelled_containers().is_empty());
}

#[test]
fn a_failing_step_is_quoted_and_leaves_no_report() {
    let setup = Setup::new("broken", "build-fail");
    let run = setup.build(&["broken", "--cache", "local"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let error = run.error_line();
    assert!(error.contains("build of `broken` failed"), "{error}");
    assert!(
        error.contains("RUN echo \"about to fail\" && exit 3") && error.contains("exit code: 3"),
        "{error}"
    );
    assert!(!setup
        .dir
        .path()
        .join("reports")
        .join("build-broken.json")
        .exists());
    let cache = setup.cache_entries();
    assert!(
        cache.is_empty(),
        "a failed build left cache directories: {cache:?}"
    );
}

#[test]
fn unknown_variant_and_bad_build_arg_are_usage_errors() {
    let setup = Setup::config_only("known", "build-ok");
    let run = setup.build(&["unknown"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("unknown variant `unknown`") && run.stderr.contains("known"),
        "{}",
        run.stderr
    );
    let run = setup.build(&["known", "--build-arg", "NOVALUE"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("`NOVALUE` is not KEY=VALUE"),
        "{}",
        run.stderr
    );
}

#[test]
#[cfg(unix)] // signals the xtask with kill(1) and looks for buildx with pgrep
fn interrupt_stops_buildx_and_leaves_nothing_behind() {
    use std::io::BufRead;
    use std::time::{Duration, Instant};
    for signal in ["INT", "TERM"] {
        let setup = Setup::new(&format!("slow{}", signal.to_lowercase()), "build-slow");
        let variant = format!("slow{}", signal.to_lowercase());
        let nonce = format!("nonce-{}-{signal}", run_id());
        let mut child = xtask()
            .args([
                "--config",
                &setup.config,
                "build",
                &variant,
                "--cache",
                "local",
                "--progress",
                "plain",
                "--build-arg",
            ])
            .arg(format!("NONCE={nonce}"))
            .arg("--report-dir")
            .arg(setup.dir.path().join("reports"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Wait until BuildKit runs the sleeping step (its plain progress names it).
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if line.contains("RUN echo") && line.contains("sleep 60") {
                    let _ = tx.send(());
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(120))
            .expect("the slow step never started");
        std::thread::sleep(Duration::from_millis(500));
        Run::of(Command::new("kill").args([&format!("-{signal}"), &child.id().to_string()]));
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(130), "SIG{signal}");
        // buildx is gone, no report, no half-written cache, no temp dir of this build.
        let start = Instant::now();
        while Run::of(Command::new("pgrep").args(["-f", &format!("NONCE={nonce}")])).code == 0 {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "docker buildx still runs after SIG{signal}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        assert!(!setup
            .dir
            .path()
            .join("reports")
            .join(format!("build-{variant}.json"))
            .exists());
        let cache = setup.cache_entries();
        assert!(
            cache.is_empty(),
            "SIG{signal} left cache directories: {cache:?}"
        );
        let tmp = repo_root().join("target/xtask/tmp");
        let leftovers: Vec<_> = std::fs::read_dir(&tmp)
            .map(|d| {
                d.flatten()
                    .filter(|e| {
                        e.file_name()
                            .to_string_lossy()
                            .starts_with(&format!("build-{variant}-"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            leftovers.is_empty(),
            "SIG{signal} left temp dirs: {leftovers:?}"
        );
    }
}

#[test]
fn without_docker_or_engine_the_error_names_the_fix() {
    let setup = Setup::config_only("noengine", "build-ok");
    let run = Run::of(
        xtask()
            .args(["--config", &setup.config, "build", "noengine"])
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock"),
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    let error = run.error_line();
    assert!(
        error.contains("cannot reach the Docker engine") && error.contains("DOCKER_HOST"),
        "{error}"
    );

    let empty = Scratch::new("nopath");
    let run = Run::of(
        xtask()
            .args(["--config", &setup.config, "build", "noengine"])
            .env("PATH", empty.path()),
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    let error = run.error_line();
    assert!(
        error.contains("`docker` CLI is not on PATH") && error.contains("install Docker"),
        "{error}"
    );
}

#[test]
#[cfg(target_os = "linux")] // starts a second dockerd, as root
fn a_builder_that_cannot_export_cache_is_explained_once_and_the_build_goes_on() {
    let setup = Setup::new("classic", "build-ok");
    // The docker driver on the classic image store cannot export cache.
    let engine = Engine::classic();
    engine.load_from_main(BASE_IMAGE);
    let run = Run::of(
        xtask()
            .args([
                "--config",
                &setup.config,
                "build",
                "classic",
                "--cache",
                "local",
                "--progress",
                "plain",
                "--report-dir",
            ])
            .arg(setup.dir.path().join("reports"))
            .env("DOCKER_HOST", &engine.host),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let warnings: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("cannot export build cache"))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", run.stderr);
    assert!(
        warnings[0].contains("containerd-snapshotter")
            && warnings[0].contains("docker buildx create"),
        "{}",
        warnings[0]
    );
    assert_eq!(setup.report("classic")["cache"], "none");
    assert!(
        !run.stderr.contains("exporting cache"),
        "cache export was attempted:\n{}",
        run.stderr
    );
    let image = engine.docker(&["image", "inspect", &format!("{}:classic", setup.image)]);
    assert_eq!(image.code, 0, "the image is not in the classic engine");
}

/// `image`'s tags and the image ID each points at.
fn tags_of(repository: &str) -> Vec<String> {
    let mut tags: Vec<String> = docker(&[
        "image",
        "ls",
        "--format",
        "{{.Repository}}:{{.Tag}} {{.ID}}",
        repository,
    ])
    .stdout
    .lines()
    .map(str::to_owned)
    .collect();
    tags.sort();
    tags
}

/// The offline base's linux/amd64 image alone, as the offline base of a test config.
fn amd64_base() -> String {
    fixture_image("build-amd64-base", &["--platform", "linux/amd64"])
}

#[test]
fn a_platform_the_base_lacks_fails_before_buildx_starts_and_moves_no_tag() {
    let base = amd64_base();
    let setup = Setup::amd64_base("plat", "build-ok", &base);
    // A tag from an earlier build: it must still point where it pointed.
    let tag = format!("{}:plat", setup.image);
    docker(&["tag", &base, &tag]).assert_ok();
    let before = tags_of(&setup.image);
    for platform in ["linux/arm64", "linux/ppc64le", "linux/amd64,linux/arm64"] {
        let run = setup.build(&["plat", "--platform", platform]);
        assert_eq!(run.code, 2, "--platform {platform}:\n{}", run.stderr);
        let error = run.error_line();
        assert!(
            error.contains("cannot build `plat` for linux/")
                && error.contains(&format!("its base image {base} is linux/amd64"))
                && error.contains("to `[base].platforms` in images.toml")
                && error.contains("`cargo xtask base --platform linux/amd64,linux/")
                && error.contains("--build-arg BASE_IMAGE="),
            "{error}"
        );
        // Only what the base lacks is named.
        assert!(
            error.contains("for linux/arm64:") || error.contains("for linux/ppc64le:"),
            "{error}"
        );
        // buildx never started: none of its progress lines, no report, the tags as they were.
        assert!(
            !run.stderr.contains("building with") && !run.stderr.contains("[internal]"),
            "buildx ran:\n{}",
            run.stderr
        );
        assert!(!setup
            .dir
            .path()
            .join("reports")
            .join("build-plat.json")
            .exists());
        assert_eq!(tags_of(&setup.image), before, "--platform {platform}");
    }
}

#[test]
fn a_buildkit_platform_warning_fails_the_build_and_moves_no_tag() {
    let base = amd64_base();
    let setup = Setup::new("mixed", "build-fixed-base");
    let tag = format!("{}:mixed", setup.image);
    docker(&["tag", &base, &tag]).assert_ok();
    let before = tags_of(&setup.image);
    let fixed = format!("FIXED_BASE={base}");
    let run = setup.build(&["mixed", "--platform", "linux/arm64", "--build-arg", &fixed]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let error = run.error_line();
    assert!(
        error.contains("the build of `mixed` mixed platforms")
            && error.contains("InvalidBaseImagePlatform")
            && error.contains("expected \"linux/arm64\"")
            && error.contains("nothing was tagged"),
        "{error}"
    );
    // BuildKit did build it (the check is after the build, before the tags).
    assert!(run.stderr.contains("RUN uname -m"), "{}", run.stderr);
    assert_eq!(
        tags_of(&setup.image),
        before,
        "a tag moved or a staging tag stayed"
    );
    assert!(!setup
        .dir
        .path()
        .join("reports")
        .join("build-mixed.json")
        .exists());
    // For its own platform the same Dockerfile builds, and gets every tag.
    setup.build(&["mixed"]).assert_ok();
    let after = tags_of(&setup.image);
    assert!(
        after.iter().any(|t| t.starts_with(&format!("{tag} ")))
            && after.iter().any(|t| t.contains(":0.0.1-mixed "))
            && !after.iter().any(|t| t.contains("xtask-staging")),
        "{after:?}"
    );
    assert_ne!(after, before, "the tag did not move to the new image");
}

/// The id of the image a tag names.
fn image_id(reference: &str) -> String {
    let run = docker(&["image", "inspect", "--format", "{{.Id}}", reference]).assert_ok();
    run.stdout.trim().to_string()
}

#[test]
fn the_app_comes_as_a_context_named_by_its_content_and_gives_the_stage_s_image() {
    let setup = Setup::new("app-src", "build-app-src");
    // A copy of the fixture as the variant's context, to edit its app.
    let context = setup.dir.path().join("context");
    copy_dir(&fixtures().join("build-app-src"), &context);
    let config = std::fs::read_to_string(&setup.config).unwrap().replace(
        &fixtures().join("build-app-src").display().to_string(),
        &context.display().to_string(),
    );
    std::fs::write(&setup.config, config).unwrap();
    let app = context.join("app/src/voxserve");
    // What a contributor's tree holds besides the app: left out, like the stage leaves it out.
    std::fs::create_dir_all(app.join("__pycache__")).unwrap();
    std::fs::write(app.join("__pycache__/main.cpython-313.pyc"), "pyc").unwrap();
    let tag = format!("{}:app-src", setup.image);

    let run = setup.build(&["app-src"]).assert_ok();
    assert!(run.stderr.contains("[context app-src-"), "{}", run.stderr);
    assert!(!run.stderr.contains("[app-src-build"), "{}", run.stderr);
    let from_context = image_id(&tag);

    // The Dockerfile's own stage, as a plain `docker build` runs it: the same image.
    let run = setup
        .build(&["app-src", "--build-arg", "APP_SRC=app-src-build"])
        .assert_ok();
    assert!(run.stderr.contains("[app-src-build"), "{}", run.stderr);
    assert_eq!(image_id(&tag), from_context, "{}", run.stderr);

    // An edit that keeps the file's size and, in the context, its mtime (0) is built.
    std::fs::write(app.join("main.py"), "print(\"two\")\n").unwrap();
    let run = setup.build(&["app-src"]).assert_ok();
    assert_ne!(image_id(&tag), from_context, "{}", run.stderr);
    assert!(
        saved_image_contains(&tag, b"print(\"two\")"),
        "{}",
        run.stderr
    );
}
