//! The CLI without a Docker engine: images.toml errors naming file, line, column and variant,
//! unknown variants, the repository's own config, and `doctor` when no engine answers. Part of
//! `cargo xtask test --quick`.

#![allow(clippy::disallowed_methods, clippy::disallowed_macros)] // tests run programs and print as a user would

mod common;

use common::*;

#[test]
fn doctor_without_an_engine_names_the_fix() {
    let run = Run::of(
        xtask()
            .args(["doctor"])
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock"),
    );
    assert_eq!(
        run.code, 1,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    let last = run.error_line();
    assert!(
        last.contains("DOCKER_HOST=unix:///nonexistent/docker.sock"),
        "{last}"
    );
    assert!(
        last.contains("start it") && last.contains("DOCKER_HOST"),
        "{last}"
    );
}

fn bad_config(body: &str) -> Run {
    // One directory per call: the tests run in parallel and each removes its own.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = Scratch::new(&format!("badcfg-{n}"));
    dir.write("Dockerfile", "FROM scratch\n");
    let path = dir.write("images.toml", &format!("{}{body}", config_head()));
    xtask_run(&["--config", path.to_str().unwrap(), "config"])
}

#[test]
fn invalid_toml_names_file_line_and_column() {
    let run = bad_config("[variants.one]\ndockerfile = \"Dockerfile\"\nimage = \"x\nbroken\n");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("images.toml:15:7"), "{}", run.stderr);
}

#[test]
fn unknown_key_names_the_variant_and_position() {
    let run = bad_config(
        "[variants.one]\ndockerfile = \"Dockerfile\"\nimage = \"x\"\ndockerfle = \"oops\"\n",
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("images.toml:15:1"), "{}", run.stderr);
    assert!(run.stderr.contains("variant `one`"), "{}", run.stderr);
    assert!(run.stderr.contains("dockerfle"), "{}", run.stderr);
}

#[test]
fn budget_with_a_bad_unit_names_the_variant() {
    let run = bad_config("[variants.two]\ndockerfile = \"Dockerfile\"\nimage = \"x\"\nbudget = { unpacked = \"3 GX\" }\n");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("images.toml:15:23"), "{}", run.stderr);
    assert!(
        run.stderr.contains("variant `two`") && run.stderr.contains("unknown unit `GX`"),
        "{}",
        run.stderr
    );
}

#[test]
fn missing_dockerfile_names_the_variant() {
    let run = bad_config("[variants.three]\ndockerfile = \"Dockerfile.nope\"\nimage = \"x\"\n");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("images.toml:13:14"), "{}", run.stderr);
    assert!(
        run.stderr.contains("variant `three`") && run.stderr.contains("Dockerfile.nope"),
        "{}",
        run.stderr
    );
}

#[test]
fn empty_variant_list_is_an_error() {
    let run = bad_config("[variants]\n");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("no variants declared"),
        "{}",
        run.stderr
    );
}

#[test]
fn unknown_variant_lists_the_known_ones() {
    let dir = Scratch::new("unknownvariant");
    dir.write("Dockerfile", "FROM scratch\n");
    let path = dir.write(
        "images.toml",
        &format!("{}[variants.alpha]\ndockerfile = \"Dockerfile\"\nimage = \"x\"\n[variants.beta]\ndockerfile = \"Dockerfile\"\nimage = \"x\"\n", config_head()),
    );
    let run = xtask_run(&["--config", path.to_str().unwrap(), "config", "gamma"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("unknown variant `gamma`") && run.stderr.contains("alpha, beta"),
        "{}",
        run.stderr
    );
}

#[test]
fn repository_config_resolves_every_variant() {
    let run = xtask_run(&["config", "--format", "json"]).assert_ok();
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let names: Vec<&str> = doc["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "cpu",
            "cpu-minimal",
            "cpu-minimal-distroless",
            "cuda",
            "rocm"
        ]
    );
}
