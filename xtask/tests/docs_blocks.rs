//! The figures of the docs cannot go stale silently: every generated block of README.md and
//! docs/*.md (`<!-- cargo xtask ARGS -->` … `<!-- end -->`, src/docs.rs) starts with a stamp line
//! that names its command and a date, and holds the tables its command's Markdown report has
//! today — their columns, and the rows the command always prints — as the command's own
//! renderers make them (`xtask::cli::report_shape`). A renamed column, a dropped row, a chart
//! the command now draws or a command that no longer parses fails here, naming file and line;
//! `cargo xtask docs` regenerates the blocks. Pure: no engine, nothing run.

#![allow(clippy::disallowed_macros)] // the blocks still to regenerate are listed as a user reads them

use std::path::{Path, PathBuf};

use xtask::docs::{self, Block};
use xtask::report::Shape;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Every block of every document, with its place (`docs/SIZES.md:12`).
fn all_blocks() -> Vec<(String, Block)> {
    let root = root();
    let mut out = Vec::new();
    for file in docs::documents(root.as_path().try_into().unwrap()).unwrap() {
        let text = std::fs::read_to_string(root.join(&file)).unwrap();
        for block in docs::blocks(&text).unwrap_or_else(|e| panic!("{file}: {e:#}")) {
            out.push((format!("{file}:{}", block.line), block));
        }
    }
    out
}

/// A Markdown table: its header cells and the first cell of each row.
#[derive(Debug)]
struct Table {
    columns: Vec<String>,
    first_cells: Vec<String>,
}

fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|');
    let inner = inner.strip_suffix('|').unwrap_or(inner);
    let mut out = vec![String::new()];
    let mut escaped = false;
    for c in inner.chars() {
        match c {
            '|' if !escaped => out.push(String::new()),
            '\\' if !escaped => escaped = true,
            _ => {
                if escaped && c != '|' {
                    out.last_mut().unwrap().push('\\');
                }
                escaped = false;
                out.last_mut().unwrap().push(c);
            }
        }
    }
    out.iter().map(|c| c.trim().to_string()).collect()
}

/// The tables of a block's body, outside code fences.
fn tables(body: &str) -> Vec<Table> {
    let mut out: Vec<Table> = Vec::new();
    let mut in_table = false;
    let mut fenced = false;
    for line in body.lines() {
        let line = line.trim();
        if line.starts_with("```") {
            fenced = !fenced;
        }
        if fenced || !line.starts_with('|') {
            in_table = false;
            continue;
        }
        if !in_table {
            out.push(Table {
                columns: cells(line),
                first_cells: Vec::new(),
            });
            in_table = true;
        } else if !line.replace(['|', '-', ':', ' '], "").is_empty() {
            let first = cells(line).into_iter().next().unwrap_or_default();
            out.last_mut().unwrap().first_cells.push(first);
        }
    }
    out
}

/// What is wrong with a block against the shape of its command's report today.
fn problems(block: &Block, shape: &Shape) -> Vec<String> {
    let mut out = Vec::new();
    if block.date().is_none() {
        out.push(format!(
            "no stamp line naming `{}` and a date (YYYY-MM-DD) as its first line",
            block.command()
        ));
    }
    let found = tables(&block.body);
    for t in &found {
        if !shape.tables.iter().any(|s| s.columns == t.columns) {
            let today: Vec<String> = shape.tables.iter().map(|s| s.columns.join(" | ")).collect();
            out.push(format!(
                "a table with the columns `{}`, which the command no longer prints (today: `{}`)",
                t.columns.join(" | "),
                today.join("`, `")
            ));
        }
    }
    for s in &shape.tables {
        let same: Vec<&Table> = found.iter().filter(|t| t.columns == s.columns).collect();
        if same.is_empty() {
            out.push(format!(
                "no table with the columns `{}`",
                s.columns.join(" | ")
            ));
        }
        for row in &s.rows {
            let there = same
                .iter()
                .any(|t| t.first_cells.iter().any(|c| c.starts_with(row.as_str())));
            if !same.is_empty() && !there {
                out.push(format!(
                    "no row `{row}` in the table `{}`",
                    s.columns.join(" | ")
                ));
            }
        }
    }
    if shape.chart && !block.body.contains("```mermaid") {
        out.push("no chart, which the command draws today".into());
    }
    out
}

fn shape(block: &Block) -> Result<Shape, String> {
    xtask::cli::report_shape(root().as_path().try_into().unwrap(), &block.argv)
        .map_err(|e| format!("{e:#}"))
}

#[test]
fn every_generated_block_is_what_its_command_prints_today() {
    let blocks = all_blocks();
    let mut wrong = Vec::new();
    let mut generated = 0;
    for (place, block) in blocks.iter().filter(|(_, b)| !b.pending) {
        generated += 1;
        match shape(block) {
            Ok(shape) => wrong.extend(
                problems(block, &shape)
                    .into_iter()
                    .map(|p| format!("{place}: `{}`: {p}", block.command())),
            ),
            Err(e) => wrong.push(format!("{place}: {e}")),
        }
    }
    assert!(
        wrong.is_empty(),
        "generated blocks that are not what their command prints today (run `cargo xtask docs \
         --only TEXT` to regenerate them):\n{}",
        wrong.join("\n")
    );
    assert!(
        generated > 0,
        "no generated block in README.md or docs/*.md"
    );
}

#[test]
fn every_block_to_regenerate_names_its_date_and_a_command_that_parses() {
    let mut wrong = Vec::new();
    for (place, block) in all_blocks().iter().filter(|(_, b)| b.pending) {
        eprintln!("to regenerate: {place}: {}", block.command());
        if block.date().is_none() {
            wrong.push(format!(
                "{place}: no stamp line with its command and a date"
            ));
        }
        if let Err(e) = shape(block) {
            wrong.push(format!("{place}: {e}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// A block made from a shape, as `cargo xtask docs` would paste it.
fn block_of(argv: &[&str], shape: &Shape, stamp: &str) -> Block {
    let mut text = format!("<!-- cargo xtask {} -->\n{stamp}\n\n", argv.join(" "));
    for t in &shape.tables {
        text.push_str(&format!("| {} |\n", t.columns.join(" | ")));
        text.push_str(&format!("|{}\n", " --- |".repeat(t.columns.len())));
        for r in &t.rows {
            text.push_str(&format!("| {r} |{}\n", " x |".repeat(t.columns.len() - 1)));
        }
        text.push('\n');
    }
    if shape.chart {
        text.push_str("```mermaid\nxychart-beta\n    bar [1]\n```\n");
    }
    text.push_str("<!-- end -->\n");
    docs::blocks(&text).unwrap().remove(0)
}

#[test]
fn a_renamed_column_a_dropped_row_a_missing_date_or_chart_are_found() {
    let argv = ["bench", "rebuild", "cpu-minimal", "--runs", "3"];
    let words: Vec<String> = argv.iter().map(|w| w.to_string()).collect();
    let shape = xtask::cli::report_shape(root().as_path().try_into().unwrap(), &words).unwrap();
    // Both committed peers of cpu-minimal: the repository's own, then the uv guide's.
    assert_eq!(
        shape.tables[0].columns[3..7],
        ["peer", "ours/peer", "uv-guide peer", "ours/uv-guide"]
    );
    assert_eq!(
        shape.tables[0].columns.last().unwrap(),
        "uv-guide peer's runs (s)"
    );
    assert_eq!(shape.tables[0].rows.len(), 4, "{shape:?}");
    assert!(shape.chart, "bench rebuild draws a chart: {shape:?}");
    let stamp = "_`cargo xtask bench rebuild cpu-minimal --runs 3` on 2026-12-02, exit 0; 2 CPUs._";
    let good = block_of(&argv, &shape, stamp);
    assert_eq!(problems(&good, &shape), Vec::<String>::new());

    let mut renamed = shape.clone();
    renamed.tables[0].columns[1] = "seconds".into();
    let found = problems(&block_of(&argv, &renamed, stamp), &shape);
    assert!(
        found.iter().any(|p| p.contains("no longer prints")),
        "{found:?}"
    );

    let mut dropped = shape.clone();
    dropped.tables[0].rows.pop();
    let found = problems(&block_of(&argv, &dropped, stamp), &shape);
    assert_eq!(
        found,
        [
            "no row `warm, dependency file changed` in the table `build | time | vs cold | peer | \
          ours/peer | uv-guide peer | ours/uv-guide | steps cached | steps run | runs (s) | \
          peer's runs (s) | uv-guide peer's runs (s)`"
        ]
    );

    let undated = block_of(
        &argv,
        &shape,
        "_`cargo xtask bench rebuild cpu-minimal --runs 3`._",
    );
    assert!(problems(&undated, &shape)[0].contains("no stamp line"));

    let uncharted = Shape {
        chart: false,
        ..shape.clone()
    };
    assert_eq!(
        problems(&block_of(&argv, &uncharted, stamp), &shape),
        ["no chart, which the command draws today"]
    );
}

#[test]
fn the_shape_follows_the_command_line() {
    let shape_of = |argv: &[&str]| {
        let words: Vec<String> = argv.iter().map(|w| w.to_string()).collect();
        xtask::cli::report_shape(root().as_path().try_into().unwrap(), &words)
    };
    let one_run = shape_of(&["bench", "rebuild", "cpu-minimal", "--no-peer"]).unwrap();
    assert_eq!(
        one_run.tables[0].columns,
        ["build", "time", "vs cold", "steps cached", "steps run"]
    );
    let sizes = shape_of(&["sizes", "cuda", "--layers", "5"]).unwrap();
    assert_eq!(sizes.tables.len(), 2);
    assert_eq!(sizes.tables[0].rows, ["cuda"]);
    assert!(sizes.chart, "cuda has a budget: {sizes:?}");
    let unbudgeted = shape_of(&["sizes", "--image", "localhost/debian:trixie-slim"]).unwrap();
    assert!(!unbudgeted.chart, "{unbudgeted:?}");
    let err = shape_of(&["config"]).unwrap_err().to_string();
    assert!(err.contains("has no Markdown report"), "{err}");
    let err = shape_of(&["sizes", "--no-such-flag"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("--no-such-flag"), "{err}");
}

#[test]
fn markdown_tables_are_read_with_escaped_pipes_and_outside_fences() {
    let body = "text\n\n| a | b\\|c |\n| --- | ---: |\n| x | y |\n\n```\n| not | a table |\n```\n";
    let found = tables(body);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].columns, ["a", "b|c"]);
    assert_eq!(found[0].first_cells, ["x"]);
}
