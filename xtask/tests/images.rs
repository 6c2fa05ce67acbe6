//! The real voxserve images: the CPU torch guard, and cpu-minimal built, smoke-tested and
//! measured end to end with `cargo xtask`. (cuda is built and checked the same way by hand — see
//! docs/DOCKER_OPTIMIZATION.md; `cpu` and `rocm` need the PyTorch indexes, unreachable here, so
//! only their guards run.)

#![allow(clippy::disallowed_methods, clippy::disallowed_macros)] // tests run programs and print as a user would

mod common;

use common::*;

/// Builds `variant` from the repository's images.toml with overrides; reports go to a scratch dir.
fn build(variant: &str, extra: &[&str], reports: &Scratch) -> Run {
    ensure_base();
    let mut cmd = xtask();
    cmd.args(["build", variant, "--progress", "plain", "--report-dir"])
        .arg(reports.path())
        .args(extra);
    Run::of(&mut cmd)
}

/// Builds `variant` with PyPI's torch — the CUDA build: exactly what the variant's torch guard is
/// for — checks that the build stops at the guard, and returns the build's output. Without its
/// nvidia wheels (`--no-deps`): the guard reads the CUDA build from torch/version.py, and its
/// check of the nvidia wheels is unit-tested (app/tests/test_image_scripts.py).
fn assert_guard_stops_cuda_torch(variant: &str) -> String {
    let reports = Scratch::new(&format!("guard-{variant}"));
    let tag = format!("localhost/xtask-guard:{variant}");
    let run = build(
        variant,
        &[
            "--cache",
            "none",
            "--build-arg",
            "TORCH_INDEX_URL=default",
            "--build-arg",
            "TORCH_SPEC=--no-deps torch==2.15.0",
            "--tag",
            &tag,
        ],
        &reports,
    );
    assert_eq!(
        run.code,
        1,
        "the {variant} build with CUDA torch did not fail:\n{}",
        tail(&run.stderr)
    );
    assert!(
        run.stderr.contains("TORCH VARIANT GUARD FAILED"),
        "{}",
        tail(&run.stderr)
    );
    let error = run.error_line();
    assert!(
        error.contains("check_torch_variant.py") && error.contains(variant),
        "{error}"
    );
    assert!(!reports
        .path()
        .join(format!("build-{variant}.json"))
        .exists());
    run.stderr
}

/// uv's lines for the wheels it fetched (`Downloading torch (…)`), as the build log shows them.
fn downloads(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains("Downloading torch ") || l.contains("Downloading nvidia-"))
        .collect()
}

/// One after the other, so that CUDA torch is downloaded at most once per run: the second build
/// finds it in uv's cache mount (`/root/.cache/uv`, shared by every Dockerfile on the builder),
/// where two builds at once would both fetch it.
#[test]
fn cpu_and_rocm_builds_with_the_cuda_torch_stop_at_their_guards() {
    let _uv = uv_cache();
    let cpu = assert_guard_stops_cuda_torch("cpu");
    let rocm = assert_guard_stops_cuda_torch("rocm");
    eprintln!(
        "cuda torch downloads: cpu {:?}, rocm {:?}",
        downloads(&cpu),
        downloads(&rocm)
    );
    assert!(
        downloads(&rocm).is_empty(),
        "the rocm build downloaded what the cpu build had just fetched: {:?}",
        downloads(&rocm)
    );
}

#[test]
fn cpu_minimal_builds_passes_smoke_and_is_measured() {
    let _tag = cpu_minimal_tag();
    let reports = Scratch::new("cpu-minimal");
    build("cpu-minimal", &[], &reports).assert_ok();
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(reports.path().join("build-cpu-minimal.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report["image"], "voxserve:cpu-minimal");

    // Hardened run, healthy, every check of images.toml (imports, /health, POST /v1/analyze with a
    // WAV, non-root, env, labels, forbidden paths and packages).
    let smoke = xtask_run(&[
        "smoke",
        "cpu-minimal",
        "--format",
        "json",
        "--label",
        &format!("{LABEL}={}", run_id()),
    ]);
    assert_eq!(
        smoke.code,
        0,
        "smoke failed:\n{}\n{}",
        smoke.stdout,
        tail(&smoke.stderr)
    );
    assert!(labelled_containers().is_empty(), "smoke left containers");

    // Both sizes are measured; the verdict on the budget is the sizes command's to give.
    let sizes = xtask_run(&["sizes", "cpu-minimal", "--format", "json"]);
    assert!(sizes.code == 0 || sizes.code == 1, "{}", sizes.stderr);
    let doc: serde_json::Value = serde_json::from_str(&sizes.stdout).unwrap();
    let entry = doc["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["variant"] == "cpu-minimal")
        .unwrap();
    let (c, u) = (
        entry["compressed"].as_u64().unwrap(),
        entry["unpacked"].as_u64().unwrap(),
    );
    assert!(c > 10_000_000 && c < u, "compressed {c}, unpacked {u}");
    if sizes.code == 1 {
        assert!(sizes.stderr.contains("cpu-minimal"), "{}", sizes.stderr);
    }
}
