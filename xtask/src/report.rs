//! Rendering of command results: aligned text tables for terminals and CI logs, Markdown for docs
//! and `$GITHUB_STEP_SUMMARY`, JSON for machines.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::io::Write;

use crate::output::warning;

mod kind;
pub use kind::Kind;
pub(crate) use kind::{parse, read, to_json};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    #[default]
    Table,
    /// A GitHub-flavoured Markdown table.
    Markdown,
    /// JSON on stdout, for machines.
    Json,
}

/// A table of strings; every command's human output goes through it.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub(crate) headers: Vec<String>,
    pub(crate) rows: Vec<Vec<String>>,
    /// Columns that hold numbers are right-aligned in text.
    pub(crate) right_aligned: Vec<usize>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            ..Table::default()
        }
    }

    pub fn right_align(mut self, cols: &[usize]) -> Table {
        self.right_aligned = cols.to_vec();
        self
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub(crate) fn render_text(&self) -> String {
        let cols = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(cols) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| -> String {
            let mut out = String::new();
            for (i, width) in widths.iter().enumerate() {
                let cell = cells.get(i).map(String::as_str).unwrap_or("");
                let pad = width - cell.chars().count();
                if i > 0 {
                    out.push_str("  ");
                }
                if self.right_aligned.contains(&i) {
                    out.push_str(&" ".repeat(pad));
                    out.push_str(cell);
                } else {
                    out.push_str(cell);
                    if i + 1 < widths.len() {
                        out.push_str(&" ".repeat(pad));
                    }
                }
            }
            out.trim_end().to_string() + "\n"
        };
        let mut out = line(&self.headers);
        out.push_str(&line(
            &widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>(),
        ));
        for row in &self.rows {
            out.push_str(&line(row));
        }
        out
    }

    pub(crate) fn render_markdown(&self) -> String {
        let esc = |s: &str| s.replace('|', "\\|").replace('\n', " ");
        let mut out = format!(
            "| {} |\n",
            self.headers
                .iter()
                .map(|h| esc(h))
                .collect::<Vec<_>>()
                .join(" | ")
        );
        let seps: Vec<&str> = (0..self.headers.len())
            .map(|i| {
                if self.right_aligned.contains(&i) {
                    "---:"
                } else {
                    "---"
                }
            })
            .collect();
        out.push_str(&format!("| {} |\n", seps.join(" | ")));
        for row in &self.rows {
            let cells: Vec<String> = (0..self.headers.len())
                .map(|i| esc(row.get(i).map_or("", |s| s)))
                .collect();
            out.push_str(&format!("| {} |\n", cells.join(" | ")));
        }
        out
    }
}

/// Where a measurement ran, as a bench's report and a generated doc block state it.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpus: usize,
    /// The engine's version.
    pub docker: String,
    /// The image store, e.g. `containerd snapshotter (overlayfs)`.
    pub store: String,
}

impl Machine {
    pub fn of(info: &crate::docker::Info) -> Machine {
        Machine {
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            docker: info.server_version.clone(),
            store: info.store_name(),
        }
    }

    /// `2 CPUs, Docker 28.5.2, containerd snapshotter (overlayfs)`, for report titles.
    pub fn describe(&self) -> String {
        format!("{} CPUs, Docker {}, {}", self.cpus, self.docker, self.store)
    }
}

/// What a command's Markdown report holds, so that the docs' generated blocks can be checked
/// against it (`cargo xtask docs`, tests/docs_blocks.rs): its tables, and whether it draws a
/// chart.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Shape {
    pub tables: Vec<TableShape>,
    pub chart: bool,
}

/// One table of a [`Shape`]: its columns, and the rows it always prints, each named by the
/// start of its first cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableShape {
    pub columns: Vec<String>,
    pub rows: Vec<String>,
}

impl TableShape {
    pub fn new<C: AsRef<str>, R: AsRef<str>>(columns: &[C], rows: &[R]) -> TableShape {
        TableShape {
            columns: columns.iter().map(|c| c.as_ref().to_string()).collect(),
            rows: rows.iter().map(|r| r.as_ref().to_string()).collect(),
        }
    }
}

/// Prints a report on stdout in the chosen format: `table` and `markdown` from the table, `json`
/// from the serializable value (a struct or map), which is a report of `kind`.
pub(crate) fn emit<T: Serialize + ?Sized>(
    format: Format,
    table: &Table,
    kind: Kind,
    value: &T,
) -> Result<()> {
    emit_rendered(
        format,
        || table.render_text(),
        || table.render_markdown(),
        kind,
        value,
    )
}

/// Prints the report in `format`: `text` or `markdown` made only when asked for.
pub fn emit_rendered<T: Serialize + ?Sized>(
    format: Format,
    text: impl FnOnce() -> String,
    markdown: impl FnOnce() -> String,
    kind: Kind,
    value: &T,
) -> Result<()> {
    let out = match format {
        Format::Table => text(),
        Format::Markdown => markdown(),
        Format::Json => to_json(kind, value)?,
    };
    crate::output::result(&out)
}

/// A report that is a list: `{"<name>": [...]}` after its kind and schema.
pub(crate) struct List<'a, T>(pub &'static str, pub &'a [T]);

impl<T: Serialize> Serialize for List<'_, T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry(self.0, self.1)?;
        map.end()
    }
}

/// One titled table of a report with several tables.
#[derive(Debug, Clone)]
pub struct Section {
    pub title: Option<String>,
    pub table: Table,
}

/// Several tables as text: a title line above each titled table, a blank line between them.
pub fn sections_text(sections: &[Section]) -> String {
    let parts: Vec<String> = sections
        .iter()
        .map(|s| match &s.title {
            Some(title) => format!("{title}\n{}", s.table.render_text()),
            None => s.table.render_text(),
        })
        .collect();
    parts.join("\n")
}

/// Several tables as Markdown: a `####` heading above each titled table.
pub fn sections_markdown(sections: &[Section]) -> String {
    let parts: Vec<String> = sections
        .iter()
        .map(|s| match &s.title {
            Some(title) => format!("#### {title}\n\n{}", s.table.render_markdown()),
            None => s.table.render_markdown(),
        })
        .collect();
    parts.join("\n")
}

/// Like [`emit`], for a report made of several tables.
pub(crate) fn emit_sections<T: Serialize + ?Sized>(
    format: Format,
    sections: &[Section],
    kind: Kind,
    value: &T,
) -> Result<()> {
    emit_rendered(
        format,
        || sections_text(sections),
        || sections_markdown(sections),
        kind,
        value,
    )
}

/// How an [`xychart`] series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plot {
    Bar,
    Line,
}

/// One series of an [`xychart`]: its name (the legend) and one value per x label.
#[derive(Debug, Clone)]
pub struct Series {
    pub(crate) plot: Plot,
    pub(crate) name: String,
    pub(crate) values: Vec<f64>,
}

impl Series {
    pub fn bar(name: &str, values: Vec<f64>) -> Series {
        Series {
            plot: Plot::Bar,
            name: name.into(),
            values,
        }
    }

    pub fn line(name: &str, values: Vec<f64>) -> Series {
        Series {
            plot: Plot::Line,
            name: name.into(),
            values,
        }
    }
}

/// A Mermaid `xychart-beta` chart as a fenced `mermaid` block (GitHub renders it in Markdown):
/// one x label per category, bars and lines in the order given, the y axis from 0 so bars are
/// not exaggerated; horizontal, as labels of several words overlap under vertical bars. Mermaid strings cannot escape `"` (it becomes `'`) and its sanitizer mangles
/// `&`, `<` and `>` (they become `and`, `‹`, `›`); a non-finite value is drawn as 0.
pub fn xychart(title: &str, x_labels: &[String], y_label: &str, series: &[Series]) -> String {
    let quote = |s: &str| {
        let text = s
            .replace('"', "'")
            .replace('&', "and")
            .replace('<', "‹")
            .replace('>', "›")
            .replace('\n', " ");
        format!("\"{text}\"")
    };
    let number = |v: f64| {
        let v = if v.is_finite() { v } else { 0.0 };
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    };
    let top = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max);
    let labels: Vec<String> = x_labels.iter().map(|l| quote(l)).collect();
    let mut out = format!(
        "```mermaid\nxychart-beta horizontal\n    title {}\n    x-axis [{}]\n    y-axis {} 0 --> {}\n",
        quote(title),
        labels.join(", "),
        quote(y_label),
        number(axis_top(top)),
    );
    for s in series {
        let kind = match s.plot {
            Plot::Bar => "bar",
            Plot::Line => "line",
        };
        let values: Vec<String> = s.values.iter().map(|v| number(*v)).collect();
        out.push_str(&format!(
            "    {kind} {} [{}]\n",
            quote(&s.name),
            values.join(", ")
        ));
    }
    out.push_str("```\n");
    out
}

/// The y axis' end: the largest value with 5 % headroom, rounded up to a round number.
fn axis_top(max: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let want = max * 1.05;
    let step = 10f64.powf(want.log10().floor());
    [1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0]
        .iter()
        .map(|m| m * step)
        .find(|v| *v >= want)
        .unwrap_or(10.0 * step)
}

/// Appends Markdown to the GitHub Actions step summary when `$GITHUB_STEP_SUMMARY` is set.
/// Best effort: the summary is a copy of what stdout already said, so a failure to write it is
/// a `warning:` line and never changes the command's verdict or exit code.
pub fn step_summary(title: &str, markdown: &str) {
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) else {
        return;
    };
    let text = format!("### {title}\n\n{markdown}\n");
    if let Err(e) = crate::output::deliver(|| append(std::path::Path::new(&path), &text)) {
        warning!(
            "cannot write the step summary $GITHUB_STEP_SUMMARY ({}): {e}; \
             the results above stand",
            crate::util::shown(&path)
        );
    }
}

fn append(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(text.as_bytes())
}

/// Refuses a `flag` directory that exists as something else, or lies below a file, before any
/// work (it is made when missing).
pub(crate) fn ensure_dir(flag: &str, dir: &camino::Utf8Path) -> Result<()> {
    let Some(file) = dir.ancestors().find(|a| a.exists()).filter(|a| !a.is_dir()) else {
        return Ok(());
    };
    let below = if file == dir {
        String::new()
    } else {
        format!(" ({} is a file)", crate::util::shown(file))
    };
    let dir = crate::util::shown(dir);
    anyhow::bail!("{flag} {dir} is not a directory{below}: name a directory (made if missing)")
}

/// The directories [`make_dir`] created: removed again, when empty, unless the run [`keep`]s
/// them, so that a run that fails or is interrupted leaves no empty directory of its own behind.
///
/// [`keep`]: MadeDir::keep
pub(crate) struct MadeDir(crate::cleanup::Guard);

impl MadeDir {
    /// The run succeeded: the directories stay.
    pub(crate) fn keep(self) {
        self.0.disarm();
    }
}

/// Refuses a `flag` directory as [`ensure_dir`] does, then makes it and its missing parents.
pub(crate) fn make_dir(flag: &str, dir: &camino::Utf8Path) -> Result<MadeDir> {
    ensure_dir(flag, dir)?;
    // Deepest first, as they must be removed.
    let missing: Vec<camino::Utf8PathBuf> = dir
        .ancestors()
        .take_while(|a| !a.as_str().is_empty() && !a.exists())
        .map(camino::Utf8Path::to_path_buf)
        .collect();
    let made = MadeDir(crate::cleanup::Guard::new(move || {
        for dir in &missing {
            // Only an empty one goes: what is in it is not ours to delete.
            let _ = std::fs::remove_dir(dir);
        }
    }));
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating {}", crate::util::shown(dir)))?;
    Ok(made)
}

/// Refuses a `flag` file that is a directory, or lies below a file, before any work.
pub(crate) fn ensure_file(flag: &str, file: &camino::Utf8Path) -> Result<()> {
    if file.is_dir() {
        let file = crate::util::shown(file);
        anyhow::bail!("{flag} {file} is a directory: name the file to write");
    }
    match file.parent() {
        Some(dir) => ensure_dir(flag, dir),
        None => Ok(()),
    }
}

/// Writes a file atomically (temp file + rename) so an interrupted run leaves no half-written report.
/// Not written at all once the run was interrupted (`crate::output::deliver`).
pub(crate) fn write_atomic(path: &camino::Utf8Path, contents: &[u8]) -> Result<()> {
    crate::output::deliver(|| write_atomic_now(path, contents))
}

fn write_atomic_now(path: &camino::Utf8Path, contents: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating {}", crate::util::shown(dir)))?;
    }
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let (shown_tmp, shown) = (crate::util::shown(&tmp), crate::util::shown(path));
    let written = std::fs::write(&tmp, contents)
        .with_context(|| format!("writing {shown_tmp}"))
        .and_then(|()| {
            std::fs::rename(&tmp, path).with_context(|| format!("moving {shown_tmp} to {shown}"))
        });
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        let mut t = Table::new(&["variant", "size"]).right_align(&[1]);
        t.row(vec!["cpu".into(), "1.0 GB".into()]);
        t.row(vec!["cpu|minimal".into(), "90 MB".into()]);
        t
    }

    #[test]
    fn a_made_dir_goes_again_unless_kept_and_only_the_part_it_made() {
        let base = std::env::temp_dir().join(format!("xtask-made-{}", std::process::id()));
        let base = camino::Utf8PathBuf::try_from(base).unwrap();
        std::fs::create_dir_all(&base).unwrap();
        let deep = base.join("a").join("b");
        drop(make_dir("--out-dir", &deep).unwrap());
        assert!(!base.join("a").exists() && base.exists());
        // A directory with a file in it stays, whoever put it there.
        let made = make_dir("--out-dir", &deep).unwrap();
        std::fs::write(deep.join("kept"), "").unwrap();
        drop(made);
        assert!(deep.join("kept").exists());
        std::fs::remove_dir_all(base.join("a")).unwrap();
        make_dir("--out-dir", &deep).unwrap().keep();
        assert!(deep.is_dir());
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn output_flags_naming_the_wrong_kind_of_path_are_refused() {
        let file = camino::Utf8PathBuf::try_from(std::env::current_exe().unwrap()).unwrap();
        let err = ensure_dir("--out-dir", &file).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "--out-dir {} is not a directory: name a directory (made if missing)",
                crate::util::shown(&file)
            )
        );
        let dir = file.parent().unwrap();
        assert!(ensure_dir("--out-dir", dir).is_ok());
        assert!(ensure_dir("--out-dir", &dir.join("not-yet")).is_ok());
        let below = file.join("sub");
        assert_eq!(
            ensure_dir("--sarif", &below).unwrap_err().to_string(),
            format!(
                "--sarif {} is not a directory ({} is a file): name a directory (made if missing)",
                crate::util::shown(&below),
                crate::util::shown(&file)
            )
        );
        let err = ensure_file("--save", dir).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "--save {} is a directory: name the file to write",
                crate::util::shown(dir)
            )
        );
        assert!(ensure_file("--save", &below).is_err());
        assert!(ensure_file("--save", &dir.join("new.json")).is_ok());
    }

    #[test]
    fn text_table_aligns_columns() {
        assert_eq!(
            sample().render_text(),
            "variant        size\n-----------  ------\ncpu          1.0 GB\ncpu|minimal   90 MB\n"
        );
    }

    #[test]
    fn markdown_table_escapes_pipes() {
        let md = sample().render_markdown();
        assert_eq!(md.lines().nth(1), Some("| --- | ---: |"));
        assert!(md.contains("cpu\\|minimal"), "{md}");
        assert!(md.lines().all(|l| l.starts_with('|') && l.ends_with('|')));
    }

    #[test]
    fn xychart_is_a_mermaid_block_with_every_series() {
        let chart = xychart(
            "Rebuild time: ours vs the \"peer\" & <more>",
            &["cold".into(), "app change".into()],
            "seconds",
            &[
                Series::bar("ours", vec![15.3, 0.4]),
                Series::line("peer", vec![18.25, f64::NAN]),
            ],
        );
        assert_eq!(
            chart,
            "```mermaid\nxychart-beta horizontal\n    title \"Rebuild time: ours vs the 'peer' and ‹more›\"\n    \
             x-axis [\"cold\", \"app change\"]\n    y-axis \"seconds\" 0 --> 20\n    \
             bar \"ours\" [15.3, 0.4]\n    line \"peer\" [18.25, 0]\n```\n"
        );
    }

    #[test]
    fn the_y_axis_ends_at_a_round_number_above_the_largest_value() {
        assert_eq!(axis_top(0.0), 1.0);
        assert_eq!(axis_top(4228.7), 5000.0);
        assert_eq!(axis_top(197.7), 250.0);
        assert_eq!(axis_top(0.9), 1.0);
        assert_eq!(axis_top(95.0), 100.0);
        assert_eq!(axis_top(96.0), 120.0);
    }
}
