//! Reproducible images: `cargo xtask diff` against real builds (OCI archives from buildx, the
//! engine's store, a registry), naming the file and layer a non-reproducible step changed.

#![allow(clippy::disallowed_methods, clippy::disallowed_macros)] // tests run programs and print as a user would

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const EPOCH: &str = "1764288000";

/// Builds the `repro` fixture without cache into an OCI archive, as `cargo xtask build` exports.
fn build_archive(dest: &Path, name: &str, stamp: bool) {
    let run = Run::of(Command::new("docker").args([
        "buildx",
        "build",
        "--no-cache",
        "--provenance=false",
        &format!("--build-arg=BASE_IMAGE={BASE_IMAGE}"),
        &format!("--build-arg=SOURCE_DATE_EPOCH={EPOCH}"),
        &format!("--build-arg=STAMP={}", u8::from(stamp)),
        &format!(
            "--output=type=oci,dest={},name={name},rewrite-timestamp=true",
            dest.display()
        ),
        &fixtures().join("repro").to_string_lossy(),
    ]));
    assert_eq!(run.code, 0, "building the fixture: {}", tail(&run.stderr));
}

fn diff_json(a: &str, b: &str) -> (Run, Value) {
    let run = xtask_run(&["diff", a, b, "--format", "json"]);
    let report = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", run.stdout, tail(&run.stderr)));
    (run, report)
}

#[test]
fn diff_names_the_file_and_layer_a_non_reproducible_step_changed() {
    ensure_base();
    let dir = Scratch::new("diff");
    let (a, b) = (dir.path().join("a.tar"), dir.path().join("b.tar"));
    let name = format!("localhost/xtask-diff:{}", run_id());
    build_archive(&a, &name, true);
    build_archive(&b, &name, true);
    let (a, b) = (a.to_string_lossy(), b.to_string_lossy());

    let (run, report) = diff_json(&a, &b);
    assert_eq!(run.code, 1, "{}", tail(&run.stderr));
    assert_eq!(report["kind"], "diff");
    assert_eq!(report["identical"], false);
    let differing: Vec<&Value> = report["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["status"] != "same")
        .collect();
    assert_eq!(differing.len(), 1, "{report:#}");
    let layer = differing[0];
    assert!(
        layer["created_by"].as_str().unwrap().contains("/stamp"),
        "{layer:#}"
    );
    let files = layer["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{layer:#}");
    assert_eq!(files[0]["path"], "/stamp");
    assert_eq!(files[0]["change"], "changed");
    assert_eq!(files[0]["fields"], serde_json::json!(["content"]));
    // The config differs only in that layer's diff ID.
    let fields: Vec<&str> = report["config"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [format!("rootfs.diff_ids[{}]", layer["index"]).as_str()]
    );
    // The error names them too, and the text report lists the file under its layer.
    assert!(run.stderr.contains("/stamp (content)"), "{}", run.stderr);
    let text = xtask_run(&["diff", &a, &b]);
    let heading = format!("layer {}: RUN", layer["index"]);
    assert!(text.stdout.contains(&heading), "{}", text.stdout);
    assert!(text.stdout.contains("/stamp  content"), "{}", text.stdout);

    let same = xtask_run(&["diff", &a, &a]);
    assert_eq!(same.code, 0, "{}", tail(&same.stderr));
    assert!(
        same.stdout.contains("are the same image"),
        "{}",
        same.stdout
    );
}

#[test]
fn diff_reads_the_engine_and_a_registry_as_it_reads_an_archive() {
    ensure_base();
    let dir = Scratch::new("diff-sources");
    let archive = dir.path().join("a.tar");
    let name = format!("localhost/xtask-diff-sources:{}", run_id());
    let _tags = RemoveTags::new("localhost/xtask-diff-sources");
    build_archive(&archive, &name, false);
    let archive = archive.to_string_lossy().into_owned();
    docker(&["load", "--input", &archive]).assert_ok();
    let registry = Registry::start();
    let pushed = format!("{}:{}", registry.repo("xtask-diff"), run_id());
    docker(&["tag", &name, &pushed]).assert_ok();
    docker(&["push", "--quiet", &pushed]).assert_ok();
    docker(&["image", "rm", &pushed]).assert_ok();

    for (a, b) in [
        (format!("local:{name}"), archive.clone()),
        (format!("registry:{pushed}"), archive.clone()),
        (pushed.clone(), name.clone()),
    ] {
        let (run, report) = diff_json(&a, &b);
        assert_eq!(run.code, 0, "{a} vs {b}: {}", tail(&run.stderr));
        assert_eq!(report["a"]["manifest"], report["b"]["manifest"]);
        assert_eq!(report["a"]["platform"], report["b"]["platform"]);
    }
    let missing = xtask_run(&["diff", &format!("{pushed}-missing"), &archive]);
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    assert!(
        missing.error_line().contains("from its registry"),
        "{}",
        missing.stderr
    );
}

/// A config with the `repro` fixture as variant `fx` (deterministic) and `fx-stamp` (STAMP=1),
/// images in the repository `image`.
fn repro_config(dir: &Scratch, image: &str, registry: Option<&str>) -> String {
    let mut config = config_head();
    if let Some(registry) = registry {
        config = config.replacen(
            "[project]\n",
            &format!("[project]\nregistry = \"{registry}\"\n"),
            1,
        );
    }
    let fixture = fixtures().join("repro");
    config.push_str(&fixture_variant("fx", &fixture, image));
    config.push('\n');
    config.push_str(&fixture_variant("fx-stamp", &fixture, image));
    config.push_str("[variants.fx-stamp.build_args]\nSTAMP = \"1\"\n");
    dir.write("images.toml", &config)
        .to_string_lossy()
        .into_owned()
}

fn xtask_with(config: &str, args: &[&str]) -> Run {
    Run::of(xtask().args(["--config", config]).args(args))
}

/// Held while a test reproduces: what is left is counted machine-wide (temp dirs, bridges), and
/// another test's engines would be counted as this one's.
fn one_reproduce_at_a_time() -> Exclusive {
    exclusive("xtask reproduce")
}

/// No private engine, bridge or scratch directory of the run is left.
fn assert_nothing_left(run: &Run) {
    let engines = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("xtask-repro-"))
        .count();
    assert_eq!(
        engines,
        0,
        "an engine directory is left\n{}",
        tail(&run.stderr)
    );
    let links = Run::of(Command::new("ip").args(["-o", "link"]));
    assert!(
        !links.stdout.contains(": xtrp"),
        "a bridge is left: {}",
        links.stdout
    );
}

#[test]
fn two_cold_builds_on_fresh_engines_are_one_image_and_a_stamp_is_named() {
    let _one = one_reproduce_at_a_time();
    ensure_base();
    let dir = Scratch::new("reproduce");
    let config = repro_config(&dir, &format!("localhost/xtask-repro-{}", run_id()), None);
    let run = xtask_with(
        &config,
        &["reproduce", "fx", "fx-stamp", "--format", "json"],
    );
    assert_eq!(run.code, 1, "{}", tail(&run.stderr));
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["kind"], "reproduce");
    let outcome = |variant: &str| -> &Value {
        let all = report["variants"].as_array().unwrap();
        all.iter().find(|o| o["variant"] == variant).unwrap()
    };
    let fx = &outcome("fx")["rows"][0];
    assert_eq!(fx["a"], fx["b"], "{fx:#}");
    assert!(fx["a"]["config"].as_str().unwrap().starts_with("sha256:"));
    let stamp = &outcome("fx-stamp")["rows"][0];
    assert_ne!(stamp["a"]["config"], stamp["b"]["config"], "{stamp:#}");
    let differences = outcome("fx-stamp")["differences"].to_string();
    assert!(differences.contains("/stamp (content"), "{differences}");
    assert!(run.stderr.contains("fx-stamp"), "{}", tail(&run.stderr));
    assert!(run.stderr.contains("/stamp"), "{}", tail(&run.stderr));
    assert!(!run.stderr.contains("fx linux"), "{}", tail(&run.stderr));
    assert_nothing_left(&run);
}

#[test]
fn a_published_image_is_rebuilt_from_its_commit_and_a_replaced_one_is_found() {
    let _one = one_reproduce_at_a_time();
    ensure_base();
    let dir = Scratch::new("reproduce-published");
    let registry = Registry::start();
    let namespace = registry.repo(&format!("xtask-{}", run_id()));
    let config = repro_config(&dir, "repro", Some(&namespace));
    let _tags = RemoveTags::new(format!("{namespace}/repro"));
    let push = |extra: &[&str]| {
        let mut args = vec![
            "build",
            "fx",
            "--push",
            "--cache",
            "none",
            "--progress",
            "plain",
        ];
        args.extend(extra);
        xtask_with(&config, &args).assert_ok();
    };
    push(&[]);
    let run = xtask_with(&config, &["reproduce", "fx", "--published"]);
    assert_eq!(run.code, 0, "{}", tail(&run.stderr));
    assert!(run.stdout.contains("same"), "{}", run.stdout);
    assert_nothing_left(&run);

    // Another image under the same tag: the rebuild of its commit is not it.
    push(&["--build-arg", "STAMP=1"]);
    let run = xtask_with(&config, &["reproduce", "fx", "--published"]);
    assert_eq!(run.code, 1, "{}", tail(&run.stderr));
    let error = &run.stderr[run.stderr.find("error:").unwrap()..];
    assert!(error.contains("layer 2 (RUN"), "{error}");
    assert!(error.contains("/stamp"), "{error}");
    assert!(
        error.contains("only in the first image") || error.contains("differs"),
        "{error}"
    );
}

/// images.toml at the repository root (its paths are relative to it) with the base made like the
/// official slim image — minbase without python3 or ca-certificates — and the images under
/// `image`, so the project's own tags never change. Removed on drop.
struct OfficialLike {
    config: PathBuf,
    base: String,
    image: String,
}

impl OfficialLike {
    fn new() -> OfficialLike {
        let image = "localhost/xtask-official-like".to_string();
        let base = format!("{image}:base-{}", run_id());
        let text = std::fs::read_to_string(repo_root().join("images.toml")).unwrap();
        let mut doc: toml::Table = toml::from_str(&text).unwrap();
        let b = doc["base"].as_table_mut().unwrap();
        b.insert("image".into(), base.clone().into());
        b.insert("include".into(), toml::Value::Array(vec![]));
        b.insert("remove".into(), toml::Value::Array(vec![]));
        b.insert("platforms".into(), vec!["linux/amd64".to_string()].into());
        let defaults = doc["defaults"].as_table_mut().unwrap();
        defaults.insert("image".into(), image.clone().into());
        let config = repo_root().join(format!("images-official-like-{}.toml", run_id()));
        std::fs::write(&config, toml::to_string(&doc).unwrap()).unwrap();
        OfficialLike {
            config,
            base,
            image,
        }
    }

    fn xtask(&self, args: &[&str]) -> Run {
        Run::of(xtask().arg("--config").arg(&self.config).args(args))
    }
}

impl Drop for OfficialLike {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.config);
        drop(RemoveTags::new(self.image.clone()));
    }
}

/// The path every user outside an offline machine takes: a base without python3, so the
/// Dockerfile's `base` stage installs it with apt. cpu-minimal builds on it, passes smoke, and
/// two cold builds of it in two fresh engines are one image (the real variant, not a fixture).
#[test]
fn cpu_minimal_on_an_official_like_base_builds_passes_smoke_and_reproduces() {
    ensure_engine();
    let official = OfficialLike::new();
    official
        .xtask(&["base", "--platform", "linux/amd64"])
        .assert_ok();
    let python = docker(&[
        "run",
        "--rm",
        "--entrypoint",
        "/bin/sh",
        &official.base,
        "-c",
        "test ! -e /usr/bin/python3 && test ! -e /etc/ssl/certs/ca-certificates.crt",
    ]);
    assert_eq!(python.code, 0, "the base has python3 or CA certificates");

    let reports = Scratch::new("official-like");
    let uv = uv_cache();
    let build = official.xtask(&[
        "build",
        "cpu-minimal",
        "--no-cache",
        "--progress",
        "plain",
        "--report-dir",
        &reports.path().to_string_lossy(),
    ]);
    drop(uv);
    assert_eq!(build.code, 0, "{}", tail(&build.stderr));
    assert!(
        !build.stderr.contains("python3: from the base image")
            && build.stderr.contains("Setting up python3"),
        "the base stage did not install python3 with apt: {}",
        tail(&build.stderr)
    );
    let smoke = official.xtask(&[
        "smoke",
        "cpu-minimal",
        "--label",
        &format!("{LABEL}={}", run_id()),
    ]);
    assert_eq!(smoke.code, 0, "{}\n{}", smoke.stdout, tail(&smoke.stderr));
    assert!(labelled_containers().is_empty(), "smoke left containers");

    let _one = one_reproduce_at_a_time();
    let run = official.xtask(&["reproduce", "cpu-minimal", "--format", "json"]);
    assert_eq!(run.code, 0, "{}", tail(&run.stderr));
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let row = &report["variants"][0]["rows"][0];
    assert_eq!(row["a"], row["b"], "{row:#}");
    assert!(row["a"]["manifest"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    assert_nothing_left(&run);
}
