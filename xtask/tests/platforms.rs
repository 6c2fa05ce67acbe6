//! linux/arm64 on this amd64 machine, for real: the offline base for arm64 (reproducible, an
//! aarch64 python3), cpu-minimal built for amd64 and arm64 (its venv cross-installed: aarch64
//! extensions) and smoke-tested under emulation, sizes per platform, two single-platform pushes
//! merged by digest into one index, and doctor on a platform this machine cannot run (the errors
//! of `base` and `smoke` for it are in alone.rs: that test counts every temp dir of the xtask).
//!
//! Emulation comes from `.ci/enable-emulation arm64` (run by `.ci/run`); every test here fails
//! with that fix when it is missing. Emulation is slow: the base for arm64 is the one expensive
//! step (minutes), the rest takes seconds to a minute.

// Emulation through binfmt_misc and the arm64 base from mmdebstrap, as root: Linux only.
#![cfg(target_os = "linux")]
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)] // tests run programs and print as a user would

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// ELF `e_machine` of aarch64 and x86-64 binaries.
const EM_AARCH64: u16 = 183;
const EM_X86_64: u16 = 62;

/// Fails with the fix unless the engine runs linux/arm64.
fn ensure_arm64_emulation() {
    ensure_engine();
    assert!(
        engine_platforms().iter().any(|p| p == "linux/arm64"),
        "these tests need emulation of linux/arm64: as root, `bash .ci/enable-emulation arm64` \
         (what .ci/run does)"
    );
}

/// The offline base with its linux/arm64 image (built for every configured platform if missing),
/// once per test binary: the tests that need it wait for one build.
fn ensure_multiplatform_base() {
    ensure_arm64_emulation();
    static BASE: OnceLock<()> = OnceLock::new();
    BASE.get_or_init(|| {
        if docker(&["image", "inspect", "--platform", "linux/arm64", BASE_IMAGE]).code != 0 {
            xtask_run(&["base"]).assert_ok();
        }
    });
}

/// `docker cp` (following links) of `path` in `platform`'s image of `image` into `dest`.
fn copy_out(image: &str, platform: &str, path: &str, dest: &Path) -> PathBuf {
    let name = format!("xtask-cp-{}-{}", run_id(), platform.replace('/', "-"));
    let label = format!("{LABEL}={}", run_id());
    docker(&[
        "create",
        "--name",
        &name,
        "--label",
        &label,
        "--platform",
        platform,
        image,
    ])
    .assert_ok();
    std::fs::create_dir_all(dest).unwrap();
    let out = dest.join(Path::new(path).file_name().unwrap());
    let copied = docker(&[
        "cp",
        "-L",
        &format!("{name}:{path}"),
        &out.to_string_lossy(),
    ]);
    docker(&["rm", "-f", &name]);
    assert_eq!(copied.code, 0, "docker cp {path}: {}", copied.stderr);
    out
}

/// `e_machine` of an ELF file (little-endian class, as both platforms here are).
fn elf_machine(path: &Path) -> u16 {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..4], b"\x7fELF", "{} is not ELF", path.display());
    u16::from_le_bytes([bytes[18], bytes[19]])
}

/// Every `*.so` under `dir`.
fn shared_objects(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let p = entry.path();
            if p.is_dir() {
                todo.push(p);
            } else if p.to_string_lossy().ends_with(".so") {
                found.push(p);
            }
        }
    }
    found
}

#[test]
fn the_arm64_base_is_reproducible_and_its_python3_is_an_aarch64_binary() {
    ensure_arm64_emulation();
    let dir = Scratch::new("base-arm64");
    let image = format!("localhost/xtask-test-base:{}", run_id());
    let _tags = RemoveTags::new("localhost/xtask-test-base");
    let build = || {
        let run = xtask_run(&["base", "--platform", "linux/arm64", "--image", &image]).assert_ok();
        assert!(
            run.stderr.contains("under emulation (qemu-aarch64)"),
            "{}",
            tail(&run.stderr)
        );
        run.stdout.trim().to_string()
    };
    // The shared base is built from the same images.toml — for the cpu-minimal test, while this
    // build runs (two emulated builds at once), or before: its arm64 image is the first build.
    // When it is older (the mirror moved on since), build twice here.
    let first = build();
    ensure_multiplatform_base();
    let shared = platform_id(BASE_IMAGE, "linux/arm64");
    if shared.as_deref() != Some(first.as_str()) {
        eprintln!("the shared base's arm64 image ({shared:?}) is of other inputs: building again");
        let second = build();
        assert_eq!(first, second, "the arm64 base is not reproducible");
    }
    assert_eq!(
        platform_id(&image, "linux/arm64").as_deref(),
        Some(first.as_str())
    );

    let python = copy_out(&image, "linux/arm64", "/usr/bin/python3", dir.path());
    assert_eq!(elf_machine(&python), EM_AARCH64, "python3 is not aarch64");
    // What the Dockerfiles would have dropped after their own python3 install is gone.
    let listing = docker(&[
        "run",
        "--rm",
        "--platform",
        "linux/arm64",
        "--label",
        &format!("{LABEL}={}", run_id()),
        &image,
        "sh",
        "-c",
        "ls -d /usr/lib/python3.*/test /usr/lib/python3.*/pydoc_data 2>&1; uname -m; cd /etc/ssl/certs; \
         echo certs $(readlink ISRG_Root_X1.pem) $(find -L . -type l | wc -l) $(ls | grep -c '[.]pem$') \
         $(ls | grep -c '[.][0-9]$') $(grep -c 'BEGIN CERT' ca-certificates.crt)",
    ]);
    assert!(listing.stdout.contains("aarch64"), "{}", listing.stdout);
    // The certificates, linked by the host's tools: each link points into the image and resolves,
    // and every certificate has its hash link and its place in the bundle.
    let certs: Vec<&str> = listing
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("certs "))
        .unwrap_or_default()
        .split(' ')
        .collect();
    let ok = matches!(certs[..], [link, "0", pems, hashes, bundled]
        if link == "/usr/share/ca-certificates/mozilla/ISRG_Root_X1.crt"
            && pems.parse::<u32>().is_ok_and(|n| n > 100)
            && pems == hashes && hashes == bundled);
    assert!(
        ok,
        "link, broken links, certificates, hash links, in the bundle: {certs:?}"
    );
    assert!(
        listing.stdout.contains("No such file"),
        "{}",
        listing.stdout
    );
    assert!(labelled_containers().is_empty());
}

#[test]
fn cpu_minimal_for_arm64_has_aarch64_extensions_and_passes_smoke_under_emulation() {
    ensure_multiplatform_base();
    let _tag = cpu_minimal_tag();
    let dir = Scratch::new("cpu-minimal-arm64");
    let reports = dir.path().join("reports");
    let mut cmd = xtask();
    cmd.args([
        "build",
        "cpu-minimal",
        "--platform",
        "linux/amd64,linux/arm64",
    ])
    .args(["--progress", "plain", "--report-dir"])
    .arg(&reports);
    let build = Run::of(&mut cmd).assert_ok();
    // Every step that runs a program for arm64 (BuildKit names a step of a multi-platform build
    // after the platform its stage runs on): the base stage's python3 check and the import proof
    // of the finished venv. Everything else ran on linux/amd64, the venv's install included.
    let mut emulated: Vec<String> = build
        .stderr
        .lines()
        .filter_map(|l| l.split_once(" [linux/arm64 ").map(|(_, rest)| rest))
        .filter(|rest| rest.contains("] RUN "))
        .map(|rest| rest.split(']').next().unwrap().to_string())
        .collect();
    emulated.sort();
    emulated.dedup();
    assert_eq!(emulated, ["app 1/4", "base 2/2"], "{}", tail(&build.stderr));
    assert!(
        build.stderr.contains("[linux/amd64 installed 1/1] RUN"),
        "{}",
        tail(&build.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(reports.join("build-cpu-minimal.json")).unwrap(),
    )
    .unwrap();
    let image = "voxserve:cpu-minimal";
    for (platform, machine) in [("linux/amd64", EM_X86_64), ("linux/arm64", EM_AARCH64)] {
        let id = platform_id(image, platform).expect(platform);
        assert_eq!(
            report["platform_digests"][platform],
            id.as_str(),
            "{report}"
        );
        // numpy's compiled extensions are of the platform's CPU.
        let core = copy_out(
            image,
            platform,
            "/opt/venv/lib/python3.13/site-packages/numpy/_core",
            &dir.path().join(platform.replace('/', "-")),
        );
        let objects = shared_objects(&core);
        assert!(objects.len() > 3, "{objects:?}");
        for so in &objects {
            assert_eq!(elf_machine(so), machine, "{} for {platform}", so.display());
        }
    }

    let mut smoke = xtask();
    smoke.args([
        "smoke",
        "cpu-minimal",
        "--platform",
        "linux/arm64",
        "--format",
        "json",
    ]);
    let run = Run::of(&mut smoke).assert_ok();
    assert!(
        run.stderr.contains(
            "linux/arm64 runs under emulation on this linux/amd64 engine; timeouts are 5x"
        ),
        "{}",
        run.stderr
    );
    let smoke: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let outcome = &smoke["outcomes"];
    assert_eq!(outcome[0]["platform"], "linux/arm64");
    assert_eq!(outcome[0]["slowdown"], 5);
    assert_eq!(outcome[0]["checks_passed"], outcome[0]["checks_total"]);

    let sizes = Run::of(xtask().args(["sizes", "cpu-minimal", "--format", "json"])).assert_ok();
    let sizes: serde_json::Value = serde_json::from_str(&sizes.stdout).unwrap();
    let rows: Vec<(&str, bool)> = sizes["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["platform"].as_str().unwrap_or("-"),
                e["unpacked"].is_u64(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [("linux/amd64", true), ("linux/arm64", true)],
        "{sizes}"
    );
    assert!(labelled_containers().is_empty());
}

/// A config whose variant `multi` builds the platforms fixture and pushes to `registry`.
fn merge_setup(dir: &Scratch, registry: &Registry) -> (PathBuf, String) {
    let namespace = format!("xtask-{}-merge", run_id());
    let config = config_head().replacen(
        "[project]\n",
        &format!("[project]\nregistry = \"{}\"\n", registry.repo(&namespace)),
        1,
    ) + &fixture_variant("multi", &fixtures().join("platforms"), "platforms");
    (
        dir.write("images.toml", &config),
        format!("{namespace}/platforms"),
    )
}

#[test]
fn two_single_platform_pushes_merge_by_digest_into_one_index_with_every_tag() {
    ensure_arm64_emulation();
    let registry = Registry::start();
    let dir = Scratch::new("merge");
    let (config, repo) = merge_setup(&dir, &registry);
    let _tags = RemoveTags::new(registry.repo(&repo));
    let xtask_with = |args: &[&str]| {
        let mut cmd = xtask();
        cmd.arg("--config").arg(&config).args(args);
        Run::of(&mut cmd)
    };
    let mut reports = Vec::new();
    for platform in ["linux/amd64", "linux/arm64"] {
        let out = dir.path().join(platform.replace('/', "-"));
        let out_s = out.to_string_lossy().into_owned();
        xtask_with(&[
            "build",
            "multi",
            "--platform",
            platform,
            "--push-by-digest",
            "--cache",
            "none",
            "--progress",
            "plain",
            "--report-dir",
            &out_s,
        ])
        .assert_ok();
        let path = out.join("build-multi.json");
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(report["pushed_by_digest"], true);
        assert!(report["digest"].as_str().unwrap().starts_with("sha256:"));
        assert!(report["platform_digests"][platform].is_string(), "{report}");
        reports.push((path, report));
    }
    // The docker driver pushes nothing untagged: each platform got one tag of its own, and no
    // standard tag moved.
    let platform_tags: Vec<String> = reports
        .iter()
        .map(|(_, r)| {
            let tag = r["platform_tag"]
                .as_str()
                .expect("docker driver: a platform tag");
            tag.rsplit(':').next().unwrap().to_string()
        })
        .collect();
    assert!(
        platform_tags[0].ends_with("-multi-linux-amd64"),
        "{platform_tags:?}"
    );
    assert!(
        platform_tags[1].ends_with("-multi-linux-arm64"),
        "{platform_tags:?}"
    );
    let mut before = registry.tags(&repo);
    before.sort();
    let mut expected_before = platform_tags.clone();
    expected_before.sort();
    assert_eq!(before, expected_before);

    let from: Vec<String> = reports
        .iter()
        .map(|(p, _)| p.to_string_lossy().into_owned())
        .collect();
    let merged_dir = dir.path().join("merged").to_string_lossy().into_owned();
    let merge = |from: &[&str]| {
        let mut args = vec![
            "merge",
            "multi",
            "--report-dir",
            &merged_dir,
            "--format",
            "json",
        ];
        for f in from {
            args.extend(["--from", f]);
        }
        xtask_with(&args)
    };

    // Refused before anything is written: another variant, another revision, a platform twice.
    for (field, value, says) in [
        ("variant", "other", "is a build of `other`, not `multi`"),
        (
            "revision",
            "0000000000000000000000000000000000000000",
            "different revisions",
        ),
    ] {
        let mut edited = reports[1].1.clone();
        edited[field] = serde_json::json!(value);
        let path = dir.write(&format!("edited-{field}.json"), &edited.to_string());
        let run = merge(&[&from[0], &path.to_string_lossy()]);
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert!(run.error_line().contains(says), "{}", run.error_line());
    }
    let twice = merge(&[&from[1], &from[1]]);
    assert_eq!(twice.code, 2);
    assert!(
        twice.error_line().contains("linux/arm64 is in both"),
        "{}",
        twice.stderr
    );
    let mut after_refusals = registry.tags(&repo);
    after_refusals.sort();
    assert_eq!(after_refusals, before, "a refused merge tagged something");

    let run = merge(&[&from[0], &from[1]]).assert_ok();
    let merged: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let tags: Vec<String> = merged["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().rsplit(':').next().unwrap().to_string())
        .collect();
    let mut listed = registry.tags(&repo);
    listed.sort();
    let mut expected: Vec<String> = tags.iter().chain(&platform_tags).cloned().collect();
    expected.sort();
    assert_eq!(
        listed, expected,
        "every tag of the reports is in the registry"
    );
    assert!(
        tags.iter().any(|t| t == "multi") && tags.len() >= 3,
        "{tags:?}"
    );

    // `imagetools inspect` shows both platforms, each the digest its report named.
    let reference = format!("{}:multi", registry.repo(&repo));
    let raw = docker(&["buildx", "imagetools", "inspect", "--raw", &reference]).assert_ok();
    let index: serde_json::Value = serde_json::from_str(&raw.stdout).unwrap();
    for (_, report) in &reports {
        for (platform, digest) in report["platform_digests"].as_object().unwrap() {
            let (os, arch) = platform.split_once('/').unwrap();
            assert!(
                index["manifests"].as_array().unwrap().iter().any(|m| {
                    m["digest"] == *digest
                        && m["platform"]["os"] == os
                        && m["platform"]["architecture"] == arch
                }),
                "{platform} {digest} not in {index}"
            );
        }
    }
    let pretty = docker(&["buildx", "imagetools", "inspect", &reference]).assert_ok();
    assert!(
        pretty.stdout.contains("linux/amd64") && pretty.stdout.contains("linux/arm64"),
        "{}",
        pretty.stdout
    );
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(&merged_dir).join("build-multi.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report["digest"], merged["digest"]);
    assert_eq!(report["pushed"], true);
}

#[test]
fn a_push_of_two_platforms_is_one_index_and_the_report_names_each_digest() {
    ensure_arm64_emulation();
    let registry = Registry::start();
    let dir = Scratch::new("push-two");
    let (config, repo) = merge_setup(&dir, &registry);
    let _tags = RemoveTags::new(registry.repo(&repo));
    let reports = dir.path().join("reports");
    let mut cmd = xtask();
    cmd.arg("--config")
        .arg(&config)
        .args([
            "build",
            "multi",
            "--platform",
            "linux/amd64,linux/arm64",
            "--push",
        ])
        .args(["--cache", "none", "--progress", "plain", "--report-dir"])
        .arg(&reports);
    Run::of(&mut cmd).assert_ok();
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(reports.join("build-multi.json")).unwrap())
            .unwrap();
    let digests = report["platform_digests"].as_object().unwrap();
    assert_eq!(
        digests.keys().collect::<Vec<_>>(),
        ["linux/amd64", "linux/arm64"],
        "{report}"
    );
    let reference = format!("{}:multi", registry.repo(&repo));
    let raw = docker(&["buildx", "imagetools", "inspect", "--raw", &reference]).assert_ok();
    let index: serde_json::Value = serde_json::from_str(&raw.stdout).unwrap();
    for (platform, digest) in digests {
        let arch = platform.rsplit('/').next().unwrap();
        assert!(
            index["manifests"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["digest"] == *digest && m["platform"]["architecture"] == arch),
            "{platform} {digest} not in {index}"
        );
    }
    let top = docker(&[
        "buildx",
        "imagetools",
        "inspect",
        "--format",
        "{{json .Manifest}}",
        &reference,
    ])
    .assert_ok();
    assert!(
        top.stdout.contains(report["digest"].as_str().unwrap()),
        "{}",
        top.stdout
    );
}

#[test]
fn doctor_reports_each_foreign_platform_as_emulated_or_missing_with_the_fix() {
    ensure_arm64_emulation();
    // The repository's images.toml names linux/arm64: emulated here, through QEMU's handler.
    let run = xtask_run(&["doctor", "--format", "json"]);
    let doctor: serde_json::Value = serde_json::from_str(&run.stdout).expect(&run.stdout);
    let checks = doctor["checks"].clone();
    let find = |checks: &serde_json::Value, name: &str| {
        checks
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no `{name}` check: {checks}"))
    };
    let arm64 = find(&checks, "emulation of linux/arm64");
    assert_eq!(arm64["ok"], true, "{arm64}");
    assert!(
        arm64["detail"]
            .as_str()
            .unwrap()
            .starts_with("emulated: binfmt_misc `qemu-aarch64`"),
        "{arm64}"
    );
    assert!(
        !run.stdout.contains("emulation of linux/amd64"),
        "the machine's own platform is no emulation"
    );

    // A platform without a handler: not ok, with the fix; optional, so doctor still passes.
    let Some(platform) = unregistered_platform() else {
        eprintln!(
            "every candidate platform is emulated on this machine: nothing to report missing"
        );
        return;
    };
    let dir = Scratch::new("doctor-emulation");
    let config = dir.write(
        "images.toml",
        &format!(
            "{}platforms = [\"linux/amd64\", \"{platform}\"]\n\n{}",
            config_head(),
            fixture_variant(
                "doctor",
                &fixtures().join("platforms"),
                "localhost/xtask-doctor-unbuilt"
            )
        ),
    );
    let run = xtask_run(&[
        "--config",
        &config.to_string_lossy(),
        "doctor",
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doctor: serde_json::Value = serde_json::from_str(&run.stdout).expect(&run.stdout);
    let checks = doctor["checks"].clone();
    let missing = find(&checks, &format!("emulation of {platform}"));
    let short = platform.rsplit('/').next().unwrap();
    assert_eq!(missing["ok"], false, "{missing}");
    assert!(
        missing["detail"]
            .as_str()
            .unwrap()
            .contains(&format!(".ci/enable-emulation {short}")),
        "{missing}"
    );
}
