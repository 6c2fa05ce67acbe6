//! `cargo xtask bench rebuild` against the real engine, on a small two-stage fixture copied to a
//! scratch directory: the touched files live there, so the test never changes the real app.

mod common;

use common::*;
use std::path::Path;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn rebuild_bench_reports_four_builds_judges_them_and_restores_the_files() {
    ensure_base();
    let dir = Scratch::new("bench");
    let context = dir.path().join("fixture");
    copy_dir(&fixtures().join("bench"), &context);
    let app_file = context.join("src").join("app.py");
    let dep_file = context.join("deps.lock");
    let app_before = std::fs::read(&app_file).unwrap();
    let dep_before = std::fs::read(&dep_file).unwrap();

    let image = format!("localhost/xtask-bench-{}", run_id());
    let _images = RemoveTags(image.clone());
    let config = dir.write(
        "images.toml",
        &format!(
            "{}{}target = \"app\"\n",
            config_head(),
            fixture_variant("fx", &context, &image)
        ),
    );
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
            ])
            .arg("--app-file")
            .arg(&app_file)
            .arg("--dep-file")
            .arg(&dep_file)
            .arg("--cache-dir")
            .arg(dir.path().join("cache")),
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

    let checks: Vec<(&str, bool)> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["pass"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        checks,
        [
            ("app-only rebuild time", false),
            ("app-only rebuild vs cold", checks[1].1),
            ("app-only rebuild re-ran only the last stage", true),
            ("no-change rebuild is fully cached", true),
            // Other sessions may rebuild the shared base meanwhile; the check only has to exist.
            ("base image unchanged during the bench", checks[4].1),
        ]
    );
    assert_eq!(report["pass"], false);
}

#[test]
fn rebuild_bench_refuses_a_file_outside_the_build_context() {
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
