//! Every chart renders: Mermaid's own CLI (`mmdc`, with headless Chromium) turns each into an
//! SVG. The charts are every kind a command draws, made by the command's own chart function —
//! `sizes` (each size as a share of its budget), `bench rebuild` (ours vs the peer, and
//! without a peer) and `bench pull` (pull time by layout, with and without the download moment) —
//! every ```` ```mermaid ```` block of README.md and docs/*.md (the generated blocks paste what
//! those commands printed), and `report::xychart` for the edge cases a report can hit (one
//! category, all zeros, quotes and odd characters in labels). Skipped, saying so, only where `mmdc` is not
//! installed: .ci/run installs it (.ci/install-mermaid) and sets `$MERMAID_CLI`, so CI renders.

#![allow(clippy::disallowed_methods, clippy::disallowed_macros)] // tests run programs and print as a user would

use std::path::{Path, PathBuf};
use std::process::Command;

use xtask::report::{xychart, Series};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Mermaid's CLI: `$MERMAID_CLI`, else `mmdc` on PATH.
fn mmdc() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("MERMAID_CLI") {
        return Some(path.into());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("mmdc"))
        .find(|p| p.is_file())
}

/// A directory of its own for one test, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("xtask-charts-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The SVG of each chart (the text inside a ```` ```mermaid ```` fence), rendered in one
/// browser session; an error quotes mmdc's output.
fn render(tool: &Path, name: &str, charts: &[String]) -> Result<Vec<String>, String> {
    let dir = Scratch::new(name);
    let markdown: String = charts
        .iter()
        .map(|c| format!("```mermaid\n{}\n```\n\n", c.trim_end()))
        .collect();
    std::fs::write(dir.0.join("charts.md"), markdown).unwrap();
    let out = Command::new(tool)
        .current_dir(&dir.0)
        .args(["--quiet", "--input", "charts.md", "--output", "out.md"])
        .output()
        .unwrap_or_else(|e| panic!("starting {}: {e}", tool.display()));
    if !out.status.success() {
        return Err(format!(
            "{} exited with {}:\n{}{}",
            tool.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok((1..=charts.len())
        .map(|i| std::fs::read_to_string(dir.0.join(format!("out-{i}.svg"))).unwrap_or_default())
        .collect())
}

/// The text of every ```` ```mermaid ```` block of a Markdown document, with its line.
fn mermaid_blocks(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut open: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        match open.as_mut() {
            Some((_, body)) if line.trim() != "```" => body.push_str(&format!("{line}\n")),
            Some(_) => out.extend(open.take()),
            None if line.trim() == "```mermaid" => open = Some((i + 1, String::new())),
            None => {}
        }
    }
    out
}

/// A chart's title, as its `title "…"` line writes it.
fn title(chart: &str) -> &str {
    chart
        .lines()
        .find_map(|l| l.trim().strip_prefix("title "))
        .map_or("", |t| t.trim_matches('"'))
}

/// The inside of a chart `report::xychart` made (its fence dropped).
fn inside(fenced: &str) -> String {
    fenced
        .trim_end()
        .strip_prefix("```mermaid\n")
        .and_then(|c| c.strip_suffix("```"))
        .expect("report::xychart makes a ```mermaid fence")
        .to_string()
}

/// One chart of every kind a command draws, with its command's name, from its own chart function.
fn command_charts() -> Vec<(&'static str, String)> {
    let mb = |m: f64| (m * 1e6) as u64;
    let sizes = xtask::sizes::budget_chart(&[
        ("cuda, compressed".to_string(), mb(2428.6), mb(2500.0)),
        ("cuda, unpacked".to_string(), mb(4228.5), mb(4300.0)),
        (
            "cpu-minimal (linux/arm64), unpacked".to_string(),
            mb(230.2),
            mb(225.0),
        ),
    ]);
    let builds = [
        ("cold (--no-cache)", 15.3, Some(18.2)),
        ("warm, no change", 0.3, Some(0.4)),
        ("warm, one app file changed", 0.4, Some(1.1)),
        ("warm, dependency file changed", 7.7, Some(9.2)),
    ];
    let no_peer: Vec<_> = builds.iter().map(|(l, s, _)| (*l, *s, None)).collect();
    let pulls = [
        ("one venv layer, gzip", 54.2, Some(23.2)),
        ("layers as built, zstd", 38.2, Some(18.4)),
    ];
    let gap = [
        ("one venv layer, gzip", 54.2, Some(23.2)),
        ("layers as built, zstd", 38.2, None),
    ];
    vec![
        ("sizes", sizes),
        (
            "bench rebuild",
            xtask_bench::charts::rebuild("cpu-minimal", &builds),
        ),
        (
            "bench rebuild --no-peer",
            xtask_bench::charts::rebuild("cpu-minimal", &no_peer),
        ),
        ("bench pull", xtask_bench::charts::pull("cuda", &pulls)),
        (
            "bench pull (a download moment missing)",
            xtask_bench::charts::pull("cuda", &gap),
        ),
    ]
}

#[test]
fn each_command_draws_its_chart() {
    let charts = command_charts();
    let titles: Vec<&str> = charts.iter().map(|(_, c)| title(c)).collect();
    assert_eq!(
        titles,
        [
            "Size against its budget (%)",
            "bench rebuild cpu-minimal: build time, ours vs the peer (s)",
            "bench rebuild cpu-minimal: build time (s)",
            "bench pull cuda: pull time by layout and compression (s)",
            "bench pull cuda: pull time by layout and compression (s)",
        ]
    );
    let sizes = &charts[0].1;
    assert!(
        sizes.contains("bar \"size\" [97.144, 98.337, 102.311]")
            && sizes.contains("line \"budget\" [100, 100, 100]"),
        "each size as a share of its budget: {sizes}"
    );
    let (with_peer, without) = (&charts[1].1, &charts[2].1);
    assert!(
        with_peer.contains("line \"the peer\" [18.2, 0.4, 1.1, 9.2]"),
        "{with_peer}"
    );
    assert!(!without.contains("line"), "{without}");
    assert!(
        charts[3].1.contains("line \"downloaded at\" [23.2, 18.4]"),
        "{}",
        charts[3].1
    );
    assert!(
        !charts[4].1.contains("line"),
        "a gap is not drawn as 0: {}",
        charts[4].1
    );
}

fn xychart_cases() -> Vec<String> {
    let labels = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    [
        xychart(
            "Image size against its budget (MB)",
            &labels(&[
                "cpu-minimal",
                "cpu-minimal-distroless",
                "cuda (linux/amd64)",
            ]),
            "MB",
            &[
                Series::bar("unpacked", vec![197.7, 145.4, 4228.7]),
                Series::line("budget", vec![200.0, 165.0, 4300.0]),
            ],
        ),
        xychart(
            "Rebuild time: ours vs the \"peer\" (s)",
            &labels(&[
                "cold (--no-cache)",
                "warm, no change",
                "warm, one app file changed",
            ]),
            "seconds",
            &[
                Series::bar("ours", vec![15.3, 0.3, 0.4]),
                Series::bar("peer", vec![18.2, 0.4, 1.1]),
            ],
        ),
        xychart(
            "Pull time by layout: 100 % & <more> [s]",
            &labels(&["one venv layer, gzip"]),
            "s",
            &[Series::bar("pull", vec![54.2])],
        ),
        xychart(
            "Nothing measured",
            &labels(&["a", "b"]),
            "s",
            &[Series::line("zero", vec![0.0, f64::NAN])],
        ),
    ]
    .iter()
    .map(|c| inside(c))
    .collect()
}

#[test]
fn every_chart_kind_of_the_commands_and_of_the_docs_renders_to_svg() {
    let Some(tool) = mmdc() else {
        eprintln!(
            "skipped: no chart rendered: Mermaid's CLI is not installed (bash .ci/install-mermaid \
             DIR, then DIR/bin on PATH, or $MERMAID_CLI)"
        );
        return;
    };
    let mut charts: Vec<(String, String)> = command_charts()
        .into_iter()
        .map(|(command, c)| (format!("the chart of `cargo xtask {command}`"), inside(&c)))
        .collect();
    charts.extend(
        xychart_cases()
            .into_iter()
            .enumerate()
            .map(|(i, c)| (format!("report::xychart case {}", i + 1), c)),
    );
    for file in xtask::docs::documents(root().as_path().try_into().unwrap()).unwrap() {
        let text = std::fs::read_to_string(root().join(&file)).unwrap();
        charts.extend(
            mermaid_blocks(&text)
                .into_iter()
                .map(|(line, chart)| (format!("{file}:{line}"), chart)),
        );
    }
    let texts: Vec<String> = charts.iter().map(|(_, c)| c.clone()).collect();
    let svgs = match render(&tool, "all", &texts) {
        Ok(svgs) => svgs,
        // Name the chart that broke it.
        Err(all) => {
            for (place, chart) in &charts {
                if let Err(e) = render(&tool, "one", std::slice::from_ref(chart)) {
                    panic!("{place}: the chart does not render:\n{chart}\n{e}");
                }
            }
            panic!("the charts do not render together:\n{all}");
        }
    };
    for ((place, chart), svg) in charts.iter().zip(&svgs) {
        assert!(
            svg.starts_with("<svg") && svg.contains("aria-roledescription=\"xychart\""),
            "{place}: no xychart SVG for\n{chart}\n{}",
            &svg[..svg.len().min(300)]
        );
        let title = title(chart);
        assert!(
            svg.contains(&format!(">{title}</text>")),
            "{place}: the title `{title}` is not in the SVG as written"
        );
        eprintln!("rendered {place}: {} bytes of SVG", svg.len());
    }
    let first = &svgs[0];
    eprintln!("{}", &first[..first.len().min(400)]);
}

#[test]
fn a_broken_chart_does_not_render() {
    let Some(tool) = mmdc() else {
        eprintln!("skipped: Mermaid's CLI is not installed (bash .ci/install-mermaid DIR)");
        return;
    };
    let err = render(&tool, "broken", &["xychart-beta\n  bar [1, oops]\n".into()]).unwrap_err();
    assert!(err.contains("Parse error"), "{err}");
}

#[test]
fn mermaid_blocks_are_found_with_their_line() {
    let text = "a\n```mermaid\nxychart-beta\n  bar [1]\n```\n```sh\nls\n```\n";
    assert_eq!(
        mermaid_blocks(text),
        [(2, "xychart-beta\n  bar [1]\n".to_string())]
    );
}
