//! The platforms the engine runs, for the tests of emulation and of platforms it cannot run.

use super::docker;

/// The platforms the engine's builder runs (natively or emulated).
pub fn engine_platforms() -> Vec<String> {
    let run = docker(&["buildx", "inspect", "default"]).assert_ok();
    run.stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("Platforms:"))
        .map(|p| p.split(',').map(|s| s.trim().to_string()).collect())
        .unwrap_or_default()
}

/// A platform this machine has no emulation for (None when every candidate is registered).
pub fn unregistered_platform() -> Option<&'static str> {
    let runs = engine_platforms();
    [
        "linux/s390x",
        "linux/ppc64le",
        "linux/riscv64",
        "linux/mips64le",
    ]
    .into_iter()
    .find(|p| !runs.iter().any(|r| r == p))
}

/// ID of one platform's image in a local (multi-platform) image.
pub fn platform_id(image: &str, platform: &str) -> Option<String> {
    let run = docker(&[
        "image",
        "inspect",
        "--platform",
        platform,
        "--format",
        "{{.Id}}",
        image,
    ]);
    (run.code == 0).then(|| run.stdout.trim().to_string())
}
