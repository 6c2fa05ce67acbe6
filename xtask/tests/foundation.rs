//! Foundation tests against the real engine: `base` reproducibility and `doctor` with an engine.
//! (What the CLI says without an engine is in cli.rs.)

#![allow(clippy::disallowed_methods, clippy::disallowed_macros)] // tests run programs and print as a user would

mod common;

use common::*;

/// This machine's platform only, under a name of its own: the shared base stays as it is (its
/// arm64 image is tested in platforms.rs).
#[test]
#[cfg(target_os = "linux")] // `base` runs mmdebstrap as root
fn base_twice_gives_the_same_image_id_with_updates_and_security_sources() {
    ensure_engine();
    let image = format!("localhost/xtask-test-base-native:{}", run_id());
    let _tags = RemoveTags::new("localhost/xtask-test-base-native");
    let args = ["base", "--platform", "linux/amd64", "--image", &image];
    let first = xtask_run(&args).assert_ok();
    let id1 = first.stdout.trim();
    assert!(
        id1.starts_with("sha256:"),
        "base printed no image ID: {:?}",
        first.stdout
    );
    // The shared base, when built from the same images.toml (by .ci/run, or another binary), is
    // the second build; when it is missing or older (the mirror moved on since), build twice here.
    let shared = platform_id(BASE_IMAGE, "linux/amd64");
    if shared.as_deref() != Some(id1) {
        eprintln!("the shared base's amd64 image ({shared:?}) is of other inputs: building again");
        let second = xtask_run(&args).assert_ok();
        assert_eq!(id1, second.stdout.trim(), "base is not reproducible");
    }

    let run = docker(&[
        "run",
        "--rm",
        "--label",
        &format!("{LABEL}={}", run_id()),
        &image,
        "sh",
        "-c",
        "cat /etc/os-release /etc/apt/sources.list",
    ])
    .assert_ok();
    assert!(run.stdout.contains("trixie"), "{}", run.stdout);
    assert!(
        run.stdout.contains("trixie-updates"),
        "no updates suite in apt sources:\n{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("trixie-security"),
        "no security suite in apt sources:\n{}",
        run.stdout
    );
    assert!(labelled_containers().is_empty());
}

#[test]
fn doctor_with_an_engine_reports_store_and_builder() {
    ensure_engine();
    let run = xtask_run(&["doctor", "--format", "json"]);
    // Optional tools may be missing; required ones are not on a machine that runs these tests.
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let doctor: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doctor["kind"], "doctor");
    let names: Vec<&str> = doctor["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for want in [
        "docker client",
        "docker engine",
        "buildx",
        "image store",
        "buildx builder",
        "CA bundle for builds",
        "trivy",
    ] {
        assert!(
            names.contains(&want),
            "doctor did not check {want}: {names:?}"
        );
    }
}
