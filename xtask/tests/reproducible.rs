//! Reproducible images: `cargo xtask diff` against real builds (OCI archives from buildx, the
//! engine's store, a registry), naming the file and layer a non-reproducible step changed.

#![allow(clippy::disallowed_methods, clippy::disallowed_macros)] // tests run programs and print as a user would

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;
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
    let _tags = RemoveTags("localhost/xtask-diff-sources".into());
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
