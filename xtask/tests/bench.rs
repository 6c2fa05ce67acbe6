//! The benches against the real engine: `bench rebuild` and `bench update` on small fixtures
//! copied to a scratch directory (the touched files live there, so a test never changes the real
//! app), `bench smoke` on the smoke fixture. They test that a bench measures and judges, not what
//! it measures: the targets are the benches' verdicts, on a machine that may be busy.

#![allow(clippy::disallowed_methods, clippy::disallowed_macros)] // tests run programs and print as a user would

mod common;

use common::*;
use std::path::Path;

/// Every bench first removes what killed benches of the checkout left: a test that kills one and
/// checks that its own next run repairs runs while no other bench of this binary runs.
static RECLAIM: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn reclaim_turn() -> std::sync::RwLockReadGuard<'static, ()> {
    RECLAIM
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn reclaim_alone() -> std::sync::RwLockWriteGuard<'static, ()> {
    RECLAIM
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A copy of `tests/fixtures/<fixture>` in a scratch directory, as variant `fx` of its own
/// images.toml (image `localhost/<image>-<run id>`, removed on drop), with the bytes of the two
/// files the benches touch (`src/app.py`, `deps.lock`) before the bench.
struct Touched {
    dir: Scratch,
    context: std::path::PathBuf,
    app_file: std::path::PathBuf,
    dep_file: std::path::PathBuf,
    app_before: Vec<u8>,
    dep_before: Vec<u8>,
    image: String,
    _images: RemoveTags,
    _bench_images: RemoveTags,
    config: std::path::PathBuf,
}

fn touched(fixture: &str, scratch: &str, image: &str) -> Touched {
    ensure_base();
    let dir = Scratch::new(scratch);
    let context = dir.path().join("fixture");
    copy_dir(&fixtures().join(fixture), &context);
    let app_file = context.join("src").join("app.py");
    let dep_file = context.join("deps.lock");
    let app_before = std::fs::read(&app_file).unwrap();
    let dep_before = std::fs::read(&dep_file).unwrap();
    let image = format!("localhost/{image}-{}", run_id());
    let config = dir.write(
        "images.toml",
        &format!(
            "{}{}target = \"app\"\n",
            config_head(),
            fixture_variant("fx", &context, &image)
        ),
    );
    Touched {
        dir,
        context,
        app_file,
        dep_file,
        app_before,
        dep_before,
        _images: RemoveTags::new(image.clone()),
        _bench_images: RemoveTags::new(format!("{image}-bench")),
        image,
        config,
    }
}

/// Tags `<image>:fx` onto the base image (where a user's earlier build left the variant's tag);
/// returns the ID it points to.
fn tag_before(image: &str) -> String {
    docker(&["tag", BASE_IMAGE, &format!("{image}:fx")]).assert_ok();
    image_id(&format!("{image}:fx")).expect("just tagged")
}

fn image_id(reference: &str) -> Option<String> {
    let run = docker(&["image", "inspect", "--format", "{{.Id}}", reference]);
    (run.code == 0).then(|| run.stdout.trim().to_string())
}

#[test]
fn rebuild_bench_reports_four_builds_judges_them_and_restores_the_files() {
    let _turn = reclaim_turn();
    let Touched {
        dir: _dir,
        context,
        app_file,
        dep_file,
        app_before,
        dep_before,
        image,
        _images,
        _bench_images,
        config,
    } = touched("bench", "bench", "xtask-bench");
    let tagged_before = tag_before(&image);
    // A 0 s target cannot be met: the run must still report everything, then exit 1.
    let run = Run::of(
        xtask()
            .arg("--config")
            .arg(&config)
            .args([
                "bench",
                "rebuild",
                "fx",
                "--format",
                "json",
                "--max-app-secs",
                "0",
                "--runs",
                "2",
            ])
            .arg("--app-file")
            .arg(&app_file)
            .arg("--dep-file")
            .arg(&dep_file)
            // The fixture is its own peer: every build is paired with a build of it.
            .arg("--peer")
            .arg(context.join("Dockerfile")),
    );

    assert_eq!(
        std::fs::read(&app_file).unwrap(),
        app_before,
        "app file not restored"
    );
    assert_eq!(
        std::fs::read(&dep_file).unwrap(),
        dep_before,
        "dep file not restored"
    );
    assert_eq!(
        run.code, 1,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    assert!(
        run.stderr.contains("target missed: app-only rebuild time"),
        "{}",
        run.stderr
    );

    let report: serde_json::Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\nstderr:\n{}", run.stdout, run.stderr));
    let rows = report["rows"].as_array().unwrap();
    let scenarios: Vec<&str> = rows
        .iter()
        .map(|r| r["scenario"].as_str().unwrap())
        .collect();
    assert_eq!(scenarios, ["cold", "no-change", "app-change", "dep-change"]);
    for row in rows {
        assert!(row["secs"].as_f64().unwrap() > 0.0, "{row}");
        assert!(row["steps_total"].as_u64().unwrap() >= 4, "{row}");
        // --runs 2: both runs of ours and of the peer, and their medians (the mean of two).
        for build in [row, &row["peer"]] {
            let runs: Vec<f64> = build["runs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_f64().unwrap())
                .collect();
            assert_eq!(runs.len(), 2, "{row}");
            let median = (runs[0] + runs[1]) / 2.0;
            assert!(
                (build["secs"].as_f64().unwrap() - median).abs() < 1e-9,
                "{row}"
            );
        }
    }
    assert_eq!(rows[0]["ratio_to_cold"].as_f64(), Some(1.0));
    assert_eq!(
        rows[1]["steps_run"].as_array().unwrap().len(),
        0,
        "{}",
        rows[1]
    );
    // The app change re-ran the app stage's COPY and what follows it, nothing in deps.
    let app_run: Vec<&str> = rows[2]["steps_run"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(
        !app_run.is_empty() && app_run.iter().all(|s| s.starts_with("[app ")),
        "{app_run:?}"
    );
    // The dependency change re-ran the deps stage's step that reads the lock.
    assert!(
        rows[3]["steps_run"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s.as_str().unwrap().starts_with("[deps ")),
        "{}",
        rows[3]
    );

    // Each build was paired with the peer's, and the ratio taken.
    for row in rows {
        assert!(row["peer"]["secs"].as_f64().unwrap() > 0.0, "{row}");
        assert!(row["ratio_to_peer"].as_f64().unwrap() > 0.0, "{row}");
    }
    let checks: Vec<(&str, bool)> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["pass"].as_bool().unwrap()))
        .collect();
    // Times decide the verdicts of the ratio checks; here they only have to exist.
    assert_eq!(
        checks,
        [
            ("app-only rebuild time", false),
            ("app-only rebuild vs cold", checks[1].1),
            ("app-only rebuild re-ran no dependency step", true),
            ("no-change rebuild is fully cached", true),
            ("app-only rebuild vs the peer", checks[4].1),
            ("dependency-change rebuild vs the peer", checks[5].1),
            ("cold build vs the peer", checks[6].1),
            // Other sessions may rebuild the shared base meanwhile; the check only has to exist.
            ("base image unchanged during the bench", checks[7].1),
        ]
    );
    // The peer's images are gone.
    let left = docker(&["image", "ls", "-q", "localhost/xtask-bench-peer"]);
    assert!(
        left.stdout.trim().is_empty(),
        "peer images left: {}",
        left.stdout
    );
    assert_eq!(report["pass"], false);
    // The variant's tag points where it pointed before.
    assert_eq!(image_id(&format!("{image}:fx")), Some(tagged_before));
}

#[test]
fn rebuild_bench_refuses_a_file_outside_the_build_context() {
    let _turn = reclaim_turn();
    let dir = Scratch::new("bench-outside");
    let context = dir.path().join("fixture");
    copy_dir(&fixtures().join("bench"), &context);
    let outside = dir.write("elsewhere.py", "x = 1\n");
    let config = dir.write(
        "images.toml",
        &format!(
            "{}{}",
            config_head(),
            fixture_variant("fx", &context, "localhost/xtask-bench-unused")
        ),
    );
    let run = Run::of(
        xtask()
            .arg("--config")
            .arg(&config)
            .args(["bench", "rebuild", "fx", "--app-file"])
            .arg(&outside)
            .arg("--dep-file")
            .arg(context.join("deps.lock")),
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("outside the build context"),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "x = 1\n");
}

#[test]
fn update_bench_pulls_only_the_changed_layers_and_keeps_the_torch_layer() {
    let _turn = reclaim_turn();
    let Touched {
        dir: _dir,
        context: _,
        app_file,
        dep_file,
        app_before,
        dep_before,
        image,
        _images,
        _bench_images,
        config,
    } = touched("update", "bench-update", "xtask-bench-update");
    let tagged_before = tag_before(&image);
    let run = Run::of(
        xtask()
            .arg("--config")
            .arg(&config)
            .args(["bench", "update", "fx", "--format", "json"])
            .arg("--app-file")
            .arg(&app_file)
            .arg("--dep-file")
            .arg(&dep_file),
    );
    assert_eq!(
        std::fs::read(&app_file).unwrap(),
        app_before,
        "app file not restored"
    );
    assert_eq!(
        std::fs::read(&dep_file).unwrap(),
        dep_before,
        "dep file not restored"
    );
    assert_eq!(
        run.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    let report: serde_json::Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\nstderr:\n{}", run.stdout, run.stderr));

    let rows = report["rows"].as_array().unwrap();
    let layers = report["baseline_layers"].as_u64().unwrap();
    // Debian's layer, the torch layer, the venv layer, the app layer.
    assert_eq!(layers, 4, "{report}");
    let changed = |row: &serde_json::Value| -> Vec<String> {
        row["delta"]["changed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c[1].as_str().unwrap().to_string())
            .collect()
    };
    // The app change: exactly one new layer, the app's, of a few hundred bytes.
    assert_eq!(rows[0]["scenario"], "app-change");
    assert_eq!(rows[0]["delta"]["layers_changed"], 1, "{}", rows[0]);
    assert_eq!(changed(&rows[0]), ["COPY src /opt/app"], "{}", rows[0]);
    assert!(rows[0]["delta"]["pull_bytes"].as_u64().unwrap() < 10_000);
    // The dependency change: exactly one new layer, the venv's; the torch layer kept its digest.
    assert_eq!(rows[1]["scenario"], "dep-change");
    assert_eq!(rows[1]["delta"]["layers_changed"], 1, "{}", rows[1]);
    assert_eq!(
        changed(&rows[1]),
        ["COPY /opt/venv /opt/venv"],
        "{}",
        rows[1]
    );
    let checks: Vec<(&str, &str, bool)> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap(),
                c["measured"].as_str().unwrap(),
                c["pass"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(checks.len(), 3, "{checks:?}");
    assert_eq!(
        checks[2],
        ("layers of `/layers/` unchanged", "1 of 1 kept", true)
    );

    // The variant's tag points where it pointed before; the changed files are shown relative to
    // the repository; the bench's images are gone.
    assert_eq!(image_id(&format!("{image}:fx")), Some(tagged_before));
    let shown = |path: &Path| {
        path.strip_prefix(repo_root())
            .unwrap()
            .display()
            .to_string()
    };
    assert_eq!(rows[0]["change"], shown(&app_file), "{}", rows[0]);
    assert_eq!(rows[1]["change"], shown(&dep_file), "{}", rows[1]);
    for row in rows {
        let id = row["image_id"].as_str().unwrap();
        assert_ne!(id, report["baseline_id"].as_str().unwrap());
        assert_eq!(image_id(id), None, "{id} was left behind");
    }
}

#[test]
fn smoke_bench_times_every_run_and_judges_the_latency_targets() {
    let _turn = reclaim_turn();
    let image = fixture_image("smoke-app", &["--target=app"]);
    let dir = Scratch::new("bench-smoke");
    let config = dir.write(
        "images.toml",
        &format!(
            "{}[variants.app]\nimage = \"localhost/xtask-fixture-smoke-app\"\ndockerfile = \"{}\"\n\
             [variants.app.smoke]\nhealth_timeout = \"60s\"\nmemory = \"256m\"\n\
             [[variants.app.smoke.http]]\nname = \"health\"\npath = \"/health\"\n",
            config_head(),
            fixtures().join("smoke-app").join("Dockerfile").display()
        ),
    );
    let run = Run::of(xtask().arg("--config").arg(&config).args([
        "bench",
        "smoke",
        "app",
        "--image",
        &image,
        "--runs",
        "2",
        "--format",
        "json",
        "--label",
        &format!("{LABEL}={}", run_id()),
    ]));
    // 1: a target missed (a busy machine); either way the report is complete.
    assert!(run.code == 0 || run.code == 1, "{}", run.stderr);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["healthcheck_interval_ms"], 30_000, "{doc}");
    let runs = doc["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{doc}");
    for r in runs {
        assert_eq!(r["passed"], true, "{r}");
        assert_eq!(r["checks"], "3/3", "{r}");
        assert!(
            r["healthy_after_ms"].is_u64() && r["verdict_after_probe_ms"].is_u64(),
            "{r}"
        );
    }
    let checks: Vec<(&str, bool)> = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["pass"].as_bool().unwrap()))
        .collect();
    let names: Vec<&str> = checks.iter().map(|c| c.0).collect();
    assert_eq!(
        names,
        [
            "every smoke passed",
            "healthy after (median)",
            "verdict after the first healthy answer (median)",
            "verdict after the first passing probe ended (median)"
        ]
    );
    assert_eq!(doc["pass"], checks.iter().all(|c| c.1), "{doc}");
    assert_eq!(run.code == 0, doc["pass"] == true, "{}", run.stderr);
    assert!(
        labelled_containers().is_empty(),
        "the bench left containers"
    );
}

/// The layer digests or diff IDs of one image row of `bench pull`'s report.
fn pushed_layers<'a>(row: &'a serde_json::Value, field: &str) -> Vec<&'a str> {
    row["pushed"]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l[field].as_str().unwrap())
        .collect()
}

#[test]
fn pull_bench_pushes_both_layouts_with_both_compressions_and_pulls_them_on_fresh_engines() {
    let _turn = reclaim_turn();
    let image = fixture_image("pull", &[]);
    let dir = Scratch::new("bench-pull");
    let config = pull_config(&dir);
    let child = pull_bench(&config, &image, &[]).spawn().unwrap();
    let pid = bench_child(child.id());
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{}",
        tail(&stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();

    let local: Vec<String> = serde_json::from_str(
        docker(&[
            "image",
            "inspect",
            "--format",
            "{{json .RootFS.Layers}}",
            &image,
        ])
        .stdout
        .trim(),
    )
    .unwrap();
    assert_eq!(local.len(), 5, "base, three venv layers, app");
    assert_eq!(report["layers"], 5);
    assert_eq!(report["venv_layers"], "2–4");
    let rows = report["rows"].as_array().unwrap();
    let images: Vec<&str> = rows.iter().map(|r| r["image"].as_str().unwrap()).collect();
    assert_eq!(
        images,
        [
            "one venv layer, gzip",
            "one venv layer, zstd",
            "layers as built, gzip",
            "layers as built, zstd"
        ]
    );
    for row in rows {
        let suffix = format!("+{}", row["compression"].as_str().unwrap());
        assert!(
            pushed_layers(row, "media_type")
                .iter()
                .all(|m| m.ends_with(&suffix)),
            "{row}"
        );
        assert_eq!(row["pulls"].as_array().unwrap().len(), 1);
        for pull in row["pulls"].as_array().unwrap() {
            assert_eq!(
                pull["stored"],
                row["pushed"]["layers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|l| l["diff_id"].clone())
                    .collect::<serde_json::Value>()
            );
            assert_eq!(pull["already_there"], 0);
        }
    }
    // The layers as built: the same tars (diff IDs) as the local image, compressed both ways.
    for row in &rows[2..] {
        assert_eq!(pushed_layers(row, "diff_id"), local, "{row}");
    }
    assert_ne!(
        pushed_layers(&rows[2], "digest"),
        pushed_layers(&rows[3], "digest")
    );
    // One venv layer: base and app as they are, layers 2–4 as one new tar — the same tar for
    // both compressions.
    for row in &rows[..2] {
        let ids = pushed_layers(row, "diff_id");
        assert_eq!(ids.len(), 3, "{row}");
        assert_eq!((ids[0], ids[2]), (local[0].as_str(), local[4].as_str()));
        assert!(!local.iter().any(|l| l == ids[1]));
        assert_eq!(
            row["pushed"]["layers"][1]["from"],
            serde_json::json!([2, 3, 4])
        );
    }
    assert_eq!(
        pushed_layers(&rows[0], "diff_id"),
        pushed_layers(&rows[1], "diff_id")
    );
    assert!(
        rows[2]["as_pushed"].as_bool().unwrap(),
        "gzip unless push_compression says"
    );
    let checks: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        checks,
        [
            "every pull stored the pushed layers",
            "pull as pushed (layers as built, gzip) vs one venv layer, gzip"
        ]
    );

    assert_eq!(pull_left_by(pid), Vec::<String>::new(), "nothing is left");
}

/// The images.toml of variant `fx`, the `pull` fixture (measured with `--image`).
fn pull_config(dir: &Scratch) -> std::path::PathBuf {
    dir.write(
        "images.toml",
        &format!(
            "{}{}target = \"app\"\n",
            config_head(),
            fixture_variant("fx", &fixtures().join("pull"), "localhost/xtask-unused")
        ),
    )
}

/// `bench pull fx --image IMAGE --runs 1` and `extra`, JSON on stdout; times are never judged
/// (the ratio target is set out of reach).
fn pull_bench(config: &Path, image: &str, extra: &[&str]) -> std::process::Command {
    let mut cmd = xtask();
    cmd.arg("--config")
        .arg(config)
        .args(["bench", "pull", "fx", "--image", image, "--runs", "1"])
        .args(["--max-vs-reference", "1000", "--format", "json"])
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    cmd
}

/// The pid of the bench binary, the one child of the everyday binary `parent`: it names what a
/// run of `bench pull` makes.
fn bench_child(parent: u32) -> u32 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let children = std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children"))
            .unwrap_or_default();
        if let Some(pid) = children.split_whitespace().next() {
            return pid.parse().unwrap();
        }
        assert!(std::time::Instant::now() < deadline, "no bench started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// What the run of `bench pull` with this pid left: its network namespace, links, engines'
/// and scratch directories, processes and its record.
fn pull_left_by(pid: u32) -> Vec<String> {
    let mut left = Vec::new();
    let netns = Run::of(std::process::Command::new("ip").args(["netns", "list"]));
    let name = format!("xtask-pull-{pid}");
    left.extend(
        netns
            .stdout
            .lines()
            .filter(|l| l.split_whitespace().next() == Some(name.as_str()))
            .map(|l| format!("netns {l}")),
    );
    let links = Run::of(std::process::Command::new("ip").args(["-o", "link"]));
    left.extend(
        links
            .stdout
            .lines()
            .filter(|l| l.contains(&format!("xtp{pid:x}")) || l.contains(&format!("xtpl{pid:x}")))
            .map(|l| format!("link {l}")),
    );
    let named = |dir: &Path, prefix: &str| -> Vec<String> {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(prefix))
            .map(|n| format!("dir {n}"))
            .collect()
    };
    left.extend(named(&std::env::temp_dir(), &format!("{name}-")));
    left.extend(named(
        &repo_root().join("target").join("xtask").join("tmp"),
        &format!("bench-pull-{pid}-"),
    ));
    left.extend(named(
        &std::env::temp_dir().join("xtask-bench-pull"),
        &format!("{pid}.json"),
    ));
    left.extend(
        processes_with(&[&format!("{name}-")])
            .into_iter()
            .map(|p| format!("process {p}")),
    );
    left
}

#[test]
fn pull_bench_through_a_shaped_link_is_held_to_it_and_repairs_what_a_killed_run_left() {
    let _turn = reclaim_alone();
    let image = fixture_image("pull", &[]);
    let dir = Scratch::new("bench-pull-shaped");
    let config = pull_config(&dir);
    // The rate is tc's alone (no per-connection cap): 40 Mbit/s, a round trip of 100 ms.
    let network = ["--network", "100ms,40mbit"];

    // A run killed (SIGKILL, no cleanup at all) while a fresh engine pulls through the link.
    let mut child = pull_bench(&config, &image, &network).spawn().unwrap();
    let killed = bench_child(child.id());
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    for line in std::io::BufRead::lines(stderr).map_while(Result::ok) {
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("docker pull on a fresh engine") {
            break;
        }
    }
    assert!(seen.contains("docker pull on a fresh engine"), "{seen}");
    Run::of(std::process::Command::new("kill").args(["-KILL", &killed.to_string()])).assert_ok();
    child.wait().unwrap();
    let left = pull_left_by(killed);
    for kind in ["netns", "link", "process", "dir"] {
        assert!(
            left.iter().any(|l| l.starts_with(kind)),
            "no {kind} left: {left:?}"
        );
    }

    // The next run removes it and says so, then pulls through a link of its own.
    let child = pull_bench(&config, &image, &network).spawn().unwrap();
    let pid = bench_child(child.id());
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{}", tail(&stderr));
    let repaired = stderr
        .lines()
        .find(|l| l.contains(&format!("a killed `bench pull` (pid {killed}) left")))
        .unwrap_or_else(|| panic!("no repair said:\n{}", tail(&stderr)));
    assert!(
        repaired.contains("stopped")
            && repaired.contains("dockerd")
            && repaired.contains(&format!("deleted network namespace xtask-pull-{killed}")),
        "{repaired}"
    );
    assert_eq!(pull_left_by(killed), Vec::<String>::new(), "repaired");

    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        report["network"]["rate_bits"], 40_000_000,
        "{}",
        report["network"]
    );
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    for row in rows {
        let bytes = row["compressed"].as_f64().unwrap();
        let pull = &row["pulls"][0];
        let secs = pull["secs"].as_f64().unwrap();
        // The manifest first (a handshake and a request: two round trips), then every layer's
        // bytes through 40 Mbit/s.
        let floor = 0.2 + bytes * 8.0 / 40e6;
        assert!(secs >= floor, "{}: {secs} s < {floor} s", row["image"]);
        assert!(pull["connections"].as_u64().unwrap() >= 1, "{pull}");
        assert_eq!(pull["already_there"], 0);
    }
    let checks: Vec<(&str, bool)> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["pass"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        checks[1],
        (
            "every pull held to the link (100 ms round trip, 40 Mbit/s)",
            true
        ),
        "{checks:?}"
    );
    assert_eq!(pull_left_by(pid), Vec::<String>::new(), "nothing is left");
}

#[test]
fn pull_bench_refuses_a_bad_network_setting_before_anything_starts() {
    let _turn = reclaim_turn();
    for (setting, says) in [
        ("40ms", "give two or three values"),
        ("40ms,200mbps", "not a rate"),
        ("40ms,25mbit,200mbit", "above the link's rate"),
        ("-5ms,200mbit", "not a latency"),
    ] {
        // No variant `fx` in the repository's images.toml: the setting is refused first.
        let run = Run::of(xtask().args(["bench", "pull", "fx", "--network", setting]));
        assert_eq!(run.code, 2, "{setting}: {}", run.stderr);
        let line = run.error_line();
        assert!(
            line.contains("--network") && line.contains(says),
            "{setting}: {line}"
        );
        assert_eq!(
            run.stderr
                .lines()
                .filter(|l| l.starts_with("error:"))
                .count(),
            1
        );
        assert!(
            !run.stderr.contains("==>") && run.stdout.is_empty(),
            "{}",
            run.stderr
        );
    }
}

#[test]
fn pull_bench_of_an_image_that_was_not_built_is_one_error_before_anything_starts() {
    let _turn = reclaim_turn();
    ensure_engine();
    let dir = Scratch::new("bench-pull-missing");
    let config = dir.write(
        "images.toml",
        &format!(
            "{}{}",
            config_head(),
            fixture_variant(
                "fx",
                &fixtures().join("pull"),
                &format!("localhost/xtask-never-built-{}", run_id())
            )
        ),
    );
    let run = Run::of(
        xtask()
            .arg("--config")
            .arg(&config)
            .args(["bench", "pull", "fx"]),
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    let line = run.error_line();
    assert!(
        line.contains("is not in the local image store") && line.contains("cargo xtask build fx"),
        "{line}"
    );
    assert!(
        !run.stderr.contains("==>"),
        "nothing started: {}",
        run.stderr
    );
}

#[test]
fn a_negative_target_is_refused_before_anything_starts() {
    let _turn = reclaim_turn();
    let cases: [(&[&str], &str); 6] = [
        (
            &["bench", "rebuild", "fx", "--max-app-secs=-1"],
            "--max-app-secs",
        ),
        (
            &["bench", "smoke", "fx", "--max-verdict-secs=-2"],
            "--max-verdict-secs",
        ),
        (
            &["bench", "update", "fx", "--max-app-pull=-1kB"],
            "--max-app-pull",
        ),
        // As two words: the flag's value, not clap's "unexpected argument '-1'".
        (
            &["bench", "rebuild", "fx", "--max-app-secs", "-1"],
            "--max-app-secs",
        ),
        (
            &["bench", "smoke", "fx", "--max-verdict-secs", "-2"],
            "--max-verdict-secs",
        ),
        (&["bench", "pull", "fx", "--runs", "-1"], "--runs"),
    ];
    for (args, flag) in cases {
        // No such variant `fx` in the repository's images.toml: the flag is refused first.
        let run = Run::of(xtask().args(args));
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(
            run.error_line().contains(flag) && run.stdout.is_empty(),
            "{args:?}: {}",
            run.stderr
        );
    }
}

#[test]
fn update_bench_refuses_a_dependency_file_the_build_cannot_see_before_any_build() {
    let _turn = reclaim_turn();
    let Touched {
        dir,
        context,
        app_file,
        image,
        _images,
        _bench_images,
        config,
        ..
    } = touched("update", "bench-update-ignored", "xtask-bench-ignored");
    std::fs::write(context.join(".dockerignore"), "notes.txt\n").unwrap();
    let ignored = context.join("notes.txt");
    std::fs::write(&ignored, "not sent\n").unwrap();
    let outside = dir.write("elsewhere.lock", "x\n");
    for (dep_file, why) in [
        (&ignored, "left out of the build context by"),
        (&outside, "is outside the build context"),
    ] {
        let started = std::time::Instant::now();
        let run = Run::of(
            xtask()
                .arg("--config")
                .arg(&config)
                .args(["bench", "update", "fx", "--app-file"])
                .arg(&app_file)
                .arg("--dep-file")
                .arg(dep_file),
        );
        assert_eq!(run.code, 2, "{}", run.stderr);
        let line = run.error_line();
        assert!(
            line.contains(why)
                && line.ends_with(
                    "changing it cannot affect the build; pick a file the build context holds"
                ),
            "{}",
            run.stderr
        );
        assert!(
            !run.stderr.contains("==> bench update fx:"),
            "{}",
            run.stderr
        );
        assert!(started.elapsed().as_secs() < 60, "{:?}", started.elapsed());
    }
    assert_eq!(image_id(&format!("{image}-bench:fx")), None);
}

/// The processes whose command line (its words joined by spaces) contains each of `texts`
/// (this test's own excepted).
fn processes_with(texts: &[&str]) -> Vec<u32> {
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            let line = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let line = String::from_utf8_lossy(&line).replace('\0', " ");
            texts.iter().all(|t| line.contains(t))
        })
        .collect()
}

#[test]
fn a_bench_killed_mid_change_leaves_the_files_and_the_tags_as_they_were() {
    let _turn = reclaim_alone();
    let Touched {
        dir: _dir,
        app_file,
        dep_file,
        app_before,
        dep_before,
        image,
        _images,
        _bench_images,
        config,
        ..
    } = touched("update", "bench-update-killed", "xtask-bench-killed");
    let tagged_before = tag_before(&image);
    // Killed while the app file is changed, then (another run) while the lock is; each next run
    // removes what the killed one left.
    let mut killed: Option<String> = None;
    for stage in ["one app file changed", "one locked dependency changed"] {
        let mut cmd = update_cmd(&config, &app_file, dep_file.as_os_str());
        let (mut child, seen, _rest) =
            started_until(cmd.stdout(std::process::Stdio::null()), stage);
        if let Some(pid) = &killed {
            assert_reclaimed(pid, &seen);
        }
        // The bench binary itself, the one child of the everyday binary: SIGKILL, no cleanup.
        let bench = bench_of(&child);
        Run::of(std::process::Command::new("kill").args(["-KILL", &bench])).assert_ok();
        child.wait().unwrap();
        assert_eq!(std::fs::read(&app_file).unwrap(), app_before, "{stage}");
        assert_eq!(std::fs::read(&dep_file).unwrap(), dep_before, "{stage}");
        assert_eq!(
            image_id(&format!("{image}:fx")),
            Some(tagged_before.clone()),
            "{stage}"
        );
        // The build it left running ends on its own; its scratch copy is the killed run's.
        let scratch = format!("bench-context-{bench}-");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
        while !processes_with(&[&scratch]).is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        assert!(
            !left_by(&bench).0.is_empty() && !left_by(&bench).1.is_empty(),
            "{stage}: the killed run left nothing to reclaim?"
        );
        killed = Some(bench);
    }
    // Any bench reclaims first, even one that then refuses its input.
    let run = Run::of(&mut update_cmd(
        &config,
        &app_file,
        "/etc/hostname".as_ref(),
    ));
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_reclaimed(killed.as_deref().unwrap(), &run.stderr);
}

/// `bench update fx` of the fixture at `config`, with `dep_file` as its dependency change.
fn update_cmd(config: &Path, app_file: &Path, dep_file: &std::ffi::OsStr) -> std::process::Command {
    let mut cmd = xtask();
    cmd.arg("--config")
        .arg(config)
        .args(["bench", "update", "fx", "--app-file"])
        .arg(app_file)
        .arg("--dep-file")
        .arg(dep_file);
    cmd
}

/// The pid of the bench binary, the one child of the everyday binary `child`.
fn bench_of(child: &std::process::Child) -> String {
    let id = child.id();
    let children = std::fs::read_to_string(format!("/proc/{id}/task/{id}/children")).unwrap();
    let bench: Vec<&str> = children.split_whitespace().collect();
    assert_eq!(bench.len(), 1, "{bench:?}");
    bench[0].to_string()
}

/// `cmd` started, its stderr read until the line `bench update fx: {stage}`: the child, what it
/// said so far, and the rest of its lines as they come.
fn started_until(
    cmd: &mut std::process::Command,
    stage: &str,
) -> (
    std::process::Child,
    String,
    std::sync::mpsc::Receiver<String>,
) {
    let mut child = cmd.stderr(std::process::Stdio::piped()).spawn().unwrap();
    // Read to the end on a thread: a closed pipe would stop the build before the signal.
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(stderr).map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = String::new();
    for line in rx.iter() {
        seen.push_str(&line);
        seen.push('\n');
        if line.contains(&format!("bench update fx: {stage}")) {
            break;
        }
    }
    assert!(
        seen.contains(stage),
        "the bench never got to `{stage}`:\n{seen}"
    );
    (child, seen, rx)
}

/// Ctrl-C at each step of `bench update` (the baseline build, the app change, the lock change):
/// exit 130, no verdict, the files and the variant's tag as they were, and neither the bench's
/// tags and images nor its temporary dirs left.
#[test]
fn an_interrupted_bench_update_leaves_nothing_and_prints_no_verdict() {
    let _turn = reclaim_turn();
    let Touched {
        dir: _dir,
        app_file,
        dep_file,
        app_before,
        dep_before,
        image,
        _images,
        _bench_images,
        config,
        ..
    } = touched("update", "bench-update-sigint", "xtask-bench-sigint");
    let tagged_before = tag_before(&image);
    for stage in [
        "the files as they are",
        "one app file changed",
        "one locked dependency changed",
    ] {
        let mut cmd = update_cmd(&config, &app_file, dep_file.as_os_str());
        let (child, seen, rest) = started_until(cmd.stdout(std::process::Stdio::piped()), stage);
        let bench = bench_of(&child);
        let id = child.id().to_string();
        Run::of(std::process::Command::new("kill").args(["-INT", &id])).assert_ok();
        let out = child.wait_with_output().unwrap();
        let stderr = format!("{seen}{}", rest.try_iter().collect::<Vec<_>>().join("\n"));
        assert_eq!(out.status.code(), Some(130), "{stage}: {stderr}");
        assert!(out.stdout.is_empty(), "{stage}: a verdict was printed");
        assert_eq!(std::fs::read(&app_file).unwrap(), app_before, "{stage}");
        assert_eq!(std::fs::read(&dep_file).unwrap(), dep_before, "{stage}");
        assert_eq!(
            image_id(&format!("{image}:fx")),
            Some(tagged_before.clone()),
            "{stage}"
        );
        assert_eq!(image_id(&format!("{image}-bench:fx")), None, "{stage}");
        assert_eq!(left_by(&bench), (vec![], vec![]), "{stage}: {stderr}");
    }
}

/// The temporary dirs under target/xtask/tmp and the images a bench of `pid` left.
fn left_by(pid: &str) -> (Vec<String>, Vec<String>) {
    let dirs = std::fs::read_dir(repo_root().join("target/xtask/tmp"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(&format!("-{pid}-")))
        .collect();
    let label = format!("label=voxserve.xtask.owner.pid={pid}");
    let run = docker(&["image", "ls", "--quiet", "--filter", &label]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    (
        dirs,
        run.stdout.split_whitespace().map(str::to_owned).collect(),
    )
}

/// What the bench of `pid` left is gone, and `stderr` said so in one line.
fn assert_reclaimed(pid: &str, stderr: &str) {
    assert_eq!(left_by(pid), (vec![], vec![]), "{stderr}");
    let said: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("==> removed what a killed run left"))
        .collect();
    assert_eq!(said.len(), 1, "{stderr}");
    assert!(
        said[0].contains(&format!("bench-context-{pid}-")) && said[0].contains("bench image"),
        "{stderr}"
    );
}
