//! Tests that look at what every xtask shares on this machine as a whole (every temp dir of
//! `target/xtask/tmp`), so no other xtask may run meanwhile: `cargo xtask test` runs this binary
//! while no other test binary runs.

// `base` and `smoke` for a platform that binfmt_misc does not emulate, as root: Linux only.
#![cfg(target_os = "linux")]
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)] // tests run programs and print as a user would

mod common;

use common::*;

#[test]
fn a_platform_without_emulation_is_refused_with_the_fix_and_nothing_left_behind() {
    ensure_engine();
    let Some(platform) = unregistered_platform() else {
        eprintln!("every candidate platform is emulated on this machine: nothing to refuse");
        return;
    };
    let short = platform.rsplit('/').next().unwrap();
    let image = format!("localhost/xtask-test-base-missing:{}", run_id());
    let tmp = repo_root().join("target").join("xtask").join("tmp");
    let before = std::fs::read_dir(&tmp).map(|d| d.count()).unwrap_or(0);

    let run = xtask_run(&["base", "--platform", platform, "--image", &image]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let line = run.error_line();
    assert!(
        line.contains(&format!("cannot build the base for {platform}"))
            && line.contains("qemu-user-static")
            && line.contains(&format!(".ci/enable-emulation {short}")),
        "{line}"
    );
    assert!(
        !run.stderr.contains("mmdebstrap trixie"),
        "mmdebstrap started"
    );
    assert_ne!(
        docker(&["image", "inspect", &image]).code,
        0,
        "an image was made"
    );
    assert_eq!(
        std::fs::read_dir(&tmp).map(|d| d.count()).unwrap_or(0),
        before,
        "a temp dir was left"
    );

    let mut smoke = xtask();
    smoke.args(["smoke", "cpu-minimal", "--platform", platform]);
    let run = Run::of(&mut smoke);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let line = run.error_line();
    assert!(
        line.contains(&format!("cannot run {platform} containers"))
            && line.contains(&format!(".ci/enable-emulation {short}")),
        "{line}"
    );
    assert!(labelled_containers().is_empty());
}
