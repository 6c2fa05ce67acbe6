//! `cargo xtask sizes` against the real engine: a fixture with a layer of known random content
//! and a highly compressible one; budgets, baselines, output formats, and the same figures on
//! the containerd store (the engine under test) and the classic overlay2 store (a second dockerd
//! that the test starts and stops).

#![allow(clippy::disallowed_methods, clippy::disallowed_macros)] // tests run programs and print as a user would

mod common;

use common::*;
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

/// Bytes of the random file and of the text file in the fixture.
const RANDOM_BYTES: usize = 10_000_000;
const TEXT_BYTES: usize = 10_000_000;

/// The fixture image (tagged under several names) and its measurement on the main engine.
struct Fixture {
    tag: String,
    /// Repository of the extra tags `ok`, `warn`, `over` (all the same image).
    repo: String,
    report: Value,
}

impl Fixture {
    fn entry(&self) -> &Value {
        &self.report["images"][0]
    }
    fn compressed(&self) -> u64 {
        self.entry()["compressed"].as_u64().unwrap()
    }
    fn unpacked(&self) -> u64 {
        self.entry()["unpacked"].as_u64().unwrap()
    }
}

/// xorshift64*: the same pseudo-random bytes on every run, so the layer is the same blob.
fn pseudo_random(len: usize, mut state: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let gen = Scratch::new("sizes-gen");
        std::fs::write(
            gen.path().join("random.bin"),
            pseudo_random(RANDOM_BYTES, 0x5eed_5eed_5eed_5eed),
        )
        .unwrap();
        let line = b"voxserve sizes fixture: the same line again and again\n";
        let text: Vec<u8> = line.iter().copied().cycle().take(TEXT_BYTES).collect();
        std::fs::write(gen.path().join("text.txt"), text).unwrap();
        let repo = format!("localhost/xtask-sizes-{}", run_id());
        let tag = fixture_image(
            "sizes",
            &[
                "--build-context",
                &format!("gen={}", gen.path().display()),
                &format!("--tag={repo}:ok"),
                &format!("--tag={repo}:warn"),
                &format!("--tag={repo}:over"),
            ],
        );
        // --no-cache: measured here, whatever earlier runs cached for these blobs.
        let report = measure_again(&tag, &[]);
        Fixture { tag, repo, report }
    })
}

/// The layer made by `COPY … /data/<file>`.
fn layer<'a>(entry: &'a Value, file: &str) -> &'a Value {
    entry["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["created_by"].as_str().unwrap().contains(file))
        .unwrap_or_else(|| panic!("no layer made {file}: {entry:#}"))
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// Length of `gzip -6` of a file (the gzip CLI: a compressor independent of the xtask's).
fn gzip_cli_len(path: &Path) -> u64 {
    let out = Command::new("gzip")
        .args(["-6", "-c"])
        .stdin(std::fs::File::open(path).unwrap())
        .output()
        .expect("running gzip");
    assert!(out.status.success());
    out.stdout.len() as u64
}

#[test]
fn random_layer_is_measured_exactly_and_compressed_like_gzip() {
    let f = fixture();
    let entry = f.entry();
    assert_eq!(entry["status"], "ok");
    assert_eq!(entry["method"], "stored (registry blobs)", "{entry:#}");
    let random = layer(entry, "random.bin");
    let text = layer(entry, "text.txt");
    // The tests run as root, so the layers were read from containerd's content store in place:
    // the 10 MB random layer's length from its gzip trailer, the 59 kB text blob decompressed.
    let run = &f.report["run"];
    assert_eq!(
        (
            run["from_content_store"].as_u64(),
            run["from_docker_save"].as_u64()
        ),
        (Some(1), Some(0)),
        "{run}"
    );
    assert_eq!(random["unpacked_from"], "gzip-trailer", "{random:#}");
    assert_eq!(text["unpacked_from"], "decompressed", "{text:#}");

    // Unpacked: the file plus its tar headers (and those of /data) is within 1 % of the truth.
    let unpacked = u(&random["unpacked"]);
    let truth = RANDOM_BYTES as u64;
    assert!(
        unpacked >= truth && unpacked - truth <= truth / 100,
        "random layer: unpacked {unpacked}, file {truth}"
    );
    let text_unpacked = u(&text["unpacked"]);
    assert!(text_unpacked >= TEXT_BYTES as u64 && text_unpacked - (TEXT_BYTES as u64) < 100_000);

    // The history entry without a layer (ENV) did not shift the mapping.
    assert!(random["created_by"].as_str().unwrap().starts_with("COPY"));
    assert!(text["created_by"].as_str().unwrap().starts_with("COPY"));

    // Whole image: compressed ≤ unpacked; the parts add up.
    let layers = entry["layers"].as_array().unwrap();
    assert_eq!(
        f.compressed(),
        layers.iter().map(|l| u(&l["compressed"])).sum::<u64>()
    );
    assert_eq!(
        f.unpacked(),
        layers.iter().map(|l| u(&l["unpacked"])).sum::<u64>()
    );
    assert!(f.compressed() < f.unpacked(), "{entry:#}");
    assert!(
        u(&text["compressed"]) * 20 < u(&text["unpacked"]),
        "{text:#}"
    );

    // Check against the blobs themselves: the stored blob's length, its gunzipped length, and
    // gzip -6 of the layer tar.
    let dir = Scratch::new("sizes-blobs");
    let saved = dir.path().join("image.tar");
    docker(&["save", "-o", saved.to_str().unwrap(), &f.tag]).assert_ok();
    let out = Command::new("tar")
        .arg("-xf")
        .arg(&saved)
        .arg("-C")
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(out.success());
    for l in [random, text] {
        let digest = l["digest"].as_str().unwrap();
        let blob = dir.path().join("blobs").join(digest.replace(':', "/"));
        let stored = std::fs::metadata(&blob).unwrap().len();
        assert_eq!(u(&l["compressed"]), stored, "{digest}");
        let mut tar = Vec::new();
        flate2::read::MultiGzDecoder::new(std::fs::File::open(&blob).unwrap())
            .read_to_end(&mut tar)
            .unwrap();
        assert_eq!(u(&l["unpacked"]), tar.len() as u64, "{digest}");
        let layer_tar = dir.path().join("layer.tar");
        std::fs::write(&layer_tar, &tar).unwrap();
        let gzip = gzip_cli_len(&layer_tar);
        if l == random {
            let diff = (u(&l["compressed"]) as f64 - gzip as f64).abs() / gzip as f64;
            assert!(
                diff < 0.03,
                "random layer: stored {} vs gzip -6 {gzip}",
                u(&l["compressed"])
            );
        }
    }
}

#[test]
fn cached_run_reads_nothing_and_agrees() {
    let f = fixture();
    let started = Instant::now();
    let run = xtask_run(&["sizes", "--image", &f.tag, "--format", "json"]).assert_ok();
    let elapsed = started.elapsed();
    let again: Value = serde_json::from_str(&run.stdout).unwrap();
    let r = &again["run"];
    assert_eq!(
        (
            r["from_cache"].as_u64(),
            r["from_content_store"].as_u64(),
            r["from_docker_save"].as_u64()
        ),
        (Some(1), Some(0), Some(0)),
        "{r}"
    );
    // The same sizes (another test may have re-measured them meanwhile by decompressing, which
    // changes `unpacked_from` but no figure).
    let (a, b) = (&again["images"][0], f.entry());
    assert_eq!(
        (&a["compressed"], &a["unpacked"]),
        (&b["compressed"], &b["unpacked"])
    );
    let strip = |v: Vec<(u64, u64, String)>| v.into_iter().map(|l| (l.0, l.1)).collect::<Vec<_>>();
    assert_eq!(strip(layer_sizes(a)), strip(layer_sizes(b)));
    eprintln!("cached run of one image: {elapsed:?}");
}

/// Sizes of every layer, with how each unpacked size was found.
fn layer_sizes(entry: &Value) -> Vec<(u64, u64, String)> {
    entry["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                u(&l["compressed"]),
                u(&l["unpacked"]),
                l["unpacked_from"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The JSON report of `sizes --image IMAGE --no-cache` with `extra` flags.
fn measure_again(image: &str, extra: &[&str]) -> Value {
    let mut args = vec!["sizes", "--image", image, "--format", "json", "--no-cache"];
    args.extend_from_slice(extra);
    let run = xtask_run(&args).assert_ok();
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("sizes --format json is not JSON ({e}):\n{}", run.stdout))
}

#[test]
fn docker_save_and_decompressing_agree_with_the_content_store() {
    let f = fixture();
    let fast = layer_sizes(f.entry());
    let same_sizes = |other: &[(u64, u64, String)]| {
        let strip = |v: &[(u64, u64, String)]| v.iter().map(|l| (l.0, l.1)).collect::<Vec<_>>();
        assert_eq!(strip(other), strip(&fast));
    };

    let measure = |extra: &[&str]| measure_again(&f.tag, extra);

    // Through `docker save` (the path of users who cannot read the content store).
    let saved = measure(&["--source", "docker-save"]);
    assert_eq!(saved["run"]["from_docker_save"], 1, "{}", saved["run"]);
    let saved = layer_sizes(&saved["images"][0]);
    same_sizes(&saved);
    assert!(saved.iter().all(|l| l.2 == "decompressed"), "{saved:?}");

    // From the content store, every layer decompressed instead of trusting trailers.
    let decompressed = measure(&["--decompress"]);
    assert_eq!(decompressed["run"]["from_content_store"], 1);
    assert_eq!(decompressed["run"]["layers_by_gzip_trailer"], 0);
    let decompressed = layer_sizes(&decompressed["images"][0]);
    same_sizes(&decompressed);
    assert!(decompressed.iter().all(|l| l.2 == "decompressed"));

    // The cache now holds decompressed facts; a later run without flags uses them as they are.
    let run = xtask_run(&["sizes", "--image", &f.tag, "--format", "json"]).assert_ok();
    let cached: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(cached["run"]["from_cache"], 1);
    same_sizes(&layer_sizes(&cached["images"][0]));
}

/// A variant with `push_compression = "zstd"` is sized as its push sends it: BuildKit compresses
/// the layers anew (stored under a passing tag and read from the content store, or exported as a
/// stream with `--source docker-save`), and each layer's size is that of the pushed manifest.
#[test]
fn a_zstd_variant_is_sized_as_its_push_sends_it() {
    let f = fixture();
    let dir = Scratch::new("sizes-zstd");
    let dockerfile = fixtures().join("sizes").join("Dockerfile");
    let config = format!(
        "{}[variants.ok]\ndockerfile = \"{}\"\nimage = \"{}\"\npush_compression = \"zstd\"\n",
        config_head(),
        dockerfile.display(),
        f.repo
    );
    let cfg = dir.write("images.toml", &config);
    let sized = |extra: &[&str]| -> Vec<u64> {
        let mut args = vec![
            "--config",
            cfg.to_str().unwrap(),
            "sizes",
            "ok",
            "--format",
            "json",
            "--no-cache",
        ];
        args.extend_from_slice(extra);
        let run = xtask_run(&args).assert_ok();
        let doc: Value = serde_json::from_str(&run.stdout).unwrap();
        let entry = &doc["images"][0];
        assert_eq!(entry["method"], "computed (zstd of layer tars, as pushed)");
        entry["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| u(&l["compressed"]))
            .collect()
    };
    let from_store = sized(&[]);
    assert_eq!(sized(&["--source", "docker-save"]), from_store);
    let passing = docker(&["image", "ls", "--quiet", "xtask-sizes-zstd"]);
    assert_eq!(passing.stdout.trim(), "", "a passing tag was left behind");

    // The push: what `cargo xtask build --push` asks of BuildKit for a zstd variant.
    let registry = Registry::start();
    let pushed = registry.repo("sizes-zstd");
    let _local = RemoveTags::new(pushed.clone());
    let context = Scratch::new("sizes-zstd-push");
    context.write("Dockerfile", &format!("FROM {}\n", f.tag));
    let output = format!(
        "type=registry,name={pushed}:ok,compression=zstd,force-compression=true,oci-mediatypes=true"
    );
    let context_dir = context.path().to_str().unwrap();
    let args = [
        "buildx",
        "build",
        "--provenance=false",
        "--output",
        &output,
        context_dir,
    ];
    let push = docker(&args);
    assert_eq!(push.code, 0, "{}", push.stderr);
    let (_, manifest) = registry.manifest("sizes-zstd", "ok");
    let layers = manifest["layers"].as_array().unwrap();
    assert!(layers
        .iter()
        .all(|l| l["mediaType"].as_str().unwrap().ends_with("+zstd")));
    let sent: Vec<u64> = layers.iter().map(|l| u(&l["size"])).collect();
    assert_eq!(from_store, sent);
    // Not the gzip blobs the store keeps: the text layer compresses differently.
    let stored: Vec<u64> = layer_sizes(f.entry()).iter().map(|l| l.0).collect();
    assert_ne!(stored, sent);
}

/// `--image REGISTRY/IMAGE:TAG --platform P` measures that platform of the pushed index alone, and
/// a platform the index lacks is refused (exit 2), as for a local image.
#[test]
fn registry_images_honour_platform_and_refuse_a_missing_one() {
    ensure_base();
    let registry = Registry::start();
    let pushed = registry.repo("sizes-platforms");
    let _local = RemoveTags::new(pushed.clone());
    let context = Scratch::new("sizes-platforms");
    context.write("Dockerfile", &format!("FROM {BASE_IMAGE}\n"));
    let output = format!("type=registry,name={pushed}:t");
    let context_dir = context.path().to_str().unwrap();
    let platforms = "--platform=linux/amd64,linux/arm64";
    let args = [
        "buildx",
        "build",
        platforms,
        "--provenance=false",
        "--output",
        &output,
        context_dir,
    ];
    let push = docker(&args);
    assert_eq!(push.code, 0, "{}", push.stderr);
    let image = format!("{pushed}:t");

    let rows = |extra: &[&str]| -> Vec<String> {
        let mut args = vec!["sizes", "--image", &image, "--format", "json"];
        args.extend_from_slice(extra);
        let run = xtask_run(&args).assert_ok();
        let doc: Value = serde_json::from_str(&run.stdout).unwrap();
        let platforms = doc["registry"][0]["platforms"].as_array().unwrap();
        platforms
            .iter()
            .map(|p| p["platform"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(rows(&[]), ["linux/amd64", "linux/arm64"]);
    assert_eq!(rows(&["--platform", "linux/arm64"]), ["linux/arm64"]);

    let run = xtask_run(&["sizes", "--image", &image, "--platform", "linux/s390x"]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        run.error_line(),
        format!(
            "error: {image} has no linux/s390x image in its registry (it has linux/amd64, \
             linux/arm64): drop --platform or name one of those"
        )
    );
    assert_eq!(run.stdout, "", "no rows for the wrong platform");
}

/// A layer over 4 GiB: its gzip trailer holds the length modulo 2^32, and the disk usage that
/// `docker history` reports picks the right wrap. Checked against the exact tar length and
/// against decompressing the blob.
#[test]
fn layers_over_4_gib_are_measured_exactly() {
    const LARGE: u64 = 4_400_000_000;
    let tag = fixture_image("sizes-large", &[]);
    let _remove = RemoveTags::new(tag.clone());
    let measure = |extra: &[&str]| measure_again(&tag, extra);
    let fast = measure(&[]);
    let large = layer(&fast["images"][0], "large.txt");
    // The layer tar: one 512-byte header, the file (a multiple of 512 bytes), and the 1024-byte
    // end-of-archive marker.
    assert_eq!(u(&large["unpacked"]), LARGE + 512 + 1024, "{large:#}");
    assert_eq!(large["unpacked_from"], "gzip-trailer");
    assert!(u(&large["compressed"]) < LARGE / 100, "{large:#}");

    let slow = measure(&["--decompress"]);
    let decompressed = layer(&slow["images"][0], "large.txt");
    assert_eq!(decompressed["unpacked_from"], "decompressed");
    assert_eq!(decompressed["unpacked"], large["unpacked"]);
    assert_eq!(slow["images"][0]["unpacked"], fast["images"][0]["unpacked"]);
}

/// An images.toml whose variants name the fixture's tags, with these budget tables.
fn budget_config(dir: &Scratch, f: &Fixture, variants: &[(&str, &str)]) -> PathBuf {
    let dockerfile = fixtures().join("sizes").join("Dockerfile");
    let mut text = config_head();
    for (name, budget) in variants {
        text.push_str(&format!(
            "[variants.{name}]\ndockerfile = \"{}\"\nimage = \"{}\"\nbudget = {budget}\n\n",
            dockerfile.display(),
            f.repo
        ));
    }
    dir.write("images.toml", &text)
}

#[test]
fn over_budget_exits_1_and_names_the_variant() {
    let f = fixture();
    let dir = Scratch::new("sizes-over");
    let over = format!("{{ unpacked = \"{}\" }}", f.unpacked() - 1000);
    let ok = format!("{{ unpacked = \"{}\" }}", f.unpacked() * 2);
    let cfg = budget_config(&dir, f, &[("over", &over), ("ok", &ok)]);
    let run = xtask_run(&["--config", cfg.to_str().unwrap(), "sizes"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let error = run.error_line();
    assert!(
        error.contains("over: unpacked size") && error.contains("exceeds its budget of"),
        "{error}"
    );
    assert!(error.contains("by 1.0 kB"), "{error}");
    assert!(!error.contains("ok:"), "{error}");
    // Both are still reported.
    assert!(run.stdout.contains("OVER BUDGET"), "{}", run.stdout);
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("ok ") && l.contains(" ok ")),
        "{}",
        run.stdout
    );
    // In Markdown, the chart beside the table: each size as a share of its budget.
    let md = xtask_run(&[
        "--config",
        cfg.to_str().unwrap(),
        "sizes",
        "--format",
        "markdown",
    ]);
    assert_eq!(md.code, 1, "{}\n{}", md.stdout, md.stderr);
    let chart = &md.stdout[md
        .stdout
        .find("```mermaid\nxychart-beta horizontal\n")
        .expect(&md.stdout)..];
    assert!(
        chart.contains("title \"Size against its budget (%)\"")
            && chart.contains("x-axis [\"ok, unpacked\", \"over, unpacked\"]")
            && chart.contains("bar \"size\" [50, 100.")
            && chart.contains("line \"budget\" [100, 100]"),
        "{chart}"
    );
}

#[test]
fn ninety_percent_of_a_budget_is_only_a_warning() {
    let f = fixture();
    let dir = Scratch::new("sizes-warn");
    // The compressed size is 95 % of this budget.
    let warn = format!("{{ compressed = \"{}\" }}", f.compressed() * 100 / 95);
    let cfg = budget_config(&dir, f, &[("warn", &warn)]);
    let run = xtask_run(&[
        "--config",
        cfg.to_str().unwrap(),
        "sizes",
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .lines()
            .any(|l| l.starts_with("warning: warn: compressed size")
                && l.contains("% of its budget")),
        "{}",
        run.stderr
    );
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["images"][0]["status"], "warning");
}

#[test]
fn unbuilt_variant_names_the_build_command_and_others_are_reported() {
    let f = fixture();
    let dir = Scratch::new("sizes-missing");
    let cfg = budget_config(&dir, f, &[("ok", "{}"), ("absent", "{}")]);
    let run = xtask_run(&["--config", cfg.to_str().unwrap(), "sizes"]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("not built: run `cargo xtask build absent`"),
        "{}",
        run.stdout
    );
    let ok_line = run.stdout.lines().find(|l| l.starts_with("ok ")).unwrap();
    assert!(
        ok_line.contains("MB") && ok_line.contains("stored"),
        "{ok_line}"
    );
    assert!(
        run.stderr.contains("cargo xtask build absent"),
        "{}",
        run.stderr
    );
}

#[test]
fn baseline_shows_signed_changes_with_percentages() {
    let f = fixture();
    let dir = Scratch::new("sizes-baseline");
    // Earlier: 10 % more compressed (now 1/11 less: -9.1 %), half as much unpacked (now
    // +100 %); and a variant now gone.
    let before_c = f.compressed() * 11 / 10;
    let before_u = f.unpacked() / 2;
    let baseline = serde_json::json!({
        "schema": 1,
        "images": [
            {"name": f.tag, "compressed": before_c, "unpacked": before_u},
            {"name": "gone", "compressed": 1, "unpacked": 1}
        ]
    });
    let path = dir.write("base.json", &baseline.to_string());
    let saved = dir.path().join("now.json");
    let run = xtask_run(&[
        "sizes",
        "--image",
        &f.tag,
        "--baseline",
        path.to_str().unwrap(),
        "--save",
        saved.to_str().unwrap(),
    ])
    .assert_ok();
    let row = run
        .stdout
        .lines()
        .find(|l| l.contains(&f.tag))
        .unwrap_or_else(|| panic!("{}", run.stdout));
    assert!(row.contains(" MB (-9.1 %)") && row.contains("-"), "{row}");
    assert!(row.contains(" MB (+100.0 %)") && row.contains("+"), "{row}");
    let header = run.stdout.lines().next().unwrap();
    assert!(
        header.contains("Δ compressed") && header.contains("Δ unpacked"),
        "{header}"
    );
    // --save wrote the JSON report, with the delta.
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    let delta = &doc["images"][0]["delta"];
    let (after_c, after_u) = (f.compressed() as i64, f.unpacked() as i64);
    assert_eq!(
        delta["compressed"]["bytes"].as_i64().unwrap(),
        after_c - before_c as i64
    );
    let pc = delta["compressed"]["percent"].as_f64().unwrap();
    assert!((pc - (-100.0 / 11.0)).abs() < 0.01, "{pc}");
    assert_eq!(
        delta["unpacked"]["bytes"].as_i64().unwrap(),
        after_u - before_u as i64
    );
    let pu = delta["unpacked"]["percent"].as_f64().unwrap();
    assert!((pu - 100.0).abs() < 0.01, "{pu}");
}

/// Cells of a Markdown table row, splitting on pipes that are not escaped.
fn md_cells(line: &str) -> Vec<String> {
    let inner = line
        .strip_prefix('|')
        .and_then(|l| l.strip_suffix('|'))
        .unwrap_or_else(|| panic!("not a table row: {line}"));
    let mut cells = vec![String::new()];
    let mut escaped = false;
    for c in inner.chars() {
        match c {
            '|' if !escaped => cells.push(String::new()),
            _ => cells.last_mut().unwrap().push(c),
        }
        escaped = c == '\\';
    }
    cells.iter().map(|c| c.trim().to_string()).collect()
}

#[test]
fn markdown_is_a_valid_table_and_goes_to_the_step_summary() {
    let f = fixture();
    let dir = Scratch::new("sizes-md");
    let summary = dir.path().join("summary.md");
    std::fs::write(&summary, "earlier step\n").unwrap();
    let run = Run::of(
        xtask()
            .args([
                "sizes", "--image", &f.tag, "--format", "markdown", "--layers", "2",
            ])
            .env("GITHUB_STEP_SUMMARY", &summary),
    )
    .assert_ok();
    let mut tables: Vec<Vec<&str>> = vec![Vec::new()];
    for line in run.stdout.lines() {
        if line.starts_with('|') {
            tables.last_mut().unwrap().push(line);
        } else if !tables.last().unwrap().is_empty() {
            tables.push(Vec::new());
        }
    }
    tables.retain(|t| !t.is_empty());
    assert_eq!(tables.len(), 2, "{}", run.stdout);
    for table in &tables {
        let width = md_cells(table[0]).len();
        let sep = md_cells(table[1]);
        assert!(
            sep.iter().all(|c| c == "---" || c == "---:"),
            "{}",
            table[1]
        );
        for row in table {
            assert_eq!(md_cells(row).len(), width, "{row}");
        }
    }
    let header = md_cells(tables[0][0]);
    assert_eq!(header[..4], ["variant", "image", "compressed", "unpacked"]);
    let row = md_cells(tables[0][2]);
    assert_eq!(row[1], f.tag);
    assert!(row[2].ends_with("MB") && row[3].ends_with("MB"), "{row:?}");
    // The layers table: the base, then the random file (the text file is as large unpacked but
    // compresses to little), with the instructions that made them.
    let layers = &tables[1];
    assert_eq!(
        md_cells(layers[0]),
        ["layer", "unpacked", "compressed", "created by"]
    );
    // The offline base's one layer: its platform's root filesystem (`cargo xtask base`).
    let created = md_cells(layers[2])[3].clone();
    assert!(
        created.starts_with("ADD rootfs") && created.ends_with(".tar /"),
        "{}",
        run.stdout
    );
    assert_eq!(md_cells(layers[3])[0], "2/3", "{}", run.stdout);
    assert_eq!(md_cells(layers[3])[3], "COPY random.bin /data/random.bin");
    assert!(
        run.stdout.contains("the 2 largest of 3 layers"),
        "{}",
        run.stdout
    );

    assert!(
        !run.stdout.contains("```mermaid"),
        "an image without a budget has no chart: {}",
        run.stdout
    );

    let written = std::fs::read_to_string(&summary).unwrap();
    assert!(written.starts_with("earlier step\n"), "{written}");
    assert!(written.contains("### Image sizes"), "{written}");
    assert!(written.contains(&f.tag), "{written}");
}

#[test]
fn json_has_both_sizes_for_every_entry() {
    let f = fixture();
    let run = xtask_run(&[
        "sizes",
        "--image",
        &f.tag,
        "--image",
        &format!("{}:warn", f.repo),
        "--format",
        "json",
    ])
    .assert_ok();
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    let images = doc["images"].as_array().unwrap();
    assert_eq!(images.len(), 2);
    for e in images {
        assert!(e["compressed"].as_u64().unwrap() > 0, "{e:#}");
        assert!(e["unpacked"].as_u64().unwrap() > 0, "{e:#}");
        assert_eq!(e["id"], images[0]["id"]);
    }
    assert!(doc["engine"].as_str().unwrap().contains("containerd"));
}

#[test]
#[cfg(target_os = "linux")] // starts a second dockerd, as root
fn same_figures_on_the_classic_and_the_containerd_store() {
    let f = fixture();
    let engine = Engine::classic();
    engine.load_from_main(&f.tag);
    let run = Run::of(
        xtask()
            .args([
                "sizes", "--image", &f.tag, "--format", "json", "--layers", "1",
            ])
            .env("DOCKER_HOST", &engine.host),
    )
    .assert_ok();
    let classic: Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(
        classic["engine"]
            .as_str()
            .unwrap()
            .contains("classic (overlay2)"),
        "{}",
        classic["engine"]
    );
    let (c, m) = (&classic["images"][0], f.entry());
    assert_eq!(c["method"], "computed (gzip of layer tars)");
    assert_eq!(m["method"], "stored (registry blobs)");

    // Unpacked: exactly the same, layer by layer (the same tars: the same diff IDs).
    assert_eq!(c["unpacked"], m["unpacked"]);
    let (cl, ml) = (
        c["layers"].as_array().unwrap(),
        m["layers"].as_array().unwrap(),
    );
    assert_eq!(cl.len(), ml.len());
    for (a, b) in cl.iter().zip(ml) {
        assert_eq!(a["diff_id"], b["diff_id"]);
        assert_eq!(a["unpacked"], b["unpacked"]);
        assert_eq!(a["created_by"], b["created_by"]);
    }
    // Compressed: computed gzip vs the blobs BuildKit stored, within 3 % for the image and for
    // the random layer.
    let close = |a: u64, b: u64| (a as f64 - b as f64).abs() / b as f64;
    let whole = close(u(&c["compressed"]), u(&m["compressed"]));
    assert!(
        whole < 0.03,
        "classic {} vs containerd {}",
        c["compressed"],
        m["compressed"]
    );
    let random = close(
        u(&layer(c, "random.bin")["compressed"]),
        u(&layer(m, "random.bin")["compressed"]),
    );
    assert!(
        random < 0.01,
        "random layer differs by {:.2} %",
        random * 100.0
    );
    eprintln!(
        "compressed: containerd (stored) {} vs classic (computed) {}: {:.2} %",
        m["compressed"],
        c["compressed"],
        whole * 100.0
    );

    // The classic store has no content store to read in place.
    let refused = Run::of(
        xtask()
            .args(["sizes", "--image", &f.tag, "--source", "content-store"])
            .env("DOCKER_HOST", &engine.host),
    );
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.error_line().contains("classic store")
            && refused.error_line().contains("drop --source"),
        "{}",
        refused.stderr
    );
    drop(engine);
}

/// `bench sizes` times the real command: a first measurement read in place and a cached one, both
/// judged against the 1 s target (generous here: one small image). A missing image is an error.
#[test]
fn bench_sizes_times_first_and_cached_measurements() {
    let f = fixture();
    // Its targets are times: on a machine busy with other work, up to three tries.
    let mut report = Value::Null;
    for _ in 0..3 {
        let run = xtask_run(&[
            "bench", "sizes", "--image", &f.tag, "--runs", "1", "--format", "json",
        ]);
        report = serde_json::from_str(&run.stdout).unwrap_or_else(|e| {
            panic!(
                "bench sizes --format json is not JSON ({e}):\n{}",
                run.stdout
            )
        });
        let passed = report["pass"] == true;
        assert_eq!(run.code, i32::from(!passed), "{}", run.stderr);
        if passed {
            break;
        }
    }
    assert_eq!(report["pass"], true, "{report:#}");
    let rows = report["rows"].as_array().unwrap();
    let scenario = |name: &str| {
        rows.iter()
            .find(|r| r["scenario"] == name)
            .unwrap_or_else(|| panic!("no {name} row: {report:#}"))
    };
    assert_eq!(scenario("first")["run"]["from_content_store"], 1);
    assert_eq!(scenario("cached")["run"]["from_cache"], 1);
    assert!(scenario("first")["median"].as_f64().unwrap() > 0.0);
    assert_eq!(report["checks"].as_array().unwrap().len(), 3, "{report:#}");

    let missing = format!("localhost/xtask-sizes-missing-{}:none", run_id());
    let run = xtask_run(&["bench", "sizes", "--image", &missing, "--runs", "1"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.error_line().contains(&missing), "{}", run.stderr);
}
